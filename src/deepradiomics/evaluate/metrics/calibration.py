"""Calibration of predicted probabilities: Brier score, logistic recalibration, ECE."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import expit

from deepradiomics.evaluate.metrics.core import (
    _binary,
    _probabilities,
    _ratio,
    _weight_matrix,
    weighted_mean_batch,
)

_LOGIT_EPS = 1e-7


def brier_score(y_true: Sequence, y_prob: Sequence) -> float:
    """Mean squared difference between the predicted probability and the 0/1 outcome."""
    y, p = _binary(y_true, y_prob)
    return float(weighted_mean_batch((_probabilities(p) - y) ** 2, None)[0])


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(_probabilities(p), _LOGIT_EPS, 1 - _LOGIT_EPS)
    return np.log(p / (1 - p))


def _logistic_fit_batch(
    x: np.ndarray, y: np.ndarray, weights: np.ndarray, fit_slope: bool, max_iter: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted unpenalised logistic regression of ``y`` on ``x`` for each weight row:
    ``a + b*x`` (``fit_slope``) or ``a + offset(x)`` (``b`` reported as 1).

    Newton-Raphson with step halving, all rows at once; ``nan`` for rows that do not converge
    (e.g. perfectly separated outcomes) or hold one class only. Hand-written because
    scikit-learn's LogisticRegression has neither an offset term nor a batched fit.
    """
    w = weights
    rows = w.shape[0]
    design = np.column_stack([np.ones_like(x), x]) if fit_slope else np.ones((len(x), 1))
    offset = np.zeros_like(x) if fit_slope else x
    beta = np.zeros((rows, design.shape[1]))

    def loglik(b: np.ndarray, sel: np.ndarray) -> np.ndarray:
        eta = b @ design.T + offset
        return (w[sel] * (y * eta - np.logaddexp(0, eta))).sum(axis=1)

    everything = np.arange(rows)
    current = loglik(beta, everything)
    positives = w @ y
    active = (positives > 0) & (positives < w.sum(axis=1))  # both classes present
    converged = np.zeros(rows, dtype=bool)
    for _ in range(max_iter):
        idx = np.flatnonzero(active & ~converged)
        if len(idx) == 0:
            break
        b = beta[idx]
        prob = expit(b @ design.T + offset)
        grad = (w[idx] * (y - prob)) @ design
        hess = np.einsum("bn,ni,nj->bij", w[idx] * prob * (1 - prob), design, design)
        det = np.linalg.det(hess)
        singular = ~(np.abs(det) > 1e-300)
        active[idx[singular]] = False
        keep = ~singular
        idx, b, grad, hess = idx[keep], b[keep], grad[keep], hess[keep]
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        scale = np.ones(len(idx))
        trial = loglik(b + step, idx)
        for _ in range(30):  # halve the steps that lower the likelihood
            worse = trial < current[idx] - 1e-12
            if not worse.any():
                break
            scale[worse] /= 2
            trial[worse] = loglik(b[worse] + scale[worse, None] * step[worse], idx[worse])
        beta[idx] = b + scale[:, None] * step
        current[idx] = trial
        converged[idx] = np.max(np.abs(scale[:, None] * step), axis=1) < 1e-10
    ok = active & converged
    a = np.where(ok, beta[:, 0], np.nan)
    slope = np.where(ok, beta[:, 1], np.nan) if fit_slope else np.where(ok, 1.0, np.nan)
    return a, slope


def calibration_batch(
    y_true: Sequence, y_prob: Sequence, weights: np.ndarray | None = None
) -> np.ndarray:
    """``(B, 2)``: calibration slope and calibration intercept for each weight row."""
    y, p = _binary(y_true, y_prob)
    w = _weight_matrix(weights, len(y))
    x = _logit(p)
    return np.column_stack(
        [
            _logistic_fit_batch(x, y, w, fit_slope=True)[1],
            _logistic_fit_batch(x, y, w, fit_slope=False)[0],
        ]
    )


def calibration_slope(y_true: Sequence, y_prob: Sequence) -> float:
    """Slope ``b`` of the logistic recalibration ``logit P(y=1) = a + b * logit(p)``
    (1 is ideal; below 1 means over-confident predictions)."""
    y, p = _binary(y_true, y_prob)
    return float(_logistic_fit_batch(_logit(p), y, np.ones((1, len(y))), fit_slope=True)[1][0])


def calibration_intercept(y_true: Sequence, y_prob: Sequence) -> float:
    """Calibration-in-the-large: ``a`` in ``logit P(y=1) = a + logit(p)`` (slope fixed at 1,
    as recommended by Van Calster et al. 2019); 0 is ideal, > 0 means risks are too low."""
    y, p = _binary(y_true, y_prob)
    return float(_logistic_fit_batch(_logit(p), y, np.ones((1, len(y))), fit_slope=False)[0][0])


def _calibration_bins(p: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index of each probability: bins ``(lo, hi]`` on [0, 1], as in sklearn's
    ``calibration_curve``."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.searchsorted(edges[1:-1], p)


def expected_calibration_error_batch(
    y_true: Sequence, y_prob: Sequence, weights: np.ndarray | None = None, n_bins: int = 10
) -> np.ndarray:
    """ECE with ``n_bins`` equal-width bins for each weight row:
    ``sum_k |sum_{i in k} w_i (y_i - p_i)| / sum_i w_i``."""
    y, p = _binary(y_true, y_prob)
    w = _weight_matrix(weights, len(y))
    onehot = np.eye(n_bins)[_calibration_bins(_probabilities(p), n_bins)]
    gap = (w * (y - p)) @ onehot
    return _ratio(np.abs(gap).sum(axis=1), w.sum(axis=1))


def expected_calibration_error(y_true: Sequence, y_prob: Sequence, n_bins: int = 10) -> float:
    """Expected calibration error: the case-weighted mean |observed rate - mean prediction|
    over ``n_bins`` equal-width probability bins."""
    return float(expected_calibration_error_batch(y_true, y_prob, None, n_bins)[0])
