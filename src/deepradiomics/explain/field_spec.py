"""What ``deepradiomics receptive-field CONFIG.yaml | MODEL --spacing Z Y X`` shows: the
receptive field of every stage next to the crop and the cohort's median lesion extent.

With a config, spacing and crop come from its ``preprocess`` section when they are given
there, else from a plan (``--plan DIR``: a run folder, its ``preprocess/`` or ``bundle/``, or
a ``deepradiomics preprocess --out`` folder), whose ``fingerprint.json`` also gives the
median lesion extent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepradiomics.config import load_config
from deepradiomics.errors import UsageError, UserError
from deepradiomics.explain.receptive_field import StageField
from deepradiomics.models import accepts_kwarg, create_backbone
from deepradiomics.preprocess.fingerprint import Fingerprint
from deepradiomics.preprocess.plan import Plan

Triple = tuple[float, float, float]
DEFAULT_SHAPE = (64, 64, 64)


def _fmt(v: Any) -> str:
    return " x ".join(f"{float(a):g}" for a in v)


def field_table(
    stages: list[StageField],
    crop_mm: Triple | None,
    shape: tuple[int, ...],
    lesion_mm: Triple | None,
) -> list[str]:
    """Human lines: one per stage, then the crop and the lesion, all (z, y, x)."""
    lines = [f"{'stage':>5}  {'stride (vox)':>14}  {'field (vox)':>16}  {'field (mm)':>22}"]
    for s in stages:
        lines.append(f"{s.stage:>5}  {_fmt(s.stride):>14}  {_fmt(s.voxels):>16}  {_fmt(s.mm):>22}")
    crop = "whole volume" if crop_mm is None else f"{_fmt(crop_mm)} mm"
    lines.append(f"crop   {crop} -> {_fmt(shape)} voxels")
    if lesion_mm is not None:
        lines.append(f"lesion median extent {_fmt(lesion_mm)} mm")
        covers = [
            s.stage for s in stages if all(m >= e for m, e in zip(s.mm, lesion_mm, strict=False))
        ]
        lines.append(
            f"first stage whose field covers the median lesion: {covers[0] if covers else 'none'}"
        )
    if crop_mm is not None:
        covers = [
            s.stage for s in stages if all(m >= c for m, c in zip(s.mm, crop_mm, strict=False))
        ]
        lines.append(
            f"first stage whose field covers the whole crop: {covers[0] if covers else 'none'}"
        )
    return lines


def field_summary(
    stages: list[StageField],
    spacing: Triple,
    crop_mm: Triple | None,
    shape: tuple[int, ...],
    lesion_mm: Triple | None,
) -> dict[str, Any]:
    """JSON-safe summary (``metrics.json["explain"]["receptive_field"]`` and the report)."""
    return {
        "spacing_mm": list(spacing),
        "stages": [
            {"stage": s.stage, "stride": list(s.stride), "voxels": list(s.voxels), "mm": list(s.mm)}
            for s in stages
        ],
        "crop_mm": None if crop_mm is None else list(crop_mm),
        "shape": list(shape),
        "lesion_median_mm": None if lesion_mm is None else list(lesion_mm),
    }


def _plan_folder(folder: Path) -> tuple[Any, Triple | None]:
    """(Plan, median lesion extent mm) from a folder holding ``plan.json``."""
    for d in (folder, folder / "preprocess", folder / "bundle"):
        if (d / "plan.json").is_file():
            plan = Plan.load(d / "plan.json")
            lesion = None
            for f in (d / "fingerprint.json", folder / "preprocess" / "fingerprint.json"):
                if f.is_file():
                    ext = Fingerprint.load(f).mask_extents_mm()
                    if len(ext):
                        lesion = tuple(round(float(v), 2) for v in np.median(ext, axis=0))
                    break
            return plan, lesion  # type: ignore[return-value]
    raise UserError(f"--plan {folder}: no plan.json there (nor in preprocess/ or bundle/)")


def _from_config(path: Path, plan_dir: Path | None) -> dict[str, Any]:
    cfg = load_config(path)
    pre = cfg.preprocess
    plan, lesion = _plan_folder(plan_dir) if plan_dir is not None else (None, None)
    if isinstance(pre.spacing, tuple):
        spacing = pre.spacing
    elif plan is not None:
        spacing = tuple(plan.spacing)
    else:
        raise UserError(
            f"{path}: preprocess.spacing is 'auto'; pass --plan DIR (a run folder or "
            "`deepradiomics preprocess CONFIG --out DIR`) or --spacing Z Y X"
        )
    crop = (
        pre.crop_mm
        if isinstance(pre.crop_mm, tuple)
        else plan.crop_mm
        if plan is not None
        else None
    )
    if isinstance(pre.shape, tuple):
        shape = pre.shape
    elif plan is not None:
        shape = tuple(plan.shape)
    elif crop is not None:
        shape = tuple(int(np.ceil(c / s / 8) * 8) for c, s in zip(crop, spacing, strict=False))
    else:
        shape = DEFAULT_SHAPE
    return {
        "model": cfg.model.name,
        "kwargs": dict(cfg.model.kwargs),
        "spacing": spacing,
        "crop": crop,
        "shape": shape,
        "lesion": lesion,
    }


def build_backbone(name: str, kwargs: dict[str, Any], spacing: Triple, in_channels: int | None):
    """The registry backbone ``name``, given ``spacing`` when it takes one (as training does)."""
    kwargs = dict(kwargs)
    if accepts_kwarg(name, "spacing"):
        kwargs.setdefault("spacing", tuple(spacing))
    if in_channels is not None:
        kwargs["in_channels"] = in_channels
    return create_backbone(name, **kwargs)


@dataclass(frozen=True)
class FieldSpec:
    """The model and geometry whose receptive field is traced."""

    model: str
    spacing: Triple
    shape: tuple[int, ...]
    crop: Triple | None = None
    lesion: Triple | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)

    def backbone(self):
        return build_backbone(self.model, self.kwargs, self.spacing, None)

    def describe(self) -> str:
        return f"model {self.model}, spacing {_fmt(self.spacing)} mm (z, y, x)"


def field_spec(
    source: str | Path,
    plan: str | Path | None = None,
    spacing: Triple | None = None,
    shape: tuple[int, ...] | None = None,
) -> FieldSpec:
    """The spec of an experiment YAML (``source`` ending in .yaml / .yml) or a registry model
    name; ``plan``, ``spacing`` and ``shape`` as the command's options."""
    source = str(source)
    if source.lower().endswith((".yaml", ".yml")):
        spec = _from_config(Path(source), Path(plan) if plan else None)
        if spacing:
            spec["spacing"] = tuple(spacing)
    else:
        if plan:
            p, lesion = _plan_folder(Path(plan))
            spacing_, crop, shape_ = tuple(p.spacing), p.crop_mm, tuple(p.shape)
        else:
            spacing_, crop, shape_, lesion = (1.0, 1.0, 1.0), None, DEFAULT_SHAPE, None
        if spacing:
            spacing_ = tuple(spacing)
        spec = {
            "model": source,
            "kwargs": {},
            "spacing": spacing_,
            "crop": crop,
            "shape": shape_,
            "lesion": lesion,
        }
    if shape:
        spec["shape"] = tuple(shape)
    if any(s <= 0 for s in spec["spacing"]):
        raise UsageError(f"--spacing must be positive (z y x mm), got {spec['spacing']}")
    return FieldSpec(
        model=spec["model"],
        spacing=spec["spacing"],
        shape=spec["shape"],
        crop=spec["crop"],
        lesion=spec["lesion"],
        kwargs=spec["kwargs"],
    )
