from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression

from deepradiomics.evaluate import metrics as M


def binary_data(n: int = 300, seed: int = 0, ties: bool = False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(float)
    p = 1 / (1 + np.exp(-(1.2 * (y - 0.5) * 2 + rng.normal(0, 1.2, n))))
    if ties:
        p = np.round(p, 1)
    return y, p


@pytest.mark.parametrize("ties", [False, True])
def test_auc_matches_sklearn(ties):
    y, p = binary_data(ties=ties)
    assert M.roc_auc(y, p) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)


def test_weighted_auc_batch_equals_auc_on_resampled_rows():
    y, p = binary_data(120, seed=1, ties=True)
    rng = np.random.default_rng(0)
    counts = rng.multinomial(120, np.full(120, 1 / 120), size=5)
    batch = M.roc_auc_batch(y, p, counts)
    for row, value in zip(counts, batch, strict=False):
        idx = np.repeat(np.arange(120), row)
        assert value == pytest.approx(skm.roc_auc_score(y[idx], p[idx]), abs=1e-12)


def test_auc_single_class_is_nan():
    assert np.isnan(M.roc_auc([1, 1, 1], [0.2, 0.5, 0.9]))


def test_threshold_metrics_match_sklearn():
    y, p = binary_data()
    thr = 0.42
    pred = (p >= thr).astype(int)
    assert M.sensitivity(y, p, thr) == pytest.approx(skm.recall_score(y, pred))
    assert M.specificity(y, p, thr) == pytest.approx(skm.recall_score(1 - y, 1 - pred))
    assert M.balanced_accuracy(y, p, thr) == pytest.approx(skm.balanced_accuracy_score(y, pred))
    rates = M.threshold_rates_batch(y, p, thr)
    assert rates["accuracy"][0] == pytest.approx(skm.accuracy_score(y, pred))
    assert M.accuracy(y, pred) == pytest.approx(skm.accuracy_score(y, pred))


def test_youden_threshold_maximises_sens_plus_spec():
    y, p = binary_data(200, seed=3)
    thr = M.select_threshold(y, p, "youden")
    fpr, tpr, cand = skm.roc_curve(y, p)
    best = np.max(tpr - fpr)
    assert M.sensitivity(y, p, thr) + M.specificity(y, p, thr) - 1 == pytest.approx(best)
    assert thr in set(cand)
    assert M.select_threshold(y, p, "fixed", 0.3) == 0.3
    assert M.select_threshold([1, 1], [0.1, 0.2], "youden", 0.5) == 0.5
    with pytest.raises(ValueError, match="unknown threshold rule"):
        M.select_threshold(y, p, "f1")


def test_youden_on_a_hand_example():
    # scores 0.1 0.4 0.35 0.8 with labels 0 0 1 1: thresholds 0.35 gives sens 1, spec 0.5;
    # 0.8 gives sens 0.5, spec 1; both J = 0.5, the highest threshold wins.
    assert M.select_threshold([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.8
    assert M.select_threshold([0, 0, 1, 1], [0.1, 0.3, 0.35, 0.8]) == 0.35


def test_accuracy_threshold_maximises_accuracy_between_scores():
    y, p = binary_data(200, seed=5)
    thr = M.select_threshold(y, p, "accuracy")
    cuts = np.concatenate([[np.inf], np.sort(np.unique(p))])
    best = max(skm.accuracy_score(y, (p >= c).astype(int)) for c in cuts)
    assert skm.accuracy_score(y, (p >= thr).astype(int)) == pytest.approx(best)
    assert thr not in set(p)  # halfway between two scores
    # labels 0 0 1 0 1 1 by score: 0.35 (all but the lowest two positive) and 0.75 (the top
    # two) are both 5/6 correct: the lower median of the two maximising cut points
    assert M.select_threshold([0, 0, 1, 0, 1, 1], [0.1, 0.2, 0.5, 0.7, 0.8, 0.9], "accuracy") == (
        pytest.approx(0.35)
    )
    # three tied cut points (0.15, 0.35, 0.55), each 5/7 correct: the middle one
    assert M.select_threshold(
        [0, 1, 0, 1, 0, 1, 1], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7], "accuracy"
    ) == pytest.approx(0.35)
    # nothing positive is best: just above the top score; everything positive: the lowest
    assert M.select_threshold([0, 0, 0, 1], [0.1, 0.2, 0.9, 0.05], "accuracy") > 0.9
    assert M.select_threshold([1, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], "accuracy") == pytest.approx(0.1)
    assert M.select_threshold([1, 1, 1, 0], [0.1, 0.2, 0.3, 0.05], "accuracy") == pytest.approx(
        0.075
    )


def test_brier_matches_sklearn():
    y, p = binary_data()
    assert M.brier_score(y, p) == pytest.approx(skm.brier_score_loss(y, p), abs=1e-14)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        M.brier_score([0, 1], [0.5, 1.2])


def test_calibration_slope_matches_unpenalised_sklearn_logistic_regression():
    y, p = binary_data(400, seed=5)
    logit = np.log(p / (1 - p))
    ref = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(logit[:, None], y)
    assert M.calibration_slope(y, p) == pytest.approx(ref.coef_[0, 0], rel=1e-6)


def test_calibration_intercept_solves_the_offset_score_equation():
    y, p = binary_data(400, seed=6)
    p = np.clip(p * 0.7, 0, 1)  # under-predicted risks: the intercept must be positive
    logit = np.log(p / (1 - p))
    root = brentq(lambda a: np.sum(y - 1 / (1 + np.exp(-(a + logit)))), -10, 10, xtol=1e-14)
    value = M.calibration_intercept(y, p)
    assert value == pytest.approx(root, abs=1e-8)
    assert value > 0


def test_perfectly_calibrated_predictions_give_slope_one_intercept_zero():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.02, 0.98, 200_000)
    y = (rng.random(len(p)) < p).astype(float)
    assert M.calibration_slope(y, p) == pytest.approx(1.0, abs=0.03)
    assert M.calibration_intercept(y, p) == pytest.approx(0.0, abs=0.02)


def test_calibration_undefined_for_one_class_or_separation():
    assert np.isnan(M.calibration_slope([1, 1, 1], [0.2, 0.5, 0.7]))
    assert np.isnan(M.calibration_slope([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]))  # separated


def test_ece_against_sklearn_calibration_curve_and_a_hand_example():
    y, p = binary_data(500, seed=8)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
    edges = np.linspace(0, 1, 11)
    counts = np.histogram(p, bins=edges)[0]
    counts = counts[counts > 0]
    expected = np.sum(counts * np.abs(prob_true - prob_pred)) / len(p)
    assert M.expected_calibration_error(y, p) == pytest.approx(expected, abs=1e-12)
    # two bins: (0.1, 0.2] holds p=.15,.15 (y=0,1 -> gap .35), (0.8, 0.9] holds .85,.85,.85,.85
    # with y=1,1,1,0 -> gap .10; ECE = (2*.35 + 4*.10)/6
    hand = M.expected_calibration_error([0, 1, 1, 1, 1, 0], [0.15, 0.15, 0.85, 0.85, 0.85, 0.85])
    assert hand == pytest.approx((2 * 0.35 + 4 * 0.10) / 6)


def test_multiclass_macro_auc_and_accuracy_match_sklearn():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 300)
    logits = rng.normal(0, 1, (300, 3)) + 1.5 * np.eye(3)[y]
    prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    ref = skm.roc_auc_score(y, prob, multi_class="ovr", average="macro")
    assert M.macro_auc(y, prob) == pytest.approx(ref, abs=1e-12)
    acc = M.multiclass_accuracy_batch(y, prob)[0]
    assert acc == pytest.approx(skm.accuracy_score(y, prob.argmax(axis=1)))
    assert np.isnan(M.macro_auc(y[y < 2], prob[y < 2]))  # class 2 absent: undefined


def test_regression_metrics_match_sklearn():
    rng = np.random.default_rng(4)
    y = rng.normal(50, 10, 200)
    p = y + rng.normal(0, 4, 200)
    assert M.mae(y, p) == pytest.approx(skm.mean_absolute_error(y, p))
    assert M.rmse(y, p) == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)))
    assert M.r2(y, p) == pytest.approx(skm.r2_score(y, p), abs=1e-12)
    counts = rng.multinomial(200, np.full(200, 1 / 200), size=3)
    for row, value in zip(counts, M.r2_batch(y, p, counts), strict=False):
        idx = np.repeat(np.arange(200), row)
        assert value == pytest.approx(skm.r2_score(y[idx], p[idx]), abs=1e-10)
    assert np.isnan(M.r2([3.0, 3.0], [2.0, 4.0]))


def test_shape_errors():
    with pytest.raises(ValueError, match="y_true has 2 values but y_score has 3"):
        M.roc_auc([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="only 0 and 1"):
        M.roc_auc([0, 2], [0.1, 0.2])


def test_calibration_batch_equals_fits_on_resampled_rows():
    y, p = binary_data(150, seed=9)
    counts = np.random.default_rng(0).multinomial(150, np.full(150, 1 / 150), size=5)
    batch = M.calibration_batch(y, p, counts)
    for row, (slope, intercept) in zip(counts, batch, strict=False):
        idx = np.repeat(np.arange(150), row)
        assert slope == pytest.approx(M.calibration_slope(y[idx], p[idx]), abs=1e-8)
        assert intercept == pytest.approx(M.calibration_intercept(y[idx], p[idx]), abs=1e-8)
        logit = np.log(p[idx] / (1 - p[idx]))
        ref = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(logit[:, None], y[idx])
        assert slope == pytest.approx(ref.coef_[0, 0], rel=1e-6)
    one_class = np.zeros((1, 150))
    one_class[0, np.flatnonzero(y == 1)[:3]] = 1
    assert np.isnan(M.calibration_batch(y, p, one_class)).all()
