"""2D and 2.5D models that take the same 3D input ``[N, C, D, H, W]`` as every other model.

The crop is centred on the lesion, so the central slice (2D) or the ``k`` slices around it
(2.5D, stacked as channels: ``C * k`` input channels) carry the lesion; the data pipeline
and augmentation stay 3D and unchanged. For an even depth the central slice is ``D // 2``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deepradiomics.errors import UserError
from deepradiomics.models.registry import register_model
from deepradiomics.models.resnet import ResNetBackbone
from deepradiomics.models.small import SmallCNN


def central_slices(x: torch.Tensor, k: int) -> torch.Tensor:
    """``[N, C, D, H, W] -> [N, C * k, H, W]``: the ``k`` slices centred on ``D // 2``.

    Channels are ordered modality-major (all slices of modality 0, then modality 1, ...).
    """
    depth = x.shape[2]
    if k > depth:
        raise UserError(f"model.kwargs.slices: {k} slices asked but the crop has only {depth} (z)")
    start = depth // 2 - k // 2
    return x[:, :, start : start + k].flatten(1, 2)


class SliceBackbone(nn.Module):
    """Runs a 2D backbone on the central ``slices`` slices of a 3D input."""

    def __init__(self, inner: nn.Module, slices: int) -> None:
        super().__init__()
        if slices < 1 or slices % 2 == 0:
            raise UserError(f"model.kwargs.slices must be a positive odd number, got {slices}")
        self.inner = inner
        self.slices = slices
        self.num_features = int(inner.num_features)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner.forward_features(central_slices(x, self.slices))

    forward = forward_features


@register_model
def small2d(in_channels: int = 1, widths: Sequence[int] = (16, 32, 64, 128)) -> SliceBackbone:
    """The small CNN in 2D on the central slice."""
    return SliceBackbone(SmallCNN(in_channels, widths, spatial_dims=2), 1)


@register_model
def small25d(
    in_channels: int = 1, slices: int = 3, widths: Sequence[int] = (16, 32, 64, 128)
) -> SliceBackbone:
    """The small CNN in 2D on the central ``slices`` slices stacked as channels (2.5D)."""
    return SliceBackbone(SmallCNN(in_channels * slices, widths, spatial_dims=2), slices)


@register_model
def resnet18_2d(
    in_channels: int = 1, conv1_t_size: int = 7, conv1_t_stride: int = 2
) -> SliceBackbone:
    """2D ResNet-18 (MONAI) on the central slice."""
    inner = ResNetBackbone("resnet18", in_channels, conv1_t_size, conv1_t_stride, spatial_dims=2)
    return SliceBackbone(inner, 1)


@register_model
def resnet18_25d(
    in_channels: int = 1, slices: int = 3, conv1_t_size: int = 7, conv1_t_stride: int = 2
) -> SliceBackbone:
    """2D ResNet-18 (MONAI) on the central ``slices`` slices stacked as channels (2.5D)."""
    inner = ResNetBackbone(
        "resnet18", in_channels * slices, conv1_t_size, conv1_t_stride, spatial_dims=2
    )
    return SliceBackbone(inner, slices)
