"""A CSV cohort as tensors: validate, preprocess into the cache, stack, type the targets."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from deepradiomics.cohort.manifest import Case, Manifest
from deepradiomics.cohort.validate import load_validated
from deepradiomics.config import ExperimentConfig
from deepradiomics.dataset.arrays import ArrayData, CohortArrays
from deepradiomics.dataset.stored import StoredArray, write_stacked
from deepradiomics.errors import UserError
from deepradiomics.preprocess.case import with_mask_channel
from deepradiomics.preprocess.pipeline import (
    FingerprintedCases,
    PreparedCohort,
    fingerprint_cases,
    prepare_planned,
)
from deepradiomics.preprocess.plan import fitted_parts
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


def case_arrays(
    prepared: PreparedCohort,
    ids: list[str],
    mask_channel: bool,
    budget_mb: float,
    folder: Path,
) -> tuple[torch.Tensor | StoredArray, torch.Tensor | StoredArray | None]:
    """Images ``[N, C, D, H, W]`` and masks ``[N, D, H, W]`` (``None`` unless every case has
    one) of the cases ``ids``: tensors in memory, or, above ``budget_mb``, ``StoredArray``s
    streamed case by case into a subfolder of ``folder`` named by the plan and the cases
    (rewritten each time: the cache is the truth)."""
    channels = len(prepared.plan.modalities) + int(mask_channel)
    shape = tuple(prepared.plan.shape)
    image_bytes = len(ids) * channels * int(np.prod(shape)) * 4
    if image_bytes <= budget_mb * 2**20:
        images, masks, _ = prepared.load_all(ids)
        if mask_channel:
            images = with_mask_channel(images, masks, f"{prepared.cache_dir}: a case")
        return torch.from_numpy(images), None if masks is None else torch.from_numpy(masks)
    log.info(
        "%d cases, %.0f MB: above train.memory_budget_mb, read from disk",
        len(ids),
        image_bytes / 2**20,
    )
    every_mask = all(prepared.meta(cid).get("mask_voxels") is not None for cid in ids)

    def image_rows():
        for cid in ids:
            image, mask, _ = prepared.load_case(cid)
            yield with_mask_channel(image, mask, f"case {cid}") if mask_channel else image

    def mask_rows():
        for cid in ids:
            _, mask, _ = prepared.load_case(cid)
            yield mask

    n = len(ids)
    key = json.dumps([prepared.plan.to_dict(), ids, mask_channel], sort_keys=True, default=str)
    folder = folder / hashlib.blake2b(key.encode(), digest_size=8).hexdigest()
    images = write_stacked(folder / "images.npy", image_rows(), n, (channels, *shape), np.float32)
    if not every_mask:
        return StoredArray(images), None
    masks = write_stacked(folder / "masks.npy", mask_rows(), n, shape, np.uint8)
    return StoredArray(images), StoredArray(masks)


@dataclass
class CsvSource:
    """A CSV cohort validated and fingerprinted, before any plan: ``labels`` (ids, targets,
    sites, covariates of the readable cases; no images) is enough to make the splits, and
    ``prepare`` / ``stack`` then preprocess under a plan fitted on any subset of cases."""

    cfg: ExperimentConfig
    manifest: Manifest
    cases: list[Case]  # validated cases that could be read, manifest order
    fingerprinted: FingerprintedCases
    out: Path  # run_dir/preprocess: fingerprint.json, plan.json, cases.json
    automatic: Mapping[str, Path] = field(default_factory=dict)  # cohort.mask_from masks

    def labels(self) -> CohortArrays:
        """Every readable case without images (``images`` is ``[N, 0, 0, 0, 0]``)."""
        return self.stack(None, [c.case_id for c in self.cases])

    def prepare(self, plan_cases: Collection[str] | None = None) -> PreparedCohort:
        """Every readable case prepared under the plan fitted on ``plan_cases`` (default:
        every readable case); cases prepared before under the same plan come from the cache."""
        pre = self.cfg.preprocess
        plan = self.fingerprinted.plan(pre, plan_cases)
        return prepare_planned(self.fingerprinted, plan, workers=pre.workers)

    def stack(
        self,
        prepared: PreparedCohort | None,
        case_ids: Sequence[str],
        plan_fit: dict[str, Any] | None = None,
        failures: Sequence[object] = (),
    ) -> CohortArrays:
        """``case_ids`` (in manifest order) as tensors, images from ``prepared`` (``None``:
        labels only); ``failures``: every case left out and why."""
        cfg = self.cfg
        keep = set(case_ids)
        kept = [c for c in self.cases if c.case_id in keep]
        if not kept:
            raise UserError(f"{cfg.cohort.path}: no case could be preprocessed")
        ids = [c.case_id for c in kept]
        masks = None
        if prepared is None:
            images = torch.empty((len(kept), 0, 0, 0, 0))
        else:
            images, masks = case_arrays(
                prepared,
                ids,
                cfg.preprocess.mask_channel,
                cfg.train.memory_budget_mb,
                self.out / "arrays",
            )
        task = cfg.cohort.task
        classes = task_classes(cfg, kept)
        data = ArrayData(
            images=images,
            targets=targets_of(task, kept, classes),
            case_ids=tuple(ids),
            patient_ids=tuple(c.patient_id for c in kept),
            masks=masks,
        )
        cols = self.manifest.columns
        sites = np.array([c.site or "unknown" for c in kept]) if cols.site else None
        plan = None if prepared is None else prepared.plan
        return CohortArrays(
            task=task,
            data=data,
            classes=classes,
            sites=sites,
            covariates=covariate_table(kept, cols.covariates_numeric, cols.covariates_categorical),
            numeric_covariates=tuple(cols.covariates_numeric),
            spacing=None if plan is None else tuple(plan.spacing),
            anisotropic=False if plan is None else plan.anisotropic,
            plan=plan,
            prepared=prepared,
            failures=[str(f) for f in failures],
            cases=tuple(kept),
            plan_fit=plan_fit,
            mask_source=mask_sources(kept, self.automatic) if self.automatic else None,
        )


def mask_sources(cases: Sequence[Case], automatic: Mapping[str, Path]) -> np.ndarray:
    """Per case: ``automatic`` (its mask came from a segmentation bundle), ``drawn`` or
    ``none``."""
    return np.array(
        [
            "automatic" if c.case_id in automatic else ("drawn" if c.mask is not None else "none")
            for c in cases
        ]
    )


def open_csv(
    cfg: ExperimentConfig, run_dir: Path, automatic: Mapping[str, Path] | None = None
) -> CsvSource:
    """Validate the CSV cohort and fingerprint its cases (cached); unreadable cases are left
    out with their reason. ``automatic``: masks (case id -> file) for rows without a drawn
    one (``cohort.mask_from``)."""
    manifest, cases = load_validated(cfg.cohort, masks=automatic)
    out = run_dir / "preprocess"
    fingerprinted = fingerprint_cases(
        cases,
        manifest.columns.modalities,
        cfg.preprocess.cache_dir or out / "cache",
        workers=cfg.preprocess.workers,
    )
    for failure in fingerprinted.failures:
        log.warning("left out: %s", failure)
    readable = [c for c in cases if c.case_id in fingerprinted.digests]
    if not readable:
        raise UserError(f"{cfg.cohort.path}: no case could be preprocessed")
    return CsvSource(cfg, manifest, readable, fingerprinted, out, dict(automatic or {}))


def plan_fit(scope: str, cases: Sequence[Case], fitted: Sequence[str]) -> dict[str, Any]:
    """What a plan saw: ``scope`` in words, its cases, patients and cases per site, and the
    plan parts fitted on them (``plan.fitted_parts``; none: every value was configured)."""
    sites: dict[str, int] = {}
    for c in cases:
        sites[c.site or "unknown"] = sites.get(c.site or "unknown", 0) + 1
    return {
        "scope": scope,
        "cases": len(cases),
        "patients": len({c.patient_id for c in cases}),
        "sites": dict(sorted(sites.items())),
        "fitted": list(fitted),
    }


def csv_arrays(
    cfg: ExperimentConfig, run_dir: Path, automatic: Mapping[str, Path] | None = None
) -> CohortArrays:
    """Validated, preprocessed cases of a CSV cohort, planned on every readable case (the
    ``preprocess`` command's view; experiments plan per fold, ``dataset.planning``); cases
    that fail are left out with their reason (in ``failures``) and the rest go on."""
    source = open_csv(cfg, run_dir, automatic)
    prepared = source.prepare()
    prepared.save(source.out)
    for failure in prepared.failures:
        if failure.stage == "preprocess":
            log.warning("left out: %s", failure)
    modalities = source.manifest.columns.modalities
    fit = plan_fit("every case", source.cases, fitted_parts(cfg.preprocess, modalities))
    return source.stack(prepared, list(prepared.keys), fit, prepared.failures)
