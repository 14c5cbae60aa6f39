"""The lesion: shape (size, elongation, lobulation, spicules), internal texture and necrotic core.

Shape: a randomly rotated ellipsoid whose radius is pushed out along a few smooth lobes and
many narrow spicules (a star-shaped body, so always connected), kept inside the body.

Texture: a Gaussian random field built in Fourier space whose in-plane spectrum is a mix of an
isotropic ring (blobs) and two opposite lobes at the same spatial frequency (stripes with a
given in-plane angle), weighted by ``texture_anisotropy``; both share the same z envelope, so
slice averaging and in-plane kernels treat them alike. Inside the mask the field is mapped by
rank onto exact normal quantiles: the texture's intensity histogram is the same for blobs and
stripes (only the spatial arrangement differs), and ``heterogeneity`` scales it.

Necrotic core: a sphere of relative radius 0.25-0.5 (``necrosis``) of the smallest semi-axis,
dark on CT and cold on PET, displaced in the axial plane by ``core_eccentricity`` times the
room left inside the lesion. Moving the core does not change the histogram.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, ndtri

from deepradiomics.synth.anatomy import AIR, FAT, Anatomy
from deepradiomics.synth.grid import FineGrid

VIABLE_HU, CORE_HU = 90.0, 5.0  # enhancing tumour, fluid-like necrosis
CORE_SUV = 0.5
MAX_BUMP = 0.9  # lobes + spicules extend the radius by at most 90 %
SPIKE_POWER = 64  # cos^64: spicule half-width ~ 8.5 degrees
TEXTURE_WAVELENGTH_MM = 5.0  # at the reference scale
TEXTURE_Z_BAND = 0.05  # cycles/mm (reference scale): correlation along z ~ 3 mm


@dataclass(frozen=True)
class Lesion:
    centre: np.ndarray  # (z, y, x) mm, patient frame
    semi_axes: np.ndarray  # (3,) mm, in the lesion frame
    rotation: np.ndarray  # (3, 3) lesion frame -> patient frame (columns)
    lobe_dirs: np.ndarray  # (m, 3) unit vectors
    lobe_weights: np.ndarray  # (m,)
    lobulation: float
    spike_dirs: np.ndarray  # (n, 3)
    spiculation: float
    core_offset: np.ndarray  # (3,) mm from the centre
    core_radius: float  # mm
    heterogeneity_hu: float
    wavelength_mm: float
    z_band: float  # cycles/mm
    anisotropy: float
    angle_rad: float  # stripe wave direction in the axial plane, from +x towards +y
    uptake_suv: float
    texture_seed: int

    @property
    def outer_radius(self) -> float:
        return float(self.semi_axes.max() * (1 + MAX_BUMP))


def _unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def draw_lesion(
    p: dict, anat: Anatomy, half_z_mm: float, scale: float, rng: np.random.Generator
) -> Lesion:
    """Lesion geometry of one patient from its phenotype row ``p`` (see ``population``)."""
    radius = p["diameter_ref_mm"] * scale / 2
    e = p["elongation"]
    semi = radius * np.array([e ** (2 / 3), e ** (-1 / 3), e ** (-1 / 3)])
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    # centre inside the liver, away from its border; z kept inside the volume
    ball = _unit_vectors(rng, 1)[0] * rng.random() ** (1 / 3)
    centre = np.array(anat.liver_centre) + 0.4 * ball * np.array(anat.liver_axes)
    z_room = max(0.0, half_z_mm - 1.1 * semi.max())
    centre[0] = np.clip(centre[0], -z_room, z_room)
    r_min = semi.min()
    rho_core = 0.3 + 0.3 * p["necrosis"]
    phi = rng.uniform(0, 2 * np.pi)
    offset = p["core_eccentricity"] * (0.9 - rho_core) * r_min
    n_lobes, n_spikes = rng.integers(4, 8), rng.integers(8, 21)
    dx_floor = 3.0  # keep >= ~3 voxels per texture period at ~1 mm pixels
    return Lesion(
        centre=centre,
        semi_axes=semi,
        rotation=rotation,
        lobe_dirs=_unit_vectors(rng, n_lobes),
        lobe_weights=rng.uniform(0.5, 1.0, n_lobes),
        lobulation=float(p["lobulation"]),
        spike_dirs=_unit_vectors(rng, n_spikes),
        spiculation=float(p["spiculation"]),
        core_offset=offset * np.array([0.0, np.sin(phi), np.cos(phi)]),
        core_radius=float(rho_core * r_min),
        heterogeneity_hu=12.0 + 24.0 * float(p["heterogeneity"]),
        wavelength_mm=max(TEXTURE_WAVELENGTH_MM * scale, dx_floor),
        z_band=TEXTURE_Z_BAND / scale,
        anisotropy=float(p["texture_anisotropy"]),
        angle_rad=float(np.deg2rad(p["texture_angle_deg"])),
        uptake_suv=float(p["pet_uptake_suv"]),
        texture_seed=int(rng.integers(2**63)),
    )


def _texture(
    les: Lesion, shape: tuple[int, int, int], spacing: tuple[float, float, float]
) -> np.ndarray:
    """Unit-variance Gaussian field on a box: isotropic blobs mixed with oriented stripes.

    Built directly in Fourier space (complex white noise times the amplitude spectrum, one
    inverse real FFT); no library offers this anisotropic band-pass field.
    """
    fz = np.fft.fftfreq(shape[0], spacing[0])[:, None, None]
    fy = np.fft.fftfreq(shape[1], spacing[1])[None, :, None]
    fx = np.fft.rfftfreq(shape[2], spacing[2])[None, None, :]
    k0 = 1.0 / les.wavelength_mm
    bw2 = 2 * (0.25 * k0) ** 2
    iso = np.exp(-((np.sqrt(fy**2 + fx**2) - k0) ** 2) / bw2)
    uy, ux = k0 * np.sin(les.angle_rad), k0 * np.cos(les.angle_rad)
    stripes = np.exp(-((fy - uy) ** 2 + (fx - ux) ** 2) / bw2) + np.exp(
        -((fy + uy) ** 2 + (fx + ux) ** 2) / bw2
    )
    iso2, str2 = iso**2, stripes**2
    mix = np.sqrt((1 - les.anisotropy) * iso2 / iso2.sum() + les.anisotropy * str2 / str2.sum())
    amplitude = np.exp(-0.5 * (fz / les.z_band) ** 2) * mix
    rng = np.random.default_rng(les.texture_seed)
    noise = rng.normal(size=amplitude.shape) + 1j * rng.normal(size=amplitude.shape)
    field = np.fft.irfftn(noise * amplitude, s=shape, axes=(0, 1, 2))
    return field.astype(np.float32)


def _dot(points: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """``points @ dirs.T`` for 3-vectors, written out: BLAS threads only slow this small product."""
    d = dirs.astype(np.float32)
    return points[:, :1] * d[:, 0] + points[:, 1:2] * d[:, 1] + points[:, 2:] * d[:, 2]


def gaussianize(values: np.ndarray) -> np.ndarray:
    """Map values by rank onto standard-normal quantiles (exact N(0, 1) histogram)."""
    ranks = np.empty(len(values), dtype=np.int64)
    ranks[np.argsort(values, kind="stable")] = np.arange(len(values))
    return ndtri((ranks + 0.5) / len(values)).astype(np.float32)


def render_lesion(
    les: Lesion, grid: FineGrid, labels: np.ndarray, hu: np.ndarray, suv: np.ndarray
) -> tuple[np.ndarray, tuple[slice, ...]]:
    """Paint the lesion into ``hu`` and ``suv`` in place; returns its fine mask and box."""
    spacing = (1.0, grid.pixel_mm, grid.pixel_mm)
    centre_idx = grid.index_of(les.centre)
    half = les.outer_radius / np.array(spacing) + 1
    lo = np.clip(np.floor(centre_idx - half).astype(int), 0, grid.shape)
    hi = np.clip(np.ceil(centre_idx + half).astype(int) + 1, 0, grid.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=False))
    mask = np.zeros(grid.shape, dtype=bool)
    if np.any(hi - lo < 1):
        return mask, box
    z, y, x = (a[s] for a, s in zip(grid.axes(), box, strict=False))
    box_shape = tuple(hi - lo)
    p = (
        np.stack(
            np.broadcast_arrays(
                (z - les.centre[0])[:, None, None],
                (y - les.centre[1])[None, :, None],
                (x - les.centre[2])[None, None, :],
            ),
            axis=-1,
        )
        .reshape(-1, 3)
        .astype(np.float32)
    )
    # only voxels within the largest possible radius need the direction-dependent bumps
    q = _dot(p, les.rotation.T / les.semi_axes[:, None])
    rho = np.sqrt((q**2).sum(axis=1))
    cand = np.flatnonzero(rho <= 1.0 + MAX_BUMP)
    pc = p[cand]
    u = pc / np.maximum(np.sqrt((pc**2).sum(axis=1)), 1e-6)[:, None]
    lobes = np.maximum(_dot(u, les.lobe_dirs), 0.0)
    bump = 0.35 * les.lobulation * ((lobes**3) * les.lobe_weights.astype(np.float32)).sum(axis=1)
    spikes = np.maximum(_dot(u, les.spike_dirs), 0.0)
    for _ in range(6):  # cos^64 by repeated squaring
        spikes *= spikes
    bump += 0.7 * les.spiculation * spikes.sum(axis=1)
    inside = np.zeros(p.shape[0], dtype=bool)
    inside[cand] = rho[cand] <= 1.0 + np.minimum(bump, MAX_BUMP)
    inside = inside.reshape(box_shape) & ~np.isin(labels[box], (AIR, FAT))
    if not inside.any():
        return mask, box

    texture = gaussianize(_texture(les, box_shape, spacing)[inside])
    d_core = np.sqrt(
        ((p[inside.reshape(-1)] - les.core_offset.astype(np.float32)) ** 2).sum(axis=1)
    )
    core = expit((les.core_radius - d_core) / 0.5).astype(np.float32)  # soft 0.5 mm edge
    het = les.heterogeneity_hu
    hu[box][inside] = (1 - core) * (VIABLE_HU + het * texture) + core * (
        CORE_HU + 0.3 * het * texture
    )
    viable_suv = np.maximum(les.uptake_suv * (1 + 0.2 * texture), 0.1)
    suv[box][inside] = (1 - core) * viable_suv + core * CORE_SUV
    mask[box] = inside
    return mask, box
