"""What the report's and the model card's tables hold, as format-neutral ``Grid`` objects
(``html.html_table`` and ``model_card.md_table`` render them).

Only aggregates are tabulated (per site, per fold, per model): never per-case rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from deepradiomics.report.formatting import (
    DASH,
    fmt_estimate,
    fmt_number,
    fmt_p,
    fmt_percent,
    fmt_triple,
    metric_label,
    model_label,
    ordered_metrics,
    phenotype_label,
)
from deepradiomics.report.run_files import RunData, finite
from deepradiomics.report.splits import ROLES


@dataclass(frozen=True)
class Grid:
    """A table's content: a header and rows of plain values (the first cell heads its row)."""

    header: list[str]
    rows: list[list[Any]]

    def __bool__(self) -> bool:
        return bool(self.rows)


def threshold_text(metrics: dict[str, Any]) -> str:
    """Where the binary decision thresholds came from, in words."""
    threshold = float(metrics["threshold"])
    cuts = [c for c in (metrics.get("fold_thresholds") or []) if finite(c) is not None]
    if len(cuts) < 2:
        return f"{threshold:.3g}, chosen on validation data"
    return (
        f"one per fold, chosen on that fold's own validation / out-of-bag cases and applied to "
        f"its test cases only ({' / '.join(f'{c:.3g}' for c in cuts)}); the bundle uses their "
        f"mean, {threshold:.3g}"
    )


def key_value_grid(pairs: Sequence[tuple[str, Any]]) -> Grid:
    return Grid(["setting", "value"], [list(p) for p in pairs])


# ---- config ---------------------------------------------------------------------------------


def config_grid(run: RunData) -> Grid:
    """The settings a reader needs to judge the run, from the resolved config."""
    c, p, m = run.section("cohort"), run.section("preprocess"), run.section("model")
    t, e = run.section("train"), run.section("evaluate")
    mods = c.get("modalities") or {}
    modalities = ", ".join(
        f"{name} ({v.get('kind', '?')})" if isinstance(v, dict) else str(name)
        for name, v in mods.items()
    )
    target = (
        f"{c.get('time', 'time')} / {c.get('event', 'event')}"
        if run.task == "survival"
        else c.get("target", DASH)
    )
    pairs = [
        ("experiment", run.name),
        ("seed", run.config.get("seed", DASH)),
        ("task", run.task),
        ("outcome column(s)", target),
        ("modalities", modalities or DASH),
        (
            "covariates",
            ", ".join(
                map(str, [*c.get("covariates_numeric", []), *c.get("covariates_categorical", [])])
            )
            or "none",
        ),
        ("target spacing (z, y, x)", fmt_triple(p.get("spacing"), "mm")),
        ("crop (z, y, x)", fmt_triple(p.get("crop_mm"), "mm")),
        ("model", m.get("name", DASH)),
        ("site adversary", "yes" if m.get("site_adversary") else "no"),
        (
            "epochs / batch size / learning rate",
            f"{t.get('epochs', DASH)} / {t.get('batch_size', DASH)} / {t.get('lr', DASH)}",
        ),
        ("loss", t.get("loss") or "task default"),
        ("split", e.get("split", DASH)),
        ("folds", e.get("folds", DASH) if e.get("split") == "kfold" else DASH),
        ("ensemble members", e.get("ensemble_members", DASH)),
        (
            "bootstrap resamples / CI level",
            f"{e.get('bootstrap', DASH)} / {fmt_percent(e.get('ci_level'))}",
        ),
        (
            "classical baseline / ComBat",
            f"{'yes' if e.get('classical') else 'no'} / {'yes' if e.get('combat') else 'no'}",
        ),
    ]
    threshold = finite(run.metrics.get("threshold"))
    if threshold is not None:
        pairs.append(("decision threshold", threshold_text(run.metrics)))
    timing = run.metrics.get("timing") or {}
    if finite(timing.get("total_seconds")) is not None:
        pairs.append(("run time", f"{float(timing['total_seconds']) / 60:.1f} min"))
    return key_value_grid(pairs)


# ---- cohort ---------------------------------------------------------------------------------


def _outcome_cell(task: str, info: dict[str, Any]) -> str:
    n = info.get("n_cases")
    if task == "binary" and info.get("positives") is not None:
        pos = info["positives"]
        return f"{pos} ({fmt_percent(pos / n if n else None, 1)})"
    if task == "survival" and info.get("events") is not None:
        median = finite(info.get("median_time"))
        return f"{info['events']}" + (f" (median time {median:.3g})" if median is not None else "")
    if task == "regression" and info.get("mean") is not None:
        return fmt_number(info["mean"])
    return DASH


OUTCOME_HEADER = {
    "binary": "positives (prevalence)",
    "survival": "events",
    "regression": "mean outcome",
}


def site_grid(cohort: dict[str, Any], task: str) -> Grid:
    """Cases, patients and outcome per site, with the whole cohort as the last row."""
    rows = []
    sites = cohort.get("sites") or {}
    for site, info in sites.items():
        if isinstance(info, dict):
            rows.append(
                (
                    site,
                    info.get("n_cases", DASH),
                    info.get("n_patients", DASH),
                    _outcome_cell(task, info),
                )
            )
    total = {"n_cases": cohort.get("n_cases")}
    if task == "binary":
        pos = [i.get("positives") for i in sites.values() if isinstance(i, dict)]
        total["positives"] = sum(pos) if pos and None not in pos else None
    elif task == "survival":
        ev = [i.get("events") for i in sites.values() if isinstance(i, dict)]
        total["events"] = sum(ev) if ev and None not in ev else None
    rows.append(
        (
            "all sites",
            cohort.get("n_cases", DASH),
            cohort.get("n_patients", DASH),
            _outcome_cell(task, total),
        )
    )
    return Grid(["site", "cases", "patients", OUTCOME_HEADER.get(task, "outcome")], rows)


def covariate_grid(cohort: dict[str, Any]) -> Grid:
    covs = cohort.get("covariates") or {}
    n = cohort.get("n_cases")
    rows = []
    for name, info in covs.items():
        info = info if isinstance(info, dict) else {}
        missing = info.get("missing", 0)
        share = fmt_percent(missing / n, 1) if n else DASH
        if "mean" in info:
            mean = finite(info["mean"])
            summary = DASH if mean is None else f"mean {mean:.4g}"
        elif isinstance(info.get("levels"), dict):
            summary = ", ".join(f"{k}: {v}" for k, v in info["levels"].items())
        elif isinstance(info.get("levels"), list):
            summary = ", ".join(map(str, info["levels"]))
        else:
            summary = DASH
        rows.append((name, f"{missing} ({share})", summary))
    return Grid(["covariate", "missing", "summary"], rows)


def plan_grid(plan: dict[str, Any]) -> Grid:
    spacing = plan.get("spacing", plan.get("target_spacing"))
    axis = plan.get("anisotropic_axis")
    aniso = "yes" if plan.get("anisotropic") else "no"
    if plan.get("anisotropic") and axis is not None:
        name = "zyx"[int(axis)] if str(axis) in ("0", "1", "2") else axis
        aniso += f" (axis {name} kept coarse)"
    crop = plan.get("crop_mm")
    pairs = [
        ("target spacing (z, y, x)", fmt_triple(spacing, "mm")),
        ("anisotropic kernels", aniso),
        ("crop size (z, y, x)", fmt_triple(crop, "mm") if crop is not None else "whole volume"),
        ("network input (z, y, x)", fmt_triple(plan.get("shape"), "voxels")),
    ]
    if plan.get("spacing_rule"):
        pairs.append(("spacing rule", plan["spacing_rule"]))
    return key_value_grid(pairs)


# ---- splits ---------------------------------------------------------------------------------


def split_grid(summary: pd.DataFrame) -> Grid:
    """Per fold: cases / patients (/ positives or events) of each role."""
    outcome = next(
        (
            c.split("_", 1)[1]
            for c in summary.columns
            if c.startswith("test_") and c not in ("test_cases", "test_patients")
        ),
        None,
    )
    show_held = summary["held_out"].astype(bool).any()
    header = ["fold"] + (["held out"] if show_held else [])
    for role in ROLES:
        header.append(f"{role}: cases / patients" + (f" / {outcome}" if outcome else ""))
    rows = []
    for _, r in summary.iterrows():
        row: list[Any] = [int(r["fold"])] + ([r["held_out"] or DASH] if show_held else [])
        for role in ROLES:
            parts = [str(int(r[f"{role}_cases"])), str(int(r[f"{role}_patients"]))]
            if outcome:
                v = r[f"{role}_{outcome}"]
                parts.append(DASH if pd.isna(v) else str(int(v)))
            row.append(" / ".join(parts))
        rows.append(row)
    return Grid(header, rows)


# ---- metrics --------------------------------------------------------------------------------


def _n(panel: dict[str, Any]) -> str:
    ns = {e.get("n") for e in panel.values() if isinstance(e, dict) and e.get("n") is not None}
    return str(max(ns)) if ns else DASH


def models_grid(models: dict[str, dict[str, Any]]) -> Grid:
    """Pooled metrics, one column per model: ``value [CI]``."""
    panels = {m: (entry.get("test") or {}) for m, entry in models.items()}
    names = ordered_metrics(n for p in panels.values() for n in p)
    rows = [["cases evaluated", *(_n(p) for p in panels.values())]]
    if any(entry.get("inputs") for entry in models.values()):
        rows.append(["inputs", *(entry.get("inputs") or DASH for entry in models.values())])
    rows += [[metric_label(n), *(fmt_estimate(p.get(n)) for p in panels.values())] for n in names]
    return Grid(["metric", *(model_label(m) for m in panels)], rows)


def per_site_grid(entry: dict[str, Any]) -> Grid:
    """One model's pooled metrics next to each site's."""
    pooled = entry.get("test") or {}
    sites = {str(s): p for s, p in (entry.get("per_site") or {}).items() if isinstance(p, dict)}
    names = ordered_metrics([*pooled, *(n for p in sites.values() for n in p)])
    columns = {"pooled": pooled, **sites}
    rows = [["cases", *(_n(p) for p in columns.values())]]
    rows += [[metric_label(n), *(fmt_estimate(p.get(n)) for p in columns.values())] for n in names]
    return Grid(["metric", *columns], rows)


def comparison_grid(comparisons: list[dict[str, Any]]) -> Grid:
    """Paired differences ``a − b`` with CI and DeLong p (AUC), pooled scope first."""
    ordered = sorted(comparisons, key=lambda c: str(c.get("scope", "pooled")) != "pooled")
    rows = []
    for c in ordered:
        p = c.get("p_value")
        rows.append(
            [
                f"{model_label(str(c.get('a')))} − {model_label(str(c.get('b')))}",
                metric_label(str(c.get("metric"))),
                str(c.get("scope", "pooled")),
                fmt_estimate(
                    {
                        "value": c.get("difference"),
                        "ci_low": c.get("ci_low"),
                        "ci_high": c.get("ci_high"),
                    }
                ),
                fmt_p(p),
            ]
        )
    return Grid(["comparison", "metric", "scope", "difference [CI]", "p (DeLong)"], rows)


def per_fold_grid(per_fold: list[dict[str, Any]]) -> Grid:
    """Each fold's metrics, then their mean and SD across folds."""
    table = pd.DataFrame(per_fold)
    numeric = [c for c in table.columns if c != "fold" and pd.api.types.is_numeric_dtype(table[c])]
    text = [c for c in table.columns if c not in numeric and c != "fold"]
    names = ordered_metrics(numeric)
    header = ["fold", *text, *(metric_label(n) for n in names)]
    rows = [
        [r.get("fold", i), *(r.get(t, DASH) for t in text), *(fmt_number(r.get(n)) for n in names)]
        for i, r in enumerate(per_fold)
    ]
    if len(per_fold) > 1:
        values = [table[n].to_numpy(dtype=float) for n in names]
        values = [v[np.isfinite(v)] for v in values]
        rows.append(
            [
                "mean",
                *([""] * len(text)),
                *(fmt_number(v.mean()) if len(v) else DASH for v in values),
            ]
        )
        rows.append(
            [
                "SD",
                *([""] * len(text)),
                *(fmt_number(v.std(ddof=1)) if len(v) > 1 else DASH for v in values),
            ]
        )
    return Grid(header, rows)


def learning_curve_records(run: RunData) -> list[dict[str, Any]]:
    """The run's learning-curve rows with a finite test score and fraction."""
    return [
        r
        for r in run.metrics.get("learning_curve") or []
        if isinstance(r, dict)
        and finite(r.get("test_score")) is not None
        and finite(r.get("fraction")) is not None
    ]


@dataclass(frozen=True)
class CurveSummary:
    """A learning curve per training share (sorted): each model's mean and SD of the test
    score over repeats (a column per model, in order of appearance) and the median number
    of training cases (NaN without it)."""

    mean: pd.DataFrame
    sd: pd.DataFrame
    n_train: pd.Series

    @property
    def models(self) -> list[str]:
        return list(self.mean.columns)


def learning_curve_summary(records: Sequence[dict[str, Any]]) -> CurveSummary:
    """``learning_curve_records`` (at least one) summarised per training share."""
    table = pd.DataFrame(list(records))
    models = list(dict.fromkeys(table["model"]))
    scores = table.groupby(["fraction", "model"])["test_score"]
    mean, sd = (getattr(scores, k)().unstack()[models].sort_index() for k in ("mean", "std"))
    n = (
        table.groupby("fraction")["n_train"].median()
        if "n_train" in table
        else pd.Series(np.nan, index=mean.index)
    )
    return CurveSummary(mean, sd, n.reindex(mean.index))


def learning_curve_grid(records: Sequence[dict[str, Any]]) -> Grid:
    """Per training share: the median number of training cases, each model's mean test
    score (SD over repeats) and, for two models, the first minus the second: where the
    curves meet, in numbers."""
    curve = learning_curve_summary(records)
    models = curve.models
    rows = []
    for fraction in curve.mean.index:
        mean, sd = curve.mean.loc[fraction], curve.sd.loc[fraction]
        cells = [
            DASH
            if pd.isna(mean[m])
            else fmt_number(mean[m]) + ("" if pd.isna(sd[m]) else f" ({fmt_number(sd[m])})")
            for m in models
        ]
        if len(models) == 2:
            gap = mean[models[0]] - mean[models[1]]
            cells.append(fmt_number(gap) if np.isfinite(gap) else DASH)
        n = curve.n_train[fraction]
        rows.append([fmt_percent(float(fraction)), DASH if pd.isna(n) else int(n), *cells])
    header = ["training data", "training cases", *(f"{model_label(m)}: test" for m in models)]
    if len(models) == 2:
        header.append(f"{model_label(models[0])} - {model_label(models[1])}")
    return Grid(header, rows)


PROBE_LABELS = {"cnn": "CNN embeddings", "classical": "hand-crafted features"}


def phenotype_probe_grid(probe: Any) -> Grid:
    """The truth audit's phenotype probe (``metrics.truth.phenotype_probe``): a row per
    phenotype (with its part of the risk), a column per representation; empty without one."""
    header = ["phenotype (part of the risk)"]
    if not isinstance(probe, dict) or not isinstance(probe.get("representations"), dict):
        return Grid(header, [])
    reps = {k: v for k, v in probe["representations"].items() if isinstance(v, dict)}
    components = probe.get("components") or {}
    if not reps or not isinstance(components, dict):
        return Grid(header, [])
    rows = [
        [
            f"{phenotype_label(name)} ({part})",
            *(fmt_estimate((rep.get("r") or {}).get(name)) for rep in reps.values()),
        ]
        for name, part in components.items()
    ]
    return Grid([*header, *(PROBE_LABELS.get(k, k) for k in reps)], rows)
