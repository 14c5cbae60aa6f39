"""DDP under torchrun (2 CPU processes, gloo): what data parallelism guarantees, and no more.

DDP guarantees that the gradients averaged over the processes equal the gradient of the
whole global batch, up to float rounding: that is tested at the first step, tightly. After
that, the processes and the single process round differently (another summation order, other
kernels on another CPU), and AdamW's first steps turn gradient entries that are zero up to
rounding into updates of +-lr, so the *weights* after a few epochs are not a float-tolerance
property across machines (the previous version of this test compared them and failed on
another AMD EPYC). Those entries barely move the loss (first order, their gradient is ~0), so
the loss trajectory is compared with a tolerance that is loose against rounding and still
tight against a wrong sharding or a missing gradient average (see the control below).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from deepradiomics.losses import get_loss
from tests.train.ddp_step import batch, step_model
from tests.train.helpers import write_blob_npz, write_config

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available(), reason="torch.distributed not built"
)

STEP = Path(__file__).with_name("ddp_step.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
# Gradient tolerance, relative to each tensor's largest entry. A gradient entry here sums about
# 8 cases x 12^3 voxels of products; reordering such a float32 sum moves it by about
# sqrt(n) * eps ~ 1e-5 of the summed magnitudes (measured: <= 2e-6 on AMD EPYC). 1e-4 leaves an
# order of magnitude for other CPUs' kernels and is still ~1000x below the control's gap.
GRAD_RTOL = 1e-4


def free_port() -> int:
    """A port no other process listens on now (a fixed one may be taken: other tests, Ray)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(*args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(free_port()),
        *args,
    ]


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def _scaled_gap(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Largest |a - b| over all tensors, each relative to the largest entry of ``a``'s tensor."""
    return max(float((a[k] - b[k]).abs().max() / a[k].abs().max().clamp_min(1e-30)) for k in a)


def test_averaged_gradients_equal_the_whole_batch_gradient_at_the_first_step(
    tmp_path: Path,
) -> None:
    _run([sys.executable, str(STEP), str(tmp_path / "one")])
    _run(_torchrun(str(STEP), str(tmp_path / "two")))
    one, two = (json.loads((tmp_path / d / "loss.json").read_text()) for d in ("one", "two"))
    assert (one["processes"], one["cases_per_process"]) == (1, 8)
    assert (two["processes"], two["cases_per_process"]) == (2, 4)
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-5)  # mean of the two halves' means
    g_one = torch.load(tmp_path / "one" / "grads.pt", weights_only=True)
    g_two = torch.load(tmp_path / "two" / "grads.pt", weights_only=True)
    assert g_one.keys() == g_two.keys()
    assert _scaled_gap(g_one, g_two) < GRAD_RTOL

    # control: the gradient of one process's share alone (no averaging) is far outside the
    # tolerance, so the comparison above can fail
    model = step_model("instance")
    half = batch().subset(list(range(0, 8, 2)))
    get_loss(None, "binary")(model(half.images)["out"].float(), half.targets).backward()
    g_half = {k: p.grad for k, p in model.named_parameters()}
    assert _scaled_gap(g_one, g_half) > 100 * GRAD_RTOL


def test_two_processes_follow_the_single_process_loss_trajectory(tmp_path: Path) -> None:
    # instance norm and no dropout: nothing couples the cases of a batch; class weights off,
    # since a weighted mean per half differs from the weighted mean of the whole batch
    cfg = write_config(
        tmp_path / "c.yaml",
        write_blob_npz(tmp_path / "blobs.npz", n=32),
        model={"kwargs": {"widths": [4, 8], "norm": "instance"}, "dropout": 0.0},
        train={"epochs": 3, "batch_size": 8, "class_weight": "none"},
    )
    train = ["-m", "deepradiomics.cli", "train", str(cfg), "--out"]
    _run([sys.executable, *train, str(tmp_path / "single")])
    _run(_torchrun(*train, str(tmp_path / "ddp")))

    def history(run: str) -> list[dict]:
        return [
            json.loads(line) for line in (tmp_path / run / "history.jsonl").read_text().splitlines()
        ]

    ha, hb = history("single"), history("ddp")
    assert [h["processes"] for h in ha + hb] == [1, 1, 1, 2, 2, 2]
    # each process computed half of every global batch of 8: 4 batches of 32 training cases
    assert [h["cases_per_process"] for h in ha + hb] == [32, 32, 32, 16, 16, 16]
    # Rounding moves each epoch's mean loss by far less than 1 % (measured here: < 1e-5
    # relative). Both processes training on the same share moved epochs 1-3 by 0.5 %, 2.3 %
    # and 1.4 % (measured), so 1 % still catches that; the first-step gradient test above is
    # the strict check.
    assert [h["loss"] for h in hb] == pytest.approx([h["loss"] for h in ha], rel=1e-2)
    # the trained models rank the test cases alike
    auc = [
        json.loads((tmp_path / run / "metrics.json").read_text())["test"]["auc"]["value"]
        for run in ("single", "ddp")
    ]
    assert auc[1] == pytest.approx(auc[0], abs=0.05)


def test_a_worker_ends_through_end_process_with_its_output_and_files(tmp_path: Path) -> None:
    """After a DDP backward pass the worker leaves through ``end_process`` (no interpreter
    finalisation, see there): exit code 0, its output and its files are there."""
    script = tmp_path / "s.py"
    script.write_text(
        "import sys, torch\n"
        "from deepradiomics.train import distributed as dist\n"
        "assert dist.launched() and dist.init_from_env() and dist.world_size() == 2\n"
        "net = dist.wrap(torch.nn.Linear(3, 1), torch.device('cpu'))\n"
        "net(torch.ones(2, 3) * (dist.rank() + 1)).sum().backward()\n"
        f"open(r'{tmp_path}/rank%d' % dist.rank(), 'w').close()\n"
        # one write per rank (torchrun runs workers unbuffered, ``python -u``: print's pieces
        # from the two ranks would interleave)
        "sys.stdout.write(f'done {dist.rank()}\\n')\n"
        "dist.end_process(0)\n"
        "raise SystemExit(3)  # not reached\n"
    )
    done = subprocess.run(
        _torchrun(str(script)), env=ENV, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-1000:] + done.stderr[-3000:]
    lines = sorted(done.stdout.split("\n"))
    assert lines == ["", "done 0", "done 1"], done.stdout[-1000:]
    assert sorted(p.name for p in tmp_path.glob("rank*")) == ["rank0", "rank1"]
