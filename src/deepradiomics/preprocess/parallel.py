"""Cases in parallel: one process pool, per-case error capture, one progress bar.

``run_jobs`` yields each job's ``Outcome`` as it ends; a failing case becomes an outcome
with its reason (a ``UserError`` message, or the exception and its traceback for bugs), so
one bad case never stops the cohort. Used by ``preprocess`` and ``predict``.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from deepradiomics.errors import UserError


@dataclass
class Outcome:
    value: Any = None
    cached: bool = False
    reason: str | None = None
    detail: str | None = None


def guarded(fn: Callable[..., tuple[Any, bool]], *args: Any) -> Outcome:
    """``fn(*args) -> (value, cached)`` as an ``Outcome``, its failure as a reason."""
    try:
        value, cached = fn(*args)
        return Outcome(value=value, cached=cached)
    except UserError as err:
        return Outcome(reason=str(err))
    except Exception as err:  # a bug or a library error on one case must not stop the cohort
        return Outcome(reason=f"{type(err).__name__}: {err}", detail=traceback.format_exc())


def mp_context(preload: str) -> multiprocessing.context.BaseContext:
    """Workers fork from a clean single-threaded server that has ``preload`` imported
    (no fork of a process whose ITK / BLAS threads are running, no re-import per worker);
    spawn where forkserver does not exist."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([preload])
    return ctx


def _init_worker(threads: int) -> None:
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)


@contextmanager
def case_pool(workers: int, n_cases: int, preload: str) -> Iterator[Executor | None]:
    """A process pool of ``workers`` (None, i.e. this process, for one worker or case)."""
    if workers <= 1 or n_cases <= 1:
        yield None
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    pool = ProcessPoolExecutor(
        max_workers=min(workers, n_cases),
        mp_context=mp_context(preload),
        initializer=_init_worker,
        initargs=(threads,),
    )
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_jobs(
    job: Callable[..., Outcome],
    arglist: Sequence[tuple],
    pool: Executor | None,
    desc: str,
    progress: bool,
) -> Iterator[tuple[int, Outcome]]:
    """Run ``job(*args)`` for each args (in ``pool`` or in this process), yielding as they end."""
    from tqdm import tqdm

    with tqdm(
        total=len(arglist),
        desc=desc,
        unit="case",
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
    ) as bar:
        if pool is None:
            for i, args in enumerate(arglist):
                out = job(*args)
                bar.update()
                yield i, out
            return
        futures = {pool.submit(job, *args): i for i, args in enumerate(arglist)}
        try:
            for fut in as_completed(futures):
                try:
                    out = fut.result()
                except Exception as err:  # BrokenProcessPool: a worker died (e.g. out of memory)
                    out = Outcome(
                        reason=f"worker process died ({type(err).__name__}: {err}); "
                        "finished cases are cached, rerun to continue"
                    )
                bar.update()
                yield futures[fut], out
        finally:
            for fut in futures:
                fut.cancel()
