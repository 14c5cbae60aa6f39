"""Median risk groups, their Kaplan-Meier curves and log-rank test against lifelines."""

from __future__ import annotations

import numpy as np
import pytest
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test

from deepradiomics.report.risk_groups import median_split, risk_groups


def survival_data(seed: int = 0, n: int = 80):
    rng = np.random.default_rng(seed)
    risk = rng.normal(0, 1, n)
    t_event = rng.exponential(5 * np.exp(-risk))
    t_censor = rng.uniform(1, 15, n)
    return np.minimum(t_event, t_censor).round(1), (t_event <= t_censor).astype(int), risk


def test_median_split_puts_ties_in_the_low_group():
    high, median = median_split(np.array([1.0, 2.0, 2.0, 2.0, 3.0]))
    assert median == 2.0
    assert high.tolist() == [False, False, False, False, True]


def test_curves_and_log_rank_match_lifelines():
    time, event, risk = survival_data()
    groups = risk_groups(time, event, risk)
    high = risk > np.median(risk)
    expected = logrank_test(time[high], time[~high], event[high], event[~high])
    assert groups.p_value == pytest.approx(expected.p_value, rel=1e-9)
    assert groups.chisq == pytest.approx(expected.test_statistic, rel=1e-9)
    low_curve, high_curve = groups.curves
    assert (low_curve.n, high_curve.n) == ((~high).sum(), high.sum())
    assert (low_curve.events, high_curve.events) == (event[~high].sum(), event[high].sum())
    for curve, mask in ((low_curve, ~high), (high_curve, high)):
        km = KaplanMeierFitter().fit(time[mask], event[mask])
        reference = km.survival_function_at_times(curve.time[1:]).to_numpy()
        np.testing.assert_allclose(curve.survival[1:], reference, atol=1e-12)
        assert curve.time[0] == 0 and curve.survival[0] == 1  # drawn from S = 1 at time 0


def test_missing_values_are_left_out_and_one_group_has_no_test():
    time, event, risk = survival_data(1, 20)
    risk[3] = np.nan
    groups = risk_groups(time, event, risk)
    assert sum(c.n for c in groups.curves) == 19
    flat = risk_groups(time, event, np.ones(20))
    assert len(flat.curves) == 1 and np.isnan(flat.p_value)
