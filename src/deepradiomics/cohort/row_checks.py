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
            # called within this row's iteration only: the row's values are the ones meant
            problems.append(Problem(severity, message, case_id or None, line, column, file))  # noqa: B023

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
            if "mask" in get_task(cfg.task).target_keys:  # the target: not needed to predict
                if targets:
                    add("error", cols.mask, f"no mask file given (the {cfg.task} task needs one)")
            else:
                add("warning", cols.mask, "no mask file given; the whole image will be used")
        if targets:
            problems += [
                Problem(severity, msg, case_id or None, line, col)
                for severity, col, msg in _target_problems(manifest, row)
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


def _target_problems(manifest: Manifest, row) -> list[tuple[str, str, str]]:
    """(severity, column, message) for each invalid outcome cell of one row.

    The configured task's outcome columns must be valid. When the task was not stated (no
    config, or a config without ``cohort.task``), the other recognised outcome columns are
    checked too: a malformed value is an error (it breaks the task that uses the column), a
    missing one a warning.
    """
    cfg = manifest.cohort
    found = [("error", col, msg) for col, msg, _ in _outcome_cells(manifest, cfg.task, row)]
    if "task" not in cfg.model_fields_set:
        other = "binary" if cfg.task == "survival" else "survival"
        found += [
            ("warning" if missing else "error", col, msg)
            for col, msg, missing in _outcome_cells(manifest, other, row)
        ]
    return found


def _outcome_cells(manifest: Manifest, task: str, row) -> list[tuple[str, str, bool]]:
    """(column, message, whether the cell is missing) for each invalid cell of ``task``'s
    outcome columns (those present) in one row."""
    cfg, cols = manifest.cohort, manifest.columns
    found: list[tuple[str, str, bool]] = []

    def missing(col: str, what: str) -> bool:
        if is_missing(row[col]):
            found.append((col, f"{what} is missing{_shown(row[col])}", True))
            return True
        return False

    spec = get_task(task)
    if spec.classes and cols.target:
        label = row[cols.target]
        if (
            not missing(cols.target, "label")
            and cfg.classes is not None
            and label not in cfg.classes
        ):
            found.append(
                (
                    cols.target,
                    f"label '{label}' is not one of the declared classes "
                    f"({', '.join(cfg.classes)})",
                    False,
                )
            )
    elif spec.target_keys == ("target",) and cols.target:  # a value (regression)
        cell = row[cols.target]
        if not missing(cols.target, "target value") and as_number(cell) is None:
            found.append(
                (cols.target, f"target '{cell}' is not a finite number (regression)", False)
            )
    elif spec.time_to_event:
        if cols.time and not missing(cols.time, "survival time"):
            time = row[cols.time]
            if (t := as_number(time)) is None:
                found.append((cols.time, f"survival time '{time}' is not a number", False))
            elif t <= 0:
                found.append((cols.time, f"survival time {time} is not positive", False))
        if cols.event and not missing(cols.event, "event"):
            event = row[cols.event]
            if as_number(event) not in (0.0, 1.0):
                found.append((cols.event, f"event '{event}' is not 0 or 1", False))
    return found


def _shown(cell: str) -> str:
    return f" ('{cell}')" if cell else ""
