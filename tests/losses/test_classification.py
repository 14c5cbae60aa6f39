"""BCE / CE with class weights, focal loss, balanced weights, MSE."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from deepradiomics.errors import UserError
from deepradiomics.losses import FocalLoss, balanced_class_weights, get_loss


@pytest.fixture
def binary() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(12, generator=g), torch.tensor([0, 1, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0.0])


def test_bce_without_weights_is_torch_bce(binary) -> None:
    z, y = binary
    assert get_loss(None, "binary")(z, y).item() == pytest.approx(
        F.binary_cross_entropy_with_logits(z, y).item(), abs=1e-7
    )


def test_class_weights_change_bce_as_expected(binary) -> None:
    z, y = binary
    per_sample = F.binary_cross_entropy_with_logits(z, y, reduction="none")
    weighted = get_loss("bce", "binary", class_weights=[1.0, 3.0])(z, y)
    expected = (per_sample[y == 0].sum() + 3 * per_sample[y == 1].sum()) / (
        (y == 0).sum() + 3 * (y == 1).sum()
    )
    assert weighted.item() == pytest.approx(expected.item(), abs=1e-7)
    # same convention as CE: BCE(z) with weights w == CE on the logits [0, z] with weights w
    two_logits = torch.stack([torch.zeros_like(z), z], 1)
    ce = F.cross_entropy(two_logits, y.long(), weight=torch.tensor([1.0, 3.0]))
    assert weighted.item() == pytest.approx(ce.item(), abs=1e-6)
    # up-weighting positives raises the loss when the positives are the badly predicted ones
    z_bad_pos = torch.where(y == 1, -2.0, -2.0)
    plain = get_loss("bce", "binary")(z_bad_pos, y)
    assert get_loss("bce", "binary", [1.0, 3.0])(z_bad_pos, y) > plain
    # equal weights change nothing
    assert get_loss("bce", "binary", [2.0, 2.0])(z, y).item() == pytest.approx(
        get_loss("bce", "binary")(z, y).item(), abs=1e-7
    )


def test_ce_with_weights_is_torch_ce() -> None:
    g = torch.Generator().manual_seed(1)
    z, y = torch.randn(10, 3, generator=g), torch.randint(0, 3, (10,), generator=g)
    w = [0.5, 1.0, 2.0]
    assert get_loss(None, "multiclass", w)(z, y).item() == pytest.approx(
        F.cross_entropy(z, y, weight=torch.tensor(w)).item(), abs=1e-7
    )


def test_focal_with_gamma_zero_is_ce_and_bce(binary) -> None:
    g = torch.Generator().manual_seed(2)
    z, y = torch.randn(10, 4, generator=g), torch.randint(0, 4, (10,), generator=g)
    assert FocalLoss(gamma=0)(z, y).item() == pytest.approx(F.cross_entropy(z, y).item(), abs=1e-6)
    w = [1.0, 2.0, 0.5, 1.5]
    assert FocalLoss(gamma=0, class_weights=w)(z, y).item() == pytest.approx(
        F.cross_entropy(z, y, weight=torch.tensor(w)).item(), abs=1e-6
    )
    zb, yb = binary
    assert FocalLoss(gamma=0)(zb, yb).item() == pytest.approx(
        F.binary_cross_entropy_with_logits(zb, yb).item(), abs=1e-6
    )


def test_focal_down_weights_easy_examples_and_alpha() -> None:
    y = torch.tensor([1.0, 0.0])
    easy, hard = torch.tensor([4.0, -4.0]), torch.tensor([0.1, -0.1])
    bce = lambda z: F.binary_cross_entropy_with_logits(z, y)  # noqa: E731
    assert FocalLoss(gamma=2)(easy, y) / bce(easy) < FocalLoss(gamma=2)(hard, y) / bce(hard)
    # per-sample value by the formula
    z = torch.tensor([0.3])
    p = torch.sigmoid(z)
    expected = -0.25 * (1 - p) ** 2 * torch.log(p)
    assert FocalLoss(gamma=2, alpha=0.25)(z, torch.tensor([1.0])).item() == pytest.approx(
        expected.item(), rel=1e-6
    )
    expected_neg = -0.75 * p**2 * torch.log(1 - p)
    assert FocalLoss(gamma=2, alpha=0.25)(z, torch.tensor([0.0])).item() == pytest.approx(
        expected_neg.item(), rel=1e-6
    )


def test_balanced_class_weights() -> None:
    assert balanced_class_weights([0, 0, 0, 1], 2) == pytest.approx([4 / 6, 4 / 2])
    with pytest.raises(UserError, match=r"class\(es\) \[2\]"):
        balanced_class_weights([0, 1, 1], 3)
    with pytest.raises(UserError, match="2 non-negative weights"):
        get_loss("bce", "binary", class_weights=[1.0])


def test_mse_reshapes_target() -> None:
    loss = get_loss(None, "regression")
    pred, target = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([[1.0], [2.0], [5.0]])
    assert loss(pred, target).item() == pytest.approx(4 / 3)
