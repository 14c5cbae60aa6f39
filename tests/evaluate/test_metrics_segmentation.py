from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from monai.metrics import compute_dice, compute_hausdorff_distance

from deepradiomics.evaluate import metrics as M


def blob(shape, centre, radii):
    grid = np.indices(shape).astype(float)
    r = sum(((g - c) / rr) ** 2 for g, c, rr in zip(grid, centre, radii, strict=False))
    return r <= 1


def monai(fn, pred, true, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = lambda a: torch.as_tensor(a[None, None].astype(np.float32))
        return float(fn(t(pred), t(true), include_background=True, **kw)[0, 0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dice_and_hd95_match_monai(seed):
    rng = np.random.default_rng(seed)
    shape = (24, 30, 28)
    true = blob(shape, (12, 15, 14), (6, 8, 7))
    pred = blob(shape, (12 + rng.integers(-2, 3), 14, 15), (5 + rng.random() * 2, 9, 6))
    pred |= rng.random(shape) > 0.999  # scattered false positives stretch the tail
    spacing = (2.5, 0.8, 0.8)
    assert M.dice(pred, true) == pytest.approx(monai(compute_dice, pred, true), abs=1e-6)
    ref = monai(compute_hausdorff_distance, pred, true, percentile=95, spacing=spacing)
    assert M.hd95(pred, true, spacing) == pytest.approx(ref, rel=1e-5)


def test_hd95_masks_touching_the_border_match_monai():
    true = np.zeros((10, 12, 12), bool)
    true[:, :6, :] = True
    pred = np.zeros_like(true)
    pred[:, :8, 2:] = True
    ref = monai(compute_hausdorff_distance, pred, true, percentile=95, spacing=(1.0, 1.5, 0.5))
    assert M.hd95(pred, true, (1.0, 1.5, 0.5)) == pytest.approx(ref, rel=1e-5)


def test_hand_examples():
    a = np.zeros((5, 5, 9), bool)
    b = np.zeros_like(a)
    a[0, 0, 0] = True
    b[0, 0, 4] = True
    assert M.hd95(a, b, spacing=(1, 1, 2.5)) == pytest.approx(10.0)
    assert M.dice(a, b) == 0.0
    c = np.zeros((4, 4), bool)
    c[:2, :2] = True
    d = np.zeros_like(c)
    d[:2, :3] = True
    assert M.dice(c, d) == pytest.approx(2 * 4 / (4 + 6))
    assert M.dice(np.zeros(3), np.zeros(3)) == 1.0
    assert np.isnan(M.hd95(np.zeros((3, 3)), c[:3, :3]))
    assert M.hd95(c, c) == 0.0


def test_shape_and_spacing_errors():
    with pytest.raises(ValueError, match="differ in shape"):
        M.dice(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="spacing must have 2 values"):
        M.hd95(np.ones((2, 2)), np.ones((2, 2)), spacing=(1, 1, 1))


def test_mean_dice_and_volume():
    true = np.zeros((2, 4, 4, 4), np.uint8)
    true[0, :2] = 1
    true[1, :1] = 1
    prob = np.zeros((2, 4, 4, 4))
    prob[0, :2] = 0.7  # exact
    prob[1, :2] = 0.5  # twice the reference: 2 * 16 / (16 + 32)
    assert M.mean_dice(true, prob) == pytest.approx((1 + 2 * 16 / 48) / 2)
    assert M.volume_ml(true[0], (2.0, 1.0, 0.5)) == pytest.approx(32 * 1.0 / 1000)
    with pytest.raises(ValueError, match="differ in shape"):
        M.mean_dice(true, prob[:, :3])
