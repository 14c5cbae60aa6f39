"""Models: a timm-style registry of backbones plus the task heads.

    from deepradiomics.models import create_model, list_models
    model = create_model("small3d", task="binary", in_channels=2, spacing=(5.0, 0.7, 0.7))
    model = build_from_config(cfg, task, in_channels, n_classes, spacing)   # from a config
    out = model(x, covariates)          # dict: out, embedding[, site_logits]

Importing this package registers every model but imports MONAI only when a MONAI-based
model (ResNet, DenseNet, U-Net) is built.
"""

from deepradiomics.models import densenet, equivariant, resnet, slices, small, texture, unet  # noqa: F401  (register)
from deepradiomics.models.anisotropy import stage_kernels
from deepradiomics.models.build import build_from_config
from deepradiomics.models.heads import GradReverse, RadiomicsNet, grad_reverse
from deepradiomics.models.registry import (
    accepts_kwarg,
    create_backbone,
    create_model,
    list_models,
    register_model,
)

__all__ = [
    "GradReverse",
    "RadiomicsNet",
    "accepts_kwarg",
    "build_from_config",
    "create_backbone",
    "create_model",
    "grad_reverse",
    "list_models",
    "register_model",
    "stage_kernels",
]
