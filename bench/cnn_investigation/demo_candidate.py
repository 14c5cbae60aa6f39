"""A CNN-only copy of the demo config, for comparing model recipes across draws quickly.

    PYTHONPATH=src python bench/cnn_investigation/demo_candidate.py COHORT_DIR OUT.yaml \
        ['{"model": {"kwargs": {...}}, "evaluate": {"ensemble_members": 2}}'] [--cache DIR]
    OMP_NUM_THREADS=1 PYTHONPATH=src python -m deepradiomics.cli run OUT.yaml --out RUN

COHORT_DIR is a demo cohort (``deepradiomics demo --cohort-seed N --out D`` writes
``D/cohort``); the JSON overrides are merged into ``demo.yaml``. The classical baselines,
ComBat, the learning curve, the site audit and the explanations are off (the CNN's
out-of-fold predictions and the truth audit are what is compared; 200 bootstrap resamples).
"""

from __future__ import annotations

import argparse
import json
from importlib import resources
from pathlib import Path
from typing import Any

import yaml


def merge(base: dict[str, Any], over: dict[str, Any]) -> None:
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cohort", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("overrides", nargs="?", default="{}")
    ap.add_argument("--cache", type=Path, default=None, help="preprocess.cache_dir")
    args = ap.parse_args()
    text = resources.files("deepradiomics.experiment").joinpath("demo.yaml").read_text()
    cfg = yaml.safe_load(text)
    cohort = args.cohort.resolve()
    cfg["cohort"]["path"] = str(cohort / "cohort.csv")
    cfg["cohort"]["ground_truth"] = str(cohort / "ground_truth.csv")
    if args.cache is not None:
        cfg["preprocess"]["cache_dir"] = str(args.cache.resolve())
    cfg["evaluate"].update(
        classical=False,
        combat=False,
        explain=False,
        bootstrap=200,
        learning_curve={"enabled": False},
        audit={"site": False},
    )
    merge(cfg, json.loads(args.overrides))
    args.out.write_text(yaml.safe_dump(cfg, sort_keys=False))
    print(args.out)


if __name__ == "__main__":
    main()
