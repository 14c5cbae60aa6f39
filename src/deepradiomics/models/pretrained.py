"""Published 3D trunk weights from a local file, mapped onto the registry's ResNets.

A user who has downloaded published weights names them in the config
(``model.pretrained: {path, sha256, layout, freeze}``); nothing is downloaded here. The file
is hashed and refused when the hash differs, read with ``torch.load(weights_only=True)`` (a
file holding pickled code is refused), its key layout is mapped onto the registry model's
trunk (``backbone.net``: MONAI's ``ResNet``), and every trunk weight must fit: missing,
unexpected and shape-mismatched keys are listed in one error. Head weights the file carries
(a segmentation decoder, a projection head) are left out; the task heads start fresh.

Layouts (key layouts read from the authors' code):

- ``medicalnet`` (Chen et al. 2019, Med3D; ``Tencent/MedicalNet``, ``resnet_10.pth`` ...):
  ``{"state_dict": {"module.conv1.weight", "module.bn1.*", "module.layer1.0.conv1.weight",
  ..., "module.conv_seg.*"}}``. ResNet-18/34 were trained with parameter-free type-A
  shortcuts, ResNet-10/50 with type-B (1x1 conv without bias + BN) shortcuts, so the model is
  built with ``shortcut_type`` / ``bias_downsample`` to match (MONAI's
  ``get_medicalnet_pretrained_resnet_args`` agrees). MedicalNet's layer3/layer4 are dilated
  and unstrided (a segmentation trunk); the registry's stride instead: the weights fit, the
  feature maps are coarser than in MedicalNet.
- ``fmcib`` (Pai et al. 2024, ``AIM-Harvard/foundation-cancer-image-biomarker``): MONAI's
  ``resnet50(n_input_channels=1, widen_factor=2, conv1_t_stride=2, bias_downsample=True,
  feed_forward=False)``, a 4096-feature embedding; the published file holds
  ``{"trunk_state_dict": {...unprefixed...}, "head_state_dict": ...}``; training
  checkpoints hold ``{"state_dict": {"model.trunk.*" | "model.backbone.*", "model.heads.*"}}``
  (optionally ``module.``-prefixed). Both are read.

Input channels: the published trunks take one channel. For a model with C > 1 modalities the
first convolution's kernel is repeated over the C channels and divided by C, so a C-channel
input whose channels are equal gives the published stem response (timm's rule for adapting
the first convolution); a C-channel kernel loaded into a 1-channel model is summed over its
channels. Any other channel difference is an error.

Published trunks have isotropic 3^3 kernels, so with a pretrained trunk the model is not
given the cohort's anisotropic ``spacing`` plan (set ``model.kwargs.spacing`` and the shape
check will say which kernels no longer fit).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from deepradiomics.errors import UserError
from deepradiomics.io.weights import read_weights

if TYPE_CHECKING:
    from deepradiomics.config import PretrainedConfig
    from deepradiomics.models.heads import RadiomicsNet

Weights = dict[str, torch.Tensor]
FIRST_CONV = "conv1.weight"
_SHOWN = 12  # keys listed per kind in a mismatch error


@dataclass(frozen=True)
class Layout:
    """How one family of published checkpoints is laid out and which trunk it needs."""

    models: tuple[str, ...]  # registry models the weights fit
    architecture: Callable[[str], dict[str, Any]]  # model name -> builder keywords
    split: Callable[[Any, Path], tuple[Weights, list[str]]]  # file -> (trunk weights, head keys)


def _strip(weights: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {k.removeprefix(prefix): v for k, v in weights.items()}


def _mapping(obj: Any, key: str, path: Path, layout: str) -> dict[str, Any]:
    """``obj[key]``, a mapping of names to tensors, or an error saying what the file holds."""
    inner = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(inner, dict):
        found = sorted(obj)[:_SHOWN] if isinstance(obj, dict) else type(obj).__name__
        raise UserError(
            f"{path}: not a {layout} checkpoint: expected a dict with {key!r}, found {found}"
        )
    return inner


def _medicalnet_split(obj: Any, path: Path) -> tuple[Weights, list[str]]:
    weights = _strip(_mapping(obj, "state_dict", path, "medicalnet"), "module.")
    heads = [k for k in weights if k.startswith("conv_seg.")]
    return {k: v for k, v in weights.items() if k not in heads}, heads


def _fmcib_split(obj: Any, path: Path) -> tuple[Weights, list[str]]:
    if isinstance(obj, dict) and "trunk_state_dict" in obj:
        heads = obj.get("head_state_dict") or {}
        return dict(_mapping(obj, "trunk_state_dict", path, "fmcib")), [
            f"head_state_dict.{k}" for k in heads
        ]
    weights = _strip(_mapping(obj, "state_dict", path, "fmcib"), "module.")
    trunk: Weights = {}
    heads: list[str] = []
    for key, value in weights.items():
        if key.startswith(("model.heads.", "heads.")):
            heads.append(key)
            continue
        for prefix in ("model.trunk.", "model.backbone.", "trunk."):
            if key.startswith(prefix):
                key = key[len(prefix) :]
                break
        trunk[key] = value  # an unprefixed stray key is reported as unexpected
    return trunk, heads


def _medicalnet_architecture(name: str) -> dict[str, Any]:
    basic_a = name in ("resnet18", "resnet34")  # MONAI: get_medicalnet_pretrained_resnet_args
    return {
        "shortcut_type": "A" if basic_a else "B",
        "bias_downsample": False,
        "conv1_t_size": 7,
        "conv1_t_stride": 2,
    }


LAYOUTS: dict[str, Layout] = {
    "medicalnet": Layout(
        models=("resnet10", "resnet18", "resnet34", "resnet50"),
        architecture=_medicalnet_architecture,
        split=_medicalnet_split,
    ),
    "fmcib": Layout(
        models=("resnet50",),
        architecture=lambda name: {
            "widen_factor": 2,
            "shortcut_type": "B",
            "bias_downsample": True,
            "conv1_t_size": 7,
            "conv1_t_stride": 2,
        },
        split=_fmcib_split,
    ),
}


def check_layout(layout: str, model_name: str) -> Layout:
    """``layout``'s description when its weights fit registry model ``model_name``."""
    if layout not in LAYOUTS:
        raise UserError(
            f"model.pretrained.layout: unknown layout {layout!r}; one of {', '.join(LAYOUTS)}"
        )
    spec = LAYOUTS[layout]
    if model_name not in spec.models:
        raise UserError(
            f"model.pretrained.layout: {layout} weights fit {', '.join(spec.models)}; "
            f"model.name is {model_name!r}"
        )
    return spec


def pretrained_kwargs(layout: str, model_name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The builder keywords for ``model_name`` to take ``layout``'s weights: the published
    architecture's (shortcut, width, stem) unless the config sets them (``kwargs`` win; the
    shape check then reports what no longer fits)."""
    return {**check_layout(layout, model_name).architecture(model_name), **kwargs}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_VERIFIED: dict[tuple[str, int, int], str] = {}  # (path, size, mtime) -> sha256, per process


def verified_file(path: Path, sha256: str) -> Path:
    """``path`` when it exists and its SHA-256 is ``sha256``; otherwise a ``UserError``."""
    if not path.is_file():
        raise UserError(f"model.pretrained.path: file not found: {path}")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _VERIFIED:
        _VERIFIED[key] = sha256_of(path)
    if _VERIFIED[key] != sha256.lower():
        raise UserError(
            f"model.pretrained.sha256: {path} has SHA-256 {_VERIFIED[key]}, the config expects "
            f"{sha256.lower()} (another file or an incomplete download?)"
        )
    return path


def adapt_first_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """The published stem kernel for ``in_channels`` inputs (module doc: repeat / C, or sum)."""
    have = weight.shape[1]
    if have == in_channels:
        return weight
    if have == 1:
        return weight.repeat(1, in_channels, *([1] * (weight.dim() - 2))) / in_channels
    if in_channels == 1:
        return weight.sum(1, keepdim=True)
    raise UserError(
        f"the pretrained first convolution takes {have} channels, the model {in_channels}; "
        "only 1 -> C (repeated, divided by C) and C -> 1 (summed) are mapped"
    )


def _listed(kind: str, keys: list[str]) -> str:
    more = f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else ""
    return f"{kind} ({len(keys)}): {', '.join(keys[:_SHOWN])}{more}"


def map_trunk(trunk: nn.Module, weights: Weights, source: str) -> Weights:
    """``weights`` checked against ``trunk``'s state dict key by key; returns what to load.

    Batch-norm ``num_batches_tracked`` counters may be absent (older files). Anything else
    missing, unexpected or of another shape is one ``UserError`` listing the keys.
    """
    expected = trunk.state_dict()
    weights = dict(weights)
    if FIRST_CONV in weights and FIRST_CONV in expected:
        want = expected[FIRST_CONV]
        got = weights[FIRST_CONV]
        if (
            got.dim() == want.dim()
            and got.shape[0] == want.shape[0]
            and got.shape[2:] == want.shape[2:]
        ):
            weights[FIRST_CONV] = adapt_first_conv(got, want.shape[1])
    missing = [k for k in expected if k not in weights and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in weights if k not in expected]
    shapes = [
        f"{k} {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
        for k, v in weights.items()
        if k in expected and tuple(v.shape) != tuple(expected[k].shape)
    ]
    problems = [
        _listed(kind, keys)
        for kind, keys in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("shape mismatch", shapes),
        )
        if keys
    ]
    if problems:
        raise UserError(
            f"{source}: the weights do not fit the model's trunk: " + "; ".join(problems)
        )
    return {k: v for k, v in weights.items() if k in expected}


@dataclass(frozen=True)
class LoadedTrunk:
    """What ``load_pretrained`` did: trunk tensors loaded, head keys of the file left out."""

    loaded: int
    head_keys: list[str]
    frozen: bool


def load_pretrained(
    model: RadiomicsNet, pretrained: PretrainedConfig, model_name: str
) -> LoadedTrunk:
    """Load ``pretrained``'s published weights into ``model``'s trunk (hash checked, keys
    mapped, every trunk tensor required) and freeze the trunk when the config says so."""
    spec = check_layout(pretrained.layout, model_name)
    path = verified_file(Path(pretrained.path), pretrained.sha256)
    trunk_weights, head_keys = spec.split(read_weights(path), path)
    trunk = getattr(model.backbone, "net", None)
    if not isinstance(trunk, nn.Module):
        raise UserError(f"model.pretrained: model {model_name!r} has no ResNet trunk to load into")
    source = f"{path} ({pretrained.layout} layout, model {model_name})"
    weights = map_trunk(trunk, trunk_weights, source)
    trunk.load_state_dict(weights, strict=False)  # map_trunk checked every key but counters
    if pretrained.freeze:
        model.freeze_backbone()
    return LoadedTrunk(loaded=len(weights), head_keys=head_keys, frozen=pretrained.freeze)
