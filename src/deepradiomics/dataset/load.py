"""From a config's cohort to tensors: ``load_cohort_arrays`` (every usable case).

A ``.npz`` cohort (MedMNIST layout) comes with its official split (``dataset.npz``); a CSV
cohort is validated, preprocessed into the cache and stacked (``dataset.manifest``).
Covariates stay raw here: they are encoded inside each fold from training cases only
(``dataset.covariates``). ``open_cohort`` stops before planning, so experiments can plan
from each fold's training part (``dataset.planning``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from deepradiomics.config import ExperimentConfig
from deepradiomics.dataset.arrays import CohortArrays
from deepradiomics.dataset.manifest import CsvSource, csv_arrays, open_csv
from deepradiomics.dataset.npz import npz_arrays
from deepradiomics.errors import UserError


def _check_path(cfg: ExperimentConfig) -> None:
    if cfg.cohort.path is None:
        raise UserError("cohort.path: no cohort given (a CSV manifest or a .npz file)")


def load_cohort_arrays(
    cfg: ExperimentConfig, run_dir: Path, masks: Mapping[str, Path] | None = None
) -> CohortArrays:
    """Every usable case of the configured cohort as tensors, a CSV cohort planned on every
    case (see the module docstring); ``masks``: automatic masks of CSV rows without a drawn
    one (case id -> file)."""
    _check_path(cfg)
    if cfg.cohort.is_npz:
        return npz_arrays(cfg)
    return csv_arrays(cfg, run_dir, masks)


def open_cohort(
    cfg: ExperimentConfig, run_dir: Path, masks: Mapping[str, Path] | None = None
) -> CsvSource | CohortArrays:
    """A CSV cohort validated and fingerprinted but not planned (``CsvSource``), or a
    ``.npz`` cohort's arrays (already preprocessed: nothing to plan); ``masks`` as in
    ``load_cohort_arrays``."""
    _check_path(cfg)
    if cfg.cohort.is_npz:
        return npz_arrays(cfg)
    return open_csv(cfg, run_dir, masks)
