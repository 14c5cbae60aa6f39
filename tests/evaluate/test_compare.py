from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from deepradiomics.evaluate import metrics as M
from deepradiomics.evaluate.compare import delong_covariance, delong_test, paired_difference


def two_predictors(n: int = 300, seed: int = 0, ties: bool = False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(float)
    shared = rng.normal(0, 1, n)
    a = 1.2 * y + shared + rng.normal(0, 0.6, n)
    b = 0.8 * y + shared + rng.normal(0, 0.6, n)
    if ties:
        a, b = np.round(a), np.round(b)
    return y, a, b


def structural_variance(y, s):
    """DeLong's variance from the O(m n) definition of the structural components."""
    pos, neg = s[y == 1], s[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg), v10, v01


@pytest.mark.parametrize("ties", [False, True])
def test_fast_delong_equals_the_structural_component_definition(ties):
    y, a, b = two_predictors(200, seed=1, ties=ties)
    auc, cov = delong_covariance(y, np.vstack([a, b]))
    assert auc == pytest.approx([roc_auc_score(y, a), roc_auc_score(y, b)], abs=1e-12)
    var_a, v10a, v01a = structural_variance(y, a)
    var_b, v10b, v01b = structural_variance(y, b)
    cov_ab = np.cov(v10a, v10b)[0, 1] / len(v10a) + np.cov(v01a, v01b)[0, 1] / len(v01a)
    np.testing.assert_allclose(cov, [[var_a, cov_ab], [cov_ab, var_b]], rtol=1e-10)


def test_delong_variance_agrees_with_a_bootstrap():
    y, a, _ = two_predictors(400, seed=2)
    _, cov = delong_covariance(y, a[None, :])
    counts = np.random.default_rng(0).multinomial(400, np.full(400, 1 / 400), size=4000)
    boot_var = np.var(M.roc_auc_batch(y, a, counts), ddof=1)
    assert cov[0, 0] == pytest.approx(boot_var, rel=0.12)


def test_delong_test_detects_a_difference_and_not_a_non_difference():
    y, a, b = two_predictors(400, seed=3)
    res = delong_test(y, a, b)
    assert res.difference == pytest.approx(roc_auc_score(y, a) - roc_auc_score(y, b))
    assert res.p_value < 0.01 and res.z > 0
    same = delong_test(y, a, a)
    assert same.z == 0 and same.p_value == 1.0
    rng = np.random.default_rng(4)
    p_null = [delong_test(y, a, a + rng.normal(0, 1e-3, len(a))).p_value for _ in range(3)]
    assert min(p_null) > 0.05


def test_delong_needs_both_classes():
    with pytest.raises(ValueError, match="at least 2 positive"):
        delong_test([1, 0, 0], [0.1, 0.2, 0.3], [0.3, 0.2, 0.1])


def test_paired_bootstrap_difference():
    y, a, b = two_predictors(300, seed=5)
    res = paired_difference(M.roc_auc, y, a, b, n_boot=1000, seed=0, batch_metric=M.roc_auc_batch)
    d = res.difference
    assert d.value == pytest.approx(M.roc_auc(y, a) - M.roc_auc(y, b))
    assert res.value_a == pytest.approx(M.roc_auc(y, a))
    assert d.ci_low < d.value < d.ci_high and d.ci_low > 0
    assert res.p_value < 0.01
    slow = paired_difference(M.roc_auc, y, a, b, n_boot=200, seed=0)
    fast = paired_difference(M.roc_auc, y, a, b, n_boot=200, seed=0, batch_metric=M.roc_auc_batch)
    assert (slow.difference.ci_low, slow.difference.ci_high) == pytest.approx(
        (fast.difference.ci_low, fast.difference.ci_high), abs=1e-12
    )
    # the paired bootstrap SE of the difference agrees with DeLong's (both include the
    # covariance of the two AUCs on the same cases)
    se_delong = delong_test(y, a, b).se_difference
    assert (d.ci_high - d.ci_low) / (2 * 1.96) == pytest.approx(se_delong, rel=0.2)


def test_paired_difference_of_identical_predictors_is_exactly_zero():
    y, a, _ = two_predictors(100, seed=6)
    res = paired_difference(M.roc_auc, y, a, a.copy(), n_boot=200)
    assert res.difference.value == 0 and res.difference.ci_low == 0 and res.difference.ci_high == 0
    assert res.p_value == 1.0


def test_paired_difference_for_survival_with_patients():
    rng = np.random.default_rng(7)
    n = 150
    risk = rng.normal(0, 1, n)
    time = rng.exponential(np.exp(-risk))
    event = (rng.random(n) < 0.7).astype(int)
    noisy = risk + rng.normal(0, 1.5, n)
    groups = np.arange(n) // 3
    res = paired_difference(
        M.harrell_c_index,
        (time, event),
        risk,
        noisy,
        groups=groups,
        n_boot=300,
        batch_metric=M.harrell_c_index_batch,
    )
    looped = paired_difference(
        M.harrell_c_index, (time, event), risk, noisy, groups=groups, n_boot=50
    )
    batched = paired_difference(
        M.harrell_c_index,
        (time, event),
        risk,
        noisy,
        groups=groups,
        n_boot=50,
        batch_metric=M.harrell_c_index_batch,
    )
    assert looped.difference.ci_low == pytest.approx(batched.difference.ci_low, abs=1e-12)
    assert res.difference.value == pytest.approx(
        M.harrell_c_index(time, event, risk) - M.harrell_c_index(time, event, noisy)
    )
    assert res.difference.n_patients == 50
    assert res.difference.ci_low > 0


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression", "survival"])
def test_the_headline_batch_metric_gives_the_looped_comparison(task: str) -> None:
    """``primary_batch_metric`` (the run's comparisons) scores every resample as the per-resample
    headline metric does: same differences, intervals and p-values (to float rounding)."""
    from deepradiomics.evaluate.primary import primary_batch_metric, primary_metric

    rng = np.random.default_rng(3)
    n = 90
    latent = rng.normal(0, 1, n)
    if task == "binary":
        y = (latent + rng.normal(0, 1, n) > 0).astype(float)
    elif task == "multiclass":
        y = np.digitize(latent + rng.normal(0, 1, n), [-0.5, 0.5])
    elif task == "regression":
        y = latent + rng.normal(0, 1, n)
    else:
        y = np.column_stack([rng.exponential(np.exp(-latent)), rng.random(n) < 0.7])

    def scores(noise: float) -> np.ndarray:
        s = latent + rng.normal(0, noise, n)
        if task == "multiclass":
            logits = np.column_stack([-s, np.zeros(n), s])
            return np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        return s

    a, b = scores(0.5), scores(1.5)
    kw = dict(groups=np.arange(n) // 2, n_boot=120, seed=5)
    looped = paired_difference(primary_metric(task), y, a, b, **kw)
    batched = paired_difference(
        primary_metric(task), y, a, b, batch_metric=primary_batch_metric(task, n), **kw
    )
    d, e = looped.difference, batched.difference
    assert (e.value, e.ci_low, e.ci_high) == pytest.approx(
        (d.value, d.ci_low, d.ci_high), abs=1e-12
    )
    assert batched.p_value == looped.p_value
    assert primary_batch_metric("survival", 10**6) is None  # its pair matrices: too big
