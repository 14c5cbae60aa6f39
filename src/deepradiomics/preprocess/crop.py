"""Where the output voxels lie: a fixed-size grid centred on the mask (or the image).

A crop is defined in physical space before anything is resampled: ``centred_grid`` puts
an output grid of the planned shape and spacing around a physical point, in the reference
image's axes. Resampling onto that grid (``resample.resample_onto``) then crops, pads
(with the modality's background) and changes resolution in one pass, touching only the
region of interest instead of the whole volume.

Physical points and origins are SimpleITK's (x, y, z) in LPS millimetres; spacings and
shapes are in array order (z, y, x), like everywhere else in the package.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from deepradiomics.io.readers import spacing_zyx

Triple = tuple[float, float, float]


@dataclass(frozen=True)
class Grid:
    """A regular voxel grid in physical space."""

    origin: Triple  # physical (x, y, z) of voxel [0, 0, 0], mm
    spacing: Triple  # (z, y, x) mm
    shape: tuple[int, int, int]  # (z, y, x) voxels
    direction: tuple[float, ...]  # 3x3 row-major, SimpleITK order

    @property
    def size_xyz(self) -> tuple[int, int, int]:
        return (int(self.shape[2]), int(self.shape[1]), int(self.shape[0]))

    @property
    def spacing_xyz(self) -> Triple:
        return (float(self.spacing[2]), float(self.spacing[1]), float(self.spacing[0]))

    @property
    def centre(self) -> Triple:
        """Physical (x, y, z) of the grid's centre."""
        direction = np.asarray(self.direction).reshape(3, 3)
        half = np.array(self.spacing_xyz) * (np.array(self.size_xyz) - 1) / 2.0
        centre = np.asarray(self.origin) + direction @ half
        return tuple(float(v) for v in centre)  # type: ignore[return-value]

    @property
    def extent_mm(self) -> Triple:
        """Physical size (z, y, x) covered by the voxels."""
        extent = (float(n * s) for n, s in zip(self.shape, self.spacing, strict=False))
        return tuple(extent)  # type: ignore[return-value]


@dataclass(frozen=True)
class MaskBox:
    """Bounding box of a mask's non-zero voxels."""

    centre: Triple  # physical (x, y, z) of the box centre, mm
    extent_mm: Triple  # (z, y, x), voxel edges included
    voxels: int
    volume_ml: float


def mask_box(mask: sitk.Image) -> MaskBox | None:
    """Bounding box of the mask (``None`` when it is empty)."""
    arr = sitk.GetArrayViewFromImage(mask)
    # two projections over the volume, no full-size temporary (cheaper than np.nonzero)
    along_z = arr.any(axis=(1, 2))
    plane = arr.any(axis=0)
    lo, hi = [], []
    for hits in (along_z, plane.any(axis=1), plane.any(axis=0)):
        idx = np.flatnonzero(hits)
        if idx.size == 0:
            return None
        lo.append(int(idx[0]))
        hi.append(int(idx[-1]))
    centre_zyx = [(a + b) / 2.0 for a, b in zip(lo, hi, strict=False)]
    centre = mask.TransformContinuousIndexToPhysicalPoint(centre_zyx[::-1])
    spacing = spacing_zyx(mask)
    extent = tuple(float((b - a + 1) * s) for a, b, s in zip(lo, hi, spacing, strict=False))
    voxels = int(np.count_nonzero(arr))
    return MaskBox(
        centre=tuple(float(c) for c in centre),  # type: ignore[arg-type]
        extent_mm=extent,  # type: ignore[arg-type]
        voxels=voxels,
        volume_ml=voxels * float(np.prod(spacing)) / 1000.0,
    )


def image_centre(img: sitk.Image) -> Triple:
    """Physical (x, y, z) of the volume's centre."""
    mid = [(n - 1) / 2.0 for n in img.GetSize()]
    centre = img.TransformContinuousIndexToPhysicalPoint(mid)
    return tuple(float(c) for c in centre)  # type: ignore[return-value]


def centred_grid(
    reference: sitk.Image,
    centre: Triple,
    spacing: Triple,
    shape: tuple[int, int, int],
    snap: bool = False,
) -> Grid:
    """Grid of ``shape`` voxels at ``spacing`` (z, y, x) whose centre is the physical ``centre``.

    Axes follow ``reference``'s direction, so a thick-slice axis stays the slice axis. With
    ``snap`` the grid moves (by at most half a reference voxel) so that its first voxel sits
    on a reference voxel centre: at unchanged spacing resampling is then an exact copy
    instead of a half-voxel interpolation blur.
    """
    direction = np.asarray(reference.GetDirection(), dtype=np.float64).reshape(3, 3)
    half_xyz = (
        np.array(
            [(shape[2] - 1) * spacing[2], (shape[1] - 1) * spacing[1], (shape[0] - 1) * spacing[0]]
        )
        / 2.0
    )
    origin = np.asarray(centre, dtype=np.float64) - direction @ half_xyz
    if snap:
        index = np.round(reference.TransformPhysicalPointToContinuousIndex(tuple(origin)))
        origin = np.asarray(reference.TransformContinuousIndexToPhysicalPoint(index.tolist()))
    return Grid(
        origin=tuple(float(v) for v in origin),  # type: ignore[arg-type]
        spacing=tuple(float(s) for s in spacing),  # type: ignore[arg-type]
        shape=tuple(int(n) for n in shape),  # type: ignore[arg-type]
        direction=tuple(float(v) for v in direction.ravel()),
    )


def whole_volume_grid(img: sitk.Image, spacing: Triple) -> Grid:
    """Grid covering ``img``'s extent at a new spacing (same centre, size rounded)."""
    old = spacing_zyx(img)
    size = img.GetSize()[::-1]
    shape = tuple(
        max(1, int(round(n * s / t))) for n, s, t in zip(size, old, spacing, strict=False)
    )
    return centred_grid(img, image_centre(img), spacing, shape)  # type: ignore[arg-type]
