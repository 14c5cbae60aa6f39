"""The one base class every random transform shares, and the random draws they use.

A random transform has two halves (TorchIO's split): ``sample`` draws per-sample parameters
with an explicit ``torch.Generator``; ``apply`` is the deterministic twin that takes those
parameters. ``__call__`` is just ``apply(sample(...))``, so any augmented batch can be
reproduced from its parameters or from the generator's seed.

Parameters are drawn on the generator's device and moved to the image's device by ``apply``.
For speed on CUDA pass ``torch.Generator(device="cuda")``; the same seed gives the same batch
on the same device type (CPU and CUDA random streams differ).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor

Mask = Tensor | None


class RandomTransform:
    """Base of every random transform: ``sample`` draws, ``apply`` is the fixed twin."""

    def sample(self, shape: torch.Size, generator: torch.Generator) -> Any:
        """Per-sample parameters for a batch of ``shape`` = [N, C, D, H, W]."""
        raise NotImplementedError

    def apply(self, image: Tensor, mask: Mask, params: Any) -> tuple[Tensor, Mask]:
        """Deterministic: the same image, mask and parameters give the same output."""
        raise NotImplementedError

    def __call__(
        self, image: Tensor, mask: Mask = None, *, generator: torch.Generator
    ) -> tuple[Tensor, Mask]:
        check_batch(image, mask)
        return self.apply(image, mask, self.sample(image.shape, generator))


def check_batch(image: Tensor, mask: Mask) -> None:
    """Programmer errors (not user input): wrong rank, dtype or mismatched mask."""
    if image.ndim != 5:
        raise ValueError(
            f"augmentation expects a batch [N, C, D, H, W], got shape {tuple(image.shape)}"
        )
    if not image.is_floating_point():
        raise TypeError(f"augmentation expects a floating-point image, got {image.dtype}")
    if mask is not None:
        if mask.ndim != 5 or mask.shape[0] != image.shape[0] or mask.shape[2:] != image.shape[2:]:
            raise ValueError(
                f"mask shape {tuple(mask.shape)} does not match image shape {tuple(image.shape)}"
            )
        if mask.device != image.device:
            raise ValueError(f"mask is on {mask.device}, image on {image.device}")


def uniform(generator: torch.Generator, shape: tuple[int, ...], low: float, high: float) -> Tensor:
    """Uniform draws in [low, high) on the generator's device (float32)."""
    u = torch.rand(shape, generator=generator, device=generator.device)
    return u * (high - low) + low


def bernoulli(generator: torch.Generator, shape: tuple[int, ...], p: float) -> Tensor:
    """Boolean draws, True with probability ``p`` (always drawn, whatever p)."""
    return torch.rand(shape, generator=generator, device=generator.device) < p


def take_rows(params: Any, rows: Tensor, batch: int) -> Any:
    """The parameters of the samples ``rows`` out of parameters drawn for ``batch`` samples.

    Every transform acts on each sample alone, so ``apply(image[rows], mask[rows],
    take_rows(params, rows, n))`` equals ``apply(image, mask, params)[rows]``: a process of
    a distributed run reads and augments only its share of a global batch whose parameters
    every process drew. Tensors with ``batch`` leading rows are indexed; a parameter object
    with a ``take_rows`` method (noise: one field seeded for the whole batch) handles itself;
    anything else (a seed) is shared.
    """
    if hasattr(params, "take_rows"):
        return params.take_rows(rows, batch)
    if isinstance(params, Tensor):
        return params[rows.to(params.device)] if params.ndim and len(params) == batch else params
    if isinstance(params, list | tuple):
        return type(params)(take_rows(p, rows, batch) for p in params)
    if dataclasses.is_dataclass(params) and not isinstance(params, type):
        return dataclasses.replace(
            params,
            **{
                f.name: take_rows(getattr(params, f.name), rows, batch)
                for f in dataclasses.fields(params)
            },
        )
    return params
