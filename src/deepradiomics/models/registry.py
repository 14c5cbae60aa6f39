"""timm-style model registry: ``@register_model`` on one small builder function per variant.

A builder returns a *backbone*: an ``nn.Module`` taking ``[N, C, D, H, W]`` (C = modalities)
with ``forward_features(x) -> [N, F]`` and an ``int`` attribute ``num_features`` (= F).
Backbones that can segment also have ``forward_dense(x) -> (feature_map, embedding)`` and
``num_dense_features``. ``create_model`` puts the task head(s) on top (``heads.RadiomicsNet``).
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from torch import nn

from deepradiomics.errors import UserError
from deepradiomics.models.heads import RadiomicsNet

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a backbone builder under its function name (must be unique)."""
    name = fn.__name__
    if name in _MODELS:
        raise ValueError(f"model {name!r} is registered twice")
    _MODELS[name] = fn
    return fn


def list_models() -> list[str]:
    """Names of every registered model, sorted."""
    return sorted(_MODELS)


def _builder(name: str) -> Callable[..., nn.Module]:
    if name not in _MODELS:
        raise UserError(
            f"model.name: unknown model {name!r}; available: {', '.join(list_models())}"
        )
    return _MODELS[name]


def can_segment(name: str) -> bool:
    """Whether model ``name``'s backbone has ``forward_dense`` (read from its builder's return
    annotation, without building it); builders without one are given the benefit of the doubt."""
    try:
        returned = typing.get_type_hints(_builder(name)).get("return")
    except (NameError, TypeError):
        return True
    return returned is None or not isinstance(returned, type) or hasattr(returned, "forward_dense")


def accepts_kwarg(name: str, kwarg: str) -> bool:
    """Whether model ``name``'s builder takes ``kwarg`` (e.g. ``"spacing"``)."""
    return kwarg in inspect.signature(_builder(name)).parameters


# set by the pipeline from the data and the other config keys, never in ``model.kwargs``
PIPELINE_KWARGS = ("in_channels", "task", "num_outputs", "n_covariates", "n_sites", "dropout")


def _bind(name: str, kwargs: dict[str, Any], partial: bool) -> None:
    """``UserError`` naming the keyword when ``kwargs`` do not fit the builder of ``name``."""
    signature = inspect.signature(_builder(name))
    try:
        (signature.bind_partial if partial else signature.bind)(**kwargs)
    except TypeError as err:
        params = ", ".join(signature.parameters)
        raise UserError(f"model.kwargs: model {name!r}: {err}; it takes: {params}") from None


def check_model_kwargs(name: str, kwargs: dict[str, Any]) -> None:
    """Preflight of a config's ``model`` section: ``name`` is registered and ``kwargs`` are
    keywords its builder takes (other than those the pipeline sets); ``UserError`` otherwise."""
    reserved = sorted(set(kwargs) & set(PIPELINE_KWARGS))
    if reserved:
        raise UserError(
            f"model.kwargs.{reserved[0]}: set by the pipeline from the data and the config, "
            "not in model.kwargs"
        )
    _bind(name, kwargs, partial=True)


def create_backbone(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered backbone ``name``; a wrong keyword is a ``UserError`` naming it."""
    _bind(name, kwargs, partial=False)
    return _builder(name)(**kwargs)


def create_model(
    name: str,
    *,
    task: str = "binary",
    num_outputs: int | None = None,
    n_covariates: int = 0,
    n_sites: int = 0,
    dropout: float = 0.0,
    **kwargs: Any,
) -> RadiomicsNet:
    """Backbone ``name`` (built with ``kwargs``, e.g. ``in_channels``, ``spacing``) plus heads.

    Returns a ``heads.RadiomicsNet``; see it for the head arguments and the output dict.
    """
    backbone = create_backbone(name, **kwargs)
    return RadiomicsNet(
        backbone,
        task=task,
        num_outputs=num_outputs,
        n_covariates=n_covariates,
        n_sites=n_sites,
        dropout=dropout,
    )
