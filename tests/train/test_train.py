"""Training loop: learns, checkpoints atomically, resumes after a kill to the same weights."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from deepradiomics.cli import main
from deepradiomics.train.checkpoint import load_checkpoint
from tests.train.helpers import write_blob_npz, write_config

TRAIN = [sys.executable, "-m", "deepradiomics.cli", "train"]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_train_learns_and_writes_metrics(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path / "c.yaml", write_blob_npz(tmp_path / "blobs.npz"), train={"epochs": 6}
    )
    assert main(["train", str(cfg), "--out", str(tmp_path / "out")]) == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    test = metrics["test"]
    assert test["auc"]["value"] > 0.8  # a bright cube is easy to find
    assert test["auc"]["ci_low"] <= test["auc"]["value"] <= test["auc"]["ci_high"]
    assert 0 <= test["accuracy"]["value"] <= 1
    assert 0 < metrics["threshold"] < 1
    history = [
        json.loads(line) for line in (tmp_path / "out" / "history.jsonl").read_text().splitlines()
    ]
    assert [h["epoch"] for h in history] == list(range(1, metrics["epochs_run"] + 1))
    best = load_checkpoint(tmp_path / "out" / "best.pt")
    assert best["epoch"] == metrics["best_epoch"]
    assert best["config"]["train"]["epochs"] == 6


def test_monitor_last_keeps_the_last_epoch(tmp_path: Path) -> None:
    """A fixed schedule: every epoch runs (patience is moot), the last is kept, and the
    validation numbers are still in the history."""
    cfg = write_config(
        tmp_path / "c.yaml",
        write_blob_npz(tmp_path / "blobs.npz"),
        train={"epochs": 4, "patience": 1, "monitor": "last"},
    )
    assert main(["train", str(cfg), "--out", str(tmp_path / "out")]) == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["best_epoch"] == metrics["epochs_run"] == 4
    history = (tmp_path / "out" / "history.jsonl").read_text().splitlines()
    assert all("val_loss" in json.loads(line) for line in history)
    assert load_checkpoint(tmp_path / "out" / "best.pt")["epoch"] == 4


def test_validate_every_thins_the_record_not_the_weights(tmp_path: Path, capsys) -> None:
    """``validate_every: 2`` under a fixed schedule validates epochs 2, 4 and the last (5);
    the kept weights are those of validating every epoch (validation draws no randomness).
    Early stopping compares every epoch, so it refuses ``validate_every`` > 1."""
    npz = write_blob_npz(tmp_path / "blobs.npz")
    weights = []
    for every in (1, 2):
        cfg = write_config(
            tmp_path / f"c{every}.yaml",
            npz,
            train={"epochs": 5, "monitor": "last", "validate_every": every},
        )
        out = tmp_path / f"out{every}"
        assert main(["train", str(cfg), "--out", str(out)]) == 0
        rows = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
        validated = [r["epoch"] for r in rows if "val_loss" in r]
        assert validated == ([1, 2, 3, 4, 5] if every == 1 else [2, 4, 5])
        weights.append(load_checkpoint(out / "best.pt")["model"])
    assert weights[0].keys() == weights[1].keys()
    for key, value in weights[0].items():
        assert torch.equal(value, weights[1][key]), key
    cfg = write_config(tmp_path / "bad.yaml", npz, train={"validate_every": 2})
    assert main(["train", str(cfg), "--out", str(tmp_path / "bad")]) == 1
    err = capsys.readouterr().err
    assert "validate_every: 2 needs monitor: last" in err and "Traceback" not in err


def test_threshold_rule_from_config(tmp_path: Path) -> None:
    npz = write_blob_npz(tmp_path / "blobs.npz")
    val_acc = {}
    for rule in ("youden", "accuracy", 0.3):
        cfg = write_config(
            tmp_path / "c.yaml", npz, train={"epochs": 1}, evaluate={"threshold": rule}
        )
        assert main(["train", str(cfg), "--out", str(tmp_path / str(rule))]) == 0
        metrics = json.loads((tmp_path / str(rule) / "metrics.json").read_text())
        val_acc[rule] = metrics["val"]["accuracy"]["value"]
        if rule == 0.3:
            assert metrics["threshold"] == 0.3
    assert val_acc["accuracy"] >= val_acc["youden"]  # same weights, the rule maximises it


def test_validation_only_leaves_the_test_split_unseen(tmp_path: Path, capsys) -> None:
    cfg = write_config(
        tmp_path / "c.yaml", write_blob_npz(tmp_path / "blobs.npz"), train={"epochs": 1}
    )
    assert main(["train", str(cfg), "--out", str(tmp_path / "out"), "--validation-only"]) == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert "test" not in metrics and 0 <= metrics["val"]["auc"]["value"] <= 1
    assert capsys.readouterr().out.startswith("val: auc ")


def test_same_seed_same_numbers(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path / "c.yaml", write_blob_npz(tmp_path / "blobs.npz"), train={"epochs": 2}
    )
    for out in ("a", "b"):
        assert main(["train", str(cfg), "--out", str(tmp_path / out)]) == 0
    assert _same(_weights(tmp_path / "a" / "best.pt"), _weights(tmp_path / "b" / "best.pt"))
    assert main(["train", str(cfg), "--out", str(tmp_path / "c"), "--seed", "1"]) == 0
    assert not _same(_weights(tmp_path / "a" / "best.pt"), _weights(tmp_path / "c" / "best.pt"))


def test_resume_after_kill_matches_uninterrupted_run(tmp_path: Path) -> None:
    epochs = 12
    cfg = write_config(
        tmp_path / "c.yaml",
        write_blob_npz(tmp_path / "blobs.npz", n=64, size=14),
        train={"epochs": epochs, "patience": 100},
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    full = subprocess.run(
        [*TRAIN, str(cfg), "--out", str(tmp_path / "full")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert full.returncode == 0, full.stderr

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [*TRAIN, str(cfg), "--out", str(killed)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ckpt = killed / "checkpoint.pt"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if ckpt.is_file() and load_checkpoint(ckpt)["epoch"] >= 3:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait(timeout=60)
    stopped_at = load_checkpoint(ckpt)["epoch"]
    assert proc.returncode == -signal.SIGKILL and 3 <= stopped_at < epochs, (
        "the run was not killed mid-way"
    )

    resumed = subprocess.run(
        [*TRAIN, str(cfg), "--out", str(killed), "--resume"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert load_checkpoint(ckpt)["epoch"] == epochs
    assert _same(_weights(tmp_path / "full" / "checkpoint.pt"), _weights(ckpt))
    assert _same(_weights(tmp_path / "full" / "best.pt"), _weights(killed / "best.pt"))
    full_metrics = json.loads((tmp_path / "full" / "metrics.json").read_text())
    resumed_metrics = json.loads((killed / "metrics.json").read_text())
    assert full_metrics["test"]["auc"]["value"] == resumed_metrics["test"]["auc"]["value"]


def test_bad_config_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train: {epochs: ten}\ncohort: {path: x.npz}\n")
    assert main(["train", str(cfg), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "train.epochs" in err and "Traceback" not in err


def test_negative_seed_is_a_usage_error_not_a_traceback(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", write_blob_npz(tmp_path / "blobs.npz", n=8))
    proc = subprocess.run(
        [*TRAIN, str(cfg), "--out", str(tmp_path / "o"), "--seed", "-1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2  # argparse's usage error
    assert "argument --seed: must be at least 0, got -1" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("edit", "classes", "message"),
    [
        (lambda a: a["val_labels"].__setitem__(3, 2), ["normal", "mass"], "val_labels go up to 2"),
        (lambda a: a.update(train_labels=np.zeros((48, 2))), None, "2 columns per image"),
        (lambda a: a["train_labels"].__setitem__(0, -1), None, "train_labels[0] is -1"),
    ],
)
def test_npz_labels_that_do_not_fit_the_classes_stop_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture, edit, classes, message
) -> None:
    arrays = dict(np.load(write_blob_npz(tmp_path / "blobs.npz")))
    arrays = {k: v.astype(np.int16) if k.endswith("labels") else v for k, v in arrays.items()}
    edit(arrays)
    np.savez(tmp_path / "bad.npz", **arrays)
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "bad.npz")
    if classes:
        cfg.write_text(cfg.read_text().replace("cohort:", f"cohort:\n  classes: {classes}", 1))
    assert main(["train", str(cfg), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert message in err and "bad.npz" in err and "Traceback" not in err
    assert not (tmp_path / "o" / "checkpoint.pt").exists()


def test_class_weights_for_another_number_of_classes_are_a_user_error(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    npz = write_blob_npz(tmp_path / "blobs.npz", n=8)
    cfg = write_config(tmp_path / "c.yaml", npz, train={"class_weight": [1.0, 2.0, 3.0]})
    assert main(["train", str(cfg), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "train.class_weight has 3 weights but the cohort has 2 classes" in err
    assert "Traceback" not in err


def test_without_flips_in_training_prediction_does_not_average_over_flips(tmp_path: Path) -> None:
    """A side-dependent label (augment.flip: false) gets no flip TTA either: train.tta on or
    off gives the same test predictions (the continuous Brier score included); with flips in
    training, TTA changes them."""
    npz = write_blob_npz(tmp_path / "blobs.npz")
    panels = {}
    for flip in (False, True):
        for tta in (False, True):
            cfg = write_config(
                tmp_path / f"c_{flip}_{tta}.yaml",
                npz,
                train={"epochs": 2, "tta": tta},
                augment={"flip": flip},
            )
            out = tmp_path / f"o_{flip}_{tta}"
            assert main(["train", str(cfg), "--out", str(out)]) == 0
            panels[flip, tta] = json.loads((out / "metrics.json").read_text())["test"]
    assert panels[False, True] == panels[False, False]
    assert panels[True, True]["brier"] != panels[True, False]["brier"]
