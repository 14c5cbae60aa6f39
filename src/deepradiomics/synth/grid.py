"""The fine render grid of one case and its relation to the written CT and PET grids.

Arrays are ``[z, y, x]`` (the project convention), world axes LPS in millimetres with the
volume centred on the origin. Scenes are rendered on a fine grid with the site's in-plane
spacing and 1 mm along z; the CT averages ``slice_thickness`` fine slices per slice (partial
volume) and the PET additionally averages 2 x 2 in-plane voxels (when the size is even).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REFERENCE_SIZE = 96  # anatomy and lesion sizes in mm are scaled by size / REFERENCE_SIZE
FINE_Z_MM = 1.0


@dataclass(frozen=True)
class FineGrid:
    size: int  # in-plane voxels (x = y)
    pixel_mm: float
    slab: int  # fine slices per CT slice (= slice thickness in mm)
    n_slices: int  # CT slices
    shift: tuple[float, float, float]  # patient position (z, y, x) mm for this scan

    @classmethod
    def make(
        cls,
        size: int,
        pixel_mm: float,
        slice_thickness_mm: float,
        shift: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ) -> FineGrid:
        slab = round(slice_thickness_mm / FINE_Z_MM)
        n_slices = max(2, round(size / slab))  # z extent ~ size mm
        return cls(size=size, pixel_mm=pixel_mm, slab=slab, n_slices=n_slices, shift=shift)

    @property
    def scale(self) -> float:
        return self.size / REFERENCE_SIZE

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.n_slices * self.slab, self.size, self.size)

    @property
    def extent_mm(self) -> tuple[float, float, float]:
        return (
            self.n_slices * self.slab * FINE_Z_MM,
            self.size * self.pixel_mm,
            self.size * self.pixel_mm,
        )

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Voxel-centre coordinates (z, y, x) in the patient frame (world minus the shift)."""
        spacing = (FINE_Z_MM, self.pixel_mm, self.pixel_mm)
        return tuple(
            ((np.arange(n) + 0.5) * d - e / 2 - s).astype(np.float32)
            for n, d, e, s in zip(self.shape, spacing, self.extent_mm, self.shift, strict=False)
        )

    def index_of(self, point_zyx: np.ndarray) -> np.ndarray:
        """Fractional fine-voxel index of a patient-frame point."""
        spacing = np.array([FINE_Z_MM, self.pixel_mm, self.pixel_mm])
        world = np.asarray(point_zyx) + np.array(self.shift)
        return (world + np.array(self.extent_mm) / 2) / spacing - 0.5

    def geometry(
        self, block_zyx: tuple[int, int, int]
    ) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """SimpleITK (spacing, origin) in x, y, z order of the grid averaged by ``block_zyx``."""
        spacing = (
            self.pixel_mm * block_zyx[2],
            self.pixel_mm * block_zyx[1],
            FINE_Z_MM * block_zyx[0],
        )
        ez, ey, ex = self.extent_mm
        origin = (-ex / 2 + spacing[0] / 2, -ey / 2 + spacing[1] / 2, -ez / 2 + spacing[2] / 2)
        return spacing, origin
