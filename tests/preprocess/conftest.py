"""Tiny synthetic volumes for the preprocessing tests (built with SimpleITK, written as NIfTI)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from deepradiomics.cohort.manifest import Case
from deepradiomics.config import ModalityConfig
from deepradiomics.preprocess.plan import ModalityPlan, Plan


def make_image(
    arr: np.ndarray,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    direction: Sequence[float] | None = None,
) -> sitk.Image:
    """``arr`` is ``[z, y, x]``; ``spacing`` is (z, y, x); ``origin`` is physical (x, y, z)."""
    img = sitk.GetImageFromArray(np.ascontiguousarray(arr))
    img.SetSpacing(tuple(float(s) for s in spacing[::-1]))
    img.SetOrigin(tuple(float(o) for o in origin))
    if direction is not None:
        img.SetDirection(tuple(float(d) for d in direction))
    return img


def ball(
    shape: Sequence[int],
    centre: Sequence[float],
    radius: float,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
) -> np.ndarray:
    """Boolean ``[z, y, x]`` ball of ``radius`` mm around voxel index ``centre`` (z, y, x)."""
    grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    d2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, centre, spacing, strict=False))
    return d2 <= radius**2


def physical_centroid(img: sitk.Image, arr: np.ndarray | None = None) -> np.ndarray:
    """Intensity-weighted centroid of a non-negative image, physical (x, y, z)."""
    a = sitk.GetArrayFromImage(img).astype(np.float64) if arr is None else arr.astype(np.float64)
    idx = np.array(np.nonzero(a > 0))
    w = a[a > 0]
    cz, cy, cx = (idx * w).sum(axis=1) / w.sum()
    return np.array(img.TransformContinuousIndexToPhysicalPoint((cx, cy, cz)))


def index_centroid(arr: np.ndarray) -> np.ndarray:
    """Intensity-weighted centroid (z, y, x) of the positive voxels of an array."""
    a = np.clip(arr.astype(np.float64), 0, None)
    idx = np.array(np.nonzero(a > 0))
    return (idx * a[a > 0]).sum(axis=1) / a[a > 0].sum()


def write(img: sitk.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path))
    return path


def ct_case(
    root: Path,
    case_id: str,
    shape=(24, 24, 24),
    spacing=(1.0, 1.0, 1.0),
    centre=(12, 12, 12),
    radius=4.0,
    tumour_hu=60.0,
    body_hu=20.0,
    seed=0,
    mask: bool = True,
) -> Case:
    """A CT: air, a body block, a ball 'tumour' (and its mask) at ``centre`` (voxel index)."""
    rng = np.random.default_rng(seed)
    arr = np.full(shape, -1000.0, dtype=np.float32)
    arr[2:-2, 2:-2, 2:-2] = body_hu
    inside = ball(shape, centre, radius, spacing)
    arr[inside] = tumour_hu
    arr += rng.normal(0, 5, size=shape).astype(np.float32)
    img_path = write(make_image(arr, spacing), root / case_id / "ct.nii.gz")
    mask_path = None
    if mask:
        mask_path = write(
            make_image(inside.astype(np.uint8), spacing), root / case_id / "mask.nii.gz"
        )
    return Case(
        case_id=case_id, patient_id=case_id, images={"ct": img_path}, mask=mask_path, line=2
    )


CT = {"ct": ModalityConfig(column="ct", kind="ct", window="soft_tissue")}


@pytest.fixture
def ct_modalities() -> dict[str, ModalityConfig]:
    return dict(CT)


def modality(
    name: str, kind: str, window: tuple[float, float] | None = None, region: str = "body"
) -> ModalityPlan:
    from deepradiomics.preprocess.normalise import CT_BACKGROUND_HU

    fill = {"ct": CT_BACKGROUND_HU, "pet": 0.0, "mr": None}[kind]
    if kind == "pet" and window is None:
        window = (0.0, 20.0)
    return ModalityPlan(
        name=name,
        column=name,
        kind=kind,
        suv=True,
        window=window,
        zscore_region=region if kind == "mr" else None,
        fill=fill,
        window_source="test",
    )


def simple_plan(
    modalities, spacing=(1.0, 1.0, 1.0), shape=(16, 16, 16), crop=True, interpolation="linear"
) -> Plan:
    crop_mm = tuple(n * s for n, s in zip(shape, spacing, strict=False)) if crop else None
    return Plan(
        spacing=tuple(spacing),
        shape=tuple(shape),
        crop_mm=crop_mm,
        anisotropic=False,
        anisotropic_axis=None,
        interpolation=interpolation,
        window_range=(0.0, 1.0),
        modalities=tuple(modalities),
        spacing_rule="test",
    )
