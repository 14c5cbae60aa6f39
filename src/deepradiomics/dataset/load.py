"""From a config's cohort to tensors: ``load_cohort_arrays`` (every usable case).

A ``.npz`` cohort (MedMNIST layout) comes with its official split (``dataset.npz``); a CSV
cohort is validated, preprocessed into the cache and stacked (``dataset.manifest``).
Covariates stay raw here: they are encoded inside each fold from training cases only
(``dataset.covariates``).
"""

from __future__ import annotations

from pathlib import Path

from deepradiomics.config import ExperimentConfig
from deepradiomics.dataset.arrays import CohortArrays
from deepradiomics.dataset.manifest import csv_arrays
from deepradiomics.dataset.npz import npz_arrays
from deepradiomics.errors import UserError


def load_cohort_arrays(cfg: ExperimentConfig, run_dir: Path) -> CohortArrays:
    """Every usable case of the configured cohort as tensors (see the module docstring)."""
    if cfg.cohort.path is None:
        raise UserError("cohort.path: no cohort given (a CSV manifest or a .npz file)")
    if cfg.cohort.is_npz:
        return npz_arrays(cfg)
    return csv_arrays(cfg, run_dir)
