"""Usage errors of ``deepradiomics validate``, geometry that must pass, and the library API."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from deepradiomics.cli import main
from deepradiomics.cohort.manifest import build_cases, read_manifest
from deepradiomics.cohort.validate import load_cohort, validate_manifest
from deepradiomics.config import CohortConfig
from deepradiomics.errors import UserError
from tests.cohort.cohort_builder import Cohort, pet_array, volume
from tests.conftest import shared_path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["validate", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.fixture
def cohort(tmp_path: Path) -> Cohort:
    return Cohort(tmp_path)


# -- usage errors (exit 2) and column errors (exit 1) ------------------------------------------


def test_missing_csv_exits_2(tmp_path, capsys):
    code, out, err = run(capsys, str(tmp_path / "nope.csv"))
    assert code == 2
    assert out == ""
    assert err.strip() == f"error: cohort file not found: {tmp_path / 'nope.csv'}"


def test_missing_config_file_exits_2(cohort, capsys):
    code, _, err = run(capsys, str(cohort.save()), "--config", str(cohort.root / "nope.yaml"))
    assert code == 2
    assert err.strip() == f"error: config file not found: {cohort.root / 'nope.yaml'}"


def test_bad_yaml_exits_2(cohort, capsys):
    cfg = cohort.config("cohort: [unclosed\n")
    code, _, err = run(capsys, str(cohort.save()), "--config", str(cfg))
    assert code == 2
    assert err.startswith(f"error: {cfg}: not valid YAML")


def test_unknown_config_key_exits_2(cohort, capsys):
    cfg = cohort.config("cohort:\n  colour: red\n")
    code, _, err = run(capsys, str(cohort.save()), "--config", str(cfg))
    assert code == 2
    assert err.strip() == f"error: {cfg}: cohort.colour: unknown key"


def test_config_naming_unknown_column_exits_1(cohort, capsys):
    cfg = cohort.config("cohort:\n  target: outcome\n  covariates_numeric: [bmi]\n")
    code, out, err = run(capsys, str(cohort.save()), "--config", str(cfg))
    assert code == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(
        f"error: {cohort.root / 'cohort.csv'}: columns named in the config are "
        "not in the CSV: covariates_numeric -> 'bmi'; target -> 'outcome'"
    )


def test_unreadable_csv_exits_1(tmp_path, capsys):
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x81\x00" * 10)
    code, _, err = run(capsys, str(tmp_path / "bin.csv"))
    assert code == 1
    assert err.startswith(f"error: {tmp_path / 'bin.csv'}: not a readable CSV")


def test_cli_csv_overrides_config_path(cohort, capsys):
    cfg = cohort.config("cohort:\n  path: elsewhere.csv\n  task: survival\n")
    code, out, _ = run(capsys, str(cohort.save()), "--config", str(cfg))
    assert code == 0, out


# -- geometry that is fine ---------------------------------------------------------------------


def test_mask_stored_in_another_axis_order_matches(cohort, capsys):
    """Same voxels written in RAS / SAR axis order: the physical grid is the same."""
    for case, order in ((0, "RAS"), (1, "SAR")):
        img = sitk.ReadImage(str(cohort.root / cohort.rows[case]["mask"]))
        cohort.replace(case, "mask", sitk.DICOMOrient(img, order))
    code, out, _ = run(capsys, str(cohort.save()))
    assert code == 0, out
    assert out.strip() == "summary: 10 cases checked: no problems"


def test_pet_on_its_own_grid_is_fine(cohort, capsys):
    """PET at 2 mm covering the CT: resampled later, no problem."""
    pet = volume(pet_array(0, (4, 4, 4)), spacing=(2.0, 2.0, 4.0), origin=(0.5, 0.5, 1.0))
    cohort.replace(0, "pet", pet)
    code, out, _ = run(capsys, str(cohort.save()))
    assert (code, out.strip()) == (0, "summary: 10 cases checked: no problems")


def test_pet_covering_part_of_the_mask_warns(cohort, capsys):
    # mask foreground spans x 2.5..5.5 mm; this PET spans x -0.5..3.5 mm
    rel = cohort.replace(0, "pet", volume(pet_array(0, (8, 8, 4))))
    code, out, _ = run(capsys, str(cohort.save()))
    assert code == 0
    assert out.splitlines()[0] == (
        f"warning: case C000 (line 2), column pet, file {rel}: image covers only 33% of the "
        "mask's foreground box"
    )


def test_mask_matching_the_pet_grid_only_is_fine(cohort, capsys):
    """PET/CT with the contour drawn on PET: the mask matches the PET grid, not the CT one."""
    pet_grid = dict(spacing=(2.0, 2.0, 4.0), origin=(0.5, 0.5, 1.0))
    cohort.replace(0, "pet", volume(pet_array(0, (4, 4, 4)), **pet_grid))
    m = np.zeros((4, 4, 4), np.uint8)
    m[1:3, 1:3, 1:3] = 1
    cohort.replace(0, "mask", volume(m, **pet_grid))
    code, out, _ = run(capsys, str(cohort.save()))
    assert (code, out.strip()) == (0, "summary: 10 cases checked: no problems")


def test_empty_mask_cell_warns(cohort, capsys):
    cohort.rows[2]["mask"] = ""
    code, out, _ = run(capsys, str(cohort.save()))
    assert code == 0
    assert (
        "warning: case C002 (line 4), column mask: no mask file given; the whole image will be used"
    ) in out.splitlines()


def test_segmentation_needs_every_mask(cohort, capsys):
    cohort.rows[2]["mask"] = ""
    cfg = cohort.config("cohort:\n  task: segmentation\nmodel: {name: unet}\n")
    code, out, _ = run(capsys, str(cohort.save()), "--config", str(cfg))
    assert code == 1
    assert (
        "error: case C002 (line 4), column mask: no mask file given (the segmentation task "
        "needs one)"
    ) in out


def test_class_imbalance_warns(tmp_path, capsys):
    cohort = Cohort(tmp_path, n=12)
    for i, row in enumerate(cohort.rows):
        row["label"] = "1" if i == 0 else "0"
    code, out, _ = run(capsys, str(cohort.save()))
    assert code == 0
    expected = "warning: column label: heavy class imbalance: '1' is 1 of 12 cases (8.3%)"
    assert expected in out.splitlines()


def test_survival_without_events_is_an_error(cohort, capsys):
    for row in cohort.rows:
        row["event"] = "0"
    cfg = cohort.config("cohort:\n  task: survival\n")
    code, out, _ = run(capsys, str(cohort.save()), "--config", str(cfg))
    assert code == 1
    assert (
        "error: column event: no case has an event (every case is censored); a survival "
        "model cannot be fitted"
    ) in out.splitlines()


# -- library API -------------------------------------------------------------------------------


def test_report_is_per_case(cohort):
    cohort.rows[1]["ct"] = "images/missing.nii.gz"
    cohort.replace(4, "mask", volume(np.zeros((8, 8, 8), np.uint8)))
    cohort.rows[6]["label"] = ""
    cohort.rows[7]["site"] = "Z"  # a small site: a cohort-wide warning only
    manifest = read_manifest(cohort.save())
    report = validate_manifest(manifest, workers=2)
    assert not report.ok
    assert report.failed_lines == {3, 6, 8}
    assert [(p.case_id, p.column) for p in report.for_line(6)] == [("C004", "mask")]
    assert report.cohort_errors == []
    cases = build_cases(manifest)
    assert [c.case_id for c in report.usable(cases)] == [
        "C000",
        "C002",
        "C003",
        "C005",
        "C007",
        "C008",
        "C009",
    ]
    assert report.summary() == "summary: 10 cases checked: 3 errors in 3 cases, 3 warnings"


def test_report_without_targets_ignores_outcomes(cohort):
    cohort.rows[6]["label"] = ""
    report = validate_manifest(read_manifest(cohort.save()), targets=False)
    assert report.ok and report.problems == []


def test_report_order_and_fields(cohort):
    cohort.rows[9]["ct"] = "images/missing.nii.gz"
    cohort.rows[2]["case_id"] = "C009"
    p1, p2 = validate_manifest(read_manifest(cohort.save())).problems
    assert (p1.severity, p1.case_id, p1.line, p1.column, p1.file) == (
        "error",
        "C009",
        11,
        "case_id",
        None,
    )
    assert p1.message == "case id 'C009' is already used on line 4"
    assert (p2.severity, p2.case_id, p2.line, p2.column, p2.file) == (
        "error",
        "C009",
        11,
        "ct",
        "images/missing.nii.gz",
    )
    assert p2.message == "file not found"


def test_load_cohort_returns_cases(cohort):
    cases = load_cohort(CohortConfig(path=cohort.save()))
    assert [c.case_id for c in cases] == [f"C{i:03d}" for i in range(10)]
    assert cases[0].images["ct"] == cohort.root / cohort.rows[0]["ct"]
    assert cases[0].mask == cohort.root / cohort.rows[0]["mask"]


def test_load_cohort_raises_listing_errors(cohort):
    cohort.rows[3]["ct"] = "images/missing.nii.gz"
    cohort.rows[5]["label"] = "maybe"
    csv = cohort.save()
    with pytest.raises(UserError) as info:
        load_cohort(CohortConfig(path=csv, classes=["0", "1"]))
    lines = str(info.value).splitlines()
    assert lines[0] == (
        f"{csv}: cohort has errors (10 cases checked: 2 errors in 2 cases, 0 warnings):"
    )
    assert lines[1:] == [
        "  error: case C003 (line 5), column ct, file images/missing.nii.gz: file not found",
        "  error: case C005 (line 7), column label: label 'maybe' is not one of the declared "
        "classes (0, 1)",
    ]
    assert info.value.exit_code == 1


def test_load_cohort_limits_the_listing(cohort):
    for row in cohort.rows:
        row["ct"] = "images/missing.nii.gz"
    with pytest.raises(UserError) as info:
        load_cohort(CohortConfig(path=cohort.save()))
    text = str(info.value)
    assert text.count("file not found") == 10
    cohort.rows += [dict(r, case_id=r["case_id"] + "b") for r in cohort.rows] * 2
    with pytest.raises(UserError) as info:
        load_cohort(CohortConfig(path=cohort.save()))
    lines = str(info.value).splitlines()
    assert len(lines) == 22
    assert lines[-1].startswith("  ... and 20 more")


def test_load_cohort_logs_warnings(cohort, caplog):
    cohort.rows[9]["site"] = "C"
    with caplog.at_level(logging.WARNING, logger="deepradiomics.cohort.validate"):
        cases = load_cohort(CohortConfig(path=cohort.save()))
    assert len(cases) == 10
    assert any("site 'C' has only 1 case" in r.getMessage() for r in caplog.records)


def test_load_cohort_without_path():
    with pytest.raises(UserError, match="cohort.path is not set"):
        load_cohort(CohortConfig())


# -- real data ---------------------------------------------------------------------------------

STS_WITH_CT = ["002", "008", "015", "019", "024", "025"]  # 6 of the 10 with CT, MR and PET


def _sts_csv(tmp_path: Path, mask: str, swap: bool = False) -> Path:
    root = shared_path("ibsi_sts_validation", "nifti")
    lines = ["case_id,ct,pet,mr_t1,mask,label"]
    for i, p in enumerate(STS_WITH_CT):
        d = root / f"STS_{p}"
        mask_dir = root / f"STS_{STS_WITH_CT[1]}" if swap and i == 0 else d
        lines.append(
            f"STS_{p},{d / 'CT_image.nii.gz'},{d / 'PET_image.nii.gz'},"
            f"{d / 'MR_T1_image.nii.gz'},{mask_dir / mask},{i // 2 % 2}"
        )
    path = tmp_path / "sts.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.shared_data
@pytest.mark.parametrize("mask", ["CT_mask.nii.gz", "PET_mask.nii.gz"])
def test_real_pet_ct_mr_cohort_is_clean(tmp_path, mask):
    """IBSI STS: CT, PET and MR on three different grids; the GTV mask drawn on CT or PET."""
    report = validate_manifest(read_manifest(_sts_csv(tmp_path, mask)))
    assert report.problems == []


@pytest.mark.shared_data
def test_real_cohort_with_a_swapped_mask(tmp_path):
    report = validate_manifest(read_manifest(_sts_csv(tmp_path, "CT_mask.nii.gz", swap=True)))
    (p,) = report.problems
    assert (p.case_id, p.column) == ("STS_002", "mask")
    assert p.message.startswith(
        "mask geometry does not match column ct (nor any other image): "
        "size 141x137x51 vs 161x143x48"
    )


# -- the synthetic cohort generator's output ---------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        "",
        "cohort:\n  task: survival\n  covariates_numeric: [age]\n"
        "  covariates_categorical: [sex]\n  subgroups: [age_band]\n",
    ],
)
def test_synthetic_cohort_validates(tmp_path, capsys, config):
    generate = pytest.importorskip("deepradiomics.synth.generate")
    csv = generate.generate_cohort(tmp_path / "synth", cases=12, sites=2, size=32, workers=1)
    extra = []
    if config:
        (tmp_path / "exp.yaml").write_text(config)
        extra = ["--config", str(tmp_path / "exp.yaml")]
    code, out, _ = run(capsys, str(csv), *extra)
    assert code == 0, out
    assert not [ln for ln in out.splitlines() if ln.startswith("error:")]
    assert out.splitlines()[-1].startswith("summary: 12 cases checked")
