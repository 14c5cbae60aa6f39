"""The headline metric of a task (``tasks.Task.primary_metric``) as one function
``(typed targets, score) -> float``: the same number in early stopping, the run's model
comparisons, the learning curve and the report.

Typed targets are what the trainer holds: class indices or values ``[N]``, survival
``[N, 2]`` = (time, event), segmentation masks ``[N, D, H, W]``. Every headline metric is higher-is-better.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from deepradiomics.evaluate import metrics as M
from deepradiomics.evaluate.panel import PAIRWISE_MAX_N
from deepradiomics.tasks import get_task


def _c_index(targets: np.ndarray, risk: np.ndarray) -> float:
    return M.harrell_c_index(targets[:, 0], targets[:, 1], risk)


# metric key (as in metrics.json) -> f(typed targets, score)
HEADLINE: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "auc": M.roc_auc,
    "macro_auc": M.macro_auc,
    "r2": M.r2,
    "c_index": _c_index,
    "dice": M.mean_dice,  # masks [N, D, H, W] against foreground probabilities
}


def _c_index_batch(targets: np.ndarray, risk: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return M.harrell_c_index_batch(targets[:, 0], targets[:, 1], risk, weights)


# the same metrics over a ``[B, N]`` weight matrix (bootstrap counts) in one pass
HEADLINE_BATCH: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "auc": M.roc_auc_batch,
    "macro_auc": M.macro_auc_batch,
    "r2": M.r2_batch,
    "c_index": _c_index_batch,
}


def primary_batch_metric(
    task: str, n: int
) -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None:
    """``f(targets, score, weights [B, N]) -> [B]`` of ``task``'s headline metric for ``n``
    cases; None where there is none (or the C-index's pair matrices would be too big)."""
    key = get_task(task).primary_metric
    if key == "c_index" and n > PAIRWISE_MAX_N:
        return None
    return HEADLINE_BATCH.get(key)


def primary_metric(task: str) -> Callable[[np.ndarray, np.ndarray], float]:
    """``f(targets, score)`` computing ``task``'s headline metric."""
    spec = get_task(task)
    if spec.primary_metric not in HEADLINE:
        raise ValueError(f"no per-case headline score for a {spec.name} task")
    return HEADLINE[spec.primary_metric]


def primary_score(task: str, targets: np.ndarray, score: np.ndarray) -> float:
    """The headline metric of ``score`` against typed ``targets``; ``nan`` when undefined."""
    return float(primary_metric(task)(np.asarray(targets), np.asarray(score)))
