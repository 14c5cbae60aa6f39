"""``deepradiomics predict``: a bundle from a tiny real run applied to CSV cases.

One run (synthetic cohort, 2 folds x 1 member, tiny model, with covariates) is trained per
module; predictions are checked against the members recomputed by hand from the run's
preprocessing cache and against the run's own out-of-fold outputs.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from deepradiomics.bundle import Member, load_bundle, load_member
from deepradiomics.cli import main
from deepradiomics.config import load_config, parse_config
from deepradiomics.errors import UsageError, UserError
from deepradiomics.inference import ensemble_columns, predict_cases, prepare_cases

OUTCOME_COLUMNS = ["label", "time", "event"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from deepradiomics.experiment.runner import run_experiment
    from deepradiomics.synth.generate import generate_cohort

    tmp = tmp_path_factory.mktemp("predict")
    csv = generate_cohort(tmp / "cohort", cases=16, sites=2, seed=0, size=32, pet=False, workers=1)
    cfg = parse_config(
        {
            "cohort": {
                "path": str(csv),
                "task": "binary",
                "covariates_numeric": ["age"],
                "covariates_categorical": ["sex"],
            },
            "preprocess": {"workers": 1},
            "model": {"name": "small3d", "kwargs": {"widths": [4, 8]}},
            "train": {"epochs": 1, "batch_size": 4},
            "evaluate": {"split": "kfold", "folds": 2, "bootstrap": 20, "classical": False},
        }
    )
    run_experiment(cfg, tmp / "run", progress=False)
    return tmp / "run"


def _cohort_csv(run: Path) -> Path:
    return Path(load_config(run / "config.yaml").cohort.path)


def _subset_csv(run: Path, path: Path, rows: slice, drop: list[str] = ()) -> pd.DataFrame:
    """Some rows of the training CSV (image paths made absolute), written to ``path``."""
    src = _cohort_csv(run)
    table = pd.read_csv(src, dtype=str, keep_default_na=False).iloc[rows].drop(columns=list(drop))
    for col in ("ct", "mask"):
        table[col] = [str(src.parent / p) for p in table[col]]
    table.to_csv(path, index=False)
    return table


@pytest.fixture(scope="module")
def hand(run: Path) -> pd.DataFrame:
    """Ensemble probability per training case, recomputed from the run's preprocessing cache
    and the bundle's member files without the predict module."""
    from deepradiomics.dataset.arrays import ArrayData
    from deepradiomics.dataset.covariates import apply_encoding, encoding_width
    from deepradiomics.models import build_from_config
    from deepradiomics.preprocess.pipeline import PreparedCohort
    from deepradiomics.preprocess.plan import Plan
    from deepradiomics.train.checkpoint import load_checkpoint
    from deepradiomics.train.loop import predict

    cfg = load_config(run / "bundle" / "config.yaml")
    info = json.loads((run / "bundle" / "bundle.json").read_text())
    # the run prepared the cohort once per distinct fold plan: preprocess/, preprocess/plan_J/
    caches = [
        PreparedCohort.open(d) for d in [run / "preprocess", *(run / "preprocess").glob("plan_*")]
    ]
    probs = []
    for m in info["members"]:
        plan = Plan.load(run / "bundle" / m.get("plan", "plan.json"))
        (prepared,) = [p for p in caches if p.plan == plan]
        images, _, ids = prepared.load_all()
        table = pd.read_csv(cfg.cohort.path, dtype=str, keep_default_na=False).set_index("case_id")
        table = table.loc[ids].reset_index()
        table["sex"] = table["sex"].astype(str)
        model = build_from_config(
            cfg,
            "binary",
            info["in_channels"],
            2,
            tuple(m.get("spacing", info["spacing"])),
            n_covariates=encoding_width(m["encoding"]),
            n_sites=len(info["sites"]),
        )
        model.load_state_dict(load_checkpoint(run / "bundle" / m["file"])["model"])
        data = ArrayData(
            images=torch.from_numpy(images),
            targets=torch.zeros(len(ids)),
            case_ids=tuple(ids),
            patient_ids=tuple(ids),
            covariates=torch.from_numpy(apply_encoding(table, m["encoding"])),
        )
        probs.append(predict(model, data, "binary", torch.device("cpu"), tta=cfg.train.tta))
    probs = np.stack(probs)
    return pd.DataFrame({"prob": probs.mean(0), "std": probs.std(0)}, index=ids)


def test_predicts_training_cases_as_the_ensemble_of_members(
    run: Path, hand: pd.DataFrame, tmp_path: Path
) -> None:
    out = tmp_path / "preds.csv"
    assert main(["predict", str(run / "bundle"), str(_cohort_csv(run)), "--out", str(out)]) == 0
    preds = pd.read_csv(out, keep_default_na=False, dtype={"predicted_class": str})
    cohort = pd.read_csv(_cohort_csv(run), dtype=str)
    assert list(preds["case_id"]) == list(cohort["case_id"])  # input order, every case
    assert list(preds.columns) == [
        "case_id",
        "status",
        "reason",
        "prob",
        "predicted_class",
        "uncertainty",
        "n_members",
    ]
    assert set(preds["status"]) == {"ok"} and set(preds["reason"]) == {""}
    assert preds["prob"].between(0, 1).all() and (preds["n_members"] == 2).all()
    expect = hand.loc[preds["case_id"]]
    np.testing.assert_allclose(preds["prob"], expect["prob"], atol=1e-5)
    np.testing.assert_allclose(preds["uncertainty"], expect["std"], atol=1e-5)
    info = json.loads((run / "bundle" / "bundle.json").read_text())
    # this config plans spacing, crop and CT window from data: each fold has its own plan
    assert [m["plan"] for m in info["members"]] == ["plans/fold_0.json", "plans/fold_1.json"]
    expected = np.where(preds["prob"] >= info["threshold"], info["classes"][1], info["classes"][0])
    assert list(preds["predicted_class"]) == list(expected)


def test_csv_without_outcome_columns_and_parallel_preparation(
    run: Path, hand: pd.DataFrame, tmp_path: Path
) -> None:
    csv = tmp_path / "new.csv"
    table = _subset_csv(run, csv, slice(0, 6), drop=OUTCOME_COLUMNS + ["site", "patient_id"])
    result = predict_cases(run / "bundle", csv, workers=1)
    a, b = result.table, predict_cases(run / "bundle", csv, workers=2).table
    ids = list(table["case_id"])
    assert list(a["case_id"]) == ids and (a["status"] == "ok").all()
    pd.testing.assert_frame_equal(a, b)  # same numbers whatever the worker count
    np.testing.assert_allclose(a["prob"], hand.loc[ids, "prob"], atol=1e-5)
    # each member reproduces its own out-of-fold output of training on its fold's test cases
    oof = pd.read_csv(run / "predictions.csv", dtype={"case_id": str}).set_index("case_id")
    for k, member in enumerate(load_bundle(run / "bundle").members):
        rows = [i for i, c in enumerate(ids) if oof.loc[c, "fold"] == member.fold]
        assert rows  # the subset holds test cases of both folds
        expect = oof.loc[[ids[i] for i in rows], "cnn_prob"]
        np.testing.assert_allclose(result.members[k, rows], expect, atol=1e-5)


def test_broken_cases_are_reported_and_the_rest_predicted(
    run: Path, hand: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    csv = tmp_path / "broken.csv"
    table = _subset_csv(run, csv, slice(0, 5), drop=["label"])
    corrupt = tmp_path / "corrupt_ct.nii.gz"
    corrupt.write_bytes(b"\x1f\x8b not really gzip" * 10)
    table.loc[table.index[1], "ct"] = str(tmp_path / "gone.nii.gz")
    table.loc[table.index[2], "ct"] = str(corrupt)
    table.loc[table.index[3], "mask"] = ""  # valid without a mask, but the plan crops around it
    table.to_csv(csv, index=False)
    out = tmp_path / "preds.csv"
    assert main(["predict", str(run / "bundle"), str(csv), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    preds = pd.read_csv(out, keep_default_na=False)
    ids = list(table["case_id"])
    assert list(preds["case_id"]) == ids
    assert list(preds["status"]) == ["ok", "failed", "failed", "failed", "ok"]
    reasons = list(preds["reason"])
    assert "column ct" in reasons[1] and "gone.nii.gz" in reasons[1] and "not found" in reasons[1]
    assert "column ct" in reasons[2] and "corrupt_ct.nii.gz" in reasons[2]
    assert "cannot read" in reasons[2]
    assert reasons[3].startswith("preprocess:") and "no mask" in reasons[3]
    for i in (1, 2, 3):
        assert ids[i] in captured.err  # one stderr line naming the case
        assert preds.loc[i, "prob"] == "" and preds.loc[i, "n_members"] == ""
    assert "whole image will be used" not in captured.err  # its validation warning is moot
    assert "predicted 2 case(s), 3 failed" in captured.out and str(out) in captured.out
    ok = preds[preds["status"] == "ok"]
    np.testing.assert_allclose(ok["prob"].astype(float), hand.loc[ok["case_id"], "prob"], atol=1e-5)


def test_no_case_predicted_exits_1_and_rerun_is_identical(run: Path, tmp_path: Path) -> None:
    csv = tmp_path / "two.csv"
    table = _subset_csv(run, csv, slice(6, 8))
    runs = []
    for name in ("a.csv", "b.csv"):
        assert main(["predict", str(run / "bundle"), str(csv), "--out", str(tmp_path / name)]) == 0
        runs.append((tmp_path / name).read_bytes())
    assert runs[0] == runs[1]
    table["ct"] = str(tmp_path / "missing.nii.gz")
    table.to_csv(csv, index=False)
    assert main(["predict", str(run / "bundle"), str(csv), "--out", str(tmp_path / "c.csv")]) == 1
    failed = pd.read_csv(tmp_path / "c.csv")
    assert set(failed["status"]) == {"failed"} and failed["prob"].isna().all()
    assert list(failed.columns)[3:] == ["prob", "predicted_class", "uncertainty", "n_members"]


def test_prepare_cases_reports_unreadable_files(run: Path, tmp_path: Path) -> None:
    from deepradiomics.cohort.manifest import Case

    bundle = load_bundle(run / "bundle")
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"garbage")
    cohort = _cohort_csv(run).parent
    good = Case(
        "a",
        "a",
        {"ct": cohort / "images" / "case_0001_ct.nii.gz"},
        cohort / "masks" / "case_0001_mask.nii.gz",
        line=2,
    )
    images, failures, metas = prepare_cases(
        [good, replace(good, case_id="b", images={"ct": bad})], bundle.plan
    )
    assert list(images) == [0] and images[0].shape == (1, *bundle.plan.shape)
    assert list(metas) == [0] and list(metas[0]["shape"]) == list(bundle.plan.shape)
    assert list(failures) == [1] and "bad.nii.gz" in failures[1]


class _RunsCode:
    """Unpickling this would create ``marker`` (code execution)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_member_holding_pickled_code_is_refused(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    bundle_dir = tmp_path / "bundle"
    shutil.copytree(run / "bundle", bundle_dir)
    member = bundle_dir / "members" / "fold_0_member_0.pt"
    marker = tmp_path / "code_ran"
    weights = torch.load(member, weights_only=True)["model"]
    torch.save({"model": weights, "extra": _RunsCode(marker)}, member)
    bundle = load_bundle(bundle_dir)
    with pytest.raises(UserError, match="refused.*pickled code"):
        load_member(bundle, bundle.members[0])
    assert not marker.exists()
    csv = _cohort_csv(run)
    assert main(["predict", str(bundle_dir), str(csv), "--out", str(tmp_path / "p.csv")]) == 1
    assert "fold_0_member_0.pt" in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / "p.csv").exists()


def test_missing_bundle_is_a_usage_error(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    csv = str(_cohort_csv(run))
    out = str(tmp_path / "p.csv")
    assert main(["predict", str(tmp_path / "nowhere"), csv, "--out", out]) == 2
    assert "nowhere" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["predict", str(tmp_path / "empty"), csv, "--out", out]) == 2
    assert "bundle.json" in capsys.readouterr().err
    with pytest.raises(UsageError, match="cases file not found"):
        predict_cases(run / "bundle", tmp_path / "none.csv")


def test_the_run_folder_stands_for_its_bundle(run: Path, tmp_path: Path) -> None:
    csv = _cohort_csv(run)
    for name, folder in (("run", run), ("bundle", run / "bundle")):
        assert main(["predict", str(folder), str(csv), "--out", str(tmp_path / name)]) == 0
    assert (tmp_path / "run").read_text() == (tmp_path / "bundle").read_text()


def test_ensemble_columns_per_task(run: Path) -> None:
    base = load_bundle(run / "bundle")
    m = [replace(base.members[0], offset=o) for o in (1.0, -1.0)]
    survival = replace(base, task="survival", classes=[], members=m)
    cols = ensemble_columns(survival, np.array([[2.0, 3.0], [0.0, -1.0]]))
    np.testing.assert_allclose(cols["log_risk"], [1.0, 1.0])  # offsets subtracted first
    np.testing.assert_allclose(cols["uncertainty"], [0.0, 1.0])
    multi = replace(base, task="multiclass", classes=["a", "b", "c"], members=m)
    outs = np.array([[[0.2, 0.5, 0.3]], [[0.2, 0.3, 0.5]]])
    cols = ensemble_columns(multi, outs)
    assert list(cols.columns) == [
        "prob_a",
        "prob_b",
        "prob_c",
        "predicted_class",
        "uncertainty",
        "n_members",
    ]
    np.testing.assert_allclose(cols.iloc[0, :3].astype(float), [0.2, 0.4, 0.4])
    assert cols["predicted_class"][0] == "b" and cols["n_members"][0] == 2
    regression = replace(base, task="regression", classes=[], members=m)
    cols = ensemble_columns(regression, np.array([[1.0], [3.0]]))
    np.testing.assert_allclose(cols["prediction"], [2.0])
    binary = replace(base, threshold=0.3, members=m)
    assert list(
        ensemble_columns(binary, np.array([[0.2, 0.4], [0.3, 0.3]]))["predicted_class"]
    ) == [base.classes[0], base.classes[1]]
    assert isinstance(base.members[0], Member)
