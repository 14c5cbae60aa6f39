"""The run's fairness audit: the CNN's out-of-fold predictions per subgroup column.

The columns are the site and every ``cohort.subgroups`` column (values as in the manifest;
missing values form their own group); the numbers come from ``audit.fairness``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepradiomics.audit.fairness import FAIRNESS_METRICS, Outcomes, subgroup_audit
from deepradiomics.config import ExperimentConfig
from deepradiomics.dataset.arrays import CohortArrays
from deepradiomics.experiment.evaluation import ModelPredictions


def subgroup_columns(cfg: ExperimentConfig, arrays: CohortArrays) -> dict[str, np.ndarray]:
    """``{column: group label per case}``: the site (when the cohort has several) and each
    configured subgroup column."""
    columns: dict[str, np.ndarray] = {}
    if arrays.sites is not None and len(arrays.site_names) > 1:
        columns[cfg.cohort.site] = np.asarray(arrays.sites).astype(str)
    for col in cfg.cohort.subgroups:
        if col == cfg.cohort.site or not arrays.cases:
            continue
        columns[col] = np.array([c.subgroups.get(col) or "" for c in arrays.cases], dtype=object)
    return columns


def fairness_metrics(
    cfg: ExperimentConfig,
    arrays: CohortArrays,
    model: ModelPredictions,
    threshold: float | np.ndarray | None,
) -> dict[str, Any]:
    """``{column: subgroup_audit(...)}`` of ``model``'s pooled test predictions (empty when
    there is no subgroup column or the task has no fairness metrics)."""
    columns = subgroup_columns(cfg, arrays)
    if not columns or arrays.task not in FAIRNESS_METRICS:
        return {}
    idx, score = model.stacked()
    targets = arrays.data.targets.numpy()
    if arrays.task == "survival":
        outcomes = Outcomes("survival", score, time=targets[idx, 0], event=targets[idx, 1])
    else:
        cut = 0.5 if threshold is None else threshold
        outcomes = Outcomes(arrays.task, score, y_true=targets[idx], threshold=cut)
    patients = np.asarray(arrays.data.patient_ids)[idx]
    rule = cfg.evaluate.fairness
    return {
        col: subgroup_audit(
            labels[idx],
            outcomes,
            patients=patients,
            n_boot=cfg.evaluate.bootstrap,
            seed=cfg.seed,
            level=cfg.evaluate.ci_level,
            min_patients=rule.min_patients,
            min_events=rule.min_events,
        )
        for col, labels in columns.items()
    }
