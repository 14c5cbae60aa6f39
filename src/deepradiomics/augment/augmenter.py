"""The training-time augmenter built from ``config.AugmentConfig``: spatial, then intensity.

The training loop calls it on the device, once per batch::

    aug = build_augmenter(cfg.augment, anisotropic=plan.anisotropic, spacing=plan.spacing)
    image, mask = aug(image, mask, generator=gen)   # gen: torch.Generator on the same device

``aug.sample(image.shape, gen)`` and ``aug.apply(image, mask, params)`` split the two halves,
so a batch can be logged and reproduced from its parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from deepradiomics.augment.affine import RandomAffine
from deepradiomics.augment.base import Mask, RandomTransform
from deepradiomics.augment.elastic import RandomElastic
from deepradiomics.augment.flip import AXES_ALL, AXES_IN_PLANE, RandomFlip
from deepradiomics.augment.gamma import RandomGamma
from deepradiomics.augment.intensity import RandomIntensity
from deepradiomics.augment.noise import RandomNoise
from deepradiomics.augment.rotate90 import RandomRotate90
from deepradiomics.augment.spatial import RandomSpatial
from deepradiomics.augment.warp import PaddingMode
from deepradiomics.config import AugmentConfig
from deepradiomics.errors import UserError


class Augmenter(RandomTransform):
    """Apply ``transforms`` in order; parameters are drawn for all of them first, in that order."""

    def __init__(self, transforms: Sequence[RandomTransform]):
        self.transforms = list(transforms)

    def sample(self, shape: torch.Size, generator: torch.Generator) -> list[Any]:
        return [t.sample(shape, generator) for t in self.transforms]

    def apply(self, image: Tensor, mask: Mask, params: list[Any]) -> tuple[Tensor, Mask]:
        for t, p in zip(self.transforms, params, strict=False):
            image, mask = t.apply(image, mask, p)
        return image, mask

    def __repr__(self) -> str:
        return f"Augmenter({[type(t).__name__ for t in self.transforms]})"


def build_augmenter(
    cfg: AugmentConfig,
    anisotropic: bool,
    spacing: Sequence[float] | None = None,
    padding_mode: PaddingMode = "border",
) -> Augmenter:
    """The augmenter for tensors of voxel ``spacing`` (z, y, x mm; None: 1 mm, i.e. voxels).

    ``anisotropic`` (thick slices, from the preprocessing plan): flips, 90-degree rotations,
    rotation, zoom and elastic deformation act in-plane only (y, x), never along z.
    Transforms whose settings are all off are left out; with everything off the augmenter
    returns its inputs unchanged.
    """
    spacing = (1.0, 1.0, 1.0) if spacing is None else tuple(float(s) for s in spacing)
    if len(spacing) != 3 or min(spacing) <= 0:
        raise UserError(
            f"augmentation spacing must be three positive numbers (z, y, x mm), got {spacing}"
        )
    spatial = RandomSpatial(
        flip=RandomFlip(AXES_IN_PLANE if anisotropic else AXES_ALL) if cfg.flip else None,
        rotate90=RandomRotate90(anisotropic, spacing) if cfg.rotate90 else None,
        affine=RandomAffine(
            cfg.rotate_deg, cfg.scale, anisotropic, cfg.affine_p, spacing, padding_mode
        ),
        elastic=RandomElastic(
            cfg.elastic_control_points,
            cfg.elastic_max_displacement_mm,
            anisotropic,
            cfg.elastic_p,
            spacing,
            padding_mode,
        ),
        spacing=spacing,
        padding_mode=padding_mode,
    )
    candidates = [
        spatial,
        RandomGamma(cfg.gamma),
        RandomIntensity(cfg.intensity_scale, cfg.intensity_shift),
        RandomNoise(cfg.noise_std),
    ]
    return Augmenter([t for t in candidates if t.enabled])
