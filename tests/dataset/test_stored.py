"""Streaming cohorts: above ``train.memory_budget_mb`` the cases are read from disk a batch at a
time, and everything downstream sees the same arrays as with the cohort in memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from deepradiomics.config import parse_config
from deepradiomics.dataset.load import load_cohort_arrays
from deepradiomics.dataset.stored import StoredArray, write_stacked
from deepradiomics.synth.generate import generate_cohort
from deepradiomics.train.loop import predict, setup_from_config, train_one_epoch


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stream")
    return generate_cohort(root / "c", cases=10, sites=2, seed=1, size=24, pet=False, workers=1)


def _arrays(csv: Path, run: Path, budget_mb: float, mask_channel: bool):
    cfg = parse_config(
        {
            "cohort": {"path": str(csv)},
            "preprocess": {
                "spacing": [2, 2, 2],
                "crop_mm": [24, 24, 24],
                "workers": 1,
                "mask_channel": mask_channel,
                "cache_dir": str(csv.parent / "cache"),
            },
            "model": {"name": "small3d", "kwargs": {"widths": [4, 8]}},
            "train": {"batch_size": 4, "memory_budget_mb": budget_mb},
        }
    )
    return cfg, load_cohort_arrays(cfg, run)


@pytest.mark.parametrize("mask_channel", [False, True])
def test_streamed_cohort_equals_the_in_memory_one(
    cohort: Path, tmp_path: Path, mask_channel: bool
) -> None:
    _, memory = _arrays(cohort, tmp_path / "a", 4096, mask_channel)
    cfg, stream = _arrays(cohort, tmp_path / "b", 0, mask_channel)
    assert isinstance(memory.data.images, torch.Tensor)
    assert isinstance(stream.data.images, StoredArray)
    assert isinstance(stream.data.masks, StoredArray)
    assert stream.data.images.shape == memory.data.images.shape
    assert stream.in_channels == 1 + mask_channel
    assert torch.equal(stream.data.images[:], memory.data.images)
    assert torch.equal(stream.data.masks[:], memory.data.masks)
    # a subset (a fold, a bootstrap member with repeats) reads the same rows in its order
    pick = [7, 2, 2, 9, 0]
    sub_m, sub_s = memory.data.subset(pick), stream.data.subset(pick)
    assert isinstance(sub_s.images, StoredArray)
    assert torch.equal(sub_s.images[torch.tensor([4, 1, 3])], sub_m.images[[4, 1, 3]])
    assert torch.equal(sub_s.images[2:4], sub_m.images[2:4])
    assert torch.equal(sub_s.images[3, 0], sub_m.images[3, 0])
    assert np.array_equal(sub_s.images.numpy(), sub_m.images.numpy())
    assert sub_s.case_ids == sub_m.case_ids

    # one training epoch and the predictions: the same numbers, bit for bit
    from deepradiomics.augment import build_augmenter
    from deepradiomics.losses import get_loss
    from deepradiomics.models import build_from_config

    results = []
    for arrays in (memory, stream):
        model = build_from_config(
            cfg, arrays.task, arrays.in_channels, arrays.n_classes, arrays.spacing
        )
        setup = setup_from_config(cfg, arrays.task, 2, arrays.anisotropic, arrays.spacing)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
        aug = build_augmenter(cfg.augment, arrays.anisotropic, arrays.spacing)
        loss, seen, _ = train_one_epoch(
            model, arrays.data, setup, 0, opt, sched, get_loss(None, arrays.task), aug,
            torch.device("cpu"), progress=False,
        )  # fmt: skip
        results.append((loss, predict(model, arrays.data, arrays.task, torch.device("cpu"))))
    assert results[0][0] == results[1][0]
    assert np.array_equal(results[0][1], results[1][1])


def test_write_stacked_checks_its_rows(tmp_path: Path) -> None:
    rows = (np.full((2, 3), i, dtype=np.float32) for i in range(3))
    stored = StoredArray(write_stacked(tmp_path / "a.npy", rows, 3, (2, 3), np.float32))
    assert np.array_equal(
        np.load(tmp_path / "a.npy"), np.repeat(np.arange(3.0), 6).reshape(3, 2, 3)
    )
    assert stored[torch.tensor([2, 0])][:, 0, 0].tolist() == [2.0, 0.0]
    with pytest.raises(ValueError, match="2 rows written, 3 announced"):
        write_stacked(tmp_path / "b.npy", iter([np.zeros((2, 3))] * 2), 3, (2, 3), np.float32)
    with pytest.raises(ValueError, match="row 0 has shape"):
        write_stacked(tmp_path / "c.npy", iter([np.zeros((3, 3))]), 1, (2, 3), np.float32)
    assert not (tmp_path / "b.npy").exists() and not list(tmp_path.glob(".*tmp"))
