"""Paired comparison of two predictors evaluated on the same cases.

- :func:`paired_difference`: bootstrap CI of ``metric(a) - metric(b)`` with the SAME patient
  resamples for both predictors (paired), valid for any metric and for several cases per
  patient.
- :func:`delong_test`: DeLong's test for two correlated ROC AUCs, with the fast midrank
  algorithm of Sun & Xu (2014). It assumes independent cases: with several cases per
  patient prefer :func:`paired_difference` with ``groups``.

scikit-learn and scikit-survival have no DeLong test, hence the hand-written version.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm, rankdata

from deepradiomics.evaluate.bootstrap import Estimate, Method, bootstrap_with_distribution

Outcome = np.ndarray | Sequence[np.ndarray]


@dataclass(frozen=True)
class PairedComparison:
    """``difference`` = metric(a) - metric(b) with its paired-bootstrap interval; ``p_value``
    is the two-sided bootstrap p-value for no difference (twice the smaller tail share)."""

    value_a: float
    value_b: float
    difference: Estimate
    p_value: float


def _outcome_columns(y_true: Outcome) -> list[np.ndarray]:
    """``y_true`` as a list of per-case arrays (a tuple such as ``(time, event)`` stays a tuple)."""
    if isinstance(y_true, tuple | list):
        return [np.asarray(a) for a in y_true]
    return [np.asarray(y_true)]


def paired_difference(
    metric: Callable[..., float],
    y_true: Outcome,
    score_a: np.ndarray,
    score_b: np.ndarray,
    *,
    groups: Sequence | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    method: Method = "percentile",
    batch_metric: Callable[..., np.ndarray] | None = None,
) -> PairedComparison:
    """Paired patient-bootstrap comparison of two predictors.

    ``metric(*y_true_columns, score) -> float`` (e.g. ``roc_auc(y, s)`` or
    ``harrell_c_index(time, event, risk)`` with ``y_true=(time, event)``);
    ``batch_metric(*y_true_columns, score, weights) -> (B,)`` optionally vectorises it.
    """
    cols = _outcome_columns(y_true)
    a, b = np.asarray(score_a), np.asarray(score_b)
    n = len(cols[0])
    if len(a) != n or len(b) != n or any(len(c) != n for c in cols):
        raise ValueError("y_true, score_a and score_b must describe the same cases")

    def on(score: np.ndarray, idx: np.ndarray) -> float:
        return float(metric(*[c[idx] for c in cols], score[idx]))

    def diff(idx: np.ndarray) -> float:
        return on(a, idx) - on(b, idx)

    batch = None
    if batch_metric is not None:
        batch = lambda w: batch_metric(*cols, a, w) - batch_metric(*cols, b, w)
    estimate, boot = bootstrap_with_distribution(
        diff,
        n,
        groups=groups,
        n_boot=n_boot,
        seed=seed,
        level=level,
        method=method,
        batch_statistic=batch,
    )
    estimate, finite = estimate[0], boot[:, 0][np.isfinite(boot[:, 0])]
    p = float("nan")
    if len(finite):
        p = float(min(1.0, 2 * min(np.mean(finite <= 0), np.mean(finite >= 0))))
    everything = np.arange(n)
    return PairedComparison(on(a, everything), on(b, everything), estimate, p)


@dataclass(frozen=True)
class DeLongResult:
    auc_a: float
    auc_b: float
    covariance: np.ndarray  # 2 x 2 DeLong covariance of (auc_a, auc_b)
    z: float
    p_value: float  # two-sided, H0: equal AUCs

    @property
    def difference(self) -> float:
        return self.auc_a - self.auc_b

    @property
    def se_difference(self) -> float:
        c = self.covariance
        return float(np.sqrt(max(c[0, 0] + c[1, 1] - 2 * c[0, 1], 0.0)))


def delong_covariance(y_true: Sequence, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of each row of ``scores`` (k x n) and their DeLong covariance (k x k).

    Fast DeLong (Sun & Xu 2014): the structural components come from midranks within the
    positives, within the negatives and over all cases, O(k n log n) instead of O(k m n).
    """
    y = np.asarray(y_true, dtype=float)
    s = np.atleast_2d(np.asarray(scores, dtype=float))
    if s.shape[1] != len(y) or not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must be 0/1 with one entry per column of scores")
    pos, neg = s[:, y == 1], s[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    if m < 2 or n < 2:
        raise ValueError("DeLong's variance needs at least 2 positive and 2 negative cases")
    rank_pos = rankdata(pos, axis=1)
    rank_neg = rankdata(neg, axis=1)
    rank_all = rankdata(np.hstack([pos, neg]), axis=1)
    auc = (rank_all[:, :m].sum(axis=1) - m * (m + 1) / 2) / (m * n)
    v_pos = (rank_all[:, :m] - rank_pos) / n  # share of negatives each positive outranks
    v_neg = 1 - (rank_all[:, m:] - rank_neg) / m  # share of positives outranking each negative
    cov = np.atleast_2d(np.cov(v_pos)) / m + np.atleast_2d(np.cov(v_neg)) / n
    return auc, cov


def delong_test(y_true: Sequence, score_a: Sequence, score_b: Sequence) -> DeLongResult:
    """DeLong's test of equal AUC for two predictors scored on the same (independent) cases."""
    auc, cov = delong_covariance(y_true, np.vstack([score_a, score_b]))
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    diff = auc[0] - auc[1]
    if var <= 0:
        z = 0.0 if diff == 0 else float(np.sign(diff) * np.inf)
    else:
        z = float(diff / np.sqrt(var))
    return DeLongResult(float(auc[0]), float(auc[1]), cov, z, float(2 * norm.sf(abs(z))))
