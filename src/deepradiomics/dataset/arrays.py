"""Whole cohorts held in memory as tensors: ``ArrayData`` (the training loop's only view of
the data) and ``CohortArrays`` (every case of a cohort plus what models and splits need).

At radiomics crop sizes a cohort usually fits in memory (300 cases x 2 x 64^3 float32 is
0.6 GB), so there is no per-sample Dataset/DataLoader: the loop indexes batches from
resident tensors and augments them batched on the training device (see ``augment``). A
cohort above ``train.memory_budget_mb`` keeps its images (and masks) on disk as a
``StoredArray`` that reads only the rows indexed (``dataset.stored``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch

from deepradiomics.dataset.stored import StoredArray
from deepradiomics.evaluate.splits import stratification_labels
from deepradiomics.tasks import get_task


@dataclass(frozen=True)
class ArrayData:
    """Images [N, C, D, H, W] and per-case targets, aligned by row.

    ``targets``: float [N] (binary 0/1, regression), long [N] (multiclass), float [N, 2]
    (survival: time, event); ``masks`` uint8 [N, D, H, W] (segmentation or ROI);
    ``covariates`` float [N, K] with NaN where missing; ``sites`` long [N].
    """

    images: torch.Tensor | StoredArray
    targets: torch.Tensor
    case_ids: tuple[str, ...]
    patient_ids: tuple[str, ...]
    covariates: torch.Tensor | None = None
    sites: torch.Tensor | None = None
    masks: torch.Tensor | StoredArray | None = None

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, index: np.ndarray | list[int] | torch.Tensor) -> ArrayData:
        idx = torch.as_tensor(np.asarray(index), dtype=torch.long)
        pick = lambda t: (  # noqa: E731
            None if t is None else t.subset(idx) if isinstance(t, StoredArray) else t[idx]
        )
        return replace(
            self,
            images=pick(self.images),
            targets=self.targets[idx],
            case_ids=tuple(self.case_ids[i] for i in idx.tolist()),
            patient_ids=tuple(self.patient_ids[i] for i in idx.tolist()),
            covariates=pick(self.covariates),
            sites=pick(self.sites),
            masks=pick(self.masks),
        )


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
    plan_fit: dict | None = None  # what the plan saw (``dataset.manifest.plan_fit``)
    # per case "drawn" / "automatic" / "none" when cohort.mask_from completed the masks
    mask_source: np.ndarray | None = None

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
        t = self.data.targets.numpy()
        task = get_task(self.task)
        if task.time_to_event:
            return stratification_labels(self.task, event=t[:, 1])
        return stratification_labels(self.task, target=None if task.dense else t)
