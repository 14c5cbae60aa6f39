"""Cohort-wide checks: class counts, sites, patients (problems not owned by one case)."""

from __future__ import annotations

from collections import Counter, defaultdict

from deepradiomics.cohort.manifest import Manifest
from deepradiomics.cohort.problems import Problem
from deepradiomics.cohort.row_checks import as_number, is_missing
from deepradiomics.tasks import get_task

MIN_SITE_CASES = 5
MIN_CLASS_FRACTION = 0.10


def _cases(manifest: Manifest, indices: list[int], limit: int = 5) -> str:
    """``case a (line 2), case b (line 5)``: the rows named by case id and CSV line."""
    ids = manifest.table[manifest.columns.case_id]
    shown = ", ".join(
        f"case {ids.iloc[i]} (line {manifest.line_of(i)})"
        if ids.iloc[i]
        else f"line {manifest.line_of(i)}"
        for i in indices[:limit]
    )
    more = f", ... ({len(indices)} in all)" if len(indices) > limit else ""
    return shown + more


def outcome_per_row(manifest: Manifest) -> list[str | None]:
    """The outcome class of each row for balance checks: the label, or 'event'/'censored'."""
    cfg, cols, table = manifest.cohort, manifest.columns, manifest.table
    task = get_task(cfg.task)
    if task.classes and cols.target:
        ok = set(cfg.classes) if cfg.classes is not None else None
        return [
            None if is_missing(v) or (ok is not None and v not in ok) else v
            for v in table[cols.target]
        ]
    if task.time_to_event and cols.event:
        return [
            {1.0: "event", 0.0: "censored"}.get(as_number(v)) if not is_missing(v) else None
            for v in table[cols.event]
        ]
    return [None] * len(table)


def check_composition(manifest: Manifest, targets: bool = True) -> list[Problem]:
    """Cohort-wide problems (every ``Problem.line`` is None)."""
    if manifest.table.empty:
        return [Problem("error", "the cohort has no cases (the CSV holds only a header)")]
    problems: list[Problem] = []
    outcomes = outcome_per_row(manifest) if targets else [None] * len(manifest.table)
    if targets:
        problems += _class_problems(manifest, outcomes)
    problems += _site_problems(manifest, outcomes)
    problems += _patient_problems(manifest)
    return problems


def _class_problems(manifest: Manifest, outcomes: list[str | None]) -> list[Problem]:
    cfg, cols = manifest.cohort, manifest.columns
    problems: list[Problem] = []
    counts = Counter(o for o in outcomes if o is not None)
    task = get_task(cfg.task)
    fixed = task.n_classes
    if task.classes and cols.target:
        col = cols.target
        if fixed is not None and cfg.classes is not None and len(cfg.classes) != fixed:
            problems.append(
                Problem(
                    "error",
                    f"{task.name} task but cohort.classes lists {len(cfg.classes)} classes",
                    column=col,
                )
            )
        if fixed is not None and cfg.classes is None and len(counts) > fixed:
            rows: dict[str, list[int]] = defaultdict(list)
            for i, o in enumerate(outcomes):
                if o is not None:
                    rows[o].append(i)
            # the cases of the values beyond the two most common are the likely typos
            detail = "; ".join(
                f"'{v}' x{n}" + (f" ({_cases(manifest, rows[v])})" if rank >= 2 else "")
                for rank, (v, n) in enumerate(counts.most_common())
            )
            problems.append(
                Problem(
                    "error",
                    f"binary task but {len(counts)} distinct labels: {detail}; fix the labels or "
                    "declare cohort.classes (or use task: multiclass)",
                    column=col,
                )
            )
        elif len(counts) == 1:
            (only,) = counts
            problems.append(
                Problem(
                    "error",
                    f"every labelled case has the label '{only}'; a classifier needs two "
                    "classes or more",
                    column=col,
                )
            )
        if cfg.classes is not None:
            for c in cfg.classes:
                if c not in counts:
                    problems.append(
                        Problem("warning", f"declared class '{c}' has no case", column=col)
                    )
    if task.time_to_event and cols.event and counts and "event" not in counts:
        problems.append(
            Problem(
                "error",
                "no case has an event (every case is censored); a survival model cannot be fitted",
                column=cols.event,
            )
        )
    total = sum(counts.values())
    if len(counts) >= 2:
        name, n = min(counts.items(), key=lambda kv: kv[1])
        if n / total < MIN_CLASS_FRACTION:
            col = cols.event if task.time_to_event else cols.target
            problems.append(
                Problem(
                    "warning",
                    f"heavy class imbalance: '{name}' is {n} of {total} cases ({n / total:.1%})",
                    column=col,
                )
            )
    return problems


def _site_problems(manifest: Manifest, outcomes: list[str | None]) -> list[Problem]:
    col = manifest.columns.site
    if not col:
        return []
    sites = [None if is_missing(s) else s for s in manifest.table[col]]
    problems: list[Problem] = []
    per_site = Counter(s for s in sites if s is not None)
    for site, n in sorted(per_site.items()):
        if n < MIN_SITE_CASES:
            problems.append(
                Problem(
                    "warning",
                    f"site '{site}' has only {n} case{'s' * (n != 1)} (fewer than "
                    f"{MIN_SITE_CASES}); per-site results will be very uncertain",
                    column=col,
                )
            )
    all_classes = {o for o in outcomes if o is not None}
    if len(all_classes) >= 2:
        site_classes: dict[str, set[str]] = defaultdict(set)
        for s, o in zip(sites, outcomes, strict=False):
            if s is not None and o is not None:
                site_classes[s].add(o)
        for site, seen in sorted(site_classes.items()):
            if len(seen) == 1:
                (only,) = seen
                problems.append(
                    Problem(
                        "warning",
                        f"site '{site}' has a single outcome class ('{only}'): site and "
                        "outcome are confounded there",
                        column=col,
                    )
                )
    return problems


def _patient_problems(manifest: Manifest) -> list[Problem]:
    cols, table = manifest.columns, manifest.table
    if not cols.site or not cols.patient_id:
        return []
    where: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, (patient, site) in enumerate(
        zip(table[cols.patient_id], table[cols.site], strict=False)
    ):
        if patient and not is_missing(site):
            where[patient][site].append(i)
    problems: list[Problem] = []
    for patient, sites in where.items():
        if len(sites) > 1:
            detail = "; ".join(f"'{s}' ({_cases(manifest, rows)})" for s, rows in sites.items())
            problems.append(
                Problem(
                    "warning",
                    f"patient '{patient}' has rows at {len(sites)} sites: {detail}",
                    column=cols.site,
                )
            )
    return problems
