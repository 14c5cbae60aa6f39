"""Agreement of repeated measurements: the intraclass correlation coefficient.

``icc`` is ICC(2,1) in Shrout & Fleiss (1979) terms, ICC(A,1) in McGraw & Wong (1996): two-way
random effects, absolute agreement, single measurement, from the two-way ANOVA mean squares.
It is the coefficient radiomics robustness studies report for features recomputed under
mask perturbations (Zwanenburg et al. 2019). Written here because it is a few lines of
vectorised algebra over many features at once; the test checks it against Shrout & Fleiss's
worked example.
"""

from __future__ import annotations

import numpy as np


def icc_columns(values: np.ndarray) -> np.ndarray:
    """ICC(2,1) of each column of ``values [n subjects, k conditions, F measurements]``
    (one number per measurement, e.g. per feature); ``nan`` where a measurement has no
    variance or a subject misses a value."""
    y = np.asarray(values, dtype=float)
    if y.ndim == 2:
        y = y[:, :, None]
    if y.ndim != 3 or y.shape[0] < 2 or y.shape[1] < 2:
        raise ValueError(f"need [subjects >= 2, conditions >= 2, measurements], got {y.shape}")
    n, k, _ = y.shape
    grand = y.mean(axis=(0, 1))
    rows = y.mean(axis=1)  # [n, F]
    cols = y.mean(axis=0)  # [k, F]
    ss_rows = k * ((rows - grand) ** 2).sum(axis=0)
    ss_cols = n * ((cols - grand) ** 2).sum(axis=0)
    ss_total = ((y - grand) ** 2).sum(axis=(0, 1))
    ms_rows = ss_rows / (n - 1)
    ms_cols = ss_cols / (k - 1)
    ms_error = (ss_total - ss_rows - ss_cols) / ((n - 1) * (k - 1))
    denominator = ms_rows + (k - 1) * ms_error + k * (ms_cols - ms_error) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (ms_rows - ms_error) / denominator
    return np.where(np.isfinite(out) & (denominator > 0), out, np.nan)


def icc(ratings: np.ndarray) -> float:
    """ICC(2,1) of ``ratings [n subjects, k conditions]``."""
    return float(icc_columns(np.asarray(ratings, dtype=float)[:, :, None])[0])
