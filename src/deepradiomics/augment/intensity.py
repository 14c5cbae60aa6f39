"""Random intensity scale and shift (brightness/contrast), per sample and channel.

The image is assumed normalised by preprocessing (CT window to [0, 1], MR z-score, PET SUV
scaled), so ``shift`` is in those normalised units.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from deepradiomics.augment.base import Mask, RandomTransform, bernoulli, uniform


@dataclass
class IntensityParams:
    scale: Tensor  # [N, C] multiplicative factor
    shift: Tensor  # [N, C] additive offset


def scale_shift(image: Tensor, scale: Tensor, shift: Tensor) -> Tensor:
    """Deterministic twin: ``image * scale + shift`` with per-sample, per-channel factors [N, C]."""
    scale = scale.to(image.device, image.dtype)[:, :, None, None, None]
    shift = shift.to(image.device, image.dtype)[:, :, None, None, None]
    return image * scale + shift


class RandomIntensity(RandomTransform):
    """Scale by ``1 + U(-scale, scale)``, shift by ``U(-shift, shift)``, with probability ``p``."""

    def __init__(self, scale: float = 0.1, shift: float = 0.1, p: float = 1.0):
        self.scale, self.shift, self.p = scale, shift, p

    @property
    def enabled(self) -> bool:
        return self.p > 0 and (self.scale > 0 or self.shift > 0)

    def sample(self, shape: torch.Size, generator: torch.Generator) -> IntensityParams:
        n, c = shape[0], shape[1]
        scale = 1.0 + uniform(generator, (n, c), -self.scale, self.scale)
        shift = uniform(generator, (n, c), -self.shift, self.shift)
        active = bernoulli(generator, (n, 1), self.p)
        return IntensityParams(
            scale=torch.where(active, scale, 1.0), shift=torch.where(active, shift, 0.0)
        )

    def apply(self, image: Tensor, mask: Mask, params: IntensityParams) -> tuple[Tensor, Mask]:
        return scale_shift(image, params.scale, params.shift), mask
