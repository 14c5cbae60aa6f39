"""Validate a cohort before spending hours on it: ``deepradiomics validate COHORT.csv``.

Library API:
- ``validate_manifest(manifest)`` -> ``ValidationReport``: every problem, per case (CSV line)
  plus cohort-wide ones; ``report.usable(cases)`` gives the cases without errors.
- ``load_cohort(cfg)`` -> the ``Case`` records, or ``UserError`` listing the errors.

The checks live in ``row_checks`` (cells), ``case_files`` (images and masks) and
``composition`` (classes, sites, patients); this module runs them and prints the report.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from deepradiomics.cohort.case_files import check_case_files
from deepradiomics.cohort.composition import check_composition
from deepradiomics.cohort.manifest import Case, Manifest, build_cases, read_manifest, with_masks
from deepradiomics.cohort.problems import Problem, ValidationReport
from deepradiomics.cohort.row_checks import check_rows
from deepradiomics.config import CohortConfig, load_config
from deepradiomics.errors import UsageError, UserError

log = logging.getLogger(__name__)

PROGRESS_MIN_CASES = 20


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def validate_manifest(
    manifest: Manifest, targets: bool = True, workers: int | None = None, progress: bool = False
) -> ValidationReport:
    """Check every case (cells and files) and the cohort as a whole.

    ``targets=False`` skips the outcome columns (for ``predict``). File checks run in a
    thread pool (SimpleITK and zlib release the GIL while reading); ``progress`` shows a bar
    on stderr (when it is a terminal) for cohorts of ``PROGRESS_MIN_CASES`` or more.
    """
    n = len(manifest.table)
    per_line: dict[int, list[Problem]] = {manifest.line_of(i): [] for i in range(n)}
    for p in check_rows(manifest, targets=targets):
        per_line[p.line].append(p)
    workers = workers or default_workers()
    from tqdm import tqdm

    bar = tqdm(
        total=n,
        desc="validating",
        unit="case",
        file=sys.stderr,
        leave=False,
        disable=True if not progress or n < PROGRESS_MIN_CASES else None,  # None: TTY only
    )
    with bar, ThreadPoolExecutor(max_workers=workers) as pool:
        for i, found in enumerate(pool.map(lambda i: check_case_files(manifest, i), range(n))):
            per_line[manifest.line_of(i)] += found
            bar.update()
    problems = [p for line in sorted(per_line) for p in per_line[line]]
    problems += check_composition(manifest, targets=targets)
    return ValidationReport(problems=problems, n_cases=n)


def load_validated(
    cfg: CohortConfig,
    targets: bool = True,
    workers: int | None = None,
    masks: Mapping[str, Path] | None = None,
) -> tuple[Manifest, list[Case]]:
    """The manifest and its validated cases; ``UserError`` listing the errors when any.
    ``masks`` (case id -> file) fill the mask cells of those cases first (automatic masks).

    Warnings go to the ``deepradiomics.cohort.validate`` logger.
    """
    if cfg.path is None:
        raise UserError("cohort.path is not set: name the cohort CSV in the config")
    if cfg.is_npz:
        raise UserError(f"{cfg.path}: a .npz cohort has no manifest to validate")
    manifest = with_masks(read_manifest(cfg.path, cfg), masks or {})
    report = validate_manifest(manifest, targets=targets, workers=workers)
    if not report.ok:
        raise UserError(report.error_message(str(cfg.path)))
    for w in report.warnings:
        log.warning("%s", w)
    return manifest, build_cases(manifest)


def load_cohort(cfg: CohortConfig, targets: bool = True, workers: int | None = None) -> list[Case]:
    """The validated cases of a CSV cohort (see ``load_validated``)."""
    return load_validated(cfg, targets, workers)[1]


def _unconfigured(csv: Path) -> CohortConfig:
    """The cohort read without a config: default column names; the task is left unstated
    (so every recognised outcome column is checked, see ``row_checks``) unless the CSV has
    survival columns and no label column, which makes it a survival cohort."""
    defaults = CohortConfig(path=csv)
    try:
        header = [str(c).strip() for c in pd.read_csv(csv, nrows=0).columns]
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return defaults  # read_manifest reports it
    if defaults.target not in header and {defaults.time, defaults.event} <= set(header):
        return CohortConfig(path=csv, task="survival")
    return defaults


def cohort_config_for(csv: str | Path, config: str | Path | None = None) -> CohortConfig:
    """The cohort section of the experiment YAML ``config`` (if given) with ``path`` set to
    ``csv`` (what ``deepradiomics validate CSV [--config YAML]`` checks)."""
    csv = Path(csv)
    if not csv.is_file():
        raise UsageError(f"cohort file not found: {csv}")
    if not config:
        return _unconfigured(csv)
    try:
        cfg = load_config(config)
    except UserError as err:
        raise UsageError(str(err)) from None
    # re-validate so the columns the user set explicitly stay marked as set
    return CohortConfig.model_validate({**cfg.cohort.model_dump(exclude_unset=True), "path": csv})
