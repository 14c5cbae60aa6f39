"""``write_model_card(run_dir)``: ``RUN/model_card.md`` from the same files as the report.

Sections: intended use, model, data, evaluation (metrics with CIs, per site, comparisons),
limitations. Aggregates only; table cells are escaped for Markdown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import deepradiomics
from deepradiomics.report.formatting import DASH, fmt_percent, model_label
from deepradiomics.report.html import write_text_atomic
from deepradiomics.report.narrative import (
    ci_level,
    ensemble_members,
    limitations,
    validation_summary,
)
from deepradiomics.report.run_files import RunData, load_run
from deepradiomics.report.splits import LeakCheck, patient_leaks
from deepradiomics.report.tables import (
    Grid,
    comparison_grid,
    covariate_grid,
    models_grid,
    per_site_grid,
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


def _model(run: RunData) -> list[str]:
    m, t = run.section("model"), run.section("train")
    lines = [
        "## Model",
        "",
        f"- Architecture: `{md(m.get('name', DASH))}`"
        + (" with a site-adversarial head" if m.get("site_adversary") else "")
        + f"; ensemble of {ensemble_members(run)} member(s) per fold.",
        (
            f"- Training: {t.get('epochs', DASH)} epochs at most, batch "
            f"{t.get('batch_size', DASH)}, learning rate {t.get('lr', DASH)}, loss "
            f"{md(t.get('loss') or 'task default')}."
        ),
    ]
    if "classical" in run.models:
        lines.append(
            "- Baseline: hand-crafted radiomics features with a classical model "
            "on the same splits"
            + (" (also with ComBat)" if "classical_combat" in run.models else "")
            + "."
        )
    return lines + [""]


def _data(run: RunData) -> list[str]:
    cohort = run.cohort
    lines = ["## Data", ""]
    if not cohort:
        return [*lines, "cohort.json is not in the run folder.", ""]
    lines += [
        f"{cohort.get('n_cases', DASH)} cases from {cohort.get('n_patients', DASH)} patients.",
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


def _evaluation(run: RunData, leaks: LeakCheck | None) -> list[str]:
    lines = ["## Evaluation", "", validation_summary(run, leaks), ""]
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
    return lines


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
        *_intended_use(run),
        *_model(run),
        *_data(run),
        *_evaluation(run, leaks),
        "## Limitations",
        "",
        *(f"- {md(item)}" for item in limitations(run, leaks)),
        "",
    ]
    return "\n".join(lines)


def write_model_card(run_dir: str | Path) -> Path:
    """Write ``RUN/model_card.md`` from the run folder's files and return its path."""
    run = load_run(run_dir)
    path = run.run_dir / "model_card.md"
    write_text_atomic(path, render_model_card(run))
    return path
