"""3D U-Net for segmentation: MONAI ``DynUNet`` (nnU-Net's network), anisotropy-aware.

DynUNet takes a kernel size and a stride per level, which is exactly what
``anisotropy.stage_kernels`` plans. Its blocks are reused here, but the forward pass is
spelled out (encoder, bottleneck, decoder) so the bottleneck is available as an embedding
(global average pool) next to the full-resolution decoder feature map; the segmentation head
(a 1^3 conv to per-voxel logits) is ``heads.RadiomicsNet``'s.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from deepradiomics.errors import UserError
from deepradiomics.models.anisotropy import plan_for
from deepradiomics.models.registry import register_model

_NORMS = {"instance": ("INSTANCE", {"affine": True}), "batch": "BATCH"}


class UNetBackbone(nn.Module):
    """Encoder-decoder with skips; ``forward_dense`` -> (decoder map, bottleneck embedding)."""

    def __init__(
        self,
        in_channels: int = 1,
        filters: Sequence[int] = (16, 32, 64, 128, 256),
        spacing: Sequence[float] | None = None,
        anisotropy_ratio: float = 2.0,
        norm: str = "instance",
        res_block: bool = False,
    ) -> None:
        super().__init__()
        from monai.networks.nets import DynUNet  # heavy import, only when a U-Net is built

        if len(filters) < 3:
            raise ValueError("a U-Net needs at least 3 levels (len(filters) >= 3)")
        if norm not in _NORMS:
            raise UserError(f"model.kwargs.norm: {norm!r} is not one of {sorted(_NORMS)}")
        plan = plan_for(spacing, len(filters), anisotropy_ratio)
        kernels = [k for k, _ in plan]
        strides = [(1, 1, 1)] + [p for _, p in plan[:-1]]
        net = DynUNet(
            3,
            in_channels,
            1,
            kernel_size=kernels,
            strides=strides,
            upsample_kernel_size=strides[1:],
            filters=list(filters),
            norm_name=_NORMS[norm],
            res_block=res_block,
        )
        self.input_block = net.input_block
        self.downsamples = net.downsamples
        self.bottleneck = net.bottleneck
        self.upsamples = net.upsamples  # deepest first
        self.plan = plan
        self.divisor = tuple(math.prod(s[a] for s in strides) for a in range(3))
        self.num_features = int(filters[-1])
        self.num_dense_features = int(filters[0])

    def _check_size(self, x: torch.Tensor) -> None:
        size = tuple(x.shape[2:])
        if len(size) != 3 or any(n % d for n, d in zip(size, self.divisor, strict=False)):
            raise UserError(
                f"model 'unet': input size (z, y, x) = {size} must be a multiple of {self.divisor} "
                "on each axis; choose preprocess.shape accordingly"
            )

    def _encode(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        self._check_size(x)
        skips = [self.input_block(x)]
        for down in self.downsamples:
            skips.append(down(skips[-1]))
        return skips, self.bottleneck(skips[-1])

    def forward_dense(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``([N, filters[0], D, H, W] decoder map, [N, filters[-1]] bottleneck embedding)``."""
        skips, h = self._encode(x)
        embedding = h.flatten(2).mean(-1)
        for up, skip in zip(self.upsamples, reversed(skips), strict=False):
            h = up(h, skip)
        return h, embedding

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Bottleneck embedding only (the decoder is not run)."""
        return self._encode(x)[1].flatten(2).mean(-1)

    forward = forward_features


@register_model
def unet(
    in_channels: int = 1,
    filters: Sequence[int] = (16, 32, 64, 128, 256),
    spacing: Sequence[float] | None = None,
    anisotropy_ratio: float = 2.0,
    norm: str = "instance",
    res_block: bool = False,
) -> UNetBackbone:
    """3D U-Net (MONAI DynUNet), 5 levels 16-256; input sizes must be multiples of 16."""
    return UNetBackbone(in_channels, filters, spacing, anisotropy_ratio, norm, res_block)
