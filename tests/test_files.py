"""Atomic writes (``deepradiomics.files``): a file is published whole or not at all."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deepradiomics.files import atomic_write, atomic_write_text, write_json


def test_atomic_write_leaves_nothing_when_interrupted(tmp_path: Path) -> None:
    target = tmp_path / "cases" / "k.npz"

    def half_then_interrupt(f):
        f.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, half_then_interrupt)
    assert not target.exists() and list(target.parent.iterdir()) == []
    atomic_write(target, lambda f: f.write(b"done"))
    assert target.read_bytes() == b"done"


def test_failed_rewrite_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    atomic_write_text(target, "old")

    def fail(f):
        f.write(b"new but incomplete")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, fail)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_write_json_converts_numpy_and_paths(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    write_json(
        target, {"auc": np.float32(0.75), "n": np.int64(3), "v": np.arange(2), "p": Path("a/b")}
    )
    assert json.loads(target.read_text()) == {"auc": 0.75, "n": 3, "v": [0, 1], "p": "a/b"}
    with pytest.raises(TypeError, match="not JSON serialisable: object"):
        write_json(tmp_path / "bad.json", {"x": object()})
    assert not (tmp_path / "bad.json").exists()


def test_npz_through_a_file_handle(tmp_path: Path) -> None:
    target = tmp_path / "predictions.npz"
    atomic_write(target, lambda f: np.savez(f, test=np.array([0.5, 0.25])))
    with np.load(target) as npz:
        assert npz["test"].tolist() == [0.5, 0.25]
