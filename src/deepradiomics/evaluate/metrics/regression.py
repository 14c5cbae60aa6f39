"""Regression errors and the coefficient of determination."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from deepradiomics.evaluate.metrics.core import _pair, _ratio, _weight_matrix, weighted_mean_batch


def mae(y_true: Sequence, y_pred: Sequence) -> float:
    """Mean absolute error."""
    y, p = _pair(y_true, y_pred)
    return float(weighted_mean_batch(np.abs(y - p), None)[0])


def rmse(y_true: Sequence, y_pred: Sequence) -> float:
    """Root mean squared error."""
    y, p = _pair(y_true, y_pred)
    return float(np.sqrt(weighted_mean_batch((y - p) ** 2, None)[0]))


def r2_batch(y_true: Sequence, y_pred: Sequence, weights: np.ndarray | None = None) -> np.ndarray:
    """Coefficient of determination for each weight row; ``nan`` when y_true is constant."""
    y, p = _pair(y_true, y_pred)
    w = _weight_matrix(weights, len(y))
    mean = _ratio(w @ y, w.sum(axis=1))
    ss_tot = (w * (y[None, :] - mean[:, None]) ** 2).sum(axis=1)
    ss_res = w @ ((y - p) ** 2)
    return 1 - _ratio(ss_res, ss_tot)


def r2(y_true: Sequence, y_pred: Sequence) -> float:
    """Coefficient of determination (1 - SS_res / SS_tot)."""
    return float(r2_batch(y_true, y_pred)[0])
