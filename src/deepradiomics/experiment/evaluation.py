"""Out-of-fold predictions of every model -> the metric panels of ``metrics.json``.

Every model (the CNN ensemble, the classical baselines) is described the same way: per
fold, its predictions on the fold's test cases and on its own training cases (survival
curves need a Breslow baseline fitted on training predictions) and on the early-stopping
cases (binary decision threshold). From that come the pooled panel with patient-bootstrap
CIs, one panel per site, point values per fold and paired comparisons between models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from deepradiomics.config import ExperimentConfig
from deepradiomics.dataset.arrays import CohortArrays
from deepradiomics.evaluate import metrics as M
from deepradiomics.evaluate.compare import delong_test, paired_difference
from deepradiomics.evaluate.ensemble import ensemble_gain
from deepradiomics.evaluate.panel import (
    default_auc_times,
    default_ibs_times,
    metric_panel,
    subgroup_panels,
)
from deepradiomics.evaluate.primary import primary_batch_metric, primary_metric
from deepradiomics.seeds import derive_seed
from deepradiomics.tasks import get_task


@dataclass
class FoldPredictions:
    """One model's predictions in one fold (indices into the cohort): test cases, its own
    training cases (survival baselines) and out-of-sample scores on its training part (the
    fold's decision threshold); ``std`` is an ensemble's spread per test case."""

    fold: int
    test: np.ndarray
    score: np.ndarray  # per test case: probability [N] / [N, K], value, or log-risk
    train: np.ndarray | None = None
    train_score: np.ndarray | None = None
    # out-of-sample scores on the fold's own training part (validation split, out-of-bag or
    # inner cross-validation): the fold's decision threshold is chosen on them
    stop: np.ndarray = field(default_factory=lambda: np.empty(0, int))
    stop_score: np.ndarray = field(default_factory=lambda: np.empty(0))
    std: np.ndarray | None = None


@dataclass
class ModelPredictions:
    """A model's out-of-fold predictions in cohort order (rows without one are NaN)."""

    name: str
    folds: list[FoldPredictions]
    n: int

    def stacked(self) -> tuple[np.ndarray, np.ndarray]:
        """(cohort indices predicted, their scores), in fold order."""
        idx = np.concatenate([f.test for f in self.folds])
        score = np.concatenate([f.score for f in self.folds])
        return idx, score


def fold_thresholds(model: ModelPredictions, targets: np.ndarray, rule: str | float) -> list[float]:
    """``evaluate.threshold`` per fold, each on that fold's own out-of-sample training-part
    scores (never another fold's test cases); 0.5 for a fold without any."""
    return [
        M.configured_threshold(targets[f.stop], f.stop_score, rule) if len(f.stop) else 0.5
        for f in model.folds
    ]


def deployment_threshold(fold_cuts: list[float]) -> float:
    """The threshold shipped with the bundle, whose ensemble pools every fold's members: the
    mean of the folds' thresholds (no fold's test cases chose any of them)."""
    return float(np.mean(fold_cuts))


def survival_curves(
    task: str, model: ModelPredictions, targets: np.ndarray, times: np.ndarray
) -> np.ndarray | None:
    """Per-case survival at ``times`` from a Breslow baseline fitted in each fold on the
    model's training predictions; None when a fold lacks them."""
    if not get_task(task).time_to_event or any(f.train is None for f in model.folds):
        return None
    rows = []
    for f in model.folds:
        baseline = M.BreslowBaseline().fit(f.train_score, targets[f.train, 0], targets[f.train, 1])
        rows.append(baseline.predict_survival(f.score, times))
    return np.concatenate(rows)


def _panel_inputs(
    task: str, targets: np.ndarray, idx: np.ndarray, score: np.ndarray
) -> dict[str, Any]:
    if get_task(task).time_to_event:
        return {"time": targets[idx, 0], "event": targets[idx, 1], "y_score": score}
    return {"y_true": targets[idx], "y_score": score}


def _panel_arguments(
    cfg: ExperimentConfig, arrays: CohortArrays, model: ModelPredictions
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(per-case panel inputs, shared panel arguments, thresholds) of a model's out-of-fold
    predictions: the binary decision thresholds (each fold's own, applied to its test cases;
    their mean for the bundle), survival times and curves, segmentation spacing."""
    task = arrays.task
    dense = get_task(task).dense  # segmentation: scored against the masks, distances in mm
    targets = (arrays.data.masks if dense else arrays.data.targets).numpy()
    patients = np.asarray(arrays.data.patient_ids)
    idx, score = model.stacked()
    common: dict[str, Any] = {
        "groups": patients[idx],
        "n_boot": cfg.evaluate.bootstrap,
        "seed": derive_seed(cfg.seed, "bootstrap"),
        "level": cfg.evaluate.ci_level,
    }
    if dense:
        common["spacing"] = arrays.spacing
    out: dict[str, Any] = {}
    if get_task(task).n_classes == 2:  # a decision threshold per fold
        cuts = fold_thresholds(model, targets, cfg.evaluate.threshold)
        out["threshold"] = deployment_threshold(cuts)
        out["fold_thresholds"] = cuts
        common["threshold"] = np.concatenate(
            [[c] * len(f.test) for c, f in zip(cuts, model.folds, strict=False)]
        )
    if get_task(task).time_to_event:
        common["auc_times"] = default_auc_times(targets[idx, 0], targets[idx, 1])  # shared by folds
        times = default_ibs_times(targets[:, 0])
        surv = survival_curves(task, model, targets, times)
        if surv is not None:
            common.update(survival=surv, ibs_times=times)
    return _panel_inputs(task, targets, idx, score), common, out


def grouped_metrics(
    cfg: ExperimentConfig, arrays: CohortArrays, model: ModelPredictions, labels: np.ndarray
) -> dict[str, Any]:
    """One panel with CIs per value of ``labels`` (one per cohort case) over the model's
    test cases, e.g. drawn vs automatic masks."""
    inputs, common, _ = _panel_arguments(cfg, arrays, model)
    idx, _ = model.stacked()
    return subgroup_panels(arrays.task, np.asarray(labels)[idx], **inputs, **common)["subgroups"]


def model_metrics(
    cfg: ExperimentConfig, arrays: CohortArrays, model: ModelPredictions
) -> dict[str, Any]:
    """Pooled panel with CIs, per-site panels, per-fold point values, and the thresholds
    (binary: each fold's own, applied to its test cases; their mean for the bundle)."""
    task = arrays.task
    inputs, common, out = _panel_arguments(cfg, arrays, model)
    targets = (arrays.data.masks if get_task(task).dense else arrays.data.targets).numpy()
    idx, _ = model.stacked()
    if arrays.sites is not None:
        both = subgroup_panels(task, arrays.sites[idx], **inputs, **common)
        out["test"], out["per_site"] = both["pooled"], both["subgroups"]
    else:
        out["test"], out["per_site"] = metric_panel(task, **inputs, **common), {}
    per_fold = []
    offset = 0
    for f in model.folds:
        n = len(f.test)
        sub = {
            k: (v[offset : offset + n] if k in ("groups", "survival", "threshold") else v)
            for k, v in common.items()
        }
        sub["n_boot"] = 0
        panel = metric_panel(task, **_panel_inputs(task, targets, f.test, f.score), **sub)
        per_fold.append({"fold": f.fold, "n": n, **{k: v["value"] for k, v in panel.items()}})
        offset += n
    out["per_fold"] = per_fold
    return out


def compare_models(
    cfg: ExperimentConfig, arrays: CohortArrays, a: ModelPredictions, b: ModelPredictions
) -> list[dict[str, Any]]:
    """Paired patient-bootstrap difference in the primary metric, pooled and per site; for
    binary tasks also DeLong's test (pooled)."""
    task = get_task(arrays.task)
    if task.dense:
        return []
    targets = arrays.data.targets.numpy()
    idx_a, sa = a.stacked()
    idx_b, sb = b.stacked()
    order_b = pd.Series(np.arange(len(idx_b)), index=idx_b)[idx_a].to_numpy()
    sb = sb[order_b]
    patients = np.asarray(arrays.data.patient_ids)[idx_a]
    y = targets[idx_a]  # typed targets: survival rows are (time, event)
    scopes = {"pooled": np.arange(len(idx_a))}
    if arrays.sites is not None:
        sites = arrays.sites[idx_a]
        scopes.update({s: np.flatnonzero(sites == s) for s in sorted(set(sites))})
    rows = []
    for scope, keep in scopes.items():
        yk = y[keep]
        try:
            cmp = paired_difference(
                primary_metric(task.name),
                yk,
                sa[keep],
                sb[keep],
                groups=patients[keep],
                n_boot=cfg.evaluate.bootstrap,
                seed=derive_seed(cfg.seed, "bootstrap"),
                level=cfg.evaluate.ci_level,
                batch_metric=primary_batch_metric(task.name, len(keep)),
            )
        except ValueError:
            continue
        d = cmp.difference.to_dict()
        row = {
            "a": a.name,
            "b": b.name,
            "metric": task.primary_metric,
            "scope": scope,
            "value_a": cmp.value_a,
            "value_b": cmp.value_b,
            "difference": d["value"],
            "ci_low": d["ci_low"],
            "ci_high": d["ci_high"],
            "p_value": cmp.p_value,
            "delong_p": None,
        }
        if task.n_classes == 2 and scope == "pooled":  # DeLong: two ROC AUCs
            try:
                row["delong_p"] = delong_test(yk, sa[keep], sb[keep]).p_value
            except ValueError:
                pass
        rows.append(row)
    return rows


def ensemble_summary(arrays: CohortArrays, folds: list[Any]) -> dict[str, Any] | None:
    """Average member error vs ensemble error on the pooled test predictions."""
    n_members = len(folds[0].members)
    kind = get_task(arrays.task).ensemble
    if n_members < 2 or kind is None or get_task(arrays.task).dense:
        return None
    targets = arrays.data.targets.numpy()
    idx = np.concatenate([f.test for f in folds])
    members = np.stack([np.concatenate([f.members[m] for f in folds]) for m in range(n_members)])
    if kind == "log_risk":
        y, metric = targets[idx], "1 - c_index"
        gain = ensemble_gain(
            members,
            np.arange(len(idx)),
            kind=kind,
            error=lambda i, s: 1.0 - M.harrell_c_index(y[i, 0], y[i, 1], s),
        )
    else:
        metric = "brier" if kind == "probability" else "mse"
        gain = ensemble_gain(members, targets[idx], error="squared", kind=kind)
    return {
        "members": n_members,
        "metric": metric,
        "member_error": gain.mean_member_error,
        "ensemble_error": gain.ensemble_error,
        "reduction": gain.reduction,
        "per_member": [float(e) for e in gain.member_errors],
    }
