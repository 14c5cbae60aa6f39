"""Metrics as plain functions: ``(y_true, y_score, ...) -> float`` or a small dataclass.

No I/O and no hidden state. A metric that is undefined for the data it is given (one class
only, no comparable survival pairs, an empty mask) returns ``nan``; malformed input (shapes,
probabilities outside [0, 1]) raises ``ValueError``.

Some metrics also have a ``*_batch`` kernel taking a ``(B, n)`` matrix of case weights and
returning ``(B,)`` values. With integer weights (how often a case was drawn) it equals the
metric on the resampled data, so the patient bootstrap (``evaluate.bootstrap``) can evaluate
all resamples in one vectorised call instead of ``B`` Python calls.

Survival conventions: ``risk`` is higher for worse prognosis (earlier events); ``time`` and
``event`` (1 = event, 0 = censored) are the observed follow-up. Metrics that need the
censoring distribution (Uno's C, time-dependent AUC, Brier score) estimate it from
``train_time``/``train_event`` when given, else from the evaluated data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage, sparse
from scipy.special import expit
from sklearn.metrics import roc_curve
from sksurv.exceptions import NoComparablePairException
from sksurv.linear_model.coxph import BreslowEstimator
from sksurv.metrics import (
    concordance_index_censored,
    concordance_index_ipcw,
    cumulative_dynamic_auc,
)
from sksurv.metrics import (
    integrated_brier_score as _sksurv_ibs,
)
from sksurv.nonparametric import CensoringDistributionEstimator
from sksurv.util import Surv

_LOGIT_EPS = 1e-7


# --------------------------------------------------------------------------- helpers


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


# --------------------------------------------------------------------------- binary


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


def _predicted_positive(y_score: np.ndarray, threshold: float) -> np.ndarray:
    return (y_score >= threshold).astype(float)


THRESHOLD_METRICS = ("sensitivity", "specificity", "balanced_accuracy", "accuracy")


def threshold_rates_batch(
    y_true: Sequence, y_score: Sequence, threshold: float, weights: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Sensitivity, specificity, balanced accuracy and accuracy at ``score >= threshold``."""
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
    cuts = np.concatenate([[np.nextafter(cand[1], np.inf)], (cand[1:-1] + cand[2:]) / 2,
                           [cand[-1]]])
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


# --------------------------------------------------------------------------- multiclass


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


# --------------------------------------------------------------------------- regression


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


# --------------------------------------------------------------------------- survival


def check_survival(
    time: Sequence, event: Sequence, risk: Sequence | None = None
) -> tuple[np.ndarray, ...]:
    """``(time, event as bool[, risk])`` as arrays; ``ValueError`` if malformed."""
    t = _vector(time, "time")
    e = _vector(event, "event")
    if len(e) != len(t):
        raise ValueError(f"time has {len(t)} values but event has {len(e)}")
    if not np.isin(e, (0, 1)).all():
        raise ValueError("event must contain only 0 (censored) and 1 (event)")
    if not np.isfinite(t).all() or (t < 0).any():
        raise ValueError("survival times must be finite and non-negative")
    if risk is None:
        return t, e.astype(bool)
    r = _vector(risk, "risk")
    if len(r) != len(t):
        raise ValueError(f"time has {len(t)} values but risk has {len(r)}")
    return t, e.astype(bool), r


def _train_struct(
    time: np.ndarray, event: np.ndarray, train_time: Sequence | None, train_event: Sequence | None
) -> np.ndarray:
    if (train_time is None) != (train_event is None):
        raise ValueError("give both train_time and train_event, or neither")
    if train_time is None:
        return Surv.from_arrays(event, time)
    tt, te = check_survival(train_time, train_event)
    return Surv.from_arrays(te, tt)


def harrell_c_index(time: Sequence, event: Sequence, risk: Sequence) -> float:
    """Harrell's concordance index (scikit-survival's ``concordance_index_censored``);
    ``nan`` without comparable pairs."""
    t, e, r = check_survival(time, event, risk)
    try:
        return float(concordance_index_censored(e, t, r)[0])
    except (NoComparablePairException, ValueError):  # input is checked: the data are degenerate
        return float("nan")


def _comparable_pairs(t: np.ndarray, e: np.ndarray) -> np.ndarray:
    """``[i, j]`` is True when case i had an event before case j's time (or j was censored at
    the same time): the pairs Harrell's and Uno's C count (same rule as scikit-survival)."""
    earlier = t[:, None] < t[None, :]
    tie_censored = (t[:, None] == t[None, :]) & ~e[None, :]
    return e[:, None] & (earlier | tie_censored)


def _concordance(r: np.ndarray, tied_tol: float = 1e-8) -> np.ndarray:
    diff = r[:, None] - r[None, :]
    tied = np.abs(diff) <= tied_tol
    return np.where(tied, 0.5, (diff > 0).astype(float))


def _pairwise_ratio_batch(
    num_pairs: np.ndarray, den_pairs: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """``sum_ij w_i w_j N_ij / sum_ij w_i w_j D_ij`` for each weight row (O(B n^2))."""
    num = ((weights @ num_pairs) * weights).sum(axis=1)
    den = ((weights @ den_pairs) * weights).sum(axis=1)
    return _ratio(num, den)


def harrell_c_index_batch(
    time: Sequence, event: Sequence, risk: Sequence, weights: np.ndarray | None = None
) -> np.ndarray:
    """Harrell's C for each weight row, as a ratio of pair-weighted sums (memory O(n^2))."""
    t, e, r = check_survival(time, event, risk)
    w = _weight_matrix(weights, len(t))
    comp = _comparable_pairs(t, e).astype(float)
    return _pairwise_ratio_batch(comp * _concordance(r), comp, w)


def default_tau(time: np.ndarray) -> float:
    """Default truncation time of Uno's C: the 90th percentile of follow-up."""
    return float(np.percentile(time, 90))


def uno_c_index(
    time: Sequence,
    event: Sequence,
    risk: Sequence,
    tau: float | None = None,
    train_time: Sequence | None = None,
    train_event: Sequence | None = None,
) -> float:
    """Uno's IPCW concordance index truncated at ``tau`` (default: the 90th percentile of the
    follow-up times), via scikit-survival's ``concordance_index_ipcw``."""
    t, e, r = check_survival(time, event, risk)
    tau = default_tau(t) if tau is None else float(tau)
    try:
        return float(
            concordance_index_ipcw(
                _train_struct(t, e, train_time, train_event), Surv.from_arrays(e, t), r, tau
            )[0]
        )
    except (NoComparablePairException, ValueError):
        return float("nan")


def uno_c_index_batch(
    time: Sequence,
    event: Sequence,
    risk: Sequence,
    weights: np.ndarray | None = None,
    tau: float | None = None,
    train_time: Sequence | None = None,
    train_event: Sequence | None = None,
) -> np.ndarray:
    """Uno's C for each weight row with the censoring distribution held fixed
    (estimated once from the training data, or the unweighted evaluated data)."""
    t, e, r = check_survival(time, event, risk)
    w = _weight_matrix(weights, len(t))
    tau = default_tau(t) if tau is None else float(tau)
    cens = CensoringDistributionEstimator().fit(_train_struct(t, e, train_time, train_event))
    use = e & (t < tau)
    try:
        g = cens.predict_proba(t[use])
    except ValueError:  # a test event after the last training time
        g = np.zeros(1)
    if (g <= 0).any():
        return np.full(w.shape[0], np.nan)
    ipcw2 = np.zeros(len(t))
    ipcw2[use] = 1.0 / g**2
    comp = _comparable_pairs(t, e).astype(float) * ipcw2[:, None]
    return _pairwise_ratio_batch(comp * _concordance(r), comp, w)


@dataclass(frozen=True)
class TimeDependentAUC:
    """Cumulative/dynamic AUC at each time and its mean weighted by the event-time density."""

    times: np.ndarray
    auc: np.ndarray
    mean_auc: float


def time_dependent_auc(
    time: Sequence,
    event: Sequence,
    risk: Sequence,
    times: Sequence[float],
    train_time: Sequence | None = None,
    train_event: Sequence | None = None,
) -> TimeDependentAUC:
    """Cumulative/dynamic AUC (scikit-survival's ``cumulative_dynamic_auc``): cases had an
    event by ``t`` (IPCW-weighted), controls are still event-free after ``t``. ``nan`` where
    a time lies outside the follow-up or a side is empty."""
    t, e, r = check_survival(time, event, risk)
    grid = np.unique(np.asarray(times, dtype=float))
    train = _train_struct(t, e, train_time, train_event)
    # Events after the last evaluation time only ever act as controls and do not change the
    # Kaplan-Meier weights up to it, but scikit-survival would still need their censoring
    # weights and fails where those are 0 (e.g. an event tied with the last censoring).
    # Marking them censored gives the same AUCs without that failure.
    test = Surv.from_arrays(e & (t <= grid.max()), t) if len(grid) else Surv.from_arrays(e, t)
    try:
        auc, mean = cumulative_dynamic_auc(train, test, r, grid)
    except ValueError:
        return TimeDependentAUC(grid, np.full(len(grid), np.nan), float("nan"))
    return TimeDependentAUC(grid, np.asarray(auc, dtype=float), float(mean))


def _censoring_weights(
    t: np.ndarray,
    e: np.ndarray,
    train_time: Sequence | None,
    train_event: Sequence | None,
    at: np.ndarray,
) -> np.ndarray | None:
    """Censoring survival G at ``at`` (KM of the training data, else of the evaluated data);
    None where scikit-survival would refuse (a time after the last training time)."""
    cens = CensoringDistributionEstimator().fit(_train_struct(t, e, train_time, train_event))
    try:
        return cens.predict_proba(np.asarray(at, dtype=float))
    except ValueError:
        return None


def _times_outside_followup(t: np.ndarray, w: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Rows whose resampled follow-up does not cover ``grid`` (scikit-survival's check)."""
    present = w > 0
    t_max = np.where(present, t[None, :], -np.inf).max(axis=1)
    t_min = np.where(present, t[None, :], np.inf).min(axis=1)
    return (grid.max() >= t_max) | (grid.min() < t_min)


def time_dependent_auc_batch(
    time: Sequence,
    event: Sequence,
    risk: Sequence,
    times: Sequence[float],
    weights: np.ndarray | None = None,
    train_time: Sequence | None = None,
    train_event: Sequence | None = None,
) -> np.ndarray:
    """``(B, 1 + len(times))``: mean cumulative/dynamic AUC, then the AUC at each time, for
    each weight row, with the censoring distribution held fixed. Same definition as
    :func:`time_dependent_auc` (risk ties count 1/2; mean weighted by the Kaplan-Meier
    event-time density of the weighted data)."""
    t, e, r = check_survival(time, event, risk)
    w = _weight_matrix(weights, len(t))
    grid = np.unique(np.asarray(times, dtype=float))
    out = np.full((w.shape[0], 1 + len(grid)), np.nan)
    if len(grid) == 0:
        return out
    cases_ever = e & (t <= grid.max())
    g = _censoring_weights(t, e, train_time, train_event, t[cases_ever])
    if g is None:
        return out
    ipcw = np.zeros(len(t))
    ipcw[cases_ever] = np.divide(1.0, g, out=np.full(len(g), np.nan), where=g > 0)
    for k, tk in enumerate(grid):
        case = cases_ever & (t <= tk)
        out[:, 1 + k] = _mann_whitney_batch(r, w * np.where(case, ipcw, 0.0), w * (t > tk))
    # weighted Kaplan-Meier of the evaluated data at the grid times
    uniq, inv = np.unique(t, return_inverse=True)
    onehot = sparse.csr_matrix(
        (np.ones(len(t)), (np.arange(len(t)), inv)), shape=(len(t), len(uniq))
    )
    d = np.asarray((w * e) @ onehot)  # event weight at each distinct time
    total = np.asarray(w @ onehot)
    at_risk = np.cumsum(total[:, ::-1], axis=1)[:, ::-1]
    km = np.cumprod(1 - _ratio(d, at_risk), axis=1)
    km = np.where(np.isnan(km), 0.0, km)
    idx = np.searchsorted(uniq, grid, side="right") - 1
    s_grid = np.where(idx >= 0, km[:, np.clip(idx, 0, None)], 1.0)
    dens = -np.diff(np.column_stack([np.ones(w.shape[0]), s_grid]), axis=1)
    if len(grid) == 1:
        out[:, 0] = out[:, 1]
    else:
        out[:, 0] = _ratio((out[:, 1:] * dens).sum(axis=1), 1 - s_grid[:, -1])
    if (g <= 0).any():  # rows holding a case whose censoring weight is undefined
        bad = np.flatnonzero(cases_ever)[g <= 0]
        out[w[:, bad].sum(axis=1) > 0] = np.nan
    out[_times_outside_followup(t, w, grid)] = np.nan
    return out


def integrated_brier_score(
    time: Sequence,
    event: Sequence,
    survival: np.ndarray,
    times: Sequence[float],
    train_time: Sequence | None = None,
    train_event: Sequence | None = None,
) -> float:
    """IPCW integrated Brier score (scikit-survival) of survival-probability predictions
    ``survival[i, k] = S(times[k] | case i)``; needs at least two increasing times within
    the follow-up, else ``nan``."""
    t, e = check_survival(time, event)
    grid = np.asarray(times, dtype=float)
    surv = np.asarray(survival, dtype=float)
    if surv.shape != (len(t), len(grid)):
        raise ValueError(f"survival must have shape ({len(t)}, {len(grid)}), got {surv.shape}")
    if len(grid) < 2 or (np.diff(grid) <= 0).any():
        raise ValueError("times must hold at least two strictly increasing values")
    try:
        return float(
            _sksurv_ibs(
                _train_struct(t, e, train_time, train_event), Surv.from_arrays(e, t), surv, grid
            )
        )
    except ValueError:
        return float("nan")


def integrated_brier_score_batch(
    time: Sequence,
    event: Sequence,
    survival: np.ndarray,
    times: Sequence[float],
    weights: np.ndarray | None = None,
    train_time: Sequence | None = None,
    train_event: Sequence | None = None,
) -> np.ndarray:
    """:func:`integrated_brier_score` for each weight row, censoring distribution fixed."""
    t, e = check_survival(time, event)
    grid = np.asarray(times, dtype=float)
    surv = np.asarray(survival, dtype=float)
    w = _weight_matrix(weights, len(t))
    if surv.shape != (len(t), len(grid)):
        raise ValueError(f"survival must have shape ({len(t)}, {len(grid)}), got {surv.shape}")
    if len(grid) < 2 or (np.diff(grid) <= 0).any():
        raise ValueError("times must hold at least two strictly increasing values")
    g = _censoring_weights(t, e, train_time, train_event, np.r_[t, grid])
    if g is None:
        return np.full(w.shape[0], np.nan)
    # like scikit-survival: a zero censoring survival makes its term vanish (1/inf)
    inv = np.divide(1.0, g, out=np.zeros(len(g)), where=g > 0)
    inv_t, inv_grid = inv[: len(t)], inv[len(t) :]
    case = (t[:, None] <= grid[None, :]) & e[:, None]
    control = t[:, None] > grid[None, :]
    per_case = surv**2 * case * inv_t[:, None] + (1 - surv) ** 2 * control * inv_grid[None, :]
    brier = _ratio(w @ per_case, w.sum(axis=1)[:, None])
    ibs = np.trapezoid(brier, grid, axis=1) / (grid[-1] - grid[0])
    ibs[_times_outside_followup(t, w, grid)] = np.nan
    return ibs


class BreslowBaseline:
    """Breslow baseline hazard, to turn Cox-type log-risks into survival curves.

    Fit on the TRAINING cases' predicted log-risks (the network's Cox head output), then
    ``S(t | x) = S0(t) ** exp(log_risk(x))``. Wraps scikit-survival's ``BreslowEstimator``;
    before the first observed time the cumulative hazard is 0, after the last it stays flat.
    """

    def fit(self, log_risk: Sequence, time: Sequence, event: Sequence) -> BreslowBaseline:
        t, e, r = check_survival(time, event, log_risk)
        if not e.any():
            raise ValueError("the Breslow estimator needs at least one event")
        estimator = BreslowEstimator().fit(r, e, t)
        self.times_ = np.asarray(estimator.cum_baseline_hazard_.x, dtype=float)
        self.cum_hazard_ = np.asarray(estimator.cum_baseline_hazard_.y, dtype=float)
        return self

    def baseline_cumulative_hazard(self, times: Sequence[float]) -> np.ndarray:
        idx = np.searchsorted(self.times_, np.asarray(times, dtype=float), side="right") - 1
        return np.where(idx >= 0, self.cum_hazard_[np.clip(idx, 0, None)], 0.0)

    def predict_survival(self, log_risk: Sequence, times: Sequence[float]) -> np.ndarray:
        """``(n_cases, n_times)`` survival probabilities."""
        r = _vector(log_risk, "log_risk")
        with np.errstate(over="ignore"):  # exp of a huge log-risk: survival 0, as it should be
            return np.exp(-np.exp(r)[:, None] * self.baseline_cumulative_hazard(times)[None, :])


# --------------------------------------------------------------------------- segmentation


def _masks(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, t = np.asarray(pred).astype(bool), np.asarray(true).astype(bool)
    if p.shape != t.shape:
        raise ValueError(f"masks differ in shape: prediction {p.shape}, truth {t.shape}")
    return p, t


def dice(pred: np.ndarray, true: np.ndarray) -> float:
    """Dice overlap 2|P & T| / (|P| + |T|) of two binary masks; 1 when both are empty."""
    p, t = _masks(pred, true)
    total = p.sum() + t.sum()
    return 1.0 if total == 0 else float(2 * np.logical_and(p, t).sum() / total)


def _surface(mask: np.ndarray) -> np.ndarray:
    """Boundary voxels: the mask minus its erosion (outside the array counts as background)."""
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def hd95(pred: np.ndarray, true: np.ndarray, spacing: Sequence[float] | None = None) -> float:
    """95th-percentile symmetric Hausdorff distance between the mask surfaces, in the units of
    ``spacing`` (per array axis; default 1). ``nan`` if either mask is empty.

    Same definition as MONAI's ``compute_hausdorff_distance(percentile=95)``: the larger of
    the two directed 95th percentiles of surface-to-surface distances. Computed with scipy's
    exact Euclidean distance transform on the bounding box of both masks.
    """
    p, t = _masks(pred, true)
    if not p.any() or not t.any():
        return float("nan")
    sampling = np.ones(p.ndim) if spacing is None else np.asarray(spacing, dtype=float)
    if sampling.shape != (p.ndim,):
        raise ValueError(f"spacing must have {p.ndim} values, got {sampling.tolist()}")
    idx = np.argwhere(p | t)
    box = tuple(slice(lo, hi + 1) for lo, hi in zip(idx.min(axis=0), idx.max(axis=0)))
    p_edge, t_edge = _surface(p[box]), _surface(t[box])  # nothing of either mask lies outside
    to_true = ndimage.distance_transform_edt(~t_edge, sampling=sampling)[p_edge]
    to_pred = ndimage.distance_transform_edt(~p_edge, sampling=sampling)[t_edge]
    return float(max(np.percentile(to_true, 95), np.percentile(to_pred, 95)))
