"""Random 90-degree rotations: a uniform draw from the proper symmetries of the grid, exactly.

For a cube with isotropic voxels this is the 24-element rotation group of the cube (drawing
uniformly from the group, rather than composing random ``rot90`` per plane, gives every
orientation the same chance). With flips added, every one of the 48 signed permutations is
equally likely. For anisotropic data only the in-plane rotations about z are drawn; axes of
different length or spacing are never swapped (the batch shape is kept).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from deepradiomics.augment.base import Mask, RandomTransform
from deepradiomics.augment.symmetry import permute_exact, symmetry_group


def rotate90(image: Tensor, mask: Mask, matrices: Tensor) -> tuple[Tensor, Mask]:
    """Deterministic twin: apply per-sample signed permutation matrices [N, 3, 3] exactly."""
    return permute_exact(image, mask, matrices)


class RandomRotate90(RandomTransform):
    """Uniform random rotation from the grid's 90-degree rotation group, per sample."""

    def __init__(self, anisotropic: bool = False, spacing: Sequence[float] = (1.0, 1.0, 1.0)):
        self.anisotropic = anisotropic
        self.spacing = tuple(spacing)

    def group(self, spatial_shape: Sequence[int]) -> Tensor:
        return symmetry_group(tuple(spatial_shape), self.spacing, self.anisotropic, proper=True)

    def sample(self, shape: torch.Size, generator: torch.Generator) -> Tensor:
        group = self.group(shape[2:]).to(generator.device)
        index = torch.randint(len(group), (shape[0],), generator=generator, device=generator.device)
        return group[index]

    def apply(self, image: Tensor, mask: Mask, matrices: Tensor) -> tuple[Tensor, Mask]:
        return rotate90(image, mask, matrices)
