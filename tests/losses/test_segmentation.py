"""Dice, Dice + CE and Dice + Focal (MONAI) on our [N, K, D, H, W] logits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from deepradiomics.losses import get_loss


def _labels() -> torch.Tensor:
    y = torch.zeros(2, 8, 8, 8, dtype=torch.long)
    y[0, 2:5, 2:6, 3:7] = 1
    y[1, 4:8, 1:4, 1:4] = 2
    y[1, 0:2, 5:8, 5:8] = 1
    return y


@pytest.mark.parametrize("name", ["dice", "dice_ce", "dice_focal"])
def test_perfect_prediction_is_near_zero_and_wrong_is_not(name: str) -> None:
    y = _labels()
    perfect = 30.0 * F.one_hot(y, 3).permute(0, 4, 1, 2, 3).float()
    loss = get_loss(name, "segmentation")
    assert loss(perfect, y).item() < 1e-4
    assert loss(perfect, y.unsqueeze(1)).item() < 1e-4  # [N, 1, D, H, W] targets too
    wrong = 30.0 * F.one_hot((y + 1) % 3, 3).permute(0, 4, 1, 2, 3).float()
    assert loss(wrong, y).item() > 0.9


def test_soft_dice_value_by_hand() -> None:
    y = torch.zeros(1, 4, 4, 4, dtype=torch.long)
    y[0, :2] = 1  # 32 foreground voxels
    logits = torch.zeros(1, 2, 4, 4, 4)  # p = 0.5 everywhere
    dice = 2 * (0.5 * 32) / (0.5 * 64 + 32)  # foreground class only
    assert get_loss("dice", "segmentation")(logits, y).item() == pytest.approx(1 - dice, abs=1e-5)


def test_default_segmentation_loss_has_gradients() -> None:
    y = _labels()
    logits = torch.randn(2, 3, 8, 8, 8, requires_grad=True)
    get_loss(None, "segmentation", class_weights=[0.5, 1.0, 2.0])(logits, y).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_dice_focal_with_gamma_zero_is_dice_ce() -> None:
    from deepradiomics.losses.segmentation import SegmentationLoss

    y = _labels()
    logits = torch.randn(2, 3, 8, 8, 8, generator=torch.Generator().manual_seed(0))
    w = [0.5, 1.0, 2.0]
    focal0 = SegmentationLoss("dice_focal", class_weights=w, gamma=0.0)(logits, y)
    assert focal0.item() == pytest.approx(
        SegmentationLoss("dice_ce", class_weights=w)(logits, y).item(), abs=1e-5
    )
    assert SegmentationLoss("dice_focal", gamma=2.0)(logits, y) < SegmentationLoss("dice_ce")(
        logits, y
    )
