"""Domain-adversarial training: the DANN schedule, per-epoch site logging, and the site probe."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from deepradiomics.config import AugmentConfig, TrainConfig
from deepradiomics.dataset.arrays import ArrayData
from deepradiomics.models import create_model
from deepradiomics.models.heads import dann_schedule
from deepradiomics.train.loop import Setup, fit

NO_AUGMENT = AugmentConfig.off()


def scanner_cohort(n: int, seed: int) -> ArrayData:
    """Two sites of equal outcome mix; the disease is a bright centre, the scanner of site 1
    adds strong voxel noise."""
    rng = np.random.default_rng(seed)
    site = np.arange(n) % 2
    label = (np.arange(n) // 2) % 2
    x = rng.normal(0, 0.3, size=(n, 1, 8, 8, 8)).astype(np.float32)
    x[label == 1, :, 2:6, 2:6, 2:6] += 1.0
    x[site == 1] += rng.normal(0, 0.6, size=x[site == 1].shape).astype(np.float32)
    ids = tuple(f"c{seed}_{i}" for i in range(n))
    return ArrayData(
        torch.from_numpy(x),
        torch.from_numpy(label.astype(np.float32)),
        ids,
        ids,
        sites=torch.from_numpy(site).long(),
    )


def _setup(weight: float, epochs: int) -> Setup:
    train = TrainConfig(
        epochs=epochs, batch_size=16, lr=0.01, warmup_epochs=0, device="cpu", patience=epochs
    )
    return Setup(task="binary", train=train, augment=NO_AUGMENT, seed=0, adversary_weight=weight)


def test_dann_schedule() -> None:
    assert dann_schedule(0.0) == 0.0
    assert dann_schedule(0.5) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert dann_schedule(1.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert dann_schedule(2.0) == dann_schedule(1.0)  # clipped to training's end


def test_site_loss_accuracy_and_ramp_are_logged_per_epoch(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = create_model("small3d", widths=(4, 8), n_sites=2, dropout=0.0)
    fit(model, scanner_cohort(32, 0), None, _setup(0.5, 3), tmp_path, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert len(rows) == 3
    # 2 batches per epoch, 6 steps: each epoch ends at progress 1/5, 3/5, 5/5
    for row, p in zip(rows, (0.2, 0.6, 1.0), strict=False):
        assert row["adversary_lambda"] == pytest.approx(0.5 * dann_schedule(p))
        assert 0.0 <= row["site_accuracy"] <= 1.0 and row["site_loss"] > 0
    plain = create_model("small3d", widths=(4, 8), n_sites=2, dropout=0.0)
    fit(plain, scanner_cohort(32, 0), None, _setup(0.0, 1), tmp_path / "plain", progress=False)
    assert "site_loss" not in json.loads((tmp_path / "plain" / "history.jsonl").read_text())
