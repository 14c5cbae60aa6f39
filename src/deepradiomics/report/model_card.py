"""``write_model_card(run_dir)``: ``RUN/model_card.md`` from the same files as the report.

Sections follow Mitchell et al. (2019): model details, intended use, factors, metrics,
evaluation data, training data, quantitative analyses (pooled, per site, comparisons, per
subgroup), ethical considerations, caveats and recommendations. Aggregates only; table
cells are escaped for Markdown. ``checklist.md`` (TRIPOD+AI, METRICS) is written here too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import deepradiomics
from deepradiomics.report.checklist import (
    AUTHORS,
    REFERENCES,
    checklists,
    model_description,
    software_text,
)
from deepradiomics.report.fairness import (
    by_group_grid,
    fairness_audits,
    fairness_findings,
    gaps_grid,
)
from deepradiomics.report.formatting import DASH, fmt_percent, metric_label, model_label
from deepradiomics.report.html import write_text_atomic
from deepradiomics.report.narrative import (
    ci_level,
    ci_sentence,
    learning_curve_verdict,
    limitations,
    probe_verdict,
    validation_summary,
)
from deepradiomics.report.run_files import RunData, finite, load_run
from deepradiomics.report.splits import LeakCheck, patient_leaks
from deepradiomics.report.tables import (
    Grid,
    comparison_grid,
    covariate_grid,
    learning_curve_grid,
    learning_curve_records,
    models_grid,
    per_site_grid,
    phenotype_probe_grid,
    plan_grid,
    site_grid,
)
from deepradiomics.tasks import get_task


def md(value: Any) -> str:
    """A value for a Markdown table cell or line (pipes and line breaks neutralised)."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def md_table(grid: Grid) -> str:
    """A Markdown table of ``grid``."""
    lines = ["| " + " | ".join(md(h) for h in grid.header) + " |", "|" + "---|" * len(grid.header)]
    lines += ["| " + " | ".join(md(v) for v in row) + " |" for row in grid.rows]
    return "\n".join(lines)


def _intended_use(run: RunData) -> list[str]:
    c = run.section("cohort")
    mods = c.get("modalities") or {}
    modalities = (
        ", ".join(
            f"{name} ({v.get('kind', '?').upper()})" if isinstance(v, dict) else str(name)
            for name, v in mods.items()
        )
        or ", ".join(map(str, (run.cohort or {}).get("modalities") or []))
        or "images"
    )
    outcome = (
        f"{c.get('time', 'time')} / {c.get('event', 'event')}"
        if get_task(run.task).time_to_event
        else c.get("target", "the outcome")
    )
    sites = list(((run.cohort or {}).get("sites") or {}).keys())
    return [
        "## Intended use",
        "",
        f"- Task: {get_task(run.task).description} of `{md(outcome)}` from {md(modalities)}.",
        "- For research on cohorts like the one it was developed on"
        + (f" (sites: {md(', '.join(map(str, sites)))})" if sites else "")
        + "; performance elsewhere must be checked before use.",
        "- Not a medical device; not for clinical decisions about individual patients.",
        "",
    ]


def _model_details(run: RunData) -> list[str]:
    m = run.section("model")
    return [
        "## Model details",
        "",
        f"- Developed by: {AUTHORS}",
        f"- Run: {md(run.name)}, {md(run.date)}; {md(software_text(run))}",
        f"- Model: {md(model_description(run))}"
        + (" With a site-adversarial head." if m.get("site_adversary") else ""),
        f"- Licence, citation and contact: {AUTHORS}",
        "",
    ]


def _factors(run: RunData) -> list[str]:
    audits = fairness_audits(run)
    sites = list(((run.cohort or {}).get("sites") or {}).keys())
    lines = ["## Factors", ""]
    if sites:
        lines.append(
            f"- Acquisition site ({len(sites)}: {md(', '.join(map(str, sites)))}): "
            "performance is reported per site."
        )
    subgroups = [c for c in audits if c not in ("site", run.section("cohort").get("site"))]
    if subgroups:
        lines.append(
            f"- Subgroups evaluated: {md(', '.join(subgroups))} (see Quantitative analyses)."
        )
    lines += [f"- Other relevant factors (scanner, protocol, population): {AUTHORS}", ""]
    return lines


def _metrics(run: RunData) -> list[str]:
    names = [metric_label(str(k)) for k in (run.metrics.get("test") or {})]
    lines = ["## Metrics", ""]
    if names:
        lines.append(f"- {md(', '.join(names))}.")
    threshold = finite(run.metrics.get("threshold"))
    if run.task == "binary" and threshold is not None:
        lines.append(
            f"- Threshold metrics use the decision threshold {threshold:.3g} (how it "
            "was chosen: Evaluation data)."
        )
    return [*lines, "", ci_sentence(run), ""]


def _training_data(run: RunData) -> list[str]:
    cohort = run.cohort
    lines = ["## Training data", ""]
    if not cohort:
        return [*lines, "cohort.json is not in the run folder.", ""]
    lines += [
        f"{cohort.get('n_cases', DASH)} cases from {cohort.get('n_patients', DASH)} patients; "
        "each fold trains on the cases outside its test part.",
        "",
        md_table(site_grid(cohort, run.task)),
        "",
    ]
    covariates = covariate_grid(cohort)
    if covariates:
        lines += ["Covariates:", "", md_table(covariates), ""]
    if isinstance(cohort.get("plan"), dict):
        lines += ["Preprocessing plan:", "", md_table(plan_grid(cohort["plan"])), ""]
    return lines


def _evaluation_data(run: RunData, leaks: LeakCheck | None) -> list[str]:
    return ["## Evaluation data", "", validation_summary(run, leaks), ""]


def _quantitative(run: RunData) -> list[str]:
    lines = ["## Quantitative analyses", ""]
    models = run.models
    if models:
        level = fmt_percent(ci_level(run))
        lines += [
            f"Pooled test metrics, value [{level} CI]:",
            "",
            md_table(models_grid(models)),
            "",
        ]
    for model, entry in models.items():
        if entry.get("per_site"):
            grid = md_table(per_site_grid(entry))
            lines += [f"Per site, {model_label(model)}, next to pooled:", "", grid, ""]
    comparisons = [c for c in run.metrics.get("comparisons") or [] if isinstance(c, dict)]
    if comparisons:
        lines += ["Paired comparisons:", "", md_table(comparison_grid(comparisons)), ""]
    curve = learning_curve_records(run)
    if curve:
        lines += [
            "Learning curve (first fold; mean test score, SD over repeats):",
            "",
            md_table(learning_curve_grid(curve)),
            "",
        ]
        verdict = learning_curve_verdict(curve)
        lines += [md(verdict), ""] if verdict else []
    probe = (run.metrics.get("truth") or {}).get("phenotype_probe")
    grid = phenotype_probe_grid(probe)
    if grid:
        verdict = probe_verdict(probe)
        lines += [
            "Synthetic truth audit, phenotype probe (Spearman r of a cross-validated ridge "
            "prediction of each phenotype from each representation with its true value):",
            "",
            md_table(grid),
            "",
            *([md(verdict), ""] if verdict else []),
        ]
    for column, audit in fairness_audits(run).items():
        lines += [
            f"By {md(column)} (CNN; groups too small to compare are marked):",
            "",
            md_table(by_group_grid(audit)),
            "",
        ]
        if audit.get("difference"):
            lines += [md_table(gaps_grid(audit)), ""]
    return lines


def _ethics(run: RunData) -> list[str]:
    findings = fairness_findings(fairness_audits(run))
    return [
        "## Ethical considerations",
        "",
        "- The run's outputs hold aggregates and pseudonymous case ids only; no DICOM identifiers.",
        *(f"- {md(f)}" for f in findings),
        f"- Data governance, consent, risks and harms: {AUTHORS}",
        "",
    ]


def render_model_card(run: RunData) -> str:
    leaks = patient_leaks(run.splits) if run.splits is not None else None
    lines = [
        f"# Model card: {md(run.name)}",
        "",
        (
            f"Generated from the run folder by deepradiomics {deepradiomics.__version__} "
            f"(run: {md(run.date)})."
        ),
        "",
        "Sections follow Mitchell et al., Model Cards for Model Reporting (FAT* 2019); the "
        "reporting checklists are in checklist.md.",
        "",
        *_model_details(run),
        *_intended_use(run),
        *_factors(run),
        *_metrics(run),
        *_evaluation_data(run, leaks),
        *_training_data(run),
        *_quantitative(run),
        *_ethics(run),
        "## Caveats and recommendations",
        "",
        *(f"- {md(item)}" for item in limitations(run, leaks)),
        "",
    ]
    return "\n".join(lines)


def render_checklist(run: RunData) -> str:
    """``checklist.md``: TRIPOD+AI and METRICS as Markdown tables (``report.checklist``)."""
    lines = [
        f"# Reporting checklists: {md(run.name)}",
        "",
        f'Filled from the run folder. Items marked "{AUTHORS}" need what the run cannot '
        "know; check every pre-filled answer before submission.",
        "",
        f"Software: {md(software_text(run))}",
        "",
    ]
    for name, answers in checklists(run).items():
        done = sum(a.complete for a in answers)
        lines += [f"## {name}", "", f"{done} of {len(answers)} items filled by the run.", ""]
        grid = Grid(
            ["item", "topic", "asks", "this run"],
            [[a.item, a.topic, a.text, a.answer] for a in answers],
        )
        lines += [md_table(grid), ""]
    lines += [REFERENCES, ""]
    return "\n".join(lines)


def write_checklist(run_dir: str | Path) -> Path:
    """Write ``RUN/checklist.md`` from the run folder's files and return its path."""
    run = load_run(run_dir)
    path = run.run_dir / "checklist.md"
    write_text_atomic(path, render_checklist(run))
    return path


def write_model_card(run_dir: str | Path) -> Path:
    """Write ``RUN/model_card.md`` from the run folder's files and return its path."""
    run = load_run(run_dir)
    path = run.run_dir / "model_card.md"
    write_text_atomic(path, render_model_card(run))
    return path
