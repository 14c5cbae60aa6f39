"""``deepradiomics explain``: maps of a tiny real run's ensemble, one per case and method, on
each case's original CT grid, with figures and explain.json."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import SimpleITK as sitk

from deepradiomics.cli import main
from deepradiomics.config import parse_config
from deepradiomics.files import safe_name


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from deepradiomics.experiment.runner import run_experiment
    from deepradiomics.synth.generate import generate_cohort

    tmp = tmp_path_factory.mktemp("explain")
    csv = generate_cohort(tmp / "cohort", cases=12, sites=2, seed=0, size=32, pet=False, workers=1)
    cfg = parse_config(
        {
            "cohort": {"path": str(csv), "task": "binary", "covariates_numeric": ["age"]},
            "preprocess": {"workers": 1},
            "model": {"name": "small3d", "kwargs": {"widths": [4, 8]}},
            "train": {"epochs": 1, "batch_size": 4},
            "evaluate": {"split": "kfold", "folds": 2, "bootstrap": 10, "classical": False},
        }
    )
    run_experiment(cfg, tmp / "run", progress=False)
    return tmp / "run"


def test_maps_in_the_original_geometry(run: Path, tmp_path: Path, capsys) -> None:
    cohort = pd.read_csv(run.parent / "cohort" / "cohort.csv", dtype=str, keep_default_na=False)
    cases = cohort.iloc[:3].copy()
    for col in ("ct", "mask"):
        cases[col] = [str(run.parent / "cohort" / p) for p in cases[col]]
    cases = cases.drop(columns=["label"])
    csv = tmp_path / "cases.csv"
    cases.to_csv(csv, index=False)
    out = tmp_path / "maps"
    assert (
        main(
            [
                "explain",
                str(run),
                str(csv),
                "--out",
                str(out),
                "--method",
                "gradcam",
                "--method",
                "occlusion",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "occlusion: 3 case(s)" in printed and "median share in lesion" in printed
    for _, row in cases.iterrows():
        ct = sitk.ReadImage(row["ct"])
        for method in ("gradcam", "occlusion"):
            amap = sitk.ReadImage(str(out / f"{safe_name(row['case_id'])}_{method}.nii.gz"))
            assert amap.GetSize() == ct.GetSize()
            assert amap.GetSpacing() == pytest.approx(ct.GetSpacing(), abs=1e-6)
            assert amap.GetOrigin() == pytest.approx(ct.GetOrigin(), abs=1e-6)
            assert amap.GetDirection() == pytest.approx(ct.GetDirection(), abs=1e-6)
            assert (out / f"{safe_name(row['case_id'])}_{method}.png").stat().st_size > 1000
    info = json.loads((out / "explain.json").read_text())
    # each fold planned on its own training part (auto spacing, crop, window): the maps
    # average the members prepared like plan.json (fold 0's), the other fold's is left out
    assert info["members"] == 1 and info["members_other_plan"] == 1
    assert set(info["cases"]) == set(cases["case_id"])
    shares = info["cases"][cases["case_id"].iloc[0]]["gradcam"]
    assert sum(shares[k] for k in ("lesion", "margin", "body", "outside")) == pytest.approx(
        1, abs=1e-3
    )
    assert info["localisation"]["occlusion"]["cases"] == 3 and "sanity" not in info
    assert info["gradcam_layer"] == "backbone.trunk"  # small3d's last convolutional stage
    rf = info["receptive_field"]
    assert len(rf["stages"]) == 2 and rf["lesion_median_mm"] is not None


def test_sanity_option(run: Path, tmp_path: Path, capsys) -> None:
    cohort = run.parent / "cohort" / "cohort.csv"
    out = tmp_path / "maps"
    assert (
        main(
            [
                "explain",
                str(run),
                str(cohort),
                "--out",
                str(out),
                "--method",
                "gradcampp",
                "--sanity",
            ]
        )
        == 0
    )
    assert "sanity gradcampp:" in capsys.readouterr().out
    info = json.loads((out / "explain.json").read_text())
    assert len(info["cases"]) == 12  # every case of the cohort
    assert isinstance(info["sanity"]["gradcampp"]["passed"], bool)
    assert len(info["sanity"]["gradcampp"]["spearman"]) == 8


def test_maps_do_not_depend_on_the_chunk_size() -> None:
    import torch

    from deepradiomics.experiment.explain_cases import attribution
    from deepradiomics.models import create_model

    torch.manual_seed(0)
    model = create_model("small3d", widths=(2, 4)).eval()
    x = torch.randn(5, 1, 8, 8, 8)
    for method in ("gradcam", "occlusion"):
        torch.testing.assert_close(
            attribution(method, model, x, chunk=2),
            attribution(method, model, x, chunk=16),
            rtol=1e-4,
            atol=1e-6,
        )


def test_file_names_come_from_case_ids_only() -> None:
    assert safe_name("p01/../a b") == "p01_.._a_b"
    assert safe_name("..") == "case"


def test_not_a_run(tmp_path: Path, capsys) -> None:
    csv = tmp_path / "c.csv"
    csv.write_text("case_id,ct\n")
    assert main(["explain", str(tmp_path), str(csv), "--out", str(tmp_path / "o")]) == 2
    assert "pass a run folder or its bundle folder" in capsys.readouterr().err


def test_run_explains_a_few_cases_and_reports_them(run: Path) -> None:
    metrics = json.loads((run / "metrics.json").read_text())
    info = metrics["explain"]
    assert set(info["sanity"]) == {"gradcam"}
    assert isinstance(info["sanity"]["gradcam"]["passed"], bool)
    assert info["localisation"]["gradcam"]["cases"] == len(info["cases"]) >= 1
    groups = {c["group"] for c in info["cases"].values()}
    assert groups <= {"true positive", "false positive", "false negative"}
    for cid in info["cases"]:
        assert (run / "explain" / f"{safe_name(cid)}_gradcam.nii.gz").is_file()
    html = (run / "report.html").read_text()
    assert '<section id="explain">' in html and "data:image/png;base64," in html
    assert "Median Spearman correlation" in html
    assert f"Grad-CAM at layer {info['gradcam_layer']} " in html


def test_pick_cases() -> None:
    from deepradiomics.experiment.explain_cases import pick_cases

    preds = pd.DataFrame(
        {
            "case_id": list("abcdefg"),
            "y_true": [1, 1, 1, 0, 0, 1, 0],
            "cnn_prob": [0.9, 0.8, 0.7, 0.95, 0.2, 0.1, 0.6],
        }
    )
    picked = pick_cases(preds, 0.5, per_group=2)
    assert picked == [
        ("a", "true positive", 0.9),
        ("b", "true positive", 0.8),
        ("d", "false positive", 0.95),
        ("g", "false positive", 0.6),
        ("f", "false negative", 0.1),
    ]


def test_a_mask_channel_model_is_explained(tmp_path: Path, capsys) -> None:
    """lesion_texture (the demo's model) reads the lesion mask as its last input channel:
    explain must append it, like predict, or the model refuses the input."""
    from deepradiomics.experiment.runner import run_experiment
    from deepradiomics.synth.generate import generate_cohort

    csv = generate_cohort(tmp_path / "cohort", cases=12, sites=2, seed=0, size=32, pet=False)
    cfg = parse_config(
        {
            "cohort": {"path": str(csv), "task": "binary"},
            "preprocess": {"workers": 1, "mask_channel": True},
            "model": {"name": "lesion_texture", "kwargs": {"filters": 2, "kernel": 5}},
            "train": {"epochs": 1, "batch_size": 4},
            "evaluate": {
                "split": "kfold",
                "folds": 2,
                "bootstrap": 10,
                "classical": False,
                "explain": False,
                "audit": {"site": False},
            },
        }
    )
    run_experiment(cfg, tmp_path / "run", progress=False)
    out = tmp_path / "maps"
    assert main(["explain", str(tmp_path / "run"), str(csv), "--out", str(out)]) == 0
    info = json.loads((out / "explain.json").read_text())
    assert info["members"] >= 1 and len(info["cases"]) == 12  # members on fold 0's plan
    # its default layer, where the texture energies' voxel shares join the intensity maps
    assert info["gradcam_layer"] == "backbone.lesion_maps"
    cohort = pd.read_csv(csv, dtype=str)
    case = cohort["case_id"].iloc[0]
    ct = sitk.ReadImage(str(csv.parent / cohort["ct"].iloc[0]))
    assert sitk.ReadImage(str(out / f"{safe_name(case)}_gradcam.nii.gz")).GetSize() == ct.GetSize()
    # what each case's map is made of: intensity maps and texture energies, adding up to 1
    for entry in info["cases"].values():
        parts = entry["gradcam"]["composition"]
        assert set(parts) == {"intensity", "texture"}
        if entry["gradcam"]["map_max"] > 0:
            assert sum(parts.values()) == pytest.approx(1.0, abs=1e-4)
