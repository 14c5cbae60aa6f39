from __future__ import annotations

import numpy as np
import pytest

from deepradiomics.evaluate import metrics as M
from deepradiomics.evaluate.ensemble import combine_members, ensemble_gain, member_resamples


def test_combine_probabilities_mean_and_spread():
    members = np.array([[0.2, 0.9, 0.5], [0.4, 0.7, 0.5], [0.6, 0.8, 0.5]])
    ens = combine_members(members, "probability")
    np.testing.assert_allclose(ens.mean, [0.4, 0.8, 0.5])
    np.testing.assert_allclose(ens.std, [np.sqrt(0.08 / 3), np.sqrt(0.02 / 3), 0.0])
    np.testing.assert_allclose(ens.uncertainty, ens.std)
    assert ens.n_members == 3


def test_combine_multiclass_uncertainty_is_spread_of_the_chosen_class():
    members = np.array(
        [
            [[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]],
            [[0.5, 0.4, 0.1], [0.2, 0.2, 0.6]],
        ]
    )
    ens = combine_members(members)
    np.testing.assert_allclose(ens.mean, [[0.6, 0.3, 0.1], [0.15, 0.15, 0.7]])
    np.testing.assert_allclose(ens.uncertainty, [0.1, 0.1])


def test_log_risk_offsets_remove_arbitrary_member_shifts():
    base = np.array([-1.0, 0.0, 2.0])
    members = np.stack([base + 5.0, base - 3.0])  # same ranking, shifted (Cox invariance)
    raw = combine_members(members, "log_risk")
    assert (raw.std > 3).all()
    centred = combine_members(members, "log_risk", offsets=[5.0, -3.0])
    np.testing.assert_allclose(centred.mean, base)
    np.testing.assert_allclose(centred.std, 0, atol=1e-12)
    risks = combine_members(np.exp(members), "risk")
    np.testing.assert_allclose(risks.mean, np.exp(base) * (np.exp(5) + np.exp(-3)) / 2)


def test_combine_rejects_bad_members():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        combine_members([[0.2, 1.3]], "probability")
    with pytest.raises(ValueError, match="nan"):
        combine_members([[0.2, np.nan]], "regression")
    with pytest.raises(ValueError, match="one value per member"):
        combine_members([[0.2, 0.1], [0.3, 0.3]], "log_risk", offsets=[1.0])
    with pytest.raises(ValueError, match="non-negative"):
        combine_members([[-0.2, 0.1]], "risk")


def test_squared_error_gain_equals_member_spread():
    rng = np.random.default_rng(0)
    y = rng.normal(0, 1, 500)
    members = y + rng.normal(0, 0.5, (7, 500))  # independent member noise
    gain = ensemble_gain(members, y, "squared", kind="regression")
    ambiguity = np.mean(combine_members(members, "regression").std ** 2)
    # Krogh & Vedelsby: ensemble error = mean member error - mean spread, exactly
    assert gain.reduction == pytest.approx(ambiguity, rel=1e-12)
    assert gain.mean_member_error == pytest.approx(0.25, rel=0.1)
    assert gain.ensemble_error == pytest.approx(0.25 / 7, rel=0.15)  # variance / members
    assert gain.relative_reduction == pytest.approx(6 / 7, abs=0.03)


def test_gain_for_probabilities_and_custom_errors():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400).astype(float)
    logits = 2 * (y - 0.5) + rng.normal(0, 1.5, (5, 400))
    members = 1 / (1 + np.exp(-logits))
    brier = ensemble_gain(members, y)
    assert brier.member_errors == pytest.approx([M.brier_score(y, m) for m in members])
    assert brier.ensemble_error == pytest.approx(M.brier_score(y, members.mean(axis=0)))
    assert brier.reduction > 0
    auc = ensemble_gain(members, y, lambda t, s: 1 - M.roc_auc(t, s))
    assert auc.ensemble_error < auc.mean_member_error
    mae = ensemble_gain(members, y, "absolute")
    assert mae.reduction >= 0  # convex loss: Jensen
    with pytest.raises(ValueError, match="unknown error"):
        ensemble_gain(members, y, "hinge")
    with pytest.raises(ValueError, match="399 cases"):
        ensemble_gain(members, y[:399])


def test_multiclass_squared_error_is_the_multiclass_brier_score():
    members = np.array([[[0.8, 0.2], [0.3, 0.7]], [[0.6, 0.4], [0.5, 0.5]]])
    y = np.array([0, 1])
    gain = ensemble_gain(members, y)
    # member 1: ((0.2^2 + 0.2^2) + (0.3^2 + 0.3^2)) / 2 = 0.13
    assert gain.member_errors[0] == pytest.approx(0.13)


def test_member_resamples_are_patient_grouped_and_seeded():
    patients = np.repeat(np.arange(60), 2)
    samples = member_resamples(patients, n_members=50, seed=3)
    again = member_resamples(patients, n_members=50, seed=3)
    assert all((a.in_bag == b.in_bag).all() for a, b in zip(samples, again, strict=False))
    oob_share = []
    for s in samples:
        counts = np.bincount(s.in_bag, minlength=120)
        assert (counts[0::2] == counts[1::2]).all()  # both cases of a patient together
        assert len(s.in_bag) == 120  # as many patients as the cohort, with repeats
        assert not set(s.out_of_bag) & set(s.in_bag)
        assert set(s.out_of_bag) | set(s.in_bag) == set(range(120))
        oob_share.append(len(s.out_of_bag) / 120)
    assert np.mean(oob_share) == pytest.approx((1 - 1 / 60) ** 60, abs=0.03)  # about 36 %


def test_out_of_bag_mean_averages_each_case_over_the_members_it_was_held_out_from():
    from deepradiomics.evaluate.ensemble import out_of_bag_mean

    idx, mean = out_of_bag_mean(
        [np.array([4, 1]), np.array([1, 7])], [np.array([0.2, 0.6]), np.array([0.8, 0.5])]
    )
    assert idx.tolist() == [1, 4, 7]
    np.testing.assert_allclose(mean, [0.7, 0.2, 0.5])  # case 1 out of bag for both members
    empty, none = out_of_bag_mean([np.empty(0, int)], [np.empty(0)])
    assert len(empty) == 0 and len(none) == 0
    with pytest.raises(ValueError, match="index arrays"):
        out_of_bag_mean([np.array([1])], [])


def test_probability_maps_average_per_voxel_and_keep_the_spread_map():
    rng = np.random.default_rng(0)
    members = rng.random((3, 2, 4, 5, 6))
    ens = combine_members(members, kind="probability_map")
    np.testing.assert_allclose(ens.mean, members.mean(0), atol=1e-6)
    assert ens.uncertainty.shape == (2, 4, 5, 6)
    np.testing.assert_allclose(ens.uncertainty, members.std(0), atol=1e-6)
    with pytest.raises(ValueError, match="must lie in"):
        combine_members(members + 1, kind="probability_map")
    with pytest.raises(ValueError, match="members, cases, \\*voxels"):
        combine_members(members[:, :, 0, 0, 0], kind="probability_map")
