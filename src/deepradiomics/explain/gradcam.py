"""3D Grad-CAM and Grad-CAM++ for any registry model at a named layer.

Written by hand with two hooks (forward: keep the layer's activation; tensor hook: keep its
gradient) rather than with Captum or MONAI: it is a dozen lines, it works for every backbone
of the registry (2D / 2.5D slice models, group CNNs) through ``RadiomicsNet``'s dict output,
and it avoids three pitfalls of those libraries' defaults: MONAI's default normaliser
(``1 - min-max``) inverts the map, Captum's ``LayerAttribution.interpolate`` defaults to
nearest-neighbour, and both rescale each map to [0, 1], which makes maps of different cases
incomparable. Here the *raw* map is kept (units: score per unit of activation, summed over
channels), upsampled trilinearly; any display scaling is the caller's and is stated there.
(Captum also needs torchvision-free installs that the pinned CPU torch does not have.)

The default layer is the backbone's last convolutional stage: the last module to finish
whose output is still a spatial map (not a global pool): ``trunk`` for small3d and the group
CNNs, ``net.layer4`` for ResNets, ``features`` for DenseNets, ``bottleneck`` for the U-Net,
``lesion_maps`` for ``lesion_texture``. A backbone with an ``attribution()`` context is
explained inside it (``lesion_texture``: its texture energies are then summed from voxel
shares that join that layer, so the map places them too).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from deepradiomics.errors import UserError

METHODS = ("gradcam", "gradcampp")
_GLOBAL_POOLS = (
    nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool3d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
)


def default_layer(model: nn.Module, input_shape: Sequence[int]) -> str:
    """Dotted name (in ``model``) of its backbone's last spatial feature map's module."""
    backbone = getattr(model, "backbone", model)
    prefix = "backbone." if backbone is not model else ""
    finished: list[str] = []
    hooks = []
    for name, module in backbone.named_modules():
        if not name or isinstance(module, _GLOBAL_POOLS):
            continue

        def hook(mod, inp, out, name=name):  # noqa: ANN001
            if isinstance(out, torch.Tensor) and out.dim() >= 4:
                finished.append(name)

        hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            backbone.forward_features(torch.zeros(1, *input_shape))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    if not finished:
        raise UserError(f"Grad-CAM: {type(backbone).__name__} has no spatial feature map")
    return prefix + finished[-1]


def _layer(model: nn.Module, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n]
        raise UserError(
            f"Grad-CAM layer {name!r} is not in the model; e.g. {', '.join(names[-5:])}"
        ) from None


def target_score(out: torch.Tensor, target: int | None = None) -> torch.Tensor:
    """``[N]`` score to explain: the logit / risk / value, or class ``target``'s logit
    (multiclass; default: each case's predicted class)."""
    if out.dim() == 1:
        return out
    if out.shape[1] == 1:
        return out[:, 0]
    if target is None:
        return out.gather(1, out.argmax(1, keepdim=True))[:, 0]
    return out[:, target]


def _weights(method: str, act: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Channel weights ``[N, C]`` (Grad-CAM: mean gradient; Grad-CAM++: Chattopadhay et al.
    2018, eq. 19 with the exponential-score simplification used by their code)."""
    dims = tuple(range(2, act.dim()))
    if method == "gradcam":
        return grad.mean(dims)
    g2, g3 = grad.pow(2), grad.pow(3)
    denom = 2 * g2 + act.sum(dims, keepdim=True) * g3
    alpha = g2 / torch.where(denom != 0, denom, torch.ones_like(denom))
    return (alpha * F.relu(grad)).sum(dims)


def _to_input(
    cam: torch.Tensor, input_shape: Sequence[int], slices: int | None, slab: int | None = None
) -> torch.Tensor:
    """``[N, *map]`` -> ``[N, D, H, W]`` of the input: trilinear (bilinear for 2D maps, then
    placed on the ``slices`` central slices the 2D model saw; zero elsewhere). A 3D map of
    ``slab`` slices from a model that reads only its input's central ``slab`` slices
    (``z_slices``) is placed on them."""
    d, h, w = (int(n) for n in input_shape[-3:])
    if cam.dim() == 4 and slab is not None and cam.shape[1] == slab < d:
        out = cam.new_zeros(cam.shape[0], d, h, w)
        lo = (d - slab) // 2
        size = (slab, h, w)
        out[:, lo : lo + slab] = F.interpolate(
            cam[:, None], size=size, mode="trilinear", align_corners=False
        )[:, 0]
        return out
    if cam.dim() == 4:
        return F.interpolate(cam[:, None], size=(d, h, w), mode="trilinear", align_corners=False)[
            :, 0
        ]
    plane = F.interpolate(cam[:, None], size=(h, w), mode="bilinear", align_corners=False)[:, 0]
    out = cam.new_zeros(cam.shape[0], d, h, w)
    k = slices or 1
    start = d // 2 - k // 2
    out[:, start : start + k] = plane[:, None]
    return out


def _weighted_activation(
    model: nn.Module,
    x: torch.Tensor,
    layer: str | None,
    method: str,
    target: int | None,
    covariates: torch.Tensor | None,
) -> torch.Tensor:
    """``[N, C, *map]``: the layer's activation times its channels' weights (detached)."""
    if method not in METHODS:
        raise UserError(f"unknown Grad-CAM method {method!r}; one of {', '.join(METHODS)}")
    model.eval()
    name = layer or default_layer(model, tuple(x.shape[1:]))
    module = _layer(model, name)
    store: dict[str, torch.Tensor] = {}
    handle = module.register_forward_hook(lambda mod, inp, out: store.__setitem__("act", out))
    backbone = getattr(model, "backbone", model)
    # a backbone may lay out as maps what it otherwise pools directly (``lesion_texture``)
    attribution = getattr(backbone, "attribution", nullcontext)
    try:
        with torch.enable_grad(), attribution():
            out = model(x.detach(), covariates)["out"]
            if "act" not in store:
                raise UserError(f"Grad-CAM layer {name!r} is not used by the forward pass")
            # cases are independent in eval mode: the gradient of the sum is per case
            (grad,) = torch.autograd.grad(target_score(out, target).sum(), store["act"])
    finally:
        handle.remove()
    act, grad = store["act"].detach(), grad.detach()
    weights = _weights(method, act, grad)
    return weights.reshape(*weights.shape, *([1] * (act.dim() - 2))) * act


def grad_cam(
    model: nn.Module,
    x: torch.Tensor,
    *,
    layer: str | None = None,
    method: str = "gradcam",
    target: int | None = None,
    covariates: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(map [N, D, H, W] at the input's size, raw map at the layer's size)`` for a batch.

    ``model`` is a ``RadiomicsNet`` (put in eval mode here); the map is
    ``ReLU(sum_c w_c A_c)`` with ``A`` the layer's activation and ``w`` the method's
    channel weights, unscaled. Group-CNN activations (channel x group element) are channels.
    """
    raw = F.relu(_weighted_activation(model, x, layer, method, target, covariates).sum(1))
    backbone = getattr(model, "backbone", model)
    slab = getattr(backbone, "z_slices", None)
    return _to_input(raw, x.shape[2:], getattr(backbone, "slices", None), slab), raw


def map_composition(
    model: nn.Module,
    x: torch.Tensor,
    *,
    method: str = "gradcam",
    target: int | None = None,
    covariates: torch.Tensor | None = None,
) -> tuple[dict[str, torch.Tensor], torch.Tensor] | None:
    """``({kind: [N]}, mass [N])``: each kind of channel's share of the default-layer map's
    mass, and that mass (the map's sum), for a backbone that names its channels
    (``map_groups``: ``lesion_texture``'s intensity maps, soft levels and texture energies);
    None for the others.

    On the voxels where the map is positive, the map is the sum of each kind's weighted
    channels; a kind's share is that sum over those voxels over the map's total. The shares
    add up to 1; a kind that lowers the score where the map is positive has a negative share.
    """
    backbone = getattr(model, "backbone", model)
    if not hasattr(backbone, "map_groups"):
        return None
    parts = _weighted_activation(model, x, None, method, target, covariates)
    total = parts.sum(1)
    positive = (total > 0).to(parts.dtype)
    dims = tuple(range(1, total.dim()))
    mass = (total * positive).sum(dims)
    safe = torch.where(mass > 0, mass, torch.ones_like(mass))
    shares = {
        kind: torch.where(mass > 0, (parts[:, part].sum(1) * positive).sum(dims) / safe, 0.0)
        for kind, part in backbone.map_groups().items()
    }
    return shares, mass
