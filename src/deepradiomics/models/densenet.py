"""3D DenseNets from MONAI: DenseNet-121 and a small one for small cohorts and CPUs."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from deepradiomics.models.registry import register_model


class DenseNetBackbone(nn.Module):
    """MONAI ``DenseNet``'s feature extractor (strided 7^3 stem, dense blocks, final BN).

    ``forward_features`` = ReLU -> global average pool, as MONAI's classifier does before its
    linear layer (which is dropped: the heads live in ``heads.RadiomicsNet``).
    """

    def __init__(
        self,
        in_channels: int = 1,
        init_features: int = 64,
        growth_rate: int = 32,
        block_config: Sequence[int] = (6, 12, 24, 16),
        bn_size: int = 4,
    ) -> None:
        super().__init__()
        from monai.networks.nets import DenseNet  # heavy import, only when a DenseNet is built

        net = DenseNet(
            3,
            in_channels,
            1,
            init_features=init_features,
            growth_rate=growth_rate,
            block_config=tuple(block_config),
            bn_size=bn_size,
        )
        self.features = net.features
        self.num_features = int(net.class_layers.out.in_features)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.features(x)).flatten(2).mean(-1)

    forward = forward_features


@register_model
def densenet121(in_channels: int = 1) -> DenseNetBackbone:
    """3D DenseNet-121 (MONAI ``DenseNet121`` layout: 64 init features, growth 32, 6-12-24-16)."""
    return DenseNetBackbone(in_channels)


@register_model
def densenet_small(
    in_channels: int = 1,
    init_features: int = 32,
    growth_rate: int = 16,
    block_config: Sequence[int] = (4, 8, 8),
) -> DenseNetBackbone:
    """A small 3D DenseNet: 32 init features, growth 16, three blocks of 4-8-8 layers."""
    return DenseNetBackbone(in_channels, init_features, growth_rate, block_config)
