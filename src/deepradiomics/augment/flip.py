"""Random flips: each allowed axis flipped with probability 1/2, per sample, exactly."""

from __future__ import annotations

import torch
from torch import Tensor

from deepradiomics.augment.base import Mask, RandomTransform, bernoulli
from deepradiomics.augment.symmetry import permute_exact

AXES_ALL = (0, 1, 2)  # z, y, x
AXES_IN_PLANE = (1, 2)  # y, x: for anisotropic data the slice axis is not flipped


def flip_matrix(flags: Tensor) -> Tensor:
    """[N, 3, 3] pull-back matrices of per-sample flips; ``flags`` [N, 3] bool (z, y, x)."""
    signs = 1.0 - 2.0 * flags.float()
    return torch.diag_embed(signs)


def flip(image: Tensor, mask: Mask, flags: Tensor) -> tuple[Tensor, Mask]:
    """Deterministic twin: flip sample i along the axes where ``flags[i]`` is True (exact)."""
    return permute_exact(image, mask, flip_matrix(flags))


class RandomFlip(RandomTransform):
    """Flip each of ``axes`` (0=z, 1=y, 2=x) independently with probability ``p`` per sample."""

    def __init__(self, axes: tuple[int, ...] = AXES_ALL, p: float = 0.5):
        self.axes = tuple(axes)
        self.p = p

    def sample(self, shape: torch.Size, generator: torch.Generator) -> Tensor:
        draws = bernoulli(generator, (shape[0], 3), self.p)
        allowed = torch.zeros(3, dtype=torch.bool, device=draws.device)
        allowed[list(self.axes)] = True
        return draws & allowed

    def apply(self, image: Tensor, mask: Mask, flags: Tensor) -> tuple[Tensor, Mask]:
        return flip(image, mask, flags)
