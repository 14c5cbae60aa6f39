"""The fairness section's content: tables and the forest plot of ``metrics.json["fairness"]``.

``metrics.json`` holds, per subgroup column, ``by_group.<group>.<metric>`` and the gaps
``difference`` / ``ratio`` / ``group_min`` / ``vs_reference`` (``audit.fairness`` writes
them); this module only reads and draws them, tolerating missing keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from deepradiomics.report.figures import new_figure, styled, to_svg
from deepradiomics.report.formatting import DASH, fmt_estimate, metric_label
from deepradiomics.report.run_files import RunData, finite
from deepradiomics.report.tables import Grid

COUNT_LABELS = {
    "n_patients": "patients",
    "n_cases": "cases",
    "n_positives": "positives",
    "n_events": "events",
}


def fairness_audits(run: RunData) -> dict[str, dict[str, Any]]:
    """``{column: audit}`` with at least one group, in metrics.json order."""
    raw = run.metrics.get("fairness")
    if not isinstance(raw, dict):
        return {}
    return {
        str(c): a
        for c, a in raw.items()
        if isinstance(a, dict) and isinstance(a.get("by_group"), dict) and a["by_group"]
    }


def audit_metrics(audit: dict[str, Any]) -> list[str]:
    names = audit.get("metrics")
    if isinstance(names, list) and names:
        return [str(m) for m in names]
    first = next(iter(audit["by_group"].values()), {})
    return [k for k, v in first.items() if isinstance(v, dict)]


def by_group_grid(audit: dict[str, Any]) -> Grid:
    """One row per group: counts, whether it is compared, each metric with its CI."""
    metrics = audit_metrics(audit)
    groups = audit["by_group"]
    counts = [
        k for k in COUNT_LABELS if any(k in g for g in groups.values() if isinstance(g, dict))
    ]
    header = [
        "group",
        *(COUNT_LABELS[k] for k in counts),
        "compared",
        *(metric_label(m) for m in metrics),
    ]
    rows = []
    overall = audit.get("overall") or {}
    if overall:
        rows.append(
            ["all", *([DASH] * len(counts)), DASH, *(fmt_estimate(overall.get(m)) for m in metrics)]
        )
    for name, entry in groups.items():
        if not isinstance(entry, dict):
            continue
        compared = entry.get("compared")
        rows.append(
            [
                str(name),
                *(entry.get(k, DASH) for k in counts),
                "yes" if compared else "no (too small)" if compared is False else DASH,
                *(fmt_estimate(entry.get(m)) for m in metrics),
            ]
        )
    return Grid(header, rows)


def gaps_grid(audit: dict[str, Any]) -> Grid:
    """One row per metric: difference (max − min), ratio (min / max), worst group value,
    and each group's signed gap to the reference group."""
    metrics = audit_metrics(audit)
    vs_ref = audit.get("vs_reference") or {}
    reference = audit.get("reference", "reference")
    header = [
        "metric",
        "difference (max − min)",
        "ratio (min / max)",
        "smallest group value",
        *(f"{g} − {reference}" for g in vs_ref),
    ]
    rows = []
    for m in metrics:
        cells = [(audit.get(key) or {}).get(m) for key in ("difference", "ratio", "group_min")]
        rows.append(
            [
                metric_label(m),
                *(fmt_estimate(c) if c else DASH for c in cells),
                *(fmt_estimate((vs_ref[g] or {}).get(m)) for g in vs_ref),
            ]
        )
    eo = audit.get("equalized_odds_difference")
    if isinstance(eo, dict):
        rows.append(
            [
                "Equalised-odds difference (max of TPR and FPR differences)",
                fmt_estimate(eo),
                DASH,
                DASH,
                *([DASH] * len(vs_ref)),
            ]
        )
    return Grid(header, rows)


@dataclass(frozen=True)
class ForestRow:
    label: str
    compared: bool
    estimates: dict[str, dict[str, Any]]


def forest_rows(audits: dict[str, dict[str, Any]]) -> list[ForestRow]:
    """Every group of every column, labelled ``column: group (n patients)``."""
    rows = []
    for column, audit in audits.items():
        for name, entry in audit["by_group"].items():
            if not isinstance(entry, dict):
                continue
            n = entry.get("n_patients")
            label = f"{column}: {name}" + (f" (n = {n})" if n is not None else "")
            rows.append(
                ForestRow(
                    label,
                    bool(entry.get("compared", True)),
                    {k: v for k, v in entry.items() if isinstance(v, dict)},
                )
            )
    return rows


@styled
def forest_figure(audits: dict[str, dict[str, Any]]) -> str:
    """One forest plot per metric (panels side by side, shared rows): each group's value and
    CI; hollow grey markers for groups too small to compare; dashed line: all cases."""
    rows = forest_rows(audits)
    metrics = list(dict.fromkeys(m for a in audits.values() for m in audit_metrics(a)))
    ncols = min(3, len(metrics))
    nrows = int(np.ceil(len(metrics) / ncols))
    height = max(1.6, 0.24 * len(rows) + 0.9)
    fig = new_figure(3.4 * ncols + 1.6, height * nrows)
    fig.clear()
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True).ravel()
    ypos = np.arange(len(rows))[::-1]
    first = next(iter(audits.values()))
    for ax, metric in zip(axes, metrics, strict=False):
        for y, row in zip(ypos, rows, strict=False):
            e = row.estimates.get(metric) or {}
            v, lo, hi = (finite(e.get(k)) for k in ("value", "ci_low", "ci_high"))
            if v is None:
                continue
            col = "#1f77b4" if row.compared else "#9a9a9a"
            if lo is not None and hi is not None:
                ax.plot([lo, hi], [y, y], color=col, lw=1.4)
            ax.plot(
                [v],
                [y],
                "s" if row.compared else "o",
                color=col,
                ms=5,
                mfc=col if row.compared else "white",
            )
        overall = finite(((first.get("overall") or {}).get(metric) or {}).get("value"))
        if overall is not None:
            ax.axvline(overall, ls="--", lw=1, color="#d7301f")
        ax.set_title(metric_label(metric), fontsize=9)
        ax.set_yticks(ypos, [r.label for r in rows])
        ax.grid(axis="x", color="#e5e5e5", lw=0.6)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    return to_svg(fig, "fairness-forest")


def fairness_caption(audits: dict[str, dict[str, Any]], level: str) -> str:
    first = next(iter(audits.values()))
    return (
        f"Each subgroup's value with its {level} CI (patient bootstrap, stratified by group) on the "
        "pooled out-of-fold predictions; dashed red line: all cases. Filled squares: compared "
        f"groups; hollow grey circles: groups under {first.get('min_patients', DASH)} patients "
        f"or {first.get('min_events', DASH)} events, listed but not compared."
    )


def fairness_findings(audits: dict[str, dict[str, Any]]) -> list[str]:
    """Plain-text findings: gaps whose signed CI excludes 0, and groups not compared."""
    out = []
    for column, audit in audits.items():
        ref = audit.get("reference")
        for group, gaps in (audit.get("vs_reference") or {}).items():
            for metric, e in (gaps or {}).items():
                lo, hi = finite((e or {}).get("ci_low")), finite((e or {}).get("ci_high"))
                if lo is not None and hi is not None and (lo > 0 or hi < 0):
                    out.append(
                        f"Subgroup gap in {metric_label(metric)} by {column}: {group} − {ref} = "
                        f"{fmt_estimate(e)} (the interval excludes 0)."
                    )
        small = audit.get("not_compared") or []
        if small:
            out.append(
                f"{column}: group(s) {', '.join(map(str, small))} too small to compare (under "
                f"{audit.get('min_patients')} patients or {audit.get('min_events')} events); "
                "performance there is unknown."
            )
    return out
