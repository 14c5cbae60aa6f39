"""The fits of a run on other executors: local processes and a local Ray cluster of 2 CPUs
give the same numbers as the serial run (same seed, one thread per fit), and a run one
executor started resumes under another.

Every run is a ``deepradiomics run`` process started with ``OMP_NUM_THREADS=1``, as Ray
starts its workers: CPU kernels choose their blocking from the threading environment they
start in, so a fit in a process that started with two threads rounds differently in the
6th digit even at ``torch.set_num_threads(1)`` (seen in this suite's workers), and the runs
would no longer be comparable bit for bit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from deepradiomics.errors import UserError
from deepradiomics.experiment.executor import ExecutorSpec
from deepradiomics.synth.generate import generate_cohort

CONFIG = {
    "cohort": {"path": "cohort/cohort.csv"},
    "preprocess": {"spacing": [2.0, 2.0, 2.0], "crop_mm": [24, 24, 24], "workers": 1},
    "model": {"name": "small3d", "kwargs": {"widths": [4, 8]}},
    "train": {"epochs": 2, "batch_size": 4},
    "evaluate": {
        "folds": 2,
        "ensemble_members": 2,
        "bootstrap": 20,
        "classical": False,
        "explain": False,
        "audit": {"site": False},
        "learning_curve": {"enabled": True, "fractions": [0.5, 1.0], "repeats": 1},
    },
}
SERIAL = ["--cpus-per-fit", "1"]  # one thread per fit, as each Ray task and process has


def _run(root: Path, out: str, *options: str) -> None:
    cmd = [sys.executable, "-m", "deepradiomics.cli", "run", str(root / "exp.yaml")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [*cmd, "--out", str(root / out), *options], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("executor")
    generate_cohort(root / "cohort", cases=20, sites=2, seed=5, size=24, pet=False, workers=1)
    (root / "exp.yaml").write_text(yaml.safe_dump(CONFIG))
    _run(root, "serial", *SERIAL)
    return root


def _numbers(run: Path) -> tuple[pd.DataFrame, dict]:
    metrics = json.loads((run / "metrics.json").read_text())
    keep = {k: metrics[k] for k in ("test", "per_fold", "learning_curve", "ensemble")}
    return pd.read_csv(run / "predictions.csv"), keep


def _same_numbers(a: Path, b: Path) -> None:
    # same seed, same thread count per fit, same machine: the same float operations in the
    # same order, so equal to the last bit, not within a tolerance
    (pa, ma), (pb, mb) = _numbers(a), _numbers(b)
    pd.testing.assert_frame_equal(pa, pb, check_exact=True)
    assert ma == mb


@pytest.mark.parametrize(
    "kind, options",
    [("local", ["--workers", "2", "--cpus-per-fit", "1"]), ("ray", ["--workers", "2"])],
    ids=["local-processes", "ray-2-cpus"],
)
def test_executors_give_the_serial_numbers(root: Path, kind: str, options: list[str]) -> None:
    if kind == "ray":
        pytest.importorskip("ray", reason="the ray extra is not installed")
    out = root / kind
    _run(root, kind, "--executor", kind, *options)
    _same_numbers(root / "serial", out)
    # 2 folds x 2 members + 2 learning-curve points, each trained once, where it was sent
    done = sorted(p.parent.relative_to(out).as_posix() for p in out.rglob("done.json"))
    assert len(done) == 6
    if kind == "ray":
        # a run Ray started resumes in this process: a finished member is reused, a removed
        # one retrained, with the same numbers
        (out / "folds" / "fold_1" / "member_1" / "done.json").unlink()
        before = (out / "folds" / "fold_0" / "member_0" / "predictions.npz").stat().st_mtime_ns
        _run(root, kind, *SERIAL)
        after = (out / "folds" / "fold_0" / "member_0" / "predictions.npz").stat().st_mtime_ns
        assert before == after
        assert (out / "folds" / "fold_1" / "member_1" / "done.json").is_file()
        _same_numbers(root / "serial", out)
        shutil.rmtree(out)


def test_executor_options_are_checked() -> None:
    assert ExecutorSpec().threads is None  # serial by default: the process's own threads
    assert ExecutorSpec("ray").threads == 1
    with pytest.raises(UserError, match="not one of local, ray"):
        ExecutorSpec("dask")
    with pytest.raises(UserError, match="--ray-address needs --executor ray"):
        ExecutorSpec("local", ray_address="auto")
    with pytest.raises(UserError, match="--workers"):
        ExecutorSpec("local", workers=0)


def test_cli_refuses_a_ray_address_without_ray(root: Path, capsys) -> None:
    from deepradiomics.cli import main

    code = main(["run", str(root / "exp.yaml"), "--out", str(root / "x"), "--ray-address", "auto"])
    assert code != 0
    assert "--ray-address needs --executor ray" in capsys.readouterr().err
    assert not (root / "x").exists()
