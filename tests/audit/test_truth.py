"""Truth audit: known answers for the oracle and the component correlations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from deepradiomics.audit.truth import (
    COMPONENTS,
    component_correlations,
    read_ground_truth,
    spearman,
    spearman_batch,
    truth_audit,
    truth_for_cases,
)
from deepradiomics.errors import UserError
from deepradiomics.evaluate.bootstrap import bootstrap_distribution, resample_counts


def _truth(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    eta = {f"eta_{c}": rng.normal(0, 1, n) for c in COMPONENTS}
    table = pd.DataFrame({"case_id": [f"c{i}" for i in range(n)], **eta})
    table["eta"] = -0.4 + sum(table[f"eta_{c}"] for c in COMPONENTS)
    table["risk"] = 1 / (1 + np.exp(-table["eta"]))
    table["label"] = (rng.random(n) < table["risk"]).astype(int)
    return table


def test_spearman_matches_scipy_with_ties() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 5, 60).astype(float), rng.normal(size=60)
    assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    assert spearman(np.exp(y), y) == pytest.approx(1.0)
    assert np.isnan(spearman(np.ones(10), y[:10]))


def test_spearman_batch_equals_the_resampled_loop() -> None:
    """Every resample (patients of two scans, tied values in both, a constant resample)
    gives what ``spearman`` gives on the resampled indices."""
    rng = np.random.default_rng(2)
    n = 40
    x = rng.integers(0, 6, n).astype(float)  # many ties
    y = np.round(x + rng.normal(size=n), 1)
    groups = np.repeat(np.arange(n // 2), 2)
    counts = np.vstack([next(resample_counts(groups, n, 64, seed=3)), np.eye(n, dtype=int)[:2]])
    counts[-1, :3] = 1  # three cases with x = y = its own value (a degenerate resample)
    x[:3], y[:3] = 7.0, 9.0
    cases = np.arange(n)
    loop = np.array([spearman(x[np.repeat(cases, c)], y[np.repeat(cases, c)]) for c in counts])
    batch = spearman_batch(x, y, counts)
    assert np.isnan(batch[-2:]).all() and np.isnan(loop[-2:]).all()
    np.testing.assert_allclose(batch, loop, rtol=0, atol=1e-12)
    # and through the bootstrap: the same distribution with or without the batch kernel
    stat = lambda idx: spearman(x[idx], y[idx])
    kwargs = {"groups": groups, "n_boot": 300, "seed": 5}
    np.testing.assert_allclose(
        bootstrap_distribution(stat, n, **kwargs),
        bootstrap_distribution(
            stat, n, batch_statistic=lambda c: spearman_batch(x, y, c), **kwargs
        ),
        rtol=0,
        atol=1e-12,
    )


def test_a_score_that_is_one_component_correlates_with_it_only() -> None:
    t = _truth()
    score = 1 / (1 + np.exp(-3 * t["eta_spatial"]))  # monotone in the spatial part
    corr = component_correlations(score, t, groups=t["case_id"], n_boot=200, seed=0)
    assert corr["spatial"]["value"] == pytest.approx(1.0)
    assert corr["spatial"]["ci_low"] == pytest.approx(1.0)
    for comp in ("visible", "clinical", "site"):  # independent draws, n = 400: |r| < 0.15
        est = corr[comp]
        assert abs(est["value"]) < 0.15
        assert est["ci_low"] < est["value"] < est["ci_high"]
        # sd of r at n = 400 is ~0.05: a 95 % interval ~0.2 wide
        assert 0.12 < est["ci_high"] - est["ci_low"] < 0.3


def test_audit_oracle_is_the_true_risks_auc(tmp_path: Path) -> None:
    t = _truth()
    path = tmp_path / "ground_truth.csv"
    t.to_csv(path, index=False)
    truth = read_ground_truth(path)
    y = t["label"].to_numpy()
    order = np.arange(len(t))[::-1]  # models report cases in fold order, not cohort order
    score = t["eta_visible"].to_numpy()[order]
    out = truth_audit(
        "binary", truth, t["case_id"], t["case_id"], y, {"m": (order, score)}, n_boot=100, seed=0
    )
    auc = out["oracle"]["auc"]
    assert auc["value"] == pytest.approx(roc_auc_score(y, t["risk"]))
    assert auc["ci_low"] < auc["value"] < auc["ci_high"]
    image = (t["eta_visible"] + t["eta_spatial"]).to_numpy()
    assert out["oracle_image"]["auc"]["value"] == pytest.approx(roc_auc_score(y, image))
    comps = out["models"]["m"]["components"]
    assert comps["visible"]["value"] == pytest.approx(1.0)
    assert set(comps) == set(COMPONENTS)


def test_survival_oracle_uses_the_linear_predictor(tmp_path: Path) -> None:
    from deepradiomics.evaluate.metrics import harrell_c_index

    t = _truth(200)
    rng = np.random.default_rng(2)
    time = rng.exponential(1.0, len(t)) * np.exp(-t["eta"].to_numpy())
    event = (rng.random(len(t)) < 0.7).astype(float)
    path = tmp_path / "gt.csv"
    t.to_csv(path, index=False)
    targets = np.column_stack([time, event])
    out = truth_audit(
        "survival",
        read_ground_truth(path),
        t["case_id"],
        t["case_id"],
        targets,
        {"m": (np.arange(len(t)), t["eta_site"].to_numpy())},
        n_boot=50,
    )
    assert out["oracle"]["c_index"]["value"] == pytest.approx(
        harrell_c_index(time, event, t["eta"].to_numpy())
    )
    assert out["models"]["m"]["components"]["site"]["value"] == pytest.approx(1.0)


def test_bad_ground_truth_names_the_problem(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="file not found"):
        read_ground_truth(tmp_path / "none.csv")
    t = _truth(10)
    t.drop(columns="eta_spatial").to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(UserError, match="missing column.*eta_spatial"):
        read_ground_truth(tmp_path / "a.csv")
    t.assign(risk=["x"] + [0.5] * 9).to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(UserError, match="line 2: column risk: 'x'"):
        read_ground_truth(tmp_path / "b.csv")
    pd.concat([t, t.iloc[:1]]).to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(UserError, match="case_id c0 appears more than once"):
        read_ground_truth(tmp_path / "c.csv")
    t.to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(UserError, match="no row for case zz and 1 more"):
        truth_for_cases(read_ground_truth(tmp_path / "d.csv"), ["c1", "zz", "yy"])


def test_other_tasks_are_refused(tmp_path: Path) -> None:
    t = _truth(20)
    t.to_csv(tmp_path / "gt.csv", index=False)
    with pytest.raises(UserError, match="binary and survival"):
        truth_audit(
            "regression",
            read_ground_truth(tmp_path / "gt.csv"),
            t["case_id"],
            t["case_id"],
            t["eta"].to_numpy(),
            {"m": (np.arange(20), np.zeros(20))},
        )
