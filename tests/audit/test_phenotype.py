"""The phenotype probe: out-of-fold ridge predictions of the generator's phenotypes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepradiomics.audit.phenotype import (
    PHENOTYPES,
    phenotype_probe,
    present_phenotypes,
    probe_predictions,
)


def _truth(n: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame({name: rng.random(n) for name in PHENOTYPES})


def test_a_feature_that_holds_a_phenotype_is_read_and_noise_is_not() -> None:
    rng = np.random.default_rng(0)
    n = 200
    truth = _truth(n, rng)
    signal = truth["texture_anisotropy"].to_numpy()
    # one informative column among 30 noise columns, at a noise level of r ~ 0.9
    X = np.column_stack([signal + 0.1 * rng.normal(size=n), rng.normal(size=(n, 30))])
    probe = phenotype_probe(X, truth, [f"p{i // 2}" for i in range(n)], n_boot=200)
    assert probe is not None and probe["n_features"] == 31
    r = probe["r"]
    assert set(r) == set(PHENOTYPES)
    held = r["texture_anisotropy"]
    assert held["value"] > 0.8 and held["ci_low"] > 0.7
    assert held["n"] == n and held["n_patients"] == n // 2
    for name in PHENOTYPES:  # the others: nothing to read, CIs around 0
        if name != "texture_anisotropy":
            assert abs(r[name]["value"]) < 0.3, name


def test_blocks_are_probed_in_their_own_space() -> None:
    """Two folds' embeddings code the phenotype with opposite signs: pooled, a linear probe
    reads nothing; probed inside each block it reads both."""
    rng = np.random.default_rng(1)
    n = 160
    truth = _truth(n, rng)
    size = truth["diameter_mm"].to_numpy()
    block = np.repeat([0, 1], n // 2)
    sign = np.where(block == 0, 1.0, -1.0)
    X = np.column_stack([sign * size + 0.05 * rng.normal(size=n), rng.normal(size=(n, 5))])
    Y = truth[["diameter_mm"]].to_numpy()
    inside = probe_predictions(X, Y, blocks=block)[:, 0]
    pooled = probe_predictions(X, Y)[:, 0]
    assert np.corrcoef(inside, size)[0, 1] > 0.9
    assert abs(np.corrcoef(pooled, size)[0, 1]) < 0.3


def test_no_prediction_uses_its_own_row() -> None:
    """One-hot rows let an in-sample ridge fit each row's own value; out of fold they carry
    nothing, so the predictions do not follow the target."""
    rng = np.random.default_rng(2)
    n = 60
    y = rng.random(n)
    X = np.eye(n)
    pred = probe_predictions(X, y[:, None])[:, 0]
    assert np.isfinite(pred).all()
    assert abs(np.corrcoef(pred, y)[0, 1]) < 0.35


def test_missing_phenotypes_are_skipped_and_none_means_no_probe() -> None:
    rng = np.random.default_rng(3)
    truth = _truth(40, rng)
    partial = truth[["diameter_mm", "necrosis"]].copy()
    partial.loc[0, "necrosis"] = np.nan  # a phenotype with a missing value is not probed
    assert present_phenotypes(partial) == ["diameter_mm"]
    X = rng.normal(size=(40, 3))
    probe = phenotype_probe(X, partial, n_boot=20)
    assert probe is not None and list(probe["r"]) == ["diameter_mm"]
    assert phenotype_probe(X, pd.DataFrame({"risk": rng.random(40)}), n_boot=20) is None
    assert phenotype_probe(np.ones((40, 2)), truth, n_boot=20) is None  # constant features


def test_a_block_too_small_to_split_is_left_out() -> None:
    rng = np.random.default_rng(4)
    truth = _truth(45, rng)
    X = rng.normal(size=(45, 4))
    block = np.array([0] * 40 + [1] * 5)  # 5 patients: under two folds of 3
    pred = probe_predictions(X, truth.to_numpy(), blocks=block)
    assert np.isfinite(pred[:40]).all() and np.isnan(pred[40:]).all()
    probe = phenotype_probe(X, truth, blocks=block, n_boot=20)
    assert probe["r"]["diameter_mm"]["n"] == 40


@pytest.mark.parametrize("seed", [0, 1])
def test_the_probe_is_reproducible(seed: int) -> None:
    rng = np.random.default_rng(5)
    truth = _truth(50, rng)
    X = rng.normal(size=(50, 6))
    a = phenotype_probe(X, truth, seed=seed, n_boot=50)
    b = phenotype_probe(X, truth, seed=seed, n_boot=50)
    assert a == b
