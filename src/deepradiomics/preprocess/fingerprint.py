"""The cohort fingerprint (nnU-Net style): what the data look like before any choice is made.

Per case: spacing and size of every modality, the mask's bounding-box extent (mm) and
volume, and per modality the intensity percentiles 0.5 / 50 / 99.5, mean and std inside
the mask and inside the foreground (``normalise.foreground_threshold``). Written as
``fingerprint.json``; ``plan.make_plan`` turns it into the preprocessing plan. One case's
fingerprint reads each of its files once (``fingerprint_case``); the pipeline runs cases
in parallel and caches each case's fingerprint by file content.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from deepradiomics.cohort.manifest import Case
from deepradiomics.config import ModalityConfig
from deepradiomics.io.readers import spacing_zyx
from deepradiomics.preprocess.crop import mask_box
from deepradiomics.preprocess.normalise import foreground_threshold, intensity_stats
from deepradiomics.preprocess.resample import mask_on
from deepradiomics.preprocess.source import read_case

FINGERPRINT_VERSION = 1
Triple = tuple[float, float, float]
Stats = dict[str, float]


@dataclass
class CaseFingerprint:
    """One case. Dicts are keyed by modality name; ``intensity[m]`` holds the regions
    ``"mask"`` and ``"foreground"`` (``None`` where the region is empty or absent)."""

    case_id: str
    spacing: dict[str, Triple]  # (z, y, x) mm
    size: dict[str, tuple[int, int, int]]  # (z, y, x) voxels
    mask_extent_mm: Triple | None = None  # (z, y, x) bounding box
    mask_volume_ml: float | None = None
    intensity: dict[str, dict[str, Stats | None]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CaseFingerprint:
        ext = d.get("mask_extent_mm")
        floats = lambda v: tuple(float(x) for x in v)  # noqa: E731
        return cls(
            case_id=str(d["case_id"]),
            spacing={k: floats(v) for k, v in d["spacing"].items()},
            size={k: tuple(int(x) for x in v) for k, v in d["size"].items()},  # type: ignore[misc]
            mask_extent_mm=None if ext is None else floats(ext),
            mask_volume_ml=d.get("mask_volume_ml"),
            intensity={k: dict(v) for k, v in d.get("intensity", {}).items()},
        )


@dataclass
class Fingerprint:
    """The cohort: modality kinds (in channel order) and one record per readable case."""

    modalities: dict[str, str]  # name -> kind
    cases: list[CaseFingerprint]

    @property
    def reference(self) -> str:
        """The first modality: its grid is the one the plan is made for."""
        return next(iter(self.modalities))

    def subset(self, case_ids: Collection[str]) -> Fingerprint:
        """The cohort restricted to ``case_ids`` (e.g. one fold's training part, to plan on)."""
        keep = set(case_ids)
        return Fingerprint(dict(self.modalities), [c for c in self.cases if c.case_id in keep])

    def spacings(self, modality: str | None = None) -> np.ndarray:
        m = modality or self.reference
        return np.array([c.spacing[m] for c in self.cases], dtype=np.float64).reshape(-1, 3)

    def image_extents_mm(self, modality: str | None = None) -> np.ndarray:
        m = modality or self.reference
        return np.array(
            [np.multiply(c.size[m], c.spacing[m]) for c in self.cases], dtype=np.float64
        ).reshape(-1, 3)

    def mask_extents_mm(self) -> np.ndarray:
        """``[M, 3]`` bounding-box extents of the cases that have a non-empty mask."""
        ext = [c.mask_extent_mm for c in self.cases if c.mask_extent_mm is not None]
        return np.array(ext, dtype=np.float64).reshape(-1, 3)

    def intensity(self, modality: str, region: str, stat: str) -> np.ndarray:
        """One statistic across the cases where the region exists."""
        vals = [c.intensity.get(modality, {}).get(region) for c in self.cases]
        return np.array([v[stat] for v in vals if v], dtype=np.float64)

    def summary(self) -> dict[str, Any]:
        """Cohort-level figures for people reading ``fingerprint.json`` (plans use the cases)."""
        out: dict[str, Any] = {"cases": len(self.cases)}
        if not self.cases:
            return out
        sp = self.spacings()
        out["spacing_median"] = np.median(sp, axis=0).round(4).tolist()
        out["spacing_min"] = sp.min(axis=0).round(4).tolist()
        out["spacing_max"] = sp.max(axis=0).round(4).tolist()
        sizes = [c.size[self.reference] for c in self.cases]
        out["size_median"] = np.median(sizes, axis=0).tolist()
        ext = self.mask_extents_mm()
        out["cases_with_mask"] = int(len(ext))
        if len(ext):
            out["mask_extent_mm_median"] = np.median(ext, axis=0).round(2).tolist()
            out["mask_extent_mm_p95"] = np.percentile(ext, 95, axis=0).round(2).tolist()
        intensity: dict[str, Any] = {}
        for m in self.modalities:
            intensity[m] = {
                region: {
                    stat: round(float(np.median(v)), 4)
                    for stat in ("p0_5", "p50", "p99_5", "mean", "std")
                    if (v := self.intensity(m, region, stat)).size
                }
                for region in ("mask", "foreground")
            }
        out["intensity_median_over_cases"] = intensity
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": FINGERPRINT_VERSION,
            "modalities": dict(self.modalities),
            "summary": self.summary(),
            "cases": [asdict(c) for c in self.cases],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Fingerprint:
        return cls(
            modalities=dict(d["modalities"]),
            cases=[CaseFingerprint.from_dict(c) for c in d["cases"]],
        )

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> Fingerprint:
        return cls.from_dict(json.loads(Path(path).read_text()))


def fingerprint_images(
    case_id: str,
    images: Mapping[str, sitk.Image],
    mask: sitk.Image | None,
    kinds: Mapping[str, str],
) -> CaseFingerprint:
    """Fingerprint of one case from images already in memory."""
    box = mask_box(mask) if mask is not None else None
    fp = CaseFingerprint(
        case_id=case_id,
        spacing={m: spacing_zyx(img) for m, img in images.items()},
        size={m: tuple(img.GetSize()[::-1]) for m, img in images.items()},  # type: ignore[misc]
        mask_extent_mm=None if box is None else box.extent_mm,
        mask_volume_ml=None if box is None else box.volume_ml,
    )
    for m, img in images.items():
        arr = sitk.GetArrayViewFromImage(img)
        inside = mask_on(mask, img) if box is not None else None
        fp.intensity[m] = {
            "mask": intensity_stats(arr[inside]) if inside is not None else None,
            "foreground": intensity_stats(arr[arr > foreground_threshold(img, kinds[m])]),
        }
    return fp


def fingerprint_case(case: Case, modalities: Mapping[str, ModalityConfig]) -> CaseFingerprint:
    """Read one case's files (once each) and fingerprint them."""
    images, mask = read_case(case, {m: (c.kind, c.suv) for m, c in modalities.items()})
    kinds = {m: c.kind for m, c in modalities.items()}
    return fingerprint_images(case.case_id, images, mask, kinds)
