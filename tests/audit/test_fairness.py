from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from deepradiomics.audit.fairness import MISSING, Outcomes, subgroup_audit
from deepradiomics.evaluate import metrics as M
from deepradiomics.evaluate.bootstrap import patient_codes, stratified_resample_counts

fairlearn_metrics = pytest.importorskip("fairlearn.metrics", reason="fairlearn (test extra) absent")


def binary_cohort(n: int = 400, seed: int = 0):
    """Three groups (one small), scores informative in all, two cases for some patients."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["F", "M", "X"], n, p=[0.5, 0.45, 0.05])
    y = rng.integers(0, 2, n)
    shift = np.where(group == "M", 1.5, 0.8)  # M better separated than F
    p = 1 / (1 + np.exp(-(shift * (2 * y - 1) + rng.normal(0, 1.2, n))))
    patients = np.arange(n) // 2
    group = np.array([group[2 * (i // 2)] for i in range(n)])  # one group per patient
    return group, y, p, patients


def test_point_values_match_fairlearn_metricframe():
    group, y, p, patients = binary_cohort()
    threshold = 0.45
    audit = subgroup_audit(
        group,
        Outcomes("binary", p, y_true=y, threshold=threshold),
        patients=patients,
        n_boot=0,
        min_patients=10,
        min_events=3,
    )
    pred = (p >= threshold).astype(int)
    frame = fairlearn_metrics.MetricFrame(
        metrics={
            "sensitivity": fairlearn_metrics.true_positive_rate,
            "specificity": fairlearn_metrics.true_negative_rate,
        },
        y_true=y,
        y_pred=pred,
        sensitive_features=group,
    )
    scored = fairlearn_metrics.MetricFrame(
        metrics={
            "auc": roc_auc_score,
            "brier": brier_score_loss,
            "calibration_slope": M.calibration_slope,
            "calibration_intercept": M.calibration_intercept,
        },
        y_true=y,
        y_pred=p,
        sensitive_features=group,
    )
    assert audit["compared"] == ["F", "M", "X"]
    for fl in (frame, scored):
        for metric in fl.by_group.columns:
            for g, expected in fl.by_group[metric].items():
                assert audit["by_group"][g][metric]["value"] == pytest.approx(expected, abs=1e-6)
            assert audit["difference"][metric]["value"] == pytest.approx(
                fl.difference()[metric], abs=1e-6
            )
            assert audit["group_min"][metric]["value"] == pytest.approx(
                fl.group_min()[metric], abs=1e-6
            )
            assert audit["overall"][metric]["value"] == pytest.approx(fl.overall[metric], abs=1e-6)
    for metric in ("auc", "sensitivity", "specificity", "brier"):
        expected = scored.ratio()[metric] if metric in scored.by_group else frame.ratio()[metric]
        assert audit["ratio"][metric]["value"] == pytest.approx(expected, abs=1e-6)
    assert "calibration_intercept" not in audit["ratio"]  # signed: a ratio means nothing
    expected = fairlearn_metrics.equalized_odds_difference(y, pred, sensitive_features=group)
    assert audit["equalized_odds_difference"]["value"] == pytest.approx(expected, abs=1e-9)


def test_small_group_is_listed_but_not_compared():
    group, y, p, patients = binary_cohort()
    audit = subgroup_audit(
        group,
        Outcomes("binary", p, y_true=y),
        patients=patients,
        n_boot=0,
        min_patients=30,
        min_events=10,
    )
    small = audit["by_group"]["X"]
    assert small["n_patients"] < 30 and small["compared"] is False
    assert audit["not_compared"] == ["X"] and audit["compared"] == ["F", "M"]
    assert small["auc"]["value"] == pytest.approx(roc_auc_score(y[group == "X"], p[group == "X"]))
    two = {g: audit["by_group"][g]["auc"]["value"] for g in ("F", "M")}
    assert audit["difference"]["auc"]["value"] == pytest.approx(abs(two["F"] - two["M"]))
    sizes = {g: len(set(patients[group == g])) for g in ("F", "M")}
    ref, other = sorted(sizes, key=sizes.get, reverse=True)
    assert audit["reference"] == ref  # the larger compared group
    assert set(audit["vs_reference"]) == {other}
    assert audit["vs_reference"][other]["auc"]["value"] == pytest.approx(two[other] - two[ref])
    counts = audit["by_group"]["F"]
    assert counts["n_cases"] == (group == "F").sum()
    assert counts["n_positives"] == y[group == "F"].sum()
    assert counts["n_patients"] == len(set(patients[group == "F"]))


def test_events_rule_uses_the_rarer_outcome():
    group, y, p, patients = binary_cohort()
    y = y.copy()
    y[(group == "M")] = 0
    y[np.flatnonzero(group == "M")[:4]] = 1  # 4 positives in M
    audit = subgroup_audit(
        group,
        Outcomes("binary", p, y_true=y),
        patients=patients,
        n_boot=0,
        min_patients=25,
        min_events=5,
    )
    assert audit["by_group"]["M"]["n_patients"] >= 25
    assert audit["by_group"]["M"]["compared"] is False
    assert "difference" not in audit  # only F is left: nothing to compare
    assert audit["compared"] == ["F"] and audit["not_compared"] == ["M", "X"]


def test_cis_detect_a_real_gap_and_not_an_absent_one():
    rng = np.random.default_rng(3)
    n = 600
    group = np.repeat(["a", "b"], n // 2)
    y = rng.integers(0, 2, n)
    noise = np.where(group == "a", 0.6, 3.0)  # a: good model, b: nearly random
    p = 1 / (1 + np.exp(-((2 * y - 1) + rng.normal(0, 1, n) * noise)))
    out = subgroup_audit(group, Outcomes("binary", p, y_true=y), n_boot=400, seed=1)
    gap = out["vs_reference"]["b"]["auc"]
    assert gap["ci_high"] < 0  # b is worse, and the interval says so
    for g in ("a", "b"):
        e = out["by_group"][g]["auc"]
        assert e["ci_low"] < e["value"] < e["ci_high"]
    same = np.where(group == "a", 1.0, 1.0)
    p2 = 1 / (1 + np.exp(-((2 * y - 1) + rng.normal(0, 1, n) * same)))
    out2 = subgroup_audit(group, Outcomes("binary", p2, y_true=y), n_boot=400, seed=1)
    null = out2["vs_reference"]["b"]["auc"]
    assert null["ci_low"] < 0 < null["ci_high"]
    again = subgroup_audit(group, Outcomes("binary", p2, y_true=y), n_boot=400, seed=1)
    assert again == out2


def test_stratified_resample_keeps_group_sizes_and_patients_together():
    rng = np.random.default_rng(0)
    patients = np.repeat(np.arange(50), rng.integers(1, 4, 50))
    n = len(patients)
    stratum_of_patient = np.where(np.arange(50) < 12, "small", "large")
    strata = stratum_of_patient[patients]
    codes, _ = patient_codes(patients, n)
    for counts in stratified_resample_counts(patients, strata, n, 300, seed=4):
        for row in counts:
            per_patient = np.zeros(50, dtype=int)
            per_patient[codes] = row  # every case of a patient has the patient's count
            assert np.array_equal(per_patient[codes], row)
            assert per_patient[:12].sum() == 12 and per_patient[12:].sum() == 38


def test_survival_c_index_by_group_and_missing_labels():
    rng = np.random.default_rng(5)
    n = 200
    risk = rng.normal(size=n)
    time = rng.exponential(np.exp(-risk))
    event = (rng.uniform(size=n) < 0.7).astype(int)
    site = rng.choice(["s1", "s2", ""], n, p=[0.45, 0.45, 0.1])
    out = subgroup_audit(
        site,
        Outcomes("survival", risk, time=time, event=event),
        n_boot=50,
        min_patients=5,
        min_events=2,
    )
    assert set(out["by_group"]) == {MISSING, "s1", "s2"}
    for g, label in (("s1", "s1"), (MISSING, "")):
        keep = site == label
        assert out["by_group"][g]["c_index"]["value"] == pytest.approx(
            M.harrell_c_index(time[keep], event[keep], risk[keep])
        )
        assert out["by_group"][g]["n_events"] == event[keep].sum()
    assert out["metrics"] == ["c_index"] and "equalized_odds_difference" not in out


def test_per_case_threshold_applies_to_each_case():
    group, y, p, patients = binary_cohort()
    cut = np.where(np.arange(len(y)) % 2 == 0, 0.3, 0.7)
    out = subgroup_audit(group, Outcomes("binary", p, y_true=y, threshold=cut), n_boot=0)
    keep = (group == "F") & (y == 1)
    assert out["by_group"]["F"]["sensitivity"]["value"] == pytest.approx(
        np.mean(p[keep] >= cut[keep])
    )


def test_outcomes_need_the_task_fields():
    with pytest.raises(ValueError, match="needs time"):
        Outcomes("survival", np.zeros(3))
    with pytest.raises(ValueError, match="segmentation"):
        Outcomes("segmentation", np.zeros(3))
