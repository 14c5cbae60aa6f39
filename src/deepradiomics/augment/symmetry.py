"""Signed axis permutations: the exact symmetries (flips, 90-degree rotations) of a voxel grid.

A signed permutation matrix ``M`` (z, y, x), used as a pull-back (see ``warp``), maps voxel
centres onto voxel centres, so it can be applied exactly with ``permute`` + ``flip`` instead of
interpolation. The allowed group depends on the data: two axes may be swapped only when they
have the same number of voxels and the same spacing, and for anisotropic data (thick slices)
the slice axis z is left alone (in-plane symmetries only).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence

import torch
from torch import Tensor

from deepradiomics.augment.base import Mask


def signed_permutations() -> Tensor:
    """All 48 signed 3x3 permutation matrices, identity first."""
    mats = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            m = torch.zeros(3, 3)
            for i, j in enumerate(perm):
                m[i, j] = signs[i]
            mats.append(m)
    return torch.stack(mats)


@functools.lru_cache(maxsize=64)
def symmetry_group(
    spatial_shape: Sequence[int], spacing: Sequence[float], anisotropic: bool, proper: bool
) -> Tensor:
    """[G, 3, 3] signed permutations that keep this grid: shape and spacing preserved.

    ``proper``: rotations only (determinant +1). ``anisotropic``: z maps to +z (in-plane only).
    Cached per grid: do not modify the returned tensor.
    """
    keep = []
    for m in signed_permutations():
        src = m.abs().argmax(dim=1)  # input axis i follows output axis src[i]
        if proper and torch.det(m) < 0:
            continue
        if any(
            spatial_shape[i] != spatial_shape[j] or spacing[i] != spacing[j]
            for i, j in enumerate(src.tolist())
        ):
            continue
        if anisotropic and m[0, 0] != 1:
            continue
        keep.append(m)
    return torch.stack(keep)


def rot90_matrix(k: int, axes: tuple[int, int]) -> Tensor:
    """The pull-back matrix of ``torch.rot90(x, k, dims=axes)`` for spatial axes (0=z, 1=y, 2=x)."""
    a, b = axes
    quarter = torch.eye(3)
    quarter[a, a] = quarter[b, b] = 0.0
    quarter[a, b], quarter[b, a] = 1.0, -1.0  # rot90(x)[i, j] = x[j, n-1-i]
    return torch.linalg.matrix_power(quarter, k % 4)


def permute_exact(image: Tensor, mask: Mask, matrices: Tensor) -> tuple[Tensor, Mask]:
    """Apply per-sample signed permutations [N, 3, 3] exactly (no interpolation).

    Samples sharing a matrix are processed together, so the cost is one copy per distinct
    symmetry in the batch (at most 48).
    """
    matrices = matrices.detach().cpu().round().to(torch.int64)
    unique, inverse = torch.unique(matrices, dim=0, return_inverse=True)
    out_image = torch.empty_like(image)
    out_mask = None if mask is None else torch.empty_like(mask)
    for u, m in enumerate(unique):
        idx = (inverse == u).nonzero().flatten().to(image.device)
        out_image[idx] = _permute_one(image[idx], m)
        if mask is not None:
            out_mask[idx] = _permute_one(mask[idx], m)
    return out_image, out_mask


def _permute_one(x: Tensor, m: Tensor) -> Tensor:
    """out(p) = in(M p) for one signed permutation M: flip the axes with sign -1, then permute."""
    src = m.abs().argmax(dim=1).tolist()  # input axis i follows output axis src[i]
    signs = m.sum(dim=1).tolist()
    # Centred coordinates: q_i = s_i * p_{src[i]}, where q indexes the input and p the output.
    flipped = x.flip([2 + i for i in range(3) if signs[i] < 0]) if any(s < 0 for s in signs) else x
    order = [0] * 3
    for i, j in enumerate(src):  # output axis j comes from input axis i
        order[j] = i
    return flipped.permute(0, 1, *[2 + o for o in order])
