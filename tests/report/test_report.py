"""report.html from fake run folders: sections, numbers, figures, self-containment, leaks."""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from deepradiomics.errors import UserError
from deepradiomics.report import write_report
from tests.report.html_tables import as_rows, section, section_ids, tables
from tests.report.run_builder import binary_run, regression_run, survival_run, truth_with_probe


def ci(entry: dict) -> str:
    return f"{entry['value']:.3f} [{entry['ci_low']:.3f}, {entry['ci_high']:.3f}]"


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    run = binary_run(tmp_path_factory.mktemp("binary") / "run")
    return run, write_report(run).read_text()


@pytest.fixture(scope="module")
def survival(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    run = survival_run(tmp_path_factory.mktemp("survival") / "run")
    return run, write_report(run).read_text()


def copy_run(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest, ignore=shutil.ignore_patterns("report.html", "model_card.md"))
    return dest


def edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_binary_report_has_every_section(binary):
    run, page = binary
    assert (run / "report.html").is_file()
    ids = section_ids(page)
    for sid in (
        "config",
        "cohort",
        "splits",
        "metrics",
        "per-site",
        "comparison",
        "per-fold",
        "fairness",
        "roc",
        "calibration",
        "learning-curve",
        "ensemble",
        "uncertainty",
        "limitations",
    ):
        assert sid in ids
    assert "km" not in ids  # survival only
    # roc, calibration, learning curve, ensemble, uncertainty, fairness forest plot
    assert page.count("<svg") == 6
    assert "<details><summary>Full resolved configuration" in section(page, "config")
    header = page[page.index("<header>") : page.index("</header>")]
    assert "5-fold cross-validation" in header and "120 cases from 100 patients" in header
    assert "Each of the 3 ensemble members of a fold was trained on a bootstrap resample" in header
    assert "An inner validation set" not in header  # the members stopped on out-of-bag cases
    assert "200 bootstrap resamples" in header and "ensemble of 3 CNN members" in header


def test_metric_tables_show_metrics_json_values(binary):
    run, page = binary
    metrics = json.loads((run / "metrics.json").read_text())
    pooled = as_rows(tables(section(page, "metrics"))[0])
    assert pooled["header"] == ["CNN", "Classical radiomics", "Classical radiomics + ComBat"]
    assert pooled["cases evaluated"] == ["120"] * 3
    for name, label in (("auc", "AUC"), ("accuracy", "Accuracy"), ("brier", "Brier score")):
        expected = [
            ci(metrics["models"][m]["test"][name]) for m in ("cnn", "classical", "classical_combat")
        ]
        assert pooled[label] == expected
    site_tables = tables(section(page, "per-site"))
    assert len(site_tables) == 3  # one per model
    cnn_sites = as_rows(site_tables[0])
    assert cnn_sites["header"] == ["pooled", "alpha", "beta", "gamma"]
    assert cnn_sites["AUC"] == [ci(metrics["test"]["auc"])] + [
        ci(metrics["per_site"][s]["auc"]) for s in ("alpha", "beta", "gamma")
    ]
    assert cnn_sites["cases"] == ["120", "40", "41", "39"]
    comparison = tables(section(page, "comparison"))[0]
    assert comparison[1] == [
        "CNN − Classical radiomics",
        "AUC",
        "pooled",
        "0.083 [0.021, 0.150]",
        "0.0123",
    ]
    assert comparison[3][2] == "alpha" and comparison[3][4] == "—"  # site scope after pooled
    folds = as_rows(tables(section(page, "per-fold"))[0])
    assert folds["mean"] == [
        f"{np.mean([0.8 + 0.01 * k for k in range(5)]):.3f}",
        f"{np.mean([0.16 - 0.002 * k for k in range(5)]):.3f}",
    ]
    assert folds["SD"][0] == f"{np.std([0.8 + 0.01 * k for k in range(5)], ddof=1):.3f}"
    assert "decision threshold: 0.42, chosen on validation data" in section(page, "metrics")


def test_per_fold_thresholds_are_named(tmp_path):
    from deepradiomics.report.tables import threshold_text

    text = threshold_text({"threshold": 0.45, "fold_thresholds": [0.4, 0.5]})
    assert "one per fold" in text and "0.4 / 0.5" in text and "their mean, 0.45" in text


def test_cohort_and_split_summaries(binary):
    run, page = binary
    cohort = as_rows(tables(section(page, "cohort"))[0])
    info = json.loads((run / "cohort.json").read_text())["sites"]["alpha"]
    assert cohort["alpha"] == [
        str(info["n_cases"]),
        str(info["n_patients"]),
        f"{info['positives']} ({100 * info['positives'] / info['n_cases']:.1f} %)",
    ]
    plan = dict(r for r in tables(section(page, "cohort"))[2][1:])
    assert plan["anisotropic kernels"].startswith("yes")
    assert plan["crop size (z, y, x)"] == "72 × 64 × 64 mm"
    splits = pd.read_csv(run / "splits.csv")
    pred = pd.read_csv(run / "predictions.csv").set_index("case_id")
    rows = tables(section(page, "splits"))[0]
    assert rows[0] == [
        "fold",
        "train: cases / patients / positives",
        "val: cases / patients / positives",
        "test: cases / patients / positives",
    ]
    fold0 = splits[splits["fold"] == 0]
    for i, role in enumerate(("train", "val", "test"), start=1):
        part = fold0[fold0["role"] == role]
        positives = pred.loc[part["case_id"], "y_true"].sum()
        assert rows[1][i] == f"{len(part)} / {part['patient_id'].nunique()} / {positives}"
    assert 'class="banner ok"' in section(page, "splits")
    assert "banner error" not in page


def test_report_is_self_contained_and_has_no_case_rows(binary):
    _, page = binary
    assert "http://" not in page and "https://" not in page
    links = re.findall(r"""\b(?:src|href)\s*=\s*["']([^"']*)["']""", page)
    assert links and all(link.startswith("#") for link in links)  # in-page anchors only
    assert not re.search(r"""\b(?:src|href)\s*=\s*[^"'\s]""", page)  # no unquoted ones
    for banned in ("<script", "<link", "<img", "<iframe", "@import", "@font-face"):
        assert banned not in page
    assert re.findall(r"url\(([^)]*)\)", page) and all(
        u.startswith("#") for u in re.findall(r"url\(([^)]*)\)", page)
    )
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "element ids repeat across inline SVGs"
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page
    assert "case-0" not in page and "pat-0" not in page  # aggregates only


def test_report_is_deterministic(binary, tmp_path):
    run, page = binary
    again = copy_run(run, tmp_path / "again")
    shutil.copystat(run / "metrics.json", again / "metrics.json")  # same run date
    assert write_report(again).read_text() == page


def test_user_strings_are_escaped(binary, tmp_path):
    run = copy_run(binary[0], tmp_path / "run")
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["name"] = "<script>alert('x')</script>"
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    bad = "<b>site&co</b>"
    edit_json(run / "cohort.json", lambda c: c["sites"].__setitem__(bad, c["sites"].pop("alpha")))
    edit_json(
        run / "metrics.json", lambda m: m["per_site"].__setitem__(bad, m["per_site"].pop("alpha"))
    )
    page = write_report(run).read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert bad not in page and "&lt;b&gt;site&amp;co&lt;/b&gt;" in page


def test_patient_crossing_train_and_test_turns_into_an_error_banner(binary, tmp_path):
    run = copy_run(binary[0], tmp_path / "leak")
    (run / "predictions.csv").unlink()  # not needed for the check; skips the figures
    splits = pd.read_csv(run / "splits.csv", dtype={"case_id": str, "patient_id": str})
    fold0 = splits[splits["fold"] == 0]
    test_patient = fold0.loc[fold0["role"] == "test", "patient_id"].iloc[0]
    train_case = fold0.loc[fold0["role"] == "train", "case_id"].iloc[0]
    splits.loc[splits["case_id"] == train_case, "patient_id"] = test_patient
    splits.to_csv(run / "splits.csv", index=False)
    page = write_report(run).read_text()
    body = section(page, "splits")
    assert 'class="banner error"' in body and "banner ok" not in body
    assert "Patient leak: fold 0: 1 patient with cases in both train and test" in body
    assert page.index('class="banner error"') < page.index("<main>")  # also at the top
    assert "not trustworthy" in section_free_header(page)


def section_free_header(page: str) -> str:
    return page[page.index("<header>") : page.index("</header>")]


def test_train_val_crossing_is_a_warning_not_a_leak(binary, tmp_path):
    run = copy_run(binary[0], tmp_path / "val")
    (run / "predictions.csv").unlink()
    splits = pd.read_csv(run / "splits.csv", dtype={"case_id": str, "patient_id": str})
    fold0 = splits[splits["fold"] == 0]
    val_patient = fold0.loc[fold0["role"] == "val", "patient_id"].iloc[0]
    # a training case of fold 0 that is also training (never test) in the other folds it shares
    # with the validation patient is enough: only fold 0's roles matter for this check
    train_case = fold0.loc[fold0["role"] == "train", "case_id"].iloc[0]
    splits.loc[(splits["case_id"] == train_case) & (splits["fold"] == 0), "patient_id"] = (
        val_patient
    )
    splits.to_csv(run / "splits.csv", index=False)
    body = section(write_report(run).read_text(), "splits")
    assert 'class="banner ok"' in body and 'class="banner warning"' in body
    assert "banner error" not in body


def test_survival_km_log_rank_matches_lifelines(survival):
    from lifelines.statistics import logrank_test

    run, page = survival
    assert {"km", "metrics", "per-site", "splits", "cohort"} <= set(section_ids(page))
    assert not {"roc", "calibration", "learning-curve", "ensemble", "uncertainty"} & set(
        section_ids(page)
    )
    pred = pd.read_csv(run / "predictions.csv")
    body = section(page, "km")
    for model in ("cnn", "classical"):
        risk = pred[f"{model}_risk"].to_numpy()
        high = risk > np.median(risk)
        expected = logrank_test(
            pred["time"][high], pred["time"][~high], pred["event"][high], pred["event"][~high]
        ).p_value
        shown = re.search(
            rf'<span class="p-value" data-model="{model}">([^<]+)</span>', body
        ).group(1)
        assert float(shown) == pytest.approx(expected, rel=5e-3)
        assert shown == f"{expected:.3g}"
    rows = as_rows(tables(body)[0])
    risk = pred["cnn_risk"].to_numpy()
    high = risk > np.median(risk)
    assert rows["CNN"][1] == f"{(~high).sum()} / {pred['event'][~high].sum()}"
    assert rows["CNN"][2] == f"{high.sum()} / {pred['event'][high].sum()}"
    assert rows["CNN"][0] == f"{np.median(risk):.3f}"


def test_regression_minimal_run_omits_what_it_lacks(tmp_path):
    run = regression_run(tmp_path / "reg")
    page = write_report(run).read_text()
    assert set(section_ids(page)) == {"config", "metrics", "per-site", "limitations", "checklist"}
    pooled = as_rows(tables(section(page, "metrics"))[0])
    assert pooled["MAE"] == ["3.211 [2.711, 3.711]"] and pooled["R²"] == ["0.823 [0.773, 0.873]"]
    assert "holdout" in page and "not in the run folder" in page


def test_learning_curve_table_gives_the_scores_where_the_curves_meet(binary):
    """Mean test score (SD over the 2 repeats) per training share and CNN minus classical,
    from the fabricated curve: cnn 0.7 + 0.1 f + 0.01 r, classical 0.68 + 0.1 f + 0.01 r."""
    _, page = binary
    rows = as_rows(tables(section(page, "learning-curve"))[0])
    assert rows["header"] == [
        "training cases",
        "CNN: test",
        "Classical radiomics: test",
        "CNN - Classical radiomics",
    ]
    sd = np.std([0.0, 0.01], ddof=1)
    for f in (0.25, 0.5, 0.75, 1.0):
        cnn = 0.7 + 0.1 * f + 0.005
        assert rows[f"{100 * f:.0f} %"] == [
            str(int(96 * f)),
            f"{cnn:.3f} ({sd:.3f})",
            f"{cnn - 0.02:.3f} ({sd:.3f})",
            "0.020",
        ]
    assert (
        "No crossover: CNN is ahead at every size (CNN - Classical radiomics +0.020 at 24 "
        "training cases, +0.020 at 96 training cases; one outer fold, 2 repeat(s) per size"
    ) in section(page, "learning-curve")


def test_missing_learning_curve_and_classical_models_are_omitted(binary, tmp_path):
    run = copy_run(binary[0], tmp_path / "cnn_only")

    def cnn_only(m: dict) -> None:
        for key in ("learning_curve", "comparisons", "ensemble", "per_fold"):
            m.pop(key)
        m["models"] = {"cnn": m["models"]["cnn"]}

    edit_json(run / "metrics.json", cnn_only)
    pred = pd.read_csv(run / "predictions.csv")
    pred.drop(columns=["classical_prob", "classical_combat_prob"]).to_csv(
        run / "predictions.csv", index=False
    )
    page = write_report(run).read_text()
    ids = set(section_ids(page))
    assert not {"learning-curve", "comparison", "ensemble", "per-fold"} & ids
    assert {"roc", "calibration", "metrics", "per-site", "uncertainty"} <= ids
    assert as_rows(tables(section(page, "metrics"))[0])["header"] == ["CNN"]
    assert len(tables(section(page, "per-site"))) == 1
    assert "Classical radiomics" not in page


def test_without_predictions_the_figures_go_and_the_tables_stay(binary, tmp_path):
    run = copy_run(binary[0], tmp_path / "nopred")
    (run / "predictions.csv").unlink()
    page = write_report(run).read_text()
    ids = set(section_ids(page))
    assert not {"roc", "calibration", "uncertainty"} & ids
    assert {"metrics", "per-site", "splits", "learning-curve"} <= ids
    splits = tables(section(page, "splits"))[0]
    assert splits[0][1] == "train: cases / patients"  # outcomes unknown without predictions.csv


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda run: (run / "metrics.json").unlink(), "metrics.json not found"),
        (
            lambda run: (run / "metrics.json").write_text("{not json"),
            "metrics.json: not valid JSON",
        ),
        (
            lambda run: (
                pd.read_csv(run / "predictions.csv")
                .drop(columns="y_true")
                .to_csv(run / "predictions.csv", index=False)
            ),
            "predictions.csv: missing column(s) y_true",
        ),
        (
            lambda run: (
                pd.read_csv(run / "splits.csv")
                .assign(role="training")
                .to_csv(run / "splits.csv", index=False)
            ),
            "column role: 'training'",
        ),
        (
            lambda run: (
                pd.read_csv(run / "predictions.csv")
                .assign(cnn_prob="high")
                .to_csv(run / "predictions.csv", index=False)
            ),
            "line 2: column cnn_prob: 'high' is not a number",
        ),
    ],
)
def test_bad_run_files_are_user_errors(binary, tmp_path, damage, message):
    run = copy_run(binary[0], tmp_path / "bad")
    damage(run)
    with pytest.raises(UserError, match=re.escape(message)):
        write_report(run)


def test_missing_run_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="run folder not found"):
        write_report(tmp_path / "nowhere")


def test_leave_one_site_out_names_the_held_out_site(binary, tmp_path):
    run = copy_run(binary[0], tmp_path / "loso")
    (run / "predictions.csv").unlink()
    cases = pd.read_csv(run / "splits.csv").query("fold == 0")[["case_id", "patient_id", "site"]]
    folds = [
        cases.assign(fold=k, role=np.where(cases["site"] == site, "test", "train"), held_out="")
        for k, site in enumerate(("alpha", "beta", "gamma"))
    ]
    pd.concat(folds).to_csv(run / "splits.csv", index=False)
    edit_json(run / "metrics.json", lambda m: m.update(split="loso", early_stopping="validation"))
    page = write_report(run).read_text()
    rows = tables(section(page, "splits"))[0]
    assert rows[0][:2] == ["fold", "held out"]
    assert [r[1] for r in rows[1:]] == ["alpha", "beta", "gamma"]
    assert "leave-one-site-out validation over 3 sites" in page
    assert "No inner validation set was used" in page
    assert "Sites were mixed inside the splits" not in page


def header_text(page: str) -> str:
    return html.unescape(page[page.index("<header>") : page.index("</header>")])


def test_validation_text_says_what_the_members_stopped_on(binary, tmp_path):
    oob = header_text(binary[1])
    assert (
        "used its out-of-bag patients, those its resample left out, for early stopping "
        "(patience 15 epochs); the decision threshold (0.42) was chosen on the pooled "
        "out-of-bag predictions of all folds, which include other folds' test cases"
    ) in oob
    run = copy_run(binary[0], tmp_path / "single")
    edit_json(
        run / "metrics.json", lambda m: (m.pop("ensemble"), m.update(early_stopping="validation"))
    )
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["evaluate"]["ensemble_members"] = 1
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    single = header_text(write_report(run).read_text())
    assert (
        "An inner validation set (25 % of each training part's patients, grouped and "
        "stratified) was used for early stopping (patience 15 epochs); the decision "
        "threshold (0.42) was chosen on the pooled validation predictions"
    ) in single
    assert "out-of-bag" not in single and "single CNN (no ensemble)" in single
    config["train"]["monitor"] = "last"
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    fixed = header_text(write_report(run).read_text())
    assert (
        f"was used for monitoring only (a fixed schedule: all {config['train']['epochs']} epochs "
        "ran and the last was kept); the decision threshold (0.42)"
    ) in fixed
    config["train"]["validate_every"] = 5
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    assert "the last was kept, validated every 5 epochs); the decision" in header_text(
        write_report(run).read_text()
    )
    config["train"]["validate_every"] = 1
    config["train"]["monitor"] = "score"
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    edit_json(run / "metrics.json", lambda m: m.update(threshold_selection="per_fold"))
    per_fold = header_text(write_report(run).read_text())
    assert (
        "the decision threshold was chosen in each fold on that fold's own validation "
        "predictions and applied to that fold's test cases only"
    ) in per_fold


def test_ece_interval_leaving_out_its_estimate_is_named_a_limitation(binary, tmp_path):
    assert "calibration error's interval" not in html.unescape(section(binary[1], "limitations"))
    run = copy_run(binary[0], tmp_path / "ece")

    def shift(m: dict) -> None:
        m["test"]["ece"] = {"value": 0.05, "ci_low": 0.07, "ci_high": 0.15, "n": 60}

    edit_json(run / "metrics.json", shift)
    text = html.unescape(section(write_report(run).read_text(), "limitations"))
    assert (
        "calibration error's interval (0.070 to 0.150) leaves out its point estimate 0.050" in text
    )


def test_confounding_section_states_the_verdict_and_the_numbers(binary, tmp_path):
    run, page = binary
    body = section(page, "confounding")
    assert "The site is strongly predictable from the CNN&#x27;s embeddings" in body
    for text in (
        "CNN embeddings",
        "0.930 [0.890, 0.960]",
        "0.005",
        "intensity statistics",
        "<td>0.31</td>",
        "outcome from the site alone (auc)",
        "0.620 [0.550, 0.690]",
        "leave-one-site-out − kfold",
        "-0.080 [-0.150, -0.010]",
    ):
        assert text in body, text
    assert "Confounding audit: The site is strongly predictable" in section(page, "limitations")
    bare = copy_run(run, tmp_path / "bare")
    edit_json(bare / "metrics.json", lambda m: m.pop("audit"))
    assert "confounding" not in section_ids(write_report(bare).read_text())


def _fold_fit(cases: int, sites: dict[str, int], fitted: list[str], fold: int) -> dict:
    return {
        "scope": f"training part of fold {fold}",
        "cases": cases,
        "patients": cases,
        "sites": sites,
        "fitted": fitted,
    }


def test_validation_text_says_what_the_preprocessing_plan_saw(binary, tmp_path):
    assert "preprocessing plan" not in header_text(binary[1])  # a run without the record
    run = copy_run(binary[0], tmp_path / "plan")
    fitted = ["spacing", "crop", "shape", "window ct"]
    record = {
        "fit_on": "training part of each fold",
        "fitted": fitted,
        "distinct_plans": 3,
        "folds": {
            str(k): _fold_fit(n, {"alpha": n - 20, "beta": 20}, fitted, k)
            for k, n in enumerate((80, 82, 80))
        },
    }
    edit_json(run / "metrics.json", lambda m: m.update(plan=record))
    text = header_text(write_report(run).read_text())
    assert (
        "The preprocessing plan (spacing, crop, shape, the intensity window of ct) was "
        "computed in each fold from that fold's training part only (80 to 82 cases per fold "
        "from 2 sites); a fold's test cases never shaped the plan that prepared them "
        "(3 distinct plans over 3 folds)."
    ) in text
    edit_json(run / "metrics.json", lambda m: m.update(split="loso"))
    assert "the left-out site and its test cases never shaped" in header_text(
        write_report(run).read_text()
    )
    record.update(fitted=[], distinct_plans=1)
    edit_json(run / "metrics.json", lambda m: m.update(plan=record, split="kfold"))
    assert (
        "Every preprocessing value (spacing, crop, intensity windows) was configured, so no "
        "case's data shaped the preprocessing."
    ) in header_text(write_report(run).read_text())
    every = {
        "fit_on": "every case",
        "fitted": fitted,
        "folds": {  # segmentation runs: every fold planned on every case
            str(k): {**_fold_fit(242, {}, fitted, k), "scope": "every case"} for k in (0, 1)
        },
    }
    edit_json(run / "metrics.json", lambda m: m.update(plan=every))
    assert "computed from every case (242), including the test cases" in header_text(
        write_report(run).read_text()
    )


def test_truth_section_shows_the_phenotype_probe(binary, tmp_path):
    run, _ = binary
    probed = copy_run(run, tmp_path / "probed")
    truth = truth_with_probe()
    edit_json(probed / "metrics.json", lambda m: m.update(truth=truth))
    body = section(write_report(probed).read_text(), "truth")
    probe = [t for t in tables(body) if t[0][0] == "phenotype (part of the risk)"]
    assert probe == [
        [
            ["phenotype (part of the risk)", "CNN embeddings", "hand-crafted features"],
            ["diameter (visible)", "0.900 [0.800, 1.000]", "0.950 [0.850, 1.050]"],
            ["necrosis (visible)", "0.300 [0.200, 0.400]", "0.800 [0.700, 0.900]"],
            ["texture anisotropy (spatial)", "0.500 [0.400, 0.600]", "0.250 [0.150, 0.350]"],
        ]
    ]
    # overlapping intervals (diameter) are not called a difference
    assert html.escape(
        "The CNN's embeddings carry more of texture anisotropy (0.500 vs 0.250) and less of "
        "necrosis (0.300 vs 0.800) than the hand-crafted features"
    ) in " ".join(body.split())
    edit_json(probed / "metrics.json", lambda m: m["truth"].pop("phenotype_probe"))
    bare = section(write_report(probed).read_text(), "truth")
    assert "phenotype-probe" not in bare and "Phenotype probe" not in bare


def test_the_binary_outcome_names_its_positive_class(binary, tmp_path):
    run, _ = binary
    named = copy_run(run, tmp_path / "named")
    edit_json(named / "cohort.json", lambda c: c.update(classes=["benign", "malignant"]))
    page = write_report(named).read_text()
    assert "outcome: column label (classes benign, malignant; positive: malignant)." in section(
        page, "cohort"
    )
    assert "A probability of the positive class (malignant);" in page
    edit_json(named / "cohort.json", lambda c: c.pop("classes"))
    assert "positive: " not in write_report(named).read_text()


def test_explained_cases_show_what_their_map_is_made_of():
    from deepradiomics.report import explain as ex

    regions = {"lesion": 0.8, "margin": 0.1, "body": 0.1, "outside": 0.0}
    info = {
        "cases": {
            "c1": {
                "group": "TP",
                "prob": 0.9,
                "gradcam": {**regions, "composition": {"intensity": 0.3, "texture": 0.7}},
            },
            "c2": {"group": "FN", "prob": 0.2, "gradcam": regions},
        }
    }
    grid = ex.cases_grid(info)
    assert grid.header[-2:] == ["map from intensity", "map from texture"]
    assert grid.rows[0][-2:] == ["30 %", "70 %"] and grid.rows[1][-2:] == ["", ""]
    assert grid.rows[0][3] == "80 %"  # the regions' columns stay where they were
    assert ex.composition_line(info).startswith("Map from texture / intensity / levels")
    del info["cases"]["c1"]["gradcam"]["composition"]
    assert not any(h.startswith("map from") for h in ex.cases_grid(info).header)
    assert ex.composition_line(info) == ""


def test_a_tiny_negative_share_reads_zero_percent():
    from deepradiomics.report.explain import _pct

    assert [_pct(v) for v in (-0.001, 0.3, -0.02, None)] == ["0 %", "30 %", "-2 %", ""]
