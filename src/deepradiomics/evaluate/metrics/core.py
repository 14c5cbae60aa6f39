"""Input checks and weighted kernels shared by the metric families.

A weight matrix is ``(B, n)``: one row of case weights per bootstrap resample (see the
package docstring); ``None`` means one row of ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _vector(x: Sequence | np.ndarray, name: str, dtype: type = float) -> np.ndarray:
    a = np.asarray(x, dtype=dtype)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    return a


def _pair(y_true: Sequence, y_score: Sequence) -> tuple[np.ndarray, np.ndarray]:
    y = _vector(y_true, "y_true")
    s = _vector(y_score, "y_score")
    if len(y) != len(s):
        raise ValueError(f"y_true has {len(y)} values but y_score has {len(s)}")
    return y, s


def _binary(y_true: Sequence, y_score: Sequence) -> tuple[np.ndarray, np.ndarray]:
    y, s = _pair(y_true, y_score)
    if not np.isin(y, (0, 1)).all():
        raise ValueError("binary y_true must contain only 0 and 1")
    return y, s


def _probabilities(p: np.ndarray) -> np.ndarray:
    if ((p < 0) | (p > 1) | ~np.isfinite(p)).any():
        raise ValueError("predicted probabilities must lie in [0, 1]")
    return p


def _weight_matrix(weights: np.ndarray | None, n: int) -> np.ndarray:
    w = np.ones((1, n)) if weights is None else np.asarray(weights, dtype=float)
    w = w[None, :] if w.ndim == 1 else w
    if w.ndim != 2 or w.shape[1] != n:
        raise ValueError(f"weights must have shape (B, {n}), got {w.shape}")
    return w


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with nan where den is 0 (an undefined metric)."""
    num, den = np.broadcast_arrays(np.asarray(num, dtype=float), np.asarray(den, dtype=float))
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def weighted_mean_batch(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean of per-case values for each weight row; non-finite values are left out."""
    v = _vector(values, "values")
    w = _weight_matrix(weights, len(v))
    ok = np.isfinite(v)
    return _ratio(w[:, ok] @ v[ok], w[:, ok].sum(axis=1))


def _mann_whitney_batch(score: np.ndarray, pos_w: np.ndarray, neg_w: np.ndarray) -> np.ndarray:
    """``sum_ij P_bi N_bj ([s_i > s_j] + [s_i == s_j] / 2) / (sum P_b sum N_b)`` for each row b.

    Sort the scores once, sum the weights per block of tied scores, and count for each
    positive the negative weight below it: O(B n log n) for all rows together.
    """
    order = np.argsort(score, kind="mergesort")
    s_sorted = score[order]
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
    pos = np.add.reduceat(pos_w[:, order], starts, axis=1)
    neg = np.add.reduceat(neg_w[:, order], starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    num = (pos * (below + 0.5 * neg)).sum(axis=1)
    return _ratio(num, pos.sum(axis=1) * neg.sum(axis=1))
