"""The report's sentences: how the run was validated, and its limitations.

Plain text generated from the run's files only; the HTML report escapes it and the model
card writes it as Markdown.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepradiomics.report.fairness import fairness_audits, fairness_findings
from deepradiomics.report.formatting import (
    fmt_estimate,
    fmt_number,
    fmt_percent,
    metric_direction,
    metric_label,
    model_label,
    phenotype_label,
)
from deepradiomics.report.run_files import RunData, finite
from deepradiomics.report.splits import LeakCheck
from deepradiomics.report.tables import learning_curve_summary
from deepradiomics.tasks import get_task

SMALL_SITE_CASES = 30
SMALL_SITE_OUTCOMES = 10
WIDE_CI = 0.2  # CI width of a [0, 1] metric above which the estimate is called imprecise
SITE_SPREAD = 0.1  # per-site range of a [0, 1] metric above which it is called large
_BOUNDED = {
    "auc",
    "macro_auc",
    "c_index",
    "c_index_uno",
    "td_auc",
    "accuracy",
    "balanced_accuracy",
    "sensitivity",
    "specificity",
    "dice",
}


def split_kind(run: RunData) -> str:
    return str(run.metrics.get("split") or run.section("evaluate").get("split") or "kfold")


def n_folds(run: RunData) -> int | None:
    if run.splits is not None:
        return int(run.splits["fold"].nunique())
    folds = run.section("evaluate").get("folds")
    return int(folds) if folds is not None else None


def ensemble_members(run: RunData) -> int:
    ens = run.metrics.get("ensemble") or {}
    members = ens.get("members") if isinstance(ens, dict) else None
    return int(members or run.section("evaluate").get("ensemble_members") or 1)


def bootstrap_resamples(run: RunData) -> int:
    """Resamples behind the CIs: ``n_boot`` of the pooled entries, else the config's."""
    for entry in (run.metrics.get("test") or {}).values():
        if isinstance(entry, dict) and entry.get("n_boot"):
            return int(entry["n_boot"])
    return int(run.section("evaluate").get("bootstrap") or 0)


def ci_level(run: RunData) -> float:
    return float(run.section("evaluate").get("ci_level") or 0.95)


def patient_share(run: RunData, role: str, of: tuple[str, ...]) -> float | None:
    """Mean over folds of the share of patients in ``role`` among those in the roles ``of``
    (from splits.csv); None without splits or without such patients."""
    if run.splits is None:
        return None
    shares = []
    for _, part in run.splits.groupby("fold"):
        pool = part.loc[part["role"].isin(of), "patient_id"].nunique()
        if pool:
            shares.append(part.loc[part["role"] == role, "patient_id"].nunique() / pool)
    return sum(shares) / len(shares) if shares else None


def design_sentence(run: RunData) -> str:
    kind, k = split_kind(run), n_folds(run)
    n_test = None
    if run.splits is not None:
        n_test = int(run.splits.loc[run.splits["role"] == "test", "case_id"].nunique())
    if kind == "kfold":
        return (
            f"Performance was estimated by {k}-fold cross-validation, stratified on the outcome: "
            "every case was tested exactly once, by the model of the fold that did not train on "
            "it, and the metrics are computed on the pooled out-of-fold predictions."
        )
    if kind == "loso":
        return (
            f"Performance was estimated by leave-one-site-out validation over {k} sites: each "
            "site in turn was the test set of a model trained on the other sites, so every "
            "prediction is for a site the model never saw; the metrics pool these out-of-site "
            "predictions."
        )
    cases = f"{n_test} cases" if n_test is not None else "cases"
    if kind == "holdout":
        share = patient_share(run, "test", ("train", "val", "test"))
        frac = fmt_percent(
            share if share is not None else run.section("evaluate").get("test_fraction")
        )
        return (
            f"Performance was estimated on one held-out test set of {cases} ({frac} of the "
            "patients, stratified on the outcome), used neither for training nor for model "
            "selection."
        )
    return (
        f"Performance was estimated on the dataset's official test split ({cases}), used "
        "neither for training nor for model selection."
    )


def _grouping_sentence(run: RunData, leaks: LeakCheck | None) -> str:
    if run.splits is None:
        return "The split assignment (splits.csv) is not in the run folder, so it was not checked."
    cases = run.splits["case_id"].nunique()
    patients = run.splits["patient_id"].nunique()
    text = (
        f"Splits are grouped by patient ({cases} cases from {patients} patients): all cases of "
        "a patient share one role in each fold"
    )
    if leaks is not None and not leaks.ok:
        return text + (
            ", but the check of splits.csv found patients with cases in both training and test "
            "(see the split section): the test estimates are not trustworthy."
        )
    return text + " (checked on splits.csv: no patient is in both training and test)."


def early_stopping_cases(run: RunData) -> str:
    """What the CNN stopped on: ``metrics.json["early_stopping"]`` as the run recorded it
    ("validation" or "out_of_bag"); runs that predate the key: out-of-bag with more than one
    ensemble member (bootstrap members), else the inner validation split."""
    recorded = run.metrics.get("early_stopping")
    if recorded in ("validation", "out_of_bag"):
        return str(recorded)
    return "out_of_bag" if ensemble_members(run) > 1 else "validation"


def _threshold_clause(run: RunData, cases: str) -> str:
    threshold = finite(run.metrics.get("threshold"))
    if run.task != "binary" or threshold is None:
        return ""
    if run.metrics.get("threshold_selection") == "per_fold":
        return (
            f"; the decision threshold was chosen in each fold on that fold's own {cases} "
            "predictions and applied to that fold's test cases only"
        )
    scope = " of all folds, which include other folds' test cases" if n_folds(run) != 1 else ""
    return f"; the decision threshold ({threshold:.3g}) was chosen on the pooled {cases} predictions{scope}"


def _inner_validation_sentence(run: RunData) -> str:
    train = run.section("train")
    patience = train.get("patience")
    stopping = "early stopping" + (f" (patience {patience} epochs)" if patience is not None else "")
    if train.get("monitor") == "last":  # a fixed schedule: nothing is chosen on those cases
        every = int(train.get("validate_every") or 1)
        checked = f", validated every {every} epochs" if every > 1 else ""
        stopping = (
            f"monitoring only (a fixed schedule: all {train.get('epochs')} epochs ran and "
            f"the last was kept{checked})"
        )
    if early_stopping_cases(run) == "out_of_bag":
        m = ensemble_members(run)
        return (
            f"Each of the {m} ensemble members of a fold was trained on a bootstrap resample of "
            "the patients of the fold's training part (its training and validation roles "
            f"together) and used its out-of-bag patients, those its resample left out, for "
            f"{stopping}{_threshold_clause(run, 'out-of-bag')}; no test case was used for "
            "early stopping."
        )
    if run.splits is not None and not (run.splits["role"] == "val").any():
        return "No inner validation set was used (no early stopping on held-out patients)."
    share = patient_share(run, "val", ("train", "val"))
    frac = fmt_percent(share if share is not None else run.section("train").get("val_fraction"))
    return (
        f"An inner validation set ({frac} of each training part's patients, grouped and "
        f"stratified) was used for {stopping}{_threshold_clause(run, 'validation')}; no test "
        "case was used for early stopping."
    )


def ci_sentence(run: RunData) -> str:
    b = bootstrap_resamples(run)
    if b <= 0:
        return "No confidence intervals were computed (evaluate.bootstrap is 0)."
    return (
        f"{fmt_percent(ci_level(run))} confidence intervals come from {b} bootstrap resamples "
        "of patients (a resampled patient brings all of its cases)."
    )


def _ensemble_sentence(run: RunData) -> str:
    m = ensemble_members(run)
    if m <= 1:
        return "Each fold used a single CNN (no ensemble)."
    return (
        f"Each prediction averages an ensemble of {m} CNN members; the spread between members "
        "(cnn_std) is reported as the uncertainty of a prediction."
    )


def _baseline_sentence(run: RunData) -> str:
    models = run.models
    if "classical" not in models and "classical_combat" not in models:
        return ""
    which = "The classical radiomics baseline"
    if "classical_combat" in models:
        which += " (with and without ComBat harmonisation of the features across sites)"
    return f"{which} was evaluated on the same splits and compared with the CNN on the same cases."


def _sites_phrase(fit: dict[str, Any]) -> str:
    sites = fit.get("sites") or {}
    return f" from {len(sites)} sites" if len(sites) > 1 else ""


def plan_sentence(run: RunData) -> str:
    """What the preprocessing plan saw: ``metrics.json["plan"]`` (``cohort.json["plan_fit"]``
    in runs of ``train``); empty for runs that predate the record."""
    record = run.metrics.get("plan") or (run.cohort or {}).get("plan_fit")
    if not isinstance(record, dict):
        return ""
    fitted = [str(p) for p in record.get("fitted") or []]
    if not fitted:
        return (
            "Every preprocessing value (spacing, crop, intensity windows) was configured, so "
            "no case's data shaped the preprocessing."
        )
    what = ", ".join(p.replace("window ", "the intensity window of ") for p in fitted)
    folds = [f for f in (record.get("folds") or {}).values() if isinstance(f, dict)]
    if record.get("fit_on") == "training part of each fold" and folds:
        n = sorted(int(f.get("cases", 0)) for f in folds)
        count = f"{n[0]}" if n[0] == n[-1] else f"{n[0]} to {n[-1]}"
        unseen = (
            "the left-out site and its test cases"
            if split_kind(run) == "loso"
            else "a fold's test cases"
        )
        distinct = int(record.get("distinct_plans") or len(folds))
        return (
            f"The preprocessing plan ({what}) was computed in each fold from that fold's "
            f"training part only ({count} cases per fold{_sites_phrase(folds[0])}); "
            f"{unseen} never shaped the plan that prepared them ({distinct} distinct "
            f"plan{'s' if distinct != 1 else ''} over {len(folds)} folds)."
        )
    fit = folds[0] if folds else record
    if str(fit.get("scope", "")).startswith("training part"):
        return (
            f"The preprocessing plan ({what}) was computed from the training part only "
            f"({fit.get('cases')} cases{_sites_phrase(fit)}); the test cases never shaped it."
        )
    return (
        f"The preprocessing plan ({what}) was computed from every case "
        f"({fit.get('cases')}), including the test cases."
    )


def validation_summary(run: RunData, leaks: LeakCheck | None) -> str:
    """One paragraph: split design, patient grouping, inner validation, preprocessing plan,
    CIs, ensemble."""
    parts = [
        design_sentence(run),
        _grouping_sentence(run, leaks),
        _inner_validation_sentence(run),
        plan_sentence(run),
        ci_sentence(run),
        _ensemble_sentence(run),
        _baseline_sentence(run),
    ]
    return " ".join(p for p in parts if p)


def audit_warnings(metrics: dict[str, Any]) -> list[str]:
    """Every text under a ``warning``/``warnings`` key of ``metrics["audit"]``, in order."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("warning", "warnings"):
                    found.extend(
                        [value]
                        if isinstance(value, str)
                        else [str(v) for v in value]
                        if isinstance(value, list)
                        else []
                    )
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(metrics.get("audit"))
    return list(dict.fromkeys(w for w in found if w))


def _site_outcomes(run: RunData, info: dict[str, Any]) -> int | None:
    n = info.get("n_cases")
    if run.task == "binary" and info.get("positives") is not None and n is not None:
        return int(min(info["positives"], n - info["positives"]))
    if run.task == "survival" and info.get("events") is not None:
        return int(info["events"])
    return None


def _site_spread(run: RunData, metric: str) -> str | None:
    per_site = run.models.get("cnn", {}).get("per_site") or {}
    values = {
        str(site): finite((panel.get(metric) or {}).get("value"))
        for site, panel in per_site.items()
        if isinstance(panel, dict)
    }
    values = {s: v for s, v in values.items() if v is not None}
    if len(values) < 2:
        return None
    lo, hi = min(values, key=values.get), max(values, key=values.get)
    spread = values[hi] - values[lo]
    large = metric in _BOUNDED and spread > SITE_SPREAD
    return (
        f"{'Large' if large else 'The'} per-site spread of the CNN's {metric_label(metric)}: from "
        f"{fmt_number(values[lo])} ({lo}) to {fmt_number(values[hi])} ({hi})"
        + ("; performance depends on the site." if large else ".")
    )


def _comparison_findings(run: RunData, metric: str) -> list[str]:
    out = []
    for c in run.metrics.get("comparisons") or []:
        if c.get("metric") != metric or str(c.get("scope", "pooled")) != "pooled":
            continue
        low, high = finite(c.get("ci_low")), finite(c.get("ci_high"))
        if low is None or high is None or low <= 0 <= high:
            continue
        direction = metric_direction(metric)
        if not direction:
            continue
        a_better = (low > 0) == (direction == "higher")
        winner, loser = (c["a"], c["b"]) if a_better else (c["b"], c["a"])
        out.append(
            f"{model_label(str(winner))} outperforms {model_label(str(loser))} on "
            f"{metric_label(metric)} (difference {model_label(str(c['a']))} − "
            f"{model_label(str(c['b']))}: "
            f"{fmt_estimate({'value': c.get('difference'), 'ci_low': low, 'ci_high': high})})."
        )
    return out


def limitations(run: RunData, leaks: LeakCheck | None) -> list[str]:
    """Plain-text limitations drawn from the run's numbers (see the thresholds above)."""
    items = []
    if leaks is not None and not leaks.ok:
        items.append(
            "The patient-leak check failed: "
            + "; ".join(c.describe() for c in leaks.test_leaks)
            + ". Test metrics are optimistic."
        )
    metric = get_task(run.task).primary_metric
    entry = (run.metrics.get("test") or {}).get(metric) or {}
    low, high = finite(entry.get("ci_low")), finite(entry.get("ci_high"))
    if metric in _BOUNDED and low is not None and high is not None and high - low > WIDE_CI:
        items.append(
            f"The {fmt_percent(ci_level(run))} CI of the pooled {metric_label(metric)} is wide "
            f"({fmt_number(low)} to {fmt_number(high)}): the cohort is too small for a precise "
            "estimate."
        )
    spread = _site_spread(run, metric)
    if spread:
        items.append(spread)
    sites = (run.cohort or {}).get("sites") or {}
    small = []
    for site, info in sites.items():
        outcomes = _site_outcomes(run, info) if isinstance(info, dict) else None
        n = info.get("n_cases") if isinstance(info, dict) else None
        if (n is not None and n < SMALL_SITE_CASES) or (
            outcomes is not None and outcomes < SMALL_SITE_OUTCOMES
        ):
            small.append(str(site))
    if small:
        items.append(
            f"Small site(s) {', '.join(small)} (under {SMALL_SITE_CASES} cases or under "
            f"{SMALL_SITE_OUTCOMES} cases of the rarer outcome): their per-site estimates are "
            "imprecise."
        )
    kind = split_kind(run)
    if len(sites) == 1:
        items.append("All cases come from one site: performance at other sites is unknown.")
    elif len(sites) > 1 and kind != "loso":
        items.append(
            f"Sites were mixed inside the splits ({kind}): the estimate is for new patients from "
            "the same sites, not for a new site (evaluate.split: loso tests that)."
        )
    slope = (run.metrics.get("test") or {}).get("calibration_slope") or {}
    s_low, s_high = finite(slope.get("ci_low")), finite(slope.get("ci_high"))
    if s_low is not None and s_high is not None and not s_low <= 1 <= s_high:
        how = "too extreme (overconfident)" if s_high < 1 else "too cautious"
        items.append(
            f"Miscalibrated probabilities: calibration slope {fmt_estimate(slope)} excludes 1; "
            f"predicted risks are {how}."
        )
    ece = (run.metrics.get("test") or {}).get("ece") or {}
    e_val, e_low, e_high = (finite(ece.get(k)) for k in ("value", "ci_low", "ci_high"))
    if None not in (e_val, e_low, e_high) and not e_low <= e_val <= e_high:
        items.append(
            f"The expected calibration error's interval ({fmt_number(e_low)} to "
            f"{fmt_number(e_high)}) leaves out its point estimate {fmt_number(e_val)}: binned "
            "ECE is biased upward in resamples with repeated patients; read it as a rough guide."
        )
    items.extend(_comparison_findings(run, metric))
    items.extend(fairness_findings(fairness_audits(run)))
    items.extend(f"Confounding audit: {w}" for w in audit_warnings(run.metrics))
    items.append(
        "Research use only: not a medical device and not validated for clinical decisions."
    )
    return items


def probe_verdict(probe: Any) -> str:
    """Where the phenotype probe's CNN embeddings and hand-crafted features clearly differ
    (their CIs do not overlap), in one sentence; empty when nowhere or one is missing."""
    reps = (probe or {}).get("representations") if isinstance(probe, dict) else None
    if not isinstance(reps, dict):
        return ""
    cnn, classical = ((reps.get(k) or {}).get("r") or {} for k in ("cnn", "classical"))
    ahead, behind = [], []
    for name in probe.get("components") or {}:
        a, b = cnn.get(name) or {}, classical.get(name) or {}
        lo_a, hi_a, lo_b, hi_b = (finite(e.get(k)) for e in (a, b) for k in ("ci_low", "ci_high"))
        if None in (lo_a, hi_a, lo_b, hi_b):
            continue
        text = f"{phenotype_label(name)} ({fmt_number(a['value'])} vs {fmt_number(b['value'])})"
        if lo_a > hi_b:
            ahead.append(text)
        elif lo_b > hi_a:
            behind.append(text)
    parts = ([f"more of {_in_words(ahead)}"] if ahead else []) + (
        [f"less of {_in_words(behind)}"] if behind else []
    )
    if not parts:
        return ""
    return (
        f"The CNN's embeddings carry {' and '.join(parts)} than the hand-crafted features "
        "(CNN vs features; the intervals do not overlap)."
    )


def learning_curve_verdict(records: list[dict[str, Any]]) -> str:
    """Whether the two models' learning curves cross (which leads at the small and at the
    large training sizes, by the metric's direction), in one sentence with the differences of
    their mean test scores; empty without two models at two or more sizes."""
    curve = learning_curve_summary(records)
    if len(curve.models) != 2:
        return ""
    a, b = curve.models
    gap = (curve.mean[a] - curve.mean[b]).dropna()
    if len(gap) < 2:
        return ""
    first, second = model_label(a), model_label(b)

    def size(fraction: float) -> str:
        n = curve.n_train[fraction]
        return fmt_percent(float(fraction)) if np.isnan(n) else f"{int(n)} training cases"

    lo, hi = gap.index[0], gap.index[-1]
    ends = f"{first} - {second} {gap[lo]:+.3f} at {size(lo)}, {gap[hi]:+.3f} at {size(hi)}"
    repeats = max(int(r.get("repeat", 0)) for r in records) + 1
    ends += f"; one outer fold, {repeats} repeat(s) per size: small differences are noise"
    lower_better = metric_direction(str(records[0].get("metric", ""))) == "lower"
    sign = np.sign(gap.to_numpy()) * (-1 if lower_better else 1)  # +1: the first model leads
    signs = sign[sign != 0]
    if not len(signs):
        return f"The curves are level at every size ({ends})."
    changes = int((signs[1:] != signs[:-1]).sum())
    if changes == 0:
        leader = first if signs[0] > 0 else second
        return f"No crossover: {leader} is ahead at every size ({ends})."
    if changes == 1:
        small, large = (second, first) if signs[0] < 0 else (first, second)
        last_small = gap.index[np.flatnonzero(sign == signs[0])[-1]]
        first_large = gap.index[np.flatnonzero(sign == -signs[0])[0]]
        return (
            f"Crossover: {small} is ahead up to {size(last_small)}, {large} from "
            f"{size(first_large)} ({ends})."
        )
    return f"The curves cross more than once ({ends})."


def _in_words(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"
