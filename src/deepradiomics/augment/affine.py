"""Random rotation (small angles) and scaling, in physical space.

Angles are drawn uniformly in ``[-degrees, degrees]`` about each axis (z, y, x) and a zoom
factor uniformly in ``scale``; both are built in millimetres (see ``warp``), so they are true
rotations and zooms for any voxel aspect. For anisotropic data (thick slices) only the
in-plane rotation about the slice axis z and an in-plane zoom are drawn: rotating out of plane
would interpolate across thick slices and invent detail between them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from deepradiomics.augment.base import Mask, RandomTransform, bernoulli, uniform
from deepradiomics.augment.warp import PaddingMode, warp


@dataclass
class AffineParams:
    angles: Tensor  # [N, 3] radians about the z, y, x axes
    scales: Tensor  # [N, 3] zoom factors along z, y, x (> 1 enlarges the content)


def rotation_matrix(angles: Tensor) -> Tensor:
    """[N, 3, 3] rotation Rz @ Ry @ Rx in (z, y, x) coordinates; ``angles`` [N, 3] radians."""
    n = angles.shape[0]
    out = torch.eye(3, dtype=angles.dtype, device=angles.device).expand(n, 3, 3)
    for axis in range(3):  # about z: the (y, x) plane; about y: (z, x); about x: (z, y)
        a, b = [i for i in range(3) if i != axis]
        c, s = torch.cos(angles[:, axis]), torch.sin(angles[:, axis])
        r = torch.eye(3, dtype=angles.dtype, device=angles.device).repeat(n, 1, 1)
        r[:, a, a], r[:, a, b], r[:, b, a], r[:, b, b] = c, -s, s, c
        out = out @ r
    return out


def affine_matrix(params: AffineParams) -> Tensor:
    """[N, 3, 3] physical pull-back matrix: rotate, then sample at 1/scale (zoom by ``scales``)."""
    return rotation_matrix(params.angles) @ torch.diag_embed(1.0 / params.scales.to(params.angles))


def affine(
    image: Tensor,
    mask: Mask,
    params: AffineParams,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    padding_mode: PaddingMode = "border",
) -> tuple[Tensor, Mask]:
    """Deterministic twin: rotate and zoom each sample about the volume centre (one resampling)."""
    return warp(image, mask, affine_matrix(params), spacing=spacing, padding_mode=padding_mode)


class RandomAffine(RandomTransform):
    """Random rotation and zoom per sample; each sample is transformed with probability ``p``."""

    def __init__(
        self,
        degrees: float = 15.0,
        scale: tuple[float, float] = (0.9, 1.1),
        anisotropic: bool = False,
        p: float = 1.0,
        spacing: Sequence[float] = (1.0, 1.0, 1.0),
        padding_mode: PaddingMode = "border",
    ):
        if not 0 < scale[0] <= scale[1]:
            raise ValueError(f"scale must satisfy 0 < low <= high, got {scale}")
        self.degrees, self.scale, self.anisotropic, self.p = degrees, tuple(scale), anisotropic, p
        self.spacing, self.padding_mode = tuple(spacing), padding_mode

    @property
    def enabled(self) -> bool:
        return self.p > 0 and (self.degrees > 0 or self.scale != (1.0, 1.0))

    def sample(self, shape: torch.Size, generator: torch.Generator) -> AffineParams:
        n = shape[0]
        limit = math.radians(self.degrees)
        angles = uniform(generator, (n, 3), -limit, limit)
        zoom = uniform(generator, (n, 1), *self.scale).expand(n, 3).clone()
        active = bernoulli(generator, (n, 1), self.p)
        if self.anisotropic:  # in-plane only: rotation about z, zoom in (y, x)
            angles[:, 1:] = 0.0
            zoom[:, 0] = 1.0
        return AffineParams(
            angles=torch.where(active, angles, 0.0), scales=torch.where(active, zoom, 1.0)
        )

    def apply(self, image: Tensor, mask: Mask, params: AffineParams) -> tuple[Tensor, Mask]:
        return affine(image, mask, params, self.spacing, self.padding_mode)
