"""Which phenotype's estimate limits the demo's CNN: a logistic regression on
``lesion_texture``'s pooled statistics (untrained, seed 0; they go through a batch norm and a
32-wide layer in the CNN) plus age and sex, and the same with one *true* phenotype of
``ground_truth.csv`` added, and on the true phenotypes alone (with age and sex).

Out-of-fold AUC of the label: 3 patient-grouped folds as in the demo (about 200 training
cases), penalty chosen by 5-fold CV on each fold's training rows, mean of 3 repeats over
shuffled patient groups. On the demo's validation draws 1-4 its mean is within 0.005 of the
trained CNN's (0.730 vs 0.726), each draw within 0.04 (bench/demo_results.md, session 8).

    PYTHONPATH=src python bench/cnn_investigation/statistics_proxy.py RUN [RUN ...] \
        [--kwargs '{"gabor": true}']

RUN is a finished run of a synthetic cohort (its ``config.yaml``: cohort, ground truth,
preprocessing cache, ``model.kwargs``; ``--kwargs`` overrides the latter).
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from run_crops import run_crops
from sklearn.linear_model import LogisticRegressionCV
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from deepradiomics.audit.phenotype import PHENOTYPES
from deepradiomics.models.texture import LesionTextureNet


def out_of_fold_auc(X: np.ndarray, y: np.ndarray, patients: np.ndarray, repeats: int = 3) -> float:
    aucs = []
    for r in range(repeats):
        codes = pd.factorize(patients)[0]
        groups = np.random.default_rng(r).permutation(codes.max() + 1)[codes] % 3
        pred = np.zeros(len(y))
        for tr, te in GroupKFold(3).split(X, y, groups):
            model = make_pipeline(
                StandardScaler(),
                LogisticRegressionCV(Cs=np.logspace(-3, 1, 9), max_iter=2000),
            ).fit(X[tr], y[tr])
            pred[te] = model.predict_proba(X[te])[:, 1]
        aucs.append(roc_auc_score(y, pred))
    return float(np.mean(aucs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="+")
    ap.add_argument("--kwargs", default="{}", help="JSON overrides of the model's kwargs")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)
    torch.set_num_threads(2)
    rows: dict[str, list[float]] = {}
    for run in args.runs:
        crops = run_crops(run)
        cfg, x, t = crops.cfg, crops.arrays.data.images.float(), crops.rows
        kwargs = {**cfg.model.kwargs, **json.loads(args.kwargs)}
        torch.manual_seed(0)
        net = LesionTextureNet(in_channels=x.shape[1], **kwargs).eval()
        with torch.no_grad():
            pooled = torch.cat([net.pooled(x[i : i + 50]) for i in range(0, len(x), 50)])
        covariates = np.c_[t["age"].to_numpy(float), (t["sex"] == "M").to_numpy(float)]
        y, patients = t["label"].to_numpy(), t["patient_id"].to_numpy()
        phenotypes = t[list(PHENOTYPES)].to_numpy(float)
        phenotypes[:, list(PHENOTYPES).index("diameter_mm")] = np.log(t["diameter_mm"])
        base = np.c_[pooled.numpy(), covariates]
        rows.setdefault("pooled statistics + age, sex", []).append(
            out_of_fold_auc(base, y, patients)
        )
        for j, name in enumerate(PHENOTYPES):
            rows.setdefault(f"... + true {name}", []).append(
                out_of_fold_auc(np.c_[base, phenotypes[:, j]], y, patients)
            )
        rows.setdefault("true phenotypes + age, sex", []).append(
            out_of_fold_auc(np.c_[phenotypes, covariates], y, patients)
        )
    print("| features | " + " | ".join(r.name for r in args.runs) + " | mean |")
    print("|---" * (len(args.runs) + 2) + "|")
    for label, v in rows.items():
        print(f"| {label} | " + " | ".join(f"{a:.3f}" for a in v) + f" | {np.mean(v):.3f} |")


if __name__ == "__main__":
    main()
