"""The single resampling step: one sampling grid + ``grid_sample`` for a whole batch.

Every spatial transform (rotation, scaling, 90-degree rotations, flips, elastic) is expressed
in *physical* coordinates and composed here into one sampling grid, so the image is
interpolated once. Conventions:

- arrays are [N, C, D, H, W] = [.., z, y, x]; matrices and displacements are in (z, y, x)
  order, in millimetres, centred on the volume centre;
- a matrix ``A`` is a pull-back: output point ``p`` samples the input at ``A @ p + d(p)``,
  where ``d`` is given at a coarse grid of control points spanning the volume corner voxel to
  corner voxel and is upsampled trilinearly;
- ``grid_sample`` wants normalized coordinates in (x, y, z) order. With
  ``align_corners=False`` a normalized coordinate ``u`` on an axis of ``n`` voxels of spacing
  ``s`` is the physical offset ``u * n * s / 2`` from the centre, so the normalized affine is
  ``E^-1 A E`` with ``E = diag(n * s / 2)``, then reversed to (x, y, z). This makes rotations
  true rotations for any voxel aspect ratio and any (non-cubic) shape.

Without a displacement the grid is ``affine_grid``. With one, the affine map is evaluated at
the control points, added to ``d`` there, and the sum is upsampled once: trilinear
interpolation reproduces an affine map exactly, so this equals ``affine_grid`` + upsampled
``d`` at a third of the memory traffic (measured 436 ms -> 40 ms for [16, 3, 64^3] on 2 cores).

The image is sampled trilinearly, the mask with nearest neighbour on the same grid, so it
stays binary (or keeps its integer labels) and moves with the image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

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
        [n * s / 2 for n, s in zip(spatial_shape, spacing, strict=False)],
        device=device,
        dtype=dtype,
    )


def affine_theta(matrix: Tensor, spatial_shape: Sequence[int], spacing: Sequence[float]) -> Tensor:
    """``affine_grid`` theta [N, 3, 4] (x, y, z) for physical pull-backs [N, 3, 3] (z, y, x)."""
    ext = half_extent(spatial_shape, spacing, device=matrix.device, dtype=matrix.dtype)
    normalized = matrix * ext[None, None, :] / ext[None, :, None]  # E^-1 A E
    xyz = normalized.flip(1).flip(2)  # reverse both row and column order: (z, y, x) -> (x, y, z)
    return torch.cat([xyz, xyz.new_zeros(xyz.shape[0], 3, 1)], dim=2)


def control_points(
    spatial_shape: Sequence[int],
    spacing: Sequence[float],
    counts: Sequence[int],
    device=None,
    dtype=None,
) -> Tensor:
    """[3, Kz, Ky, Kx] physical positions (mm, centred) of control points, corner to corner."""
    axes = [
        (torch.linspace(0, n - 1, k, device=device, dtype=dtype) - (n - 1) / 2) * s
        for n, s, k in zip(spatial_shape, spacing, counts, strict=False)
    ]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"))


def sampling_grid(
    matrix: Tensor,
    spatial_shape: Sequence[int],
    spacing: Sequence[float],
    displacement: Tensor | None = None,
) -> Tensor:
    """[N, D, H, W, 3] normalized (x, y, z) grid.

    ``displacement`` [N, 3, Kz, Ky, Kx] mm, (z, y, x) components, at ``control_points``.
    """
    n = matrix.shape[0]
    if displacement is None:
        theta = affine_theta(matrix, spatial_shape, spacing)
        return F.affine_grid(theta, [n, 1, *spatial_shape], align_corners=False)
    pts = control_points(
        spatial_shape, spacing, displacement.shape[2:], matrix.device, matrix.dtype
    )
    src = torch.einsum("nij,j...->ni...", matrix, pts) + displacement
    ext = half_extent(spatial_shape, spacing, device=matrix.device, dtype=matrix.dtype)
    normalized = (src / ext[None, :, None, None, None]).flip(1)  # (z, y, x) -> (x, y, z)
    dense = F.interpolate(
        normalized, size=tuple(spatial_shape), mode="trilinear", align_corners=True
    )
    return dense.permute(0, 2, 3, 4, 1)


def warp(
    image: Tensor,
    mask: Mask,
    matrix: Tensor,
    displacement: Tensor | None = None,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    padding_mode: PaddingMode = "border",
) -> tuple[Tensor, Mask]:
    """Resample image (trilinear) and mask (nearest) through one shared grid.

    ``matrix`` [N, 3, 3] physical pull-back in (z, y, x); ``displacement`` None or
    [N, 3, Kz, Ky, Kx] mm at the control points (see ``sampling_grid``). The grid is built in
    float32 (float64 for float64 images) and half-precision images are sampled in float32 and
    cast back, so coordinates never lose precision.
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
