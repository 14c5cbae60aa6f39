"""The single resampling step: one ``affine_grid`` + ``grid_sample`` for a whole batch.

Every spatial transform (rotation, scaling, 90-degree rotations, flips, elastic) is expressed
in *physical* coordinates and composed here into one sampling grid, so the image is
interpolated once. Conventions:

- arrays are [N, C, D, H, W] = [.., z, y, x]; matrices and displacements are in (z, y, x)
  order, in millimetres, centred on the volume centre;
- a matrix ``A`` is a pull-back: output point ``p`` samples the input at ``A @ p + d(p)``;
- ``grid_sample`` wants normalized coordinates in (x, y, z) order. With
  ``align_corners=False`` a normalized coordinate ``u`` on an axis of ``n`` voxels of spacing
  ``s`` is the physical offset ``u * n * s / 2`` from the centre, so the normalized affine is
  ``E^-1 A E`` with ``E = diag(n * s / 2)``, then reversed to (x, y, z). This makes rotations
  true rotations for any voxel aspect ratio and any (non-cubic) shape.

The image is sampled trilinearly, the mask with nearest neighbour on the same grid, so it
stays binary (or keeps its integer labels) and moves with the image.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from deepradiomics.augment.base import Mask

PaddingMode = Literal["zeros", "border", "reflection"]


def half_extent(
    spatial_shape: Sequence[int], spacing: Sequence[float], device=None, dtype=None
) -> Tensor:
    """Physical half-size (z, y, x) in mm of the voxel grid: ``n * s / 2`` per axis."""
    return torch.tensor(
        [n * s / 2 for n, s in zip(spatial_shape, spacing)], device=device, dtype=dtype
    )


def affine_theta(matrix: Tensor, spatial_shape: Sequence[int], spacing: Sequence[float]) -> Tensor:
    """``affine_grid`` theta [N, 3, 4] (x, y, z) for physical pull-backs [N, 3, 3] (z, y, x)."""
    ext = half_extent(spatial_shape, spacing, device=matrix.device, dtype=matrix.dtype)
    normalized = matrix * ext[None, None, :] / ext[None, :, None]  # E^-1 A E
    xyz = normalized.flip(1).flip(2)  # reverse both row and column order: (z, y, x) -> (x, y, z)
    return torch.cat([xyz, xyz.new_zeros(xyz.shape[0], 3, 1)], dim=2)


def sampling_grid(
    matrix: Tensor,
    spatial_shape: Sequence[int],
    spacing: Sequence[float],
    displacement: Tensor | None = None,
) -> Tensor:
    """[N, D, H, W, 3] normalized grid; ``displacement`` [N, 3, D, H, W] is in mm, (z, y, x)."""
    n = matrix.shape[0]
    grid = F.affine_grid(
        affine_theta(matrix, spatial_shape, spacing), [n, 1, *spatial_shape], align_corners=False
    )
    if displacement is not None:
        ext = half_extent(
            spatial_shape, spacing, device=displacement.device, dtype=displacement.dtype
        )
        normalized = displacement / ext[None, :, None, None, None]
        grid = grid + normalized.flip(1).permute(0, 2, 3, 4, 1)
    return grid


def warp(
    image: Tensor,
    mask: Mask,
    matrix: Tensor,
    displacement: Tensor | None = None,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    padding_mode: PaddingMode = "border",
) -> tuple[Tensor, Mask]:
    """Resample image (trilinear) and mask (nearest) through one shared grid.

    ``matrix`` [N, 3, 3] physical pull-back in (z, y, x); ``displacement`` [N, 3, D, H, W] mm or
    None. The grid is built in float32 (float64 for float64 images) and half-precision images
    are sampled in float32 and cast back, so coordinates never lose precision.
    """
    work = torch.float64 if image.dtype == torch.float64 else torch.float32
    matrix = matrix.to(device=image.device, dtype=work)
    if displacement is not None:
        displacement = displacement.to(device=image.device, dtype=work)
    grid = sampling_grid(matrix, image.shape[2:], spacing, displacement)
    out = F.grid_sample(
        image.to(work), grid, mode="bilinear", padding_mode=padding_mode, align_corners=False
    )
    out = out.to(image.dtype)
    if mask is None:
        return out, None
    m = F.grid_sample(
        mask.to(work), grid, mode="nearest", padding_mode=padding_mode, align_corners=False
    )
    return out, m.to(mask.dtype)
