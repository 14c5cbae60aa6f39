"""Survival: concordance (Harrell, Uno), time-dependent AUC, integrated Brier score, Breslow.

``risk`` is higher for worse prognosis (earlier events); ``time`` and ``event`` (1 = event,
0 = censored) are the observed follow-up. Metrics that need the censoring distribution
(Uno's C, time-dependent AUC, Brier score) estimate it from ``train_time``/``train_event``
when given, else from the evaluated data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
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

from deepradiomics.evaluate.metrics.core import (
    _mann_whitney_batch,
    _ratio,
    _vector,
    _weight_matrix,
)


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
