"""Segmentation overlap and surface distance of binary masks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage


def _masks(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, t = np.asarray(pred).astype(bool), np.asarray(true).astype(bool)
    if p.shape != t.shape:
        raise ValueError(f"masks differ in shape: prediction {p.shape}, truth {t.shape}")
    return p, t


def dice(pred: np.ndarray, true: np.ndarray) -> float:
    """Dice overlap 2|P & T| / (|P| + |T|) of two binary masks; 1 when both are empty."""
    p, t = _masks(pred, true)
    total = p.sum() + t.sum()
    return 1.0 if total == 0 else float(2 * np.logical_and(p, t).sum() / total)


def mean_dice(true_masks: np.ndarray, foreground: np.ndarray) -> float:
    """Mean Dice over cases of ``foreground >= 0.5`` (probability maps ``[N, ...]``) against
    ``true_masks [N, ...]``: the segmentation headline metric (early stopping, summaries)."""
    t, f = np.asarray(true_masks), np.asarray(foreground)
    if t.shape != f.shape:
        raise ValueError(f"masks differ in shape: prediction {f.shape}, truth {t.shape}")
    return float(np.mean([dice(p >= 0.5, m) for p, m in zip(f, t, strict=True)]))


def volume_ml(mask: np.ndarray, spacing: Sequence[float]) -> float:
    """Volume of a binary mask in millilitres (``spacing`` in mm per array axis)."""
    return float(np.asarray(mask).astype(bool).sum() * np.prod(spacing) / 1000.0)


def _surface(mask: np.ndarray) -> np.ndarray:
    """Boundary voxels: the mask minus its erosion (outside the array counts as background)."""
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def hd95(pred: np.ndarray, true: np.ndarray, spacing: Sequence[float] | None = None) -> float:
    """95th-percentile symmetric Hausdorff distance between the mask surfaces, in the units of
    ``spacing`` (per array axis; default 1). ``nan`` if either mask is empty.

    Same definition as MONAI's ``compute_hausdorff_distance(percentile=95)``: the larger of
    the two directed 95th percentiles of surface-to-surface distances. Computed with scipy's
    exact Euclidean distance transform on the bounding box of both masks.
    """
    p, t = _masks(pred, true)
    if not p.any() or not t.any():
        return float("nan")
    sampling = np.ones(p.ndim) if spacing is None else np.asarray(spacing, dtype=float)
    if sampling.shape != (p.ndim,):
        raise ValueError(f"spacing must have {p.ndim} values, got {sampling.tolist()}")
    idx = np.argwhere(p | t)
    box = tuple(slice(lo, hi + 1) for lo, hi in zip(idx.min(axis=0), idx.max(axis=0), strict=False))
    p_edge, t_edge = _surface(p[box]), _surface(t[box])  # nothing of either mask lies outside
    to_true = ndimage.distance_transform_edt(~t_edge, sampling=sampling)[p_edge]
    to_pred = ndimage.distance_transform_edt(~p_edge, sampling=sampling)[t_edge]
    return float(max(np.percentile(to_true, 95), np.percentile(to_pred, 95)))
