"""The configured model: ``build_from_config`` turns an experiment config's ``model`` section
(plus what the data says: channels, classes, spacing, covariates, sites) into a network.

The config is only read here, never imported at run time: ``config`` checks model names and
keywords against this package's registry, so importing ``config`` back would be a cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from deepradiomics.models import pretrained as published
from deepradiomics.models.heads import RadiomicsNet
from deepradiomics.models.registry import accepts_kwarg, create_model
from deepradiomics.seeds import derive_seed
from deepradiomics.tasks import get_task

if TYPE_CHECKING:
    from deepradiomics.config import ExperimentConfig


def build_from_config(
    cfg: ExperimentConfig,
    task: str,
    in_channels: int,
    n_classes: int,
    spacing: tuple[float, float, float] | None,
    n_covariates: int = 0,
    n_sites: int = 0,
    load_pretrained: bool = True,
) -> RadiomicsNet:
    """The configured model, initialised from the config's seed (stream ``init``), then from
    ``model.pretrained``'s published trunk weights unless ``load_pretrained`` is false
    (``predict`` loads the bundle's weights over it anyway)."""
    kwargs = dict(cfg.model.kwargs)
    pretrained = cfg.model.pretrained
    if pretrained is not None:  # the published architecture; isotropic kernels
        kwargs = published.pretrained_kwargs(pretrained.layout, cfg.model.name, kwargs)
    elif spacing is not None and accepts_kwarg(cfg.model.name, "spacing"):
        kwargs.setdefault("spacing", tuple(spacing))
    torch.manual_seed(derive_seed(cfg.seed, "init"))
    model = create_model(
        cfg.model.name,
        task=task,
        in_channels=in_channels,
        num_outputs=n_classes if get_task(task).scores_per_class else None,
        n_covariates=n_covariates,
        n_sites=n_sites if cfg.model.site_adversary else 0,
        dropout=cfg.model.dropout,
        **kwargs,
    )
    if pretrained is not None and load_pretrained:
        published.load_pretrained(model, pretrained, cfg.model.name)
    return model
