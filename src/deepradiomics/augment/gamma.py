"""Random gamma (contrast curve), per sample and channel, on the channel's own intensity range.

Intensities may be negative (MR z-scores), so each channel is mapped to [0, 1] by its min and
max, raised to ``gamma = exp(log_gamma)`` and mapped back (as nnU-Net does): the range is kept,
only the curve changes.
"""

from __future__ import annotations

import torch
from torch import Tensor

from deepradiomics.augment.base import Mask, RandomTransform, bernoulli, uniform


def gamma(image: Tensor, log_gamma: Tensor) -> Tensor:
    """Deterministic twin: gamma ``exp(log_gamma)`` [N, C] per sample and channel, range kept."""
    flat = image.flatten(2)
    low = flat.amin(dim=2)[:, :, None, None, None]
    span = (flat.amax(dim=2)[:, :, None, None, None] - low).clamp_min(torch.finfo(image.dtype).tiny)
    g = log_gamma.to(image.device, image.dtype).exp()[:, :, None, None, None]
    unit = ((image - low) / span).clamp(0.0, 1.0)
    return unit.pow(g) * span + low


class RandomGamma(RandomTransform):
    """``log_gamma`` uniform in ``[-max_log_gamma, max_log_gamma]``, with probability ``p``."""

    def __init__(self, max_log_gamma: float = 0.3, p: float = 1.0):
        self.max_log_gamma, self.p = max_log_gamma, p

    @property
    def enabled(self) -> bool:
        return self.p > 0 and self.max_log_gamma > 0

    def sample(self, shape: torch.Size, generator: torch.Generator) -> Tensor:
        n, c = shape[0], shape[1]
        log_gamma = uniform(generator, (n, c), -self.max_log_gamma, self.max_log_gamma)
        return torch.where(bernoulli(generator, (n, 1), self.p), log_gamma, 0.0)

    def apply(self, image: Tensor, mask: Mask, log_gamma: Tensor) -> tuple[Tensor, Mask]:
        return gamma(image, log_gamma), mask
