"""The experiment: ``run`` (a config end to end, resumable) and ``demo`` (the synthetic cohort).

Imports are deferred to the commands so ``deepradiomics --help`` stays instant.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def command_run(args: argparse.Namespace) -> int:
    from deepradiomics.config import load_config
    from deepradiomics.experiment.runner import run_experiment

    cfg = load_config(args.config)
    run_experiment(cfg, Path(args.out))
    print(f"report: {Path(args.out) / 'report.html'}")
    return 0


def command_demo(args: argparse.Namespace) -> int:
    from deepradiomics.experiment.demo import run_demo

    return run_demo(Path(args.out))
