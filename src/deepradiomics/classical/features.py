"""Hand-crafted radiomics features with PyRadiomics, per case and over a cohort.

Features are computed on the same resampled crops the CNN sees, but *before* intensity
normalisation: CT in HU, PET in SUV, MR in scanner units. Discretisation is set per
modality (``RadiomicsSettings.for_modality``): fixed bin width 25 HU for CT, fixed bin
width 0.25 SUV for PET, fixed bin count 32 for MR (whose units differ between scanners).

Two entry points:

* ``extract_case(image, mask, settings, spacing=None)`` -> ``{feature_name: value}`` for
  one case; ``image``/``mask`` are SimpleITK images, ``[z, y, x]`` numpy arrays (then
  ``spacing`` is the ``(z, y, x)`` voxel size in mm) or image file paths.
* ``extract_features(cases, settings, cache_dir=..., workers=...)`` over a cohort: a
  process pool, one cache file per case keyed by a hash of the voxels, geometry,
  settings and PyRadiomics version (atomic writes), a tqdm bar, and failures collected
  per case (``FeatureExtraction.failures``) instead of stopping the run.

Feature names are PyRadiomics' own (``original_glcm_Contrast``,
``log-sigma-1-0-mm-3D_firstorder_Mean``, ``wavelet-LLH_glszm_ZoneEntropy``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import SimpleITK as sitk
from tqdm.auto import tqdm

from deepradiomics.errors import UserError
from deepradiomics.files import atomic_write_text
from deepradiomics.io.readers import read_image

log = logging.getLogger(__name__)

FEATURE_CLASSES = ("firstorder", "shape", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
CACHE_FORMAT = 1  # bump when the cached content or its key changes meaning

VolumeLike = sitk.Image | np.ndarray | str | Path


@dataclass(frozen=True)
class RadiomicsSettings:
    """What to extract and how to discretise; ``to_pyradiomics()`` gives PyRadiomics' settings.

    Exactly one of ``bin_width`` (in the image's physical unit: HU, SUV) and ``bin_count``
    is used: ``bin_count`` wins when set. ``log_sigma_mm`` enables Laplacian-of-Gaussian
    filtered images (one per sigma), ``wavelet`` the 8 undecimated wavelet sub-bands.
    ``extra`` holds further PyRadiomics settings by their PyRadiomics names and overrides
    everything else (used to reproduce PyRadiomics' own baseline settings).
    """

    bin_width: float | None = 25.0
    bin_count: int | None = None
    feature_classes: tuple[str, ...] = FEATURE_CLASSES
    log_sigma_mm: tuple[float, ...] = ()
    wavelet: bool = False
    label: int = 1
    voxel_array_shift: float = 0.0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.feature_classes) - set(FEATURE_CLASSES))
        if unknown:
            raise UserError(
                f"radiomics feature classes {unknown} unknown; choose from {list(FEATURE_CLASSES)}"
            )
        if self.bin_count is None and (self.bin_width is None or self.bin_width <= 0):
            if "binWidth" not in self.extra and "binCount" not in self.extra:
                raise UserError("radiomics settings: give a positive bin_width or a bin_count")
        if self.bin_count is not None and self.bin_count < 2:
            raise UserError(
                f"radiomics settings: bin_count must be at least 2, got {self.bin_count}"
            )
        if any(s <= 0 for s in self.log_sigma_mm):
            raise UserError(
                f"radiomics settings: LoG sigmas must be positive, got {self.log_sigma_mm}"
            )

    @classmethod
    def for_modality(cls, kind: Literal["ct", "mr", "pet"], **overrides: Any) -> RadiomicsSettings:
        """Defaults per modality kind, in physical units (CT in HU, PET in SUV).

        CT: bin width 25 HU and ``voxelArrayShift`` 1000 (PyRadiomics' CT example: energy
        features are not dominated by air at -1000 HU). PET: bin width 0.25 SUV. MR: 32
        bins, because MR intensities have no common unit across scanners.
        """
        defaults: dict[str, dict[str, Any]] = {
            "ct": {"bin_width": 25.0, "voxel_array_shift": 1000.0},
            "pet": {"bin_width": 0.25},
            "mr": {"bin_width": None, "bin_count": 32},
        }
        if kind not in defaults:
            raise UserError(
                f"radiomics settings: modality kind {kind!r} unknown; use ct, mr or pet"
            )
        return cls(**{**defaults[kind], **overrides})

    def to_pyradiomics(self) -> dict[str, Any]:
        """Keyword settings for ``radiomics.featureextractor.RadiomicsFeatureExtractor``."""
        settings: dict[str, Any] = {
            "label": self.label,
            "voxelArrayShift": self.voxel_array_shift,
            # images arrive resampled by deepradiomics.preprocess: PyRadiomics must not resample
            "resampledPixelSpacing": None,
            "interpolator": None,
        }
        if self.bin_count is not None:
            settings["binCount"] = self.bin_count
        elif self.bin_width is not None:
            settings["binWidth"] = self.bin_width
        settings.update(self.extra)
        return settings

    def image_types(self) -> dict[str, dict[str, Any]]:
        types: dict[str, dict[str, Any]] = {"Original": {}}
        if self.log_sigma_mm:
            types["LoG"] = {"sigma": [float(s) for s in self.log_sigma_mm]}
        if self.wavelet:
            types["Wavelet"] = {}
        return types

    def fingerprint(self) -> str:
        """Stable text of every setting (part of the cache key)."""
        data = asdict(self)
        data["extra"] = dict(self.extra)
        return json.dumps(data, sort_keys=True, default=str)


@dataclass(frozen=True)
class RadiomicsCase:
    """One case to extract: image and mask as SimpleITK images, ``[z, y, x]`` arrays or paths.

    ``spacing`` is the ``(z, y, x)`` voxel size in mm, required when ``image`` is an array
    (the mask then shares the image's geometry). ``kind`` (``ct``/``mr``/``pet``) is passed to
    the reader when ``image`` is a path.
    """

    case_id: str
    image: VolumeLike
    mask: VolumeLike
    spacing: tuple[float, float, float] | None = None
    kind: str | None = None


@dataclass
class FeatureExtraction:
    """Result over a cohort: ``features`` indexed by ``case_id`` (successful cases, in input
    order) and ``failures`` mapping each failed ``case_id`` to its reason."""

    features: pd.DataFrame
    failures: dict[str, str]


# ----------------------------------------------------------------------------- one case


@dataclass(frozen=True)
class _Volume:
    """Voxels plus geometry in a picklable form (SimpleITK images are rebuilt in the worker)."""

    array: np.ndarray  # [z, y, x]
    spacing_xyz: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]

    @classmethod
    def from_image(cls, img: sitk.Image) -> _Volume:
        return cls(
            sitk.GetArrayFromImage(img), img.GetSpacing(), img.GetOrigin(), img.GetDirection()
        )

    def to_image(self) -> sitk.Image:
        img = sitk.GetImageFromArray(self.array)
        img.SetSpacing(self.spacing_xyz)
        img.SetOrigin(self.origin)
        img.SetDirection(self.direction)
        return img

    def digest(self, h: hashlib._Hash) -> None:
        arr = np.ascontiguousarray(self.array)
        geometry = f"{self.spacing_xyz}|{self.origin}|{self.direction}"
        h.update(f"{arr.dtype.str}|{arr.shape}|{geometry}".encode())
        h.update(arr.tobytes())


def _as_volume(
    obj: VolumeLike | _Volume,
    spacing: tuple[float, float, float] | None,
    kind: str | None,
    what: str,
) -> _Volume:
    if isinstance(obj, _Volume):
        return obj
    if isinstance(obj, sitk.Image):
        if obj.GetDimension() != 3:
            raise UserError(f"{what}: image is {obj.GetDimension()}D, expected 3D")
        return _Volume.from_image(obj)
    if isinstance(obj, (str, Path)):
        return _Volume.from_image(read_image(obj, kind=kind))
    arr = np.asarray(obj)
    if arr.ndim != 3:
        raise UserError(f"{what}: array has shape {arr.shape}, expected 3D [z, y, x]")
    if spacing is None or len(spacing) != 3 or min(spacing) <= 0:
        raise UserError(f"{what}: a numpy array needs spacing=(z, y, x) in mm, got {spacing}")
    sz, sy, sx = (float(s) for s in spacing)
    return _Volume(
        arr, (sx, sy, sz), (0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    )


def _as_mask(obj: VolumeLike | _Volume, like: _Volume, label: int, what: str) -> _Volume:
    """Integer label map; an array mask takes the image's geometry, an image mask keeps its
    own (PyRadiomics checks that it matches). Interpolated masks are rounded to labels."""
    if isinstance(obj, np.ndarray):
        vol = _Volume(obj, like.spacing_xyz, like.origin, like.direction)
    else:
        vol = _as_volume(obj, None, None, what)
    arr = vol.array
    if arr.shape != like.array.shape:
        raise UserError(
            f"{what}: mask shape {arr.shape} differs from image shape {like.array.shape}"
        )
    if not np.issubdtype(arr.dtype, np.integer) and arr.dtype != bool:
        arr = np.rint(arr)
    arr = arr.astype(np.int32)
    if not np.any(arr == label):
        raise UserError(f"{what}: mask has no voxel with label {label}")
    return _Volume(arr, vol.spacing_xyz, vol.origin, vol.direction)


def _extract_volumes(
    image: _Volume, mask: _Volume, settings: RadiomicsSettings
) -> dict[str, float]:
    from radiomics import featureextractor

    logging.getLogger("radiomics").setLevel(logging.ERROR)
    extractor = featureextractor.RadiomicsFeatureExtractor(**settings.to_pyradiomics())
    extractor.disableAllFeatures()
    for name in settings.feature_classes:
        extractor.enableFeatureClassByName(name)
    extractor.enableImageTypes(**settings.image_types())
    result = extractor.execute(image.to_image(), mask.to_image(), label=settings.label)
    return {k: float(v) for k, v in result.items() if not k.startswith("diagnostics_")}


def extract_case(
    image: VolumeLike,
    mask: VolumeLike,
    settings: RadiomicsSettings,
    spacing: tuple[float, float, float] | None = None,
    kind: str | None = None,
) -> dict[str, float]:
    """PyRadiomics features of one case, ``{feature_name: value}``.

    ``image`` must be in physical units (HU, SUV), i.e. resampled but not normalised.
    Arrays are ``[z, y, x]`` with ``spacing`` ``(z, y, x)`` in mm; a float mask (e.g.
    linearly resampled) is rounded to labels. Raises ``UserError`` for unusable input and
    lets PyRadiomics' own errors (e.g. a one-voxel ROI) through as ``ValueError``.
    """
    img = _as_volume(image, spacing, kind, "image")
    msk = _as_mask(mask, img, settings.label, "mask")
    return _extract_volumes(img, msk, settings)


# ----------------------------------------------------------------------------- cohort


def _cache_key(image: _Volume, mask: _Volume, settings: RadiomicsSettings) -> str:
    import radiomics

    h = hashlib.sha256()
    h.update(f"deepradiomics-radiomics-cache/{CACHE_FORMAT}/{radiomics.__version__}/".encode())
    h.update(settings.fingerprint().encode())
    image.digest(h)
    mask.digest(h)
    return h.hexdigest()


def _run_case(
    case: RadiomicsCase, settings: RadiomicsSettings, cache_dir: Path | None
) -> tuple[str, dict[str, float] | None, str | None, bool]:
    """Worker: ``(case_id, features or None, failure reason or None, cache hit)``; never raises."""
    try:
        img = _as_volume(case.image, case.spacing, case.kind, f"case {case.case_id}: image")
        msk = _as_mask(case.mask, img, settings.label, f"case {case.case_id}: mask")
        path = None
        if cache_dir is not None:
            key = _cache_key(img, msk, settings)
            path = cache_dir / key[:2] / f"{key}.json"
            if path.is_file():
                try:
                    return case.case_id, json.loads(path.read_text()), None, True
                except (OSError, json.JSONDecodeError):
                    pass  # unreadable cache entry: recompute and overwrite
        features = _extract_volumes(img, msk, settings)
        if path is not None:
            atomic_write_text(path, json.dumps(features))
        return case.case_id, features, None, False
    except Exception as err:  # noqa: BLE001 - a failing case is reported, the rest go on
        text = str(err).strip().splitlines()
        reason = f"{type(err).__name__}: {text[0] if text else 'no message'}"
        return case.case_id, None, reason, False


def _portable(case: RadiomicsCase) -> RadiomicsCase:
    """SimpleITK images become picklable ``_Volume``s before crossing into a worker."""

    def conv(obj: VolumeLike) -> Any:
        return _Volume.from_image(obj) if isinstance(obj, sitk.Image) else obj

    return RadiomicsCase(case.case_id, conv(case.image), conv(case.mask), case.spacing, case.kind)


def extract_features(
    cases: Sequence[RadiomicsCase],
    settings: RadiomicsSettings,
    cache_dir: str | Path | None = None,
    workers: int = 1,
    progress: bool = True,
) -> FeatureExtraction:
    """Features of every case as a DataFrame indexed by ``case_id``; failures reported per case.

    ``workers > 1`` runs a process pool (forked on Linux, spawned elsewhere). With
    ``cache_dir`` each case's features are stored under a hash of its voxels, geometry and
    the settings, so a rerun only computes what changed. A case that fails (empty mask,
    unreadable file, PyRadiomics error) is logged with its reason and left out of
    ``features``; the others go on.
    """
    ids = [c.case_id for c in cases]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise UserError(f"radiomics: case ids repeated: {dupes[:5]}")
    cache = Path(cache_dir) if cache_dir is not None else None
    results: dict[str, dict[str, float]] = {}
    failures: dict[str, str] = {}
    hits = 0
    bar = tqdm(total=len(cases), desc="radiomics features", unit="case", disable=not progress)

    def record(case_id: str, feats: dict[str, float] | None, reason: str | None, hit: bool) -> None:
        nonlocal hits
        if feats is None:
            failures[case_id] = reason or "unknown error"
            log.warning("case %s: radiomics extraction failed: %s", case_id, failures[case_id])
        else:
            results[case_id] = feats
            hits += hit
        bar.update(1)

    try:
        if workers <= 1 or len(cases) <= 1:
            for case in cases:
                record(*_run_case(case, settings, cache))
        else:
            # fork where the platform has it: workers start at once and, unlike spawn, do not
            # re-run the caller's script (spawn needs an ``if __name__ == "__main__"`` guard).
            # Workers use only numpy/SimpleITK/PyRadiomics (no torch, no OpenMP pools).
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            with ProcessPoolExecutor(max_workers=min(workers, len(cases)), mp_context=ctx) as pool:
                futures = {
                    pool.submit(_run_case, _portable(c), settings, cache): c.case_id for c in cases
                }
                for fut in as_completed(futures):
                    try:
                        record(*fut.result())
                    except BrokenProcessPool as err:
                        record(futures[fut], None, f"worker process died ({err})", False)
    finally:
        bar.close()
    if cache is not None:
        log.info("radiomics: %d of %d cases from cache", hits, len(results))
    order = [i for i in ids if i in results]
    index = pd.Index(order, name="case_id", dtype=object)
    table = (
        pd.DataFrame.from_records([results[i] for i in order], index=index)
        if order
        else pd.DataFrame(index=index)
    )
    return FeatureExtraction(
        features=table, failures={i: failures[i] for i in ids if i in failures}
    )
