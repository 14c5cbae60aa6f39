"""Random Gaussian noise with a per-sample standard deviation drawn in ``[0, max_std]``.

The parameters are the per-sample standard deviations and one integer seed, so the twin
regenerates the same noise field on the image's device without the field being stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from deepradiomics.augment.base import Mask, RandomTransform, bernoulli, uniform


@dataclass
class NoiseParams:
    std: Tensor  # [N] standard deviation per sample (0: untouched)
    seed: int  # seeds the noise field on the image's device
    # a share of a batch (``base.take_rows``): its rows of the field drawn for ``batch`` samples
    rows: Tensor | None = None
    batch: int | None = None

    def take_rows(self, rows: Tensor, batch: int) -> NoiseParams:
        mine = rows if self.rows is None else self.rows[rows]
        return NoiseParams(self.std[rows.to(self.std.device)], self.seed, mine, self.batch or batch)


def add_noise(
    image: Tensor, std: Tensor, seed: int, rows: Tensor | None = None, batch: int | None = None
) -> Tensor:
    """Deterministic twin: ``image + std[i] * N(0, 1)``, the field drawn from ``seed`` (for
    ``batch`` samples, of which ``image`` holds ``rows``, when given)."""
    field_rng = torch.Generator(device=image.device).manual_seed(seed)
    shape = image.shape if rows is None else (batch, *image.shape[1:])
    field = torch.randn(shape, generator=field_rng, device=image.device, dtype=image.dtype)
    if rows is not None:
        field = field[rows.to(image.device)]
    return image + field * std.to(image.device, image.dtype)[:, None, None, None, None]


class RandomNoise(RandomTransform):
    """Additive Gaussian noise, std uniform in ``[0, max_std]``, with probability ``p``."""

    def __init__(self, max_std: float = 0.05, p: float = 1.0):
        self.max_std, self.p = max_std, p

    @property
    def enabled(self) -> bool:
        return self.p > 0 and self.max_std > 0

    def sample(self, shape: torch.Size, generator: torch.Generator) -> NoiseParams:
        n = shape[0]
        std = uniform(generator, (n,), 0.0, self.max_std)
        std = torch.where(bernoulli(generator, (n,), self.p), std, 0.0)
        seed = int(
            torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item()
        )
        return NoiseParams(std=std, seed=seed)

    def apply(self, image: Tensor, mask: Mask, params: NoiseParams) -> tuple[Tensor, Mask]:
        return add_noise(image, params.std, params.seed, params.rows, params.batch), mask
