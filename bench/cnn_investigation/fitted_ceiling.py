"""What any learner could reach on a demo draw at the demo's fold sizes, given the TRUE
phenotypes: out-of-fold AUC of a logistic regression on the generator's phenotypes (log
diameter, lobulation, spiculation, heterogeneity, necrosis, core eccentricity, texture
anisotropy), with and without age, sex and site, fitted on 3-fold patient-grouped splits
(~200 training cases, as the demo's folds), 10 repeats (mean, SD).

    PYTHONPATH=src python bench/cnn_investigation/fitted_ceiling.py D0/cohort/ground_truth.csv ...

(``deepradiomics demo --cohort-seed N --out DN`` writes ``DN/cohort/ground_truth.csv``.)
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegressionCV
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

SHAPE = ["lobulation", "spiculation", "heterogeneity", "necrosis"]
SPATIAL = ["core_eccentricity", "texture_anisotropy"]


def fitted_auc(X: np.ndarray, y: np.ndarray, groups: np.ndarray, repeats: int = 10) -> list[float]:
    aucs = []
    for rep in range(repeats):
        p = np.zeros(len(y))
        folds = StratifiedGroupKFold(3, shuffle=True, random_state=rep)
        for tr, te in folds.split(X, y, groups):
            model = make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=10, max_iter=2000))
            p[te] = model.fit(X[tr], y[tr]).predict_proba(X[te])[:, 1]
        aucs.append(roc_auc_score(y, p))
    return aucs


def main() -> None:
    warnings.simplefilter("ignore")  # scikit-learn's FutureWarnings about its defaults
    print(
        "| ground truth | oracle (true risk) | fitted: phenotypes + age, sex, site | fitted: phenotypes |"
    )
    print("|---|---|---|---|")
    for path in sys.argv[1:]:
        t = pd.read_csv(path)
        image = pd.concat([np.log(t[["diameter_mm"]]), t[SHAPE + SPATIAL]], axis=1)
        clinical = pd.concat(
            [
                t[["age"]],
                (t["sex"] == "M").astype(float).rename("male"),
                pd.get_dummies(t["site"], drop_first=True).astype(float),
            ],
            axis=1,
        )
        y, groups = t["label"].to_numpy(), t["patient_id"].to_numpy()
        cells = []
        for X in (pd.concat([image, clinical], axis=1), image):
            aucs = fitted_auc(X.to_numpy(float), y, groups)
            cells.append(f"{np.mean(aucs):.3f} ({np.std(aucs):.3f})")
        print(
            f"| {path} | {roc_auc_score(y, t['risk']):.3f} | {cells[0]} | {cells[1]} |", flush=True
        )


if __name__ == "__main__":
    main()
