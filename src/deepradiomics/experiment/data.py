"""From a config's cohort to tensors: ``load_cohort_arrays`` (every case) and ``single_split``.

A ``.npz`` cohort (MedMNIST layout) comes with its official split; a CSV cohort is
validated (``cohort.validate.load_cohort``), preprocessed into the cache
(``preprocess.pipeline.prepare_cohort``) and stacked. Covariates stay raw here: they are
encoded inside each fold from training cases only (``experiment.covariates``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from deepradiomics.config import ExperimentConfig
from deepradiomics.errors import UserError
from deepradiomics.tasks import get_task
from deepradiomics.train.data import NPZ_SPLITS, ArrayData, load_npz


@dataclass(frozen=True)
class CohortArrays:
    """Every case of a cohort as tensors, plus what the model and the splits need."""

    task: str
    data: ArrayData
    classes: list[str]
    sites: np.ndarray | None = None  # site name per case
    official: np.ndarray | None = None  # train/val/test per case (.npz cohorts)
    covariates: pd.DataFrame | None = None  # raw covariates, one row per case
    numeric_covariates: tuple[str, ...] = ()
    spacing: tuple[float, float, float] | None = None
    anisotropic: bool = False
    plan: object | None = None  # preprocess.plan.Plan for CSV cohorts
    prepared: object | None = None  # preprocess.pipeline.PreparedCohort for CSV cohorts
    failures: list = field(default_factory=list)  # cases that could not be prepared
    cases: tuple = ()  # cohort.manifest.Case records (CSV cohorts), aligned with data

    @property
    def in_channels(self) -> int:
        return int(self.data.images.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.classes) if get_task(self.task).classes else 0

    @property
    def site_names(self) -> list[str]:
        return [] if self.sites is None else sorted(set(self.sites.tolist()))

    def strata(self) -> np.ndarray | None:
        from deepradiomics.evaluate.splits import stratification_labels

        t = self.data.targets.numpy()
        task = get_task(self.task)
        if task.time_to_event:
            return stratification_labels(self.task, event=t[:, 1])
        return stratification_labels(self.task, target=None if task.dense else t)


def _npz_arrays(cfg: ExperimentConfig) -> CohortArrays:
    if not get_task(cfg.cohort.task).classes:
        raise UserError(f"cohort.task: a .npz cohort holds class labels; task '{cfg.cohort.task}' "
                        "needs a CSV cohort")
    parts = load_npz(cfg.cohort.path)
    images = torch.cat([parts[s].images for s in NPZ_SPLITS])
    targets = torch.cat([parts[s].targets for s in NPZ_SPLITS])
    ids = sum((parts[s].case_ids for s in NPZ_SPLITS), ())
    classes = cfg.cohort.classes or [str(c) for c in range(int(targets.max().item()) + 1)]
    task = "binary" if len(classes) == 2 else "multiclass"
    if task == "multiclass":
        targets = targets.long()
    data = ArrayData(images=images, targets=targets, case_ids=ids, patient_ids=ids)
    official = np.concatenate([[s] * len(parts[s]) for s in NPZ_SPLITS])
    return CohortArrays(task=task, data=data, classes=classes, official=official)


def load_cohort_arrays(cfg: ExperimentConfig, run_dir: Path) -> CohortArrays:
    """Every usable case of the configured cohort as tensors (see the module docstring)."""
    if cfg.cohort.path is None:
        raise UserError("cohort.path: no cohort given (a CSV manifest or a .npz file)")
    if cfg.cohort.is_npz:
        return _npz_arrays(cfg)
    from deepradiomics.experiment.manifest_arrays import csv_arrays

    return csv_arrays(cfg, run_dir)


@dataclass(frozen=True)
class SingleSplit:
    parts: dict[str, ArrayData]  # train / val / test
    arrays: CohortArrays
    encoding: dict | None  # covariate encoding fitted on the training part

    @property
    def n_covariates(self) -> int:
        from deepradiomics.experiment.covariates import encoding_width

        return 0 if self.encoding is None else encoding_width(self.encoding)


def single_split(cfg: ExperimentConfig, run_dir: Path) -> SingleSplit:
    """train / val / test parts for one model: the official split, or a grouped holdout."""
    from deepradiomics.evaluate.splits import make_splits
    from deepradiomics.experiment.covariates import encode_fold

    arrays = load_cohort_arrays(cfg, run_dir)
    evaluate = cfg.evaluate
    if evaluate.split not in ("official", "holdout"):
        evaluate = evaluate.model_copy(update={"split": "official" if arrays.official is not None else "holdout"})
    splits = make_splits(evaluate, case_ids=arrays.data.case_ids, patient_ids=arrays.data.patient_ids,
                         strata=arrays.strata(), sites=arrays.sites, official=arrays.official,
                         val_fraction=cfg.train.val_fraction, seed=cfg.seed)
    splits.to_csv(run_dir / "splits.csv")
    index = {role: splits.indices(0, role, arrays.data.case_ids) for role in ("train", "val", "test")}
    data, encoding = encode_fold(arrays, index["train"])
    return SingleSplit({role: data.subset(idx) for role, idx in index.items()}, arrays, encoding)
