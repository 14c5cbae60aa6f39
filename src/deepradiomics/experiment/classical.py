"""The classical radiomics baseline on exactly the CNN's splits, with and without ComBat.

Features come from the same resampled crops the CNN sees, mapped back to physical units
(HU, SUV; values beyond the plan's window stay at its bounds) and extracted per channel
with PyRadiomics (``classical.features``), prefixed by the channel name. In each fold the
tuned pipeline (``classical.models.make_baseline``) is fitted on the fold's training cases,
its decision threshold comes from the validation cases, and it predicts the test cases.
ComBat (inside the pipeline, so fitted on training cases only) harmonises the features
across sites, protecting the clinical covariates; the outcome is never a ComBat covariate,
since test cases' outcomes are unknown at prediction time.

The baseline uses image features only; clinical covariates enter ComBat, not the model.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from deepradiomics.classical.combat import with_site_columns
from deepradiomics.classical.features import RadiomicsCase, RadiomicsSettings, extract_features
from deepradiomics.classical.models import make_baseline, survival_target
from deepradiomics.config import ExperimentConfig
from deepradiomics.dataset.arrays import CohortArrays
from deepradiomics.evaluate.splits import SplitAssignment
from deepradiomics.experiment.evaluation import FoldPredictions, ModelPredictions
from deepradiomics.experiment.folds import fold_indices
from deepradiomics.preprocess.normalise import to_physical
from deepradiomics.seeds import derive_seed
from deepradiomics.tasks import get_task

log = logging.getLogger(__name__)


def cohort_features(arrays: CohortArrays, cache_dir: Path, workers: int, progress: bool) -> pd.DataFrame:
    """PyRadiomics features of every case and channel (NaN rows for failed cases)."""
    plan, prepared = arrays.plan, arrays.prepared
    ids = list(arrays.data.case_ids)
    masks = arrays.data.masks.numpy()
    tables = []
    for c, mp in enumerate(plan.modalities):
        cases = []
        for i, cid in enumerate(ids):
            norm = prepared.meta(cid)["normalisation"][mp.name]
            image = to_physical(arrays.data.images[i, c].numpy(), norm, plan.window_range)
            cases.append(RadiomicsCase(cid, image, masks[i], spacing=tuple(plan.spacing)))
        result = extract_features(cases, RadiomicsSettings.for_modality(mp.kind),
                                  cache_dir=cache_dir, workers=workers, progress=progress)
        for cid, reason in result.failures.items():
            log.warning("classical features: case %s, channel %s: %s", cid, mp.name, reason)
        tables.append(result.features.add_prefix(f"{mp.name}__"))
    return pd.concat(tables, axis=1).reindex(ids)


def classical_target(task: str, targets: np.ndarray, index: np.ndarray) -> np.ndarray:
    spec = get_task(task)
    if spec.time_to_event:
        return survival_target(targets[index, 1], targets[index, 0])
    return targets[index].astype(int) if spec.classes else targets[index]


def classical_scores(task: str, est, X: pd.DataFrame) -> np.ndarray:
    spec = get_task(task)
    if spec.classes:  # probabilities: of the positive class (binary) or of every class
        proba = est.predict_proba(X)
        return proba if spec.scores_per_class else proba[:, 1]
    return np.asarray(est.predict(X), dtype=float)  # regression value; survival log-risk


def classical_design(cfg: ExperimentConfig, arrays: CohortArrays, run_dir: Path,
                     progress: bool = True) -> pd.DataFrame | None:
    """The baseline's input: features plus the site/covariate columns ComBat reads; None
    when the cohort has no masks or plan (a .npz cohort)."""
    if arrays.plan is None or arrays.data.masks is None:
        log.warning("classical baseline skipped: it needs masks and a preprocessing plan (CSV cohort)")
        return None
    features = cohort_features(arrays, run_dir / "classical" / "features", cfg.preprocess.workers, progress)
    features.to_csv(run_dir / "classical" / "features.csv")
    sites = arrays.sites if arrays.sites is not None else np.full(len(features), "all")
    return with_site_columns(features.reset_index(drop=True), sites, arrays.covariates)


def baseline_fold(cfg: ExperimentConfig, arrays: CohortArrays, X: pd.DataFrame,
                  idx: dict[str, np.ndarray], fold: int, combat: bool) -> FoldPredictions:
    """The tuned baseline fitted on the fold's training cases; its scores on test, train and
    validation (for the threshold) cases."""
    targets = arrays.data.targets.numpy()
    task = arrays.task
    est = make_baseline(task, combat=combat, seed=derive_seed(cfg.seed, "classical"))
    est.fit(X.iloc[idx["train"]], classical_target(task, targets, idx["train"]),
            groups=np.asarray(arrays.data.patient_ids)[idx["train"]])
    val_scores = classical_scores(task, est, X.iloc[idx["val"]]) if len(idx["val"]) else np.empty(0)
    return FoldPredictions(
        fold, idx["test"], classical_scores(task, est, X.iloc[idx["test"]]),
        train=idx["train"], train_score=classical_scores(task, est, X.iloc[idx["train"]]),
        stop_targets=[targets[idx["val"]]], stop_scores=[val_scores])


def classical_models(cfg: ExperimentConfig, arrays: CohortArrays, splits: SplitAssignment,
                     X: pd.DataFrame) -> list[ModelPredictions]:
    """``classical`` and (with several sites and ``evaluate.combat``) ``classical_combat``."""
    variants = {"classical": False}
    if cfg.evaluate.combat and len(arrays.site_names) > 1:
        variants["classical_combat"] = True
    return [ModelPredictions(name, [baseline_fold(cfg, arrays, X, fold_indices(splits, f, arrays.data.case_ids),
                                                  f, combat) for f in splits.folds], len(X))
            for name, combat in variants.items()]


def embedding_combat_model(cfg: ExperimentConfig, arrays: CohortArrays, splits: SplitAssignment,
                           folds: list) -> ModelPredictions:
    """``cnn_combat``: per fold and member, ComBat on the member's embeddings plus the tuned
    linear head of the baseline (fitted on training cases only), averaged over members."""
    sites = arrays.sites if arrays.sites is not None else np.full(len(arrays.data), "all")
    out = []
    for f in folds:
        idx = fold_indices(splits, f.fold, arrays.data.case_ids)
        per_member = []
        for emb in f.embeddings:
            X = with_site_columns(pd.DataFrame(emb).add_prefix("embedding_"), sites, arrays.covariates)
            per_member.append(baseline_fold(cfg, arrays, X, idx, f.fold, combat=True))
        mean = lambda attr: np.mean([getattr(p, attr) for p in per_member], axis=0)  # noqa: E731
        first = per_member[0]
        out.append(FoldPredictions(f.fold, first.test, mean("score"), first.train, mean("train_score"),
                                   first.stop_targets, [np.mean([p.stop_scores[0] for p in per_member], axis=0)]))
    return ModelPredictions("cnn_combat", out, len(arrays.data))
