"""The files of a run folder that describe the cohort and the predictions.

``cohort.json`` (aggregates only) and ``predictions.csv`` (one row per tested case); the
layout is the run-folder contract the report reads.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from deepradiomics.dataset.arrays import CohortArrays
from deepradiomics.experiment.evaluation import ModelPredictions
from deepradiomics.tasks import get_task


def _outcome_summary(task: str, targets: np.ndarray) -> dict[str, Any]:
    spec = get_task(task)
    if spec.dense:
        return {}
    if spec.time_to_event:
        return {"events": int(targets[:, 1].sum()), "median_time": float(np.median(targets[:, 0]))}
    if not spec.classes:
        return {"mean": float(np.mean(targets))}
    if spec.scores_per_class:
        return {"per_class": np.bincount(targets.astype(int)).tolist()}
    return {"positives": int(targets.sum())}


def cohort_summary(arrays: CohortArrays, plan_fit: dict[str, Any] | None = None) -> dict[str, Any]:
    """Counts per site, outcome balance, covariate missingness, the preprocessing plan (the
    first fold's) and what the plans saw (``plan_fit``: ``FoldCohorts.record``)."""
    d = arrays.data
    targets = d.targets.numpy()
    summary: dict[str, Any] = {
        "n_cases": len(d),
        "n_patients": len(set(d.patient_ids)),
        "task": arrays.task,
        "classes": arrays.classes,
        "channels": int(d.images.shape[1]),
        "input_shape": list(d.images.shape[2:]),
        **_outcome_summary(arrays.task, targets),
        "left_out": arrays.failures,
    }
    if arrays.mask_source is not None:
        sources, counts = np.unique(arrays.mask_source, return_counts=True)
        summary["mask_sources"] = {str(s): int(c) for s, c in zip(sources, counts, strict=True)}
    if arrays.plan is not None:
        summary["modalities"] = arrays.plan.channels
        summary["plan"] = arrays.plan.to_dict()
        if plan_fit is not None:
            summary["plan_fit"] = plan_fit
    if arrays.sites is not None:
        sites = {}
        for s in arrays.site_names:
            keep = arrays.sites == s
            sites[s] = {
                "n_cases": int(keep.sum()),
                "n_patients": len(set(np.asarray(d.patient_ids)[keep])),
                **_outcome_summary(arrays.task, targets[keep]),
            }
        summary["sites"] = sites
    if arrays.covariates is not None:
        cov = {}
        for col in arrays.covariates.columns:
            values = arrays.covariates[col]
            if col in arrays.numeric_covariates:
                v = pd.to_numeric(values, errors="coerce")
                cov[col] = {"missing": int(v.isna().sum()), "mean": float(v.mean())}
            else:
                cov[col] = {
                    "missing": int((values == "").sum()),
                    "levels": sorted(set(values) - {""}),
                }
        summary["covariates"] = cov
    return summary


def _score_columns(task: str, name: str, score: np.ndarray) -> dict[str, np.ndarray]:
    """``cnn_prob`` / ``cnn_pred`` / ``cnn_risk`` (``Task.score_column``), or one
    ``cnn_prob_<k>`` per class."""
    spec = get_task(task)
    col = f"{name}_{spec.score_column}"
    if spec.scores_per_class:
        return {f"{col}_{k}": score[:, k] for k in range(score.shape[1])}
    return {col: score}


def predictions_table(
    arrays: CohortArrays,
    models: list[ModelPredictions],
    std: np.ndarray | None,
    thresholds: dict[str, list[float]] | None = None,
) -> pd.DataFrame:
    """One row per tested case (first model's order): ids, fold, truth, each model's scores
    and (binary, ``thresholds``: the model's per-fold cuts) the threshold its fold applied."""
    d = arrays.data
    first = models[0]
    idx, _ = first.stacked()
    fold = np.concatenate([[f.fold] * len(f.test) for f in first.folds])
    table = pd.DataFrame(
        {
            "case_id": np.asarray(d.case_ids)[idx],
            "patient_id": np.asarray(d.patient_ids)[idx],
            "site": arrays.sites[idx] if arrays.sites is not None else "",
            "fold": fold,
        }
    )
    if arrays.mask_source is not None:  # cohort.mask_from: which masks are automatic
        table["mask_source"] = arrays.mask_source[idx]
    targets = d.targets.numpy()
    truth = get_task(arrays.task).truth_columns
    if truth == ("time", "event"):
        table["time"], table["event"] = targets[idx, 0], targets[idx, 1].astype(int)
    elif truth:
        table["y_true"] = targets[idx]
    for model in models:
        m_idx, score = model.stacked()
        order = pd.Series(np.arange(len(m_idx)), index=m_idx)[idx].to_numpy()
        for col, values in _score_columns(arrays.task, model.name, score[order]).items():
            table[col] = values
    for model in models:
        cuts = (thresholds or {}).get(model.name)
        if cuts:
            table[f"{model.name}_threshold"] = table["fold"].map(
                {f.fold: c for f, c in zip(model.folds, cuts, strict=False)}
            )
    if std is not None:
        table[f"{first.name}_std"] = std
    return table
