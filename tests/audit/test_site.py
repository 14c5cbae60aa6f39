"""The site audit's pure functions against known answers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from deepradiomics.audit.site import (
    intensity_features,
    multinomial_fit_predict,
    site_only_baseline,
    site_only_scores,
    site_probe,
    site_verdict,
)


def _cohort(n_per_site: int = 30, shift: float = 0.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1, 2], n_per_site)
    X = rng.normal(size=(len(y), 8))
    X[:, 0] += shift * y
    sites = np.array(["A", "B", "C"])[y]
    patients = np.array([f"p{i // 2}" for i in range(len(y))])  # two scans per patient
    return X, sites, patients


def test_probe_finds_a_planted_site_signal():
    X, sites, patients = _cohort(shift=4.0)
    probe = site_probe(X, sites, patients, n_permutations=200, n_boot=200, seed=1)
    assert probe.auc.value > 0.95
    assert probe.auc.ci_low > 0.9
    assert probe.balanced_accuracy.value > 0.8
    # no permutation reaches the observed AUC: the smallest possible p with 200 permutations
    assert probe.p_permutation == pytest.approx(1 / 201)
    assert probe.chance_auc == 0.5 and probe.chance_balanced_accuracy == pytest.approx(1 / 3)
    assert probe.auc.n_patients == 45
    d = probe.to_dict()
    assert set(d["auc"]) >= {"value", "ci_low", "ci_high"} and d["sites"] == ["A", "B", "C"]


def test_probe_without_site_signal_is_at_chance():
    X, sites, patients = _cohort(shift=0.0)
    probe = site_probe(X, sites, patients, n_permutations=200, n_boot=200, seed=1)
    assert abs(probe.auc.value - 0.5) < 0.1
    assert probe.auc.ci_low < 0.5 < probe.auc.ci_high
    assert probe.p_permutation > 0.2  # deterministic for this seed; p is uniform under the null


def test_probe_stays_inside_blocks():
    """Rows of different embedding spaces (blocks) are never compared: a block holding one
    site only cannot be probed, however different the blocks look."""
    X, sites, patients = _cohort(shift=0.0)
    X[sites == "B"] += 10.0  # a block offset that a pooled probe would mistake for the site
    assert site_probe(X, sites, patients, blocks=sites, n_permutations=10, n_boot=0) is None
    pooled = site_probe(X, sites, patients, n_permutations=10, n_boot=0)
    assert pooled.auc.value > 0.7


def test_probe_leaves_out_sites_with_one_patient():
    X, sites, patients = _cohort(shift=4.0)
    sites = sites.copy()
    sites[:2] = "D"  # both scans of patient p0: one patient only
    probe = site_probe(X, sites, patients, n_permutations=10, n_boot=0)
    assert probe.sites == ("A", "B", "C")
    assert site_probe(X[:4], ["A", "A", "B", "B"], ["p", "p", "q", "q"], n_permutations=5) is None


def test_joint_solver_matches_scikit_learn():
    rng = np.random.default_rng(3)
    Z = rng.normal(size=(60, 4))
    y = (Z[:, 0] + rng.normal(size=60) > 0).astype(int) + (Z[:, 1] > 1)
    labels = np.stack([y, rng.permutation(y)])
    prob = multinomial_fit_predict(Z[:40], labels[:, :40], Z[40:], 3)
    for row in range(2):
        ref = LogisticRegression(C=1.0, tol=1e-10, max_iter=5000).fit(Z[:40], labels[row, :40])
        # the classes present in the training part are all three in both rows
        np.testing.assert_allclose(prob[row], ref.predict_proba(Z[40:]), atol=1e-3)


def test_site_only_auc_by_hand():
    # site A: 3 of 4 positive (rate 0.75), site B: 1 of 4 (0.25). Pairs (positive, negative):
    # A+ vs B- 3 x 3 = 9 wins, A+ vs A- 3 ties, B+ vs B- 3 ties, B+ vs A- 1 loss:
    # (9 + 0.5 * 6) / 16 = 0.75
    y = np.array([1, 1, 1, 0, 1, 0, 0, 0], dtype=float)
    sites = ["A"] * 4 + ["B"] * 4
    np.testing.assert_allclose(site_only_scores("binary", y, sites), [0.75] * 4 + [0.25] * 4)
    out = site_only_baseline("binary", y, sites, n_boot=200, seed=0)
    assert out["auc"]["value"] == pytest.approx(0.75)
    assert out["auc"]["ci_low"] <= 0.75 <= out["auc"]["ci_high"]


def test_site_only_c_index_by_hand():
    # site A: 2 events over 4 time units (rate 0.5), site B: 1 event over 10 units (0.1).
    # Comparable pairs (i had an event before j's time): (a1,a2) tie in risk, (a1,b1),
    # (a1,b2), (a2,b1), (a2,b2) concordant, (b1,b2) tie: (4 + 0.5 * 2) / 6
    t = np.array([[1.0, 1], [3.0, 1], [4.0, 1], [6.0, 0]])
    sites = ["A", "A", "B", "B"]
    np.testing.assert_allclose(site_only_scores("survival", t, sites), [0.5, 0.5, 0.1, 0.1])
    out = site_only_baseline("survival", t, sites, n_boot=0)
    assert out["c_index"]["value"] == pytest.approx(5 / 6)


def test_intensity_features_see_a_scanner_offset():
    rng = np.random.default_rng(0)
    images = np.zeros((20, 1, 6, 6, 6), dtype=np.float32)
    images[:, :, 1:5, 1:5, 1:5] = rng.uniform(0.2, 0.6, size=(20, 1, 4, 4, 4))
    images[10:, :, 1:5, 1:5, 1:5] += 0.3  # a brighter scanner
    F = intensity_features(images, bins=8)
    assert F.shape == (20, 8 + 5)
    np.testing.assert_allclose(F[:, :8].sum(axis=1), 1.0)  # body voxels only, all binned
    assert F[10:, 8].min() > F[:10, 8].max()  # body mean separates the scanners
    sites = np.repeat(["dim", "bright"], 10)
    probe = site_probe(F, sites, n_permutations=50, n_boot=0)
    assert probe.auc.value > 0.95


def _audit(auc: float, low: float, p: float, only_low: float) -> dict:
    return {
        "site_probe": {
            "cnn": {
                "auc": {"value": auc, "ci_low": low, "ci_high": auc + 0.02},
                "chance": {"auc": 0.5},
                "p_permutation": p,
            }
        },
        "site_only": {"auc": {"value": only_low + 0.05, "ci_low": only_low, "ci_high": 0.8}},
    }


def test_verdict_in_plain_words():
    both = site_verdict(_audit(0.97, 0.95, 0.005, 0.58))
    assert "strongly predictable from the CNN's embeddings (AUC 0.97 [0.95, 0.99]" in both
    assert "site alone predicts the outcome (AUC 0.63 [0.58, 0.80])" in both
    assert "may come from the site" in both
    only_probe = site_verdict(_audit(0.7, 0.6, 0.01, 0.45))
    assert (
        "does not clearly predict" in only_probe and "no sign that the site inflates" in only_probe
    )
    none = site_verdict(_audit(0.52, 0.45, 0.4, 0.45), adversarial=True)
    assert none.startswith("No sign of site learning") and "domain-adversarial" in none
    assert "No site audit" in site_verdict({})


def test_verdict_says_when_the_adversary_was_fooled_but_the_probe_was_not():
    audit = _audit(0.97, 0.95, 0.005, 0.45)
    fooled = site_verdict(
        audit | {"adversary": {"site_accuracy": 0.52, "constant_guess": 0.5}}, adversarial=True
    )
    assert "despite domain-adversarial training" in fooled
    assert "site accuracy 0.52 on its training batches (a constant guess: 0.50)" in fooled
    assert "hid the site from the adversary rather than removing it" in fooled
    learning = site_verdict(
        audit | {"adversary": {"site_accuracy": 0.9, "constant_guess": 0.5}}, adversarial=True
    )
    assert "despite domain-adversarial training" in learning and "hid the site" not in learning
    assert "hid the site" not in site_verdict(audit | {"adversary": None}, adversarial=True)
