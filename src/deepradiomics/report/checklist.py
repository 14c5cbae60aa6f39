"""Reporting checklists filled with what the run knows: TRIPOD+AI and METRICS.

- TRIPOD+AI (Collins et al., BMJ 2024;385:e078378): the 27-item reporting checklist for
  prediction-model studies using regression or machine learning (items with their parts,
  e.g. 12a-12g; the abstract's own checklist is left out).
- METRICS (Kocak et al., Insights Imaging 2024;15:8): the 30-item, 5-condition
  methodological quality score for radiomics studies.

Item wordings are short paraphrases; read the papers for the full text. Each answer comes
from the run folder only (config, cohort.json, splits, metrics.json, including the software
versions and git commit the run recorded); what the run cannot know (ethics, funding, data
dates, eligibility, blinding, ...) is marked "to be completed by the authors", and an answer
the authors must extend ends with that mark as well.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from deepradiomics.report.fairness import fairness_audits
from deepradiomics.report.formatting import fmt_estimate, fmt_triple, metric_label
from deepradiomics.report.narrative import (
    bootstrap_resamples,
    design_sentence,
    early_stopping_cases,
    ensemble_members,
    limitations,
    plan_sentence,
    split_kind,
    validation_summary,
)
from deepradiomics.report.run_files import RunData, finite
from deepradiomics.report.splits import patient_leaks
from deepradiomics.tasks import get_task

AUTHORS = "To be completed by the authors."
TRIPOD = "TRIPOD+AI (2024)"
REFERENCES = (
    "References: Collins GS et al. TRIPOD+AI statement: updated guidance for reporting clinical "
    "prediction models that use regression or machine learning methods. BMJ 2024;385:e078378. "
    "Kocak B et al. METhodological RadiomICs Score (METRICS): a quality scoring tool for "
    "radiomics research endorsed by EuSoMII. Insights Imaging 2024;15:8."
)
METRICS_TOOL = "METRICS (2024)"


@dataclass(frozen=True)
class Answer:
    item: str
    topic: str
    text: str  # what the item asks (paraphrased)
    answer: str  # what the run reports, or AUTHORS

    @property
    def complete(self) -> bool:
        """Filled by the run alone (nothing left to the authors)."""
        return not self.answer.endswith(AUTHORS)


Filler = Callable[[RunData], "str | None"]


def _partly(text: str) -> str:
    return f"{text} {AUTHORS}"


# ---- facts about the run --------------------------------------------------------------------


def _sites(run: RunData) -> list[str]:
    return [str(s) for s in ((run.cohort or {}).get("sites") or {})]


def _modalities(run: RunData) -> str:
    mods = run.section("cohort").get("modalities") or {}
    names = [
        f"{n} ({v.get('kind', '?').upper()})" if isinstance(v, dict) else str(n)
        for n, v in mods.items()
    ]
    return ", ".join(names or map(str, (run.cohort or {}).get("modalities") or [])) or "images"


def _covariates(run: RunData) -> list[str]:
    c = run.section("cohort")
    return [*(c.get("covariates_numeric") or []), *(c.get("covariates_categorical") or [])]


def _classes(run: RunData) -> list[str]:
    """The class names, in label order (the run's cohort summary, else the config)."""
    classes = (run.cohort or {}).get("classes") or run.section("cohort").get("classes") or []
    return [str(c) for c in classes]


def _positive_class(run: RunData) -> str | None:
    """A binary task's positive class (label 1), when the classes are named."""
    classes = _classes(run)
    return classes[1] if run.task == "binary" and len(classes) == 2 else None


def outcome_text(run: RunData) -> str:
    """The outcome in words: its column(s), the class names and a binary task's positive one."""
    c = run.section("cohort")
    if run.task == "survival":
        return f"time to event (columns {c.get('time', 'time')} / {c.get('event', 'event')})"
    classes = _classes(run)
    text = f"column {c.get('target', 'label')}"
    if not classes:
        return text
    positive = _positive_class(run)
    named = "classes " + ", ".join(classes) + (f"; positive: {positive}" if positive else "")
    return f"{text} ({named})"


def _size(run: RunData) -> str | None:
    cohort = run.cohort
    if not cohort:
        return None
    text = f"{cohort.get('n_cases')} cases from {cohort.get('n_patients')} patients"
    if cohort.get("positives") is not None:
        text += f", {cohort['positives']} positive"
    if cohort.get("events") is not None:
        text += f", {cohort['events']} events"
    return text


def software_text(run: RunData) -> str:
    """The software versions and git commit the run recorded, as one sentence."""
    sw = run.metrics.get("software")
    if not isinstance(sw, dict):
        return "Software versions were not recorded by this run."
    packages = sw.get("packages") or {}
    text = f"deepradiomics {sw.get('deepradiomics')}, Python {sw.get('python')}; " + ", ".join(
        f"{k} {v}" for k, v in packages.items()
    )
    git = sw.get("git")
    if isinstance(git, dict) and git.get("commit"):
        text += f"; code at git commit {git['commit']}"
        text += " (with uncommitted changes)" if git.get("dirty") else ""
    else:
        text += "; git commit not available (installed package)"
    return text + "."


def model_description(run: RunData) -> str:
    """The CNN (and baseline) as trained: architecture, inputs, schedule, ensemble."""
    m, t = run.section("model"), run.section("train")
    text = (
        f"3D CNN '{m.get('name')}' trained end to end from {_modalities(run)}"
        + (
            f" with clinical covariates ({', '.join(_covariates(run))}) fused into the head"
            if _covariates(run)
            else ""
        )
        + f"; up to {t.get('epochs')} epochs, batch {t.get('batch_size')}, learning rate "
        f"{t.get('lr')}, loss {t.get('loss') or 'the task default'}; "
        f"{ensemble_members(run)} member(s) per fold."
    )
    if "classical" in run.models:
        text += (
            " Baseline: PyRadiomics features, variance and correlation filters, univariate "
            "or L1 selection and a penalised linear model, tuned by inner "
            "patient-grouped cross-validation on the training part"
        )
        text += " (also with ComBat harmonisation)." if "classical_combat" in run.models else "."
    return text


def _metric_names(run: RunData) -> list[str]:
    return [str(k) for k in (run.metrics.get("test") or {})]


def _performance(run: RunData) -> str | None:
    test = run.metrics.get("test") or {}
    metric = get_task(run.task).primary_metric
    if metric not in test:
        return None
    text = f"Pooled {metric_label(metric)} {fmt_estimate(test[metric])}"
    if run.metrics.get("per_site"):
        text += "; per site in the report's 'Per site' section"
    if fairness_audits(run):
        text += f"; per subgroup ({', '.join(fairness_audits(run))}) in the 'Fairness' section"
    return text + "."


def _threshold(run: RunData) -> str:
    if run.task != "binary":
        return {
            "survival": "A risk score (higher = earlier events).",
            "regression": "A predicted value.",
            "multiclass": "Class probabilities; the predicted class is the most probable.",
        }.get(run.task, "The task's prediction.")
    rule = run.section("evaluate").get("threshold", "youden")
    value = finite(run.metrics.get("threshold"))
    how = (
        "per fold on that fold's own"
        if run.metrics.get("threshold_selection") == "per_fold"
        else "on the pooled"
    )
    cases = "out-of-bag" if early_stopping_cases(run) == "out_of_bag" else "validation"
    positive = f" ({name})" if (name := _positive_class(run)) else ""
    return (
        f"A probability of the positive class{positive}; cases are called positive at or "
        "above a "
        f"threshold chosen by the rule '{rule}' {how} {cases} predictions"
        + (f" ({value:.3g})" if value is not None else "")
        + "."
    )


def _missing(run: RunData) -> str | None:
    cohort = run.cohort
    if not cohort:
        return None
    left = cohort.get("left_out") or []
    covs = cohort.get("covariates") or {}
    missing = {k: v.get("missing", 0) for k, v in covs.items() if isinstance(v, dict)}
    text = (
        f"{len(left)} case(s) could not be preprocessed and were left out"
        + (f" ({'; '.join(map(str, left[:3]))}{' ...' if len(left) > 3 else ''})" if left else "")
        + ". "
    )
    if missing:
        text += (
            "Missing covariate values: "
            + ", ".join(f"{k} {v}" for k, v in missing.items())
            + "; numeric ones enter the model as 0 with a missing indicator, categorical "
            "ones as their own level (encoded in each fold from training cases only)."
        )
    return text


def _per_fold_counts(run: RunData) -> str | None:
    if run.splits is None:
        return None
    parts = []
    for fold, part in run.splits.groupby("fold"):
        counts = part.groupby("role")["patient_id"].nunique().to_dict()
        parts.append(
            f"fold {fold}: "
            + ", ".join(f"{r} {counts.get(r, 0)}" for r in ("train", "val", "test"))
        )
    return "Patients per fold and role (splits.csv): " + "; ".join(parts) + "."


def _preprocessing(run: RunData) -> str:
    plan = (run.cohort or {}).get("plan") or {}
    p = run.section("preprocess")
    spacing = plan.get("spacing") or p.get("spacing")
    crop = plan.get("crop_mm") or p.get("crop_mm")
    return (
        f"Cohort validated (deepradiomics validate checks); images resampled to "
        f"{fmt_triple(spacing, 'mm')} ({p.get('interpolation', 'linear')} interpolation), "
        f"normalised per modality (CT window, MR z-score, PET SUV clip), cropped to "
        f"{fmt_triple(crop, 'mm')} around the mask."
        + (f" {fit}" if (fit := plan_sentence(run)) else "")
    )


def _fairness(run: RunData) -> str | None:
    audits = fairness_audits(run)
    if not audits:
        return None
    first = next(iter(audits.values()))
    return (
        f"Subgroup audit over {', '.join(audits)}: per-group metrics with patient-bootstrap "
        f"CIs and between-group gaps; groups under {first.get('min_patients')} patients or "
        f"{first.get('min_events')} events are listed but not compared. No mitigation was "
        "applied."
    )


def _site_confounding(run: RunData) -> str:
    parts = []
    if len(_sites(run)) > 1:
        parts.append(f"{len(_sites(run))} sites: per-site metrics")
        if split_kind(run) == "loso":
            parts.append("leave-one-site-out validation")
        if "classical_combat" in run.models:
            parts.append("ComBat harmonisation of the hand-crafted features inside each fold")
        if run.section("model").get("site_adversary"):
            parts.append("a site-adversarial head")
    return ("; ".join(parts) + ".") if parts else "A single site."


# ---- the checklists -------------------------------------------------------------------------


def _t(item: str, topic: str, text: str, fill: Filler | None = None) -> tuple:
    return (item, topic, text, fill)


TRIPOD_ITEMS: tuple[tuple, ...] = (
    _t(
        "1",
        "Title",
        "Study as developing or evaluating a prediction model; target population; outcome",
        lambda r: _partly(
            f"Run '{r.name}': development with internal validation of a "
            f"{r.task} model of {outcome_text(r)}."
        ),
    ),
    _t("2", "Abstract", "Abstract following TRIPOD+AI for Abstracts"),
    _t("3a", "Background", "Medical context, rationale, existing models"),
    _t("3b", "Background", "Target population, intended purpose and users"),
    _t("3c", "Background", "Known health inequalities between sociodemographic groups"),
    _t(
        "4",
        "Objectives",
        "Objectives, development and/or evaluation",
        lambda r: _partly(
            "Development of a CNN and its internal validation, compared with a "
            "classical radiomics baseline on the same splits."
            if "classical" in r.models
            else "Development of a CNN and its internal validation."
        ),
    ),
    _t(
        "5a",
        "Data",
        "Data sources for development and evaluation, representativeness",
        lambda r: _partly(
            f"One cohort manifest ({_size(r) or 'size not recorded'}), used for "
            "both development and internal evaluation."
        ),
    ),
    _t("5b", "Data", "Dates of data collection, accrual and follow-up"),
    _t(
        "6a",
        "Participants",
        "Setting, number and location of centres",
        lambda r: (
            _partly(f"{len(_sites(r))} site(s): {', '.join(_sites(r))}.") if _sites(r) else None
        ),
    ),
    _t(
        "6b",
        "Participants",
        "Eligibility criteria",
        lambda r: _partly(
            "Every case of the manifest that passed validation and preprocessing was used (see 11)."
        ),
    ),
    _t("6c", "Participants", "Treatments received"),
    _t("7", "Data preparation", "Pre-processing and quality checks, across groups", _preprocessing),
    _t(
        "8a",
        "Outcome",
        "Outcome definition, time horizon, how and when assessed",
        lambda r: _partly(f"Outcome: {outcome_text(r)}."),
    ),
    _t("8b", "Outcome", "Qualifications and demographics of outcome assessors"),
    _t("8c", "Outcome", "Blinding of outcome assessment"),
    _t(
        "9a",
        "Predictors",
        "Choice of initial predictors, pre-selection",
        lambda r: (
            f"Image channels {_modalities(r)}"
            + (f" and covariates {', '.join(_covariates(r))}" if _covariates(r) else "")
            + "; no pre-selection for the CNN; hand-crafted features are selected inside each "
            "training fold."
        ),
    ),
    _t(
        "9b",
        "Predictors",
        "Definition of predictors, how and when measured",
        lambda r: _partly(f"Images: {_modalities(r)}, with the tumour mask from the manifest."),
    ),
    _t(
        "9c",
        "Predictors",
        "Qualifications and demographics of predictor assessors (e.g. segmentation)",
    ),
    _t(
        "10",
        "Sample size",
        "How the study size was arrived at; whether sufficient",
        lambda r: _partly(f"{_size(r)}.") if _size(r) else None,
    ),
    _t("11", "Missing data", "How missing data were handled", _missing),
    _t(
        "12a",
        "Analytical methods",
        "How data were used (partitioning) for development and evaluation",
        lambda r: validation_summary(r, patient_leaks(r.splits) if r.splits is not None else None),
    ),
    _t(
        "12b",
        "Analytical methods",
        "Handling of predictors (scaling, transformation)",
        lambda r: (
            "Images normalised per modality (see 7); covariates standardised inside each "
            "fold from training cases; hand-crafted features median-imputed and scaled inside "
            "each fold."
            if _covariates(r) or "classical" in r.models
            else "Images normalised per modality (see 7)."
        ),
    ),
    _t(
        "12c",
        "Analytical methods",
        "Model type, rationale, model building, hyperparameter tuning, internal validation",
        lambda r: _partly(model_description(r)),
    ),
    _t(
        "12d", "Analytical methods", "Heterogeneity across clusters (e.g. sites)", _site_confounding
    ),
    _t(
        "12e",
        "Analytical methods",
        "Performance measures and plots, model comparison",
        lambda r: (
            f"{', '.join(metric_label(m) for m in _metric_names(r))}, each with a "
            f"{bootstrap_resamples(r)}-resample patient-bootstrap CI; ROC, calibration and other "
            "plots in the report; paired bootstrap differences (and DeLong's test for AUC) between "
            "models."
        ),
    ),
    _t(
        "12f",
        "Analytical methods",
        "Model updating (e.g. recalibration)",
        lambda r: "No model updating or recalibration was done.",
    ),
    _t(
        "12g",
        "Analytical methods",
        "How predictions were calculated for evaluation",
        lambda r: (
            "Out-of-fold predictions of each fold's model (the mean of its ensemble "
            "members); the saved bundle/ and `deepradiomics predict` reproduce them."
        ),
    ),
    _t(
        "13",
        "Class imbalance",
        "Class imbalance methods, why and how, recalibration",
        lambda r: (
            f"Class weights '{r.section('train').get('class_weight', 'balanced')}' in the "
            "loss; predictions were not recalibrated afterwards."
            if r.task in ("binary", "multiclass")
            else "Not applicable to this task."
        ),
    ),
    _t("14", "Fairness", "Approaches to address model fairness", _fairness),
    _t("15", "Model output", "Output of the model; classification thresholds", _threshold),
    _t(
        "16",
        "Training vs evaluation",
        "Differences between development and evaluation data",
        lambda r: (
            "Internal validation: development and evaluation cases come from the same "
            "cohort"
            + (
                ", each site held out in turn (leave-one-site-out)."
                if split_kind(r) == "loso"
                else "."
            )
        ),
    ),
    _t("17", "Ethical approval", "Ethics committee approval, consent"),
    _t("18a", "Open science", "Funding"),
    _t("18b", "Open science", "Conflicts of interest"),
    _t("18c", "Open science", "Protocol"),
    _t("18d", "Open science", "Registration"),
    _t("18e", "Open science", "Data sharing"),
    _t("18f", "Open science", "Code sharing", lambda r: _partly(software_text(r))),
    _t("19", "Patient and public involvement", "Involvement of patients and the public"),
    _t(
        "20a",
        "Participants",
        "Flow of participants, with and without the outcome, follow-up",
        lambda r: (
            _partly(
                f"{_size(r)}; "
                f"{len((r.cohort or {}).get('left_out') or [])} left out in "
                "preprocessing."
            )
            if _size(r)
            else None
        ),
    ),
    _t(
        "20b",
        "Participants",
        "Characteristics overall and per data source",
        lambda r: (
            "Per-site counts, outcome balance and covariate summaries in the report's "
            "'Cohort' section."
            if r.cohort
            else None
        ),
    ),
    _t(
        "20c",
        "Participants",
        "Evaluation vs development data: distributions of predictors and outcome",
        lambda r: (
            "Per fold counts of patients and outcomes in the report's 'Splits' section."
            if r.splits is not None
            else None
        ),
    ),
    _t(
        "21",
        "Model development",
        "Participants and outcome events in each analysis",
        _per_fold_counts,
    ),
    _t(
        "22",
        "Model specification",
        "Full model available for predictions in new individuals",
        lambda r: _partly(
            "Weights, preprocessing plan and config in bundle/ (loaded by "
            "`deepradiomics predict`); access conditions:"
        ),
    ),
    _t("23a", "Model performance", "Performance with CIs, including key subgroups", _performance),
    _t(
        "23b",
        "Model performance",
        "Heterogeneity of performance across clusters",
        lambda r: (
            "Per-site metrics with CIs in the report's 'Per site' section."
            if r.metrics.get("per_site")
            else None
        ),
    ),
    _t(
        "24",
        "Model updating",
        "Results of any model updating",
        lambda r: "No model updating was done.",
    ),
    _t("25", "Interpretation", "Overall interpretation, including fairness"),
    _t(
        "26",
        "Limitations",
        "Limitations: representativeness, sample size, overfitting, missing data",
        lambda r: _partly("Found by the run: " + " ".join(limitations(r, None))),
    ),
    _t(
        "27a",
        "Usability",
        "Handling poor quality or unavailable input data in use",
        lambda r: _partly(
            "`deepradiomics validate` and `predict` check each case's files and "
            "values and name the case and column of every problem."
        ),
    ),
    _t("27b", "Usability", "User interaction and expertise required"),
    _t("27c", "Usability", "Next steps, applicability and generalisability"),
)


def _automatic_masks(run: RunData) -> str | None:
    info = run.metrics.get("masks")
    if not isinstance(info, dict):
        return None
    return (
        f"Partly: {info.get('automatic', 0)} of the masks come from a segmentation bundle "
        f"({info.get('bundle')}); metrics for drawn and automatic masks are reported apart."
    )


def _segmentation_scores(run: RunData) -> str | None:
    test = run.metrics.get("test") or {}
    if run.task != "segmentation" or "dice" not in test:
        return None
    dice, hd = test["dice"], test.get("hd95") or {}
    return (
        f"Out-of-fold Dice {dice.get('value', float('nan')):.3f} "
        f"[{dice.get('ci_low', float('nan')):.3f}, {dice.get('ci_high', float('nan')):.3f}], "
        f"HD95 {hd.get('value', float('nan')):.1f} mm, pooled and per site with "
        "patient-bootstrap CIs (metrics.json)."
    )


def _segmentation(run: RunData) -> bool:
    return bool(run.section("cohort").get("mask")) and bool((run.cohort or {}).get("plan"))


METRICS_ITEMS: tuple[tuple, ...] = (
    _t(
        "1",
        "Study design",
        "Adherence to radiomics / machine-learning checklists",
        lambda r: _partly(f"{TRIPOD} checklist pre-filled by the run (checklist.md)."),
    ),
    _t("2", "Study design", "Eligibility criteria describing a representative population"),
    _t("3", "Study design", "High-quality reference standard, clearly defined"),
    _t(
        "4",
        "Imaging data",
        "Multi-center",
        lambda r: (
            (f"Yes: {len(_sites(r))} sites." if len(_sites(r)) > 1 else "No: one site.")
            if _sites(r)
            else None
        ),
    ),
    _t("5", "Imaging data", "Clinical translatability of the imaging data source"),
    _t("6", "Imaging data", "Imaging protocol with acquisition parameters"),
    _t("7", "Imaging data", "Interval between imaging and reference standard"),
    _t(
        "C1",
        "Segmentation",
        "Condition: does the study include segmentation?",
        lambda r: (
            "Yes: tumour masks from the manifest define the crop and the classical features."
            if _segmentation(r)
            else None
        ),
    ),
    _t(
        "C2",
        "Segmentation",
        "Condition: fully automated segmentation?",
        _automatic_masks,
    ),
    _t("8", "Segmentation", "Transparent description of the segmentation method"),
    _t(
        "9",
        "Segmentation",
        "Formal evaluation of fully automated segmentation",
        _segmentation_scores,
    ),
    _t("10", "Segmentation", "Test-set masks by a single reader or automated tool"),
    _t(
        "C3",
        "Image processing and feature extraction",
        "Condition: hand-crafted features?",
        lambda r: "Yes: the classical baseline." if "classical" in r.models else "No.",
    ),
    _t(
        "11",
        "Image processing and feature extraction",
        "Image preprocessing, transparently described",
        _preprocessing,
    ),
    _t(
        "12",
        "Image processing and feature extraction",
        "Standardised feature extraction software",
        lambda r: (
            "PyRadiomics (IBSI-compliant), version in 18f / 29."
            if "classical" in r.models
            else "Not applicable (no hand-crafted features)."
        ),
    ),
    _t(
        "13",
        "Image processing and feature extraction",
        "Feature extraction parameters reported",
        lambda r: (
            "The deepradiomics defaults of the version in 29 (fixed bin "
            "width per modality; see classical/features.py)."
            if "classical" in r.models
            else "Not applicable."
        ),
    ),
    _t(
        "C4",
        "Feature processing",
        "Condition: tabular data?",
        lambda r: "Yes." if "classical" in r.models or _covariates(r) else "No.",
    ),
    _t("C5", "Feature processing", "Condition: end-to-end deep learning?", lambda r: "Yes."),
    _t(
        "14",
        "Feature processing",
        "Removal of non-robust features",
        lambda r: (
            _partly("Not done by the run (no test-retest or perturbation data).")
            if "classical" in r.models
            else "Not applicable."
        ),
    ),
    _t(
        "15",
        "Feature processing",
        "Removal of redundant features",
        lambda r: (
            "Yes: constant features and features with |r| > 0.9 to a kept one are "
            "dropped inside each training fold."
            if "classical" in r.models
            else "Not applicable."
        ),
    ),
    _t(
        "16",
        "Feature processing",
        "Dimensionality appropriate for the data size",
        lambda r: (
            _partly(f"Univariate or L1 selection inside each fold; {_size(r)}.")
            if "classical" in r.models and _size(r)
            else None
        ),
    ),
    _t(
        "17",
        "Feature processing",
        "Robustness of the end-to-end deep-learning pipeline",
        lambda r: _partly(
            f"Augmentation during training, {ensemble_members(r)} ensemble "
            "member(s) with their spread reported per case."
        ),
    ),
    _t(
        "18",
        "Preparation for modeling",
        "Proper data partitioning",
        lambda r: validation_summary(r, patient_leaks(r.splits) if r.splits is not None else None),
    ),
    _t("19", "Preparation for modeling", "Handling of confounding factors", _site_confounding),
    _t(
        "20",
        "Metrics and comparison",
        "Performance metrics appropriate for the task",
        lambda r: ", ".join(metric_label(m) for m in _metric_names(r)) + ".",
    ),
    _t(
        "21",
        "Metrics and comparison",
        "Consideration of uncertainty",
        lambda r: (
            f"{bootstrap_resamples(r)}-resample patient-bootstrap CIs for every metric."
            if bootstrap_resamples(r)
            else "No confidence intervals were computed."
        ),
    ),
    _t(
        "22",
        "Metrics and comparison",
        "Calibration assessment",
        lambda r: (
            "Calibration slope and intercept with CIs and a reliability diagram."
            if r.task == "binary"
            else "Integrated Brier score."
            if r.task == "survival"
            else None
        ),
    ),
    _t(
        "23",
        "Metrics and comparison",
        "Uni-parametric imaging, or proof of its inferiority",
        lambda r: _partly(f"Input: {_modalities(r)}."),
    ),
    _t(
        "24",
        "Metrics and comparison",
        "Comparison with a non-radiomic approach / added clinical value",
        lambda r: (
            "A covariates-only clinical model on the same splits."
            if "clinical" in r.models
            else None
        ),
    ),
    _t(
        "25",
        "Metrics and comparison",
        "Comparison with simple or classical statistical models",
        lambda r: (
            "Classical radiomics baseline on the same splits, compared on the same cases."
            if "classical" in r.models
            else None
        ),
    ),
    _t("26", "Testing", "Internal testing", design_sentence),
    _t(
        "27",
        "Testing",
        "External testing",
        lambda r: (
            "Leave-one-site-out: each site tested by a model that never saw it (no "
            "independent external cohort)."
            if split_kind(r) == "loso"
            else "No external testing in this run."
        ),
    ),
    _t("28", "Open science", "Data availability"),
    _t("29", "Open science", "Code availability", lambda r: _partly(software_text(r))),
    _t(
        "30",
        "Open science",
        "Model availability",
        lambda r: _partly("The trained model is saved in bundle/ with its preprocessing plan."),
    ),
)


def _fill(items: tuple[tuple, ...], run: RunData) -> list[Answer]:
    out = []
    for item, topic, text, fill in items:
        answer = fill(run) if fill is not None else None
        out.append(Answer(item, topic, text, answer or AUTHORS))
    return out


def checklists(run: RunData) -> dict[str, list[Answer]]:
    """``{checklist name: answers}``, TRIPOD+AI then METRICS."""
    return {TRIPOD: _fill(TRIPOD_ITEMS, run), METRICS_TOOL: _fill(METRICS_ITEMS, run)}
