"""Modality intensity normalisation: CT windows, MR z-score, PET SUV clipping.

All functions are pure array maths on float32 arrays (no I/O), so the same numbers come
out in training and in ``predict``. Which parameters a cohort uses is decided once by
``plan.make_plan``; per-case statistics (MR mean/std, background value) by ``case``.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from deepradiomics.errors import UserError

# Named CT windows as (width, level) in HU (radiology display conventions).
CT_WINDOWS: dict[str, tuple[float, float]] = {
    "soft_tissue": (400.0, 40.0),
    "mediastinum": (350.0, 50.0),
    "abdomen": (400.0, 50.0),
    "liver": (150.0, 30.0),
    "lung": (1500.0, -600.0),
    "bone": (1800.0, 400.0),
    "brain": (80.0, 40.0),
}
CT_BACKGROUND_HU = -1024.0  # air: what lies outside a CT field of view
CT_FOREGROUND_HU = -500.0  # body (soft tissue, bone) vs air / lung parenchyma
PET_BACKGROUND = 0.0
PERCENTILES = (0.5, 50.0, 99.5)
_MAX_STAT_VOXELS = 2_000_000  # percentiles on a strided subsample above this (deterministic)


def window_bounds(name: str, source: str = "window") -> tuple[float, float]:
    """``(low, high)`` HU of a named window; ``UserError`` listing the known names."""
    if name not in CT_WINDOWS:
        known = ", ".join(sorted(CT_WINDOWS))
        raise UserError(
            f"{source}: unknown CT window '{name}' (known: {known}, 'percentile', or [low, high])"
        )
    width, level = CT_WINDOWS[name]
    return level - width / 2.0, level + width / 2.0


def scale_window(
    arr: np.ndarray, low: float, high: float, out_range: tuple[float, float] = (0.0, 1.0)
) -> np.ndarray:
    """Clip to ``[low, high]`` and map linearly onto ``out_range`` (float32)."""
    a, b = out_range
    unit = (np.clip(arr, low, high) - low) / (high - low)
    return (a + (b - a) * unit).astype(np.float32, copy=False)


def zscore(arr: np.ndarray, mean: float, std: float) -> np.ndarray:
    """``(arr - mean) / std``; a constant region (std 0) only gets centred."""
    return ((arr - mean) / (std if std > 1e-8 else 1.0)).astype(np.float32, copy=False)


def foreground_threshold(img: sitk.Image, kind: str) -> float:
    """Intensity above which a voxel is body rather than background.

    CT: a fixed -500 HU (excludes air and most lung). MR and PET: Otsu's threshold on the
    whole volume, as ANTs/SimpleITK N4 examples do to find the body.
    """
    if kind == "ct":
        return CT_FOREGROUND_HU
    otsu = sitk.OtsuThresholdImageFilter()
    otsu.SetInsideValue(0)
    otsu.SetOutsideValue(1)
    otsu.Execute(sitk.Cast(img, sitk.sitkFloat32))
    return float(otsu.GetThreshold())


def intensity_stats(values: np.ndarray) -> dict[str, float] | None:
    """Percentiles 0.5 / 50 / 99.5, mean, std and count of a set of voxel values."""
    values = np.asarray(values).ravel()
    if values.size == 0:
        return None
    sample = values[:: -(-values.size // _MAX_STAT_VOXELS)].astype(np.float64)  # stride >= 1
    p_lo, p_mid, p_hi = np.percentile(sample, PERCENTILES)
    return {
        "p0_5": float(p_lo),
        "p50": float(p_mid),
        "p99_5": float(p_hi),
        "mean": float(values.mean(dtype=np.float64)),
        "std": float(values.std(dtype=np.float64)),
        "voxels": int(values.size),
    }


def to_physical(
    arr: np.ndarray, norm: dict[str, float], out_range: tuple[float, float] = (0.0, 1.0)
) -> np.ndarray:
    """Undo a channel's normalisation (``meta["normalisation"][channel]`` of a prepared case):
    back to HU / SUV for windowed channels (values beyond the window stay at its bounds),
    back to scanner units for z-scored MR."""
    if "mean" in norm:
        return (arr * (norm["std"] if norm["std"] > 1e-8 else 1.0) + norm["mean"]).astype(
            np.float32
        )
    a, b = out_range
    return (norm["low"] + (arr - a) / (b - a) * (norm["high"] - norm["low"])).astype(np.float32)
