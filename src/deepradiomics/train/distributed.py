"""Distributed data parallel under ``torchrun``: a no-op in a single process.

Each process reads and augments an interleaved share (``rank::world``) of every global batch,
and DDP averages the gradients, so the update equals the single-process one at the same
global batch when the model has no batch-coupled layers, or when its batch norms are
synchronised (``train.sync_batchnorm``, default): torch's ``SyncBatchNorm`` on GPU, and on
CPU (where torch's needs a GPU) ``GlooSyncBatchNorm`` below. The same holds across nodes:
``torchrun --nnodes N`` only changes where the processes run.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn

import torch
import torch.distributed as tdist
from torch import nn
from torch.distributed.nn.functional import all_reduce as differentiable_all_reduce


def launched() -> bool:
    """Whether ``torchrun`` started this process as one of several (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env() -> bool:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1)."""
    if not launched() or tdist.is_initialized():
        return tdist.is_initialized()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    tdist.init_process_group(backend)
    return True


def end_process(code: int) -> NoReturn:
    """Exit this torchrun worker now, without the interpreter's finalisation, and without
    leaving the process group (``destroy_process_group``). A DDP all-reduce started in a
    backward pass holds Python objects (the backward's ``contextvars`` context in its thread
    state, the gradient buckets), and gloo's worker threads release a finished one a moment
    after the main thread has moved on: one that does so after finalisation began needs the
    GIL it can no longer take and aborts the process (SIGABRT, "terminate called without an
    active exception", about 1 exit in 20 to 100 on a loaded 2-core machine;
    pytorch/pytorch#179291), and ``destroy_process_group`` can deadlock on it (the main thread
    joins that worker while holding the GIL the worker waits for). Output is flushed and
    logging shut down first; files are closed by their writers."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    logging.shutdown()
    os._exit(code)


def world_size() -> int:
    return tdist.get_world_size() if tdist.is_initialized() else 1


def rank() -> int:
    return tdist.get_rank() if tdist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


class GlooSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm whose training statistics cover the global batch of all processes (any
    backend, CPU included): per-channel sums, sums of squares and counts are all-reduced
    with a differentiable all-reduce, so the gradient also flows to the other processes'
    inputs, as in one process over the whole batch. Evaluation uses the running statistics,
    updated from the global ones as ``BatchNorm`` does (unbiased variance)."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.ndim < 2:
            raise ValueError(f"expected at least 2D input (got {x.ndim}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and tdist.is_initialized() and world_size() > 1):
            return super().forward(x)
        dims = [0, *range(2, x.ndim)]
        count = torch.full((1,), x.numel() / x.shape[1], dtype=x.dtype, device=x.device)
        local = torch.cat([x.sum(dims), (x * x).sum(dims), count])
        total = differentiable_all_reduce(local)
        c = x.shape[1]
        n = total[-1]
        mean, var = total[:c] / n, total[c : 2 * c] / n - (total[:c] / n) ** 2
        if self.track_running_stats and self.running_mean is not None:
            m = 0.1 if self.momentum is None else self.momentum
            with torch.no_grad():
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach() * n / (n - 1))
                self.num_batches_tracked.add_(1)
        shape = [1, c] + [1] * (x.ndim - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """``module`` with every ``BatchNorm1d/2d/3d`` replaced by a ``GlooSyncBatchNorm`` holding
    the same parameters and running statistics."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(
        module, GlooSyncBatchNorm
    ):
        sync = GlooSyncBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine,
            module.track_running_stats,
        )  # fmt: skip
        sync.load_state_dict(module.state_dict())
        sync.train(module.training)
        return sync.to(next(module.buffers(), torch.empty(0)).device)
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batchnorm(child))
    return module


def wrap(model: nn.Module, device: torch.device, sync_batchnorm: bool = True) -> nn.Module:
    """``DistributedDataParallel`` around ``model`` when running distributed, else ``model``;
    with ``sync_batchnorm`` its batch norms are synchronised across the processes first."""
    if world_size() == 1:
        return model
    if device.type == "cuda":
        if sync_batchnorm:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return nn.parallel.DistributedDataParallel(model, device_ids=[device.index or 0])
    if sync_batchnorm:
        model = convert_sync_batchnorm(model)
    return nn.parallel.DistributedDataParallel(model)


def mean_across_ranks(value: torch.Tensor) -> torch.Tensor:
    if world_size() == 1:
        return value
    value = value.clone()
    tdist.all_reduce(value)
    return value / world_size()
