from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from deepradiomics.evaluate import metrics as M
from deepradiomics.evaluate.bootstrap import (
    Estimate,
    bootstrap_ci,
    bootstrap_estimates,
    resample_counts,
)


def auc_data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(float)
    s = y + rng.normal(0, 1.3, n)
    return y, s


def auc_ci(y, s, groups=None, seed=0, n_boot=1000, batch=True, **kw) -> Estimate:
    return bootstrap_ci(
        lambda i: M.roc_auc(y[i], s[i]),
        len(y),
        groups=groups,
        n_boot=n_boot,
        seed=seed,
        batch_statistic=(lambda w: M.roc_auc_batch(y, s, w)) if batch else None,
        **kw,
    )


def test_ci_contains_estimate_and_same_seed_same_ci():
    y, s = auc_data(300)
    a, b, c = auc_ci(y, s, seed=1), auc_ci(y, s, seed=1), auc_ci(y, s, seed=2)
    assert a.ci_low < a.value < a.ci_high
    assert a.value == pytest.approx(M.roc_auc(y, s))
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    assert (a.ci_low, a.ci_high) != (c.ci_low, c.ci_high)
    assert a.n_boot == 1000 and a.n_skipped == 0 and a.n == 300 and a.n_patients == 300


def test_ci_shrinks_with_n():
    widths = {}
    for n in (100, 400, 1600):
        y, s = auc_data(n, seed=n)
        e = auc_ci(y, s)
        widths[n] = e.ci_high - e.ci_low
    assert widths[100] > 1.6 * widths[400] > 1.6**2 * widths[1600]


def test_vectorised_and_looped_resampling_agree():
    y, s = auc_data(80, seed=3)
    fast, slow = auc_ci(y, s, n_boot=300), auc_ci(y, s, n_boot=300, batch=False)
    assert (fast.ci_low, fast.ci_high) == pytest.approx((slow.ci_low, slow.ci_high), abs=1e-12)


def test_duplicated_patients_do_not_narrow_the_ci():
    y, s = auc_data(200, seed=4)
    single = auc_ci(y, s, seed=5)
    # every patient scanned three times, identical predictions
    y3, s3 = np.repeat(y, 3), np.repeat(s, 3)
    patients = np.repeat(np.arange(200), 3)
    grouped = auc_ci(y3, s3, groups=patients, seed=5)
    rows = auc_ci(y3, s3, seed=5)
    # resampling patients draws the same patient counts as for the single-scan cohort
    assert (grouped.ci_low, grouped.ci_high) == pytest.approx(
        (single.ci_low, single.ci_high), abs=1e-12
    )
    assert grouped.n_patients == 200 and grouped.n == 600
    # resampling rows pretends to have 3x the evidence: about 1/sqrt(3) of the width
    ratio = (rows.ci_high - rows.ci_low) / (grouped.ci_high - grouped.ci_low)
    assert 0.45 < ratio < 0.72


def test_resample_counts_keep_patients_together():
    groups = np.array(["a", "a", "b", "c", "c", "c"])
    counts = np.concatenate(list(resample_counts(groups, 6, 500, seed=0)))
    assert counts.shape == (500, 6)
    assert (counts[:, 0] == counts[:, 1]).all() and (counts[:, 3] == counts[:, 5]).all()
    assert (counts[:, [0, 2, 3]].sum(axis=1) == 3).all()  # 3 patients drawn per resample
    again = np.concatenate(list(resample_counts(groups, 6, 500, seed=0)))
    assert (counts == again).all()


def test_degenerate_resamples_are_skipped_and_counted():
    y = np.array([1.0] + [0.0] * 9)
    s = np.linspace(1, 0, 10)
    e = auc_ci(y, s, n_boot=400)
    assert e.n_skipped > 50  # resamples without the one positive (about (9/10)^10 = 35 %)
    assert e.n_skipped + e.n_boot == 400
    assert e.value == 1.0 and e.ci_low == 1.0


def test_undefined_point_estimate_gives_no_interval():
    e = auc_ci(np.ones(5), np.arange(5.0))
    assert np.isnan(e.value) and np.isnan(e.ci_low)
    assert e.to_dict()["value"] is None and e.to_dict()["ci_low"] is None


def test_percentile_ci_of_a_mean_matches_the_normal_approximation():
    x = np.random.default_rng(7).normal(3.0, 2.0, 400)
    e = bootstrap_ci(lambda i: x[i].mean(), len(x), n_boot=4000, seed=0)
    half = 1.96 * x.std(ddof=1) / np.sqrt(len(x))
    assert e.ci_low == pytest.approx(x.mean() - half, abs=0.08 * half)
    assert e.ci_high == pytest.approx(x.mean() + half, abs=0.08 * half)


def test_bca_matches_scipy_on_a_skewed_statistic():
    x = np.random.default_rng(8).exponential(1.0, 40)
    ours = bootstrap_ci(lambda i: x[i].mean(), len(x), n_boot=20000, seed=0, method="bca")
    ref = stats.bootstrap(
        (x,), np.mean, n_resamples=20000, method="BCa", random_state=1
    ).confidence_interval
    width = ref.high - ref.low
    assert ours.ci_low == pytest.approx(ref.low, abs=0.04 * width)
    assert ours.ci_high == pytest.approx(ref.high, abs=0.04 * width)
    pct = bootstrap_ci(lambda i: x[i].mean(), len(x), n_boot=20000, seed=0)
    assert ours.ci_high > pct.ci_high  # BCa shifts the interval to the right for a right skew


def test_vector_statistic_gives_one_estimate_per_output():
    x = np.random.default_rng(9).normal(0, 1, 100)
    lo_hi = bootstrap_estimates(lambda i: [x[i].mean(), x[i].std()], len(x), n_boot=200, seed=0)
    assert len(lo_hi) == 2
    assert lo_hi[0].value == pytest.approx(x.mean()) and lo_hi[1].value == pytest.approx(x.std())
    mean_only = bootstrap_ci(lambda i: x[i].mean(), len(x), n_boot=200, seed=0)
    assert (lo_hi[0].ci_low, lo_hi[0].ci_high) == (mean_only.ci_low, mean_only.ci_high)
