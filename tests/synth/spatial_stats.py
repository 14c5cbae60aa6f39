"""Hand-made lesion statistics for the synth tests: two spatial ones and the first-order set.

The spatial statistics are written for these tests only (no library computes them): where the
dark necrotic core sits relative to the lesion centroid, and how oriented the in-plane texture
is (coherence of the gradient structure tensor). Both ignore a 2 mm rim, where kernels and
partial volume with the surrounding lung dominate.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy import stats


def _inplane_smooth(img: np.ndarray, m: np.ndarray, sigma_mm: float, spacing_zyx) -> np.ndarray:
    """In-plane Gaussian of the lesion alone (normalised convolution: no outside voxels)."""
    sig = (0, sigma_mm / spacing_zyx[1], sigma_mm / spacing_zyx[2])
    mf = m.astype(np.float32)
    return ndi.gaussian_filter(img * mf, sig) / np.maximum(ndi.gaussian_filter(mf, sig), 1e-3)


def _inner(m: np.ndarray, spacing_zyx, rim_mm: float = 2.0) -> np.ndarray:
    r = max(1, round(rim_mm / spacing_zyx[1]))
    footprint = np.zeros((3, 2 * r + 1, 2 * r + 1), bool)
    footprint[1] = True
    footprint[:, r, r] = True
    inner = ndi.binary_erosion(m, footprint)
    if inner.sum() < 10:
        inner = ndi.binary_erosion(m, np.ones((1, 3, 3), bool))
    return inner if inner.sum() >= 10 else m


def _crop(img: np.ndarray, mask: np.ndarray, margin: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """The lesion's bounding box plus a margin (the statistics only look inside the mask)."""
    m = mask.astype(bool)
    lo = np.maximum(np.argwhere(m).min(axis=0) - margin, 0)
    hi = np.argwhere(m).max(axis=0) + margin + 1
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=False))
    return img[box].astype(np.float32), m[box]


def core_offset(img: np.ndarray, mask: np.ndarray, spacing_zyx) -> float:
    """In-plane distance from the mask centroid to the centroid of dark voxels / lesion radius."""
    img, m = _crop(img, mask)
    inner = _inner(m, spacing_zyx)
    sm = _inplane_smooth(img, m, 1.5, spacing_zyx)
    weight = np.clip(np.median(sm[inner]) - 40 - sm, 0, 50) * inner
    if weight.sum() <= 0:
        return 0.0
    sp = np.asarray(spacing_zyx, dtype=float)
    dark = np.array(ndi.center_of_mass(weight)) * sp
    centre = np.array(ndi.center_of_mass(m)) * sp
    r_eq = (3 * m.sum() * np.prod(sp) / (4 * np.pi)) ** (1 / 3)
    return float(np.linalg.norm((dark - centre)[1:]) / r_eq)


def texture_coherence(img: np.ndarray, mask: np.ndarray, spacing_zyx) -> float:
    """In-plane structure-tensor coherence (0 isotropic .. 1 perfectly oriented) inside the lesion."""
    img, m = _crop(img, mask)
    inner = _inner(m, spacing_zyx)
    filled = np.where(m, img, _inplane_smooth(img, m, 3.0, spacing_zyx))  # no rim gradient
    s = (0, 1.0 / spacing_zyx[1], 1.0 / spacing_zyx[2])
    gy = ndi.gaussian_filter(filled, s, order=(0, 1, 0))[inner]
    gx = ndi.gaussian_filter(filled, s, order=(0, 0, 1))[inner]
    jxx, jyy, jxy = (gx**2).sum(), (gy**2).sum(), (gx * gy).sum()
    return float(np.sqrt((jxx - jyy) ** 2 + 4 * jxy**2) / (jxx + jyy))


FIRST_ORDER = [
    "mean",
    "std",
    "skewness",
    "kurtosis",
    "p10",
    "p25",
    "p50",
    "p75",
    "p90",
    "entropy",
    "voxels",
]


def first_order(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The usual first-order radiomics features of the lesion's intensity histogram."""
    v = img[mask.astype(bool)].astype(float)
    hist, _ = np.histogram(v, bins=32)
    h = hist[hist > 0] / hist.sum()
    return np.array(
        [
            v.mean(),
            v.std(),
            stats.skew(v),
            stats.kurtosis(v),
            *np.percentile(v, [10, 25, 50, 75, 90]),
            -(h * np.log(h)).sum(),
            len(v),
        ]
    )
