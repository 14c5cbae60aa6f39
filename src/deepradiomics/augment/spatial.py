"""All spatial transforms of a batch composed into one resampling.

Flips and 90-degree rotations (signed permutations), rotation + zoom (``affine``) and the
elastic field are drawn separately, then composed into one physical pull-back matrix plus one
displacement field and applied with a single ``grid_sample`` (see ``warp``): the image is
interpolated once however many transforms are on. When a batch has only symmetries (no
sample drew a rotation, zoom or deformation) they are applied exactly with permute/flip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from deepradiomics.augment.affine import AffineParams, RandomAffine, affine_matrix
from deepradiomics.augment.base import Mask, RandomTransform
from deepradiomics.augment.elastic import ElasticParams, RandomElastic
from deepradiomics.augment.flip import RandomFlip, flip_matrix
from deepradiomics.augment.rotate90 import RandomRotate90
from deepradiomics.augment.symmetry import permute_exact
from deepradiomics.augment.warp import PaddingMode, warp


@dataclass
class SpatialParams:
    flip: Tensor | None = None  # [N, 3] bool (z, y, x)
    rotate90: Tensor | None = None  # [N, 3, 3] signed permutations
    affine: AffineParams | None = None
    elastic: ElasticParams | None = None


def spatial(
    image: Tensor,
    mask: Mask,
    params: SpatialParams,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    padding_mode: PaddingMode = "border",
) -> tuple[Tensor, Mask]:
    """Deterministic twin: apply flips, then 90-degree rotation, then rotation/zoom, then elastic.

    As a pull-back, output point ``p`` samples the input at ``F @ R90 @ A @ p + d(p)``.
    """
    n = image.shape[0]
    symmetry = torch.eye(3).expand(n, 3, 3)
    if params.flip is not None:
        symmetry = flip_matrix(params.flip.cpu())
    if params.rotate90 is not None:
        symmetry = symmetry @ params.rotate90.cpu().float()
    has_affine = params.affine is not None and bool(
        (params.affine.angles != 0).any() or (params.affine.scales != 1).any()
    )
    has_elastic = params.elastic is not None and bool(params.elastic.active.any())
    if not (has_affine or has_elastic):
        if torch.equal(symmetry, torch.eye(3).expand(n, 3, 3)):
            return image, mask
        return permute_exact(image, mask, symmetry)
    matrix = symmetry.to(image.device)
    if has_affine:
        matrix = matrix @ affine_matrix(params.affine).to(image.device, matrix.dtype)
    field = params.elastic.coarse if has_elastic else None
    return warp(image, mask, matrix, field, spacing=spacing, padding_mode=padding_mode)


class RandomSpatial(RandomTransform):
    """Draw each enabled spatial transform, then apply them all with one resampling.

    Components left as ``None`` (or disabled) draw nothing.
    """

    def __init__(
        self,
        flip: RandomFlip | None = None,
        rotate90: RandomRotate90 | None = None,
        affine: RandomAffine | None = None,
        elastic: RandomElastic | None = None,
        spacing: Sequence[float] = (1.0, 1.0, 1.0),
        padding_mode: PaddingMode = "border",
    ):
        self.flip = flip
        self.rotate90 = rotate90
        self.affine = affine if affine is not None and affine.enabled else None
        self.elastic = elastic if elastic is not None and elastic.enabled else None
        self.spacing, self.padding_mode = tuple(spacing), padding_mode

    @property
    def enabled(self) -> bool:
        return any(t is not None for t in (self.flip, self.rotate90, self.affine, self.elastic))

    def sample(self, shape: torch.Size, generator: torch.Generator) -> SpatialParams:
        return SpatialParams(
            flip=None if self.flip is None else self.flip.sample(shape, generator),
            rotate90=None if self.rotate90 is None else self.rotate90.sample(shape, generator),
            affine=None if self.affine is None else self.affine.sample(shape, generator),
            elastic=None if self.elastic is None else self.elastic.sample(shape, generator),
        )

    def apply(self, image: Tensor, mask: Mask, params: SpatialParams) -> tuple[Tensor, Mask]:
        return spatial(image, mask, params, self.spacing, self.padding_mode)
