"""Classical baselines: scikit-learn estimator checks, inner CV, each task learns, ComBat inside
the pipeline sees training rows only."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.utils.estimator_checks import estimator_checks_generator

from deepradiomics.classical.combat import with_site_columns
from deepradiomics.classical.models import (
    CorrelationFilter,
    InnerCV,
    baseline_pipeline,
    make_baseline,
    make_clinical_baseline,
    neg_log_loss,
    survival_target,
)
from deepradiomics.errors import UserError

# ----------------------------------------------------------------------------- estimator checks

PIPELINE_EXPECTED_FAILURES = {
    "check_estimators_overwrite_params": "scikit-learn's Pipeline fits its steps in place "
    "(true of every Pipeline); make_baseline's GridSearchCV clones and passes (slow test)",
    "check_dont_overwrite_parameters": "same: Pipeline fits the estimators in its 'steps' in place",
    "check_estimators_nan_inf": "NaN is accepted by design: median imputation is the first step",
    "check_fit2d_predict1d": "ColumnTransformer (first step) words its 1-D input error as "
    "'X does not contain any features' instead of 'Reshape your data'",
}
SEARCH_EXPECTED_FAILURES = {
    "check_estimators_nan_inf": PIPELINE_EXPECTED_FAILURES["check_estimators_nan_inf"],
    "check_fit2d_predict1d": PIPELINE_EXPECTED_FAILURES["check_fit2d_predict1d"],
}
REGRESSION_EXTRA = {
    "check_dtype_object": "SelectKBest(f_regression) cannot use an object-dtype target "
    "(scikit-learn's f_regression does not convert it); numeric targets work",
    "check_regressor_multioutput": "univariate F-regression selection scores one target only",
}


def _expected_failures(estimator) -> dict[str, str]:
    from sklearn.model_selection import GridSearchCV

    base = (
        SEARCH_EXPECTED_FAILURES
        if isinstance(estimator, GridSearchCV)
        else PIPELINE_EXPECTED_FAILURES
    )
    pipe = estimator.estimator if isinstance(estimator, GridSearchCV) else estimator
    if not hasattr(pipe, "steps"):
        return {}
    extra = {}
    if (
        type(pipe.steps[-1][1]).__name__ == "Ridge"
        and type(pipe.named_steps["select"]).__name__ == "SelectKBest"
    ):
        extra = dict(REGRESSION_EXTRA)
        if isinstance(estimator, GridSearchCV):
            extra.pop("check_regressor_multioutput")  # GridSearchCV does not claim multioutput
    return {**base, **extra}


def _check_id(check) -> str:
    if isinstance(check, functools.partial):
        kw = ",".join(f"{k}={getattr(v, '__name__', v)}" for k, v in check.keywords.items())
        return f"{check.func.__name__}({kw})" if kw else check.func.__name__
    return check.__name__


def checks_for(named: dict) -> list:
    """Like ``parametrize_with_checks``, but with ids that are the same in every process
    (estimator reprs hold function addresses, which breaks pytest-xdist collection)."""
    params = []
    for name, estimator in named.items():
        expected = _expected_failures(estimator)
        for item in estimator_checks_generator(
            estimator, expected_failed_checks=expected, mark="xfail"
        ):
            values, marks = (item.values, item.marks) if hasattr(item, "marks") else (item, ())
            params.append(pytest.param(*values, marks=marks, id=f"{name}-{_check_id(values[1])}"))
    return params


FAST_CHECKS = {
    "correlation_filter": CorrelationFilter(),
    "binary_kbest": baseline_pipeline("binary"),
    "regression_kbest": baseline_pipeline("regression"),
    "regression_l1": baseline_pipeline("regression", selection="l1"),
}
SLOW_CHECKS = {
    "binary_l1": baseline_pipeline("binary", selection="l1"),
    "tuned_binary": make_baseline("binary", param_grid={"select__k": [5], "model__C": [0.1]}),
    "tuned_regression": make_baseline(
        "regression", param_grid={"select__k": [5], "model__alpha": [1.0]}
    ),
}


@pytest.mark.parametrize("estimator, check", checks_for(FAST_CHECKS))
def test_sklearn_compatible(estimator, check) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(estimator)


@pytest.mark.slow
@pytest.mark.parametrize("estimator, check", checks_for(SLOW_CHECKS))
def test_tuned_baseline_sklearn_compatible(estimator, check) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(estimator)


# ----------------------------------------------------------------------------- building blocks


def test_correlation_filter_keeps_first_of_correlated_group() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 200))
    X = np.column_stack(
        [a, 2 * a + 0.01 * rng.normal(size=200), b, -b + 0.01 * rng.normal(size=200), a + b]
    )
    keep = CorrelationFilter(0.9).fit(X).get_support()
    assert keep.tolist() == [True, False, True, False, True]  # a+b: r = 0.71 with a and with b
    assert CorrelationFilter(0.6).fit(X).get_support().tolist() == [True, False, True, False, False]


def test_inner_cv_groups_patients_and_stratifies() -> None:
    rng = np.random.default_rng(1)
    patients = np.repeat(np.arange(60), 2)  # two lesions per patient
    y = np.repeat(rng.random(60) < 0.3, 2).astype(int)
    X = np.zeros((120, 1))
    folds = list(InnerCV(3, random_state=4).split(X, y, patients))
    assert len(folds) == 3
    for train, test in folds:
        assert not set(patients[train]) & set(patients[test])
        assert abs(y[test].mean() - y.mean()) < 0.1
    again = list(InnerCV(3, random_state=4).split(X, y, patients))
    assert all((a[1] == b[1]).all() for a, b in zip(folds, again, strict=False))
    # survival targets are stratified by event
    events = survival_target(y, rng.uniform(1, 10, 120))
    for _, test in InnerCV(3, random_state=4).split(X, events, patients):
        assert abs(y[test].mean() - y.mean()) < 0.1


def test_inner_cv_spreads_small_sites_so_combat_tuning_never_fails() -> None:
    # real-cohort shape (soft-tissue sarcoma, one outer training fold): 21 / 5 / 5 cases per
    # site, 6 positives; class-only strata left a 5-case site with 1 row in an inner training
    # fold for half the seeds, every candidate scored NaN and the first was kept silently
    rng = np.random.default_rng(0)
    site = np.array(["A"] * 21 + ["B"] * 5 + ["C"] * 5)
    y = np.zeros(31, int)
    y[[0, 1, 2, 21, 22, 26]] = 1
    X = with_site_columns(pd.DataFrame(rng.normal(size=(31, 30))).add_prefix("f"), site)
    for seed in range(10):
        for train, test in InnerCV(3, random_state=seed).split(X, y, np.arange(31)):
            assert np.unique(site[train], return_counts=True)[1].min() >= 2
            assert 0 < y[test].sum() < len(test)
        with warnings.catch_warnings():
            warnings.simplefilter("error", category=UserWarning)  # FitFailedWarning, NaN scores
            est = make_baseline("binary", combat=True, seed=seed).fit(X, y, groups=np.arange(31))
        assert np.isfinite(est.cv_results_["mean_test_score"]).all()


def test_rare_class_with_fewer_patients_than_inner_folds_is_still_tuned() -> None:
    # 2 positive patients, 3 inner folds: one inner test fold has no positive; scikit-learn's
    # "neg_log_loss" then fails on every candidate (NaN) and GridSearchCV kept the first
    rng = np.random.default_rng(3)
    y = np.zeros(24, int)
    y[[0, 1]] = 1
    X = pd.DataFrame(rng.normal(size=(24, 12))).add_prefix("f")
    X.iloc[:2, :3] += 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=UserWarning)  # FitFailedWarning, NaN scores
        warnings.filterwarnings("ignore", "k=20 is greater", UserWarning)
        est = make_baseline("binary", seed=0).fit(X, y, groups=np.arange(24))
    scores = est.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all() and np.ptp(scores) > 0
    assert est.score(X, y) == pytest.approx(neg_log_loss(est.best_estimator_, X, y))


# ----------------------------------------------------------------------------- tasks


def cohort(n_patients=150, p=40, seed=0):
    """Radiomics-like table: 5 informative features, correlated copies, missing values, sites,
    some patients with two lesions; returns (features, patients, sites, latent risk)."""
    rng = np.random.default_rng(seed)
    patients = np.concatenate(
        [np.arange(n_patients), rng.choice(n_patients, n_patients // 5, replace=False)]
    )
    n = len(patients)
    latent_patient = rng.normal(size=n_patients)
    X = rng.normal(size=(n, p))
    risk = latent_patient[patients]
    X[:, :5] += np.outer(risk, [1.2, -1.0, 0.8, 0.7, -0.6])
    X[:, 5:10] = X[:, :5] * 3 + rng.normal(0, 0.05, (n, 5))  # near-duplicates (|r| > 0.9)
    X[rng.random(X.shape) < 0.02] = np.nan
    sites = np.array(["A", "B", "C"])[patients % 3]
    frame = pd.DataFrame(X, columns=[f"original_f{i}" for i in range(p)])
    frame.index = pd.Index([f"case{i}" for i in range(n)], name="case_id")
    return frame, patients, sites, risk


def _split(patients, test_fraction=0.3, seed=0):
    rng = np.random.default_rng(seed)
    test_patients = rng.choice(
        np.unique(patients), int(test_fraction * len(np.unique(patients))), replace=False
    )
    test = np.isin(patients, test_patients)
    return ~test, test


def test_binary_baseline_learns() -> None:
    X, patients, _, risk = cohort()
    y = (risk + np.random.default_rng(1).normal(0, 0.5, len(risk)) > 0.3).astype(int)
    train, test = _split(patients)
    model = make_baseline("binary", seed=3).fit(X[train], y[train], groups=patients[train])
    auc = roc_auc_score(y[test], model.predict_proba(X[test])[:, 1])
    assert auc > 0.85
    selected = model.best_estimator_.named_steps
    kept = selected["correlation"].get_support()
    assert kept.sum() <= X.shape[1] - 5  # the near-duplicates were dropped


def test_multiclass_regression_survival_baselines_learn() -> None:
    X, patients, _, risk = cohort(seed=5)
    noise = np.random.default_rng(2).normal(0, 0.5, len(risk))
    train, test = _split(patients, seed=1)

    y3 = np.digitize(risk + noise, [-0.5, 0.5])
    grid = {"select__k": [5, 10], "model__C": [0.1, 1.0]}
    clf = make_baseline("multiclass", seed=0, param_grid=grid).fit(
        X[train], y3[train], groups=patients[train]
    )
    assert clf.predict_proba(X[test]).shape[1] == 3
    assert (clf.predict(X[test]) == y3[test]).mean() > 0.6  # chance is ~0.38

    value = 2 * risk + noise
    reg = make_baseline("regression", selection="l1", seed=0).fit(
        X[train], value[train], groups=patients[train]
    )
    assert r2_score(value[test], reg.predict(X[test])) > 0.5  # ~0.75 is the noise ceiling

    from sksurv.metrics import concordance_index_censored

    rng = np.random.default_rng(3)
    time = rng.exponential(np.exp(-2 * risk))
    censor = rng.exponential(2.0, len(risk))
    event = time < censor
    target = survival_target(event, np.minimum(time, censor))
    surv = make_baseline("survival", seed=0).fit(X[train], target[train], groups=patients[train])
    cindex = concordance_index_censored(
        event[test], np.minimum(time, censor)[test], surv.predict(X[test])
    )[0]
    assert cindex > 0.7  # the true risk scores 0.87 on these rows
    assert len(surv.best_params_["model__alphas"]) == 1  # one fixed alpha chosen by inner CV


def test_combat_columns_are_dropped_without_combat_and_fits_repeat() -> None:
    X, patients, sites, risk = cohort(n_patients=90, seed=7)
    y = (risk > 0).astype(int)
    framed = with_site_columns(X, sites)
    grid = {"select__k": [5], "model__C": [0.1]}
    plain = make_baseline("binary", param_grid=grid).fit(X, y, groups=patients)
    with_meta = make_baseline("binary", param_grid=grid).fit(framed, y, groups=patients)
    np.testing.assert_allclose(plain.predict_proba(X), with_meta.predict_proba(framed))


def test_combat_in_pipeline_never_sees_test_rows() -> None:
    """Leave-one-site-out: ComBat inside the tuned pipeline is fitted on training rows only
    (perturbing the held-out site changes no fitted parameter), and the unseen site is
    harmonised from its own rows at prediction time."""
    X, patients, sites, risk = cohort(n_patients=120, seed=9)
    rng = np.random.default_rng(4)
    X = X + np.where(sites == "C", 3.0, 0.0)[:, None] * rng.uniform(
        0.5, 1.5, X.shape[1]
    )  # site C shift
    y = (risk > 0).astype(int)
    covs = pd.DataFrame({"age": rng.integers(40, 80, len(y)).astype(float)})
    held_out = sites == "C"
    framed = with_site_columns(X, sites, covs)
    perturbed = framed.copy()
    perturbed.loc[held_out, X.columns] += rng.normal(0, 10, (held_out.sum(), X.shape[1]))

    grid = {"select__k": [5, 10], "model__C": [0.1, 1.0]}
    fits = [
        make_baseline("binary", combat=True, seed=0, param_grid=grid).fit(
            data[~held_out], y[~held_out], groups=patients[~held_out]
        )
        for data in (framed, perturbed)
    ]
    a, b = (f.best_estimator_.named_steps["combat"].combat_ for f in fits)
    assert fits[0].best_params_ == fits[1].best_params_
    for name in ("grand_mean_", "var_pooled_", "beta_covariates_", "gamma_star_", "delta_star_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert set(a.sites_) == {"A", "B"}
    np.testing.assert_array_equal(
        fits[0].predict_proba(framed[~held_out]), fits[1].predict_proba(framed[~held_out])
    )
    # the unseen site C is predicted (its shift estimated from its own rows, no labels)
    auc = roc_auc_score(y[held_out], fits[0].predict_proba(framed[held_out])[:, 1])
    assert auc > 0.8


def test_unknown_task_is_a_user_error() -> None:
    with pytest.raises(UserError, match="segmentation"):
        make_baseline("segmentation")  # type: ignore[arg-type]
    with pytest.raises(UserError, match="selection"):
        baseline_pipeline("binary", selection="lasso")  # type: ignore[arg-type]


def test_estimators_clone_cleanly() -> None:
    est = make_baseline("survival", combat=True)
    assert clone(est).get_params().keys() == est.get_params().keys()


def test_survival_with_combat_on_unseen_site_and_pickle_roundtrip() -> None:
    import pickle

    from sksurv.metrics import concordance_index_censored

    X, patients, sites, risk = cohort(seed=5)
    rng = np.random.default_rng(3)
    time = rng.exponential(np.exp(-2 * risk))
    censor = rng.exponential(2.0, len(risk))
    event, observed = time < censor, np.minimum(time, censor)
    held_out = sites == "C"
    framed = with_site_columns(X, sites)
    model = make_baseline("survival", combat=True, param_grid={"model__alphas": [[0.1]]}).fit(
        framed[~held_out], survival_target(event, observed)[~held_out], groups=patients[~held_out]
    )
    scores = model.predict(framed[held_out])
    assert concordance_index_censored(event[held_out], observed[held_out], scores)[0] > 0.7
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(framed[held_out]), scores)


# ----------------------------------------------------------------------------- clinical covariates


def _clinical_cohort(seed: int = 11):
    """Radiomics features carrying half of the risk, age and sex the other half."""
    X, patients, sites, risk = cohort(n_patients=160, seed=seed)
    rng = np.random.default_rng(seed)
    age = rng.normal(60, 10, len(risk))
    sex = rng.choice(["F", "M"], len(risk))
    clinical = (age - 60) / 10 + np.where(sex == "M", 1.0, -1.0)
    y = (risk + clinical + rng.normal(0, 0.5, len(risk)) > 0).astype(int)
    covs = pd.DataFrame({"age": age, "sex": sex})
    covs.loc[rng.random(len(covs)) < 0.05, "age"] = np.nan  # missing values are encoded
    covs.loc[rng.random(len(covs)) < 0.05, "sex"] = None
    return with_site_columns(X.reset_index(drop=True), sites, covs), y, patients, risk, clinical


def test_covariates_only_baseline_reads_covariates_and_nothing_else() -> None:
    framed, y, patients, _, clinical = _clinical_cohort()
    train, test = _split(patients, seed=2)
    model = make_clinical_baseline("binary", seed=0).fit(
        framed[train], y[train], groups=patients[train]
    )
    scores = model.predict_proba(framed[test])[:, 1]
    # the model is a monotone function of the covariates' signal: rank agreement with it
    assert roc_auc_score((clinical[test] > 0).astype(int), scores) > 0.9
    shuffled = framed.copy()
    features = [c for c in framed.columns if not str(c).startswith("combat__")]
    shuffled[features] = shuffled[features].to_numpy()[::-1]  # radiomics features scrambled
    np.testing.assert_array_equal(model.predict_proba(shuffled[test])[:, 1], scores)


def test_covariates_join_the_selected_features_and_help() -> None:
    framed, y, patients, _, _ = _clinical_cohort(seed=12)
    train, test = _split(patients, seed=3)
    grid = {"features__radiomics__select__k": [5], "model__C": [1.0]}
    fits = {
        flag: make_baseline(
            "binary",
            seed=0,
            covariates=flag,
            param_grid=grid if flag else {"select__k": [5], "model__C": [1.0]},
        ).fit(framed[train], y[train], groups=patients[train])
        for flag in (False, True)
    }
    auc = {f: roc_auc_score(y[test], m.predict_proba(framed[test])[:, 1]) for f, m in fits.items()}
    assert auc[True] > auc[False] + 0.05  # the covariates carry half of the risk
    # 5 selected features + age, its missing indicator, and sex as F / M / missing
    assert fits[True].best_estimator_.named_steps["model"].coef_.shape[1] == 5 + 2 + 3
    # unseen category at prediction time: encoded as no known level, still predicted
    odd = framed[test].copy()
    odd["combat__cov__sex"] = "X"
    assert np.isfinite(fits[True].predict_proba(odd)).all()


def test_covariates_with_combat_fit_and_predict() -> None:
    framed, y, patients, _, _ = _clinical_cohort(seed=13)
    # ComBat's protected covariates must be complete (it refuses missing values)
    framed = framed.fillna({"combat__cov__age": 60.0, "combat__cov__sex": "F"})
    model = make_baseline("binary", combat=True, covariates=True, seed=0).fit(
        framed, y, groups=patients
    )
    assert roc_auc_score(y, model.predict_proba(framed)[:, 1]) > 0.8
    assert "features__radiomics__select__k" in model.best_params_
