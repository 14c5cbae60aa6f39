"""Carry a map from the network input back into the case's original image geometry.

The network input is the case resampled onto a crop grid (``preprocess.crop.Grid``: origin,
spacing, shape and direction stored in the prepared case's ``meta``). The inverse is one
SimpleITK resample of the map, placed on that grid, onto the original image's grid: same
size, spacing, origin and direction as the CT / PET, so it overlays in 3D Slicer or ITK-SNAP.
Voxels outside the crop get 0 (no attribution was computed there); linear interpolation.
A probability map becomes a mask there (``mask_to_original``) by resampling the probability
linearly and thresholding at 0.5: a smooth outline rather than the staircase of resampling
the thresholded mask.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import SimpleITK as sitk

from deepradiomics.errors import UserError


def grid_image(values: np.ndarray, meta: Mapping[str, Any]) -> sitk.Image:
    """``values [D, H, W]`` on the crop grid described by a prepared case's ``meta``."""
    shape = tuple(int(n) for n in meta["shape"])
    if tuple(values.shape) != shape:
        raise UserError(
            f"case {meta.get('case_id')}: map shape {tuple(values.shape)} differs "
            f"from the network input's {shape}"
        )
    img = sitk.GetImageFromArray(np.asarray(values, dtype=np.float32))
    img.SetOrigin(tuple(float(v) for v in meta["origin"]))
    img.SetSpacing(tuple(float(s) for s in reversed(meta["spacing"])))  # (z, y, x) -> (x, y, z)
    img.SetDirection(tuple(float(v) for v in meta["direction"]))
    return img


def to_original(values: np.ndarray, meta: Mapping[str, Any], reference: sitk.Image) -> sitk.Image:
    """The map resampled onto ``reference``'s grid (the case's original image)."""
    return sitk.Resample(
        grid_image(values, meta),
        reference,
        sitk.Transform(),
        sitk.sitkLinear,
        0.0,
        sitk.sitkFloat32,
    )


def mask_to_original(
    foreground: np.ndarray, meta: Mapping[str, Any], reference: sitk.Image
) -> sitk.Image:
    """A foreground probability map on the crop grid as a uint8 0/1 mask on ``reference``'s
    grid (0 outside the crop)."""
    mask = sitk.Cast(to_original(foreground, meta, reference) >= 0.5, sitk.sitkUInt8)
    mask.CopyInformation(reference)
    return mask


def orthogonal_planes(
    shape: tuple[int, ...], focus: np.ndarray | None, spacing: tuple[float, float, float]
) -> list[tuple[str, Any, float]]:
    """``(name, take, aspect)`` for the axial, coronal and sagittal planes through the centre
    of ``focus`` (a 0/1 volume; the volume's centre when it is None or empty): ``take(v)`` cuts
    that plane out of a volume of ``shape``, ``aspect`` is its pixel height over width in mm."""
    if focus is not None and focus.any():
        centre = [int(round(c)) for c in np.argwhere(focus).mean(axis=0)]
    else:
        centre = [n // 2 for n in shape]
    planes = [("axial", 0, (1, 2)), ("coronal", 1, (0, 2)), ("sagittal", 2, (0, 1))]
    return [
        (
            name,
            lambda v, axis=axis: np.take(v, centre[axis], axis=axis),
            spacing[rows] / spacing[cols],
        )
        for name, axis, (rows, cols) in planes
    ]
