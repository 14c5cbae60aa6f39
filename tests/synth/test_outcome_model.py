"""The outcome model of the synthetic cohort, checked on large case tables (no images needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_predict
from sksurv.metrics import concordance_index_censored

from deepradiomics.synth import draw_cohort
from deepradiomics.synth.population import COEF, INTERCEPT

N = 4000


def cramers_v(a: pd.Series, b: pd.Series) -> float:
    table = pd.crosstab(a, b)
    chi2 = chi2_contingency(table, correction=False)[0]
    return float(np.sqrt(chi2 / (len(a) * (min(table.shape) - 1))))


def site_auc(t: pd.DataFrame) -> float:
    """Cross-validated AUC of the label from the site one-hot alone."""
    x = pd.get_dummies(t["site"]).to_numpy(float)
    p = cross_val_predict(LogisticRegression(), x, t["label"], cv=5, method="predict_proba")[:, 1]
    return roc_auc_score(t["label"], p)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return draw_cohort(N, 4, seed=0, confounding=0.0)[1]


def test_risk_is_the_known_function(table: pd.DataFrame) -> None:
    t = table
    z_u = lambda u: (u - 0.5) * np.sqrt(12)
    eta_spatial = COEF["core_eccentricity"] * z_u(t["core_eccentricity"]) + COEF[
        "texture_anisotropy"
    ] * z_u(t["texture_anisotropy"])
    assert np.allclose(eta_spatial, t["eta_spatial"])
    parts = t[["eta_visible", "eta_spatial", "eta_clinical", "eta_site"]].sum(axis=1)
    assert np.allclose(t["eta"], INTERCEPT + parts)
    assert np.allclose(t["risk"], 1 / (1 + np.exp(-t["eta"])))
    assert (t["eta_site"] == 0).all()


def test_outcome_depends_on_phenotype(table: pd.DataFrame) -> None:
    t = table
    assert 0.3 < t["label"].mean() < 0.6
    assert roc_auc_score(t["label"], t["risk"]) > 0.78
    # the spatial part alone carries real signal, as much as the visible part
    assert roc_auc_score(t["label"], t["eta_spatial"]) > 0.68
    assert roc_auc_score(t["label"], t["eta_visible"]) > 0.68
    assert t["eta_spatial"].var() > 0.3 * (t["eta"] - t["eta_site"]).var()
    # covariates matter too
    assert roc_auc_score(t["label"], t["age"]) > 0.53
    c = concordance_index_censored(t["event"].astype(bool), t["time"], t["eta"])[0]
    assert c > 0.75
    censored = 1 - t["event"].mean()
    assert 0.2 < censored < 0.6
    assert (t["time"] <= t["time_event"] + 0.01).all() and (
        t["time"] <= t["time_censor"] + 0.01
    ).all()


def test_site_independent_of_outcome_without_confounding(table: pd.DataFrame) -> None:
    assert cramers_v(table["site"], table["label"]) < 0.06
    assert site_auc(table) < 0.55
    # and of the phenotype: site means of the spatial and visible parts agree
    means = table.groupby("site")[["eta_spatial", "eta_visible"]].mean()
    assert means.abs().to_numpy().max() < 0.15


def test_confounding_knob_grows_site_outcome_association() -> None:
    v, auc = [], []
    for c in (0.0, 0.25, 0.5, 1.0):
        t = draw_cohort(N, 4, seed=1, confounding=c)[1]
        v.append(cramers_v(t["site"], t["label"]))
        auc.append(site_auc(t))
    assert np.all(np.diff(v) > 0) and np.all(np.diff(auc) > 0)
    assert v[0] < 0.06 and v[-1] > 0.4
    assert auc[-1] > 0.75


def test_confounding_does_not_change_the_phenotypes() -> None:
    a = draw_cohort(300, 4, seed=2, confounding=0.0)[1]
    b = draw_cohort(300, 4, seed=2, confounding=1.0)[1]
    for col in ("site", "age", "diameter_ref_mm", "core_eccentricity", "eta_spatial"):
        assert (a[col] == b[col]).all(), col


def test_patients_sites_and_second_scans() -> None:
    sites, t = draw_cohort(300, 5, seed=3, confounding=0.3)
    assert len(sites) == 5 and t["site"].nunique() == 5
    assert [s.slice_thickness_mm for s in sites] == [1, 2, 3, 4, 5]
    assert [s.kernel for s in sites] == ["smooth", "sharp"] * 2 + ["smooth"]
    assert sorted(s.outcome_logit for s in sites) == pytest.approx([-2.5, -1.25, 0, 1.25, 2.5])
    assert (t["scan"] == 2).sum() == 15 and t["patient_index"].nunique() == 285
    assert list(t["case_index"]) == list(range(300))
    second = t[t["scan"] == 2]
    assert second.index.min() < 250  # interleaved, not all at the end
    first = t[t["scan"] == 1].set_index("patient_index").loc[second["patient_index"]]
    for col in ("site", "label", "time", "event", "risk", "core_eccentricity"):
        assert (first[col].to_numpy() == second[col].to_numpy()).all(), col


def test_draw_is_deterministic() -> None:
    a = draw_cohort(100, 3, seed=5, confounding=0.5)
    b = draw_cohort(100, 3, seed=5, confounding=0.5)
    pd.testing.assert_frame_equal(a[1], b[1])
    assert a[0] == b[0]
    c = draw_cohort(100, 3, seed=6, confounding=0.5)[1]
    assert not np.allclose(a[1]["risk"], c["risk"])
