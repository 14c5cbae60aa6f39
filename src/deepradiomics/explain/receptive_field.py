"""Receptive field of every resolution stage of a backbone, in voxels and millimetres per axis.

The theoretical receptive field is computed by running the backbone once under a
``TorchDispatchMode`` that carries, for every feature map, per spatial axis ``(z, y, x)``:
its size ``r`` (input voxels seen by one unit), its jump ``j`` (input voxels between
neighbouring units) and the centre ``start`` of unit 0 in input coordinates. Convolutions
and poolings update them with the textbook rule (``r += (k - 1) * dilation * j``,
``start += ((k - 1) / 2 - padding) * j``, ``j *= stride``); every other operation (norms,
activations, residual sums, concatenations) takes the largest field among its inputs. Tracing
the real forward pass instead of a per-architecture table means anisotropic kernels and
strides, ResNet shortcuts and group convolutions are read from the layers that actually run.

A module that filters in a way the dispatch trace cannot read (through the FFT) declares
``receptive_kernel`` (z, y, x); its input's field grows by that kernel at stride 1.

A *stage* is the set of conv / pool outputs with the same jump; its receptive field is the
largest among them (the stage's last feature map).

``empirical_receptive_field`` measures the same thing from gradients: with every weight a
positive constant, batch norm an identity and max-pools replaced by average pools of the same
geometry, nothing cancels, so the support of the input gradient of one central unit of a
stage is exactly that unit's receptive field (clipped to the input).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from deepradiomics.errors import UserError

Triple = tuple[float, float, float]
aten = torch.ops.aten


@dataclass(frozen=True)
class Field:
    """Receptive field of one feature map, per axis (z, y, x) in input voxels."""

    size: tuple[int, int, int]
    jump: tuple[int, int, int]
    start: Triple  # centre of unit 0, in input voxel coordinates


@dataclass(frozen=True)
class StageField:
    """Receptive field of one resolution stage (``stride`` = its jump) of a backbone."""

    stage: int
    stride: tuple[int, int, int]
    voxels: tuple[int, int, int]
    mm: Triple
    start: Triple
    shape: tuple[int, int, int]  # spatial size of the stage's feature map for the traced input

    def extent_in(self, input_shape: Sequence[int]) -> tuple[int, int, int]:
        """Voxels of an input of ``input_shape`` seen by the stage's central unit
        (index ``n // 2`` per axis): the receptive field clipped to the input."""
        out = []
        for r, j, s0, n_out, n_in in zip(
            self.voxels, self.stride, self.start, self.shape, input_shape, strict=False
        ):
            centre = s0 + (n_out // 2) * j
            lo = max(0, math.ceil(centre - (r - 1) / 2 - 1e-6))
            hi = min(int(n_in) - 1, math.floor(centre + (r - 1) / 2 + 1e-6))
            out.append(max(0, hi - lo + 1))
        return tuple(out)  # type: ignore[return-value]


_POOLS = {
    aten.max_pool3d_with_indices.default,
    aten.max_pool2d_with_indices.default,
    aten.avg_pool3d.default,
    aten.avg_pool2d.default,
}


def _expand(v: int | Sequence[int], n: int, default: Sequence[int] | None = None) -> list[int]:
    if isinstance(v, int):
        return [v] * n
    v = list(v)
    if not v and default is not None:
        return list(default)
    return v * n if len(v) == 1 else v


def _apply(
    field: Field,
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
) -> Field:
    """One conv / pool over the last ``len(kernel)`` axes (2D layers leave z alone)."""
    size, jump, start = list(field.size), list(field.jump), list(field.start)
    offset = 3 - len(kernel)
    for a, (k, s, p, d) in enumerate(zip(kernel, stride, padding, dilation, strict=False)):
        i = a + offset
        start[i] += ((k - 1) * d / 2 - p) * jump[i]
        size[i] += (k - 1) * d * jump[i]
        jump[i] *= s
    return Field(tuple(size), tuple(jump), tuple(start))  # type: ignore[arg-type]


def _merge(fields: list[Field]) -> Field:
    return max(fields, key=lambda f: (math.prod(f.size), f.jump))


class _FieldTracer(TorchDispatchMode):
    """Carries a ``Field`` on every tensor derived from the input; records conv / pool outputs."""

    def __init__(self, x: torch.Tensor) -> None:
        super().__init__()
        self.fields: dict[int, Field] = {id(x): Field((1, 1, 1), (1, 1, 1), (0.0, 0.0, 0.0))}
        self.keep: list[torch.Tensor] = [x]  # keeps ids unique while tracing
        self.layers: list[tuple[Field, torch.Tensor]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = [
            self.fields[id(a)]
            for a in tree_leaves((args, kwargs))
            if isinstance(a, torch.Tensor) and id(a) in self.fields
        ]
        if not inputs:
            return out
        if func is aten.convolution.default:
            x, weight, _, stride, padding, dilation, transposed = args[:7]
            if transposed:
                raise UserError("receptive field: transposed convolutions are not supported")
            n = weight.dim() - 2
            field = _apply(
                inputs[0],
                weight.shape[2:],
                _expand(stride, n),
                _expand(padding, n),
                _expand(dilation, n),
            )
        elif func in _POOLS:
            x, kernel = args[0], args[1]
            n = x.dim() - 2
            kernel = _expand(kernel, n)
            stride = _expand(args[2] if len(args) > 2 else kwargs.get("stride", []), n, kernel)
            padding = _expand(args[3] if len(args) > 3 else kwargs.get("padding", 0), n)
            is_max = func in (
                aten.max_pool3d_with_indices.default,
                aten.max_pool2d_with_indices.default,
            )
            dilation = _expand(args[4] if is_max and len(args) > 4 else 1, n)
            field = _apply(inputs[0], kernel, stride, padding, dilation)
        else:
            field = _merge(inputs)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        for t in outs:
            if isinstance(t, torch.Tensor):
                self.fields[id(t)] = field
                self.keep.append(t)
        if func is aten.convolution.default or func in _POOLS:
            self.layers.append((field, outs[0]))
        return out


def _stages(
    layers: list[tuple[Field, torch.Tensor]], spacing: Sequence[float]
) -> tuple[list[StageField], list[torch.Tensor]]:
    best: dict[tuple[int, int, int], tuple[Field, torch.Tensor]] = {}
    for field, t in layers:  # later maps win ties: the stage's last feature map
        if field.jump not in best or math.prod(field.size) >= math.prod(best[field.jump][0].size):
            best[field.jump] = (field, t)
    stages, tensors = [], []
    for i, jump in enumerate(sorted(best, key=math.prod)):
        field, t = best[jump]
        shape = tuple(t.shape[2:])
        if len(shape) == 2:
            shape = (1, *shape)
        stages.append(
            StageField(
                stage=i + 1,
                stride=jump,
                voxels=field.size,
                mm=tuple(round(r * float(s), 3) for r, s in zip(field.size, spacing, strict=False)),  # type: ignore[arg-type]
                start=field.start,
                shape=shape,  # type: ignore[arg-type]
            )
        )
        tensors.append(t)
    return stages, tensors


def _slices(backbone: nn.Module) -> int | None:
    """The number of stacked slices of a 2D / 2.5D backbone (``models.slices``), else None."""
    return getattr(backbone, "slices", None)


def _declared_kernels(tracer: _FieldTracer, backbone: nn.Module) -> list:
    """Hooks recording a stride-1 ``receptive_kernel`` (z, y, x) that a module declares for a
    filtering the tracer cannot see (``models.texture`` filters through the FFT)."""

    def record(module: nn.Module, args: tuple, _out: object) -> None:
        x = args[0]
        if isinstance(x, torch.Tensor) and id(x) in tracer.fields:
            k = list(module.receptive_kernel)
            field = _apply(tracer.fields[id(x)], k, [1, 1, 1], [n // 2 for n in k], [1, 1, 1])
            tracer.layers.append((field, x))

    return [
        m.register_forward_hook(record)
        for m in backbone.modules()
        if getattr(m, "receptive_kernel", None) is not None
    ]


def _trace(
    backbone: nn.Module, x: torch.Tensor, spacing: Sequence[float]
) -> tuple[list[StageField], list[torch.Tensor]]:
    tracer = _FieldTracer(x)
    hooks = _declared_kernels(tracer, backbone)
    try:
        with tracer:
            backbone.forward_features(x)
    finally:
        for h in hooks:
            h.remove()
    stages, tensors = _stages(tracer.layers, spacing)
    k = _slices(backbone)
    if k is not None:  # a 2D backbone on the k slices around D // 2: it sees k slices along z
        centre = float(x.shape[2] // 2)
        stages = [
            StageField(
                s.stage,
                s.stride,
                (k, *s.voxels[1:]),  # type: ignore[arg-type]
                (round(k * float(spacing[0]), 3), *s.mm[1:]),  # type: ignore[arg-type]
                (centre, *s.start[1:]),
                s.shape,
            )
            for s in stages
        ]  # type: ignore[arg-type]
    return stages, tensors


def receptive_field(
    backbone: nn.Module,
    input_shape: Sequence[int],
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    in_channels: int | None = None,
) -> list[StageField]:
    """Theoretical receptive field of every stage of ``backbone`` for an input of
    ``input_shape`` (z, y, x voxels) with voxel ``spacing`` (z, y, x mm)."""
    if len(input_shape) != 3 or len(spacing) != 3:
        raise UserError("receptive field: input shape and spacing must be (z, y, x) triples")
    channels = in_channels or _in_channels(backbone)
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            x = torch.zeros(1, channels, *(int(n) for n in input_shape))
            stages, _ = _trace(backbone, x, spacing)
    finally:
        backbone.train(was_training)
    return stages


def _in_channels(backbone: nn.Module) -> int:
    if isinstance(getattr(backbone, "in_channels", None), int):  # declared by the backbone
        return int(backbone.in_channels)
    for m in backbone.modules():
        w = getattr(m, "weight", None)
        if isinstance(w, torch.Tensor) and w.dim() >= 4:
            k = _slices(backbone) or 1
            return int(w.shape[1]) // k
    raise UserError(f"receptive field: {type(backbone).__name__} has no convolution")


class _AveragePools(TorchFunctionMode):
    """Max-pools become average pools of the same geometry (gradients reach every voxel)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        if func in (F.max_pool3d, F.max_pool2d):
            names = ("input", "kernel_size", "stride", "padding")
            p = dict(zip(names, args, strict=False)) | {
                k: v for k, v in kwargs.items() if k in names
            }
            avg = F.avg_pool3d if func is F.max_pool3d else F.avg_pool2d
            return avg(p["input"], p["kernel_size"], p.get("stride"), p.get("padding", 0))
        return func(*args, **kwargs)


def _positive_constants(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with positive constant weights, zero biases, identity batch norms."""
    model = copy.deepcopy(model).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            elif p.dim() >= 2:
                p.fill_(1.0 / math.prod(p.shape[1:]))
            else:
                p.fill_(1.0)
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
                m.eps = 0.0
    return model


def empirical_receptive_field(
    backbone: nn.Module, input_shape: Sequence[int], in_channels: int | None = None
) -> list[tuple[int, int, int]]:
    """Per stage: the extent (z, y, x voxels) of the support of the input gradient of the
    stage's central unit, with weights made positive constants so nothing cancels."""
    channels = in_channels or _in_channels(backbone)
    model = _positive_constants(backbone)
    x = torch.ones(1, channels, *(int(n) for n in input_shape), requires_grad=True)
    with _AveragePools():
        stages, tensors = _trace(model, x, (1.0, 1.0, 1.0))
    extents = []
    for t in tensors:
        centre = tuple(n // 2 for n in t.shape[2:])
        (grad,) = torch.autograd.grad(t[(0, 0, *centre)], x, retain_graph=True)
        support = grad[0].abs().sum(0) > 0
        extent = []
        for axis in range(3):
            others = tuple(a for a in range(3) if a != axis)
            idx = torch.nonzero(support.any(dim=others[1]).any(dim=others[0])).flatten()
            extent.append(int(idx.max() - idx.min() + 1) if len(idx) else 0)
        extents.append(tuple(extent))
    return extents  # type: ignore[return-value]
