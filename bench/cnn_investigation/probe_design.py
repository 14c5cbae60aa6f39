"""The two measurements behind the phenotype probe's design, on a finished demo run:

1. the hand-crafted features probed with all standardised features (the shipped probe) vs
   their 32 leading principal components (the site probe's projection);
2. ``lesion_texture``'s pooled statistics (before its hidden layer) probed on every case,
   untrained and as trained by each member of fold 1 (``folds/fold_0/member_*/best.pt``).

    PYTHONPATH=src python bench/cnn_investigation/probe_design.py RUN [--boot 200]

RUN is a ``deepradiomics demo`` folder (its ``config.yaml``, ``classical/features.csv``,
``cohort/``, preprocessing cache and fold members). Prints Spearman r per phenotype.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from run_crops import run_crops
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import GroupKFold

from deepradiomics.audit.phenotype import PHENOTYPES, RIDGE_ALPHAS, phenotype_probe
from deepradiomics.audit.site import MAX_COMPONENTS, clean_features, project_components
from deepradiomics.audit.truth import spearman
from deepradiomics.io.weights import read_weights
from deepradiomics.models import build_from_config


def principal_component_r(X: np.ndarray, truth: pd.DataFrame, groups: np.ndarray) -> dict:
    """r of a ridge on the 32 leading components (5 patient-grouped folds)."""
    X, Y = clean_features(X), truth[list(PHENOTYPES)].to_numpy(float)
    pred = np.zeros_like(Y)
    for tr, te in GroupKFold(5).split(X, Y, groups):
        z_tr, z_te = project_components(X[tr], X[te], MAX_COMPONENTS)
        ridge = RidgeCV(alphas=RIDGE_ALPHAS, alpha_per_target=True).fit(z_tr, Y[tr])
        pred[te] = ridge.predict(z_te)
    return {name: spearman(pred[:, j], Y[:, j]) for j, name in enumerate(PHENOTYPES)}


def row(label: str, values: dict) -> str:
    return f"| {label} | " + " | ".join(f"{values[p]:.2f}" for p in PHENOTYPES) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--boot", type=int, default=200)
    args = ap.parse_args()
    torch.set_num_threads(2)
    crops = run_crops(args.run)
    cfg, truth = crops.cfg, crops.truth
    value = lambda probe: {k: v["value"] for k, v in probe["r"].items()}  # noqa: E731
    print("| representation | " + " | ".join(PHENOTYPES) + " |")
    print("|---" * (len(PHENOTYPES) + 1) + "|")

    features = pd.read_csv(args.run / "classical" / "features.csv", index_col=0)
    rows = truth.loc[features.index.astype(str)]
    X, groups = features.to_numpy(float), rows["patient_id"].to_numpy()
    print(
        row("features, all standardised", value(phenotype_probe(X, rows, groups, n_boot=args.boot)))
    )
    print(row("features, 32 components", principal_component_r(X, rows, groups)))

    fold, arrays, rows = crops.fold, crops.arrays, crops.rows
    x = arrays.data.images
    groups = np.asarray(arrays.data.patient_ids).astype(str)
    members = sorted((args.run / "folds" / f"fold_{fold}").glob("member_*"))
    for name, state in [("untrained", None)] + [(m.name, m / "best.pt") for m in members]:
        model = build_from_config(
            cfg, arrays.task, x.shape[1], 2, tuple(arrays.plan.spacing), load_pretrained=False
        )
        if state is not None:  # the backbone's weights; the head is not needed
            weights = read_weights(state)["model"]
            prefix = "backbone."
            model.backbone.load_state_dict(
                {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
            )
        model.eval()
        with torch.no_grad():
            pooled = torch.cat([model.backbone.pooled(x[i : i + 32]) for i in range(0, len(x), 32)])
        probe = phenotype_probe(pooled.numpy(), rows, groups, n_boot=args.boot)
        print(row(f"pooled statistics, {name}", value(probe)))


if __name__ == "__main__":
    main()
