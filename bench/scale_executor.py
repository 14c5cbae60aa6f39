"""Wall time of one run's fits under each executor, and whether the numbers agree.

The same small experiment (synthetic cohort, k folds x M members) runs serially with one
thread per fit, with two local processes of one thread, and on a local Ray cluster of 2 CPUs;
each run starts from an empty folder (the preprocessing cache is shared, so the times are
training, evaluation and executor overhead). Predictions are compared bit for bit.

    OMP_NUM_THREADS=1 python bench/scale_executor.py --cases 60 --out /tmp/scale_executor

prints a Markdown table (``bench/scale_results.md`` records a run).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

import pandas as pd

from deepradiomics.config import parse_config
from deepradiomics.experiment.executor import ExecutorSpec, shutdown
from deepradiomics.experiment.runner import run_experiment
from deepradiomics.synth.generate import generate_cohort


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=60)
    ap.add_argument("--folds", type=int, default=2)
    ap.add_argument("--members", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("/tmp/scale_executor"))
    args = ap.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    csv = generate_cohort(
        args.out / "cohort", cases=args.cases, sites=2, seed=0, size=32, pet=False, workers=1
    )
    cfg = parse_config(
        {
            "cohort": {"path": str(csv)},
            "preprocess": {
                "spacing": [2, 2, 2],
                "crop_mm": [32, 32, 32],
                "workers": 1,
                "cache_dir": str(args.out / "cache"),
            },
            "model": {"name": "small3d", "kwargs": {"widths": [8, 16]}},
            "train": {"epochs": args.epochs, "batch_size": 8},
            "evaluate": {
                "folds": args.folds,
                "ensemble_members": args.members,
                "bootstrap": 50,
                "classical": False,
                "explain": False,
                "audit": {"site": False},
            },
        }
    )
    specs = {
        "serial, 1 thread per fit": ExecutorSpec(cpus_per_fit=1),
        "local, 2 processes x 1 thread": ExecutorSpec("local", workers=2, cpus_per_fit=1),
        "ray, local cluster of 2 CPUs": ExecutorSpec("ray", workers=2),
    }
    rows, first = [], None
    for name, spec in specs.items():
        out = args.out / spec.kind / str(spec.workers)
        t0 = time.perf_counter()
        run_experiment(cfg, out, progress=False, executor=spec)
        seconds = time.perf_counter() - t0
        shutdown()
        preds = pd.read_csv(out / "predictions.csv")
        first = preds if first is None else first
        same = preds.equals(first)
        rows.append((name, seconds, same))
        print(f"{name}: {seconds:.1f} s, predictions equal to serial: {same}", flush=True)
    fits = args.folds * args.members
    print(f"\n{args.cases} cases, {fits} fits ({args.folds} folds x {args.members} members), "
          f"{args.epochs} epochs; load average after: {os.getloadavg()[0]:.2f}\n")  # fmt: skip
    print("| executor | wall (s) | predictions equal to serial |\n|---|---|---|")
    for name, seconds, same in rows:
        print(f"| {name} | {seconds:.1f} | {'yes, bit for bit' if same else 'NO'} |")


if __name__ == "__main__":
    main()
