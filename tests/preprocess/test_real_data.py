"""Preprocessing on real volumes from ../shared/data (skipped when the data is absent)."""

import numpy as np
import pytest
import SimpleITK as sitk

from deepradiomics.cohort.manifest import Case
from deepradiomics.config import ModalityConfig, PreprocessConfig
from deepradiomics.preprocess import prepare_cohort
from tests.conftest import shared_path

pytestmark = pytest.mark.shared_data


def test_sarcoma_pet_ct_on_one_grid(tmp_path):
    """PET (3.9 mm) and CT (0.98 mm) of two sarcoma patients end on one grid; the PET
    uptake lies inside the CT-drawn tumour mask."""
    root = shared_path("ibsi_sts_validation", "nifti")
    cases = [
        Case(
            cid,
            cid,
            {"ct": root / cid / "CT_image.nii.gz", "pet": root / cid / "PET_image.nii.gz"},
            root / cid / "CT_mask.nii.gz",
            line=i + 2,
        )
        for i, cid in enumerate(["STS_002", "STS_025"])
    ]
    mods = {
        "ct": ModalityConfig(column="ct", kind="ct", window="soft_tissue"),
        "pet": ModalityConfig(column="pet", kind="pet", suv_max=10),
    }
    prepared = prepare_cohort(cases, mods, PreprocessConfig(), tmp_path, workers=1, progress=False)
    assert not prepared.failures
    plan = prepared.plan
    assert plan.anisotropic and plan.anisotropic_axis == 0  # 3.27 mm slices vs 0.98 mm pixels
    assert plan.spacing[1] == pytest.approx(0.97656, abs=1e-4) and plan.spacing[0] == pytest.approx(
        3.27, abs=1e-3
    )
    assert all(n % 8 == 0 for n in plan.shape)
    fp = prepared.fingerprint.cases[0]
    header = sitk.ReadImage(str(cases[0].images["pet"]))
    assert fp.spacing["pet"] == pytest.approx(header.GetSpacing()[::-1])
    images, masks, _ = prepared.load_all()
    for i in range(2):
        inside, outside = masks[i] > 0, masks[i] == 0
        assert images[i, 1][inside].mean() > 3 * images[i, 1][outside].mean()  # FDG uptake
        assert prepared.meta(prepared.case_ids[i])["mask_truncated"] is False
        assert 0.0 <= images[i].min() and images[i].max() <= 1.0


def test_thick_slice_lung_ct(tmp_path):
    """PyRadiomics lung1: 0.57 x 0.57 x 5 mm CT; the slice axis stays coarse."""
    root = shared_path("pyradiomics_testcases")
    case = Case(
        "lung1", "lung1", {"ct": root / "lung1_image.nrrd"}, root / "lung1_label.nrrd", line=2
    )
    mods = {"ct": ModalityConfig(column="ct", kind="ct", window="lung")}
    prepared = prepare_cohort([case], mods, PreprocessConfig(), tmp_path, workers=1, progress=False)
    plan = prepared.plan
    assert plan.spacing == pytest.approx((5.0, 0.5703, 0.5703), abs=1e-4)
    assert plan.anisotropic and plan.crop_mm[1] == plan.crop_mm[2]
    image, mask, meta = prepared.load_case("lung1")
    assert image.shape == (1, *plan.shape) and mask.sum() > 0
    # at unchanged spacing the snapped grid copies voxels: the tumour voxels keep their HU
    raw = sitk.GetArrayFromImage(sitk.ReadImage(str(case.images["ct"]))).astype(np.float64)
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(case.mask))) > 0
    expected = np.clip((raw[label] + 1350.0) / 1500.0, 0, 1)
    assert image[0][mask > 0].mean() == pytest.approx(expected.mean(), abs=1e-4)
