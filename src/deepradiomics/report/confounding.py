"""The confounding audit's tables (``metrics.audit``, written by ``experiment.site_audit``)."""

from __future__ import annotations

from typing import Any

from deepradiomics.report.formatting import fmt_estimate, fmt_number, fmt_p
from deepradiomics.report.tables import Grid

REPRESENTATIONS = {
    "cnn": "CNN embeddings",
    "classical": "classical features",
    "intensity": "intensity statistics",
}


def site_probe_grid(audit: dict[str, Any]) -> Grid:
    """One row per representation: site AUC and balanced accuracy with CIs, chance, p."""
    rows = []
    for rep, probe in (audit.get("site_probe") or {}).items():
        chance = probe.get("chance") or {}
        rows.append(
            [
                REPRESENTATIONS.get(rep, rep),
                fmt_estimate(probe.get("auc") or {}),
                fmt_estimate(probe.get("balanced_accuracy") or {}),
                f"{fmt_number(chance.get('auc'))} / {fmt_number(chance.get('balanced_accuracy'))}",
                fmt_p(probe.get("p_permutation")),
                probe.get("cases", ""),
            ]
        )
    return Grid(
        [
            "site predicted from",
            "macro AUC",
            "balanced accuracy",
            "chance (AUC / bal. acc.)",
            "permutation p",
            "cases",
        ],
        rows,
    )


def outcome_grid(audit: dict[str, Any]) -> Grid:
    """The site-only outcome baseline and the leave-one-site-out gap."""
    rows = []
    for metric, est in (audit.get("site_only") or {}).items():
        rows.append([f"outcome from the site alone ({metric})", fmt_estimate(est)])
    for metric, gap in (audit.get("loso_gap") or {}).items():
        rows.append(
            [
                f"leave-one-site-out − {gap.get('random_split_scheme', 'random split')} "
                f"({metric}; {fmt_number(gap.get('loso'))} vs "
                f"{fmt_number(gap.get('random_split'))})",
                fmt_estimate(gap),
            ]
        )
    return Grid(["", "value [CI]"], rows)
