"""The metric panel of a task, each metric with its patient-bootstrap CI.

``metric_panel(task, y_true, y_score, groups=patient_ids, ...)`` returns
``{name: {"value", "ci_low", "ci_high", "n", ...}}`` with lower-case names (the metrics.json
shape, see ``Estimate.to_dict``); ``subgroup_panels`` adds one panel per subgroup value
(e.g. per site) next to the pooled one. All metrics of a panel share the same resamples.

Inputs per task (``n`` cases, one entry per case):

- binary: ``y_true`` 0/1, ``y_score`` probability of class 1, ``threshold`` (choose it on
  validation data with ``metrics.select_threshold``): one number, or one per case when each
  cross-validation fold applies its own threshold to its test cases.
- multiclass: ``y_true`` class indices, ``y_score`` (n, classes) probabilities.
- regression: ``y_true`` and ``y_score`` values.
- survival: ``time``, ``event``, ``y_score`` risk (higher = earlier events; the log-risk of a
  Cox head). Integrated Brier score needs survival curves: ``survival`` at ``ibs_times``, or
  a ``baseline`` (``BreslowBaseline`` fitted on training log-risks) to derive them.
- segmentation: ``y_true`` and ``y_score`` sequences of masks (``y_score`` >= 0.5 is
  foreground), ``spacing`` one per-axis spacing or one per case.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from deepradiomics.evaluate import metrics as M
from deepradiomics.evaluate.bootstrap import Method, bootstrap_estimates

Panel = dict[str, dict[str, Any]]
Batch = Callable[[np.ndarray], np.ndarray]
PAIRWISE_MAX_N = 2000  # above this the O(n^2) pair matrices of the C-index kernels cost too much
_PER_CASE = ("y_true", "y_score", "groups", "time", "event", "survival", "spacing", "threshold")


def _from_batch(batch: Batch, n: int) -> Callable[[np.ndarray], np.ndarray]:
    """The point statistic on resampled indices, through the weighted kernel."""
    return lambda idx: batch(np.bincount(idx, minlength=n)[None, :])[0]


def _binary_metrics(
    y: np.ndarray, p: np.ndarray, threshold: float | np.ndarray, ece_bins: int
) -> dict:
    def rates(w: np.ndarray) -> np.ndarray:
        values = M.threshold_rates_batch(y, p, threshold, w)
        return np.column_stack([values[name] for name in M.THRESHOLD_METRICS])

    return {
        ("auc",): (None, lambda w: M.roc_auc_batch(y, p, w)),
        M.THRESHOLD_METRICS: (None, rates),
        ("brier",): (None, lambda w: M.weighted_mean_batch((p - y) ** 2, w)),
        ("calibration_slope", "calibration_intercept"): (
            None,
            lambda w: M.calibration_batch(y, p, w),
        ),
        ("ece",): (None, lambda w: M.expected_calibration_error_batch(y, p, w, ece_bins)),
    }


def _multiclass_metrics(y: np.ndarray, s: np.ndarray) -> dict:
    return {
        ("macro_auc",): (None, lambda w: M.macro_auc_batch(y, s, w)),
        ("accuracy",): (None, lambda w: M.multiclass_accuracy_batch(y, s, w)),
    }


def _regression_metrics(y: np.ndarray, p: np.ndarray) -> dict:
    return {
        ("mae",): (None, lambda w: M.weighted_mean_batch(np.abs(y - p), w)),
        ("rmse",): (None, lambda w: np.sqrt(M.weighted_mean_batch((y - p) ** 2, w))),
        ("r2",): (None, lambda w: M.r2_batch(y, p, w)),
    }


def default_auc_times(time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """Times for the time-dependent AUC: quartiles of the observed event times."""
    t = np.asarray(time, dtype=float)[np.asarray(event).astype(bool)]
    return np.unique(np.percentile(t, [25, 50, 75])) if len(t) else np.empty(0)


def default_ibs_times(time: np.ndarray, n: int = 20) -> np.ndarray:
    """Grid for the integrated Brier score: ``n`` points from the 10th to the 90th percentile
    of follow-up."""
    lo, hi = np.percentile(np.asarray(time, dtype=float), [10, 90])
    return np.unique(np.linspace(lo, hi, n))


def _survival_metrics(
    t: np.ndarray,
    e: np.ndarray,
    r: np.ndarray,
    tau: float | None,
    auc_times: np.ndarray,
    surv: np.ndarray | None,
    ibs_times: np.ndarray | None,
    train: tuple[np.ndarray, np.ndarray] | None,
) -> dict:
    # The censoring distribution stays fixed across resamples: the training data when given,
    # else the full evaluated data.
    tt, te = train if train is not None else (t, e)
    tau = M.default_tau(t) if tau is None else float(tau)
    small = len(t) <= PAIRWISE_MAX_N
    out: dict = {
        ("c_index",): (
            lambda i: M.harrell_c_index(t[i], e[i], r[i]),
            (lambda w: M.harrell_c_index_batch(t, e, r, w)) if small else None,
        ),
        ("c_index_uno",): (
            lambda i: M.uno_c_index(t[i], e[i], r[i], tau, tt, te),
            (lambda w: M.uno_c_index_batch(t, e, r, w, tau, tt, te)) if small else None,
        ),
    }
    if len(auc_times):
        names = ["td_auc"] + [f"td_auc_t{x:.4g}" for x in auc_times]
        out[tuple(names)] = (
            None,
            lambda w: M.time_dependent_auc_batch(t, e, r, auc_times, w, tt, te),
        )
    if surv is not None and ibs_times is not None:
        out[("ibs",)] = (
            None,
            lambda w: M.integrated_brier_score_batch(t, e, surv, ibs_times, w, tt, te),
        )
    return out


SEGMENTATION_METRICS = ("dice", "hd95", "volume_diff_ml", "abs_volume_diff_ml")


def segmentation_scores(
    pred_masks: Sequence[np.ndarray], true_masks: Sequence[np.ndarray], spacing: Any = None
) -> dict[str, np.ndarray]:
    """Per-case ``SEGMENTATION_METRICS``: Dice, HD95 (units of ``spacing``; ``nan`` when either
    mask is empty), predicted minus reference volume (mL, spacing in mm) and its absolute
    value. ``spacing``: None (1 per axis), one per-axis spacing, or one per case."""
    if len(pred_masks) != len(true_masks):
        raise ValueError(f"{len(pred_masks)} predicted masks but {len(true_masks)} true masks")
    per_case = spacing is not None and np.ndim(spacing) == 2
    out: dict[str, list[float]] = {name: [] for name in SEGMENTATION_METRICS}
    for i, (p, t) in enumerate(zip(pred_masks, true_masks, strict=False)):
        pm = np.asarray(p) >= 0.5 if np.asarray(p).dtype.kind == "f" else np.asarray(p).astype(bool)
        sp = spacing[i] if per_case else spacing
        vol = np.ones(pm.ndim) if sp is None else sp
        diff = M.volume_ml(pm, vol) - M.volume_ml(t, vol)
        out["dice"].append(M.dice(pm, t))
        out["hd95"].append(M.hd95(pm, t, sp))
        out["volume_diff_ml"].append(diff)
        out["abs_volume_diff_ml"].append(abs(diff))
    return {name: np.array(values, dtype=float) for name, values in out.items()}


def metric_panel(
    task: str,
    y_true: Any = None,
    y_score: Any = None,
    *,
    groups: Sequence | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    method: Method = "percentile",
    threshold: float | np.ndarray = 0.5,
    ece_bins: int = 10,
    time: Sequence | None = None,
    event: Sequence | None = None,
    tau: float | None = None,
    auc_times: Sequence[float] | None = None,
    survival: np.ndarray | None = None,
    ibs_times: Sequence[float] | None = None,
    baseline: M.BreslowBaseline | None = None,
    train_time: Sequence | None = None,
    train_event: Sequence | None = None,
    spacing: Any = None,
) -> Panel:
    """Every metric of ``task`` with its patient-bootstrap CI (see the module docstring)."""
    if task == "segmentation":
        scores = segmentation_scores(y_score, y_true, spacing)
        n = len(scores["dice"])
        # HD95 is undefined (nan) for an empty mask: such cases are left out of its mean
        specs: dict = {
            (name,): (None, lambda w, v=values: M.weighted_mean_batch(v, w))
            for name, values in scores.items()
        }
    elif task == "survival":
        if time is None or event is None or y_score is None:
            raise ValueError("a survival panel needs time, event and the risk scores (y_score)")
        t, e, r = M.check_survival(time, event, y_score)
        n = len(t)
        grid = (
            default_auc_times(t, e)
            if auc_times is None
            else np.unique(np.asarray(auc_times, float))
        )
        if survival is None and baseline is not None:
            ibs_times = default_ibs_times(t) if ibs_times is None else ibs_times
            survival = baseline.predict_survival(r, ibs_times)
        if (train_time is None) != (train_event is None):
            raise ValueError("give both train_time and train_event, or neither")
        train = None if train_time is None else M.check_survival(train_time, train_event)
        surv = None if survival is None else np.asarray(survival, dtype=float)
        grid_ibs = None if ibs_times is None else np.asarray(ibs_times, dtype=float)
        specs = _survival_metrics(t, e, r, tau, grid, surv, grid_ibs, train)
    else:
        y = np.asarray(y_true)
        s = np.asarray(y_score, dtype=float)
        n = len(y)
        if len(s) != n:
            raise ValueError(f"y_true has {n} entries but y_score has {len(s)}")
        if task == "binary":
            if np.ndim(threshold) and len(threshold) != n:
                raise ValueError(f"{len(threshold)} thresholds for {n} cases")
            specs = _binary_metrics(y.astype(float), s, threshold, ece_bins)
        elif task == "multiclass":
            specs = _multiclass_metrics(y.astype(int), s)
        elif task == "regression":
            specs = _regression_metrics(y.astype(float), s)
        else:
            raise ValueError(f"unknown task {task!r}")
    panel: Panel = {}
    for names, (statistic, batch) in specs.items():
        stat = statistic if statistic is not None else _from_batch(batch, n)
        estimates = bootstrap_estimates(
            stat,
            n,
            groups=groups,
            n_boot=n_boot,
            seed=seed,
            level=level,
            method=method,
            batch_statistic=batch,
        )
        panel.update({name: est.to_dict() for name, est in zip(names, estimates, strict=False)})
    return panel


def subgroup_panels(
    task: str, subgroup: Sequence, y_true: Any = None, y_score: Any = None, **kwargs: Any
) -> dict[str, Any]:
    """``{"pooled": panel, "subgroups": {"<value>": panel of the cases with that value}}``.

    Per-case keyword arguments (``groups``, ``time``, ``event``, ``survival``, per-case
    ``spacing`` and ``threshold``) are subset along with the predictions; the others (threshold, training
    data, times) are shared, and survival evaluation times default to the pooled ones.
    """
    labels = np.asarray(subgroup).astype(str)
    if task == "survival" and kwargs.get("auc_times") is None and kwargs.get("time") is not None:
        kwargs["auc_times"] = default_auc_times(
            np.asarray(kwargs["time"]), np.asarray(kwargs["event"])
        )
    if (
        task == "survival"
        and kwargs.get("baseline") is not None
        and kwargs.get("ibs_times") is None
    ):
        kwargs["ibs_times"] = default_ibs_times(np.asarray(kwargs["time"]))
    pooled = metric_panel(task, y_true, y_score, **kwargs)
    panels: dict[str, Panel] = {}
    per_case = {"y_true": y_true, "y_score": y_score, **kwargs}
    for value in sorted(np.unique(labels)):
        keep = np.flatnonzero(labels == value)
        sub = dict(per_case)
        for key in _PER_CASE:
            v = per_case.get(key)
            if (
                v is None
                or (key == "spacing" and np.ndim(v) != 2)
                or (key == "threshold" and np.ndim(v) != 1)
            ):
                continue
            sub[key] = [v[i] for i in keep] if isinstance(v, list) else np.asarray(v)[keep]
        panels[value] = metric_panel(task, **sub)
    return {"pooled": pooled, "subgroups": panels}
