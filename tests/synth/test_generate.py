"""Files, determinism, geometry and intensities of the written synthetic cohort (tiny cohorts)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from deepradiomics.cli import main
from deepradiomics.cohort.manifest import build_cases, read_manifest
from deepradiomics.errors import UsageError, UserError
from deepradiomics.io.readers import read_image, spacing_zyx, to_array
from deepradiomics.synth import generate_cohort
from deepradiomics.synth.sites import slice_thicknesses

TINY = {"cases": 12, "sites": 4, "seed": 7, "confounding": 0.5, "size": 32}
COHORT_COLUMNS = [
    "case_id",
    "patient_id",
    "site",
    "ct",
    "pet",
    "mask",
    "label",
    "time",
    "event",
    "age",
    "sex",
    "age_band",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return generate_cohort(tmp_path_factory.mktemp("tiny") / "cohort", workers=1, **TINY)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_files_and_columns(tiny: Path) -> None:
    root = tiny.parent
    cohort = pd.read_csv(tiny)
    assert list(cohort.columns) == COHORT_COLUMNS
    assert len(cohort) == 12 and cohort["case_id"].is_unique
    for col in ("ct", "pet", "mask"):
        assert all((root / p).is_file() for p in cohort[col]), col
    assert cohort["ct"].iloc[0] == f"images/{cohort['case_id'].iloc[0]}_ct.nii.gz"
    assert set(cohort["label"]) <= {0, 1} and set(cohort["event"]) <= {0, 1}
    assert (cohort["time"] > 0).all()
    assert set(cohort["sex"]) <= {"F", "M"}
    assert set(cohort["age_band"]) <= {"<55", "55-64", "65-74", "75+"}
    assert cohort["site"].nunique() == 4
    truth = pd.read_csv(root / "ground_truth.csv")
    assert list(truth["case_id"]) == list(cohort["case_id"])
    for col in (
        "risk",
        "eta",
        "eta_spatial",
        "core_eccentricity",
        "texture_anisotropy",
        "diameter_mm",
        "slice_thickness_mm",
    ):
        assert col in truth.columns
    assert truth["risk"].between(0, 1).all()
    meta = json.loads((root / "synth.json").read_text())
    assert meta["args"]["seed"] == 7 and len(meta["sites"]) == 4


def test_repeat_scan_shares_patient_and_outcome(tiny: Path) -> None:
    cohort = pd.read_csv(tiny)
    truth = pd.read_csv(tiny.parent / "ground_truth.csv")
    assert cohort["patient_id"].nunique() == 11  # 5 % of 12 cases -> one second scan
    twice = cohort[cohort.duplicated("patient_id", keep=False)]
    assert len(twice) == 2
    assert twice[["site", "label", "time", "event", "age", "sex"]].nunique().max() == 1
    assert sorted(truth.set_index("case_id").loc[twice["case_id"], "scan"]) == [1, 2]


def test_manifest_reader_accepts_the_cohort(tiny: Path) -> None:
    manifest = read_manifest(tiny)
    cases = build_cases(manifest)
    assert set(manifest.columns.modalities) == {"ct", "pet"}
    assert manifest.columns.mask == "mask" and manifest.columns.site == "site"
    assert all(c.images["ct"].is_file() and c.mask.is_file() for c in cases)


def test_same_seed_same_files_any_workers(tiny: Path, tmp_path: Path) -> None:
    again = generate_cohort(tmp_path / "again", workers=2, **TINY)
    assert _files(again.parent) == _files(tiny.parent)


def test_different_seed_different_cohort(tiny: Path, tmp_path: Path) -> None:
    other = generate_cohort(tmp_path / "other", workers=1, **{**TINY, "seed": 8})
    a, b = (
        pd.read_csv(tiny.parent / "ground_truth.csv"),
        pd.read_csv(other.parent / "ground_truth.csv"),
    )
    assert not np.allclose(a["risk"], b["risk"])
    ct = "images/case_0001_ct.nii.gz"
    assert (tiny.parent / ct).read_bytes() != (other.parent / ct).read_bytes()


def test_spacing_follows_the_site(tiny: Path) -> None:
    root = tiny.parent
    cohort = pd.read_csv(tiny)
    sites = {s["name"]: s for s in json.loads((root / "synth.json").read_text())["sites"]}
    assert (
        sorted(s["slice_thickness_mm"] for s in sites.values())
        == slice_thicknesses(4)
        == [1, 2, 4, 5]
    )
    for _, row in cohort.iterrows():
        site = sites[row["site"]]
        ct, pet, mask = (read_image(root / row[c]) for c in ("ct", "pet", "mask"))
        dz, dy, dx = spacing_zyx(ct)
        assert dz == pytest.approx(site["slice_thickness_mm"], abs=1e-4)
        assert dy == dx == pytest.approx(site["pixel_spacing_mm"], abs=1e-4)
        assert 0.8 <= dx <= 1.0
        assert spacing_zyx(mask) == spacing_zyx(ct) and mask.GetOrigin() == ct.GetOrigin()
        # PET: 2x coarser in-plane, same slices, same physical extent
        assert spacing_zyx(pet) == pytest.approx((dz, 2 * dy, 2 * dx), abs=1e-4)
        extent = lambda img: np.array(img.GetSize()) * np.array(img.GetSpacing())
        assert extent(pet) == pytest.approx(extent(ct), abs=1e-3)
        corner = lambda img: np.array(img.GetOrigin()) - np.array(img.GetSpacing()) / 2
        assert corner(pet) == pytest.approx(corner(ct), abs=1e-3)
        assert ct.GetSize()[2] * dz == pytest.approx(32, abs=site["slice_thickness_mm"])


def test_masks_intensities_and_pet(tiny: Path) -> None:
    root = tiny.parent
    for _, row in pd.read_csv(tiny).iterrows():
        ct = to_array(read_image(root / row["ct"]))
        mask = to_array(read_image(root / row["mask"]), np.uint8)
        pet = to_array(read_image(root / row["pet"]))
        assert set(np.unique(mask)) == {0, 1}, row["case_id"]
        lesion = ct[mask == 1]
        assert np.median(lesion) > -500  # tiny phantoms: partial volume with the lung, not air
        z, y, x = (round(c) for c in np.argwhere(mask).mean(axis=0))
        body = ct[z] > -500
        assert body[y, x] and not body[0, 0] and not body[-1, -1]  # lesion inside the body
        assert ct.min() >= -1024 and ct.max() <= 3071
        assert np.median(ct[:, :3, :3]) == pytest.approx(-1000, abs=60)  # air in the corners
        assert (ct > 300).sum() > 0  # bone
        assert ((ct < -700) & (ct > -950)).sum() > 0.03 * ct.size  # lungs
        assert pet.min() >= 0 and pet.dtype == np.float32
        assert np.median(pet[pet > 0.5]) == pytest.approx(1.0, abs=0.5)  # soft-tissue background


def test_hu_ranges_at_reference_size(tmp_path: Path) -> None:
    path = generate_cohort(
        tmp_path / "ref", cases=2, sites=2, seed=3, size=96, pet=False, workers=1
    )
    cohort = pd.read_csv(path)
    assert "pet" not in cohort.columns and not list((tmp_path / "ref" / "images").glob("*_pet*"))
    for _, row in cohort.iterrows():
        img = sitk.ReadImage(str(path.parent / row["ct"]))
        ct = sitk.GetArrayFromImage(img)
        assert img.GetSize()[:2] == (96, 96) and ct.dtype == np.int16
        hist = lambda lo, hi, ct=ct: ((ct >= lo) & (ct < hi)).mean()
        assert hist(-1024, -950) > 0.15  # air
        assert hist(-950, -700) > 0.05  # lung
        assert hist(-160, -40) > 0.01  # fat
        assert hist(-20, 120) > 0.1  # soft tissue
        assert hist(300, 3072) > 0.002  # bone
        mask = sitk.GetArrayFromImage(sitk.ReadImage(str(path.parent / row["mask"])))
        assert mask.sum() > 100 and np.median(ct[mask == 1]) > 30  # enhancing soft-tissue lesion


def test_bad_arguments_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--confounding"):
        generate_cohort(tmp_path / "x", cases=4, confounding=1.5)
    with pytest.raises(UsageError, match="--sites"):
        generate_cohort(tmp_path / "x", cases=4, sites=30)
    with pytest.raises(UsageError, match="--size"):
        generate_cohort(tmp_path / "x", cases=4, size=8)
    with pytest.raises(UsageError, match="at least one patient per site"):
        generate_cohort(tmp_path / "x", cases=3, sites=4, size=32)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        generate_cohort(tmp_path / "busy", cases=4, size=32)
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"


def test_rerun_replaces_a_previous_cohort(tmp_path: Path) -> None:
    out = tmp_path / "c"
    generate_cohort(out, cases=6, sites=2, size=32, workers=1)
    generate_cohort(out, cases=4, sites=2, size=32, workers=1, pet=False)
    assert len(list((out / "images").glob("*.nii.gz"))) == 4
    assert len(pd.read_csv(out / "cohort.csv")) == 4


def test_cli(tmp_path: Path, capsys) -> None:
    code = main(
        [
            "synth",
            str(tmp_path / "cli"),
            "--cases",
            "5",
            "--sites",
            "2",
            "--size",
            "32",
            "--no-pet",
            "--workers",
            "1",
            "--seed",
            "2",
        ]
    )
    assert code == 0
    assert "wrote 5 cases" in capsys.readouterr().out
    assert main(["synth", str(tmp_path / "bad"), "--cases", "5", "--confounding", "2"]) == 2
    assert "--confounding must be between 0 and 1" in capsys.readouterr().err
