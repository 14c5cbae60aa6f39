"""One case through the plan: read, place the crop grid, resample, normalise.

``apply_plan(case, plan)`` is what training (through the cache) and ``predict`` (directly,
with the plan saved in the bundle) both call, so a new case is prepared exactly like the
training cases. Every modality is resampled onto ONE grid: the plan's shape and spacing,
in the first modality's axes, centred on the mask's bounding box (or on the first
modality's centre for whole-volume plans) and snapped to that modality's voxel lattice
(a shift under half a voxel, so unchanged spacings copy voxels exactly). Only that grid's
voxels are interpolated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk

from deepradiomics.cohort.manifest import Case
from deepradiomics.errors import UserError
from deepradiomics.io.readers import spacing_zyx
from deepradiomics.preprocess.crop import Grid, MaskBox, centred_grid, image_centre, mask_box
from deepradiomics.preprocess.normalise import foreground_threshold, scale_window, zscore
from deepradiomics.preprocess.plan import ModalityPlan, Plan
from deepradiomics.preprocess.resample import mask_on, resample_mask, resample_onto
from deepradiomics.preprocess.source import read_case


@dataclass
class PreparedCase:
    """``image``: float32 ``[C, D, H, W]`` (channels in plan order); ``mask``: uint8
    ``[D, H, W]`` (0/1) or ``None``; ``meta``: JSON-safe geometry and normalisation facts."""

    image: np.ndarray
    mask: np.ndarray | None
    meta: dict[str, Any] = field(default_factory=dict)


def apply_plan(case: Case, plan: Plan) -> PreparedCase:
    """Read ``case``'s files and prepare them with ``plan``; ``UserError`` names the case."""
    images, mask = read_case(case, {m.name: (m.kind, m.suv) for m in plan.modalities})
    return prepare_images(case.case_id, images, mask, plan)


def _crop_centre(
    case_id: str, reference: sitk.Image, box: MaskBox | None, mask: sitk.Image | None, plan: Plan
) -> tuple[float, float, float]:
    if not plan.centre_on_mask:
        return image_centre(reference)
    if mask is None:
        raise UserError(
            f"case {case_id}: no mask, but the plan crops around the mask "
            "(preprocess.crop_mm: none prepares whole volumes)"
        )
    if box is None:
        raise UserError(f"case {case_id}: the mask is empty (no non-zero voxel)")
    index = np.asarray(reference.TransformPhysicalPointToContinuousIndex(box.centre))
    if np.any(index < -0.5) or np.any(index > np.asarray(reference.GetSize()) - 0.5):
        raise UserError(
            f"case {case_id}: the mask's centre lies outside the {plan.channels[0]} image "
            "(mask and image do not share physical space)"
        )
    return box.centre


def _truncated(box: MaskBox, grid: Grid) -> bool:
    """Whether the mask's bounding box reaches outside the grid."""
    direction = np.asarray(grid.direction).reshape(3, 3)
    offset_zyx = np.abs(direction.T @ (np.asarray(box.centre) - np.asarray(grid.centre)))[::-1]
    reach = offset_zyx + np.asarray(box.extent_mm) / 2
    return bool(np.any(reach > np.asarray(grid.extent_mm) / 2 + 1e-3))


def _zscore_stats(
    case_id: str, name: str, img: sitk.Image, mask: sitk.Image | None, region: str
) -> tuple[float, float]:
    """Mean and std of the MR volume inside ``region``, at its own resolution."""
    arr = sitk.GetArrayViewFromImage(img)
    if region == "volume":
        values = arr
    elif region == "mask":
        if mask is None:
            raise UserError(f"case {case_id}: {name} z-score region 'mask' needs a mask")
        values = arr[mask_on(mask, img)]
    else:  # body: foreground, plus the ROI in case it is darker than the threshold
        inside = arr > foreground_threshold(img, "mr")
        if mask is not None:
            inside |= mask_on(mask, img)
        values = arr[inside]
    if values.size == 0:
        raise UserError(f"case {case_id}: {name} has no voxel in its z-score region '{region}'")
    return float(np.mean(values, dtype=np.float64)), float(np.std(values, dtype=np.float64))


def _channel(
    case_id: str, mp: ModalityPlan, img: sitk.Image, mask: sitk.Image | None, grid: Grid, plan: Plan
) -> tuple[np.ndarray, dict[str, float]]:
    fill = mp.fill if mp.fill is not None else float(np.min(sitk.GetArrayViewFromImage(img)))
    arr = resample_onto(img, grid, plan.interpolation, fill)
    if mp.kind == "mr":
        mean, std = _zscore_stats(case_id, mp.name, img, mask, mp.zscore_region or "body")
        return zscore(arr, mean, std), {"mean": mean, "std": std, "fill": fill}
    if mp.window is None:
        raise UserError(f"plan: channel {mp.name} ({mp.kind}) has no intensity window")
    return scale_window(arr, mp.window[0], mp.window[1], plan.window_range), {
        "low": mp.window[0],
        "high": mp.window[1],
    }


def prepare_images(
    case_id: str, images: Mapping[str, sitk.Image], mask: sitk.Image | None, plan: Plan
) -> PreparedCase:
    """Prepare images already in memory (``images`` keyed by modality name)."""
    reference = images[plan.channels[0]]
    box = mask_box(mask) if mask is not None else None
    centre = _crop_centre(case_id, reference, box, mask, plan)
    grid = centred_grid(reference, centre, plan.spacing, plan.shape, snap=True)
    channels, norm = [], {}
    for mp in plan.modalities:
        arr, norm[mp.name] = _channel(case_id, mp, images[mp.name], mask, grid, plan)
        channels.append(arr)
    mask_arr = resample_mask(mask, grid) if mask is not None else None
    meta = {
        "case_id": case_id,
        "channels": plan.channels,
        "spacing": list(grid.spacing),
        "shape": list(grid.shape),
        "origin": list(grid.origin),
        "direction": list(grid.direction),
        "centre": list(grid.centre),
        "mask_centre": None if box is None else list(box.centre),
        "centred_on": "mask" if plan.centre_on_mask else "image",
        "original_spacing": {m: list(spacing_zyx(img)) for m, img in images.items()},
        "original_size": {m: list(img.GetSize()[::-1]) for m, img in images.items()},
        "mask_voxels": None if mask_arr is None else int(mask_arr.sum()),
        "mask_truncated": None if box is None else _truncated(box, grid),
        "normalisation": norm,
    }
    image = np.stack(channels).astype(np.float32, copy=False)
    return PreparedCase(image=image, mask=mask_arr, meta=meta)


def with_mask_channel(image: np.ndarray, mask: np.ndarray | None, what: str) -> np.ndarray:
    """``image`` (``[C, D, H, W]`` or ``[N, C, D, H, W]``) with the 0/1 mask appended as its
    last channel (``preprocess.mask_channel``); ``what`` names the case(s) when there is no mask."""
    if mask is None:
        raise UserError(f"{what}: preprocess.mask_channel needs a lesion mask and there is none")
    axis = image.ndim - 4
    return np.concatenate([image, np.expand_dims(mask.astype(image.dtype), axis)], axis=axis)


def model_input(prepared: PreparedCase, mask_channel: bool, what: str) -> np.ndarray:
    """What the network reads for a prepared case: its image, with the mask appended as the
    last channel when ``preprocess.mask_channel`` is set (predict and explain alike)."""
    if mask_channel:
        return with_mask_channel(prepared.image, prepared.mask, what)
    return prepared.image
