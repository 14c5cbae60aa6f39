"""Preprocessing time of the demo cohort: one plan from every case vs one plan per fold.

    PYTHONPATH=src python bench/plan_bench.py COHORT_DIR --mode every|folds [--auto]

``COHORT_DIR``: the demo cohort (generated there with the demo's settings when absent).
``--mode every`` prepares the cohort as ``run`` did before issue 11 item 3d (one plan from
every case, ``dataset.load.load_cohort_arrays``; also runs on older checkouts); ``--mode
folds`` as ``run`` does now (splits first, each fold planned on its training part,
``experiment.runner.planned_cohorts``). ``--auto``: the demo config with ``auto`` spacing and
crop and a CT ``percentile`` window, so the folds' plans differ. Each mode runs twice in a
fresh folder: cold (empty cache) and warm (the cache of the cold run).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from importlib import resources
from pathlib import Path

import yaml

from deepradiomics.config import parse_config
from deepradiomics.experiment.demo import COHORT
from deepradiomics.synth.generate import generate_cohort


def config(csv: Path, auto: bool):
    data = yaml.safe_load(
        resources.files("deepradiomics.experiment").joinpath("demo.yaml").read_text()
    )
    data["cohort"]["path"] = str(csv)
    if auto:
        data["preprocess"].update(spacing="auto", crop_mm="auto")
        data["cohort"]["modalities"]["ct"]["window"] = "percentile"
    return parse_config(data, source="demo.yaml")


def prepare(cfg, run_dir: Path, mode: str) -> str:
    if mode == "every":
        from deepradiomics.dataset.load import load_cohort_arrays

        arrays = load_cohort_arrays(cfg, run_dir)
        return f"1 plan, {len(arrays.data)} cases"
    from deepradiomics.experiment.runner import planned_cohorts

    splits, cohorts, _ = planned_cohorts(cfg, run_dir)
    return f"{cohorts.distinct_plans} plan(s) over {len(splits.folds)} folds"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("cohort", type=Path)
    ap.add_argument("--mode", choices=("every", "folds"), required=True)
    ap.add_argument("--auto", action="store_true")
    args = ap.parse_args()
    csv = args.cohort / "cohort.csv"
    if not csv.is_file():
        generate_cohort(args.cohort, workers=2, progress=True, **COHORT)
    cfg = config(csv, args.auto)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        out = {}
        for label in ("cold", "warm"):
            start = time.perf_counter()
            what = prepare(cfg, run_dir, args.mode)
            out[label] = round(time.perf_counter() - start, 1)
    print(json.dumps({"mode": args.mode, "auto": args.auto, "result": what, "seconds": out}))


if __name__ == "__main__":
    main()
