"""Dense (segmentation) models on volumes larger than the training patch.

Training on patches: ``sample_patches`` cuts one patch per case out of the batch, at a
random position drawn from the batch's generator; half of the patches are placed so that
they contain a foreground voxel of the reference mask (nnU-Net's foreground oversampling:
small lesions would otherwise rarely be seen). Inference: ``segment`` slides a window of the
patch size over the whole input with MONAI's ``sliding_window_inference`` (Gaussian
weighting of overlapping windows, as nnU-Net), so a model trained on patches predicts
volumes of any size; without a patch the window is the whole input (one forward pass).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from deepradiomics.models.heads import memory_format

FOREGROUND_FRACTION = 0.5  # share of patches forced to contain foreground


def _check_patch(patch: Sequence[int], shape: Sequence[int]) -> tuple[int, int, int]:
    p = tuple(int(v) for v in patch)
    if len(p) != 3 or any(a > b for a, b in zip(p, shape, strict=True)):
        raise ValueError(f"train.patch {list(p)} must fit in the input {list(shape)} (z, y, x)")
    return p  # type: ignore[return-value]


def sample_patches(
    x: torch.Tensor,
    mask: torch.Tensor,
    patch: Sequence[int],
    generator: torch.Generator,
    rows: torch.Tensor | None = None,
    batch: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One ``patch``-sized crop per case of ``x [N, C, D, H, W]`` and ``mask [N, 1, D, H, W]``.

    Positions are drawn from ``generator`` (on ``x``'s device) for the whole batch, so every
    process of a distributed run draws the same ones; a process holding only the ``rows`` of
    a global batch of ``batch`` cases crops its rows' patches. The first half of the global
    batch (rounded up) get a patch around a random foreground voxel when their mask has any.
    """
    shape = tuple(x.shape[2:])
    p = _check_patch(patch, shape)
    if p == shape:
        return x, mask
    n = x.shape[0]
    total = n if batch is None else batch
    rows = torch.arange(n) if rows is None else rows.cpu()
    span = torch.tensor([s - q + 1 for s, q in zip(shape, p, strict=True)], device=x.device)
    u = torch.rand((total, 3), generator=generator, device=x.device)
    starts = (u * span).long()[rows.to(x.device)]
    pick = torch.rand((total,), generator=generator, device=x.device)[rows.to(x.device)]
    forced = int(np.ceil(total * FOREGROUND_FRACTION))
    half = torch.tensor(p, device=x.device) // 2
    for i in range(n):
        if int(rows[i]) >= forced:
            continue
        fg = torch.nonzero(mask[i, 0] > 0)
        if len(fg):
            centre = fg[min(int(pick[i] * len(fg)), len(fg) - 1)]
            starts[i] = torch.minimum(torch.clamp(centre - half, min=0), span - 1)
    xs, ms = [], []
    for i in range(n):
        z, y, w = (int(v) for v in starts[i])
        box = (slice(z, z + p[0]), slice(y, y + p[1]), slice(w, w + p[2]))
        xs.append(x[i][(slice(None), *box)])
        ms.append(mask[i][(slice(None), *box)])
    return torch.stack(xs), torch.stack(ms)


@torch.no_grad()
def segment(
    model: nn.Module,
    images: torch.Tensor,
    device: torch.device,
    patch: Sequence[int] | None = None,
    overlap: float = 0.5,
    batch_size: int = 4,
    flips: Sequence[tuple[int, ...]] = ((),),
) -> torch.Tensor:
    """Foreground probability ``[N, D, H, W]`` (1 - softmax background) of every case of
    ``images [N, C, D, H, W]``, by sliding windows of ``patch`` voxels (default: the whole
    input), averaged over the input ``flips`` (test-time augmentation)."""
    from monai.inferers import sliding_window_inference  # heavy import, only when segmenting

    model.eval()
    shape = tuple(images.shape[2:])
    roi = shape if patch is None else _check_patch(patch, shape)

    def logits(x: torch.Tensor) -> torch.Tensor:
        autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
        with autocast:
            return model(x.contiguous(memory_format=memory_format(model)))["out"].float()

    out = []
    for start in range(0, images.shape[0], batch_size):
        x = images[start : start + batch_size].to(device)
        acc = torch.zeros((x.shape[0], *shape), device=device)
        for f in flips:
            xf = x.flip(f) if f else x
            if roi == shape:
                raw = logits(xf)
            else:
                raw = sliding_window_inference(
                    xf, roi, batch_size, logits, overlap=overlap, mode="gaussian"
                )
            fg = 1.0 - torch.softmax(raw, 1)[:, 0]
            acc += fg.flip([a - 1 for a in f]) if f else fg
        out.append((acc / len(flips)).cpu())
    return torch.cat(out)
