"""Tiny learnable cohorts for training tests (seconds on 2 CPU cores)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml


def write_blob_npz(path: Path, n: int = 48, size: int = 12, seed: int = 0) -> Path:
    """MedMNIST-layout .npz: label 1 volumes hold a bright cube, label 0 volumes do not."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, count in (("train", n), ("val", n // 3), ("test", n // 3)):
        labels = np.arange(count) % 2
        images = rng.integers(0, 60, size=(count, size, size, size)).astype(np.uint8)
        for i in np.flatnonzero(labels):
            z, y, x = rng.integers(2, size - 6, 3)
            images[i, z : z + 4, y : y + 4, x : x + 4] = 230
        arrays[f"{split}_images"] = images
        arrays[f"{split}_labels"] = labels[:, None].astype(np.uint8)
    np.savez(path, **arrays)
    return path


def write_config(path: Path, cohort: Path, **sections: dict) -> Path:
    cfg = {
        "cohort": {"path": str(cohort)},
        "model": {"name": "small3d", "kwargs": {"widths": [4, 8]}, "dropout": 0.2},
        "train": {"epochs": 4, "batch_size": 8, "lr": 0.01, "warmup_epochs": 1},
        "augment": {"rotate_deg": 10},
        "evaluate": {"split": "official", "bootstrap": 50},
    }
    for key, value in sections.items():
        cfg.setdefault(key, {}).update(value)
    path.write_text(yaml.safe_dump(cfg))
    return path
