"""The classical radiomics baseline on exactly the CNN's splits, with and without ComBat.

Features come from the same resampled crops the CNN sees, mapped back to physical units
(HU, SUV; values beyond the plan's window stay at its bounds) and extracted per channel
with PyRadiomics (``classical.features``), prefixed by the channel name. In each fold the
tuned pipeline (``classical.models.make_baseline``) is fitted on the cases the CNN fits on
(one member: the training split, the threshold from the validation split; bootstrap members:
the whole training part, the threshold from inner cross-validated predictions), and it
predicts the test cases. ComBat (inside the pipeline, so fitted on training cases only)
harmonises the features across sites, protecting the clinical covariates; the outcome is
never a ComBat covariate, since test cases' outcomes are unknown at prediction time.

With clinical covariates configured, the baselines get them as the CNN does (forced into the
linear model next to the selected features), and ``clinical`` is the covariates-only model:
the floor an image model has to clear.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from deepradiomics.classical.combat import with_site_columns
from deepradiomics.classical.features import RadiomicsCase, RadiomicsSettings, extract_features
from deepradiomics.classical.models import (
    make_baseline,
    make_clinical_baseline,
    out_of_fold_scores,
    survival_target,
)
from deepradiomics.config import ExperimentConfig
from deepradiomics.dataset.arrays import CohortArrays
from deepradiomics.evaluate.splits import SplitAssignment
from deepradiomics.experiment.evaluation import FoldPredictions, ModelPredictions
from deepradiomics.experiment.folds import fold_indices
from deepradiomics.preprocess.normalise import to_physical
from deepradiomics.seeds import derive_seed
from deepradiomics.tasks import get_task

log = logging.getLogger(__name__)


def cohort_features(
    arrays: CohortArrays, cache_dir: Path, workers: int, progress: bool
) -> pd.DataFrame:
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
        result = extract_features(
            cases,
            RadiomicsSettings.for_modality(mp.kind),
            cache_dir=cache_dir,
            workers=workers,
            progress=progress,
        )
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


def classical_design(
    cfg: ExperimentConfig, arrays: CohortArrays, run_dir: Path, progress: bool = True
) -> pd.DataFrame | None:
    """The baseline's input: features plus the site/covariate columns ComBat reads; None
    when the cohort has no masks or plan (a .npz cohort)."""
    if arrays.plan is None or arrays.data.masks is None:
        log.warning(
            "classical baseline skipped: it needs masks and a preprocessing plan (CSV cohort)"
        )
        return None
    features = cohort_features(
        arrays, run_dir / "classical" / "features", cfg.preprocess.workers, progress
    )
    features.to_csv(run_dir / "classical" / "features.csv")
    sites = arrays.sites if arrays.sites is not None else np.full(len(features), "all")
    return with_site_columns(features.reset_index(drop=True), sites, arrays.covariates)


def fit_cases(cfg: ExperimentConfig, idx: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(cases a baseline fits on, cases its threshold comes from) as the CNN uses them: one
    member trains on the training split and stops on validation; bootstrap members draw from
    the whole training part (train + val), so the baselines fit on all of it and take their
    threshold from inner cross-validated predictions on it (returned as the fit cases)."""
    if cfg.evaluate.ensemble_members == 1 or not len(idx["val"]):
        return idx["train"], idx["val"]
    part = np.sort(np.concatenate([idx["train"], idx["val"]]))
    return part, part


def baseline_fold(
    cfg: ExperimentConfig,
    arrays: CohortArrays,
    X: pd.DataFrame,
    idx: dict[str, np.ndarray],
    fold: int,
    combat: bool = False,
    clinical_only: bool = False,
) -> FoldPredictions:
    """A tuned baseline fitted on the fold's training cases (``fit_cases``); its scores on the
    test and training cases and out-of-sample scores for the fold's threshold."""
    targets = arrays.data.targets.numpy()
    task = arrays.task
    covariates = arrays.covariates is not None
    seed = derive_seed(cfg.seed, "classical")
    est = (
        make_clinical_baseline(task, seed=seed)
        if clinical_only
        else make_baseline(task, combat=combat, seed=seed, covariates=covariates)
    )
    fit, stop = fit_cases(cfg, idx)
    y, groups = classical_target(task, targets, fit), np.asarray(arrays.data.patient_ids)[fit]
    est.fit(X.iloc[fit], y, groups=groups)
    if get_task(task).n_classes != 2 or not len(stop):  # a threshold only for binary tasks
        stop_score = np.empty(0)
    elif np.array_equal(stop, fit):  # bootstrap members: inner cross-validated scores
        stop_score = out_of_fold_scores(est, X.iloc[fit], y, groups)
    else:
        stop_score = classical_scores(task, est, X.iloc[stop])
    return FoldPredictions(
        fold,
        idx["test"],
        classical_scores(task, est, X.iloc[idx["test"]]),
        train=fit,
        train_score=classical_scores(task, est, X.iloc[fit]),
        stop=stop if len(stop_score) else np.empty(0, int),
        stop_score=stop_score,
    )


BASELINES = {  # name: (ComBat, covariates only)
    "classical": (False, False),
    "classical_combat": (True, False),
    "clinical": (False, True),
}


def baseline_inputs(name: str, arrays: CohortArrays) -> str:
    """What a model reads, in words, for the report."""
    covs = [] if arrays.covariates is None else list(arrays.covariates.columns)
    with_covs = f" + clinical covariates ({', '.join(covs)})" if covs else ""
    return {
        "cnn": f"image voxels (CNN){with_covs}",
        "cnn_combat": f"CNN embeddings harmonised by ComBat{with_covs}",
        "classical": f"PyRadiomics features{with_covs}",
        "classical_combat": f"PyRadiomics features harmonised by ComBat{with_covs}",
        "clinical": f"clinical covariates only ({', '.join(covs)})",
    }.get(name, name)


def classical_models(
    cfg: ExperimentConfig, arrays: CohortArrays, splits: SplitAssignment, X: pd.DataFrame
) -> list[ModelPredictions]:
    """``classical``, (with several sites and ``evaluate.combat``) ``classical_combat``, and
    (with clinical covariates) ``clinical``, the covariates-only model."""
    names = ["classical"]
    if cfg.evaluate.combat and len(arrays.site_names) > 1:
        names.append("classical_combat")
    if arrays.covariates is not None:
        names.append("clinical")
    folds = {f: fold_indices(splits, f, arrays.data.case_ids) for f in splits.folds}
    return [
        ModelPredictions(
            name,
            [baseline_fold(cfg, arrays, X, idx, f, *BASELINES[name]) for f, idx in folds.items()],
            len(X),
        )
        for name in names
    ]


def embedding_combat_model(
    cfg: ExperimentConfig, arrays: CohortArrays, splits: SplitAssignment, folds: list
) -> ModelPredictions:
    """``cnn_combat``: per fold and member, ComBat on the member's embeddings plus the tuned
    linear head of the baseline (fitted on training cases only), averaged over members."""
    sites = arrays.sites if arrays.sites is not None else np.full(len(arrays.data), "all")
    out = []
    for f in folds:
        idx = fold_indices(splits, f.fold, arrays.data.case_ids)
        per_member = []
        for emb in f.embeddings:
            X = with_site_columns(
                pd.DataFrame(emb).add_prefix("embedding_"), sites, arrays.covariates
            )
            per_member.append(baseline_fold(cfg, arrays, X, idx, f.fold, combat=True))

        def mean(attr: str, members: list = per_member) -> np.ndarray:
            return np.mean([getattr(p, attr) for p in members], axis=0)

        first = per_member[0]
        out.append(
            FoldPredictions(
                f.fold,
                first.test,
                mean("score"),
                first.train,
                mean("train_score"),
                first.stop,
                mean("stop_score"),
            )
        )
    return ModelPredictions("cnn_combat", out, len(arrays.data))
