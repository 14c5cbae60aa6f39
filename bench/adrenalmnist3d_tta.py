"""Validation AUC of a trained AdrenalMNIST3D run under three test-time augmentations.

    .venv/bin/python bench/adrenalmnist3d_tta.py RUN [RUN ...] [--threads 1]

RUN is a ``deepradiomics train`` folder (``config.yaml``, ``best.pt``). Each run's kept
weights score the *validation* split only (the test split is not loaded) with: no TTA, the
8 flips the recipe uses (``train.tta``), and all 48 signed axis permutations (the cube's
symmetry group, which the training augmentation draws from). A Markdown row per run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from deepradiomics.augment.symmetry import permute_exact, signed_permutations
from deepradiomics.config import load_config
from deepradiomics.dataset.npz import load_npz
from deepradiomics.evaluate.metrics.classification import roc_auc
from deepradiomics.io.weights import read_weights
from deepradiomics.models import build_from_config


def symmetry_scores(model: torch.nn.Module, images: torch.Tensor) -> np.ndarray:
    """``[48, N]`` probabilities, one row per signed permutation (identity first)."""
    rows = []
    with torch.no_grad():
        for m in signed_permutations():
            batch = m.expand(len(images), 3, 3)
            moved, _ = permute_exact(images, None, batch)
            out = [
                torch.sigmoid(model(moved[s : s + 16], None)["out"]).flatten()
                for s in range(0, len(images), 16)
            ]
            rows.append(torch.cat(out).numpy())
    return np.array(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    flips = np.array([bool(torch.equal(m.abs(), torch.eye(3))) for m in signed_permutations()])
    print("| run | seed | best_epoch | val AUC, no TTA | 8 flips | 48 symmetries |")
    print("|---|---|---|---|---|---|")
    for run in args.runs:
        cfg = load_config(run / "config.yaml")
        val = load_npz(cfg.cohort.path)["val"]
        classes = len(cfg.cohort.classes or [0, 1])
        model = build_from_config(cfg, "binary", val.images.shape[1], classes, (1.0, 1.0, 1.0))
        saved = read_weights(run / "best.pt")
        model.load_state_dict(saved["model"])
        model.eval()
        scores = symmetry_scores(model, val.images)
        y = val.targets.numpy()
        aucs = [
            roc_auc(y, scores[0]),
            roc_auc(y, scores[flips].mean(0)),
            roc_auc(y, scores.mean(0)),
        ]
        cells = " | ".join(f"{a:.4f}" for a in aucs)
        print(f"| {run} | {cfg.seed} | {saved['epoch']} | {cells} |")


if __name__ == "__main__":
    main()
