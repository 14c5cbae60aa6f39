import copy
import math

import numpy as np
import pytest

from deepradiomics.config import ModalityConfig, PreprocessConfig
from deepradiomics.errors import UserError
from deepradiomics.preprocess.fingerprint import CaseFingerprint, Fingerprint
from deepradiomics.preprocess.plan import Plan, make_plan

CT = {"ct": ModalityConfig(column="ct", kind="ct", window="soft_tissue")}


def _fp(spacings, extents=None, sizes=None, fg=None) -> Fingerprint:
    cases = []
    for i, sp in enumerate(spacings):
        ext = None if extents is None else extents[i]
        lo, hi = fg[i] if fg is not None else (-100.0, 300.0)
        stats = {"p0_5": lo, "p50": 40.0, "p99_5": hi, "mean": 40.0, "std": 10.0, "voxels": 100}
        cases.append(
            CaseFingerprint(
                case_id=f"c{i}",
                spacing={"ct": tuple(sp)},
                size={"ct": tuple(sizes[i]) if sizes is not None else (100, 100, 100)},
                mask_extent_mm=None if ext is None else tuple(ext),
                mask_volume_ml=None,
                intensity={"ct": {"mask": stats, "foreground": stats}},
            )
        )
    return Fingerprint({"ct": "ct"}, cases)


def test_isotropic_cohort_takes_the_median():
    fp = _fp([(1.0, 1.0, 1.0), (1.2, 1.2, 1.2), (0.8, 0.9, 0.9)], extents=[(20, 20, 20)] * 3)
    plan = make_plan(fp, PreprocessConfig(), CT)
    assert plan.spacing == (1.0, 1.0, 1.0)
    assert plan.anisotropic is False and plan.anisotropic_axis is None
    assert plan.spacing_rule == "median"


def test_anisotropic_cohort_keeps_the_slice_axis_coarse():
    fp = _fp([(5.0, 0.7, 0.7)] * 5, extents=[(30, 40, 40)] * 5)
    plan = make_plan(fp, PreprocessConfig(), CT)
    assert plan.spacing == (5.0, 0.7, 0.7)
    assert plan.anisotropic is True and plan.anisotropic_axis == 0
    # crop: square in-plane, its own slice extent; shape a multiple of 8
    assert plan.crop_mm == pytest.approx((37.5, 50.0, 50.0))
    assert plan.shape == (8, 72, 72)  # 37.5/5 = 7.5 -> 8; 50/0.7 = 71.4 -> 72


def test_anisotropic_slice_axis_uses_its_10th_percentile():
    slices = [5.0, 5.0, 5.0, 5.0, 5.0, 3.0, 2.5, 5.0, 5.0, 5.0]
    fp = _fp([(s, 0.7, 0.8) for s in slices], extents=[(30, 40, 40)] * 10)
    plan = make_plan(fp, PreprocessConfig(), CT)
    assert plan.spacing[0] == pytest.approx(np.percentile(slices, 10))
    assert plan.spacing[1:] == (0.7, 0.8) and plan.anisotropic
    # never finer than the in-plane axes
    fp = _fp([(5.0, 0.7, 0.7)] * 9 + [(0.5, 0.7, 0.7)], extents=[(30, 40, 40)] * 10)
    assert make_plan(fp, PreprocessConfig(), CT).spacing[0] >= 0.7


def test_ratio_threshold_is_configurable():
    fp = _fp([(2.5, 1.0, 1.0)] * 3, extents=[(30, 40, 40)] * 3)
    assert make_plan(fp, PreprocessConfig(), CT).anisotropic is False  # 2.5 < 3 x 1
    assert make_plan(fp, PreprocessConfig(anisotropy_ratio=2.0), CT).anisotropic is True


def test_auto_crop_from_mask_extents():
    extents = [(10, 20, 30), (20, 30, 22), (16, 24, 18), (12, 40, 10)]
    fp = _fp([(1.0, 1.0, 1.0)] * 4, extents=extents)
    plan = make_plan(fp, PreprocessConfig(), CT)
    p95 = np.percentile(extents, 95, axis=0) * 1.25
    side = round(float(p95.max()), 2)
    assert plan.crop_mm == (side, side, side)  # isotropic spacing: a cube
    assert plan.shape == (math.ceil(side / 8) * 8,) * 3
    assert all(n % 8 == 0 for n in plan.shape)


def test_configured_spacing_crop_and_shape():
    fp = _fp([(5.0, 0.7, 0.7)] * 3, extents=[(30, 40, 40)] * 3)
    cfg = PreprocessConfig(spacing=(1.0, 1.0, 1.0), crop_mm=(64.0, 64.0, 64.0))
    plan = make_plan(fp, cfg, CT)
    assert plan.spacing == (1.0, 1.0, 1.0) and plan.spacing_rule == "configured"
    assert plan.anisotropic is False
    assert plan.crop_mm == (64.0, 64.0, 64.0) and plan.shape == (64, 64, 64)
    plan = make_plan(fp, PreprocessConfig(spacing=(2.0, 2.0, 2.0), shape=(16, 32, 32)), CT)
    assert plan.shape == (16, 32, 32)
    plan = make_plan(fp, PreprocessConfig(spacing=(4.0, 1.0, 1.0)), CT)
    assert plan.anisotropic is True and plan.anisotropic_axis == 0


def test_whole_volume_when_no_masks_or_crop_none():
    sizes = [(40, 100, 100), (60, 120, 120), (50, 110, 110)]
    fp = _fp([(2.0, 1.0, 1.0)] * 3, sizes=sizes)  # no masks
    plan = make_plan(fp, PreprocessConfig(), CT)
    assert plan.crop_mm is None and not plan.centre_on_mask
    assert plan.shape == (56, 112, 112)  # median extent 100 x 110 x 110 mm at (2, 1, 1)
    fp = _fp([(2.0, 1.0, 1.0)] * 3, sizes=sizes, extents=[(10, 10, 10)] * 3)
    assert make_plan(fp, PreprocessConfig(crop_mm="none"), CT).crop_mm is None
    with pytest.raises(UserError, match="crop_mm.*no case has a non-empty mask"):
        make_plan(_fp([(1.0, 1.0, 1.0)]), PreprocessConfig(crop_mm=(32.0, 32.0, 32.0)), CT)


def test_normalisation_parameters_are_resolved():
    fp = _fp(
        [(1.0, 1.0, 1.0)] * 3,
        extents=[(10, 10, 10)] * 3,
        fg=[(-900.0, 1200.0), (-800.0, 1000.0), (-850.0, 1500.0)],
    )
    mods = {
        "ct": ModalityConfig(column="CT", kind="ct", window="percentile"),
        "pet": ModalityConfig(column="PET", kind="pet", suv_max=15),
        "t1": ModalityConfig(column="T1", kind="mr", zscore_region="mask"),
    }
    fp.modalities = {"ct": "ct", "pet": "pet", "t1": "mr"}
    plan = make_plan(fp, PreprocessConfig(window_range=(-1.0, 1.0)), mods)
    ct, pet, t1 = plan.modalities
    assert ct.window == (-850.0, 1200.0) and ct.fill == -1024.0  # cohort medians
    assert pet.window == (0.0, 15.0) and pet.fill == 0.0
    assert t1.window is None and t1.zscore_region == "mask" and t1.fill is None
    assert plan.channels == ["ct", "pet", "t1"] and plan.window_range == (-1.0, 1.0)
    lung = make_plan(
        fp,
        PreprocessConfig(),
        {**mods, "ct": ModalityConfig(column="CT", kind="ct", window="lung")},
    )
    assert lung.modalities[0].window == (-1350.0, 150.0)
    hu = make_plan(
        fp,
        PreprocessConfig(),
        {**mods, "ct": ModalityConfig(column="CT", kind="ct", window=(-50, 150))},
    )
    assert hu.modalities[0].window == (-50.0, 150.0)
    bad = {**mods, "ct": ModalityConfig(column="CT", kind="ct", window="lungs")}
    with pytest.raises(UserError, match="cohort.modalities.ct.window: unknown CT window 'lungs'"):
        make_plan(fp, PreprocessConfig(), bad)
    with pytest.raises(UserError, match="window_range"):
        make_plan(fp, PreprocessConfig(window_range=(1.0, 0.0)), mods)


def test_plan_is_pure_and_round_trips_through_json(tmp_path):
    fp = _fp([(5.0, 0.7, 0.7), (4.0, 0.8, 0.8), (5.0, 0.75, 0.75)], extents=[(30, 40, 40)] * 3)
    before = copy.deepcopy(fp.to_dict())
    a = make_plan(fp, PreprocessConfig(), CT)
    b = make_plan(fp, PreprocessConfig(), CT)
    assert a == b and fp.to_dict() == before
    a.save(tmp_path / "plan.json")
    assert Plan.load(tmp_path / "plan.json") == a
    assert Plan.from_dict(a.to_dict()) == a
    with pytest.raises(UserError, match="plan file not found"):
        Plan.load(tmp_path / "nope.json")
