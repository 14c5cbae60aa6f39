"""Predicted-risk groups for survival: split at the median risk, Kaplan-Meier, log-rank.

The split uses the median of the out-of-fold risks themselves (each was predicted by a
model that did not see the case, so the grouping is not fitted to the test outcomes beyond
the choice of the median). Risk at or below the median is "low", above it "high".
Kaplan-Meier curves and the log-rank test come from scikit-survival.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GroupCurve:
    label: str
    n: int
    events: int
    time: np.ndarray  # step times, after a first point (0, 1) before any event
    survival: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray


@dataclass(frozen=True)
class RiskGroups:
    """Low/high predicted-risk groups of one model with their KM curves and log-rank test."""

    threshold: float  # the median risk
    curves: list[GroupCurve]
    chisq: float
    p_value: float  # nan when one group is empty


def median_split(risk: np.ndarray) -> tuple[np.ndarray, float]:
    """``high`` mask (risk above the median) and the median."""
    r = np.asarray(risk, dtype=float)
    median = float(np.median(r))
    return r > median, median


def _curve(label: str, time: np.ndarray, event: np.ndarray) -> GroupCurve:
    from sksurv.nonparametric import kaplan_meier_estimator

    t, s, ci = kaplan_meier_estimator(event, time, conf_type="log-log")

    def pad(a: np.ndarray, v: float) -> np.ndarray:  # each curve starts at S = 1
        return np.concatenate([[v], a])

    return GroupCurve(
        label,
        len(time),
        int(event.sum()),
        pad(t, min(0.0, float(t[0]))),
        pad(s, 1.0),
        pad(ci[0], 1.0),
        pad(ci[1], 1.0),
    )


def risk_groups(time: np.ndarray, event: np.ndarray, risk: np.ndarray) -> RiskGroups:
    """Median split of ``risk``, the KM curve of each group and the log-rank test between them.

    Cases with a missing time, event or risk are left out.
    """
    from sksurv.compare import compare_survival
    from sksurv.util import Surv

    t = np.asarray(time, dtype=float)
    e = np.asarray(event, dtype=float)
    r = np.asarray(risk, dtype=float)
    keep = np.isfinite(t) & np.isfinite(e) & np.isfinite(r)
    t, e, r = t[keep], e[keep].astype(bool), r[keep]
    high, median = median_split(r)
    curves = [
        _curve(name, t[mask], e[mask])
        for name, mask in (("low risk", ~high), ("high risk", high))
        if mask.any()
    ]
    if len(curves) < 2 or not e.any():
        return RiskGroups(median, curves, float("nan"), float("nan"))
    chisq, p = compare_survival(Surv.from_arrays(e, t), high.astype(int))
    return RiskGroups(median, curves, float(chisq), float(p))
