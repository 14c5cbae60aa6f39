"""Batched augmentation on the training device (TorchIO-style: each random transform draws its
parameters with an explicit ``torch.Generator`` and applies a deterministic twin function).

All spatial transforms of a batch are composed into one ``grid_sample`` (image trilinear, mask
nearest on the same grid); see ``warp`` for the coordinate conventions.
"""

from deepradiomics.augment.affine import (
    AffineParams,
    RandomAffine,
    affine,
    affine_matrix,
    rotation_matrix,
)
from deepradiomics.augment.augmenter import Augmenter, build_augmenter
from deepradiomics.augment.base import RandomTransform, take_rows
from deepradiomics.augment.elastic import (
    ElasticParams,
    RandomElastic,
    elastic,
    elastic_displacement,
)
from deepradiomics.augment.flip import RandomFlip, flip, flip_matrix
from deepradiomics.augment.gamma import RandomGamma, gamma
from deepradiomics.augment.intensity import IntensityParams, RandomIntensity, scale_shift
from deepradiomics.augment.noise import NoiseParams, RandomNoise, add_noise
from deepradiomics.augment.rotate90 import RandomRotate90, rotate90
from deepradiomics.augment.spatial import RandomSpatial, SpatialParams, spatial
from deepradiomics.augment.symmetry import permute_exact, rot90_matrix, symmetry_group
from deepradiomics.augment.warp import warp

__all__ = [
    "AffineParams",
    "Augmenter",
    "ElasticParams",
    "IntensityParams",
    "NoiseParams",
    "RandomAffine",
    "RandomElastic",
    "RandomFlip",
    "RandomGamma",
    "RandomIntensity",
    "RandomNoise",
    "RandomRotate90",
    "RandomSpatial",
    "RandomTransform",
    "SpatialParams",
    "add_noise",
    "affine",
    "affine_matrix",
    "build_augmenter",
    "elastic",
    "elastic_displacement",
    "flip",
    "flip_matrix",
    "gamma",
    "permute_exact",
    "rot90_matrix",
    "rotate90",
    "rotation_matrix",
    "scale_shift",
    "spatial",
    "symmetry_group",
    "take_rows",
    "warp",
]
