"""Peak resident memory and time per case of synth, preprocess and one training epoch, by
cohort size: does memory stay flat as the cohort grows?

Each stage runs as its own process (the CLI, as a user runs it) and its peak RSS is the
kernel's ``ru_maxrss`` of that process (``os.wait4``). Training runs twice: with the cohort
held in memory (``train.memory_budget_mb`` 4096, the default) and streamed from disk
(budget 0, ``dataset.stored``).

    OMP_NUM_THREADS=1 python bench/scale_memory.py --cases 250 500 1000 --size 32 --out /tmp/scale

prints a Markdown table (``bench/scale_results.md`` records a run).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def measured(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of ``cmd`` run as a child process."""
    t0 = time.perf_counter()
    # stderr to a file: a pipe nobody reads until the end fills up and blocks the child
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            sys.exit(f"failed: {' '.join(cmd)}\n{err.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024  # KB on Linux


def config(csv: Path, size: int, budget_mb: float) -> dict:
    return {
        "cohort": {"path": str(csv)},
        "preprocess": {"spacing": [2, 2, 2], "crop_mm": [size, size, size], "workers": 1},
        "model": {"name": "small3d", "kwargs": {"widths": [4, 8]}},
        "train": {"epochs": 1, "batch_size": 16, "memory_budget_mb": budget_mb, "tta": False},
        "evaluate": {"bootstrap": 50},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, nargs="+", default=[250, 500, 1000])
    ap.add_argument("--size", type=int, default=32, help="synthetic in-plane size (voxels)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/scale_memory"))
    args = ap.parse_args()
    cli = [sys.executable, "-m", "deepradiomics.cli"]
    rows = []
    for n in args.cases:
        root = args.out / f"n{n}"
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        synth = [*cli, "synth", str(root / "cohort"), "--cases", str(n), "--size", str(args.size)]
        stages = {"synth": measured([*synth, "--no-pet", "--workers", "1"])}
        csv = root / "cohort" / "cohort.csv"
        for mode, budget in (("memory", 4096.0), ("stream", 0.0)):
            (root / f"{mode}.yaml").write_text(yaml.safe_dump(config(csv, args.size, budget)))
        prep = [*cli, "preprocess", str(root / "memory.yaml"), "--out", str(root / "prep")]
        stages["preprocess"] = measured([*prep, "--workers", "1"])
        for mode in ("memory", "stream"):
            yaml_path = str(root / f"{mode}.yaml")
            stages[f"train ({mode})"] = measured(
                [*cli, "train", yaml_path, "--out", str(root / mode)]
            )
        for stage, (seconds, rss) in stages.items():
            rows.append((n, stage, rss, 1000 * seconds / n))
            print(f"{n} {stage}: {rss:.0f} MB, {1000 * seconds / n:.1f} ms/case", flush=True)
    print(f"\nload average after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}\n")
    print("| cases | stage | peak RSS (MB) | ms per case |\n|---|---|---|---|")
    for n, stage, rss, ms in rows:
        print(f"| {n} | {stage} | {rss:.0f} | {ms:.1f} |")


if __name__ == "__main__":
    main()
