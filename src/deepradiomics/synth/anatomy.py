"""A small thorax-abdomen body: tissue labels on the fine grid, with CT (HU) and PET (SUV) values.

Structures (reference scale, mm): an elliptic-cylinder body (semi-axes ~36 x 27, slightly
tapered along z) with a subcutaneous fat layer, soft tissue, two lung ellipsoids in the upper
part, a heart that indents the left lung, a liver in the lower right whose dome pushes the right
lung up (the lesion grows in it), a vertebral body with cortical rim, a sternum, and slanted
rib segments. Each patient varies in body size, fat thickness, lung and liver size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepradiomics.synth.grid import FineGrid

AIR, FAT, SOFT, HEART, LUNG, BONE, CORTEX, LIVER = range(8)
TISSUE_HU = np.array([-1000.0, -100.0, 40.0, 50.0, -850.0, 250.0, 800.0, 50.0], dtype=np.float32)
TISSUE_SUV = np.array([0.0, 0.4, 1.0, 2.0, 0.3, 1.2, 0.8, 2.0], dtype=np.float32)


@dataclass(frozen=True)
class Anatomy:
    """Patient geometry in mm (already multiplied by the scale)."""

    body_axes: tuple[float, float]  # (y, x) semi-axes
    fat_mm: float
    lung_centres: tuple[
        tuple[float, float, float], tuple[float, float, float]
    ]  # (z, y, x), right then left
    lung_axes: tuple[float, float, float]  # (z, y, x)
    heart_centre: tuple[float, float, float]
    heart_axes: tuple[float, float, float]
    liver_centre: tuple[float, float, float]
    liver_axes: tuple[float, float, float]
    spine_centre: tuple[float, float]  # (y, x)
    spine_axes: tuple[float, float]
    rib_period: float
    rib_width: float
    rib_phase: float
    tissue_hu_jitter: float  # patient-level soft-tissue HU shift


def draw_anatomy(rng: np.random.Generator, scale: float) -> Anatomy:
    f = rng.uniform(0.92, 1.05) * scale  # body size
    lung = rng.uniform(0.9, 1.05)
    liver = rng.uniform(0.92, 1.08)
    return Anatomy(
        body_axes=(27.0 * f, 36.0 * f),
        fat_mm=rng.uniform(2.5, 5.5) * scale,
        lung_centres=((14.0 * f, -1.0 * f, -17.0 * f), (14.0 * f, -1.0 * f, 17.0 * f)),
        lung_axes=(38.0 * f * lung, 19.0 * f * lung, 12.0 * f * lung),
        heart_centre=(4.0 * f, -6.0 * f, 4.0 * f),
        heart_axes=(20.0 * f, 9.0 * f, 10.0 * f),
        liver_centre=(-24.0 * f, 0.0, -9.0 * f),
        liver_axes=(28.0 * f * liver, 19.0 * f * liver, 22.0 * f * liver),
        spine_centre=(16.5 * f, 0.0),
        spine_axes=(5.0 * f, 6.0 * f),
        rib_period=20.0 * f,
        rib_width=5.0 * f,
        rib_phase=rng.uniform(0.0, 20.0 * f),
        tissue_hu_jitter=rng.normal(0.0, 4.0),
    )


def _ellipsoid(axes_zyx: tuple[np.ndarray, np.ndarray, np.ndarray], centre, semi) -> np.ndarray:
    """Normalised ellipsoidal radius squared (< 1 inside), broadcast to the full grid."""
    z, y, x = axes_zyx
    return (
        (((z - centre[0]) / semi[0]) ** 2)[:, None, None]
        + (((y - centre[1]) / semi[1]) ** 2)[None, :, None]
        + (((x - centre[2]) / semi[2]) ** 2)[None, None, :]
    )


def tissue_labels(anat: Anatomy, grid: FineGrid) -> np.ndarray:
    """uint8 label map on the fine grid (``AIR`` .. ``CORTEX``)."""
    z, y, x = grid.axes()
    half_z = grid.extent_mm[0] / 2
    taper = (1.0 - 0.08 * (z / max(half_z, 1e-6)) ** 2)[:, None, None]  # narrower at the ends
    by, bx = anat.body_axes
    # body and fat as elliptic cylinders: rho^2 = (x/a)^2 + (y/b)^2 with the taper
    r2 = ((y / by) ** 2)[None, :, None] / taper**2 + ((x / bx) ** 2)[None, None, :] / taper**2
    fy, fx = (by - anat.fat_mm) / by, (bx - anat.fat_mm) / bx
    inner = ((y / (by * fy)) ** 2)[None, :, None] / taper**2 + ((x / (bx * fx)) ** 2)[
        None, None, :
    ] / taper**2
    labels = np.where(r2 < 1.0, FAT, AIR).astype(np.uint8)
    labels[inner < 1.0] = SOFT

    axes = (z, y, x)
    for centre in anat.lung_centres:
        labels[_ellipsoid(axes, centre, anat.lung_axes) < 1.0] = LUNG
    labels[_ellipsoid(axes, anat.heart_centre, anat.heart_axes) < 1.0] = HEART
    labels[(_ellipsoid(axes, anat.liver_centre, anat.liver_axes) < 1.0) & (inner < 1.0)] = LIVER

    # ribs: a shell just inside the fat, in slanted bands along z, sparing the front
    shell = (inner < 0.93) & (inner > 0.78)
    phase = (z[:, None, None] + 0.25 * y[None, :, None] - anat.rib_phase) % anat.rib_period
    front = (y[None, :, None] < -0.4 * by) & (np.abs(x)[None, None, :] < 0.35 * bx)
    labels[shell & (phase < anat.rib_width) & ~front] = CORTEX
    sternum = (((y + 0.75 * by) / (0.08 * by)) ** 2)[:, None] + ((x / (0.15 * bx)) ** 2)[None, :]
    labels[:, sternum < 1.0] = CORTEX

    sy, sx = anat.spine_centre
    ay, ax = anat.spine_axes
    spine = (((y - sy) / ay) ** 2)[:, None] + (((x - sx) / ax) ** 2)[None, :]
    labels[:, spine < 1.0] = CORTEX
    labels[:, spine < 0.65] = BONE
    return labels


def tissue_maps(labels: np.ndarray, anat: Anatomy) -> tuple[np.ndarray, np.ndarray]:
    """CT (HU) and PET (SUV) float32 maps of a label map."""
    hu_lut = TISSUE_HU.copy()
    hu_lut[[SOFT, HEART]] += anat.tissue_hu_jitter
    return hu_lut[labels], TISSUE_SUV[labels]
