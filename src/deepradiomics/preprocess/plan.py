"""Planning: a pure function from the cohort fingerprint (+ settings) to the preprocessing plan.

Rules (nnU-Net's, kept small):

- **Target spacing** (z, y, x): the per-axis median of the reference modality's spacings.
  When the coarsest median axis is over ``anisotropy_ratio`` (3x) the finest other axis
  (e.g. 0.7 x 0.7 x 5 mm CT), the cohort is anisotropic: that axis is kept coarse at the
  10th percentile of its spacings (never finer than the other axes), ``anisotropic`` is set
  and ``anisotropic_axis`` names it, so models can use in-plane (1 x 3 x 3) kernels there.
  A configured spacing is used as given (and flagged anisotropic by the same ratio).
- **Crop** (mm, z, y, x): configured, or ``auto``: the 95th percentile of the masks'
  bounding-box extents plus 25 % margin, square in-plane (so in-plane 90-degree rotations
  keep the shape) and a cube when the spacing is not anisotropic. ``none``, or ``auto`` on
  a cohort without masks, means whole volumes: centred crop/pad to the median image extent.
- **Shape** (voxels): configured, or crop / spacing rounded up to a multiple of 8.
- **Normalisation** per modality, resolved to numbers: CT window in HU (named window,
  ``[low, high]``, or ``percentile`` = cohort median of the per-case foreground 0.5 / 99.5 %
  percentiles; default ``percentile``) mapped to ``window_range``; MR z-score inside
  ``zscore_region`` (per case); PET SUV clipped to ``[0, suv_max]`` mapped to ``window_range``.

``Plan`` round-trips through JSON (``plan.json``) and is all ``case.apply_plan`` needs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepradiomics.config import ModalityConfig, PreprocessConfig
from deepradiomics.errors import UserError
from deepradiomics.preprocess.fingerprint import Fingerprint
from deepradiomics.preprocess.normalise import CT_BACKGROUND_HU, PET_BACKGROUND, window_bounds

PLAN_VERSION = 1
CROP_PERCENTILE = 95.0
CROP_MARGIN = 0.25  # fraction of the extent added (half on each side)
SHAPE_MULTIPLE = 8  # output sizes divisible by 2^3 for three poolings
COARSE_AXIS_PERCENTILE = 10.0

Triple = tuple[float, float, float]


@dataclass(frozen=True)
class ModalityPlan:
    """How one channel is read and normalised."""

    name: str
    column: str
    kind: str  # ct | mr | pet
    suv: bool  # PET: convert DICOM counts to SUV when reading
    window: tuple[float, float] | None  # CT: HU window; PET: (0, suv_max); MR: None
    zscore_region: str | None  # MR: body | mask | volume
    fill: float | None  # background outside the volume; None: the image minimum (MR)
    window_source: str  # how the window was chosen, for people reading plan.json


@dataclass(frozen=True)
class Plan:
    """Everything needed to preprocess any case the same way (JSON: ``plan.json``)."""

    spacing: Triple  # target (z, y, x) mm
    shape: tuple[int, int, int]  # output voxels (z, y, x)
    crop_mm: Triple | None  # physical crop (z, y, x) centred on the mask; None: whole volume
    anisotropic: bool
    anisotropic_axis: int | None  # array axis kept coarse (0 = z)
    interpolation: str
    window_range: tuple[float, float]
    modalities: tuple[ModalityPlan, ...]
    spacing_rule: str
    version: int = PLAN_VERSION

    @property
    def centre_on_mask(self) -> bool:
        return self.crop_mm is not None

    @property
    def channels(self) -> list[str]:
        return [m.name for m in self.modalities]

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))  # tuples -> lists

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        if d.get("version") != PLAN_VERSION:
            raise UserError(
                f"plan version {d.get('version')} is not {PLAN_VERSION}; rerun preprocess"
            )
        tup = lambda v, t=float: None if v is None else tuple(t(x) for x in v)  # noqa: E731
        mods = tuple(ModalityPlan(**{**m, "window": tup(m["window"])}) for m in d["modalities"])
        return cls(
            spacing=tup(d["spacing"]),
            shape=tup(d["shape"], int),
            crop_mm=tup(d["crop_mm"]),
            anisotropic=bool(d["anisotropic"]),
            anisotropic_axis=d["anisotropic_axis"],
            interpolation=d["interpolation"],
            window_range=tup(d["window_range"]),
            modalities=mods,
            spacing_rule=d["spacing_rule"],
            version=d["version"],
        )

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> Plan:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"plan file not found: {path}")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(f"{path}: not a valid plan ({err})") from None


def _ratio_axis(spacing: np.ndarray, ratio: float) -> int | None:
    """The axis whose spacing exceeds ``ratio`` times the finest other axis, if any."""
    axis = int(np.argmax(spacing))
    others = np.delete(spacing, axis)
    return axis if spacing[axis] > ratio * others.min() else None


def target_spacing(fp: Fingerprint, cfg: PreprocessConfig) -> tuple[Triple, int | None, str]:
    """Target spacing, the anisotropic axis (or ``None``) and the rule that chose them."""
    if cfg.spacing != "auto":
        sp = np.asarray(cfg.spacing, dtype=np.float64)
        axis = _ratio_axis(sp, cfg.anisotropy_ratio)
        return tuple(sp.tolist()), axis, "configured"  # type: ignore[return-value]
    spacings = fp.spacings()
    median = np.median(spacings, axis=0)
    axis = _ratio_axis(median, cfg.anisotropy_ratio)
    if axis is None:
        return tuple(median.tolist()), None, "median"  # type: ignore[return-value]
    coarse = float(np.percentile(spacings[:, axis], COARSE_AXIS_PERCENTILE))
    target = median.copy()
    target[axis] = max(coarse, float(np.delete(median, axis).max()))
    rule = (
        f"median; axis {axis} anisotropic (median {median[axis]:g} mm > "
        f"{cfg.anisotropy_ratio:g} x in-plane), kept coarse at its "
        f"{COARSE_AXIS_PERCENTILE:g}th percentile"
    )
    # the target grid decides the kernels: thin-slice sites can make it near-isotropic
    return tuple(target.tolist()), _ratio_axis(target, cfg.anisotropy_ratio), rule  # type: ignore[return-value]


def _auto_crop(fp: Fingerprint, anisotropic: bool) -> Triple | None:
    extents = fp.mask_extents_mm()
    if len(extents) == 0:
        return None
    crop = np.percentile(extents, CROP_PERCENTILE, axis=0) * (1.0 + CROP_MARGIN)
    crop[1:] = crop[1:].max()  # square in-plane
    if not anisotropic:
        crop[:] = crop.max()  # cube
    return tuple(float(round(c, 2)) for c in crop)  # type: ignore[return-value]


def _round_up(n: float, multiple: int = SHAPE_MULTIPLE) -> int:
    return max(multiple, multiple * math.ceil(n / multiple - 1e-6))


def _modality_plan(name: str, mod: ModalityConfig, fp: Fingerprint) -> ModalityPlan:
    key = f"cohort.modalities.{name}.window"
    window: tuple[float, float] | None = None
    source = ""
    region: str | None = None
    fill: float | None = None
    if mod.kind == "ct":
        fill = CT_BACKGROUND_HU
        w = mod.window if mod.window is not None else "percentile"
        if w == "percentile":
            lo = fp.intensity(name, "foreground", "p0_5")
            hi = fp.intensity(name, "foreground", "p99_5")
            if lo.size == 0:
                raise UserError(f"{key}: 'percentile' needs foreground voxels; no case has any")
            window = (round(float(np.median(lo)), 2), round(float(np.median(hi)), 2))
            source = "percentile (cohort median of foreground 0.5 / 99.5 %)"
        elif isinstance(w, str):
            window, source = window_bounds(w, key), f"named window '{w}'"
        else:
            window, source = (float(w[0]), float(w[1])), "configured [low, high]"
        if not window[1] > window[0]:
            raise UserError(f"{key}: window low {window[0]} must be below high {window[1]}")
    elif mod.kind == "pet":
        fill, window, source = PET_BACKGROUND, (0.0, float(mod.suv_max)), "SUV [0, suv_max]"
    else:
        region, source = mod.zscore_region, f"z-score inside {mod.zscore_region}"
    return ModalityPlan(
        name=name,
        column=mod.column,
        kind=mod.kind,
        suv=mod.suv,
        window=window,
        zscore_region=region,
        fill=fill,
        window_source=source,
    )


def fitted_parts(cfg: PreprocessConfig, modalities: Mapping[str, ModalityConfig]) -> list[str]:
    """The plan parts ``make_plan`` computes from the cases' fingerprints (the rest are
    configured): ``spacing``, ``crop``, ``shape`` and ``window <name>`` per CT percentile
    window. Empty: the plan is the same whichever cases it is made from."""
    parts = []
    if cfg.spacing == "auto":
        parts.append("spacing")
    if cfg.crop_mm == "auto":
        parts.append("crop")
    if cfg.shape == "auto" and (parts or cfg.crop_mm == "none"):
        parts.append("shape")  # crop / spacing, or the median image extent for whole volumes
    for name, mod in modalities.items():
        if mod.kind == "ct" and (mod.window is None or mod.window == "percentile"):
            parts.append(f"window {name}")
    return parts


def make_plan(
    fp: Fingerprint, cfg: PreprocessConfig, modalities: Mapping[str, ModalityConfig]
) -> Plan:
    """The preprocessing plan for a cohort (pure: no I/O, same inputs -> same plan)."""
    if not fp.cases:
        raise UserError("cannot plan preprocessing: no case could be read")
    if list(modalities) != list(fp.modalities):
        raise UserError(
            f"fingerprint modalities {list(fp.modalities)} differ from the config's "
            f"{list(modalities)}"
        )
    lo, hi = cfg.window_range
    if not hi > lo:
        raise UserError(f"preprocess.window_range: {lo} must be below {hi}")
    spacing, axis, rule = target_spacing(fp, cfg)
    if cfg.crop_mm == "none":
        crop = None
    elif cfg.crop_mm == "auto":
        crop = _auto_crop(fp, axis is not None)
    else:
        crop = tuple(float(c) for c in cfg.crop_mm)
    if crop is not None and len(fp.mask_extents_mm()) == 0:
        raise UserError(
            "preprocess.crop_mm: crops are centred on the mask but no case has a non-empty "
            "mask; set crop_mm: none for whole volumes"
        )
    if cfg.shape != "auto":
        shape = tuple(int(n) for n in cfg.shape)
    else:
        field = crop if crop is not None else np.median(fp.image_extents_mm(), axis=0)
        shape = tuple(_round_up(f / s) for f, s in zip(field, spacing, strict=False))
    return Plan(
        spacing=tuple(round(float(s), 5) for s in spacing),  # type: ignore[arg-type]
        shape=shape,  # type: ignore[arg-type]
        crop_mm=crop,  # type: ignore[arg-type]
        anisotropic=axis is not None,
        anisotropic_axis=axis,
        interpolation=cfg.interpolation,
        window_range=(float(lo), float(hi)),
        modalities=tuple(_modality_plan(n, m, fp) for n, m in modalities.items()),
        spacing_rule=rule,
    )
