"""End to end: `deepradiomics run` on a tiny synthetic cohort, checked against references."""

from __future__ import annotations

import json
import shutil
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from deepradiomics.cli import main
from deepradiomics.synth.generate import generate_cohort

CONFIG = {
    "name": "tiny",
    "cohort": {
        "path": "cohort/cohort.csv",
        "ground_truth": "cohort/ground_truth.csv",
        "covariates_numeric": ["age"],
        "covariates_categorical": ["sex"],
        "subgroups": ["sex", "age_band"],
    },
    "preprocess": {"spacing": [2.0, 2.0, 2.0], "crop_mm": [32, 32, 32], "workers": 1},
    "model": {"name": "small3d", "kwargs": {"widths": [4, 8]}},
    "train": {"epochs": 2, "batch_size": 4},
    "evaluate": {
        "split": "kfold",
        "folds": 2,
        "ensemble_members": 2,
        "bootstrap": 50,
        "combat_embeddings": True,
        "fairness": {"min_patients": 8, "min_events": 2},
        "learning_curve": {"enabled": True, "fractions": [0.5, 1.0], "repeats": 1},
    },
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("run")
    generate_cohort(root / "cohort", cases=28, sites=2, seed=3, size=32, pet=False, workers=1)
    (root / "exp.yaml").write_text(yaml.safe_dump(CONFIG))
    assert main(["run", str(root / "exp.yaml"), "--out", str(root / "out")]) == 0
    return root


def test_files_and_report_sections(run_dir: Path) -> None:
    out = run_dir / "out"
    for name in (
        "config.yaml",
        "cohort.json",
        "splits.csv",
        "predictions.csv",
        "metrics.json",
        "report.html",
        "model_card.md",
        "checklist.md",
        "bundle/bundle.json",
        "bundle/plan.json",
    ):
        assert (out / name).is_file(), name
    html = (out / "report.html").read_text()
    for section in (
        "config",
        "cohort",
        "splits",
        "metrics",
        "per-site",
        "comparison",
        "roc",
        "calibration",
        "learning-curve",
        "ensemble",
    ):
        assert f'id="{section}"' in html, section
    assert "http://" not in html and "https://" not in html
    members = json.loads((out / "bundle" / "bundle.json").read_text())["members"]
    assert len(members) == 4  # 2 folds x 2 members


def test_each_fold_is_planned_on_its_training_part(run_dir: Path) -> None:
    from deepradiomics.preprocess.plan import Plan

    out = run_dir / "out"
    record = json.loads((out / "metrics.json").read_text())["plan"]
    assert json.loads((out / "cohort.json").read_text())["plan_fit"] == record
    # configured spacing and crop; the CT window is the default percentile one: fitted
    assert record["fit_on"] == "training part of each fold"
    assert record["fitted"] == ["window ct"] and record["distinct_plans"] == 2
    splits = pd.read_csv(out / "splits.csv", dtype={"site": str})
    windows = []
    for k, fit in record["folds"].items():
        part = splits[(splits["fold"] == int(k)) & splits["role"].isin(["train", "val"])]
        assert fit["cases"] == len(part) < splits["case_id"].nunique()
        assert fit["sites"] == part["site"].value_counts().sort_index().to_dict()
        plan = Plan.load(out / "bundle" / "plans" / f"fold_{k}.json")
        windows.append(plan.modalities[0].window)
    assert windows[0] != windows[1]
    header = (out / "report.html").read_text().split("</header>")[0]
    assert "computed in each fold from that fold&#x27;s training part only" in header


def test_no_patient_on_both_sides(run_dir: Path) -> None:
    splits = pd.read_csv(run_dir / "out" / "splits.csv", dtype=str)
    for _, fold in splits.groupby("fold"):
        test = set(fold.loc[fold.role == "test", "patient_id"])
        assert test.isdisjoint(fold.loc[fold.role != "test", "patient_id"])
    assert splits.groupby("case_id")["role"].apply(lambda r: (r == "test").sum()).eq(1).all()


def test_fold_thresholds_come_from_the_folds_own_out_of_bag_cases(run_dir: Path) -> None:
    """Issue 11 a: no fold's threshold sees a test case of any fold; each is the configured
    rule (Youden) on the fold's out-of-bag ensemble scores, recomputed here from the members."""
    from deepradiomics.evaluate.metrics import select_threshold

    out = run_dir / "out"
    metrics = json.loads((out / "metrics.json").read_text())
    splits = pd.read_csv(out / "splits.csv", dtype=str)
    cohort_order = splits.case_id.drop_duplicates().to_numpy()  # what member indices index
    preds = pd.read_csv(out / "predictions.csv", dtype={"case_id": str})
    y = dict(zip(preds.case_id, preds.y_true, strict=False))
    for k, cut in enumerate(metrics["fold_thresholds"]):
        sums: dict[int, float] = {}
        counts: dict[int, int] = {}
        for member in sorted((out / "folds" / f"fold_{k}").glob("member_*")):
            with np.load(member / "predictions.npz") as p:
                for i, score in zip(p["stop_index"].tolist(), p["stop"].tolist(), strict=False):
                    sums[i] = sums.get(i, 0.0) + score
                    counts[i] = counts.get(i, 0) + 1
        fold = splits[splits.fold == str(k)]
        stop_ids = cohort_order[sorted(sums)]
        assert len(stop_ids) and set(stop_ids).isdisjoint(fold.loc[fold.role == "test", "case_id"])
        scores = np.array([sums[i] / counts[i] for i in sorted(sums)])
        truth = np.array([y[c] for c in stop_ids])
        assert cut == pytest.approx(select_threshold(truth, scores, "youden"))


def test_metrics_match_an_independent_computation(run_dir: Path) -> None:
    out = run_dir / "out"
    preds = pd.read_csv(out / "predictions.csv", dtype={"case_id": str, "site": str})
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(preds) == 28 and set(preds.columns) >= {
        "cnn_prob",
        "cnn_std",
        "classical_prob",
        "classical_combat_prob",
        "y_true",
        "fold",
    }
    for model in ("cnn", "classical", "classical_combat", "cnn_combat"):
        auc = metrics["models"][model]["test"]["auc"]
        assert auc["value"] == pytest.approx(roc_auc_score(preds.y_true, preds[f"{model}_prob"]))
        assert auc["ci_low"] <= auc["value"] <= auc["ci_high"]
    assert metrics["test"] == metrics["models"]["cnn"]["test"]
    for site, panel in metrics["per_site"].items():
        part = preds[preds.site == site]
        if part.y_true.nunique() == 2:
            assert panel["auc"]["value"] == pytest.approx(roc_auc_score(part.y_true, part.cnn_prob))
    # each fold applies its own threshold to its own test cases
    for model in ("cnn", "classical", "classical_combat", "clinical"):
        cuts = metrics["models"][model]["fold_thresholds"]
        per_fold = preds.groupby("fold")[f"{model}_threshold"].unique()
        assert [len(v) for v in per_fold] == [1] * len(cuts)  # one threshold per fold
        assert [v[0] for v in per_fold] == pytest.approx(cuts)
        acc = np.mean((preds[f"{model}_prob"] >= preds[f"{model}_threshold"]) == preds.y_true)
        assert metrics["models"][model]["test"]["accuracy"]["value"] == pytest.approx(acc)
    assert metrics["threshold"] == pytest.approx(np.mean(metrics["fold_thresholds"]))
    assert (preds.cnn_std >= 0).all() and (preds.cnn_std > 0).any()
    ens = metrics["ensemble"]
    assert ens["members"] == 2 and len(ens["per_member"]) == 2
    assert ens["member_error"] == pytest.approx(np.mean(ens["per_member"]))
    assert {c["scope"] for c in metrics["comparisons"]} >= {"pooled"}
    stages = metrics["timing"]["stages"]  # where the run's time went, stage by stage
    assert {"preprocess", "cnn", "classical", "metrics", "learning_curve"} <= set(stages)
    assert 0 < sum(stages.values()) <= metrics["timing"]["total_seconds"] + 0.1 * len(stages)
    lc = pd.DataFrame(metrics["learning_curve"])
    assert set(lc.model) == {"cnn", "classical"} and sorted(lc.fraction.unique()) == [0.5, 1.0]
    assert (
        lc.loc[lc.fraction == 0.5, "n_train"].to_numpy()
        < lc.loc[lc.fraction == 1.0, "n_train"].to_numpy()
    ).all()
    # fold members keep the embeddings (site audit, ComBat on embeddings); the curve's none
    for member in (out / "folds").glob("fold_*/member_*/predictions.npz"):
        assert "embedding" in np.load(member).files
    curve = sorted((out / "learning_curve").glob("*/cnn/predictions.npz"))
    assert len(curve) == 2 and not any("embedding" in np.load(f).files for f in curve)


def test_truth_audit_matches_the_ground_truth(run_dir: Path) -> None:
    from scipy.stats import spearmanr

    out = run_dir / "out"
    preds = pd.read_csv(out / "predictions.csv", dtype={"case_id": str})
    truth = pd.read_csv(run_dir / "cohort" / "ground_truth.csv", dtype={"case_id": str})
    merged = preds.merge(truth, on="case_id", validate="one_to_one", suffixes=("", "_gt"))
    audit = json.loads((out / "metrics.json").read_text())["truth"]
    oracle = audit["oracle"]["auc"]
    assert oracle["value"] == pytest.approx(roc_auc_score(merged.y_true, merged.risk))
    assert oracle["ci_low"] <= oracle["value"] <= oracle["ci_high"]
    assert set(audit["models"]) == {
        "cnn",
        "classical",
        "classical_combat",
        "cnn_combat",
        "clinical",
    }
    for model, entry in audit["models"].items():
        for comp in ("visible", "spatial", "clinical", "site"):
            est = entry["components"][comp]
            score = merged[f"{model}_prob"]
            if score.nunique() == 1 or merged[f"eta_{comp}"].nunique() == 1:
                # a constant ranks nothing (eta_site at confounding 0): undefined, null
                assert est["value"] is None
                continue
            assert est["value"] == pytest.approx(spearmanr(score, merged[f"eta_{comp}"]).statistic)
            assert est["ci_low"] <= est["value"] <= est["ci_high"]
    html = (out / "report.html").read_text()
    assert 'id="truth"' in html
    probe = audit["phenotype_probe"]
    assert probe["components"]["texture_anisotropy"] == "spatial"
    assert set(probe["representations"]) == {"cnn", "classical"}
    for rep in probe["representations"].values():
        assert set(rep["r"]) == set(probe["components"])
        for est in rep["r"].values():
            assert est["ci_low"] <= est["value"] <= est["ci_high"]
    cnn = probe["representations"]["cnn"]["r"]["diameter_mm"]
    assert cnn["n"] >= 28  # every case is in its fold's test part, so probed at least once
    # lesion size is in dozens of shape features: the classical probe reads it
    assert probe["representations"]["classical"]["r"]["diameter_mm"]["value"] > 0.5
    assert "phenotype-probe" in html and "texture anisotropy (spatial)" in html


def test_a_ground_truth_without_the_cohorts_cases_stops_before_training(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    truth = pd.read_csv(run_dir / "cohort" / "ground_truth.csv")
    truth.iloc[1:].to_csv(tmp_path / "gt.csv", index=False)
    cohort = str(run_dir / "cohort" / "cohort.csv")
    cfg = dict(CONFIG, cohort=dict(CONFIG["cohort"], path=cohort, ground_truth="gt.csv"))
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["run", str(tmp_path / "exp.yaml"), "--out", str(tmp_path / "out")]) == 1
    assert f"no row for case {truth.case_id.iloc[0]}" in capsys.readouterr().err
    assert not (tmp_path / "out" / "folds").exists()


def test_class_weights_for_another_number_of_classes_stop_before_preprocessing(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    cohort = str(run_dir / "cohort" / "cohort.csv")
    truth = str(run_dir / "cohort" / "ground_truth.csv")
    cfg = dict(CONFIG, cohort=dict(CONFIG["cohort"], path=cohort, ground_truth=truth))
    cfg["train"] = dict(CONFIG["train"], class_weight=[1.0, 2.0, 3.0])
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["run", str(tmp_path / "exp.yaml"), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "train.class_weight has 3 weights but the cohort has 2 classes" in err
    assert "Traceback" not in err
    assert not list((tmp_path / "out").rglob("cases/*.npz")), "no case was preprocessed"


def test_fairness_by_sex_and_site_matches_the_predictions(run_dir: Path) -> None:
    out = run_dir / "out"
    preds = pd.read_csv(out / "predictions.csv", dtype={"case_id": str, "site": str})
    cohort = pd.read_csv(run_dir / "cohort" / "cohort.csv", dtype={"case_id": str})
    preds = preds.merge(cohort[["case_id", "sex"]], on="case_id")
    fairness = json.loads((out / "metrics.json").read_text())["fairness"]
    assert set(fairness) == {"site", "sex", "age_band"}
    for column in ("sex", "site"):
        audit = fairness[column]
        assert set(audit["by_group"]) == set(preds[column])
        for group, part in preds.groupby(column):
            entry = audit["by_group"][group]
            assert entry["n_cases"] == len(part) and entry["n_positives"] == part.y_true.sum()
            positives = part[part.y_true == 1]
            assert entry["sensitivity"]["value"] == pytest.approx(
                np.mean(positives.cnn_prob >= positives.cnn_threshold)
            )  # the fold's own
            if part.y_true.nunique() == 2:
                assert entry["auc"]["value"] == pytest.approx(
                    roc_auc_score(part.y_true, part.cnn_prob)
                )
        if len(audit["compared"]) >= 2:
            values = [audit["by_group"][g]["auc"]["value"] for g in audit["compared"]]
            assert audit["difference"]["auc"]["value"] == pytest.approx(max(values) - min(values))
    html = (out / "report.html").read_text()
    assert 'id="fairness"' in html and 'id="checklist"' in html
    software = json.loads((out / "metrics.json").read_text())["software"]
    assert software["packages"]["torch"].startswith("2.13.0")


def test_rerun_resumes_finished_and_interrupted_members(run_dir: Path) -> None:
    out = run_dir / "out"
    again = run_dir / "again"
    shutil.copytree(out, again)
    member = again / "folds" / "fold_1" / "member_1"
    (member / "done.json").unlink()  # as if killed after its last checkpoint
    (member / "predictions.npz").unlink()
    shutil.rmtree(again / "learning_curve" / "fraction_0.5_repeat_0")
    (again / "metrics.json").unlink()
    assert main(["run", str(run_dir / "exp.yaml"), "--out", str(again)]) == 0
    first = json.loads((out / "metrics.json").read_text())
    second = json.loads((again / "metrics.json").read_text())
    for key in (
        "test",
        "per_site",
        "models",
        "comparisons",
        "ensemble",
        "learning_curve",
        "fairness",
    ):
        assert first[key] == second[key], key
    assert pd.read_csv(out / "predictions.csv").equals(pd.read_csv(again / "predictions.csv"))


def test_changed_config_refuses_to_resume(run_dir: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = dict(CONFIG, seed=5)
    (run_dir / "other.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["run", str(run_dir / "other.yaml"), "--out", str(run_dir / "out")]) == 1
    assert "different config" in capsys.readouterr().err


def test_site_audit_follows_the_metrics_contract(run_dir: Path) -> None:
    audit = json.loads((run_dir / "out" / "metrics.json").read_text())["audit"]
    for rep in ("cnn", "classical", "intensity"):
        probe = audit["site_probe"][rep]
        for key in ("auc", "balanced_accuracy"):
            est = probe[key]
            assert est["ci_low"] <= est["value"] <= est["ci_high"], (rep, key)
        assert probe["chance"] == {"auc": 0.5, "balanced_accuracy": 0.5}  # two sites
        assert probe["n_permutations"] == 200 and 1 / 201 <= probe["p_permutation"] <= 1
    assert "cases no member of the fold trained on" in audit["site_probe"]["cnn"]["cases"]
    assert 0 <= audit["site_only"]["auc"]["value"] <= 1
    html = (run_dir / "out" / "report.html").read_text()
    assert 'id="confounding"' in html and escape(audit["verdict"]) in html


def test_loso_gap_is_the_paired_difference_to_the_other_scheme(run_dir: Path) -> None:
    config = {
        **CONFIG,
        "name": "gap",
        "train": {"epochs": 1, "batch_size": 4},
        "evaluate": {
            "split": "loso",
            "bootstrap": 50,
            "classical": False,
            "audit": {"loso_gap": True, "permutations": 20},
        },
    }
    (run_dir / "gap.yaml").write_text(yaml.safe_dump(config))
    assert main(["run", str(run_dir / "gap.yaml"), "--out", str(run_dir / "gap")]) == 0
    metrics = json.loads((run_dir / "gap" / "metrics.json").read_text())
    gap = metrics["audit"]["loso_gap"]["auc"]
    assert gap["loso"] == pytest.approx(metrics["test"]["auc"]["value"])
    assert gap["value"] == pytest.approx(gap["loso"] - gap["random_split"])
    assert gap["ci_low"] <= gap["value"] <= gap["ci_high"] and gap["random_split_scheme"] == "kfold"
    assert (run_dir / "gap" / "loso_gap" / "splits.csv").is_file()


def test_adversarial_run_reports_its_adversary_in_the_audit(run_dir: Path) -> None:
    config = {
        **CONFIG,
        "name": "adversarial",
        "model": {**CONFIG.get("model", {}), "site_adversary": True},
        "train": {"epochs": 2, "batch_size": 4},
        "evaluate": {
            "split": "kfold",
            "folds": 2,
            "bootstrap": 50,
            "classical": False,
            "audit": {"permutations": 20},
        },
    }
    (run_dir / "adv.yaml").write_text(yaml.safe_dump(config))
    assert main(["run", str(run_dir / "adv.yaml"), "--out", str(run_dir / "adv")]) == 0
    audit = json.loads((run_dir / "adv" / "metrics.json").read_text())["audit"]
    assert audit["adversarial"] is True
    adversary = audit["adversary"]
    assert adversary["members"] == 2 and 0 <= adversary["site_accuracy"] <= 1
    assert 0.5 <= adversary["constant_guess"] <= 1  # the largest of two sites' shares
    assert "domain-adversarial" in audit["verdict"]


def test_the_runs_report_opens_cleanly_in_a_browser(run_dir: Path, tmp_path: Path) -> None:
    """The report as a user opens it: headless Chromium, no console error, no request
    outside the file, every figure (SVG charts, embedded Grad-CAM PNGs) drawn."""
    from tests.report.browser import FIGURE_CHECKS, find_browser, open_page

    if find_browser() is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    pytest.importorskip("websocket", reason="websocket-client (test extra) absent")
    checks = {
        "images": "document.images.length",
        "images_drawn": "Array.from(document.images)"
        ".filter(i => i.complete && i.naturalWidth > 0).length",
        **FIGURE_CHECKS,
        "probe_rows": "document.querySelectorAll('table.phenotype-probe tr').length",
    }
    record = open_page(run_dir / "out" / "report.html", tmp_path / "report.png", checks)
    assert record.errors == []
    assert record.foreign_requests == []
    values = record.values
    explained = json.loads((run_dir / "out" / "metrics.json").read_text()).get("explain")
    assert values["images"] == values["images_drawn"] and (values["images"] > 0) == bool(explained)
    assert values["svgs"] == values["svgs_drawn"] > 0
    assert values["probe_rows"] == 1 + 7  # header + the generator's seven phenotypes
