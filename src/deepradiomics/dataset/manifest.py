"""A CSV cohort as tensors: validate, preprocess into the cache, stack, type the targets."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from deepradiomics.cohort.manifest import Case
from deepradiomics.cohort.validate import load_validated
from deepradiomics.config import ExperimentConfig
from deepradiomics.dataset.arrays import ArrayData, CohortArrays
from deepradiomics.errors import UserError
from deepradiomics.preprocess.case import with_mask_channel
from deepradiomics.preprocess.pipeline import prepare_cohort
from deepradiomics.tasks import get_task

log = logging.getLogger(__name__)


def _sort_labels(labels: set[str]) -> list[str]:
    """Class order: numeric labels by value (0, 1, 2, 10), others alphabetically."""
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


def targets_of(task: str, cases: list[Case], classes: list[str]) -> torch.Tensor:
    """Typed targets (``Task.target_dtype``): class index, value, or (time, event)."""
    spec = get_task(task)
    dtype = getattr(torch, spec.target_dtype)
    if spec.dense:
        return torch.zeros(len(cases))  # segmentation: the masks are the targets
    if spec.classes:
        index = {c: i for i, c in enumerate(classes)}
        return torch.tensor([index[c.label] for c in cases], dtype=dtype)
    if spec.time_to_event:
        return torch.tensor([[c.time, c.event] for c in cases], dtype=dtype)
    return torch.tensor([c.value for c in cases], dtype=dtype)


def task_classes(cfg: ExperimentConfig, cases: list[Case]) -> list[str]:
    task = get_task(cfg.cohort.task)
    if not task.classes:
        return []
    classes = cfg.cohort.classes or _sort_labels({c.label for c in cases if c.label is not None})
    if task.n_classes is not None and len(classes) != task.n_classes:
        raise UserError(
            f"cohort.{cfg.cohort.target}: a {task.name} task needs {task.n_classes} "
            f"classes, found {len(classes)} ({', '.join(classes)})"
        )
    return classes


def covariate_table(
    cases: list[Case], numeric: list[str], categorical: list[str]
) -> pd.DataFrame | None:
    if not numeric and not categorical:
        return None
    rows = [{col: c.covariates.get(col) for col in numeric + categorical} for c in cases]
    table = pd.DataFrame(rows, columns=numeric + categorical)
    for col in categorical:
        table[col] = table[col].fillna("").astype(str)
    return table


def csv_arrays(cfg: ExperimentConfig, run_dir: Path) -> CohortArrays:
    """Validated, preprocessed cases of a CSV cohort; cases that fail preprocessing are
    left out with their reason (in ``failures``) and the rest go on."""
    manifest, cases = load_validated(cfg.cohort)
    out = run_dir / "preprocess"
    prepared = prepare_cohort(
        cases,
        manifest.columns.modalities,
        cfg.preprocess,
        cfg.preprocess.cache_dir or out / "cache",
    )
    prepared.save(out)
    for failure in prepared.failures:
        log.warning("left out: %s", failure)
    kept = [c for c in cases if c.case_id in prepared.keys]
    if not kept:
        raise UserError(f"{cfg.cohort.path}: no case could be preprocessed")
    images, masks, ids = prepared.load_all([c.case_id for c in kept])
    if cfg.preprocess.mask_channel:
        images = with_mask_channel(images, masks, f"{cfg.cohort.path}: a case")
    task = cfg.cohort.task
    classes = task_classes(cfg, kept)
    data = ArrayData(
        images=torch.from_numpy(images),
        targets=targets_of(task, kept, classes),
        case_ids=tuple(ids),
        patient_ids=tuple(c.patient_id for c in kept),
        masks=None if masks is None else torch.from_numpy(masks),
    )
    cols = manifest.columns
    sites = np.array([c.site or "unknown" for c in kept]) if cols.site else None
    plan = prepared.plan
    return CohortArrays(
        task=task,
        data=data,
        classes=classes,
        sites=sites,
        covariates=covariate_table(kept, cols.covariates_numeric, cols.covariates_categorical),
        numeric_covariates=tuple(cols.covariates_numeric),
        spacing=tuple(plan.spacing),
        anisotropic=plan.anisotropic,
        plan=plan,
        prepared=prepared,
        failures=[str(f) for f in prepared.failures],
        cases=tuple(kept),
    )
