"""Occlusion sensitivity in 3D: a gradient-free attribution (Zeiler & Fergus 2014).

A cube of ``patch`` voxels slides over the input with ``stride``; each position is replaced
by a baseline (each channel's median over the case: the tissue-neutral value, not 0, which in
a windowed CT is air) and the drop of the explained score is credited to the voxels of the
patch. Voxels covered by several patches get the mean of their drops. Patches are batched
(``batch`` occluded copies per forward). Positive = the score falls when the region is
hidden, i.e. the region supports the prediction; the map is raw score units, unscaled.
Written by hand: Captum's ``Occlusion`` is the same loop, but its baseline is a constant and
it would add a dependency for thirty lines.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deepradiomics.errors import UserError
from deepradiomics.explain.gradcam import target_score


def _starts(n: int, patch: int, stride: int) -> list[int]:
    """Patch starts covering ``[0, n)`` with the last patch flush with the end."""
    if patch >= n:
        return [0]
    starts = list(range(0, n - patch + 1, stride))
    if starts[-1] != n - patch:
        starts.append(n - patch)
    return starts


def default_patch(shape: Sequence[int], cells: int = 6) -> tuple[int, int, int]:
    """About ``cells`` patches per axis: ``ceil(n / cells)`` voxels each."""
    return tuple(max(1, -(-int(n) // cells)) for n in shape)  # type: ignore[return-value]


def occlusion(
    model: nn.Module,
    x: torch.Tensor,
    *,
    patch: Sequence[int] | None = None,
    stride: Sequence[int] | None = None,
    batch: int = 32,
    target: int | None = None,
    covariates: torch.Tensor | None = None,
    channels: int | None = None,
) -> torch.Tensor:
    """Occlusion map ``[N, D, H, W]`` (score drop per voxel) for a batch ``x [N, C, D, H, W]``;
    only the first ``channels`` channels are occluded (all by default: a lesion-mask input
    channel is given, not evidence, and stays)."""
    if x.dim() != 5:
        raise UserError(f"occlusion needs [N, C, D, H, W] input, got {list(x.shape)}")
    shape = tuple(x.shape[2:])
    patch = tuple(int(p) for p in (patch or default_patch(shape)))
    stride = tuple(int(s) for s in (stride or patch))
    if any(p < 1 for p in patch) or any(s < 1 for s in stride):
        raise UserError(f"occlusion patch {patch} and stride {stride} must be positive")
    boxes = [
        (z, y, w)
        for z in _starts(shape[0], patch[0], stride[0])
        for y in _starts(shape[1], patch[1], stride[1])
        for w in _starts(shape[2], patch[2], stride[2])
    ]
    c = x.shape[1] if channels is None else int(channels)
    if not 1 <= c <= x.shape[1]:
        raise UserError(f"occlusion: channels must be between 1 and {x.shape[1]}, got {channels}")
    model.eval()
    maps = []
    with torch.no_grad():
        for i in range(x.shape[0]):
            xi = x[i : i + 1]
            cov = None if covariates is None else covariates[i : i + 1]
            out = model(xi, cov)["out"]
            # multiclass: keep explaining the class predicted for the intact case
            t = target if target is not None or out.dim() == 1 else int(out[0].argmax())
            base = target_score(out, t)
            fill = xi.flatten(2).median(-1).values[..., None, None, None]  # [1, C, 1, 1, 1]
            total = torch.zeros(shape)
            count = torch.zeros(shape)
            for j in range(0, len(boxes), batch):
                chunk = boxes[j : j + batch]
                occluded = xi.repeat(len(chunk), 1, 1, 1, 1)
                for k, (z, y, w) in enumerate(chunk):
                    occluded[k, :c, z : z + patch[0], y : y + patch[1], w : w + patch[2]] = fill[
                        0, :c
                    ]
                covs = None if cov is None else cov.repeat(len(chunk), 1)
                drop = base - target_score(model(occluded, covs)["out"], t)
                for k, (z, y, w) in enumerate(chunk):
                    region = (
                        slice(z, z + patch[0]),
                        slice(y, y + patch[1]),
                        slice(w, w + patch[2]),
                    )
                    total[region] += drop[k].float()
                    count[region] += 1
            maps.append(total / count.clamp(min=1))
    return torch.stack(maps)
