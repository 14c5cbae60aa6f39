"""Clinical covariates encoded from training cases only, and site indices.

Numeric covariates are standardised with the training mean and standard deviation;
categorical ones are one-hot over the training levels (an unseen level is all zeros). A
missing value stays NaN: the model's covariate encoder turns it into 0 plus a missing
indicator. The encoding is a plain dict, saved in the bundle for ``predict``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from deepradiomics.dataset.arrays import ArrayData, CohortArrays


def fit_encoding(table: pd.DataFrame, numeric: list[str], categorical: list[str]) -> dict[str, Any]:
    """Means/stds of numeric columns and the levels of categorical ones, from ``table``."""
    enc: dict[str, Any] = {"numeric": {}, "categorical": {}}
    for col in numeric:
        v = pd.to_numeric(table[col], errors="coerce").to_numpy(dtype=float)
        mean = float(np.nanmean(v)) if np.isfinite(v).any() else 0.0
        std = float(np.nanstd(v)) if np.isfinite(v).sum() > 1 else 1.0
        enc["numeric"][col] = {"mean": mean, "std": std if std > 0 else 1.0}
    for col in categorical:
        levels = sorted({str(x) for x in table[col] if isinstance(x, str) and x != ""})
        enc["categorical"][col] = levels
    return enc


def encoding_width(enc: dict[str, Any]) -> int:
    return len(enc["numeric"]) + sum(len(levels) for levels in enc["categorical"].values())


def apply_encoding(table: pd.DataFrame, enc: dict[str, Any]) -> np.ndarray:
    """``[N, width]`` float32 with NaN for missing values."""
    cols = []
    for col, s in enc["numeric"].items():
        v = pd.to_numeric(table[col], errors="coerce").to_numpy(dtype=float)
        cols.append((v - s["mean"]) / s["std"])
    for col, levels in enc["categorical"].items():
        raw = table[col].fillna("").astype(str).to_numpy()
        missing = raw == ""
        for level in levels:
            cols.append(np.where(missing, np.nan, (raw == level).astype(float)))
    if not cols:
        return np.zeros((len(table), 0), dtype=np.float32)
    return np.column_stack(cols).astype(np.float32)


def site_index(sites: np.ndarray | None, names: list[str]) -> torch.Tensor | None:
    if sites is None:
        return None
    lookup = {s: i for i, s in enumerate(names)}
    return torch.tensor([lookup[s] for s in sites], dtype=torch.long)


def encode_fold(
    arrays: CohortArrays, train_index: np.ndarray
) -> tuple[ArrayData, dict[str, Any] | None]:
    """All cases with covariates encoded from the ``train_index`` rows, and the encoding."""
    data = replace(arrays.data, sites=site_index(arrays.sites, arrays.site_names))
    table = arrays.covariates
    if table is None or table.shape[1] == 0:
        return data, None
    numeric = [c for c in table.columns if c in arrays.numeric_covariates]
    categorical = [c for c in table.columns if c not in numeric]
    enc = fit_encoding(table.iloc[train_index], numeric, categorical)
    return replace(data, covariates=torch.from_numpy(apply_encoding(table, enc))), enc
