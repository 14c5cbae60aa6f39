"""Quality and training time of the shipped AdrenalMNIST3D recipe, several seeds, via the CLI.

    .venv/bin/python bench/adrenalmnist3d.py --explore --config CANDIDATE.yaml  # validation only
    .venv/bin/python bench/adrenalmnist3d.py                       # final: 28^3, seeds 0 1 2
    .venv/bin/python bench/adrenalmnist3d.py --config examples/adrenalmnist3d_64.yaml

``--explore`` is for choosing a recipe: each seed runs ``train --validation-only``, so the
test split is never predicted and the table shows validation numbers only (validation AUC,
and accuracy at the threshold chosen on the same validation cases, hence optimistic). Run
without it once per final recipe, to report the test split.

Each seed runs ``deepradiomics train CONFIG --out OUT/seed<S> --seed S`` in a fresh process
(``OMP_NUM_THREADS=--threads``), one after the other, and reads back its ``metrics.json``:
test AUC and accuracy (threshold chosen on the validation split), validation AUC, best epoch
(by validation AUC), epochs run and ``train_seconds`` (the training loop's own clock: epochs
and per-epoch validation, not data loading or the final evaluation). A seed that ran
before (``OUT/seed<S>/bench_row.json``) is read, not rerun (``--rerun`` forces it). Prints
a Markdown table with the medians and writes the raw rows to ``OUT/summary.json``.

``--threads 2`` (default) is right on a quiet 2-core machine; when others' jobs keep the
cores busy, two threads per process spend most of their time waiting for each other (the
train step ran 4-5x slower than with one thread at load average 2-3), so use
``--threads 1`` there and say so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = (
    "seed",
    "test_auc",
    "test_acc",
    "val_auc",
    "threshold",
    "best_epoch",
    "epochs_run",
    "train_s",
    "wall_s",
    "load_before",
    "load_after",
)
EXPLORE_COLUMNS = (
    "seed",
    "val_auc",
    "val_acc",
    "threshold",
    "best_epoch",
    "epochs_run",
    "train_s",
    "wall_s",
    "load_before",
    "load_after",
)


def _load() -> str:
    """The 1-minute load average (others' jobs slow the run down: recorded with it)."""
    return f"{os.getloadavg()[0]:.2f}"


def run_seed(
    config: Path, out: Path, seed: int, threads: int, rerun: bool, explore: bool = False
) -> dict:
    """Train one seed through the CLI (unless it ran before in the same mode) and return its
    row; ``explore`` trains with ``--validation-only`` and keeps validation numbers only."""
    row_path = out / "bench_row.json"
    mode = "explore" if explore else "final"
    if not rerun and row_path.is_file():
        row = json.loads(row_path.read_text())
        if row.get("mode", "final") != mode:
            held = row.get("mode", "final")
            raise SystemExit(f"{out} holds a run in {held} mode; use another --out")
        return row
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd = [
        sys.executable,
        "-m",
        "deepradiomics.cli",
        "train",
        str(config),
        "--out",
        str(out),
        "--seed",
        str(seed),
    ] + (["--validation-only"] if explore else [])
    load_before, t0 = _load(), time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    m = json.loads((out / "metrics.json").read_text())
    scores = (
        {"val_auc": m["val"]["auc"]["value"], "val_acc": m["val"]["accuracy"]["value"]}
        if explore
        else {
            "test_auc": m["test"]["auc"]["value"],
            "test_acc": m["test"]["accuracy"]["value"],
            "val_auc": m["val"]["auc"]["value"],
        }
    )
    row = {
        "seed": seed,
        "mode": mode,
        **scores,
        "threshold": m["threshold"],
        "best_epoch": m["best_epoch"],
        "epochs_run": m["epochs_run"],
        "train_s": m["train_seconds"],
        "wall_s": round(wall, 1),
        "load_before": load_before,
        "load_after": _load(),
        "threads": threads,
    }
    row_path.write_text(json.dumps(row, indent=2))
    return row


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return "-" if v != v else f"{v:.3f}" if abs(v) < 10 else f"{v:.0f}"
    return str(v)


def table(rows: list[dict], columns: tuple[str, ...] = COLUMNS) -> str:
    """Markdown rows plus the medians of every column from the second to ``train_s``."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(r[c]) for c in columns) + " |" for r in rows]
    summarised = columns[1 : columns.index("train_s") + 1]
    med = {c: statistics.median(r[c] for r in rows) for c in summarised}
    lines.append(
        "| **median** | "
        + " | ".join(_fmt(float(med[c])) for c in summarised)
        + " |" * (len(columns) - len(summarised))
    )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "examples" / "adrenalmnist3d.yaml")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument(
        "--out", type=Path, default=None, help="default: runs/bench_<config name> (ignored by git)"
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rerun", action="store_true", help="retrain seeds that ran before")
    ap.add_argument(
        "--explore",
        action="store_true",
        help="choosing a recipe: validation split only, the test split stays unseen",
    )
    args = ap.parse_args()
    mode = "explore" if args.explore else "final"
    out = args.out or ROOT / "runs" / f"bench_{mode}_{args.config.stem}"
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
        f"{torch.__version__}, OMP_NUM_THREADS={args.threads}, config {args.config}",
        flush=True,
    )
    rows = []
    for seed in args.seeds:
        rows.append(
            run_seed(
                args.config.resolve(),
                out / f"seed{seed}",
                seed,
                args.threads,
                args.rerun,
                explore=args.explore,
            )
        )
        print(json.dumps(rows[-1]), flush=True)
    text = table(rows, EXPLORE_COLUMNS if args.explore else COLUMNS)
    print(text)
    (out / "summary.json").write_text(
        json.dumps(
            {"config": str(args.config), "mode": mode, "rows": rows, "threads": args.threads},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
