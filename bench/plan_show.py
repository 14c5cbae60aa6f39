"""The demo cohort's preprocessing plans with ``auto`` spacing / crop and a CT percentile
window: from every case vs from each fold's training part (k-fold and leave-one-site-out).

    PYTHONPATH=src python bench/plan_show.py COHORT_DIR   # the folder bench/plan_bench.py uses
"""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from plan_bench import config

from deepradiomics.dataset.manifest import open_csv
from deepradiomics.dataset.planning import training_part
from deepradiomics.experiment.runner import make_run_splits


def show(name, p):
    print(
        f"  {name:<22} spacing {p.spacing} crop {p.crop_mm} shape {p.shape} ct window {p.modalities[0].window}"
    )


def main():
    for split in ("kfold", "loso"):
        cfg = config(Path(sys.argv[1]) / "cohort.csv", auto=True)
        cfg = cfg.model_copy(update={"evaluate": cfg.evaluate.model_copy(update={"split": split})})
        with tempfile.TemporaryDirectory() as tmp:
            src = open_csv(cfg, Path(tmp))
            fc = src.fingerprinted
            splits = make_run_splits(cfg, src.labels())
            print(split)
            show("every case", fc.plan(cfg.preprocess))
            for k in splits.folds:
                show(
                    f"fold {k} (held out {splits.held_out(k) or '-'})",
                    fc.plan(cfg.preprocess, training_part(splits, k)),
                )


if __name__ == "__main__":
    main()
