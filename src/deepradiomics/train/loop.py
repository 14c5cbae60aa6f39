"""The training loop, nanoGPT-style: short and flat.

``fit`` trains one model on resident tensors: AdamW, cosine schedule with linear warm-up,
batched augmentation on the training device, ``channels_last_3d`` (1.3-1.5x on this CPU too,
``bench/models_results.md``; a backbone with ``channels_last = False`` keeps the standard
layout), bf16 autocast on GPU,
gradient clipping, early stopping on the validation score or loss (``train.monitor``) with
best-weights selection (or a fixed schedule that keeps the last epoch), and an
atomic checkpoint every epoch from which ``resume=True`` continues to the same final
weights (on CPU) as an uninterrupted run. Under ``torchrun`` each process takes its share
of every global batch and DDP averages the gradients.

Randomness is keyed to (seed, epoch): the shuffling and augmentation generators are
re-seeded at each epoch (``seeds``, stream ``epoch``), the global torch RNG (dropout) is
saved in the checkpoint.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from deepradiomics.augment import build_augmenter, take_rows
from deepradiomics.config import AugmentConfig, ExperimentConfig, TrainConfig, config_to_dict
from deepradiomics.dataset.arrays import ArrayData
from deepradiomics.errors import UserError
from deepradiomics.evaluate.primary import primary_score
from deepradiomics.losses import get_loss
from deepradiomics.losses.classification import balanced_class_weights
from deepradiomics.models.heads import dann_schedule, memory_format
from deepradiomics.seeds import torch_generator
from deepradiomics.tasks import get_task
from deepradiomics.train import distributed as dist
from deepradiomics.train.checkpoint import (
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from deepradiomics.train.dense import sample_patches, segment

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"


@dataclass(frozen=True)
class Setup:
    """What ``fit`` needs besides the data: the task and the plan's geometry."""

    task: str
    train: TrainConfig
    augment: AugmentConfig
    seed: int = 0
    anisotropic: bool = False
    spacing: tuple[float, float, float] | None = None
    n_classes: int = 2
    adversary_weight: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)  # saved in the checkpoint


def setup_from_config(
    cfg: ExperimentConfig,
    task: str,
    n_classes: int,
    anisotropic: bool,
    spacing: tuple[float, float, float] | None,
) -> Setup:
    """The ``Setup`` of one model trained under ``cfg`` (its seed, train and augment sections)."""
    return Setup(
        task=task,
        train=cfg.train,
        augment=cfg.augment,
        seed=cfg.seed,
        anisotropic=anisotropic,
        spacing=spacing,
        n_classes=n_classes,
        adversary_weight=cfg.model.adversary_weight if cfg.model.site_adversary else 0.0,
        config=config_to_dict(cfg),
    )


@dataclass
class FitResult:
    best_epoch: int
    best_score: float
    epochs_run: int
    history: list[dict[str, float]]
    seconds: float


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _lr_factor(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _targets_for_loss(task: str, targets: torch.Tensor) -> torch.Tensor:
    return targets.to(getattr(torch, get_task(task).target_dtype))


def check_class_weight(train: TrainConfig, n_classes: int) -> None:
    """A UserError when ``train.class_weight`` lists a different number of weights than the
    cohort has classes (``run`` checks it before preprocessing, ``fit`` again)."""
    cw = train.class_weight
    if not isinstance(cw, str) and len(cw) != n_classes:
        raise UserError(
            f"train.class_weight has {len(cw)} weights but the cohort has {n_classes} "
            "classes: give one weight per class, or 'balanced'"
        )


def _class_weights(setup: Setup, train: ArrayData) -> list[float] | None:
    cw = setup.train.class_weight
    if not get_task(setup.task).classes or cw == "none":
        return None
    if cw == "balanced":
        return balanced_class_weights(train.targets.long().numpy(), setup.n_classes)
    check_class_weight(setup.train, setup.n_classes)
    return list(cw)


def _flips(anisotropic: bool) -> list[tuple[int, ...]]:
    axes = (3, 4) if anisotropic else (2, 3, 4)
    out: list[tuple[int, ...]] = [()]
    for a in axes:
        out += [f + (a,) for f in out]
    return out


def activate(task: str, out: torch.Tensor) -> torch.Tensor:
    """Raw head outputs -> predictions (``Task.activation``): probabilities (sigmoid, softmax
    over dim 1) or the values themselves."""
    activation = get_task(task).activation
    if activation == "sigmoid":
        return torch.sigmoid(out)
    return torch.softmax(out, 1) if activation == "softmax" else out


@torch.no_grad()
def _outputs(
    model: nn.Module,
    data: ArrayData,
    device: torch.device,
    batch_size: int,
    flips: list[tuple[int, ...]],
    transform,
) -> torch.Tensor:
    """``transform(head output)`` for every case, averaged over the input ``flips``."""
    model.eval()
    outs = []
    for start in range(0, len(data), batch_size):
        x = (
            data.images[start : start + batch_size]
            .to(device)
            .contiguous(memory_format=memory_format(model))
        )
        cov = (
            None
            if data.covariates is None
            else data.covariates[start : start + batch_size].to(device)
        )
        acc = 0.0
        for f in flips:
            with _autocast(device):
                out = model(x.flip(f) if f else x, cov)["out"].float()
            acc = acc + transform(out)
        outs.append((acc / len(flips)).cpu())
    return torch.cat(outs)


def predict(
    model: nn.Module,
    data: ArrayData,
    task: str,
    device: torch.device,
    batch_size: int = 32,
    tta: bool = False,
    anisotropic: bool = False,
    patch: tuple[int, int, int] | None = None,
    overlap: float = 0.5,
) -> np.ndarray:
    """Model outputs for every case: probabilities (binary [N], multiclass [N, K]), log-risk
    (survival), values (regression) or foreground probability maps (segmentation [N, D, H, W],
    by sliding windows of ``patch`` voxels); ``tta`` averages over flips (in-plane if
    anisotropic)."""
    flips = _flips(anisotropic) if tta else [()]
    if get_task(task).dense:
        return segment(model, data.images, device, patch, overlap, flips=flips).numpy()
    return _outputs(model, data, device, batch_size, flips, lambda o: activate(task, o)).numpy()


def validate(
    model: nn.Module,
    val: ArrayData,
    task: str,
    loss_fn: nn.Module,
    device: torch.device,
    patch: tuple[int, int, int] | None = None,
) -> tuple[float, float]:
    """(validation score: the task's primary metric, validation loss) from one pass without
    augmentation. Segmentation: scored against the masks, on the whole input by sliding
    windows; the loss takes the log of the blended probabilities as logits."""
    if get_task(task).dense:
        fg = segment(model, val.images, device, patch)
        logp = torch.log(torch.stack([1 - fg, fg], 1).clamp_min(1e-6))
        with torch.no_grad():
            loss = float(loss_fn(logp.to(device), val.masks.long().to(device)))
        return primary_score(task, val.masks.numpy(), fg.numpy()), loss
    raw = _outputs(model, val, device, 32, [()], lambda o: o)
    with torch.no_grad():
        loss = float(loss_fn(raw.to(device), _targets_for_loss(task, val.targets).to(device)))
    return primary_score(task, val.targets.numpy(), activate(task, raw).numpy()), loss


@torch.no_grad()
def embed(
    model: nn.Module, data: ArrayData, device: torch.device, batch_size: int = 32
) -> np.ndarray:
    """The backbone embedding ``[N, F]`` of every case (no augmentation)."""
    model.eval()
    outs = []
    for start in range(0, len(data), batch_size):
        x = (
            data.images[start : start + batch_size]
            .to(device)
            .contiguous(memory_format=memory_format(model))
        )
        cov = (
            None
            if data.covariates is None
            else data.covariates[start : start + batch_size].to(device)
        )
        with _autocast(device):
            outs.append(model(x, cov)["embedding"].float().cpu())
    return torch.cat(outs).numpy()


def _autocast(device: torch.device) -> torch.autocast:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def train_one_epoch(
    model: nn.Module,
    train: ArrayData,
    setup: Setup,
    epoch: int,
    optimiser: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    loss_fn: nn.Module,
    augment: Callable,
    device: torch.device,
    progress: bool,
) -> tuple[float, int]:
    """One pass over the training cases in a seeded random order; returns the mean loss and
    the number of cases this process computed (its share of every global batch)."""
    model.train()
    cfg = setup.train
    g_cpu = torch_generator(setup.seed, "epoch", epoch)
    g_dev = torch_generator(setup.seed, "epoch", epoch, device=device)
    order = torch.randperm(len(train), generator=g_cpu)
    n_batches = max(1, len(train) // cfg.batch_size)  # drop the last partial batch (BN, DDP)
    site_loss = nn.CrossEntropyLoss()
    adversary = getattr(getattr(model, "module", model), "site_adversary", None)
    adversarial = setup.adversary_weight > 0 and adversary is not None and train.sites is not None
    rank, world = dist.rank(), dist.world_size()
    total, seen = 0.0, 0
    site_total, site_correct, site_seen = 0.0, 0.0, 0
    bar = tqdm(
        range(n_batches), desc=f"epoch {epoch + 1}", leave=False, disable=None if progress else True
    )
    for b in bar:
        batch = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
        rows = torch.arange(len(batch))[rank::world]  # this process's share of the global batch
        idx = batch[rows]  # the only cases this process reads
        x = train.images[idx].to(device, non_blocking=True)
        seg = get_task(setup.task).dense
        mask = train.masks[idx][:, None].to(device) if seg else None  # [n, 1, D, H, W]
        # drawn for the global batch on every rank, so the run augments as one process would
        params = augment.sample(torch.Size((len(batch), *x.shape[1:])), g_dev)
        x, mask = augment.apply(x, mask, take_rows(params, rows, len(batch)))
        if seg and cfg.patch is not None:  # random patches, half of the batch on the lesion
            x, mask = sample_patches(x, mask, cfg.patch, g_dev, rows, len(batch))
        x = x.contiguous(memory_format=memory_format(model))
        y = (
            mask[:, 0].long()
            if seg
            else _targets_for_loss(setup.task, train.targets[idx].to(device))
        )
        cov = None if train.covariates is None else train.covariates[idx].to(device)
        if adversarial:  # DANN: reversed gradient ramped from 0 to adversary_weight
            adversary.lambd = setup.adversary_weight * dann_schedule(
                (epoch * n_batches + b) / max(1, cfg.epochs * n_batches - 1)
            )
        with _autocast(device):
            out = model(x, cov)
            loss = task_loss = loss_fn(out["out"].float(), y)
            if adversarial:
                site_logits, site = out["site_logits"].float(), train.sites[idx].to(device)
                site_ce = site_loss(site_logits, site)
                loss = loss + site_ce
                site_total += dist.mean_across_ranks(site_ce.detach()).item()
                site_correct += float((site_logits.argmax(1) == site).sum())
                site_seen += len(site)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimiser.step()
        scheduler.step()
        total += dist.mean_across_ranks(task_loss.detach()).item()
        seen += x.shape[0]
        bar.set_postfix(loss=f"{total / (b + 1):.4f}")
    extra = (
        {}
        if not adversarial
        else {
            "site_loss": site_total / n_batches,
            "site_accuracy": site_correct / max(1, site_seen),
            "adversary_lambda": float(adversary.lambd),
        }
    )
    return total / n_batches, seen, extra


def make_optimiser(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW over the parameters that train (a frozen pretrained trunk's are left out, so
    weight decay cannot move them either)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def fit(
    model: nn.Module,
    train: ArrayData,
    val: ArrayData | None,
    setup: Setup,
    out_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
) -> FitResult:
    """Train ``model`` in place and load its best weights (by validation score) at the end.

    Writes ``out_dir/checkpoint.pt`` every epoch, ``out_dir/best.pt`` (weights of the best
    epoch) and ``out_dir/history.jsonl``. With ``resume`` and an existing checkpoint the
    run continues where it stopped. Without ``val`` the last epoch is the best.
    """
    out_dir = Path(out_dir)
    cfg = setup.train
    device = resolve_device(cfg.device)
    model.to(device)
    model.to(memory_format=memory_format(model))
    net = dist.wrap(model, device, sync_batchnorm=cfg.sync_batchnorm)
    loss_fn = get_loss(cfg.loss, setup.task, _class_weights(setup, train)).to(device)
    augment = build_augmenter(setup.augment, anisotropic=setup.anisotropic, spacing=setup.spacing)
    optimiser = make_optimiser(model, cfg)
    steps_per_epoch = max(1, len(train) // cfg.batch_size)
    total_steps = cfg.epochs * steps_per_epoch
    warmup = cfg.warmup_epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: _lr_factor(s, warmup, total_steps)
    )

    start_epoch, history, best, bad_epochs = 0, [], {"score": -math.inf, "epoch": -1}, 0
    ckpt_path = out_dir / CHECKPOINT
    if resume and ckpt_path.is_file():
        ckpt = load_checkpoint(ckpt_path, map_location=device)
        model.load_state_dict(ckpt["model"])
        optimiser.load_state_dict(ckpt["optimiser"])
        scheduler.load_state_dict(ckpt["scheduler"])
        set_rng_state(ckpt["rng"])
        start_epoch, history, bad_epochs = ckpt["epoch"], ckpt["history"], ckpt["bad_epochs"]
        best = {"score": ckpt["best_score"], "epoch": ckpt["best_epoch"]}
        best_weights = ckpt["best_model"]
    else:
        best_weights = None

    t0 = time.perf_counter()
    for epoch in range(start_epoch, cfg.epochs):
        if bad_epochs >= cfg.patience:
            break
        loss, seen, extra = train_one_epoch(
            net,
            train,
            setup,
            epoch,
            optimiser,
            scheduler,
            loss_fn,
            augment,
            device,
            progress and dist.is_main(),
        )
        row = {
            "epoch": epoch + 1,
            "loss": loss,
            "lr": optimiser.param_groups[0]["lr"],
            "processes": dist.world_size(),
            "cases_per_process": seen,
            **extra,
        }
        score = float(epoch)  # without validation data the latest epoch is the best
        due = (epoch + 1) % cfg.validate_every == 0 or epoch + 1 == cfg.epochs
        if val is not None and len(val) and due:
            row["val_score"], row["val_loss"] = validate(
                model, val, setup.task, loss_fn, device, cfg.patch
            )
            if cfg.monitor == "score":
                score = row["val_score"] * (1 if get_task(setup.task).higher_is_better else -1)
            elif cfg.monitor == "loss":
                score = -row["val_loss"]
        history.append(row)
        if score > best["score"] or (math.isnan(best["score"]) and not math.isnan(score)):
            best, bad_epochs = {"score": score, "epoch": epoch + 1}, 0
            best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
        if dist.is_main():
            save_checkpoint(
                {
                    "model": model.state_dict(),
                    "optimiser": optimiser.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "epoch": epoch + 1,
                    "rng": rng_state(),
                    "history": history,
                    "bad_epochs": bad_epochs,
                    "best_score": best["score"],
                    "best_epoch": best["epoch"],
                    "best_model": best_weights,
                    "config": setup.config,
                },
                ckpt_path,
            )
            (out_dir / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
    if best_weights is not None:
        model.load_state_dict(best_weights)
    if dist.is_main():
        save_checkpoint(
            {
                "model": model.state_dict(),
                "epoch": best["epoch"],
                "score": best["score"],
                "config": setup.config,
            },
            out_dir / BEST,
        )
    return FitResult(
        best_epoch=best["epoch"],
        best_score=best["score"],
        epochs_run=len(history),
        history=history,
        seconds=time.perf_counter() - t0,
    )
