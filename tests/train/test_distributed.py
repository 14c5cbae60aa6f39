"""DDP under torchrun (2 CPU processes, gloo) follows the single-process trajectory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from deepradiomics.train.checkpoint import load_checkpoint
from tests.train.helpers import write_blob_npz, write_config


def _history(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not built")
def test_two_gloo_processes_match_one_process_at_the_same_global_batch(tmp_path: Path) -> None:
    # instance norm and no dropout: nothing couples the cases of a batch, so averaging the two
    # halves' gradients must reproduce the whole batch's gradient; class weights off, since a
    # weighted mean per half differs from the weighted mean of the whole batch
    cfg = write_config(
        tmp_path / "c.yaml", write_blob_npz(tmp_path / "blobs.npz", n=32),
        model={"kwargs": {"widths": [4, 8], "norm": "instance"}, "dropout": 0.0},
        train={"epochs": 3, "batch_size": 8, "class_weight": "none"},
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, "-m", "deepradiomics.cli", "train", str(cfg),
                             "--out", str(tmp_path / "single")], env=env, capture_output=True,
                            text=True, timeout=600)
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_port", "29577", "-m", "deepradiomics.cli", "train", str(cfg),
                          "--out", str(tmp_path / "ddp")], env=env, capture_output=True, text=True,
                         timeout=600)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    ha, hb = _history(tmp_path / "single"), _history(tmp_path / "ddp")
    assert [h["processes"] for h in ha + hb] == [1, 1, 1, 2, 2, 2]
    # each process computed half of every global batch of 8: 4 batches of 32 training cases
    assert [h["cases_per_process"] for h in ha + hb] == [32, 32, 32, 16, 16, 16]
    a, b = [h["loss"] for h in ha], [h["loss"] for h in hb]
    assert a == pytest.approx(b, rel=1e-4, abs=1e-5)
    wa = load_checkpoint(tmp_path / "single" / "checkpoint.pt")["model"]
    wb = load_checkpoint(tmp_path / "ddp" / "checkpoint.pt")["model"]
    for k in wa:
        assert torch.allclose(wa[k].float(), wb[k].float(), rtol=1e-3, atol=1e-4), k
    assert json.loads((tmp_path / "ddp" / "metrics.json").read_text())["test"]["auc"]["value"] == pytest.approx(
        json.loads((tmp_path / "single" / "metrics.json").read_text())["test"]["auc"]["value"], abs=0.02)
