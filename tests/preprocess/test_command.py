"""``deepradiomics preprocess`` end to end on tiny cohorts."""

import json

import numpy as np
import pytest
import yaml

from deepradiomics.cli import main
from deepradiomics.preprocess import PreparedCohort
from deepradiomics.preprocess.plan import Plan
from tests.preprocess.conftest import ct_case


def _csv(tmp_path, n=3, extra_rows=()):
    lines = ["case_id,ct,mask,label"]
    for i in range(n):
        ct_case(
            tmp_path / "data", f"p{i}", spacing=(2.0, 1.0, 1.0), centre=(12, 12 - i, 12), seed=i
        )
        lines.append(f"p{i},data/p{i}/ct.nii.gz,data/p{i}/mask.nii.gz,{i % 2}")
    lines += list(extra_rows)
    path = tmp_path / "cohort.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_preprocess_a_cohort_csv(tmp_path, capsys):
    csv = _csv(tmp_path)
    out = tmp_path / "prep"
    assert main(["preprocess", str(csv), "--out", str(out), "--workers", "1"]) == 0
    text = capsys.readouterr().out
    assert "prepared 3/3 cases" in text and "3 computed, 0 from the cache" in text
    assert "anisotropic" not in text  # 2 mm slices, 1 mm in-plane: under the 3x ratio
    fp = json.loads((out / "fingerprint.json").read_text())
    assert [c["case_id"] for c in fp["cases"]] == ["p0", "p1", "p2"]
    assert fp["summary"]["spacing_median"] == [2.0, 1.0, 1.0]
    plan = Plan.load(out / "plan.json")
    assert plan.spacing == (2.0, 1.0, 1.0) and plan.centre_on_mask
    assert plan.modalities[0].window_source.startswith("percentile")  # CT default
    prepared = PreparedCohort.open(out)
    images, masks, ids = prepared.load_all()
    assert ids == ["p0", "p1", "p2"] and images.shape[:2] == (3, 1)
    assert images.shape[2:] == plan.shape and masks.sum() > 0
    assert (out / "cache" / "cases").is_dir()
    # rerun: everything from the cache
    assert main(["preprocess", str(csv), "--out", str(out), "--workers", "1"]) == 0
    assert "0 computed, 3 from the cache" in capsys.readouterr().out


def test_preprocess_an_experiment_yaml(tmp_path, capsys):
    csv = _csv(tmp_path)
    cfg = {
        "cohort": {
            "path": csv.name,
            "modalities": {"ct": {"column": "ct", "kind": "ct", "window": "soft_tissue"}},
        },
        "preprocess": {
            "spacing": [2.0, 2.0, 2.0],
            "crop_mm": [24, 24, 24],
            "cache_dir": "shared_cache",
            "window_range": [-1, 1],
        },
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["preprocess", str(path), "--out", str(tmp_path / "prep"), "--workers", "1"]) == 0
    text = capsys.readouterr().out
    assert "crop     24 x 24 x 24 mm centred on the mask -> 16 x 16 x 16 voxels" in text
    assert "named window 'soft_tissue' [-160, 240] -> [-1.0, 1.0]" in text
    plan = Plan.load(tmp_path / "prep" / "plan.json")
    assert plan.shape == (16, 16, 16) and plan.modalities[0].window == (-160.0, 240.0)
    assert len(list((tmp_path / "shared_cache" / "cases").glob("*.npz"))) == 3
    image, _, _ = PreparedCohort.open(tmp_path / "prep").load_case("p1")
    assert image.min() >= -1.0 and image.max() <= 1.0 and np.any(image < 0)


def test_failed_cases_are_listed_and_the_exit_code_is_1(tmp_path, capsys):
    csv = _csv(tmp_path, extra_rows=["bad,data/missing.nii.gz,data/p0/mask.nii.gz,1"])
    assert main(["preprocess", str(csv), "--out", str(tmp_path / "prep"), "--workers", "1"]) == 1
    captured = capsys.readouterr()
    assert "prepared 3/4 cases" in captured.out
    assert "case bad (line 5): fingerprint:" in captured.err and "file not found" in captured.err
    index = json.loads((tmp_path / "prep" / "cases.json").read_text())
    assert list(index["cases"]) == ["p0", "p1", "p2"] and index["failures"][0]["case_id"] == "bad"


@pytest.mark.parametrize(
    "argv, code, message",
    [
        (["cohort.txt"], 2, "expected an experiment YAML"),
        (["missing.csv"], 1, "cohort file not found"),
        (["cohort.csv", "--workers", "0"], 2, "--workers must be at least 1"),
    ],
)
def test_bad_invocations(tmp_path, capsys, monkeypatch, argv, code, message):
    monkeypatch.chdir(tmp_path)
    _csv(tmp_path, n=1)
    (tmp_path / "cohort.txt").write_text("x")
    assert main(["preprocess", *argv]) == code
    assert message in capsys.readouterr().err
