"""ComBat: equals neuroCombat on its own data, fitted state from training rows only, removes a
site shift, handles unseen sites (or refuses them), follows scikit-learn conventions."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from deepradiomics.classical.combat import (
    SITE_COLUMN,
    ComBat,
    ComBatColumns,
    with_site_columns,
)
from deepradiomics.errors import UserError

FITTED = (
    "grand_mean_",
    "var_pooled_",
    "beta_covariates_",
    "gamma_hat_",
    "delta_hat_",
    "gamma_star_",
    "delta_star_",
    "gamma_bar_",
    "t2_",
    "a_prior_",
    "b_prior_",
)


def simulate(n_per_site=(30, 40, 25), p=20, seed=0, shift=2.0):
    """Features with covariate effects (age, sex) plus a per-site location and scale change.

    Ages are integers so that neuroCombat's float32 cast of continuous covariates is exact.
    """
    rng = np.random.default_rng(seed)
    sites = [chr(ord("A") + i) for i in range(len(n_per_site))]
    site = np.repeat(sites, n_per_site)
    n = len(site)
    # older patients at later sites: age is confounded with site, as it often is
    age = (rng.integers(20, 70, n) + 10 * np.unique(site, return_inverse=True)[1]).astype(float)
    sex = rng.choice(["F", "M"], n)
    age_effect = rng.normal(0, 0.05, p)
    noise = rng.normal(size=(n, p)) * rng.uniform(1, 3, p)
    X = rng.normal(0, 5, p) + np.outer(age, age_effect) + np.outer(sex == "M", rng.normal(0, 1, p))
    for s in sites:
        rows = site == s
        X[rows] += rng.normal(0, shift, p) + noise[rows] * rng.uniform(0.5, 2, p)
    return X, site, pd.DataFrame({"age": age, "sex": sex}), age_effect


def _neurocombat(X, site, covs, **kw):
    from neuroCombat import neuroCombat

    covars = pd.DataFrame({"site": site, **{c: covs[c] for c in covs}})
    with contextlib.redirect_stdout(io.StringIO()):  # neuroCombat prints progress
        return neuroCombat(
            X.T.copy(), covars, "site", categorical_cols=["sex"], continuous_cols=["age"], **kw
        )


@pytest.mark.parametrize(
    "kw",
    [
        dict(parametric=True),
        dict(parametric=False),
        dict(parametric=True, mean_only=True),
        dict(parametric=False, mean_only=True),
        dict(eb=False),
    ],
    ids=[
        "parametric",
        "non-parametric",
        "parametric-mean-only",
        "non-parametric-mean-only",
        "no-eb",
    ],
)
def test_matches_neurocombat(kw) -> None:
    X, site, covs, _ = simulate()
    ref = _neurocombat(X, site, covs, **kw)
    combat = ComBat(**kw).fit(X, site, covs)
    np.testing.assert_allclose(
        combat.transform(X, site, covs), ref["data"].T, rtol=1e-10, atol=1e-10
    )
    est = ref["estimates"]
    np.testing.assert_allclose(combat.var_pooled_, est["var.pooled"].ravel(), rtol=1e-10)
    np.testing.assert_allclose(
        combat.gamma_star_, np.asarray(est["gamma.star"]), rtol=1e-8, atol=1e-12
    )
    np.testing.assert_allclose(combat.delta_star_, np.asarray(est["delta.star"]), rtol=1e-8)
    np.testing.assert_allclose(combat.gamma_hat_, est["gamma_hat"], rtol=1e-10, atol=1e-12)
    assert list(combat.sites_) == list(est["batches"])


def test_fitted_state_ignores_test_rows() -> None:
    """Fit on training rows, transform test rows: perturbing the test rows' features changes
    neither the fitted parameters nor the training rows' harmonised values, and each
    test row of a known site is transformed on its own."""
    X, site, covs, _ = simulate(seed=1)
    rng = np.random.default_rng(1)
    test = rng.random(len(site)) < 0.25
    train = ~test
    perturbed = X.copy()
    perturbed[test] += rng.normal(0, 50, (test.sum(), X.shape[1]))

    def fitted(data):
        return ComBat().fit(data[train], site[train], covs[train])

    a, b = fitted(X), fitted(perturbed)
    for name in FITTED:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_array_equal(
        a.transform(X[train], site[train], covs[train]),
        b.transform(X[train], site[train], covs[train]),
    )
    # test rows: each row's output depends on that row only
    out_clean = a.transform(X[test], site[test], covs[test])
    changed = X[test].copy()
    changed[0] += 100.0
    out_changed = a.transform(changed, site[test], covs[test])
    np.testing.assert_array_equal(out_clean[1:], out_changed[1:])


def _site_spread(X, site, covs=None):
    """Median over features of the between-site range of feature means, in pooled SDs, after
    regressing out the protected covariates (whose effect may legitimately differ by site)."""
    if covs is not None:
        design = np.column_stack([np.ones(len(site)), covs["age"], covs["sex"] == "M"])
        X = X - design @ np.linalg.lstsq(design, X, rcond=None)[0]
    means = np.array([X[site == s].mean(0) for s in np.unique(site)])
    return np.median((means.max(0) - means.min(0)) / X.std(0))


def test_removes_site_shift_and_keeps_covariate_effect() -> None:
    X, site, covs, age_effect = simulate(n_per_site=(80, 80, 80), p=30, seed=2, shift=4.0)
    out = ComBat().fit_transform(X, site, covs)
    assert _site_spread(X, site, covs) > 1.0
    assert _site_spread(out, site, covs) < 0.2

    # per-site scales brought together (what remains is sampling noise of SDs from 80 cases)
    def log_sd_range(data):
        sds = np.array([data[site == s].std(0) for s in np.unique(site)])
        return np.median(np.log(sds.max(0) / sds.min(0)))

    assert log_sd_range(out) < 0.4 * log_sd_range(X)
    # the protected age effect survives: the harmonised data's age slope (no site terms)
    # equals the raw data's within-site slope; unprotected, ComBat removes part of it
    # (age is confounded with site in the simulation)
    design = np.column_stack([np.ones(len(site)), covs["age"], covs["sex"] == "M"])
    dummies = (site[:, None] == np.unique(site)[None, 1:]).astype(float)
    within = np.linalg.lstsq(np.column_stack([design, dummies]), X, rcond=None)[0][1]

    def age_slope_error(data):
        slope = np.linalg.lstsq(design, data, rcond=None)[0][1]
        return np.median(np.abs(slope - within)), slope

    error, slope = age_slope_error(out)
    unprotected, _ = age_slope_error(ComBat().fit_transform(X, site))
    assert error < 0.0025 and unprotected > 2 * error
    assert np.corrcoef(slope, age_effect)[0, 1] > 0.8


@pytest.mark.parametrize("prior", ["training", "own"])
@pytest.mark.parametrize("parametric", [True, False])
def test_unseen_site_estimated_from_its_own_rows(prior: str, parametric: bool) -> None:
    # non-parametric priors need many features (an empirical prior of 30 points is too sparse)
    X, site, covs, _ = simulate(n_per_site=(60, 60, 40), p=100, seed=3, shift=4.0)
    new = site == "C"
    combat = ComBat(unseen_prior=prior, parametric=parametric).fit(X[~new], site[~new], covs[~new])
    before = {name: getattr(combat, name).copy() for name in FITTED}
    harmonised_train = combat.transform(X[~new], site[~new], covs[~new])
    harmonised_new = combat.transform(X[new], site[new], covs[new])
    order = np.concatenate([np.flatnonzero(~new), np.flatnonzero(new)])
    both = np.empty_like(X)
    both[order] = np.vstack([harmonised_train, harmonised_new])
    assert _site_spread(X, site, covs) > 1.0
    assert _site_spread(both, site, covs) < 0.25
    for name, value in before.items():  # transform stores nothing
        np.testing.assert_array_equal(getattr(combat, name), value, err_msg=name)


def test_unseen_site_too_few_cases_or_refused() -> None:
    X, site, covs, _ = simulate(seed=4)
    new = site == "C"
    combat = ComBat(min_new_site_cases=5).fit(X[~new], site[~new], covs[~new])
    rows = np.flatnonzero(new)[:4]
    with pytest.raises(UserError, match=r"site 'C' was not in the training data and has 4 case"):
        combat.transform(X[rows], site[rows], covs.iloc[rows])
    strict = ComBat(unseen_sites="error").fit(X[~new], site[~new], covs[~new])
    with pytest.raises(UserError, match="unseen_sites='error'"):
        strict.transform(X[new], site[new], covs[new])


def test_works_on_embeddings_without_covariates() -> None:
    rng = np.random.default_rng(5)
    site = np.repeat(["s1", "s2"], 50)
    emb = rng.normal(size=(100, 64)).astype(np.float32)
    emb[site == "s2"] += 3.0
    out = ComBat().fit_transform(emb, site)
    assert out.shape == emb.shape and out.dtype == np.float64
    assert _site_spread(out, site) < 0.5 < _site_spread(emb.astype(float), site)


def test_conventions_and_input_errors() -> None:
    X, site, covs, _ = simulate(seed=6)
    combat = ComBat(parametric=False)
    assert clone(combat).get_params() == combat.get_params()
    with pytest.raises(NotFittedError):
        combat.transform(X, site, covs)
    assert combat.fit(X, site, covs) is combat
    assert not any(k.endswith("_") for k in vars(ComBat()))  # __init__ stores parameters only
    with pytest.raises(ValueError, match="features"):
        combat.transform(X[:, :-1], site, covs)
    bad = covs.copy()
    bad.loc[0, "sex"] = "X"
    with pytest.raises(UserError, match=r"'sex' has levels \['X'\]"):
        combat.transform(X, site, bad)
    with pytest.raises(UserError, match="at least 2 cases"):
        ComBat().fit(X[:31], site[:31], covs[:31])  # site B has one case
    confounded = covs.assign(scanner=site)
    with pytest.raises(UserError, match="collinear"):
        ComBat().fit(X, site, confounded)


def test_pipeline_step_reads_reserved_columns() -> None:
    X, site, covs, _ = simulate(seed=7)
    feats = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    framed = with_site_columns(feats, site, covs)
    assert SITE_COLUMN in framed and "combat__cov__age" in framed
    step = ComBatColumns(ComBat(parametric=False)).fit(framed)
    expected = ComBat(parametric=False).fit_transform(X, site, covs)
    np.testing.assert_allclose(step.transform(framed), expected, rtol=1e-12)
    assert list(step.get_feature_names_out()) == list(feats.columns)
    with pytest.raises(UserError, match="with_site_columns"):
        step.transform(feats)
