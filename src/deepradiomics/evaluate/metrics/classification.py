"""Binary and multiclass discrimination: ROC AUC, threshold rates, decision thresholds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from sklearn.metrics import roc_curve

from deepradiomics.evaluate.metrics.core import (
    _binary,
    _mann_whitney_batch,
    _pair,
    _ratio,
    _vector,
    _weight_matrix,
    weighted_mean_batch,
)


def roc_auc_batch(
    y_true: Sequence, y_score: Sequence, weights: np.ndarray | None = None
) -> np.ndarray:
    """Weighted ROC AUC (Mann-Whitney with ties counted 1/2) for each weight row.

    Written by hand (not ``sklearn.metrics.roc_auc_score``) so that all bootstrap resamples
    are computed in one vectorised pass.
    """
    y, s = _binary(y_true, y_score)
    w = _weight_matrix(weights, len(y))
    return _mann_whitney_batch(s, w * y, w * (1 - y))


def roc_auc(y_true: Sequence, y_score: Sequence) -> float:
    """Area under the ROC curve; ``nan`` if only one class is present."""
    return float(roc_auc_batch(y_true, y_score)[0])


def _predicted_positive(y_score: np.ndarray, threshold: float | np.ndarray) -> np.ndarray:
    """Positive where ``score >= threshold``; ``threshold`` one number or one per case (e.g.
    each cross-validation fold's own threshold on its test cases)."""
    threshold = np.asarray(threshold, dtype=float)
    if threshold.ndim and threshold.shape != y_score.shape:
        raise ValueError(f"{threshold.shape[0]} thresholds for {len(y_score)} scores")
    return (y_score >= threshold).astype(float)


THRESHOLD_METRICS = ("sensitivity", "specificity", "balanced_accuracy", "accuracy")


def threshold_rates_batch(
    y_true: Sequence,
    y_score: Sequence,
    threshold: float | np.ndarray,
    weights: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Sensitivity, specificity, balanced accuracy and accuracy at ``score >= threshold``
    (one threshold, or one per case)."""
    y, s = _binary(y_true, y_score)
    w = _weight_matrix(weights, len(y))
    pred = _predicted_positive(s, threshold)
    tp, pos = w @ (y * pred), w @ y
    tn, neg = w @ ((1 - y) * (1 - pred)), w @ (1 - y)
    sens, spec = _ratio(tp, pos), _ratio(tn, neg)
    return {
        "sensitivity": sens,
        "specificity": spec,
        "balanced_accuracy": (sens + spec) / 2,
        "accuracy": _ratio(tp + tn, pos + neg),
    }


def sensitivity(y_true: Sequence, y_score: Sequence, threshold: float = 0.5) -> float:
    """True-positive rate when ``score >= threshold`` is called positive."""
    return float(threshold_rates_batch(y_true, y_score, threshold)["sensitivity"][0])


def specificity(y_true: Sequence, y_score: Sequence, threshold: float = 0.5) -> float:
    """True-negative rate when ``score >= threshold`` is called positive."""
    return float(threshold_rates_batch(y_true, y_score, threshold)["specificity"][0])


def balanced_accuracy(y_true: Sequence, y_score: Sequence, threshold: float = 0.5) -> float:
    """Mean of sensitivity and specificity at ``threshold``."""
    return float(threshold_rates_batch(y_true, y_score, threshold)["balanced_accuracy"][0])


def select_threshold(
    y_true: Sequence,
    y_score: Sequence,
    rule: Literal["youden", "accuracy", "fixed"] = "youden",
    value: float = 0.5,
) -> float:
    """Decision threshold chosen on validation data (a case is positive when score >= it).

    ``youden``: the score maximising sensitivity + specificity - 1 (ties: the highest such
    score); ``accuracy``: the threshold maximising accuracy, placed halfway between two
    consecutive scores so that no validation case sits on the boundary; when several such
    cut points tie (common on a small validation set) the median one (lower middle), which is
    less sensitive to single cases than either end; ``fixed``: ``value``. Falls back to
    ``value`` when only one class is present. With imbalanced classes Youden trades accuracy
    for sensitivity: use ``accuracy`` when accuracy is the figure of merit.
    """
    if rule == "fixed":
        return float(value)
    if rule not in ("youden", "accuracy"):
        raise ValueError(
            f"unknown threshold rule {rule!r} (expected 'youden', 'accuracy' or 'fixed')"
        )
    y, s = _binary(y_true, y_score)
    if y.min() == y.max():
        return float(value)
    fpr, tpr, cand = roc_curve(y, s, drop_intermediate=False)  # thresholds decreasing
    if rule == "youden":
        cand, youden = cand[1:], (tpr - fpr)[1:]  # drop the "nothing positive" threshold (inf)
        return float(cand[np.argmax(youden)])  # first maximum: the highest threshold
    n_pos = float(y.sum())
    correct = np.rint(tpr * n_pos) + np.rint((1.0 - fpr) * (len(y) - n_pos))  # counts
    # cut points: just above the top score (nothing positive), halfway between consecutive
    # scores, the lowest score itself (everything positive); decreasing like ``cand``
    cuts = np.concatenate(
        [[np.nextafter(cand[1], np.inf)], (cand[1:-1] + cand[2:]) / 2, [cand[-1]]]
    )
    best = np.flatnonzero(correct == correct.max())  # decreasing thresholds
    return float(cuts[best[::-1][(len(best) - 1) // 2]])  # lower median


def configured_threshold(y_true: Sequence, y_score: Sequence, rule: str | float) -> float:
    """``evaluate.threshold`` applied to validation data: a rule name for
    ``select_threshold`` or a fixed probability."""
    if isinstance(rule, str):
        return select_threshold(y_true, y_score, rule)  # type: ignore[arg-type]
    return float(rule)


def accuracy(y_true: Sequence, y_pred: Sequence) -> float:
    """Fraction of predicted labels equal to the true labels."""
    y, p = _pair(y_true, y_pred)
    return float(np.mean(y == p)) if len(y) else float("nan")


def _multiclass(y_true: Sequence, y_score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = _vector(y_true, "y_true", dtype=int)
    s = np.asarray(y_score, dtype=float)
    if s.ndim != 2 or s.shape[0] != len(y):
        raise ValueError(f"y_score must have shape ({len(y)}, n_classes), got {s.shape}")
    if ((y < 0) | (y >= s.shape[1])).any():
        raise ValueError(f"y_true must hold class indices 0..{s.shape[1] - 1}")
    return y, s


def macro_auc_batch(
    y_true: Sequence, y_score: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Macro-averaged one-vs-rest AUC for each weight row; ``nan`` if a class is absent."""
    y, s = _multiclass(y_true, y_score)
    per_class = [roc_auc_batch((y == k).astype(float), s[:, k], weights) for k in range(s.shape[1])]
    return np.mean(per_class, axis=0)


def macro_auc(y_true: Sequence, y_score: np.ndarray) -> float:
    """Unweighted mean over classes of the one-vs-rest ROC AUC (``y_score``: n x classes)."""
    return float(macro_auc_batch(y_true, y_score)[0])


def multiclass_accuracy_batch(
    y_true: Sequence, y_score: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Accuracy of the arg-max class for each weight row."""
    y, s = _multiclass(y_true, y_score)
    return weighted_mean_batch((np.argmax(s, axis=1) == y).astype(float), weights)
