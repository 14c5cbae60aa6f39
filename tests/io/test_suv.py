"""Body-weight SUV factors: calculate-suv's real-scanner cases, edge cases, the DICOM path."""

from __future__ import annotations

import copy
import csv
import json
import logging
import math
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from deepradiomics.errors import UserError
from deepradiomics.io.readers import read_image
from deepradiomics.io.suv import dicom_suv_factors, suv_bw_factor, suv_bw_factors, suv_metadata
from tests.conftest import shared_path
from tests.io.synthetic_dicom import (
    FAKE_BIRTH,
    FAKE_ID,
    FAKE_NAME,
    SIEMENS_FACTOR,
    SIEMENS_PET,
    stored_slices,
    write_series,
)

LN2 = math.log(2.0)


def _cases() -> list[dict[str, str]]:
    table = shared_path("pet_suv_metadata", "expected_suvbw_factors.csv")
    with open(table, newline="") as fh:
        return list(csv.DictReader(fh))


def _instances(name: str) -> list[dict]:
    return json.loads(shared_path("pet_suv_metadata", "metadata", name).read_text())


def test_every_calculate_suv_case_within_0_1_percent():
    """All 8 vendor cases (Siemens, GE, Philips BQML/CNTS, acquisition before series time, no
    start DateTime). Measured worst relative error: 6.8e-12 (RADIOPHARM_DATETIME_UNDEFINED)."""
    cases = _cases()
    assert len(cases) == 8
    worst = 0.0
    for row in cases:
        instances = _instances(row["metadata_file"])
        expected = float(row["expected_suvbw_factor"])
        factors = suv_bw_factors(instances, row["case"])
        assert len(factors) == len(instances)
        for f in factors:
            rel = abs(f - expected) / expected
            assert rel < 1e-3, (row["case"], f, expected)
            assert abs(f - expected) <= float(row["tolerance_abs"])
            worst = max(worst, rel)
    assert worst < 1e-9  # the formula is the same, only float rounding differs


def test_acquisition_before_series_time_decays_to_acquisition():
    """CPS_AND_BQML...: series time 13:49:18 rewritten after the 13:03:48 acquisition; decaying
    to the series time would be 27 % off."""
    instances = _instances("CPS_AND_BQML_AC_DT_-_S_DT-instances.json")
    m = instances[0]
    naive = (
        m["PatientWeight"]
        * 1000
        / (
            m["RadionuclideTotalDose"]
            * 2 ** (-(13 * 3600 + 49 * 60 + 18 - (12 * 3600 + 37)) / m["RadionuclideHalfLife"])
        )
    )
    factor = suv_bw_factor(m)
    assert abs(naive / factor - 1) > 0.2
    assert factor == pytest.approx(0.00026503312764157046, rel=1e-9)


def test_philips_bqml_ignores_private_factor_and_cnts_uses_it():
    bqml = _instances("PHILIPS_BQML-instances.json")[0]
    assert suv_bw_factor(bqml) != pytest.approx(
        float(bqml["PhilipsPETPrivateGroup"]["SUVScaleFactor"])
    )
    cnts = copy.deepcopy(bqml) | {"Units": "CNTS"}
    assert suv_bw_factor(cnts) == pytest.approx(0.003515736)
    # only the activity-concentration factor: counts -> Bq/ml, then the BQML factor
    cnts["PhilipsPETPrivateGroup"] = {"ActivityConcentrationScaleFactor": "4.709921"}
    assert suv_bw_factor(cnts) == pytest.approx(4.709921 * suv_bw_factor(bqml), rel=1e-12)
    cnts["PhilipsPETPrivateGroup"] = {"SUVScaleFactor": "0"}
    with pytest.raises(UserError, match=r"7053,1000.*7053,1009"):
        suv_bw_factor(cnts)


def _siemens(**changes) -> dict:
    meta = dict(SIEMENS_PET)
    for key, value in changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    return meta


def test_gml_is_already_suv():
    assert suv_bw_factors([_siemens(Units="GML")] * 3) == [1.0, 1.0, 1.0]
    # GML needs no dose, weight or times
    assert suv_bw_factor({"Units": "GML", "SUVType": "BW"}) == 1.0
    with pytest.raises(UserError, match="SUVType"):
        suv_bw_factor({"Units": "GML", "SUVType": "LBM"})


def test_admin_decay_correction_uses_full_dose():
    assert suv_bw_factor(_siemens(DecayCorrection="ADMIN")) == pytest.approx(
        67_000 / 374e6, rel=1e-15
    )


def test_no_decay_correction_decays_each_frame_to_its_mean_count_time():
    frame_ms = 120_000
    slices = [{"AcquisitionTime": "104830"}, {"AcquisitionTime": "105030"}]
    metas = [
        _siemens(DecayCorrection="NONE", ActualFrameDuration=frame_ms, CorrectedImage=["ATTN"]) | s
        for s in slices
    ]
    factors = suv_bw_factors(metas)
    lam, dur = LN2 / 6586.2, frame_ms / 1000
    mean_t = math.log(lam * dur / (1 - math.exp(-lam * dur))) / lam
    assert 59 < mean_t < 61  # close to mid-frame for a frame much shorter than the half-life
    starts_s = (2 * 3600 + 17 * 60 + 45, 2 * 3600 + 19 * 60 + 45)
    for factor, start_s in zip(factors, starts_s, strict=True):
        expected = 67_000 / (374e6 * math.exp(-lam * (start_s + mean_t)))
        assert factor == pytest.approx(expected, rel=1e-12)
    assert factors[1] > factors[0]
    with pytest.raises(UserError, match="ActualFrameDuration"):
        suv_bw_factor(_siemens(DecayCorrection="NONE", CorrectedImage=["ATTN"]))


def test_start_datetime_wins_and_midnight_is_handled():
    # injection at 23:30 the day before a 00:30 scan: 3600 s of decay either way
    expected = 67_000 / (374e6 * 2 ** (-3600 / 6586.2))
    dated = _siemens(
        SeriesDate="20201218",
        SeriesTime="003000",
        AcquisitionDate="20201218",
        AcquisitionTime="003000",
        RadiopharmaceuticalStartDateTime="20201217233000.00 ",
        RadiopharmaceuticalStartTime="999999",
    )
    assert suv_bw_factor(dated) == pytest.approx(expected, rel=1e-12)
    undated = _siemens(
        SeriesDate="20201218",
        SeriesTime="003000",
        AcquisitionDate="20201218",
        AcquisitionTime="003000",
        RadiopharmaceuticalStartTime="233000",
    )
    assert suv_bw_factor(undated) == pytest.approx(expected, rel=1e-12)
    legacy = _siemens(
        SeriesTime="10:48:29",
        AcquisitionTime="10:48:30.35137",
        RadiopharmaceuticalStartTime="08:30:45",
    )
    assert suv_bw_factor(legacy) == pytest.approx(SIEMENS_FACTOR, rel=1e-9)


@pytest.mark.parametrize(
    ("remove", "named"),
    [
        ("PatientWeight", "PatientWeight"),
        ("RadionuclideTotalDose", "RadionuclideTotalDose"),
        ("RadionuclideHalfLife", "RadionuclideHalfLife"),
        ("RadiopharmaceuticalStartTime", "RadiopharmaceuticalStartTime"),
        ("SeriesTime", "SeriesTime"),
        ("SeriesDate", "SeriesDate"),
        ("Units", "Units"),
        ("DecayCorrection", "DecayCorrection"),
    ],
)
def test_missing_tag_is_named(remove, named):
    with pytest.raises(UserError, match=named) as info:
        suv_bw_factor(_siemens(**{remove: None}), "pet_folder/")
    assert str(info.value).startswith("pet_folder/:")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"Units": "CPS"}, "Units"),
        ({"DecayCorrection": "LATER"}, "DecayCorrection"),
        ({"CorrectedImage": ["DECY", "SCAT"]}, "ATTN"),
        ({"CorrectedImage": ["ATTN"]}, "DECY"),
        ({"PatientWeight": 0}, "PatientWeight.*positive"),
        ({"RadionuclideTotalDose": "a lot"}, "RadionuclideTotalDose.*not a number"),
        ({"RadiopharmaceuticalStartDateTime": "20201217113000"}, "after the scan"),
        ({"SeriesTime": "25h"}, "SeriesDate/SeriesTime"),
    ],
)
def test_bad_values_are_user_errors(changes, message):
    with pytest.raises(UserError, match=message):
        suv_bw_factor(_siemens(**changes))


def test_instances_of_different_series_are_refused():
    with pytest.raises(UserError, match="Units"):
        suv_bw_factors([_siemens(), _siemens(Units="GML")])


def test_metadata_from_real_sarcoma_pet_headers():
    """pydicom extraction (incl. the radiopharmaceutical sequence) matches the header summary
    table of the sarcoma PET DICOM series (Units GML, DecayCorrection ADMIN)."""
    summary = shared_path("ibsi_sts_validation", "sts_dicom_header_summary.csv")
    rows = {r["patient_id"]: r for r in csv.DictReader(open(summary, newline=""))}
    for patient in ("STS_001", "STS_008", "STS_019", "STS_025"):
        folder = shared_path("ibsi_sts_validation", "dicom", patient, "PET", "image")
        meta = suv_metadata(
            pydicom.dcmread(sorted(folder.glob("*.dcm"))[0], stop_before_pixels=True)
        )
        row = rows[patient]
        assert meta["Units"] == row["pet_units"] == "GML"
        assert meta["DecayCorrection"] == row["pet_decay_correction"] == "ADMIN"
        assert float(meta["PatientWeight"]) == float(row["weight_kg"])
        assert float(meta["RadionuclideTotalDose"]) == float(row["injected_dose_bq"])
        assert float(meta["RadionuclideHalfLife"]) == float(row["half_life_s"])
        assert meta["RadiopharmaceuticalStartTime"] == row["radiopharm_start_time"]
        assert meta["SeriesTime"] == row["pet_series_time"]
        assert not {"PatientName", "PatientID", "PatientBirthDate"} & set(meta)
        assert set(dicom_suv_factors(sorted(folder.glob("*.dcm"))[:3]).tolist()) == {1.0}


# --- the DICOM path: pydicom tags + SimpleITK voxels --------------------------------------


def test_bqml_series_read_as_suv(tmp_path):
    stored = stored_slices(3)
    slopes = [1.0, 0.5, 0.25]  # first slice slope 1: SimpleITK alone would return truncated ints
    write_series(tmp_path, stored, slopes=slopes, pet=SIEMENS_PET)
    img = read_image(tmp_path, kind="pet", orient=False)
    assert img.GetPixelID() == sitk.sitkFloat32
    expected = stored * np.array(slopes)[:, None, None] * SIEMENS_FACTOR
    np.testing.assert_allclose(sitk.GetArrayFromImage(img), expected, rtol=1e-6)
    raw = read_image(tmp_path, kind="pet", suv=False, orient=False)
    np.testing.assert_allclose(
        sitk.GetArrayFromImage(raw), stored * np.array(slopes)[:, None, None], rtol=1e-12
    )


def test_philips_cnts_factor_per_instance(tmp_path):
    stored = stored_slices(3)
    factors = ["0.000551", "0.000600", "0.000700"]
    write_series(
        tmp_path,
        stored,
        pet=SIEMENS_PET | {"Units": "CNTS"},
        philips=[{"SUVScaleFactor": f, "ActivityConcentrationScaleFactor": "1.6"} for f in factors],
    )
    files = sorted(tmp_path.glob("*.dcm"))
    np.testing.assert_allclose(dicom_suv_factors(files), [float(f) for f in factors], rtol=1e-12)
    img = read_image(tmp_path, kind="pet", orient=False)
    expected = stored * np.array([float(f) for f in factors])[:, None, None]
    np.testing.assert_allclose(sitk.GetArrayFromImage(img), expected, rtol=1e-6)


def test_acquisition_before_series_uses_earliest_instance(tmp_path):
    stored = stored_slices(3)
    acq = ["104100", "103900", "104300"]  # series time (10:48:29) is after all of them
    write_series(tmp_path, stored, pet=SIEMENS_PET, per_slice=[{"AcquisitionTime": t} for t in acq])
    factors = dicom_suv_factors(sorted(tmp_path.glob("*.dcm")))
    decay_s = (10 * 3600 + 39 * 60) - (8 * 3600 + 30 * 60 + 45)
    assert np.allclose(factors, 67_000 / (374e6 * 2 ** (-decay_s / 6586.2)), rtol=1e-12)


def test_missing_dicom_tag_is_named_without_patient_identifiers(tmp_path, caplog):
    stored = stored_slices(2)
    write_series(tmp_path, stored, pet=_siemens(PatientWeight=None))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(UserError, match=r"PatientWeight \(0010,1030\)") as info:
        read_image(tmp_path, kind="pet")
    assert str(tmp_path) in str(info.value)
    write_series(tmp_path / "ok", stored, pet=SIEMENS_PET)
    read_image(tmp_path / "ok", kind="pet")
    text = str(info.value) + caplog.text
    for secret in (FAKE_NAME, FAKE_ID, FAKE_BIRTH, "Doe", "Jane"):
        assert secret not in text
    assert "SUVbw" in caplog.text  # the debug line was emitted and checked


def test_sarcoma_pet_dicom_matches_nifti():
    """The 4 sarcoma PET series with DICOM (STS_001/008/019/025, Units GML = SUV already, per-slice
    RescaleSlope) against MIRP's NIfTI export of the same images. Measured: same grid (origin within
    1.3e-5 mm, spacing within 2e-8 mm: NIfTI stores float32), max |diff| 1.1e-6 SUV, max relative
    diff 1.1e-7 where SUV > 0.1: float32 rounding of the NIfTI, nothing else."""
    for patient in ("STS_001", "STS_008", "STS_019", "STS_025"):
        dicom = read_image(
            shared_path("ibsi_sts_validation", "dicom", patient, "PET", "image"), kind="pet"
        )
        nifti = read_image(
            shared_path("ibsi_sts_validation", "nifti", patient, "PET_image.nii.gz"), kind="pet"
        )
        assert dicom.GetSize() == nifti.GetSize()
        np.testing.assert_allclose(dicom.GetSpacing(), nifti.GetSpacing(), atol=1e-5)
        np.testing.assert_allclose(dicom.GetOrigin(), nifti.GetOrigin(), atol=1e-4)
        np.testing.assert_allclose(dicom.GetDirection(), nifti.GetDirection(), atol=1e-6)
        a, b = sitk.GetArrayFromImage(dicom), sitk.GetArrayFromImage(nifti)
        assert b.max() > 5  # real uptake, not an empty crop
        np.testing.assert_allclose(a, b, rtol=5e-7, atol=1e-6)


def test_real_pet_series_with_wrong_kind_is_refused():
    folder = shared_path("ibsi_sts_validation", "dicom", "STS_019", "CT", "image")
    with pytest.raises(UserError, match="Modality is CT"):
        read_image(folder, kind="pet")


def test_folder_given_as_path_string(tmp_path):
    write_series(tmp_path, stored_slices(2), pet=SIEMENS_PET)
    assert read_image(str(tmp_path), kind="pet").GetSize() == (5, 4, 2)


def test_metadata_json_shape_matches_reader(tmp_path):
    """suv_metadata on a written file gives the calculate-suv JSON shape for the same tags."""
    write_series(
        tmp_path, stored_slices(1), pet=SIEMENS_PET, philips=[{"SUVScaleFactor": "0.0005"}]
    )
    meta = suv_metadata(pydicom.dcmread(next(Path(tmp_path).glob("*.dcm"))))
    for key, value in SIEMENS_PET.items():
        if isinstance(value, (int, float)):
            assert float(meta[key]) == value, key
        else:
            assert (list(meta[key]) if isinstance(value, list) else meta[key]) == value, key
    assert meta["PhilipsPETPrivateGroup"] == {"SUVScaleFactor": pytest.approx(0.0005)}
