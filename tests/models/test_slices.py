"""2D / 2.5D models read only the central slice(s) of the same 3D input."""

from __future__ import annotations

import pytest
import torch

from deepradiomics.errors import UserError
from deepradiomics.models import create_backbone
from deepradiomics.models.slices import central_slices


def test_central_slices_layout() -> None:
    x = torch.arange(2 * 2 * 7 * 3 * 3, dtype=torch.float32).reshape(2, 2, 7, 3, 3)
    one = central_slices(x, 1)
    assert torch.equal(one, x[:, :, 3])
    three = central_slices(x, 3)
    assert three.shape == (2, 6, 3, 3)
    assert torch.equal(three[:, :3], x[:, 0, 2:5]) and torch.equal(three[:, 3:], x[:, 1, 2:5])
    assert torch.equal(central_slices(x[:, :, :6], 1), x[:, :, 3])  # even depth: D // 2
    with pytest.raises(UserError, match="5 slices asked but the crop has only 3"):
        central_slices(x[:, :, :3], 5)


@pytest.mark.parametrize(
    ("name", "k"), [("small2d", 1), ("small25d", 3), ("resnet18_2d", 1), ("resnet18_25d", 3)]
)
def test_only_the_central_slices_matter(name: str, k: int) -> None:
    torch.manual_seed(0)
    model = create_backbone(name, in_channels=2).eval()
    x = torch.randn(2, 2, 9, 32, 32)
    emb = model(x)
    outside = x.clone()
    keep = slice(4 - k // 2, 4 + k // 2 + 1)
    mask = torch.ones(9, dtype=torch.bool)
    mask[keep] = False
    outside[:, :, mask] = torch.randn_like(outside[:, :, mask])
    torch.testing.assert_close(model(outside), emb)
    inside = x.clone()
    inside[:, :, 4] += 1.0
    assert not torch.allclose(model(inside), emb)


def test_slices_must_be_odd() -> None:
    with pytest.raises(UserError, match="positive odd"):
        create_backbone("small25d", slices=4)
