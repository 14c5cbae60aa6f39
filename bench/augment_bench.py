"""Augmentation throughput at 64^3, batch 16: our batched transforms vs MONAI per sample.

    .venv/bin/python bench/augment_bench.py [--device cpu|cuda] [--repeats 5]

Ours: one call per batch [16, 1, 64, 64, 64] on ``--device`` (image trilinear + mask nearest
through one grid). MONAI: ``RandAffined`` / ``Rand3DElasticd`` on {"image", "label"} dicts, one
sample at a time on the CPU, as they run inside DataLoader workers. Same ranges for both:
rotation +-15 degrees about each axis, zoom 0.9-1.1, border padding. Prints volumes per second
(median over ``--repeats`` timed batches, after one warm-up batch).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import torch

from deepradiomics.augment import build_augmenter
from deepradiomics.config import AugmentConfig

SIZE, BATCH = 64, 16
DEG = 15.0


def _time(fn: Callable[[], object], repeats: int, sync: Callable[[], None]) -> float:
    fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return BATCH / statistics.median(times)


def _ours(device: str, elastic: bool, repeats: int) -> float:
    cfg = AugmentConfig(
        rotate_deg=DEG,
        scale=(0.9, 1.1),
        elastic_p=1.0 if elastic else 0.0,
        intensity_scale=0.0,
        intensity_shift=0.0,
    )
    aug = build_augmenter(cfg, anisotropic=False)
    gen = torch.Generator(device=device).manual_seed(0)
    image = torch.rand(BATCH, 1, SIZE, SIZE, SIZE, device=device)
    mask = (image > 0.7).to(torch.uint8)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    return _time(lambda: aug(image, mask, generator=gen), repeats, sync)


def _monai(elastic: bool, repeats: int) -> float:
    from monai.transforms import Rand3DElasticd, RandAffined

    common = dict(
        keys=["image", "label"],
        prob=1.0,
        rotate_range=(math.radians(DEG),) * 3,
        scale_range=(0.1,) * 3,
        mode=("bilinear", "nearest"),
        padding_mode="border",
    )
    if elastic:
        t = Rand3DElasticd(sigma_range=(5, 8), magnitude_range=(100, 200), **common)
    else:
        t = RandAffined(**common)
    t.set_random_state(0)
    samples = [
        {"image": (img := torch.rand(1, SIZE, SIZE, SIZE)), "label": (img > 0.7).to(torch.uint8)}
        for _ in range(BATCH)
    ]
    return _time(lambda: [t(s) for s in samples], repeats, lambda: None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, ours on {where}")
    rows = [
        (
            f"ours, batched flip+rot90+rotation+zoom ({args.device})",
            _ours(args.device, False, args.repeats),
        ),
        (f"ours, batched + elastic ({args.device})", _ours(args.device, True, args.repeats)),
        ("MONAI RandAffined per sample (cpu)", _monai(False, args.repeats)),
        ("MONAI Rand3DElasticd per sample (cpu)", _monai(True, args.repeats)),
    ]
    print(f"\n| pipeline, {SIZE}^3, batch {BATCH}, image + mask | volumes/s |\n|---|---|")
    for name, vps in rows:
        print(f"| {name} | {vps:.1f} |")


if __name__ == "__main__":
    main()
