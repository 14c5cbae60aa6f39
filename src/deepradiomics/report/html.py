"""``write_report(run_dir)``: the run's self-contained ``report.html``.

Made only from the run folder's files (``run_files``). One page, inline CSS, figures as
inline SVG: it opens offline and holds no URL. Every user-provided string is escaped, and
only aggregates are shown (no per-case rows). A section whose data is absent is left out.
Section ids are stable: config, cohort, splits, metrics, per-site, comparison, per-fold,
fairness, roc, calibration, km, truth, learning-curve, ensemble, uncertainty, limitations,
checklist.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import Any

import numpy as np

import deepradiomics
from deepradiomics.report import checklist, confounding, fairness, figures, tables
from deepradiomics.report import explain as ex
from deepradiomics.report.formatting import (
    DASH,
    fmt_estimate,
    fmt_number,
    fmt_p,
    fmt_percent,
    metric_label,
    model_label,
)
from deepradiomics.report.narrative import (
    ci_level,
    ensemble_members,
    learning_curve_verdict,
    limitations,
    probe_verdict,
    split_kind,
    validation_summary,
)
from deepradiomics.report.risk_groups import RiskGroups, risk_groups
from deepradiomics.report.run_files import RunData, finite, load_run
from deepradiomics.report.splits import LeakCheck, fold_summary, patient_leaks

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
 color:#1b1f24;max-width:1100px;margin:0 auto;padding:1.5rem 1.5rem 4rem;line-height:1.45}
h1{margin:0 0 .2rem;font-size:1.7rem}h2{margin-top:2.2rem;border-bottom:1px solid #d0d7de;
 padding-bottom:.2rem;font-size:1.3rem}h3{font-size:1.05rem;margin:1.2rem 0 .4rem}
.meta{color:#57606a;margin:0 0 1rem}nav{font-size:.9rem;margin:1rem 0}nav a{margin-right:.8rem}
.summary{background:#f6f8fa;border-left:4px solid #0969da;padding:.7rem 1rem}
.banner{padding:.6rem 1rem;border-radius:6px;margin:.8rem 0;font-weight:600}
.banner.ok{background:#dafbe1;color:#116329;border:1px solid #4ac26b}
.banner.error{background:#ffebe9;color:#82071e;border:1px solid #ff8182}
.banner.warning{background:#fff8c5;color:#7d4e00;border:1px solid #d4a72c}
.table-wrap{overflow-x:auto}table{border-collapse:collapse;margin:.5rem 0;font-size:.88rem}
th,td{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left;vertical-align:top}
thead th{background:#f6f8fa}tbody th{font-weight:500;background:#fbfcfd}
table.metrics td{font-variant-numeric:tabular-nums;white-space:nowrap}
figure{margin:1rem 0}figure svg{max-width:100%;height:auto}
figcaption{color:#424a53;font-size:.88rem;max-width:760px}
details{margin:.6rem 0}summary{cursor:pointer;font-weight:600}
pre{background:#f6f8fa;padding:.8rem;overflow-x:auto;font-size:.8rem}
.note{color:#57606a;font-size:.88rem}
"""

PRIMARY_METRIC = {"binary": "auc", "survival": "c_index"}
TRUTH_COMPONENTS = ("visible", "spatial", "clinical", "site")

CAPTION_LEARNING_CURVE = (
    "Test score against the share of the training data used (error bars: standard deviation "
    "over repeats; dashed: the training score). How to read it: a test line still rising at "
    "100 % means more data would help (the model is variance-limited, often with a large gap "
    "to the training line); a test line that is flat and low means more data will not help "
    "(bias-limited): the model, the inputs or the features must change. The table gives the "
    "mean test score (SD over repeats) at each size and the difference between the models."
)


def esc(value: Any) -> str:
    return html.escape(str(value))


class Raw(str):
    """A table cell that is already HTML (built from escaped parts)."""


def html_table(grid: tables.Grid, cls: str = "") -> str:
    """A ``<table>``; every cell is escaped unless it is ``Raw``."""

    def cell(value: Any) -> str:
        return value if isinstance(value, Raw) else esc(value)

    head = "".join(f"<th>{cell(h)}</th>" for h in grid.header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<th scope="row">{cell(v)}</th>' if i == 0 else f"<td>{cell(v)}</td>"
            for i, v in enumerate(row)
        )
        + "</tr>"
        for row in grid.rows
    )
    attr = f' class="{esc(cls)}"' if cls else ""
    return (
        f'<div class="table-wrap"><table{attr}><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}">\n<h2>{esc(title)}</h2>\n{body}\n</section>'


def figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{esc(caption)}</figcaption></figure>"


def banner(kind: str, text: str) -> str:
    return f'<div class="banner {kind}">{esc(text)}</div>'


def _truth(run: RunData, model: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Binary truth and ``model``'s probabilities, rows with missing values left out."""
    col = run.score_column(model)
    if run.predictions is None or col is None:
        return None
    y = run.predictions["y_true"].to_numpy(dtype=float)
    p = run.predictions[col].to_numpy(dtype=float)
    keep = np.isfinite(y) & np.isfinite(p)
    y, p = y[keep].astype(int), p[keep]
    return (y, p) if len(np.unique(y)) == 2 else None


# ---- sections -------------------------------------------------------------------------------


def config_section(run: RunData) -> str:
    body = html_table(tables.config_grid(run), cls="kv")
    body += (
        "<details><summary>Full resolved configuration (config.yaml)</summary>"
        f"<pre>{esc(run.config_text)}</pre></details>"
    )
    return section("config", "Configuration", body)


def cohort_section(run: RunData) -> str:
    cohort = run.cohort
    if not cohort:
        return ""
    mods = cohort.get("modalities") or []
    body = (
        f"<p>{esc(cohort.get('n_cases', DASH))} cases from {esc(cohort.get('n_patients', DASH))} "
        f"patients; modalities: {esc(', '.join(map(str, mods)) or DASH)}; outcome: "
        f"{esc(checklist.outcome_text(run))}.</p>"
    )
    body += "<h3>Per site</h3>" + html_table(tables.site_grid(cohort, run.task))
    covariates = tables.covariate_grid(cohort)
    if covariates:
        body += "<h3>Covariates</h3>" + html_table(covariates)
    if isinstance(cohort.get("plan"), dict):
        body += "<h3>Preprocessing plan</h3>"
        body += html_table(tables.plan_grid(cohort["plan"]), cls="kv")
    return section("cohort", "Cohort", body)


def leak_banner(leaks: LeakCheck) -> str:
    if not leaks.ok:
        text = "Patient leak: " + "; ".join(c.describe() for c in leaks.test_leaks) + "."
        return banner("error", text + " Test metrics are optimistic: fix the split and rerun.")
    out = banner(
        "ok",
        "✔ No patient has cases in both training and test in any fold (checked on splits.csv).",
    )
    if leaks.val_leaks:
        out += banner(
            "warning",
            "Patients split between training and validation: "
            + "; ".join(c.describe() for c in leaks.val_leaks)
            + ".",
        )
    return out


def splits_section(run: RunData, leaks: LeakCheck | None) -> str:
    if run.splits is None or leaks is None:
        return ""
    summary = fold_summary(run.splits, run.task, run.predictions, split_kind(run) == "loso")
    body = leak_banner(leaks) + html_table(tables.split_grid(summary))
    body += (
        '<p class="note">Counts per fold and role; "val" is the inner validation part of the '
        "training data (early stopping), never the test cases. A dash means the outcome of "
        "those cases is not in predictions.csv.</p>"
    )
    return section("splits", "Splits", body)


def metrics_section(run: RunData) -> str:
    models = run.models
    if not models:
        return ""
    level = fmt_percent(ci_level(run))
    body = f'<p class="note">Value [{esc(level)} CI] on the pooled test predictions.'
    if finite(run.metrics.get("threshold")) is not None:
        body += f" Threshold metrics use the decision threshold: {esc(tables.threshold_text(run.metrics))}."
    body += "</p>" + html_table(tables.models_grid(models), cls="metrics")
    return section("metrics", "Metrics", body)


def per_site_section(run: RunData) -> str:
    models = run.models
    if not models:
        return ""
    body = ""
    for model, entry in models.items():
        body += f"<h3>{esc(model_label(model))}</h3>" + html_table(
            tables.per_site_grid(entry), cls="metrics"
        )
    if not any(entry.get("per_site") for entry in models.values()):
        body += '<p class="note">metrics.json holds no per-site metrics.</p>'
    return section("per-site", "Per site, next to pooled", body)


def comparison_section(run: RunData) -> str:
    comparisons = [c for c in run.metrics.get("comparisons") or [] if isinstance(c, dict)]
    if not comparisons:
        return ""
    body = (
        '<p class="note">Paired comparisons on the same cases: difference a − b with its '
        "paired patient-bootstrap CI; p from DeLong's test for AUC.</p>"
    )
    return section(
        "comparison", "Model comparison", body + html_table(tables.comparison_grid(comparisons))
    )


def per_fold_section(run: RunData) -> str:
    per_fold = [f for f in run.metrics.get("per_fold") or [] if isinstance(f, dict)]
    if not per_fold:
        return ""
    return section("per-fold", "Per fold (CNN)", html_table(tables.per_fold_grid(per_fold)))


def fairness_section(run: RunData) -> str:
    audits = fairness.fairness_audits(run)
    if not audits:
        return ""
    level = fmt_percent(ci_level(run))
    first = next(iter(audits.values()))
    body = (
        f'<p class="note">The CNN\'s pooled out-of-fold predictions per subgroup, value '
        f"[{esc(level)} CI] from a patient bootstrap stratified by group. Groups with at least "
        f"{esc(first.get('min_patients', DASH))} patients and {esc(first.get('min_events', DASH))} "
        "events (binary: cases of the rarer outcome) are compared; smaller ones are listed only. "
        "Gaps: difference = largest − smallest group value, ratio = smallest / largest "
        "(fairlearn's between-group definitions), and each group minus the largest group, "
        "whose interval can include 0.</p>"
    )
    body += figure(fairness.forest_figure(audits), fairness.fairness_caption(audits, level))
    for column, audit in audits.items():
        body += f"<h3>By {esc(column)}</h3>" + html_table(fairness.by_group_grid(audit), "metrics")
        if audit.get("difference"):
            body += html_table(fairness.gaps_grid(audit), "metrics")
        else:
            body += '<p class="note">Fewer than two groups large enough to compare.</p>'
    return section("fairness", "Fairness across subgroups", body)


def roc_section(run: RunData) -> str:
    if run.task != "binary":
        return ""
    curves = {}
    for model in run.scored_models():
        data = _truth(run, model)
        if data is None:
            continue
        auc = (run.models.get(model, {}).get("test") or {}).get("auc")
        if auc is None:
            from sklearn.metrics import roc_auc_score

            auc = roc_auc_score(*data)
        curves[model] = (*data, f"{model_label(model)}: AUC {fmt_estimate(auc)}")
    if not curves:
        return ""
    caption = "ROC curves of the pooled out-of-fold (test) predictions, one per model."
    return section("roc", "ROC curves", figure(figures.roc_figure(curves), caption))


def calibration_section(run: RunData) -> str:
    if run.task != "binary":
        return ""
    curves = {m: d for m in run.scored_models() if (d := _truth(run, m)) is not None}
    if not curves:
        return ""
    caption = (
        "Reliability diagram: observed fraction of positives in ten equal-width bins of "
        "predicted probability (empty bins skipped). Points under the diagonal: predicted "
        "risks too high; over it: too low. Below: how the predictions are distributed."
    )
    return section(
        "calibration", "Calibration", figure(figures.calibration_figure(curves), caption)
    )


def km_groups(run: RunData) -> dict[str, RiskGroups]:
    """Median-split risk groups of each scored survival model."""
    if run.task != "survival" or run.predictions is None:
        return {}
    pred = run.predictions
    out = {}
    for model in run.scored_models():
        groups = risk_groups(pred["time"], pred["event"], pred[run.score_column(model)])
        if len(groups.curves) == 2:
            out[model] = groups
    return out


def km_section(run: RunData) -> str:
    groups = km_groups(run)
    if not groups:
        return ""
    p_texts = {m: fmt_p(g.p_value) for m, g in groups.items()}
    rows = []
    for model, g in groups.items():
        low, high = g.curves
        rows.append(
            (
                model_label(model),
                fmt_number(g.threshold),
                f"{low.n} / {low.events}",
                f"{high.n} / {high.events}",
                fmt_number(g.chisq, 2),
                Raw(
                    f'<span class="p-value" data-model="{esc(model)}">{esc(p_texts[model])}</span>'
                ),
            )
        )
    header = ["model", "median risk", "low risk: cases / events", "high risk: cases / events"]
    table = html_table(tables.Grid([*header, "log-rank χ²", "log-rank p"], rows))
    caption = (
        "Kaplan-Meier curves (shaded: 95 % log-log CI) of the cases whose out-of-fold predicted "
        "risk is above (high) or at most (low) the median of the out-of-fold risks; p from the "
        "log-rank test between the two groups."
    )
    body = figure(figures.km_figure(groups, p_texts), caption) + table
    return section("km", "Kaplan-Meier curves of predicted risk groups", body)


TRUTH_NOTE = (
    "The cohort is synthetic and its generator's true risk is known (cohort.ground_truth). "
    "The oracle scores the same cases with the true risk: the ceiling no model can beat on "
    "average, since the outcome is drawn from that risk. The true log-odds is a sum of "
    "parts: visible (size, irregularity, heterogeneity, necrosis: what shape, first-order and "
    "texture features see), spatial (where the necrotic core sits and whether the texture is "
    "oriented: only the arrangement of the voxels carries it), clinical (age, sex) and site "
    "(the site's outcome shift). The bars are each model's Spearman correlation of its "
    "out-of-fold score with each part (error bars: patient-bootstrap CI): a model learned a "
    "part when its correlation is clearly above 0; a correlation with site means the model "
    "also learned which scanner a case comes from."
)
TRUTH_EVIDENCE = (
    "What a synthetic cohort is evidence for: that the pipeline runs end to end, that its "
    "validation is honest (the oracle bounds every model on the same cases), and which "
    "planted parts of the risk each model recovers from images of realistic resolution, "
    "slice thickness, kernel and noise. What it is not evidence for: performance on real "
    "patients. The phenotypes, their effect sizes and the site effects are the simulator's "
    "choices; a model that finds the spatial part here shows that it can learn such "
    "arrangements of voxels from outcome labels at this cohort size, not that real "
    "outcomes depend on them."
)


def truth_section(run: RunData) -> str:
    truth = run.metrics.get("truth")
    if not isinstance(truth, dict):
        return ""
    metric = PRIMARY_METRIC.get(run.task, "auc")
    rows = []
    for key, label in (
        ("oracle", "oracle: the true risk"),
        ("oracle_image", "oracle, image part only (visible + spatial)"),
    ):
        panel = truth.get(key)
        if isinstance(panel, dict) and isinstance(panel.get(metric), dict):
            rows.append([label, fmt_estimate(panel[metric])])
    for model, entry in run.models.items():
        test = entry.get("test") or {}
        if isinstance(test.get(metric), dict):
            rows.append([model_label(model), fmt_estimate(test[metric])])
    body = f'<p class="note">{esc(TRUTH_NOTE)}</p><p class="note">{esc(TRUTH_EVIDENCE)}</p>'
    if rows:
        body += html_table(tables.Grid(["score", metric_label(metric)], rows), cls="metrics")
    models = {
        m: v.get("components")
        for m, v in (truth.get("models") or {}).items()
        if isinstance(v, dict) and isinstance(v.get("components"), dict)
    }
    components = [c for c in TRUTH_COMPONENTS if any(c in comp for comp in models.values())]
    if models and components:
        grid = tables.Grid(
            ["model", *components],
            [
                [model_label(m), *(fmt_estimate(comp.get(c)) for c in components)]
                for m, comp in models.items()
            ],
        )
        body += html_table(grid, cls="metrics")
        bars = {
            m: {
                c: tuple(
                    finite((comp.get(c) or {}).get(k)) or float("nan")
                    for k in ("value", "ci_low", "ci_high")
                )
                for c in components
            }
            for m, comp in models.items()
        }
        caption = (
            "Spearman correlation of each model's out-of-fold score with each part of "
            "the true risk, with its patient-bootstrap CI."
        )
        body += figure(figures.truth_figure(bars, components), caption)
    body += phenotype_probe_table(truth.get("phenotype_probe"))
    return section("truth", "What the models learned (synthetic truth audit)", body)


PROBE_NOTE = (
    "Phenotype probe: what each representation holds of the lesion phenotypes, whatever "
    "the model made of them. A ridge regression, cross-validated over patients, predicts "
    "each phenotype from the CNN's embeddings (each fold's members, on the cases none of "
    "them trained on) or from the hand-crafted features (every case); the table gives the "
    "Spearman correlation of its out-of-fold predictions with the true values "
    "(patient-bootstrap CI). Near 0: the representation does not carry that phenotype in a "
    "linearly readable form."
)


def phenotype_probe_table(probe: Any) -> str:
    """The truth audit's phenotype-probe table and its verdict (empty without a probe)."""
    grid = tables.phenotype_probe_grid(probe)
    if not grid:
        return ""
    verdict = probe_verdict(probe)
    return (
        f'<p class="note">{esc(PROBE_NOTE)}</p>'
        + html_table(grid, cls="metrics phenotype-probe")
        + (f"<p><strong>{esc(verdict)}</strong></p>" if verdict else "")
    )


def learning_curve_section(run: RunData) -> str:
    records = tables.learning_curve_records(run)
    if not records:
        return ""
    verdict = learning_curve_verdict(records)
    return section(
        "learning-curve",
        "Learning curve",
        figure(figures.learning_curve_figure(records), CAPTION_LEARNING_CURVE)
        + html_table(tables.learning_curve_grid(records))
        + (f"<p><strong>{esc(verdict)}</strong></p>" if verdict else ""),
    )


def ensemble_section(run: RunData) -> str:
    ens = run.metrics.get("ensemble")
    if not isinstance(ens, dict) or ensemble_members(run) <= 1:
        return ""
    members = [
        finite(m.get("error", m.get("value")) if isinstance(m, dict) else m)
        for m in ens.get("per_member") or []
    ]
    members = [m for m in members if m is not None]
    ensemble_error = finite(ens.get("ensemble_error"))
    if not members or ensemble_error is None:
        return ""
    metric = str(ens.get("metric", "error"))
    mean = float(np.mean(members))
    change = f"{100 * (mean - ensemble_error) / mean:.1f} %" if mean else DASH
    caption = (
        f"{metric_label(metric)} of each of the {len(members)} ensemble members and of the "
        f"ensemble: mean member {fmt_number(mean)}, ensemble {fmt_number(ensemble_error)} "
        f"(reduction {change}). Averaging helps when members disagree (high variance)."
    )
    return section(
        "ensemble",
        "Ensemble",
        figure(figures.ensemble_figure(members, ensemble_error, metric), caption),
    )


def uncertainty_section(run: RunData) -> str:
    pred = run.predictions
    if pred is None or "cnn_std" not in pred.columns:
        return ""
    std = pred["cnn_std"].to_numpy(dtype=float)
    std = std[np.isfinite(std)]
    if not len(std) or not np.any(std > 0):
        return ""
    caption = (
        f"Spread between the CNN ensemble members per case (median {fmt_number(np.median(std))}, "
        f"90th percentile {fmt_number(np.percentile(std, 90))})."
    )
    threshold = finite(run.metrics.get("threshold"))
    col = run.score_column("cnn")
    if run.task == "binary" and threshold is not None and col is not None:
        if "cnn_threshold" in pred.columns:  # each fold's own threshold
            threshold = pred["cnn_threshold"]
        wrong = (pred[col] >= threshold).astype(int) != pred["y_true"]
        ok = np.isfinite(pred["cnn_std"]) & np.isfinite(pred[col])
        if (ok & wrong).any() and (ok & ~wrong).any():
            spread = pred["cnn_std"]
            caption += (
                f" Mean spread of misclassified cases {fmt_number(spread[ok & wrong].mean())}, "
                f"of correctly classified ones {fmt_number(spread[ok & ~wrong].mean())}."
            )
    return section("uncertainty", "Uncertainty", figure(figures.uncertainty_figure(std), caption))


def explain_section(run: RunData) -> str:
    info = run.metrics.get("explain")
    if not isinstance(info, dict) or not info.get("cases"):
        return ""
    parts = [f"<p>{esc(line)}</p>" for line in ex.sanity_lines(info)]
    parts.append(f"<p>{esc(ex.localisation_line(info))}</p>")
    parts.append(html_table(ex.cases_grid(info)))
    if line := ex.composition_line(info):
        parts.append(f'<p class="note">{esc(line)}</p>')
    layer = info.get("gradcam_layer")
    at = f" at layer {layer}" if layer else ""
    parts += [
        f'<figure><img src="{uri}" alt="{esc(cap)}" style="max-width:100%">'
        f"<figcaption>{esc(cap)}: image, lesion outline (cyan), Grad-CAM{esc(at)} "
        f"(colour from 0 to the case's maximum)</figcaption></figure>"
        for cap, uri in ex.case_images(run.run_dir, info)
    ]
    parts.append(
        "<p>Receptive field of each stage, next to the crop and the lesions: a stage "
        "whose field is smaller than the lesion sees only part of it per unit.</p>"
    )
    parts.append(html_table(ex.field_grid(info)))
    parts.append(
        f"<p>{esc(info.get('display_scaling', ''))}. Maps of every case: "
        f"deepradiomics explain RUN CASES.csv --out DIR.</p>"
    )
    return section("explain", "What the CNN looked at", "".join(parts))


def segmentation_section(run: RunData) -> str:
    """Segmentation runs: where the scores come from, the worst and median cases."""
    info = run.metrics.get("segmentation")
    if not isinstance(info, dict):
        return ""
    body = (
        f"<p>Dice, HD95 (mm) and volume difference (predicted − reference, mL) per case on "
        f"the {esc(info.get('grid', 'network-input grid'))}, out of fold; the Metrics and Per "
        f"site tables give their means with patient-bootstrap CIs. HD95 is undefined when a "
        f"mask is empty and such cases are left out of its mean; "
        f"{esc(info.get('empty_predictions', 0))} case(s) have an empty prediction.</p>"
    )
    if info.get("centred_on_mask"):
        body += banner(
            "warning",
            "Every input, test cases included, was cropped around its reference mask "
            "(preprocess.crop_mm): the lesion is always near the centre, which makes these "
            "scores optimistic for new cases. preprocess.crop_mm: none segments whole volumes "
            "(and is what a bundle needs to segment cases without a mask).",
        )
    if info.get("masks"):
        dice = finite(info.get("dice_original_mean"))
        body += (
            f"<p>Predicted masks in each case's original geometry: "
            f"<code>{esc(info['masks'])}/</code> (column <code>cnn_mask_file</code> of "
            "predictions.csv)"
            + (f"; mean Dice there against the drawn masks {dice:.3f}" if dice is not None else "")
            + ".</p>"
        )
    if info.get("patch"):
        body += (
            f"<p>Trained on random patches of {esc(' x '.join(map(str, info['patch'])))} "
            f"voxels of inputs of {esc(' x '.join(map(str, info.get('input_shape') or [])))}; "
            "predicted by sliding windows (MONAI sliding_window_inference, Gaussian "
            "weighting).</p>"
        )
    for fig in info.get("figures") or []:
        png = run.run_dir / str(fig.get("file", ""))
        if not png.is_file():
            continue
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        cap = f"{fig.get('role')} case {fig.get('case_id')}: Dice {fig.get('dice', 0):.3f}"
        body += (
            f'<figure><img src="data:image/png;base64,{data}" alt="{esc(cap)}" '
            f'style="max-width:100%"><figcaption>{esc(cap)}: image, reference outline (cyan), '
            "predicted outline (magenta)</figcaption></figure>"
        )
    return section("segmentation", "Segmentation", body)


def mask_source_section(run: RunData) -> str:
    """``cohort.mask_from``: which masks are automatic, and the metrics per mask source."""
    info = run.metrics.get("masks")
    if not isinstance(info, dict):
        return ""
    body = (
        f"<p>{esc(info.get('rows_without_mask', 0))} row(s) had no drawn mask; "
        f"{esc(info.get('automatic', 0))} were segmented by the bundle "
        f"<code>{esc(info.get('bundle', ''))}</code> (masks in "
        f"<code>{esc(info.get('folder') or DASH)}/</code>, column "
        "<code>mask_source</code> of predictions.csv) and then used like drawn masks.</p>"
    )
    empty, failed = info.get("empty") or [], info.get("failed") or {}
    if empty or failed:
        body += banner(
            "warning",
            f"Left without a mask: {len(empty)} empty automatic mask(s)"
            + (f" ({', '.join(map(str, empty[:10]))})" if empty else "")
            + f", {len(failed)} case(s) the bundle could not segment"
            + (
                f" ({'; '.join(f'{k}: {v}' for k, v in list(failed.items())[:5])})"
                if failed
                else ""
            )
            + ".",
        )
    if run.predictions is not None and "mask_source" in run.predictions.columns:
        auto = run.predictions.loc[run.predictions["mask_source"] == "automatic", "case_id"]
        shown = ", ".join(map(str, auto.head(20)))
        more = f" and {len(auto) - 20} more" if len(auto) > 20 else ""
        body += f"<p>Tested cases with an automatic mask: {esc(shown + more) or DASH}.</p>"
    by_source = run.metrics.get("by_mask_source") or {}
    for model, entry in run.models.items():
        groups = by_source.get(model)
        if isinstance(groups, dict) and groups:
            grid = tables.per_site_grid({"test": entry.get("test") or {}, "per_site": groups})
            body += f"<h3>{esc(model_label(model))}</h3>" + html_table(grid, cls="metrics")
    body += (
        '<p class="note">Out-of-fold metrics of the cases with drawn and with automatic masks, '
        "each with its patient-bootstrap CI: a gap means the automatic masks change what the "
        "models see.</p>"
    )
    return section("mask-source", "Drawn and automatic masks", body)


def _fmt(value: Any, digits: int = 3) -> str:
    v = finite(value)
    return DASH if v is None else f"{v:.{digits}f}"


def robustness_section(run: RunData) -> str:
    """``evaluate.mask_robustness``: feature ICCs and the CNN's spread under mask changes."""
    info = run.metrics.get("mask_robustness")
    if not isinstance(info, dict):
        return ""
    labels = {"perturbed": "eroded / dilated by one voxel", "automatic": "automatic vs drawn"}
    rows = []
    for group, entry in (info.get("classical") or {}).items():
        rows.append(
            [
                f"classical features, {labels.get(group, group)}",
                entry.get("cases", DASH),
                f"median ICC {_fmt(entry.get('median_icc'))}; ≥ 0.75: "
                f"{fmt_percent(entry.get('share_good'))}; ≥ 0.9: "
                f"{fmt_percent(entry.get('share_excellent'))} of {entry.get('n_features')}",
            ]
        )
    for group, entry in (info.get("cnn") or {}).items():
        flips = entry.get("class_flips")
        rows.append(
            [
                f"CNN score, {labels.get(group, group)}",
                entry.get("n", DASH),
                f"ICC {_fmt(entry.get('icc'))}; per-case range median "
                f"{_fmt(entry.get('range_median'), 4)}, 95th percentile "
                f"{_fmt(entry.get('range_p95'), 4)}"
                + (
                    f"; class changes for {fmt_percent(flips)} of cases"
                    if flips is not None
                    else ""
                ),
            ]
        )
    body = (
        "<p>Every mask eroded and dilated by one voxel in its original grid"
        + (
            " (and, where both exist, the automatic mask instead of the drawn one)"
            if "automatic" in (info.get("variants") or [])
            else ""
        )
        + ", the cases prepared again with the run's plan, then the classical features and the "
        "CNN's out-of-fold prediction recomputed. ICC(2,1): absolute agreement across the "
        "mask variants (0.75 good, 0.9 excellent). Per-feature values: "
        "<code>robustness/feature_icc.csv</code>; per-case CNN scores: "
        "<code>robustness/cnn_scores.csv</code>.</p>"
    )
    body += html_table(tables.Grid(["what", "cases", "agreement"], rows))
    lowest = ((info.get("classical") or {}).get("perturbed") or {}).get("lowest") or {}
    if lowest:
        body += "<h3>Least robust classical features (eroded / dilated)</h3>" + html_table(
            tables.Grid(["feature", "ICC"], [[k, _fmt(v)] for k, v in lowest.items()])
        )
    return section("robustness", "Mask robustness", body)


def confounding_section(run: RunData) -> str:
    """The site audit: verdict in words, site probes, site-only baseline, LOSO gap."""
    audit = run.metrics.get("audit") or {}
    if not audit.get("site_probe") and not audit.get("site_only"):
        return ""
    body = f"<p><strong>{esc(audit.get('verdict', ''))}</strong></p>"
    probes = confounding.site_probe_grid(audit)
    if probes:
        body += html_table(probes) + (
            '<p class="note">How well a multinomial logistic regression tells the site from each '
            "representation (patient-grouped inner cross-validation; permutation p: site labels "
            "permuted across patients). Near chance: the site is not visible there.</p>"
        )
    outcome = confounding.outcome_grid(audit)
    if outcome:
        body += html_table(outcome) + (
            '<p class="note">The site-only baseline scores each case by its site\'s outcome '
            "rate: the floor an image model must clear before claiming image signal.</p>"
        )
    return section("confounding", "Confounding by site", body)


def checklist_section(run: RunData) -> str:
    body = (
        '<p class="note">What this run can report for two checklists; items marked "'
        f'{esc(checklist.AUTHORS)}" need what the run cannot know. The same tables are in '
        f"checklist.md. Software: {esc(checklist.software_text(run))}</p>"
    )
    for name, answers in checklist.checklists(run).items():
        done = sum(a.complete for a in answers)
        grid = tables.Grid(
            ["item", "topic", "asks", "this run"],
            [[a.item, a.topic, a.text, a.answer] for a in answers],
        )
        body += (
            f"<details><summary>{esc(name)}: {done} of {len(answers)} items filled by the "
            f"run</summary>{html_table(grid, 'checklist')}</details>"
        )
    body += f'<p class="note">{esc(checklist.REFERENCES)}</p>'
    return section("checklist", "Reporting checklists", body)


def limitations_section(run: RunData, leaks: LeakCheck | None) -> str:
    items = "".join(f"<li>{esc(item)}</li>" for item in limitations(run, leaks))
    return section("limitations", "Limitations", f"<ul>{items}</ul>")


# ---- page -----------------------------------------------------------------------------------

SECTION_TITLES = {
    "config": "Configuration",
    "cohort": "Cohort",
    "splits": "Splits",
    "metrics": "Metrics",
    "per-site": "Per site",
    "comparison": "Comparison",
    "per-fold": "Per fold",
    "fairness": "Fairness",
    "roc": "ROC",
    "calibration": "Calibration",
    "km": "Kaplan-Meier",
    "truth": "Truth audit",
    "learning-curve": "Learning curve",
    "ensemble": "Ensemble",
    "uncertainty": "Uncertainty",
    "explain": "Explanations",
    "segmentation": "Segmentation",
    "mask-source": "Mask source",
    "robustness": "Mask robustness",
    "confounding": "Confounding",
    "limitations": "Limitations",
    "checklist": "Checklists",
}


def render_report(run: RunData) -> str:
    """The whole page as a string."""
    leaks = patient_leaks(run.splits) if run.splits is not None else None
    sections = [
        config_section(run),
        cohort_section(run),
        splits_section(run, leaks),
        metrics_section(run),
        per_site_section(run),
        comparison_section(run),
        per_fold_section(run),
        fairness_section(run),
        roc_section(run),
        calibration_section(run),
        km_section(run),
        truth_section(run),
        learning_curve_section(run),
        ensemble_section(run),
        uncertainty_section(run),
        explain_section(run),
        segmentation_section(run),
        mask_source_section(run),
        robustness_section(run),
        confounding_section(run),
        limitations_section(run, leaks),
        checklist_section(run),
    ]
    sections = [s for s in sections if s]
    present = [sid for sid in SECTION_TITLES if f'<section id="{sid}">' in "".join(sections)]
    nav = " ".join(f'<a href="#{sid}">{SECTION_TITLES[sid]}</a>' for sid in present)
    top = (
        banner(
            "error",
            "The split check failed: a patient has cases in both training and test (see Splits).",
        )
        if leaks is not None and not leaks.ok
        else ""
    )
    header = (
        f"<header><h1>{esc(run.name)}</h1>"
        f'<p class="meta">task: {esc(run.task)} · run: {esc(run.date)} · '
        f"deepradiomics {esc(deepradiomics.__version__)}</p>{top}"
        f'<p class="summary" id="validation"><strong>How this was validated.</strong> '
        f"{esc(validation_summary(run, leaks))}</p><nav>{nav}</nav></header>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(run.name)}: deepradiomics report</title>\n<style>{CSS}</style>\n</head>\n"
        f"<body>\n{header}\n<main>\n" + "\n".join(sections) + "\n</main>\n</body>\n</html>\n"
    )


def write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report(run_dir: str | Path) -> Path:
    """Write ``RUN/report.html`` from the run folder's files and return its path."""
    run = load_run(run_dir)
    path = run.run_dir / "report.html"
    write_text_atomic(path, render_report(run))
    return path
