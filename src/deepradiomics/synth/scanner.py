"""Site acquisition: what a scanner does to the rendered scene.

CT: average ``slab`` fine slices per slice (partial volume of thick slices), apply the
reconstruction kernel in-plane (smooth: Gaussian blur; sharp: unsharp-mask edge boost), add
noise whose texture follows the kernel (smooth: low-pass correlated; sharp: high-pass,
grainy) at the site's level, shift by the site's HU calibration offset, store as int16.

PET: average onto a coarser grid (same slices, 2 x 2 in-plane), blur by the site's
point-spread function, scale by its calibration error and add signal-dependent noise
(std ~ ``pet_noise * sqrt(SUV)``, as for Poisson counts).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from deepradiomics.synth.grid import FineGrid
from deepradiomics.synth.sites import Site

HU_RANGE = (-1024, 3071)
SMOOTH_BLUR_MM = 0.6
SHARP_RADIUS_MM, SHARP_GAIN = 1.0, 0.6
PET_INPLANE_BLOCK = 2


def block_mean(vol: np.ndarray, block: tuple[int, int, int]) -> np.ndarray:
    """Average non-overlapping blocks (sizes must divide the shape)."""
    (nz, ny, nx), (bz, by, bx) = vol.shape, block
    return vol.reshape(nz // bz, bz, ny // by, by, nx // bx, bx).mean(
        axis=(1, 3, 5), dtype=np.float32
    )


def _unit_std(field: np.ndarray) -> np.ndarray:
    return field / max(float(field.std()), 1e-12)


def ct_noise(shape: tuple[int, ...], kernel: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance in-plane correlated noise: low-pass for smooth kernels, high-pass for sharp.

    Correlation lengths are in voxels: noise texture is a property of the reconstruction.
    """
    white = rng.standard_normal(shape, dtype=np.float32)
    if kernel == "smooth":
        return _unit_std(gaussian_filter(white, (0, 1.0, 1.0)))
    return _unit_std(white - gaussian_filter(white, (0, 1.5, 1.5)))


def acquire_ct(
    hu_fine: np.ndarray, mask_fine: np.ndarray, grid: FineGrid, site: Site, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(CT int16 [z, y, x] in HU, lesion mask uint8) on the site's slice grid."""
    block = (grid.slab, 1, 1)
    ct = block_mean(hu_fine, block)
    coverage = block_mean(mask_fine.astype(np.float32), block)
    mask = (coverage >= 0.5).astype(np.uint8)
    if not mask.any() and coverage.any():  # lesion thinner than half a slice: keep its best voxels
        mask = (coverage >= 0.5 * coverage.max()).astype(np.uint8)
    if site.kernel == "smooth":
        s = SMOOTH_BLUR_MM / grid.pixel_mm
        ct = gaussian_filter(ct, (0, s, s))
    else:
        s = SHARP_RADIUS_MM / grid.pixel_mm
        ct = ct + SHARP_GAIN * (ct - gaussian_filter(ct, (0, s, s)))
    ct += site.noise_hu * ct_noise(ct.shape, site.kernel, rng)
    ct += site.hu_offset
    return np.clip(np.rint(ct), *HU_RANGE).astype(np.int16), mask


def pet_block(grid: FineGrid) -> tuple[int, int, int]:
    b = PET_INPLANE_BLOCK if grid.size % PET_INPLANE_BLOCK == 0 else 1
    return (grid.slab, b, b)


def acquire_pet(
    suv_fine: np.ndarray, grid: FineGrid, site: Site, rng: np.random.Generator
) -> np.ndarray:
    """PET float32 [z, y, x] in SUV on the coarser PET grid (same physical extent)."""
    block = pet_block(grid)
    pet = block_mean(suv_fine, block)
    spacing = np.array([grid.slab, grid.pixel_mm * block[1], grid.pixel_mm * block[2]])
    sigma_mm = site.pet_fwhm_mm * grid.scale / (2 * np.sqrt(2 * np.log(2)))
    pet = gaussian_filter(pet, sigma_mm / spacing) * site.pet_calibration
    noise = _unit_std(gaussian_filter(rng.standard_normal(pet.shape, dtype=np.float32), 0.7))
    pet += site.pet_noise * np.sqrt(np.maximum(pet, 0.0)) * noise
    return np.maximum(pet, 0.0).astype(np.float32)
