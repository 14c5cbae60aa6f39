"""Resampling onto a ``crop.Grid`` with SimpleITK (the fastest option measured, see
``bench/preprocess_results.md``): images with linear or B-spline interpolation, masks
with nearest neighbour. Voxels outside the source volume take the given background value,
so resampling onto a crop grid also pads at the borders.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from deepradiomics.preprocess.crop import Grid, whole_volume_grid

INTERPOLATORS = {
    "linear": sitk.sitkLinear,
    "bspline": sitk.sitkBSpline,  # cubic B-spline
    "nearest": sitk.sitkNearestNeighbor,
}


def resample_image(
    img: sitk.Image, grid: Grid, interpolation: str = "linear", fill: float = 0.0
) -> sitk.Image:
    """``img`` resampled onto ``grid`` as float32; outside the source volume: ``fill``."""
    return sitk.Resample(
        img,
        grid.size_xyz,
        sitk.Transform(),
        INTERPOLATORS[interpolation],
        grid.origin,
        grid.spacing_xyz,
        grid.direction,
        float(fill),
        sitk.sitkFloat32,
    )


def resample_onto(
    img: sitk.Image, grid: Grid, interpolation: str = "linear", fill: float = 0.0
) -> np.ndarray:
    """``img`` on ``grid`` as a float32 ``[z, y, x]`` array."""
    return sitk.GetArrayFromImage(resample_image(img, grid, interpolation, fill))


def resample_mask(mask: sitk.Image, grid: Grid) -> np.ndarray:
    """Binary mask (any non-zero label is 1) on ``grid``, nearest neighbour, uint8 ``[z, y, x]``."""
    # nearest neighbour in the mask's own type, binarised on the (small) grid afterwards
    out = sitk.Resample(
        mask,
        grid.size_xyz,
        sitk.Transform(),
        sitk.sitkNearestNeighbor,
        grid.origin,
        grid.spacing_xyz,
        grid.direction,
        0,
    )
    return (sitk.GetArrayViewFromImage(out) != 0).astype(np.uint8)


def resample_to_spacing(
    img: sitk.Image,
    spacing: tuple[float, float, float],
    interpolation: str = "linear",
    fill: float = 0.0,
) -> sitk.Image:
    """The whole volume at a new (z, y, x) spacing (the full-volume path; crops use grids)."""
    return resample_image(img, whole_volume_grid(img, spacing), interpolation, fill)


def mask_on(mask: sitk.Image, img: sitk.Image) -> np.ndarray:
    """Boolean ``[z, y, x]`` mask on ``img``'s own grid (nearest neighbour when grids differ)."""
    same = (
        mask.GetSize() == img.GetSize()
        and np.allclose(mask.GetSpacing(), img.GetSpacing(), rtol=1e-4, atol=1e-4)
        and np.allclose(mask.GetOrigin(), img.GetOrigin(), rtol=0, atol=1e-3)
        and np.allclose(mask.GetDirection(), img.GetDirection(), atol=1e-4)
    )
    if not same:
        mask = sitk.Resample(mask, img, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    return sitk.GetArrayViewFromImage(mask) != 0
