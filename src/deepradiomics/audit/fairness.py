"""Fairness across subgroups: per-group metrics with CIs and the gaps between groups.

``subgroup_audit(task, group, ...)`` describes one subgroup column (sex, age band, site,
scanner, ...) in fairlearn's ``MetricFrame`` vocabulary:

- ``overall`` and ``by_group``: each metric with its CI, plus counts per group (patients,
  cases, positives / events);
- ``difference`` (largest minus smallest group value), ``ratio`` (smallest over largest,
  for metrics that are non-negative rates or scores), ``group_min`` and ``group_max``;
- ``equalized_odds_difference`` (binary): the larger of the between-group differences in
  true-positive rate and false-positive rate (fairlearn's definition);
- ``vs_reference``: each group minus the largest compared group, a signed gap whose CI can
  straddle 0 (the absolute ``difference`` cannot, and is biased upward when the true gap
  is small: read it with the signed gaps).

A group with fewer than ``min_patients`` patients or fewer than ``min_events`` events (binary:
cases of the rarer outcome) is listed with its numbers but left out of the gaps.

Intervals come from one patient-clustered, group-stratified bootstrap: each resample draws
the patients of every group separately (a patient's group is that of its first case), so
group sizes stay fixed and a patient's cases stay together; every metric, group and gap is
evaluated on the same resamples. fairlearn computes the point values only and resamples
rows, which is why this is written here on the batch kernels of ``evaluate.metrics``;
the tests check the point values against fairlearn's ``MetricFrame``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from deepradiomics.evaluate import metrics as M
from deepradiomics.evaluate.bootstrap import interval, stratified_resample_counts
from deepradiomics.evaluate.panel import PAIRWISE_MAX_N

MISSING = "(missing)"

FAIRNESS_METRICS: dict[str, tuple[str, ...]] = {
    "binary": (
        "auc",
        "sensitivity",
        "specificity",
        "calibration_intercept",
        "calibration_slope",
        "brier",
    ),
    "survival": ("c_index",),
    "multiclass": ("macro_auc", "accuracy"),
    "regression": ("mae", "r2"),
}
# metrics whose min/max ratio means something (non-negative by construction)
RATIO_METRICS = frozenset(
    {"auc", "sensitivity", "specificity", "brier", "c_index", "macro_auc", "accuracy", "mae"}
)

Kernel = Callable[[np.ndarray], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Outcomes:
    """What the model is scored against, one entry per case (only the task's fields)."""

    task: str
    score: np.ndarray
    y_true: np.ndarray | None = None
    time: np.ndarray | None = None
    event: np.ndarray | None = None
    threshold: float | np.ndarray = 0.5  # binary: positive when score >= threshold

    def __post_init__(self) -> None:
        if self.task not in FAIRNESS_METRICS:
            raise ValueError(f"no fairness metrics for task {self.task!r}")
        needs = ("time", "event") if self.task == "survival" else ("y_true",)
        for name in needs:
            if getattr(self, name) is None:
                raise ValueError(f"a {self.task} audit needs {name}")

    def __len__(self) -> int:
        return len(self.score)

    def events(self, idx: np.ndarray) -> int | None:
        """Events of the cases ``idx``: survival events, or the rarer binary outcome."""
        if self.task == "survival":
            return int(np.sum(self.event[idx]))
        if self.task == "binary":
            pos = int(np.sum(self.y_true[idx]))
            return min(pos, len(idx) - pos)
        return None

    def kernel(self, idx: np.ndarray) -> Kernel:
        """``weights (B, len(idx)) -> {metric: (B,)}`` on the cases ``idx``."""
        s = self.score[idx]
        if self.task == "binary":
            y = self.y_true[idx].astype(float)
            cut = self.threshold if np.ndim(self.threshold) == 0 else self.threshold[idx]

            def binary(w: np.ndarray) -> dict[str, np.ndarray]:
                rates = M.threshold_rates_batch(y, s, cut, w)  # type: ignore[arg-type]
                calib = M.calibration_batch(y, s, w)
                return {
                    "auc": M.roc_auc_batch(y, s, w),
                    "sensitivity": rates["sensitivity"],
                    "specificity": rates["specificity"],
                    "calibration_intercept": calib[:, 1],
                    "calibration_slope": calib[:, 0],
                    "brier": M.weighted_mean_batch((s - y) ** 2, w),
                }

            return binary
        if self.task == "survival":
            t, e = self.time[idx], self.event[idx]
            if len(idx) <= PAIRWISE_MAX_N:  # else per resample (O(n^2) memory)
                return lambda w: {"c_index": M.harrell_c_index_batch(t, e, s, w)}
            cases = np.arange(len(idx))

            def per_row(w: np.ndarray) -> dict[str, np.ndarray]:
                out = []
                for row in np.asarray(w, dtype=int):
                    i = np.repeat(cases, row)
                    out.append(M.harrell_c_index(t[i], e[i], s[i]) if len(i) else np.nan)
                return {"c_index": np.asarray(out, dtype=float)}

            return per_row
        if self.task == "multiclass":
            y = self.y_true[idx].astype(int)
            return lambda w: {
                "macro_auc": M.macro_auc_batch(y, s, w),
                "accuracy": M.multiclass_accuracy_batch(y, s, w),
            }
        y = self.y_true[idx].astype(float)
        return lambda w: {
            "mae": M.weighted_mean_batch(np.abs(y - s), w),
            "r2": M.r2_batch(y, s, w),
        }


def _estimate(boot: np.ndarray, value: float, level: float) -> dict[str, float | None]:
    lo, hi = interval(boot, value, level) if len(boot) else (np.nan, np.nan)
    clean = lambda v: float(v) if np.isfinite(v) else None
    return {"value": clean(value), "ci_low": clean(lo), "ci_high": clean(hi)}


def _evaluate_groups(
    outcomes: Outcomes, index: dict[str, np.ndarray], weights: np.ndarray
) -> dict[str, dict[str, np.ndarray]]:
    """``{group: {metric: (B,)}}`` for a ``(B, n)`` weight matrix (``"__overall__"`` = all)."""
    with np.errstate(all="ignore"):
        return {g: outcomes.kernel(idx)(weights[:, idx]) for g, idx in index.items()}


def _gaps(
    values: dict[str, dict[str, np.ndarray]], compared: list[str], metric: str, reference: str
) -> dict[str, np.ndarray]:
    """The between-group summaries of one metric, one value per resample (nan when a
    compared group's metric is undefined in that resample)."""
    stack = np.stack([values[g][metric] for g in compared], axis=1)  # (B, groups)
    defined = np.isfinite(stack).all(axis=1)
    lo = np.where(defined, np.min(np.where(defined[:, None], stack, 0), axis=1), np.nan)
    hi = np.where(defined, np.max(np.where(defined[:, None], stack, 0), axis=1), np.nan)
    out = {"difference": hi - lo, "group_min": lo, "group_max": hi}
    if metric in RATIO_METRICS:
        with np.errstate(all="ignore"):
            out["ratio"] = np.where(hi > 0, lo / np.where(hi > 0, hi, 1), np.nan)
    for g in compared:
        out[f"vs:{g}"] = values[g][metric] - values[reference][metric]
    return out


def subgroup_audit(
    group: Sequence,
    outcomes: Outcomes,
    *,
    patients: Sequence | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    min_patients: int = 30,
    min_events: int = 10,
) -> dict[str, Any]:
    """The audit of one subgroup column (see the module docstring for the keys).

    ``group`` holds each case's group label (missing values become ``"(missing)"``);
    ``patients`` the patient id of each case (each case its own patient when None).
    """
    n = len(outcomes)
    labels = np.array([MISSING if v is None or str(v) in ("", "nan") else str(v) for v in group])
    if labels.shape != (n,):
        raise ValueError(f"group must have one label per case ({n}), got {labels.shape}")
    pid = np.arange(n).astype(str) if patients is None else np.asarray(patients).astype(str)
    metrics = FAIRNESS_METRICS[outcomes.task]
    index = {g: np.flatnonzero(labels == g) for g in sorted(set(labels.tolist()))}
    counts: dict[str, dict[str, Any]] = {}
    compared = []
    for g, idx in index.items():
        info: dict[str, Any] = {"n_cases": len(idx), "n_patients": len(set(pid[idx]))}
        if outcomes.task == "binary":
            info["n_positives"] = int(np.sum(outcomes.y_true[idx]))
        if outcomes.task == "survival":
            info["n_events"] = int(np.sum(outcomes.event[idx]))
        events = outcomes.events(idx)
        info["compared"] = info["n_patients"] >= min_patients and (
            events is None or events >= min_events
        )
        counts[g] = info
        if info["compared"]:
            compared.append(g)
    everything = {"__overall__": np.arange(n), **index}
    point = _evaluate_groups(outcomes, everything, np.ones((1, n)))
    point = {g: {m: v[m][:1] for m in metrics} for g, v in point.items()}
    chunks: list[dict[str, dict[str, np.ndarray]]] = []
    if n_boot > 0:
        for w in stratified_resample_counts(pid, labels, n, n_boot, seed):
            chunks.append(_evaluate_groups(outcomes, everything, w.astype(float)))
    boot = {
        g: {
            m: np.concatenate([c[g][m] for c in chunks]) if chunks else np.empty(0) for m in metrics
        }
        for g in everything
    }

    def estimates(g: str) -> dict[str, Any]:
        return {m: _estimate(boot[g][m], float(point[g][m][0]), level) for m in metrics}

    out: dict[str, Any] = {
        "metrics": list(metrics),
        "min_patients": min_patients,
        "min_events": min_events,
        "overall": estimates("__overall__"),
        "by_group": {g: {**counts[g], **estimates(g)} for g in index},
        "compared": compared,
        "not_compared": [g for g in index if g not in compared],
    }
    if len(compared) < 2:
        return out
    reference = max(compared, key=lambda g: (counts[g]["n_patients"], -compared.index(g)))
    out["reference"] = reference
    for key in ("difference", "ratio", "group_min", "group_max"):
        out[key] = {}
    out["vs_reference"] = {g: {} for g in compared if g != reference}
    for m in metrics:
        value = _gaps(point, compared, m, reference)
        resampled = _gaps(boot, compared, m, reference) if chunks else {}
        for key, v in value.items():
            est = _estimate(resampled.get(key, np.empty(0)), float(v[0]), level)
            if key.startswith("vs:"):
                if key[3:] != reference:
                    out["vs_reference"][key[3:]][m] = est
            else:
                out[key][m] = est
    if outcomes.task == "binary":
        # fairlearn: max(TPR difference, FPR difference); FPR = 1 - specificity
        def odds(values: dict[str, dict[str, np.ndarray]]) -> np.ndarray:
            return np.maximum(
                *(
                    _gaps(values, compared, m, reference)["difference"]
                    for m in ("sensitivity", "specificity")
                )
            )

        value = odds(point)[0]
        resampled = odds(boot) if chunks else np.empty(0)
        out["equalized_odds_difference"] = _estimate(resampled, float(value), level)
    return out
