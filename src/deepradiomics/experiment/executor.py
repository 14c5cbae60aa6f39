"""Where a run's independent fits execute: this process, local processes, or a Ray cluster.

A run's CNN fits (every fold x ensemble member, every learning-curve repeat) are
independent: each is ``members.run_member`` with its own seed and folder, writing its
checkpoint, predictions and ``done.json`` atomically, so resume works the same whatever ran
it. A fit's numbers do not depend on where it runs, given its torch thread count
(``cpus_per_fit``, which ``fit_call`` sets in every executor, the serial one included; CPU
kernels may split float sums by thread).

- ``local`` (default): ``workers`` processes at a time (1: this process, as before, with the
  process's threads unless ``cpus_per_fit`` is given), each fit with ``cpus_per_fit``
  threads (default: the cores shared out among the workers).
- ``ray`` (``pip install 'deepradiomics[ray]'``): each fit a Ray task requesting
  ``cpus_per_fit`` CPUs (default 1) and ``gpus_per_fit`` GPUs; ``ray_address`` joins a running
  cluster (``auto``, or ``HOST:PORT``), none starts a local one of ``workers`` CPUs. On a
  cluster the run folder and the cohort (or its cache) must be on a file system every node
  sees.

Classical fits (scikit-learn, seconds) run in this process.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch

import deepradiomics
from deepradiomics.errors import UserError
from deepradiomics.preprocess.parallel import mp_context

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class ExecutorSpec:
    """How to execute fits (not part of the experiment: a run resumes under any executor)."""

    kind: str = "local"
    workers: int = 1  # local: processes at a time; ray without an address: the local cluster's CPUs
    cpus_per_fit: int | None = None
    gpus_per_fit: float = 0.0
    ray_address: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise UserError(f"--executor: '{self.kind}' is not one of {', '.join(EXECUTORS)}")
        if self.workers < 1 or (self.cpus_per_fit or 1) < 1 or self.gpus_per_fit < 0:
            raise UserError("--workers and --cpus-per-fit must be >= 1, --gpus-per-fit >= 0")
        if self.ray_address and self.kind != "ray":
            raise UserError("--ray-address needs --executor ray")

    @property
    def parallel(self) -> bool:
        return self.kind == "ray" or self.workers > 1

    @property
    def threads(self) -> int | None:
        """Torch threads of each fit (None: leave the process's setting)."""
        if self.cpus_per_fit is not None:
            return self.cpus_per_fit
        if self.kind == "ray":
            return 1
        return max(1, (os.cpu_count() or 1) // self.workers) if self.workers > 1 else None


def fit_call(fn: Callable[..., Any], threads: int | None, *args: Any) -> Any:
    """``fn(*args)`` with ``threads`` torch threads (restored after; None: as they are)."""
    if threads is None:
        return fn(*args)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(before)


def run_fits(spec: ExecutorSpec, fn: Callable[..., Any], arglist: Sequence[tuple]) -> list[Any]:
    """``[fn(*args) for args in arglist]``, executed as ``spec`` says; results in order.
    ``fn`` must be a module-level function (it is pickled for processes and Ray tasks)."""
    if not arglist:
        return []
    if spec.kind == "ray":
        return _ray_map(spec, fn, arglist)
    if spec.workers == 1 or len(arglist) == 1:
        return [fit_call(fn, spec.threads, *args) for args in arglist]
    workers = min(spec.workers, len(arglist))
    with ProcessPoolExecutor(workers, mp_context=mp_context(__name__)) as pool:
        futures = [pool.submit(fit_call, fn, spec.threads, *args) for args in arglist]
        return [f.result() for f in futures]


def _ray_map(spec: ExecutorSpec, fn: Callable[..., Any], arglist: Sequence[tuple]) -> list[Any]:
    try:
        import ray
    except ImportError:
        raise UserError(
            "--executor ray needs Ray: pip install 'deepradiomics[ray]' (or pip install ray)"
        ) from None
    if not ray.is_initialized():
        if spec.ray_address:
            ray.init(address=spec.ray_address, log_to_driver=False)
        else:
            ray.init(
                num_cpus=spec.workers,
                include_dashboard=False,
                log_to_driver=False,
                # workers import this package from where this process does
                runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(_import_path())}},
            )
    task = ray.remote(num_cpus=spec.threads, num_gpus=spec.gpus_per_fit)(fit_call)
    # an argument shared by several fits (the cohort, a fold's data) goes to the object
    # store once instead of once per task
    shared: dict[int, Any] = {}
    counts: dict[int, int] = {}
    for args in arglist:
        for a in args:
            counts[id(a)] = counts.get(id(a), 0) + 1
    refs = []
    for args in arglist:
        put = []
        for a in args:
            if counts[id(a)] > 1 and not isinstance(a, int | float | str | bool | type(None)):
                if id(a) not in shared:
                    shared[id(a)] = ray.put(a)
                put.append(shared[id(a)])
            else:
                put.append(a)
        refs.append(task.remote(fn, spec.threads, *put))
    return ray.get(refs)


def _import_path() -> list[str]:
    """Where this package is imported from, then the inherited ``PYTHONPATH`` (Ray's workers
    run the same interpreter, so its site-packages come with it)."""
    pkg_root = os.path.dirname(os.path.dirname(os.path.abspath(deepradiomics.__file__)))
    inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return [pkg_root, *(os.path.abspath(p) for p in inherited)]


def shutdown() -> None:
    """Stop the local Ray cluster this process started (no-op otherwise)."""
    try:
        import ray
    except ImportError:
        return
    if ray.is_initialized():
        ray.shutdown()
