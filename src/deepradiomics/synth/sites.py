"""Acquisition sites of the synthetic cohort: scanner settings and each site's outcome shift.

A site is a scanner + protocol + population. Its image effects (slice thickness, pixel
spacing, reconstruction kernel, noise, HU calibration, PET resolution and calibration) never
depend on the patient; its ``outcome_logit`` is added to the risk only in proportion to the
``confounding`` knob (see the package docstring).
"""

from __future__ import annotations

import string
from dataclasses import asdict, dataclass

import numpy as np

MAX_SITES = 26  # names are site_A .. site_Z


@dataclass(frozen=True)
class Site:
    name: str
    slice_thickness_mm: float  # = z spacing; slabs of the 1 mm fine grid are averaged
    pixel_spacing_mm: float  # in-plane spacing (x = y)
    kernel: str  # "smooth" or "sharp" reconstruction kernel (image blur/edge boost, noise texture)
    noise_hu: float  # standard deviation of the CT noise per voxel
    hu_offset: float  # HU calibration shift added to every voxel
    pet_fwhm_mm: float  # PET point-spread function at the reference scale (size 96)
    pet_noise: float  # PET noise: std = pet_noise * sqrt(SUV)
    pet_calibration: float  # multiplicative SUV calibration error
    outcome_logit: float  # site's direct effect on the outcome logit at confounding = 1
    weight: float  # expected share of the patients

    def as_dict(self) -> dict[str, float | str]:
        return asdict(self)


def slice_thicknesses(n_sites: int) -> list[float]:
    """Whole millimetres spread evenly from 1 to 5 mm (a single site gets 2 mm)."""
    if n_sites == 1:
        return [2.0]
    return [float(round(1 + 4 * i / (n_sites - 1))) for i in range(n_sites)]


def make_sites(n_sites: int, rng: np.random.Generator, site_effect: float) -> list[Site]:
    """Site table; thickness and kernel follow the site index, the rest is drawn from ``rng``.

    ``site_effect`` is the largest outcome-logit shift (|logit|) at confounding 1; the shifts
    are spread evenly over the sites in a random order so they do not follow the thickness.
    """
    thickness = slice_thicknesses(n_sites)
    spacing = np.round(rng.uniform(0.8, 1.0, n_sites), 3)
    noise = np.round(rng.uniform(6.0, 18.0, n_sites), 1)
    offset = np.round(rng.uniform(-20.0, 20.0, n_sites), 1)
    fwhm = np.round(rng.uniform(5.0, 8.0, n_sites), 2)
    pet_noise = np.round(rng.uniform(0.05, 0.15, n_sites), 3)
    calibration = np.round(rng.uniform(0.9, 1.1, n_sites), 3)
    shifts = np.linspace(-site_effect, site_effect, n_sites) if n_sites > 1 else np.zeros(1)
    shifts = rng.permutation(shifts)
    weights = rng.dirichlet(np.full(n_sites, 5.0))
    return [
        Site(
            name=f"site_{string.ascii_uppercase[i]}",
            slice_thickness_mm=thickness[i],
            pixel_spacing_mm=float(spacing[i]),
            kernel="smooth" if i % 2 == 0 else "sharp",
            noise_hu=float(noise[i]),
            hu_offset=float(offset[i]),
            pet_fwhm_mm=float(fwhm[i]),
            pet_noise=float(pet_noise[i]),
            pet_calibration=float(calibration[i]),
            outcome_logit=round(float(shifts[i]), 4),
            weight=round(float(weights[i]), 4),
        )
        for i in range(n_sites)
    ]
