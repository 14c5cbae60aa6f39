"""Model cost and CPU training speed (results recorded in bench/models_results.md).

    .venv/bin/python bench/models_bench.py                 # everything
    .venv/bin/python bench/models_bench.py --part flops    # GFLOPs only (seconds)
    .venv/bin/python bench/models_bench.py --part channels_last --repeats 8

1. Forward GFLOPs per 64^3 and 32^3 one-channel volume (torch's FlopCounterMode: 2 FLOP per
   multiply-add, convolutions and matmuls only).
2. CPU train step (forward + BCE + backward + AdamW) in volumes/s at 28^3, batch 16: median
   of ``--repeats`` rounds of ``--steps`` steps after two warm-up steps; the models take
   turns in each round so a shared machine's drifting load hits them alike.
3. small3d at 64^3, NCDHW against channels_last_3d (model and batch converted), taking turns
   step by step.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from deepradiomics.losses import get_loss
from deepradiomics.models import create_model

FLOP_MODELS = {
    "small3d": {},
    "small3d (convs_per_stage=1)": {"name": "small3d", "convs_per_stage": 1},
    "resnet10": {},
    "resnet18": {},
    "resnet18 (MONAI default stem: 7^3, stride 1)": {"name": "resnet18", "conv1_t_stride": 1},
    "resnet34": {},
    "densenet_small": {},
    "densenet121": {},
    "unet (embedding: encoder only)": {"name": "unet"},
    "unet (segmentation: encoder + decoder)": {"name": "unet", "task": "segmentation"},
    "gcnn_c4": {},
    "gcnn_cube": {},
    "small25d": {},
}
SPEED_MODELS = {
    "small3d": {},
    "small3d (convs_per_stage=1)": {"name": "small3d", "convs_per_stage": 1},
    "resnet10": {},
    "resnet18": {},
    "densenet_small": {},
}


def forward_gflops(label: str, kwargs: dict, size: int = 64) -> float:
    kwargs = dict(kwargs)
    model = create_model(kwargs.pop("name", label), **kwargs).eval()
    x = torch.zeros(1, 1, size, size, size)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() / 1e9


def make_step(label: str, kwargs: dict, size: int, batch: int, channels_last: bool = False):
    """One training step (forward, BCE, backward, AdamW) of a fresh model on a fixed batch."""
    torch.manual_seed(0)
    kwargs = dict(kwargs)
    model = create_model(kwargs.pop("name", label), dropout=0.3, **kwargs).train()
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = get_loss(None, "binary")
    x = torch.randn(batch, 1, size, size, size).contiguous(memory_format=fmt)
    y = (torch.rand(batch) > 0.5).float()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x)["out"], y).backward()
        opt.step()

    return step


def interleaved_rates(steps: dict, batch: int, n_steps: int, repeats: int) -> dict[str, float]:
    """Median volumes/s per entry; the entries take turns in every round, so drifting load
    on a shared machine hits them alike."""
    for step in steps.values():  # warm-up (oneDNN primitive creation, allocator)
        step()
        step()
    rates: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(repeats):
        for label, step in steps.items():
            t0 = time.perf_counter()
            for _ in range(n_steps):
                step()
            rates[label].append(n_steps * batch / (time.perf_counter() - t0))
    return {k: statistics.median(v) for k, v in rates.items()}


def flops_table() -> None:
    print("| model | forward GFLOP / 64^3 volume | forward GFLOP / 32^3 volume |\n|---|---|---|")
    for label, kwargs in FLOP_MODELS.items():
        g64, g32 = forward_gflops(label, kwargs, 64), forward_gflops(label, kwargs, 32)
        print(f"| {label} | {g64:.2f} | {g32:.3f} |", flush=True)
    print(f"\nsmall3d at 28^3: {forward_gflops('small3d', {}, 28):.3f} GFLOP forward per volume")


def speed_table(n_steps: int, repeats: int) -> None:
    print("\n| model | train step, 28^3, batch 16: volumes/s |\n|---|---|")
    steps = {k: make_step(k, kw, 28, 16) for k, kw in SPEED_MODELS.items()}
    for label, rate in interleaved_rates(steps, 16, n_steps, repeats).items():
        print(f"| {label} | {rate:.1f} |", flush=True)


def channels_last_table(repeats: int) -> None:
    print("\n| small3d, 64^3, batch 16 | volumes/s |\n|---|---|")
    steps = {
        "NCDHW": make_step("small3d", {}, 64, 16),
        "channels_last_3d": make_step("small3d", {}, 64, 16, channels_last=True),
        "NCDHW, convs_per_stage=1": make_step("small3d", {"convs_per_stage": 1}, 64, 16),
        "channels_last_3d, convs_per_stage=1": make_step(
            "small3d", {"convs_per_stage": 1}, 64, 16, channels_last=True
        ),
    }
    for label, rate in interleaved_rates(steps, 16, 1, repeats).items():
        print(f"| {label} | {rate:.1f} |", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--part",
        choices=["all", "flops", "speed", "channels_last"],
        default="all",
        help="run one part only",
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"torch {torch.__version__}, {args.threads} threads, {os.cpu_count()} CPUs, "
        f"load average {load:.1f} at start\n"
    )

    if args.part in ("all", "flops"):
        flops_table()
    if args.part in ("all", "speed"):
        speed_table(args.steps, args.repeats)
    if args.part in ("all", "channels_last"):
        channels_last_table(max(args.repeats, 5))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nload average {load:.1f} at the end")


if __name__ == "__main__":
    main()
