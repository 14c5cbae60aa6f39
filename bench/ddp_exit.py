"""How often a torchrun worker aborts at exit after a DDP backward pass, with and without
``distributed.end_process`` (``bench/ddp_exit_results.md``).

    .venv/bin/python bench/ddp_exit.py --runs 50 --loops 3 [--plain | --end-process]

Each run is ``torchrun --nproc_per_node 2`` of a minimal worker (gloo, one all-reduce, one
DDP forward/backward of a linear layer, then a plain interpreter exit or ``end_process(0)``);
``--loops`` launches run side by side, the load under which the abort shows. Prints the
number of runs whose exit code was not 0 and the first line of their output.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

WORKER = """
import sys, torch, torch.distributed as t
from deepradiomics.train import distributed as dist
dist.init_from_env()
x = torch.ones(10)
t.all_reduce(x)
net = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(4, 1))
net(torch.ones(2, 4)).sum().backward()
if sys.argv[1] == "end_process":
    dist.end_process(0)
"""


def one_loop(loop: int, runs: int, mode: str, script: Path) -> list[str]:
    failures = []
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for _ in range(runs):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
        cmd += ["--master_port", str(29700 + loop), str(script), mode]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            failures.append((done.stderr.strip().splitlines() or ["?"])[0])
    return failures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50, help="runs per loop")
    ap.add_argument("--loops", type=int, default=3, help="loops side by side")
    way = ap.add_mutually_exclusive_group()
    way.add_argument("--plain", dest="mode", action="store_const", const="plain")
    way.add_argument("--end-process", dest="mode", action="store_const", const="end_process")
    ap.set_defaults(mode="end_process")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "worker.py"
        script.write_text(WORKER)
        with ThreadPoolExecutor(args.loops) as pool:
            jobs = [
                pool.submit(one_loop, i, args.runs, args.mode, script) for i in range(args.loops)
            ]
            failures = [f for j in jobs for f in j.result()]
    total = args.runs * args.loops
    print(f"{args.mode}: {len(failures)} of {total} runs exited non-zero")
    for line in sorted(set(failures)):
        print(f"  {failures.count(line)} x {line}")


if __name__ == "__main__":
    main()
