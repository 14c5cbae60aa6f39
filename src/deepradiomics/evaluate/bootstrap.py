"""Bootstrap confidence intervals that resample PATIENTS, not rows.

All cases of a drawn patient enter the resample together (as often as the patient was
drawn), so several scans of one patient do not pass for independent evidence. A resample
is a vector of case counts; a statistic is evaluated either on the resampled indices
(``statistic(idx) -> float``) or, vectorised, on a ``(B, n)`` matrix of counts
(``batch_statistic(counts) -> (B,)``; see the ``*_batch`` kernels in ``evaluate.metrics``).
Resamples where the statistic is undefined (``nan``, or a ``ValueError`` such as one class
only for an AUC) are skipped and counted.

Intervals: percentile (default) or BCa (bias-corrected and accelerated, with the
acceleration from a leave-one-patient-out jackknife). Same seed, same interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

Method = Literal["percentile", "bca"]
_CHUNK = 256  # resamples evaluated per vectorised call (bounds memory at 256 x n counts)


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its bootstrap interval (``nan`` when undefined or not computed)."""

    value: float
    ci_low: float
    ci_high: float
    n: int
    n_patients: int
    n_boot: int = 0
    n_skipped: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The metrics.json shape; ``nan`` becomes ``None`` so the JSON stays standard."""
        clean = lambda v: None if v is None or not math.isfinite(v) else float(v)
        return {
            "value": clean(self.value),
            "ci_low": clean(self.ci_low),
            "ci_high": clean(self.ci_high),
            "n": self.n,
            "n_patients": self.n_patients,
            "n_boot": self.n_boot,
            "n_skipped": self.n_skipped,
        }


def patient_codes(groups: Sequence | None, n: int) -> tuple[np.ndarray, int]:
    """Integer patient code of each case, numbered in order of first appearance (each case its
    own patient when ``groups`` is None, the same as all-distinct groups)."""
    if groups is None:
        return np.arange(n), n
    g = np.asarray(groups)
    if g.shape != (n,):
        raise ValueError(f"groups must have one entry per case ({n}), got shape {g.shape}")
    codes, uniques = pd.factorize(g.astype(str))  # codes in order of first appearance
    return codes, len(uniques)


def resample_counts(
    groups: Sequence | None, n: int, n_boot: int, seed: int = 0
) -> Iterator[np.ndarray]:
    """Yield ``(chunk, n)`` integer matrices: how often each case is in each resample.

    Patients are drawn with replacement (multinomial counts over patients, ``n_patients``
    draws); each case inherits its patient's count. Deterministic for a given seed.
    """
    codes, n_patients = patient_codes(groups, n)
    rng = np.random.default_rng(seed)
    uniform = np.full(n_patients, 1.0 / n_patients)
    for start in range(0, n_boot, _CHUNK):
        size = min(_CHUNK, n_boot - start)
        yield rng.multinomial(n_patients, uniform, size=size)[:, codes]


def stratified_resample_counts(
    groups: Sequence | None, strata: Sequence, n: int, n_boot: int, seed: int = 0
) -> Iterator[np.ndarray]:
    """:func:`resample_counts` drawing the patients of each stratum separately, so every
    resample keeps each stratum's number of patients (e.g. subgroups compared with each other).

    A patient belongs to the stratum of its first case. Deterministic for a given seed.
    """
    codes, n_patients = patient_codes(groups, n)
    labels = np.asarray(strata).astype(str)
    if labels.shape != (n,):
        raise ValueError(f"strata must have one entry per case ({n}), got shape {labels.shape}")
    _, first_case = np.unique(codes, return_index=True)
    patient_stratum = labels[first_case]
    members = [np.flatnonzero(patient_stratum == s) for s in np.unique(patient_stratum)]
    rng = np.random.default_rng(seed)
    for start in range(0, n_boot, _CHUNK):
        size = min(_CHUNK, n_boot - start)
        counts = np.zeros((size, n_patients), dtype=np.int64)
        for patients in members:
            m = len(patients)
            counts[:, patients] = rng.multinomial(m, np.full(m, 1.0 / m), size=size)
        yield counts[:, codes]


def _evaluate(
    statistic: Callable[[np.ndarray], Any], idx: np.ndarray, k: int | None = None
) -> np.ndarray:
    """The statistic as a 1-D float array; all ``nan`` when it raises on degenerate data."""
    try:
        return np.atleast_1d(np.asarray(statistic(idx), dtype=float))
    except (ValueError, ZeroDivisionError, FloatingPointError):
        return np.full(1 if k is None else k, np.nan)


def bootstrap_distribution(
    statistic: Callable[[np.ndarray], Any],
    n: int,
    *,
    groups: Sequence | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    batch_statistic: Callable[[np.ndarray], np.ndarray] | None = None,
    k: int = 1,
) -> np.ndarray:
    """The resampled values, shape ``(n_boot, k)`` (``nan`` where undefined).

    ``statistic`` returns a float or ``k`` floats; ``batch_statistic(counts)`` returns
    ``(B,)`` or ``(B, k)``.
    """
    out = [np.empty((0, k))]
    cases = np.arange(n)
    for counts in resample_counts(groups, n, n_boot, seed):
        if batch_statistic is not None:
            out.append(np.asarray(batch_statistic(counts), dtype=float).reshape(len(counts), k))
        else:
            out.append(np.stack([_evaluate(statistic, np.repeat(cases, row), k) for row in counts]))
    return np.concatenate(out)


def interval(
    boot: np.ndarray,
    value: float,
    level: float = 0.95,
    method: Method = "percentile",
    jackknife: np.ndarray | None = None,
) -> tuple[float, float]:
    """Percentile or BCa interval from the finite values of a 1-D bootstrap sample.

    BCa (Efron 1987): bias correction ``z0`` from the share of resamples below the estimate,
    acceleration from the jackknife values; falls back to the percentile interval when either
    is undefined (e.g. all resamples on one side).
    """
    boot = boot[np.isfinite(boot)]
    if len(boot) == 0 or not math.isfinite(value):
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    probs = np.array([alpha, 1 - alpha])
    if method == "bca":
        if jackknife is None:
            raise ValueError("BCa needs the jackknife values")
        jackknife = jackknife[np.isfinite(jackknife)]
        below = (np.sum(boot < value) + np.sum(boot <= value)) / (2 * len(boot))
        z0 = ndtri(below)
        dev = jackknife.mean() - jackknife if len(jackknife) else np.zeros(1)
        spread = np.sum(dev**2)
        accel = np.sum(dev**3) / (6 * spread**1.5) if spread > 0 else 0.0
        z = ndtri(probs)
        adjusted = ndtr(z0 + (z0 + z) / (1 - accel * (z0 + z)))
        if np.isfinite(adjusted).all():
            probs = adjusted
    elif method != "percentile":
        raise ValueError(f"unknown interval method {method!r} (expected 'percentile' or 'bca')")
    lo, hi = np.quantile(boot, probs)
    return float(lo), float(hi)


def bootstrap_with_distribution(
    statistic: Callable[[np.ndarray], Any],
    n: int,
    *,
    groups: Sequence | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    method: Method = "percentile",
    batch_statistic: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[list[Estimate], np.ndarray]:
    """One :class:`Estimate` per output of ``statistic``, and the ``(n_boot, k)`` resampled
    values."""
    codes, n_patients = patient_codes(groups, n)
    cases = np.arange(n)
    value = _evaluate(statistic, cases)
    k = len(value)
    if n_boot <= 0 or not np.isfinite(value).any():
        nan = float("nan")
        return [Estimate(float(v), nan, nan, n, n_patients) for v in value], np.empty((0, k))
    boot = bootstrap_distribution(
        statistic, n, groups=groups, n_boot=n_boot, seed=seed, batch_statistic=batch_statistic, k=k
    )
    jack = None
    if method == "bca":  # leave-one-patient-out values for the acceleration
        jack = np.stack([_evaluate(statistic, cases[codes != p], k) for p in range(n_patients)])
    estimates = []
    for j in range(k):
        finite = np.isfinite(boot[:, j])
        lo, hi = interval(
            boot[:, j], float(value[j]), level, method, None if jack is None else jack[:, j]
        )
        estimates.append(
            Estimate(
                float(value[j]), lo, hi, n, n_patients, int(finite.sum()), int((~finite).sum())
            )
        )
    return estimates, boot


def bootstrap_ci(
    statistic: Callable[[np.ndarray], float],
    n: int,
    *,
    groups: Sequence | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    method: Method = "percentile",
    batch_statistic: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Estimate:
    """Point estimate ``statistic(all cases)`` and its patient-bootstrap interval.

    ``statistic(idx)`` evaluates the metric on the cases ``idx`` (with repeats);
    ``batch_statistic(counts)``, when given, does the same for a ``(B, n)`` count matrix
    at once and must agree with ``statistic``. ``n_boot = 0`` gives the point estimate only.
    """
    return bootstrap_with_distribution(
        statistic,
        n,
        groups=groups,
        n_boot=n_boot,
        seed=seed,
        level=level,
        method=method,
        batch_statistic=batch_statistic,
    )[0][0]


def bootstrap_estimates(
    statistic: Callable[[np.ndarray], Sequence[float]],
    n: int,
    **kwargs: Any,
) -> list[Estimate]:
    """:func:`bootstrap_ci` for a statistic returning several values at once (same resamples,
    one :class:`Estimate` each), e.g. the time-dependent AUC at several times."""
    return bootstrap_with_distribution(statistic, n, **kwargs)[0]
