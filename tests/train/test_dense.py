"""Patches for training and sliding-window inference of segmentation models."""

from __future__ import annotations

import pytest
import torch
from monai.inferers import sliding_window_inference
from torch import nn

from deepradiomics.train.dense import sample_patches, segment


class Pointwise(nn.Module):
    """Per-voxel logits (a 1^3 convolution): its output cannot depend on the window."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv3d(2, 2, 1)

    def forward(self, x: torch.Tensor, covariates: torch.Tensor | None = None) -> dict:
        return {"out": self.conv(x)}


class Context(nn.Module):
    """3^3 convolutions: windows change the output near their borders."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.net = nn.Sequential(
            nn.Conv3d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv3d(4, 2, 3, padding=1)
        )

    def forward(self, x: torch.Tensor, covariates: torch.Tensor | None = None) -> dict:
        return {"out": self.net(x)}


def test_sliding_windows_of_a_pointwise_model_equal_the_whole_input() -> None:
    x = torch.randn(3, 2, 20, 24, 18)
    model = Pointwise()
    whole = segment(model, x, torch.device("cpu"))
    windows = segment(model, x, torch.device("cpu"), patch=(8, 8, 8), overlap=0.5)
    expect = 1 - torch.softmax(model(x)["out"], 1)[:, 0]
    assert whole.shape == (3, 20, 24, 18)
    assert torch.allclose(whole, expect, atol=1e-6)
    assert torch.allclose(windows, expect, atol=1e-5)


def test_sliding_windows_follow_monai() -> None:
    """With context the result depends on the windows: it is MONAI's Gaussian blend."""
    x = torch.randn(2, 2, 16, 20, 12)
    model = Context().eval()
    got = segment(model, x, torch.device("cpu"), patch=(8, 8, 8), overlap=0.25)
    with torch.no_grad():
        raw = sliding_window_inference(
            x, (8, 8, 8), 4, lambda t: model(t)["out"], overlap=0.25, mode="gaussian"
        )
    expect = 1 - torch.softmax(raw, 1)[:, 0]
    assert torch.allclose(got, expect, atol=1e-5)
    whole = segment(model, x, torch.device("cpu"))
    assert not torch.allclose(got, whole, atol=1e-3)  # the windows did something


def test_flip_averaging_is_undone_per_flip() -> None:
    x = torch.randn(1, 2, 8, 8, 8)
    model = Pointwise()
    plain = segment(model, x, torch.device("cpu"))
    flipped = segment(model, x, torch.device("cpu"), flips=[(), (2,), (3, 4)])
    assert torch.allclose(plain, flipped, atol=1e-6)  # a pointwise model is flip-equivariant


def test_patches_fit_are_seeded_and_find_the_lesion() -> None:
    x = torch.arange(4 * 1 * 24 * 24 * 24, dtype=torch.float32).reshape(4, 1, 24, 24, 24)
    mask = torch.zeros(4, 1, 24, 24, 24)
    mask[:, :, 20:22, 1:3, 20:23] = 1  # a small lesion in a corner
    g = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    xp, mp = sample_patches(x, mask, (8, 8, 8), g())
    xq, _ = sample_patches(x, mask, (8, 8, 8), g())
    assert xp.shape == (4, 1, 8, 8, 8) and mp.shape == (4, 1, 8, 8, 8)
    assert torch.equal(xp, xq)
    assert mp[0].sum() == mask[0].sum() and mp[1].sum() == mask[1].sum()  # first half: on it
    # the patches are crops of the input: consecutive voxels along x differ by 1
    assert torch.all(xp[..., 1:] - xp[..., :-1] == 1)
    # a process holding rows 1 and 3 of the batch (distributed) cuts those rows' patches
    rows = torch.tensor([1, 3])
    xs, ms = sample_patches(x[rows], mask[rows], (8, 8, 8), g(), rows, 4)
    assert torch.equal(xs, xp[rows]) and torch.equal(ms, mp[rows])
    same, _ = sample_patches(x, mask, (24, 24, 24), g())
    assert same is x
    with pytest.raises(ValueError, match="must fit in the input"):
        sample_patches(x, mask, (32, 8, 8), g())
