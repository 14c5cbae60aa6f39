"""Speed of the patient bootstrap and the metric panels (1000 resamples by default).

    .venv/bin/python bench/evaluate_bench.py [--n 300] [--boot 1000] [--repeats 3]

Synthetic data, 2 cases per patient. Prints the median wall time over ``--repeats`` runs of:
the AUC CI vectorised (weighted kernel) and looped (one AUC call per resample, the naive
way, with our ``roc_auc`` and with scikit-learn's), the whole binary / survival panels, and a 5-fold patient-grouped split.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from sklearn.metrics import roc_auc_score

from deepradiomics.evaluate import metrics as M
from deepradiomics.evaluate.bootstrap import bootstrap_ci
from deepradiomics.evaluate.panel import metric_panel
from deepradiomics.evaluate.splits import kfold_split


def _median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--boot", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n, boot, reps = args.n, args.boot, args.repeats
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n).astype(float)
    p = 1 / (1 + np.exp(-(2 * y - 1 + rng.normal(0, 1.2, n))))
    patients = np.arange(n) // 2
    log_risk = rng.normal(0, 1, n)
    t_event = rng.exponential(500 * np.exp(-log_risk))
    t_cens = rng.uniform(100, 1500, n)
    time_, event = np.minimum(t_event, t_cens), (t_event <= t_cens).astype(int)
    baseline = M.BreslowBaseline().fit(log_risk, time_, event)

    def auc_ci(batch: bool) -> object:
        return bootstrap_ci(
            lambda i: M.roc_auc(y[i], p[i]),
            n,
            groups=patients,
            n_boot=boot,
            seed=0,
            batch_statistic=(lambda w: M.roc_auc_batch(y, p, w)) if batch else None,
        )

    rows = [
        ("AUC CI, vectorised", lambda: auc_ci(True)),
        ("AUC CI, looped (our roc_auc per resample)", lambda: auc_ci(False)),
        (
            "AUC CI, looped sklearn roc_auc_score",
            lambda: bootstrap_ci(
                lambda i: roc_auc_score(y[i], p[i]), n, groups=patients, n_boot=boot, seed=0
            ),
        ),
        (
            "binary panel (9 metrics)",
            lambda: metric_panel("binary", y, p, groups=patients, n_boot=boot),
        ),
        (
            "survival panel (C, Uno C, td-AUC x3, IBS)",
            lambda: metric_panel(
                "survival",
                y_score=log_risk,
                time=time_,
                event=event,
                baseline=baseline,
                groups=patients,
                n_boot=boot,
            ),
        ),
        (
            "5-fold grouped split + inner val",
            lambda: kfold_split([f"c{i}" for i in range(n)], patients, y, n_folds=5),
        ),
    ]
    print(f"n = {n} cases ({n // 2} patients), {boot} resamples, median of {reps}")
    for name, fn in rows:
        print(f"{name:45s} {_median_time(fn, reps):8.3f} s")


if __name__ == "__main__":
    main()
