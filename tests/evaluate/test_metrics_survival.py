"""Survival metrics: each wrapped scikit-survival function is checked against an independent
hand computation (written out below from the published definitions) or lifelines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from lifelines.utils import concordance_index as lifelines_cindex
from sksurv.metrics import concordance_index_censored, concordance_index_ipcw
from sksurv.util import Surv

from deepradiomics.evaluate import metrics as M
from tests.conftest import shared_path


def survival_data(n: int = 150, seed: int = 0, ties: bool = True):
    rng = np.random.default_rng(seed)
    risk = rng.normal(0, 1, n)
    t_event = rng.exponential(10 * np.exp(-0.8 * risk))
    t_cens = rng.uniform(2, 25, n)
    time = np.minimum(t_event, t_cens)
    event = (t_event <= t_cens).astype(int)
    if ties:
        time = np.ceil(time)
        risk = np.round(risk, 1)
    return time, event, risk


# ---- independent reference implementations ---------------------------------------------


def hand_harrell(time, event, risk):
    num = den = 0.0
    for i in range(len(time)):
        if not event[i]:
            continue
        for j in range(len(time)):
            if time[i] < time[j] or (time[i] == time[j] and not event[j] and i != j):
                den += 1
                num += 1.0 if risk[i] > risk[j] else 0.5 if risk[i] == risk[j] else 0.0
    return num / den


def step(times, values, t, before=1.0):
    idx = np.searchsorted(times, t, side="right") - 1
    return np.where(idx >= 0, values[np.clip(idx, 0, None)], before)


def hand_censoring_km(time, event):
    """G(t) = P(C > t), reverse Kaplan-Meier; at tied times events leave the risk set first."""
    ut = np.unique(time)
    g, out = 1.0, []
    for u in ut:
        at_risk = np.sum(time >= u) - np.sum((time == u) & (event == 1))
        cens = np.sum((time == u) & (event == 0))
        if at_risk > 0:
            g *= 1 - cens / at_risk
        out.append(g)
    return lambda t: step(ut, np.array(out), t)


def hand_km(time, event):
    ut = np.unique(time)
    s, out = 1.0, []
    for u in ut:
        s *= 1 - np.sum((time == u) & (event == 1)) / np.sum(time >= u)
        out.append(s)
    return lambda t: step(ut, np.array(out), t)


def hand_uno(time, event, risk, tau, G):
    num = den = 0.0
    for i in range(len(time)):
        if not event[i] or time[i] >= tau:
            continue
        w = 1 / G(time[i]) ** 2
        for j in range(len(time)):
            if time[i] < time[j] or (time[i] == time[j] and not event[j] and i != j):
                den += w
                num += w * (1.0 if risk[i] > risk[j] else 0.5 if risk[i] == risk[j] else 0.0)
    return num / den


def hand_td_auc(time, event, risk, times, G):
    aucs = []
    for t in times:
        cases = np.flatnonzero((time <= t) & (event == 1))
        controls = np.flatnonzero(time > t)
        num = den = 0.0
        for i in cases:
            w = 1 / G(time[i])
            diff = risk[i] - risk[controls]
            num += w * (np.sum(diff > 0) + 0.5 * np.sum(diff == 0))
            den += w * len(controls)
        aucs.append(num / den)
    S = hand_km(time, event)(np.asarray(times))
    d = -np.diff(np.r_[1.0, S])
    return np.array(aucs), float(np.sum(np.array(aucs) * d) / (1 - S[-1]))


def hand_ibs(time, event, surv, times, G):
    scores = []
    for k, t in enumerate(times):
        case = (time <= t) & (event == 1)
        control = time > t
        with np.errstate(divide="ignore"):  # 1/G = inf only where the indicator is 0
            scores.append(
                np.mean(
                    np.where(case, surv[:, k] ** 2 / G(time), 0)
                    + np.where(control, (1 - surv[:, k]) ** 2 / G(t), 0)
                )
            )
    return np.trapezoid(scores, times) / (times[-1] - times[0])


# ---- tests ----------------------------------------------------------------------------


def test_harrell_matches_hand_and_lifelines():
    time, event, risk = survival_data(ties=True)
    assert M.harrell_c_index(time, event, risk) == pytest.approx(
        hand_harrell(time, event, risk), abs=1e-12
    )
    t2, e2, r2 = survival_data(seed=1, ties=False)
    # lifelines expects predicted survival times (higher = better): pass -risk
    assert M.harrell_c_index(t2, e2, r2) == pytest.approx(lifelines_cindex(t2, -r2, e2), abs=1e-12)


def test_harrell_batch_equals_scikit_survival_on_resamples():
    time, event, risk = survival_data(120, seed=2)
    rng = np.random.default_rng(0)
    counts = rng.multinomial(120, np.full(120, 1 / 120), size=4)
    for row, value in zip(counts, M.harrell_c_index_batch(time, event, risk, counts), strict=False):
        idx = np.repeat(np.arange(120), row)
        ref = concordance_index_censored(event[idx].astype(bool), time[idx], risk[idx])[0]
        assert value == pytest.approx(ref, abs=1e-12)


def test_c_index_undefined_without_comparable_pairs():
    assert np.isnan(M.harrell_c_index([5, 6], [0, 0], [1.0, 2.0]))


def test_uno_matches_hand_ipcw_computation():
    time, event, risk = survival_data(seed=3)
    tau = 15.0
    G = hand_censoring_km(time, event)
    assert M.uno_c_index(time, event, risk, tau=tau) == pytest.approx(
        hand_uno(time, event, risk, tau, G), abs=1e-12
    )
    # with a separate training set for the censoring distribution
    tt, te, _ = survival_data(300, seed=4)
    tt = np.minimum(tt, time.max() + 5)
    Gt = hand_censoring_km(tt, te)
    assert M.uno_c_index(time, event, risk, tau, tt, te) == pytest.approx(
        hand_uno(time, event, risk, tau, Gt), abs=1e-12
    )


def test_uno_batch_equals_scikit_survival_with_fixed_censoring():
    time, event, risk = survival_data(100, seed=5)
    tau = 12.0
    fixed = Surv.from_arrays(event.astype(bool), time)
    counts = np.random.default_rng(1).multinomial(100, np.full(100, 0.01), size=4)
    batch = M.uno_c_index_batch(time, event, risk, counts, tau, time, event)
    for row, value in zip(counts, batch, strict=False):
        idx = np.repeat(np.arange(100), row)
        test = Surv.from_arrays(event[idx].astype(bool), time[idx])
        assert value == pytest.approx(
            concordance_index_ipcw(fixed, test, risk[idx], tau)[0], abs=1e-12
        )


def test_time_dependent_auc_matches_hand_computation():
    # seed 6 has an event tied with the last censoring (censoring survival 0 there), which
    # scikit-survival alone rejects; the AUCs at earlier times are still defined
    time, event, risk = survival_data(seed=6)
    times = [4.0, 8.0, 12.0]
    result = M.time_dependent_auc(time, event, risk, times)
    auc, mean = hand_td_auc(time, event, risk, times, hand_censoring_km(time, event))
    np.testing.assert_allclose(result.auc, auc, atol=1e-12)
    assert result.mean_auc == pytest.approx(mean, abs=1e-12)
    outside = M.time_dependent_auc(time, event, risk, [time.max() + 1])
    assert np.isnan(outside.mean_auc)


def test_integrated_brier_score_matches_hand_computation():
    time, event, risk = survival_data(seed=7)
    times = np.linspace(3, 15, 9)
    surv = np.exp(-np.exp(risk)[:, None] * times[None, :] / 12)
    ibs = M.integrated_brier_score(time, event, surv, times)
    assert ibs == pytest.approx(
        hand_ibs(time, event, surv, times, hand_censoring_km(time, event)), abs=1e-12
    )
    with pytest.raises(ValueError, match="shape"):
        M.integrated_brier_score(time, event, surv[:, :3], times)


def test_breslow_survival_matches_lifelines_cox_on_real_lung1():
    df = pd.read_csv(shared_path("nsclc_radiomics_lung1_clinical", "Lung1.clinical.csv"))
    df = df[["age", "clinical.T.Stage", "Survival.time", "deadstatus.event"]].dropna()
    df.columns = ["age", "t_stage", "time", "event"]
    cox = CoxPHFitter().fit(df, duration_col="time", event_col="event")
    x = df[["age", "t_stage"]]
    log_risk = ((x - x.mean()) @ cox.params_).to_numpy()  # lifelines centres covariates
    baseline = M.BreslowBaseline().fit(log_risk, df.time, df.event)
    # at lifelines' own baseline times (between them lifelines interpolates linearly)
    known = cox.baseline_survival_.index.to_numpy()
    times = np.r_[known[[0, 10, 50, 200]], known[-1]]
    ours = baseline.predict_survival(log_risk[:25], times)
    ref = cox.predict_survival_function(df.iloc[:25], times=times).to_numpy().T
    np.testing.assert_allclose(ours, ref, rtol=1e-7, atol=1e-10)
    assert (baseline.predict_survival(log_risk[:3], [known[0] - 1]) == 1).all()  # before any event


def test_breslow_hand_example():
    # times 1,2,3 all events, log-risks 0: H0 = 1/3, 1/3 + 1/2, 1/3 + 1/2 + 1
    b = M.BreslowBaseline().fit([0.0, 0.0, 0.0], [1, 2, 3], [1, 1, 1])
    np.testing.assert_allclose(
        b.baseline_cumulative_hazard([0.5, 1, 2.5, 3, 9]), [0, 1 / 3, 5 / 6, 11 / 6, 11 / 6]
    )
    s = b.predict_survival([np.log(2.0)], [1.0])
    assert s[0, 0] == pytest.approx(np.exp(-2 / 3))


def test_survival_input_errors():
    with pytest.raises(ValueError, match="event must contain only 0"):
        M.harrell_c_index([1, 2], [0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="non-negative"):
        M.harrell_c_index([-1, 2], [1, 1], [0.1, 0.2])


@pytest.mark.parametrize("seed", [0, 6])
def test_td_auc_and_ibs_batches_equal_scikit_survival_on_resamples(seed):
    time, event, risk = survival_data(120, seed=seed)
    tt, te, _ = survival_data(300, seed=seed + 100)
    tt = np.minimum(tt, time.max())  # training follow-up covering the test data
    counts = np.vstack(
        [
            np.ones(120, int),
            np.random.default_rng(seed).multinomial(120, np.full(120, 1 / 120), size=6),
        ]
    )
    times = [4.0, 8.0, np.sort(time)[-3]]  # the last time falls outside some resamples
    grid = np.linspace(3, 15, 9)
    surv = np.exp(-np.exp(risk)[:, None] * grid[None, :] / 12)
    for train in ((None, None), (tt, te)):
        auc = M.time_dependent_auc_batch(time, event, risk, times, counts, *train)
        ibs = M.integrated_brier_score_batch(time, event, surv, grid, counts, *train)
        fixed = (time, event) if train[0] is None else train  # the censoring KM stays fixed
        for row, a, b in zip(counts, auc, ibs, strict=False):
            i = np.repeat(np.arange(120), row)
            ref = M.time_dependent_auc(time[i], event[i], risk[i], times, *fixed)
            np.testing.assert_allclose(a, np.r_[ref.mean_auc, ref.auc], atol=1e-12)
            ref_ibs = M.integrated_brier_score(time[i], event[i], surv[i], grid, *fixed)
            assert b == pytest.approx(ref_ibs, abs=1e-12, nan_ok=True)
    assert np.isnan(auc).any() and not np.isnan(auc).all()  # the out-of-follow-up check bites
