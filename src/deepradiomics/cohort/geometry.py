"""Voxel grids in physical space: compare two grids, bound them, test overlap.

A ``Grid`` holds what an image header says (size, spacing, origin, direction, in SimpleITK's
x, y, z order). ``canonical()`` re-expresses it in the LPS orientation that ``io.readers``
gives every image, computed from the header alone, so two files stored in different axis
orders but covering the same voxels compare equal (SimpleITK's own ``DICOMOrient`` needs the
voxels, which a header check does not load).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

# Tolerances for "same grid": relative spacing, absolute origin (mm), absolute direction cosine.
SPACING_RTOL = 1e-3
ORIGIN_ATOL_MM = 1e-2
DIRECTION_ATOL = 1e-4


def _fmt(values: tuple[float, ...] | np.ndarray) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


@dataclass(frozen=True)
class Grid:
    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]  # row-major 3x3; column j is the physical direction of axis j

    @classmethod
    def of(cls, img: sitk.Image) -> Grid:
        return cls(
            size=tuple(int(s) for s in img.GetSize()),
            spacing=tuple(float(s) for s in img.GetSpacing()),
            origin=tuple(float(o) for o in img.GetOrigin()),
            direction=tuple(float(d) for d in img.GetDirection()),
        )

    @property
    def matrix(self) -> np.ndarray:
        return np.asarray(self.direction, dtype=float).reshape(3, 3)

    def canonical(self) -> Grid:
        """The same voxels with axes permuted/flipped to the nearest LPS orientation."""
        d = self.matrix
        dominant = [int(np.argmax(np.abs(d[:, j]))) for j in range(3)]
        if sorted(dominant) != [0, 1, 2]:  # oblique beyond 45 degrees: no unique reordering
            return self
        origin = np.asarray(self.origin, dtype=float)
        size, spacing = [0, 0, 0], [0.0, 0.0, 0.0]
        out = np.zeros((3, 3))
        for j, k in enumerate(dominant):
            col = d[:, j]
            if col[k] < 0:  # flip axis j: the far corner becomes the origin
                origin = origin + col * self.spacing[j] * (self.size[j] - 1)
                col = -col
            out[:, k], size[k], spacing[k] = col, self.size[j], self.spacing[j]
        return Grid(tuple(size), tuple(spacing), tuple(origin), tuple(out.ravel()))

    def differences(self, other: Grid) -> list[str]:
        """What differs from ``other`` beyond the tolerances (empty when the grids match)."""
        a, b = self.canonical(), other.canonical()
        diffs: list[str] = []
        if a.size != b.size:
            diffs.append(f"size {'x'.join(map(str, a.size))} vs {'x'.join(map(str, b.size))}")
        sa, sb = np.asarray(a.spacing), np.asarray(b.spacing)
        if np.any(np.abs(sa - sb) > SPACING_RTOL * np.maximum(np.abs(sa), np.abs(sb))):
            diffs.append(f"spacing {_fmt(sa)} vs {_fmt(sb)} mm")
        oa, ob = np.asarray(a.origin), np.asarray(b.origin)
        if np.any(np.abs(oa - ob) > ORIGIN_ATOL_MM):
            diffs.append(f"origin {_fmt(oa)} vs {_fmt(ob)} mm")
        delta = np.abs(a.matrix - b.matrix).max()
        if delta > DIRECTION_ATOL:
            diffs.append(f"direction differs (largest cosine difference {delta:.3g})")
        return diffs

    def index_box_bounds(
        self, lo: tuple[float, float, float], hi: tuple[float, float, float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned physical box (mm) around the continuous index box ``lo..hi`` (x, y, z).

        For oblique grids this box encloses the rotated one, so overlap tests built on it
        can only err towards "overlaps".
        """
        corners = np.array(
            list(itertools.product(*zip(lo, hi, strict=False))), dtype=float
        )  # 8 x (x, y, z)
        # physical = origin + D @ (index * spacing), for every corner at once
        physical = np.asarray(self.origin) + (corners * np.asarray(self.spacing)) @ self.matrix.T
        return physical.min(axis=0), physical.max(axis=0)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Physical box (mm) covered by the voxels, out to the voxel edges."""
        return self.index_box_bounds((-0.5,) * 3, tuple(s - 0.5 for s in self.size))


def box_volume(lo: np.ndarray, hi: np.ndarray) -> float:
    return float(np.prod(np.clip(hi - lo, 0.0, None)))


def intersection(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    return np.maximum(a[0], b[0]), np.minimum(a[1], b[1])


def describe_box(box: tuple[np.ndarray, np.ndarray]) -> str:
    return f"{_fmt(box[0])}..{_fmt(box[1])} mm"
