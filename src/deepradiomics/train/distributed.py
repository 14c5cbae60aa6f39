"""Distributed data parallel under ``torchrun``: a no-op in a single process.

Each process takes an interleaved share (``rank::world``) of every global batch, and DDP
averages the gradients, so the update equals the single-process one at the same global
batch when the model has no batch-coupled layers (batch norm is converted to
``SyncBatchNorm`` on GPU; on CPU, gloo has no SyncBatchNorm, so use a norm-free model for
exact parity).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as tdist
from torch import nn


def init_from_env() -> bool:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or tdist.is_initialized():
        return tdist.is_initialized()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    tdist.init_process_group(backend)
    return True


def world_size() -> int:
    return tdist.get_world_size() if tdist.is_initialized() else 1


def rank() -> int:
    return tdist.get_rank() if tdist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``DistributedDataParallel`` around ``model`` when running distributed, else ``model``."""
    if world_size() == 1:
        return model
    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return nn.parallel.DistributedDataParallel(model, device_ids=[device.index or 0])
    return nn.parallel.DistributedDataParallel(model)


def mean_across_ranks(value: torch.Tensor) -> torch.Tensor:
    if world_size() == 1:
        return value
    value = value.clone()
    tdist.all_reduce(value)
    return value / world_size()
