"""Checks of the CSV cells of each row: ids, targets, covariates, empty file cells."""

from __future__ import annotations

import math

from deepradiomics.cohort.manifest import Manifest
from deepradiomics.cohort.problems import Problem
from deepradiomics.tasks import get_task

# Cells read as "missing" (the CSV is read with every cell a string and no NA parsing).
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "none", "null", "?"})


def is_missing(cell: str) -> bool:
    return cell.strip().lower() in MISSING_TOKENS


def as_number(cell: str) -> float | None:
    """The cell as a finite float, or None when it is not one."""
    try:
        v = float(cell)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def check_rows(manifest: Manifest, targets: bool = True) -> list[Problem]:
    """Per-row problems, in row order; ``targets=False`` skips outcome columns (prediction)."""
    cfg, cols = manifest.cohort, manifest.columns
    problems: list[Problem] = []
    first_line: dict[str, int] = {}
    for index, row in manifest.table.iterrows():
        line = manifest.line_of(int(index))
        case_id = row[cols.case_id]

        def add(severity: str, column: str, message: str, file: str | None = None) -> None:
            problems.append(Problem(severity, message, case_id or None, line, column, file))

        if not case_id:
            add("error", cols.case_id, "case id is empty")
        elif case_id in first_line:
            first = first_line[case_id]
            add("error", cols.case_id, f"case id '{case_id}' is already used on line {first}")
        else:
            first_line[case_id] = line
        for mod in cols.modalities.values():
            if not row[mod.column]:
                add("error", mod.column, "no image file given")
        if cols.mask and not row[cols.mask]:
            if "mask" in get_task(cfg.task).target_keys:
                add("error", cols.mask, f"no mask file given (the {cfg.task} task needs one)")
            else:
                add("warning", cols.mask, "no mask file given; the whole image will be used")
        if targets:
            problems += [
                Problem("error", msg, case_id or None, line, col)
                for col, msg in _target_problems(manifest, row)
            ]
        for col in cols.covariates_numeric:
            cell = row[col]
            if is_missing(cell):
                add("warning", col, "covariate value is missing")
            elif as_number(cell) is None:
                add("error", col, f"'{cell}' is not a number (numeric covariate)")
        for col in [*cols.covariates_categorical, *cols.subgroups]:
            if is_missing(row[col]):
                add("warning", col, "value is missing")
        if cols.site and is_missing(row[cols.site]):
            add("warning", cols.site, "site is missing")
    return problems


def _target_problems(manifest: Manifest, row) -> list[tuple[str, str]]:
    """(column, message) for each invalid outcome cell of one row."""
    cfg, cols = manifest.cohort, manifest.columns
    found: list[tuple[str, str]] = []
    task = get_task(cfg.task)
    if task.classes and cols.target:
        label = row[cols.target]
        if is_missing(label):
            found.append((cols.target, f"label is missing{_shown(label)}"))
        elif cfg.classes is not None and label not in cfg.classes:
            found.append(
                (cols.target, f"label '{label}' is not one of the declared classes "
                              f"({', '.join(cfg.classes)})")
            )
    elif task.target_keys == ("target",) and cols.target:  # a value (regression)
        cell = row[cols.target]
        if is_missing(cell):
            found.append((cols.target, f"target value is missing{_shown(cell)}"))
        elif as_number(cell) is None:
            found.append((cols.target, f"target '{cell}' is not a finite number (regression)"))
    elif task.time_to_event:
        time, event = row[cols.time], row[cols.event]
        if is_missing(time):
            found.append((cols.time, f"survival time is missing{_shown(time)}"))
        elif (t := as_number(time)) is None:
            found.append((cols.time, f"survival time '{time}' is not a number"))
        elif t <= 0:
            found.append((cols.time, f"survival time {time} is not positive"))
        if is_missing(event):
            found.append((cols.event, f"event is missing{_shown(event)}"))
        elif as_number(event) not in (0.0, 1.0):
            found.append((cols.event, f"event '{event}' is not 0 or 1"))
    return found


def _shown(cell: str) -> str:
    return f" ('{cell}')" if cell else ""
