"""``deepradiomics validate`` on a corpus of malformed cohorts: exact problem lines, exit codes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from deepradiomics.cli import main
from tests.cohort.cohort_builder import Cohort, ct_array, mask_array, pet_array, volume


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["validate", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.fixture
def cohort(tmp_path: Path) -> Cohort:
    return Cohort(tmp_path)


def test_clean_cohort_exits_0(cohort, capsys):
    code, out, _ = run(capsys, str(cohort.save()))
    assert code == 0
    assert out.strip() == "summary: 10 cases checked: no problems"


# Each breaker damages one thing in the clean cohort and returns the exact line expected
# on stdout (plus optional extra CLI args) ; the expected exit code is 1 for an error line
# and 0 for a warning line.
Breaker = Callable[[Cohort], "str | tuple[str, list[str]]"]


def _missing_file(c: Cohort) -> str:
    c.rows[3]["ct"] = "images/nowhere_ct.nii.gz"
    return "error: case C003 (line 5), column ct, file images/nowhere_ct.nii.gz: file not found"


def _not_an_image(c: Cohort) -> str:
    (c.root / "images/junk_pet.nii.gz").write_bytes(b"this is not an image")
    c.rows[0]["pet"] = "images/junk_pet.nii.gz"
    return (
        "error: case C000 (line 2), column pet, file images/junk_pet.nii.gz: cannot read image "
        "(not an image format SimpleITK knows, or a corrupt file)"
    )


def _truncated_nifti(c: Cohort) -> str:
    path = c.root / c.rows[1]["pet"]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # SimpleITK alone would zero-fill the rest
    return f"error: case C001 (line 3), column pet, file {c.rows[1]['pet']}: file is truncated"


def _truncated_raw_nifti(c: Cohort) -> str:
    import SimpleITK as sitk

    rel = "images/c002_ct_raw.nii"
    sitk.WriteImage(volume(ct_array(2)), str(c.root / rel), useCompression=False)
    data = (c.root / rel).read_bytes()
    (c.root / rel).write_bytes(data[:-100])
    c.rows[2]["ct"] = rel
    return f"error: case C002 (line 4), column ct, file {rel}: file is truncated"


def _corrupt_gzip(c: Cohort) -> str:
    path = c.root / c.rows[1]["pet"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)  # damaged in the middle
    path.write_bytes(bytes(data))
    return (
        f"error: case C001 (line 3), column pet, file {c.rows[1]['pet']}: cannot read image "
        "(not an image format SimpleITK knows, or a corrupt file)"
    )


def _image_2d(c: Cohort) -> str:
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(ct_array(4)[0])
    rel = c.replace(4, "ct", img)
    return (
        f"error: case C004 (line 6), column ct, file {rel}: image is 2D with size (8, 8), "
        "expected 3D"
    )


def _mask_size(c: Cohort) -> str:
    rel = c.replace(5, "mask", volume(mask_array((9, 8, 8))))
    return (
        f"error: case C005 (line 7), column mask, file {rel}: mask geometry does not match "
        "column ct (nor any other image): size 8x8x9 vs 8x8x8"
    )


def _mask_spacing(c: Cohort) -> str:
    rel = c.replace(0, "mask", volume(mask_array(), spacing=(1.0, 1.0, 2.5)))
    return (
        f"error: case C000 (line 2), column mask, file {rel}: mask geometry does not match "
        "column ct (nor any other image): spacing (1, 1, 2.5) vs (1, 1, 2) mm"
    )


def _mask_origin(c: Cohort) -> str:
    rel = c.replace(0, "mask", volume(mask_array(), origin=(0.0, 0.5, 0.0)))
    return (
        f"error: case C000 (line 2), column mask, file {rel}: mask geometry does not match "
        "column ct (nor any other image): origin (0, 0.5, 0) vs (0, 0, 0) mm"
    )


def _mask_direction(c: Cohort) -> str:
    # rotated by 0.01 rad about z: cosines differ by ~1e-2, well beyond the 1e-4 tolerance
    a = 0.01
    rot = (np.cos(a), -np.sin(a), 0.0, np.sin(a), np.cos(a), 0.0, 0.0, 0.0, 1.0)
    rel = c.replace(0, "mask", volume(mask_array(), direction=rot))
    return (
        f"error: case C000 (line 2), column mask, file {rel}: mask geometry does not match "
        "column ct (nor any other image): direction differs (largest cosine difference 0.01)"
    )


def _empty_mask(c: Cohort) -> str:
    rel = c.replace(6, "mask", volume(np.zeros((8, 8, 8), np.uint8)))
    return f"error: case C006 (line 8), column mask, file {rel}: mask is empty (no non-zero voxel)"


def _label_map_mask(c: Cohort) -> str:
    m = mask_array()
    m[6:, 6:, 6:] = 2
    rel = c.replace(7, "mask", volume(m))
    return (
        f"error: case C007 (line 9), column mask, file {rel}: mask is not binary: it holds "
        "labels 1, 2 (expected 0 and 1; for a label map, export the one structure to use)"
    )


def _fractional_mask(c: Cohort) -> str:
    m = mask_array().astype(np.float32) * 0.5
    rel = c.replace(7, "mask", volume(m))
    return (
        f"error: case C007 (line 9), column mask, file {rel}: mask is not binary: it holds "
        "values 0.5 (expected 0 and 1)"
    )


def _mask_label_255(c: Cohort) -> str:
    rel = c.replace(8, "mask", volume(mask_array() * 255))
    return (
        f"warning: case C008 (line 10), column mask, file {rel}: mask uses the label 255 "
        "instead of 1; every non-zero voxel is taken as foreground"
    )


def _nan_voxels(c: Cohort) -> str:
    p = pet_array(9)
    p[0, 0, :3] = np.nan
    p[1, 1, 1] = np.inf
    rel = c.replace(9, "pet", volume(p))
    return (
        f"error: case C009 (line 11), column pet, file {rel}: 4 voxels are NaN or infinite "
        "(SimpleITK would silently read them as 0)"
    )


def _nan_voxels_nrrd(c: Cohort) -> str:
    p = pet_array(9)
    p[2, 2, 2] = np.nan
    rel = c.replace(9, "pet", volume(p), name="images/c009_pet.nrrd")
    return f"error: case C009 (line 11), column pet, file {rel}: 1 voxel is NaN or infinite"


def _tiny_spacing(c: Cohort) -> str:
    s = (0.01, 0.01, 0.01)
    rel = c.replace(2, "ct", volume(ct_array(2), spacing=s))
    c.replace(2, "pet", volume(pet_array(2), spacing=s))
    c.replace(2, "mask", volume(mask_array(), spacing=s))
    return (
        f"error: case C002 (line 4), column ct, file {rel}: spacing (0.01, 0.01, 0.01) mm is "
        "implausible (expected 0.05 to 20 mm per axis; wrong units in the header?)"
    )


def _huge_spacing(c: Cohort) -> str:
    s = (1.0, 1.0, 25.0)
    c.replace(2, "ct", volume(ct_array(2), spacing=s))
    c.replace(2, "pet", volume(pet_array(2), spacing=s))
    rel = c.replace(2, "mask", volume(mask_array(), spacing=s))
    return (
        f"error: case C002 (line 4), column mask, file {rel}: spacing (1, 1, 25) mm is "
        "implausible (expected 0.05 to 20 mm per axis; wrong units in the header?)"
    )


def _pet_no_overlap(c: Cohort) -> str:
    rel = c.replace(
        3, "pet", volume(pet_array(3, (4, 4, 4)), spacing=(2.0, 2.0, 4.0), origin=(200.0, 0.0, 0.0))
    )
    return (
        f"error: case C003 (line 5), column pet, file {rel}: image does not overlap column ct "
        "in physical space ((199, -1, -2)..(207, 7, 14) mm vs "
        "(-0.5, -0.5, -1)..(7.5, 7.5, 15) mm)"
    )


def _pet_misses_mask(c: Cohort) -> str:
    # PET on its own grid, overlapping the CT but not the tumour (mask x 3..5, y 2..5, z 2..4)
    rel = c.replace(3, "pet", volume(pet_array(3, (8, 8, 2)), spacing=(1.0, 1.0, 2.0)))
    return (
        f"error: case C003 (line 5), column pet, file {rel}: image does not cover the mask's "
        "foreground ((2.5, 1.5, 3)..(5.5, 5.5, 9) mm)"
    )


def _duplicate_id(c: Cohort) -> str:
    c.rows[4]["case_id"] = "C001"
    return "error: case C001 (line 6), column case_id: case id 'C001' is already used on line 3"


def _empty_id(c: Cohort) -> str:
    c.rows[5]["case_id"] = ""
    return "error: line 7, column case_id: case id is empty"


def _missing_label(c: Cohort) -> str:
    c.rows[1]["label"] = "NA"
    return "error: case C001 (line 3), column label: label is missing ('NA')"


def _label_not_declared(c: Cohort) -> tuple[str, list[str]]:
    c.rows[2]["label"] = "yes"
    cfg = c.config("cohort:\n  classes: [0, 1]\n")
    return (
        "error: case C002 (line 4), column label: label 'yes' is not one of the declared "
        "classes (0, 1)",
        ["--config", str(cfg)],
    )


def _three_labels(c: Cohort) -> str:
    c.rows[9]["label"] = "2"
    return (
        "error: column label: binary task but 3 distinct labels: '0' x5; '1' x4; '2' x1 "
        "(case C009 (line 11)); fix the labels or declare cohort.classes (or use task: multiclass)"
    )


def _regression_not_number(c: Cohort) -> tuple[str, list[str]]:
    c.rows[6]["age"] = "fifty"
    cfg = c.config("cohort:\n  task: regression\n  target: age\n")
    return (
        "error: case C006 (line 8), column age: target 'fifty' is not a finite number (regression)",
        ["--config", str(cfg)],
    )


def _survival_time_zero(c: Cohort) -> tuple[str, list[str]]:
    c.rows[0]["time"] = "0"
    cfg = c.config("cohort:\n  task: survival\n")
    return (
        "error: case C000 (line 2), column time: survival time 0 is not positive",
        ["--config", str(cfg)],
    )


def _survival_time_text(c: Cohort) -> tuple[str, list[str]]:
    c.rows[0]["time"] = "12 months"
    cfg = c.config("cohort:\n  task: survival\n")
    return (
        "error: case C000 (line 2), column time: survival time '12 months' is not a number",
        ["--config", str(cfg)],
    )


def _survival_bad_event(c: Cohort) -> tuple[str, list[str]]:
    c.rows[1]["event"] = "2"
    cfg = c.config("cohort:\n  task: survival\n")
    return (
        "error: case C001 (line 3), column event: event '2' is not 0 or 1",
        ["--config", str(cfg)],
    )


def _survival_missing_event(c: Cohort) -> tuple[str, list[str]]:
    c.rows[1]["event"] = ""
    cfg = c.config("cohort:\n  task: survival\n")
    return "error: case C001 (line 3), column event: event is missing", ["--config", str(cfg)]


def _no_config_negative_time(c: Cohort) -> str:
    c.rows[3]["time"] = "-4"  # no config: the label column makes it binary, time is checked too
    return "error: case C003 (line 5), column time: survival time -4 is not positive"


def _no_config_text_time(c: Cohort) -> str:
    c.rows[3]["time"] = "soon"
    return "error: case C003 (line 5), column time: survival time 'soon' is not a number"


def _no_config_bad_event(c: Cohort) -> str:
    c.rows[6]["event"] = "yes"
    return "error: case C006 (line 8), column event: event 'yes' is not 0 or 1"


def _no_config_missing_time(c: Cohort) -> str:
    c.rows[6]["time"] = ""  # needed only by a survival task: a warning
    return "warning: case C006 (line 8), column time: survival time is missing"


def _no_config_survival_only(c: Cohort) -> str:
    for row in c.rows:
        del row["label"]
    c.rows[2]["event"] = "3"
    return "error: case C002 (line 4), column event: event '3' is not 0 or 1"


def _covariate_not_number(c: Cohort) -> tuple[str, list[str]]:
    c.rows[4]["age"] = "old"
    cfg = c.config("cohort:\n  covariates_numeric: [age]\n")
    return (
        "error: case C004 (line 6), column age: 'old' is not a number (numeric covariate)",
        ["--config", str(cfg)],
    )


def _covariate_missing(c: Cohort) -> tuple[str, list[str]]:
    c.rows[4]["age"] = ""
    cfg = c.config("cohort:\n  covariates_numeric: [age]\n")
    return (
        "warning: case C004 (line 6), column age: covariate value is missing",
        ["--config", str(cfg)],
    )


def _no_image_cell(c: Cohort) -> str:
    c.rows[8]["ct"] = ""
    return "error: case C008 (line 10), column ct: no image file given"


def _patient_two_sites(c: Cohort) -> str:
    c.rows[1]["patient_id"] = "P000"
    return (
        "warning: column site: patient 'P000' has rows at 2 sites: 'A' (case C000 (line 2)); "
        "'B' (case C001 (line 3))"
    )


def _small_site(c: Cohort) -> str:
    c.rows[9]["site"] = "C"
    return (
        "warning: column site: site 'C' has only 1 case (fewer than 5); per-site results "
        "will be very uncertain"
    )


def _site_single_class(c: Cohort) -> str:
    for row in c.rows:
        if row["site"] == "B":
            row["label"] = "1"
    return (
        "warning: column site: site 'B' has a single outcome class ('1'): site and outcome "
        "are confounded there"
    )


def _no_cases(c: Cohort) -> str:
    c.rows = []
    return "error: cohort: the cohort has no cases (the CSV holds only a header)"


CORPUS: dict[str, Breaker] = {
    f.__name__.lstrip("_"): f
    for f in [
        _missing_file,
        _not_an_image,
        _corrupt_gzip,
        _truncated_nifti,
        _truncated_raw_nifti,
        _image_2d,
        _mask_size,
        _mask_spacing,
        _mask_origin,
        _mask_direction,
        _empty_mask,
        _label_map_mask,
        _fractional_mask,
        _mask_label_255,
        _nan_voxels,
        _nan_voxels_nrrd,
        _tiny_spacing,
        _huge_spacing,
        _pet_no_overlap,
        _pet_misses_mask,
        _duplicate_id,
        _empty_id,
        _missing_label,
        _label_not_declared,
        _three_labels,
        _regression_not_number,
        _survival_time_zero,
        _survival_time_text,
        _survival_bad_event,
        _survival_missing_event,
        _covariate_not_number,
        _covariate_missing,
        _no_image_cell,
        _patient_two_sites,
        _small_site,
        _site_single_class,
        _no_cases,
        _no_config_negative_time,
        _no_config_text_time,
        _no_config_bad_event,
        _no_config_missing_time,
        _no_config_survival_only,
    ]
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_malformed_cohort(name, cohort, capsys):
    expected = CORPUS[name](cohort)
    expected, extra = expected if isinstance(expected, tuple) else (expected, [])
    code, out, _ = run(capsys, str(cohort.save()), *extra)
    lines = out.splitlines()
    if name.startswith("truncated"):  # the reason's details are worded by io.readers
        lines = [ln[: len(expected)] for ln in lines]
    assert expected in lines, f"expected line not found in:\n{out}"
    assert code == (1 if expected.startswith("error:") else 0)
    assert lines[-1].startswith("summary: ")
    if expected.startswith("warning:"):
        assert not [ln for ln in lines if ln.startswith("error:")], out
