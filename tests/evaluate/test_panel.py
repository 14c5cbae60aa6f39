from __future__ import annotations

import json

import numpy as np
import pytest

from deepradiomics.evaluate import metrics as M
from deepradiomics.evaluate.panel import metric_panel, segmentation_scores, subgroup_panels

KEYS = {"value", "ci_low", "ci_high", "n", "n_patients", "n_boot", "n_skipped"}


def binary_cohort(n: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(float)
    p = 1 / (1 + np.exp(-(2 * y - 1 + rng.normal(0, 1.2, n))))
    patients = np.arange(n) // 2
    site = np.where(rng.random(n) < 0.5, "north", "south")
    return y, p, patients, site


def assert_sane(panel: dict) -> None:
    for name, est in panel.items():
        assert set(est) == KEYS, name
        if est["value"] is not None and est["ci_low"] is not None:
            assert (
                est["ci_low"] <= est["value"] + 1e-12 and est["value"] <= est["ci_high"] + 1e-12
            ), name
    json.dumps(panel)  # metrics.json-ready


def test_binary_panel_values_match_the_metric_functions():
    y, p, patients, _ = binary_cohort()
    panel = metric_panel("binary", y, p, groups=patients, n_boot=1000, seed=0, threshold=0.4)
    assert list(panel) == [
        "auc",
        "sensitivity",
        "specificity",
        "balanced_accuracy",
        "accuracy",
        "brier",
        "calibration_slope",
        "calibration_intercept",
        "ece",
    ]
    assert_sane(panel)
    assert panel["auc"]["value"] == pytest.approx(M.roc_auc(y, p))
    assert panel["sensitivity"]["value"] == pytest.approx(M.sensitivity(y, p, 0.4))
    assert panel["specificity"]["value"] == pytest.approx(M.specificity(y, p, 0.4))
    assert panel["balanced_accuracy"]["value"] == pytest.approx(M.balanced_accuracy(y, p, 0.4))
    assert panel["brier"]["value"] == pytest.approx(M.brier_score(y, p))
    assert panel["calibration_slope"]["value"] == pytest.approx(M.calibration_slope(y, p))
    assert panel["calibration_intercept"]["value"] == pytest.approx(M.calibration_intercept(y, p))
    assert panel["ece"]["value"] == pytest.approx(M.expected_calibration_error(y, p))
    assert panel["auc"]["n"] == 300 and panel["auc"]["n_patients"] == 150
    assert panel["auc"]["n_boot"] == 1000


def test_same_seed_same_panel():
    y, p, patients, _ = binary_cohort(120, seed=1)
    a = metric_panel("binary", y, p, groups=patients, n_boot=200, seed=3)
    b = metric_panel("binary", y, p, groups=patients, n_boot=200, seed=3)
    c = metric_panel("binary", y, p, groups=patients, n_boot=200, seed=4)
    assert a == b and a != c


def test_multiclass_and_regression_panels():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 150)
    logits = rng.normal(0, 1, (150, 3)) + 2 * np.eye(3)[y]
    prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    panel = metric_panel("multiclass", y, prob, n_boot=200)
    assert list(panel) == ["macro_auc", "accuracy"]
    assert panel["macro_auc"]["value"] == pytest.approx(M.macro_auc(y, prob))
    assert_sane(panel)
    target = rng.normal(60, 10, 150)
    pred = target + rng.normal(0, 5, 150)
    reg = metric_panel("regression", target, pred, n_boot=200)
    assert list(reg) == ["mae", "rmse", "r2"]
    assert reg["rmse"]["value"] == pytest.approx(M.rmse(target, pred))
    assert reg["r2"]["value"] == pytest.approx(M.r2(target, pred))
    assert_sane(reg)


def survival_cohort(n: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    log_risk = rng.normal(0, 1, n)
    t_event = rng.exponential(500 * np.exp(-log_risk))
    t_cens = rng.uniform(100, 1500, n)
    return np.minimum(t_event, t_cens), (t_event <= t_cens).astype(int), log_risk


def test_survival_panel_with_breslow_baseline():
    time, event, risk = survival_cohort()
    t_train, e_train, r_train = survival_cohort(300, seed=1)
    baseline = M.BreslowBaseline().fit(r_train, t_train, e_train)
    panel = metric_panel(
        "survival",
        y_score=risk,
        time=time,
        event=event,
        baseline=baseline,
        auc_times=[200, 400],
        ibs_times=np.linspace(100, 800, 15),
        n_boot=300,
        seed=0,
        train_time=t_train,
        train_event=e_train,
    )
    assert list(panel) == ["c_index", "c_index_uno", "td_auc", "td_auc_t200", "td_auc_t400", "ibs"]
    assert_sane(panel)
    assert panel["c_index"]["value"] == pytest.approx(M.harrell_c_index(time, event, risk))
    tau = M.default_tau(time)
    assert panel["c_index_uno"]["value"] == pytest.approx(
        M.uno_c_index(time, event, risk, tau, t_train, e_train)
    )
    td = M.time_dependent_auc(time, event, risk, [200, 400], t_train, e_train)
    assert panel["td_auc_t400"]["value"] == pytest.approx(td.auc[1])
    assert panel["td_auc"]["value"] == pytest.approx(td.mean_auc)
    grid = np.linspace(100, 800, 15)
    ibs = M.integrated_brier_score(
        time, event, baseline.predict_survival(risk, grid), grid, t_train, e_train
    )
    assert panel["ibs"]["value"] == pytest.approx(ibs)
    assert 0.6 < panel["c_index"]["value"] < 0.85  # the risk is informative by construction


def test_survival_panel_defaults_and_pair_kernel_fallback(monkeypatch):
    time, event, risk = survival_cohort(150, seed=3)
    fast = metric_panel("survival", y_score=risk, time=time, event=event, n_boot=100)
    assert {"c_index", "c_index_uno", "td_auc"} <= set(fast) and "ibs" not in fast
    monkeypatch.setattr("deepradiomics.evaluate.panel.PAIRWISE_MAX_N", 10)
    slow = metric_panel("survival", y_score=risk, time=time, event=event, n_boot=100)
    for name in ("c_index", "c_index_uno"):
        assert slow[name]["ci_low"] == pytest.approx(fast[name]["ci_low"], abs=1e-12)
        assert slow[name]["ci_high"] == pytest.approx(fast[name]["ci_high"], abs=1e-12)


def test_segmentation_panel():
    rng = np.random.default_rng(5)
    truths, preds = [], []
    for _ in range(12):
        t = np.zeros((12, 16, 16), bool)
        t[3:9, 4:12, 4:12] = True
        p = np.roll(t, rng.integers(0, 3), axis=2).astype(float) * 0.9
        truths.append(t)
        preds.append(p)
    spacing = (3.0, 1.0, 1.0)
    panel = metric_panel("segmentation", truths, preds, spacing=spacing, n_boot=200)
    scores = segmentation_scores(preds, truths, spacing)
    assert panel["dice"]["value"] == pytest.approx(scores["dice"].mean())
    assert panel["hd95"]["value"] == pytest.approx(scores["hd95"].mean())
    # the predictions are the reference shifted (same volume), except where they roll over
    assert panel["volume_diff_ml"]["value"] == pytest.approx(0.0, abs=1e-12)
    truths[0] = np.zeros_like(truths[0])
    truths[0][3:9, 4:12, 4:8] = True  # half the reference: +192 voxels x 3 mm^3 predicted
    scores = segmentation_scores(preds, truths, spacing)
    assert scores["volume_diff_ml"][0] == pytest.approx(192 * 3.0 / 1000)
    assert scores["abs_volume_diff_ml"][0] == pytest.approx(192 * 3.0 / 1000)
    truths[1] = np.zeros_like(truths[1])  # empty reference: HD95 undefined, left out
    panel = metric_panel("segmentation", truths, preds, spacing=spacing, n_boot=0)
    scores = segmentation_scores(preds, truths, spacing)
    assert np.isnan(scores["hd95"][1])
    assert panel["hd95"]["value"] == pytest.approx(np.nanmean(scores["hd95"]))
    assert_sane(panel)


def test_subgroup_panels_subset_every_per_case_input():
    y, p, patients, site = binary_cohort(240, seed=6)
    out = subgroup_panels("binary", site, y, p, groups=patients, n_boot=200, seed=1, threshold=0.5)
    assert set(out) == {"pooled", "subgroups"} and set(out["subgroups"]) == {"north", "south"}
    assert out["pooled"] == metric_panel("binary", y, p, groups=patients, n_boot=200, seed=1)
    north = site == "north"
    expect = metric_panel("binary", y[north], p[north], groups=patients[north], n_boot=200, seed=1)
    assert out["subgroups"]["north"] == expect
    assert out["subgroups"]["north"]["auc"]["n"] == north.sum()


def test_per_case_thresholds_apply_each_fold_its_own_cut():
    y, p, patients, site = binary_cohort(240, seed=8)
    fold = np.arange(240) % 3
    cuts = np.array([0.3, 0.5, 0.7])[fold]
    panel = metric_panel("binary", y, p, groups=patients, n_boot=200, seed=1, threshold=cuts)
    called = p >= cuts
    assert panel["sensitivity"]["value"] == pytest.approx(called[y == 1].mean())
    assert panel["specificity"]["value"] == pytest.approx((~called)[y == 0].mean())
    assert panel["sensitivity"]["value"] != pytest.approx(  # not the single 0.5 cut
        metric_panel("binary", y, p, n_boot=0, threshold=0.5)["sensitivity"]["value"]
    )
    assert_sane(panel)
    # subgroups take their own cases' thresholds
    out = subgroup_panels("binary", site, y, p, groups=patients, n_boot=0, threshold=cuts)
    north = site == "north"
    expect = metric_panel("binary", y[north], p[north], n_boot=0, threshold=cuts[north])
    assert out["subgroups"]["north"]["accuracy"]["value"] == expect["accuracy"]["value"]
    with pytest.raises(ValueError, match="thresholds"):
        metric_panel("binary", y, p, n_boot=0, threshold=cuts[:10])


def test_survival_subgroups_share_the_pooled_times():
    time, event, risk = survival_cohort(200, seed=7)
    site = np.repeat(["a", "b"], 100)
    out = subgroup_panels("survival", site, y_score=risk, time=time, event=event, n_boot=50)
    assert set(out["subgroups"]["a"]) == set(out["pooled"])


def test_panel_input_errors():
    with pytest.raises(ValueError, match="needs time, event"):
        metric_panel("survival", y_score=[0.1, 0.2])
    with pytest.raises(ValueError, match="unknown task"):
        metric_panel("ranking", [0, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="3 entries but y_score has 2"):
        metric_panel("binary", [0, 1, 1], [0.2, 0.3])
