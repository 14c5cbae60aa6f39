"""End to end: `deepradiomics run` with `task: segmentation` on a tiny synthetic cohort."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml

from deepradiomics.cli import main
from deepradiomics.evaluate import metrics as M
from deepradiomics.synth.generate import generate_cohort

CONFIG = {
    "name": "tiny-seg",
    "cohort": {"path": "cohort/cohort.csv", "task": "segmentation"},
    "preprocess": {"spacing": [1.0, 1.0, 1.0], "crop_mm": [24, 24, 24], "workers": 1},
    "model": {"name": "unet", "kwargs": {"filters": [8, 16, 32]}},
    "train": {
        "epochs": 20,
        "batch_size": 4,
        "lr": 0.01,
        "patch": [16, 16, 16],
        "monitor": "loss",
        "tta": False,
    },
    "evaluate": {"split": "kfold", "folds": 2, "bootstrap": 50},
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("seg")
    generate_cohort(root / "cohort", cases=12, sites=2, seed=1, size=48, pet=False, workers=1)
    (root / "exp.yaml").write_text(yaml.safe_dump(CONFIG))
    assert main(["run", str(root / "exp.yaml"), "--out", str(root / "out")]) == 0
    return root


def test_metrics_pooled_and_per_site_with_cis(run_dir: Path) -> None:
    metrics = json.loads((run_dir / "out" / "metrics.json").read_text())
    assert metrics["task"] == "segmentation"
    for panel in (metrics["test"], *metrics["per_site"].values()):
        for name in ("dice", "hd95", "volume_diff_ml", "abs_volume_diff_ml"):
            est = panel[name]
            assert est["ci_low"] <= est["value"] <= est["ci_high"], name
    assert set(metrics["per_site"]) == {"site_A", "site_B"}
    assert metrics["test"]["dice"]["n"] == 12 and len(metrics["per_fold"]) == 2
    table = pd.read_csv(run_dir / "out" / "predictions.csv")
    assert metrics["test"]["dice"]["value"] == pytest.approx(table["cnn_dice"].mean())
    assert metrics["test"]["hd95"]["value"] == pytest.approx(table["cnn_hd95"].mean())
    diff = table["cnn_volume_ml"] - table["reference_volume_ml"]
    np.testing.assert_allclose(table["cnn_volume_diff_ml"], diff, atol=1e-9)


def test_splits_keep_patients_together(run_dir: Path) -> None:
    splits = pd.read_csv(run_dir / "out" / "splits.csv")
    test = splits[splits["role"] == "test"]
    assert test.groupby("patient_id")["fold"].nunique().max() == 1
    assert sorted(test["case_id"]) == sorted(
        pd.read_csv(run_dir / "out" / "predictions.csv")["case_id"]
    )


def test_masks_in_original_geometry_against_the_generator(run_dir: Path) -> None:
    """Every predicted mask lies on its generator mask's grid; Dice there is what
    predictions.csv says, near the network-grid Dice, and well above chance."""
    out = run_dir / "out"
    table = pd.read_csv(out / "predictions.csv")
    cohort = pd.read_csv(run_dir / "cohort" / "cohort.csv").set_index("case_id")
    dices = []
    for row in table.itertuples():
        pred = sitk.ReadImage(str(out / row.cnn_mask_file))
        ref = sitk.ReadImage(str(run_dir / "cohort" / cohort.loc[row.case_id, "mask"]))
        assert pred.GetSize() == ref.GetSize()
        np.testing.assert_allclose(pred.GetSpacing(), ref.GetSpacing(), rtol=1e-6)
        np.testing.assert_allclose(pred.GetOrigin(), ref.GetOrigin(), atol=1e-4)
        assert pred.GetPixelID() == sitk.sitkUInt8
        d = M.dice(sitk.GetArrayFromImage(pred), sitk.GetArrayFromImage(ref) > 0)
        assert d == pytest.approx(row.cnn_dice_original, abs=1e-9)
        dices.append(d)
    # resampling between the 1 mm grid and the generator's grid moves Dice only a little
    assert abs(np.mean(dices) - table["cnn_dice"].mean()) < 0.1
    # 20 epochs on 6 cases: far from good, but an untrained or misaligned model scores ~0
    assert np.mean(dices) > 0.15


def test_report_shows_worst_and_median_cases(run_dir: Path) -> None:
    out = run_dir / "out"
    info = json.loads((out / "metrics.json").read_text())["segmentation"]
    roles = {f["role"]: f for f in info["figures"]}
    table = pd.read_csv(out / "predictions.csv").sort_values("cnn_dice", kind="stable")
    assert roles["worst"]["dice"] == pytest.approx(table["cnn_dice"].min())
    assert roles["median"]["dice"] == pytest.approx(table["cnn_dice"].iloc[(len(table) - 1) // 2])
    html = (out / "report.html").read_text()
    assert 'id="segmentation"' in html and html.count("data:image/png;base64") >= 2
    assert "reference outline (cyan), predicted outline (magenta)" in html
    assert info["centred_on_mask"] and "cropped around its reference mask" in html
    assert (out / "bundle" / "bundle.json").is_file()
    assert (
        "| 9 | Segmentation | Formal evaluation of fully automated segmentation | Out-of-fold Dice"
        in (out / "checklist.md").read_text()
    )


def test_train_command_scores_a_segmentation_holdout(run_dir: Path) -> None:
    """``deepradiomics train`` validates and tests a U-Net against the masks."""
    cfg = {**CONFIG, "train": {**CONFIG["train"], "epochs": 2}}
    (run_dir / "train.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", str(run_dir / "train.yaml"), "--out", str(run_dir / "train")]) == 0
    metrics = json.loads((run_dir / "train" / "metrics.json").read_text())
    assert {"dice", "hd95", "volume_diff_ml"} <= set(metrics["test"])
    assert 0 <= metrics["test"]["dice"]["value"] <= 1
    history = (run_dir / "train" / "history.jsonl").read_text().splitlines()
    assert len(history) == 2 and all("val_score" in json.loads(h) for h in history)
