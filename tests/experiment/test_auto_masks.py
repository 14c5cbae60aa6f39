"""``cohort.mask_from``: rows without a drawn mask are segmented by a segmentation bundle,
and the outcome models use those masks (end to end on tiny synthetic cohorts)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import SimpleITK as sitk
import yaml

from deepradiomics.cli import main
from deepradiomics.config import load_config
from deepradiomics.experiment import auto_masks
from deepradiomics.synth.generate import generate_cohort

SEGMENTER = {
    "name": "segmenter",
    "cohort": {"path": "seg_cohort/cohort.csv", "task": "segmentation"},
    "preprocess": {"spacing": [2.0, 2.0, 2.0], "crop_mm": "none", "workers": 1},
    "model": {"name": "unet", "kwargs": {"filters": [8, 16, 32]}},
    "train": {"epochs": 8, "batch_size": 4, "lr": 0.01, "monitor": "loss", "tta": False},
    "evaluate": {"split": "kfold", "folds": 2, "bootstrap": 20},
}
OUTCOME = {
    "name": "outcome",
    "cohort": {"path": "cohort/partial.csv", "task": "binary", "mask_from": "seg/bundle"},
    "preprocess": {"spacing": [2.0, 2.0, 2.0], "crop_mm": [24, 24, 24], "workers": 1},
    "model": {"name": "small3d", "kwargs": {"widths": [4, 8]}},
    "train": {"epochs": 1, "batch_size": 4},
    "evaluate": {
        "folds": 2,
        "bootstrap": 50,
        "mask_robustness": True,
        "explain": False,
        "audit": {"site": False},
        "learning_curve": {"enabled": False},
    },
}
WITHOUT = list(range(0, 24, 3))  # rows whose mask cell is emptied


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("auto")
    generate_cohort(root / "seg_cohort", cases=10, sites=2, seed=4, size=32, pet=False, workers=1)
    (root / "seg.yaml").write_text(yaml.safe_dump(SEGMENTER))
    assert main(["run", str(root / "seg.yaml"), "--out", str(root / "seg")]) == 0
    generate_cohort(root / "cohort", cases=24, sites=2, seed=2, size=32, pet=False, workers=1)
    table = pd.read_csv(root / "cohort" / "cohort.csv", dtype=str)
    table.loc[WITHOUT, "mask"] = ""
    table.to_csv(root / "cohort" / "partial.csv", index=False)
    (root / "outcome.yaml").write_text(yaml.safe_dump(OUTCOME))
    assert main(["run", str(root / "outcome.yaml"), "--out", str(root / "out")]) == 0
    return root


def test_rows_without_masks_get_automatic_ones(root: Path) -> None:
    out = root / "out"
    metrics = json.loads((out / "metrics.json").read_text())
    info = metrics["masks"]
    table = pd.read_csv(root / "cohort" / "partial.csv", dtype=str)
    missing = set(table.loc[WITHOUT, "case_id"])
    assert info["rows_without_mask"] == len(missing)
    assert info["automatic"] + len(info["empty"]) + len(info["failed"]) == len(missing)
    assert info["automatic"] >= 1 and not info["failed"]
    record = pd.read_csv(out / "auto_masks" / "auto_masks.csv", dtype={"case_id": str})
    assert set(record["case_id"]) == missing
    for row in record[record["volume_ml"] > 0].itertuples():
        mask = sitk.ReadImage(row.mask_file)  # the row's own image geometry
        ct = sitk.ReadImage(
            str(root / "cohort" / table.set_index("case_id").loc[row.case_id, "ct"])
        )
        assert mask.GetSize() == ct.GetSize() and mask.GetOrigin() == pytest.approx(ct.GetOrigin())
        voxels = int(sitk.GetArrayFromImage(mask).sum())
        assert voxels > 0
        assert row.volume_ml == pytest.approx(
            voxels * float(pd.Series(ct.GetSpacing()).prod()) / 1000
        )
    preds = pd.read_csv(out / "predictions.csv", dtype={"case_id": str})
    automatic = set(record.loc[record["volume_ml"] > 0, "case_id"])
    expect = preds["case_id"].map(lambda c: "automatic" if c in automatic else "drawn")
    assert (preds["mask_source"] == expect).all()
    assert (preds["mask_source"] == "automatic").sum() == info["automatic"]


def test_outcome_metrics_per_mask_source(root: Path) -> None:
    out = root / "out"
    metrics = json.loads((out / "metrics.json").read_text())
    preds = pd.read_csv(out / "predictions.csv", dtype={"case_id": str})
    counts = preds["mask_source"].value_counts()
    for model in ("cnn", "classical"):
        groups = metrics["by_mask_source"][model]
        assert set(groups) == set(counts.index)
        for source, panel in groups.items():
            assert panel["brier"]["n"] == counts[source]
            column = preds[preds["mask_source"] == source]
            brier = ((column[f"{model}_prob"] - column["y_true"]) ** 2).mean()
            assert panel["brier"]["value"] == pytest.approx(brier)
    cohort = json.loads((out / "cohort.json").read_text())
    assert cohort["mask_sources"]["automatic"] == metrics["masks"]["automatic"]
    html = (out / "report.html").read_text()
    assert 'id="mask-source"' in html and "Tested cases with an automatic mask" in html
    checklist = (out / "checklist.md").read_text()
    assert (
        f"Partly: {metrics['masks']['automatic']} of the masks come from a segmentation"
        in checklist
    )


def test_a_resumed_run_reuses_the_automatic_masks(root: Path, monkeypatch) -> None:
    cfg = load_config(root / "outcome.yaml")
    before = (root / "out" / "auto_masks" / "auto_masks.csv").stat().st_mtime_ns

    def fail(*args, **kwargs):
        raise AssertionError("the bundle ran again")

    monkeypatch.setattr(auto_masks, "predict_cases", fail)
    masks, info = auto_masks.segment_missing_masks(cfg, root / "out", progress=False)
    assert len(masks) == info["automatic"] >= 1
    assert (root / "out" / "auto_masks" / "auto_masks.csv").stat().st_mtime_ns == before


def test_predict_writes_masks_with_a_segmentation_bundle(root: Path) -> None:
    csv = root / "cohort" / "partial.csv"
    out = root / "preds.csv"
    assert main(["predict", str(root / "seg" / "bundle"), str(csv), "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert (table["status"] == "ok").all() and (table["n_members"] == 2).all()
    assert all(
        Path(f).parent == root / "preds_masks" and Path(f).is_file() for f in table["mask_file"]
    )


def _bundle(folder: Path, task: str, crop) -> Path:
    folder.mkdir(parents=True)
    (folder / "bundle.json").write_text(json.dumps({"task": task}))
    (folder / "plan.json").write_text(json.dumps({"crop_mm": crop}))
    return folder


@pytest.mark.parametrize(
    ("task", "crop", "message"),
    [
        ("binary", None, "a binary bundle; masks come from a segmentation bundle"),
        ("segmentation", [48, 48, 48], "crops around the mask"),
    ],
)
def test_mask_from_errors_at_config_load(tmp_path: Path, task, crop, message) -> None:
    from deepradiomics.errors import UserError

    _bundle(tmp_path / "b", task, crop)
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("cohort: {mask_from: b}\n")
    with pytest.raises(UserError, match=message):
        load_config(cfg)
    cfg.write_text("cohort: {mask_from: nowhere}\n")
    with pytest.raises(UserError, match="cohort.mask_from: .*nowhere: not a bundle folder"):
        load_config(cfg)
    _bundle(tmp_path / "ok", "segmentation", None)
    cfg.write_text("cohort: {mask_from: ok}\n")
    assert load_config(cfg).cohort.mask_from == (tmp_path / "ok").resolve()
    cfg.write_text("cohort: {mask_from: ok, task: segmentation}\nmodel: {name: unet}\n")
    with pytest.raises(UserError, match="cohort.mask_from: a segmentation task trains on drawn"):
        load_config(cfg)


def test_mask_robustness_recomputes_features_and_cnn(root: Path) -> None:
    from deepradiomics.evaluate import metrics as M

    out = root / "out"
    info = json.loads((out / "metrics.json").read_text())["mask_robustness"]
    assert info["variants"] == ["original", "eroded_1", "dilated_1", "automatic"]
    preds = pd.read_csv(out / "predictions.csv", dtype={"case_id": str}).set_index("case_id")
    scores = pd.read_csv(out / "robustness" / "cnn_scores.csv", dtype={"case_id": str})
    scores = scores.set_index("case_id")
    # the original masks re-predicted out of fold reproduce the run's own predictions
    pd.testing.assert_series_equal(
        scores["original"], preds.loc[scores.index, "cnn_prob"], check_names=False, atol=1e-5
    )
    perturbed = scores[["original", "eroded_1", "dilated_1"]].dropna()
    assert info["cnn"]["perturbed"]["n"] == len(perturbed)
    assert info["cnn"]["perturbed"]["icc"] == pytest.approx(M.icc(perturbed.to_numpy()))
    # automatic masks exist for drawn cases only (the others already had one)
    drawn = preds.index[preds["mask_source"] == "drawn"]
    assert set(scores["automatic"].dropna().index) <= set(drawn)
    icc = pd.read_csv(out / "robustness" / "feature_icc.csv", index_col="feature")
    summary = info["classical"]["perturbed"]
    assert summary["n_features"] == len(icc) and summary["cases"] == len(perturbed)
    assert summary["share_good"] == pytest.approx((icc["perturbed"].dropna() >= 0.75).mean())
    assert summary["median_icc"] == pytest.approx(icc["perturbed"].median())
    for case in perturbed.index[:4]:
        name = f"{case}.nii.gz"
        volume = {
            v: sitk.GetArrayFromImage(sitk.ReadImage(str(out / "robustness" / v / name))).sum()
            for v in ("eroded_1", "dilated_1")
        }
        assert volume["eroded_1"] < volume["dilated_1"]
    html = (out / "report.html").read_text()
    assert 'id="robustness"' in html and "Least robust classical features" in html


def test_perturb_mask_by_one_voxel() -> None:
    import numpy as np

    from deepradiomics.experiment.robustness import perturb_mask

    cube = np.zeros((7, 7, 7), np.uint8)
    cube[2:5, 2:5, 2:5] = 1
    image = sitk.GetImageFromArray(cube)
    image.SetSpacing((0.8, 0.8, 5.0))
    eroded = perturb_mask(image, -1)
    assert sitk.GetArrayFromImage(eroded).sum() == 1  # the centre voxel
    assert eroded.GetSpacing() == image.GetSpacing()
    dot = np.zeros((5, 5, 5), np.uint8)
    dot[2, 2, 2] = 1
    grown = sitk.GetArrayFromImage(perturb_mask(sitk.GetImageFromArray(dot), 1))
    assert grown.sum() == 7  # face neighbours only
