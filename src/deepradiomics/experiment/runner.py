"""``run``: the whole experiment from a config, resumable.

cohort -> fingerprint -> splits (saved) -> per fold: plan on its training part, preprocess
(cache) -> every fold x member trained (finished members are reused after a kill) ->
out-of-fold predictions -> metrics with CIs per model, site and fold -> classical baselines
on the same splits -> comparisons -> learning curve -> ``predictions.csv``,
``metrics.json``, ``bundle/``, ``report.html``, ``model_card.md``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from threadpoolctl import threadpool_limits

from deepradiomics.bundle import write_bundle
from deepradiomics.config import ExperimentConfig, config_to_dict, save_config
from deepradiomics.dataset.arrays import CohortArrays
from deepradiomics.dataset.load import open_cohort
from deepradiomics.dataset.planning import FoldCohorts, fold_cohorts
from deepradiomics.dataset.splits import save_splits
from deepradiomics.errors import UserError
from deepradiomics.evaluate.splits import SplitAssignment, make_splits
from deepradiomics.experiment.auto_masks import segment_missing_masks
from deepradiomics.experiment.classical import (
    baseline_inputs,
    classical_design,
    classical_models,
    embedding_combat_model,
)
from deepradiomics.experiment.evaluation import (
    ModelPredictions,
    compare_models,
    ensemble_summary,
    grouped_metrics,
    model_metrics,
)
from deepradiomics.experiment.executor import ExecutorSpec
from deepradiomics.experiment.explain_cases import explain_run
from deepradiomics.experiment.fairness import fairness_metrics
from deepradiomics.experiment.folds import cnn_predictions, run_folds
from deepradiomics.experiment.learning_curve import learning_curve
from deepradiomics.experiment.outputs import cohort_summary, predictions_table
from deepradiomics.experiment.provenance import software_versions
from deepradiomics.experiment.robustness import mask_robustness
from deepradiomics.experiment.segmentation import segmentation_results
from deepradiomics.experiment.site_audit import site_audit
from deepradiomics.experiment.truth_audit import ground_truth, truth_block
from deepradiomics.files import atomic_write_text, write_json
from deepradiomics.report import write_checklist, write_model_card, write_report
from deepradiomics.tasks import get_task
from deepradiomics.train.loop import check_class_weight

log = logging.getLogger(__name__)


class StageClock:
    """Wall-clock seconds per pipeline stage (``metrics.timing.stages``): ``lap(name)``
    charges the time since the previous lap to ``name``."""

    def __init__(self) -> None:
        self.start = self._last = time.perf_counter()
        self.stages: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.stages[name] = round(self.stages.get(name, 0.0) + now - self._last, 1)
        self._last = now

    def total(self) -> float:
        return round(time.perf_counter() - self.start, 1)


def _check_same_config(cfg: ExperimentConfig, run_dir: Path) -> None:
    """A run folder resumes only the experiment it was started with."""
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        return
    before = yaml.safe_load(saved.read_text())
    now = config_to_dict(cfg)
    if before != now:
        keys = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
        raise UserError(
            f"{run_dir} holds a run with a different config (sections differ: "
            f"{', '.join(keys)}); use a new --out folder or restore the config"
        )


def make_run_splits(cfg: ExperimentConfig, arrays: CohortArrays) -> SplitAssignment:
    """The configured split of ``arrays``' cases (ids, targets and sites: no image needed)."""
    d = arrays.data
    return make_splits(
        cfg.evaluate,
        case_ids=d.case_ids,
        patient_ids=d.patient_ids,
        strata=arrays.strata(),
        sites=arrays.sites,
        official=arrays.official,
        val_fraction=cfg.train.val_fraction,
        seed=cfg.seed,
    )


def planned_cohorts(
    cfg: ExperimentConfig, run_dir: Path, automatic: Mapping[str, Path] | None = None
) -> tuple[SplitAssignment, FoldCohorts, pd.DataFrame | None]:
    """Splits first (they need no image), then each fold's cohort preprocessed under the plan
    fitted on its training part (``dataset.planning``; segmentation still plans on every
    case, its evaluation needs one grid); the split is saved as ``splits.csv`` (with the
    site), and an existing file from an interrupted run must agree with it. Also the ground
    truth, checked before minutes of preprocessing. ``automatic``: masks of the rows without
    a drawn one (``cohort.mask_from``)."""
    source = open_cohort(cfg, run_dir, automatic)
    labels = source if isinstance(source, CohortArrays) else source.labels()
    if get_task(cfg.cohort.task).classes:  # a bad count fails now, not after preprocessing
        check_class_weight(cfg.train, labels.n_classes)
    dense = get_task(cfg.cohort.task).dense
    truth = None if dense else ground_truth(cfg, labels)
    splits, cohorts = fold_cohorts(source, make_run_splits(cfg, labels), on_training_part=not dense)
    save_splits(run_dir, splits, cohorts.reference, resume=True)
    return splits, cohorts, truth


def _per_plan(splits: SplitAssignment, cohorts: FoldCohorts):
    """``(cohort, the split restricted to the folds planned alike)`` per distinct plan."""
    groups: dict[int, list[int]] = {}
    for k in splits.folds:
        groups.setdefault(id(cohorts[k].data.images), []).append(k)
    t = splits.table
    for folds in groups.values():
        yield cohorts[folds[0]], SplitAssignment(t[t["fold"].isin(folds)].reset_index(drop=True))


def _classical(
    cfg: ExperimentConfig,
    splits: SplitAssignment,
    cohorts: FoldCohorts,
    run_dir: Path,
    progress: bool,
) -> tuple[list[ModelPredictions], dict[int, pd.DataFrame]]:
    """The classical baselines, their features computed under each fold's plan."""
    found: dict[str, list] = {}
    designs: dict[int, pd.DataFrame] = {}
    for arrays, part in _per_plan(splits, cohorts):
        X = classical_design(cfg, arrays, run_dir, progress)
        if X is None:
            return [], {}
        designs.update({k: X for k in part.folds})
        for m in classical_models(cfg, arrays, part, X):
            found.setdefault(m.name, []).extend(m.folds)
    n = len(cohorts.reference.data)
    models = [
        ModelPredictions(name, sorted(folds, key=lambda f: f.fold), n)
        for name, folds in found.items()
    ]
    return models, designs


def run_experiment(
    cfg: ExperimentConfig,
    run_dir: str | Path,
    progress: bool = True,
    executor: ExecutorSpec | None = None,
) -> dict[str, Any]:
    """Run (or resume) the experiment into ``run_dir``; returns the metrics written. The
    CNN fits run where ``executor`` says (default: one at a time in this process).

    numpy / scipy's BLAS runs on one thread meanwhile (torch keeps its own threads): a
    run's matrices are small (cases x features), where OpenBLAS's thread pool costs more
    than it gains (the classical baselines take half the time on 2 cores; same results)."""
    with threadpool_limits(limits=1, user_api="blas"):
        return _run_experiment(cfg, Path(run_dir), progress, executor)


def _run_experiment(
    cfg: ExperimentConfig, run_dir: Path, progress: bool, executor: ExecutorSpec | None
) -> dict[str, Any]:
    clock = StageClock()
    run_dir.mkdir(parents=True, exist_ok=True)
    _check_same_config(cfg, run_dir)
    save_config(cfg, run_dir / "config.yaml")
    if cfg.cohort.mask_from is not None:
        _say(progress, "automatic masks: segmenting the rows without a drawn mask")
    automatic, auto_summary = segment_missing_masks(cfg, run_dir, progress)
    splits, cohorts, truth = planned_cohorts(cfg, run_dir, automatic)
    clock.lap("preprocess")
    arrays = cohorts.reference  # ids, targets, sites and covariates: every fold's
    dense = get_task(cfg.cohort.task).dense
    write_json(run_dir / "cohort.json", cohort_summary(arrays, cohorts.record()))
    n = len(arrays.data)
    executor = executor or ExecutorSpec()
    if executor.parallel:
        _say(
            progress,
            f"{len(splits.folds)} folds x {cfg.evaluate.ensemble_members} member(s): "
            f"{executor.kind} executor",
        )
        folds = run_folds(cfg, cohorts, splits, splits.folds, run_dir, progress, executor)
    else:
        folds = []
        for k, fold in enumerate(splits.folds):
            _say(
                progress,
                f"fold {k + 1}/{len(splits.folds)}: training "
                f"{cfg.evaluate.ensemble_members} member(s)",
            )
            folds += run_folds(cfg, cohorts, splits, [fold], run_dir, progress)
    train_seconds = sum(f.seconds for f in folds)
    clock.lap("cnn")
    metrics: dict[str, Any] = {
        "name": cfg.name,
        "task": arrays.task,
        "split": cfg.evaluate.split,
        "date": dt.date.today().isoformat(),
        "early_stopping": "out_of_bag" if cfg.evaluate.ensemble_members > 1 else "validation",
        "plan": cohorts.record(),
    }
    if auto_summary is not None:
        metrics["masks"] = auto_summary
    cnn = cnn_predictions(folds, n)
    if dense:
        _say(progress, "segmentation: Dice / HD95 / volumes, masks in original geometry, figures")
        metrics.update(segmentation_results(cfg, arrays, folds, cnn, run_dir))
        write_bundle(run_dir, cfg, cohorts, folds, None)
        clock.lap("segmentation")
    else:
        metrics.update(
            _outcome_results(
                cfg, cohorts, splits, folds, cnn, truth, run_dir, progress, executor, clock
            )
        )
    metrics["software"] = software_versions()
    metrics["timing"] = {
        "total_seconds": clock.total(),
        "train_seconds": round(train_seconds, 1),
        "stages": clock.stages,
    }
    write_json(run_dir / "metrics.json", metrics)
    write_report(run_dir)
    write_model_card(run_dir)
    write_checklist(run_dir)
    return metrics


def _outcome_results(
    cfg: ExperimentConfig,
    cohorts: FoldCohorts,
    splits: SplitAssignment,
    folds: list,
    cnn_model: ModelPredictions,
    truth: pd.DataFrame | None,
    run_dir: Path,
    progress: bool,
    executor: ExecutorSpec,
    clock: StageClock,
) -> dict[str, Any]:
    """Prediction tasks: every model's metrics, comparisons, audits, learning curve,
    ``predictions.csv``, the bundle and explanations (each stage timed on ``clock``)."""
    arrays = cohorts.reference
    models = [cnn_model]
    designs: dict[int, pd.DataFrame] = {}
    if cfg.evaluate.classical:
        _say(progress, "classical baseline: features, then the same folds")
        baselines, designs = _classical(cfg, splits, cohorts, run_dir, progress)
        models += baselines
        clock.lap("classical")
    X = designs.get(splits.folds[0])
    if cfg.evaluate.combat_embeddings and len(arrays.site_names) > 1:
        _say(progress, "ComBat on the CNN embeddings + linear head, on the same folds")
        models.append(embedding_combat_model(cfg, arrays, splits, folds))
        clock.lap("cnn_combat")
    per_model = {
        m.name: {"inputs": baseline_inputs(m.name, arrays), **model_metrics(cfg, arrays, m)}
        for m in models
    }
    cnn = per_model["cnn"]
    by_source = (
        {}
        if arrays.mask_source is None
        else {m.name: grouped_metrics(cfg, arrays, m, arrays.mask_source) for m in models}
    )
    metrics: dict[str, Any] = {
        "threshold": cnn.get("threshold"),
        "fold_thresholds": cnn.get("fold_thresholds"),
        "threshold_selection": "per_fold" if cnn.get("fold_thresholds") else None,
        "test": cnn["test"],
        "per_site": cnn["per_site"],
        "per_fold": cnn["per_fold"],
        "models": per_model,
        **({"by_mask_source": by_source} if by_source else {}),
    }
    names = [m.name for m in models]
    pairs = [
        (a, b)
        for a, b in (
            ("cnn", "classical"),
            ("cnn", "classical_combat"),
            ("cnn", "clinical"),
            ("classical", "clinical"),
            ("classical_combat", "classical"),
            ("cnn_combat", "cnn"),
        )
        if a in names and b in names
    ]
    by_name = {m.name: m for m in models}
    metrics["comparisons"] = [
        row for a, b in pairs for row in compare_models(cfg, arrays, by_name[a], by_name[b])
    ]
    clock.lap("metrics")
    if cfg.evaluate.audit.site and len(arrays.site_names) > 1:
        _say(progress, "site audit: can the site be told from the model's inputs and embeddings?")
        metrics["audit"] = site_audit(cfg, cohorts, splits, folds, X, run_dir, progress, executor)
        clock.lap("site_audit")
    if truth is not None:
        metrics["truth"] = truth_block(cfg, arrays, models, folds, X, truth)
        clock.lap("truth_audit")
    if cfg.evaluate.mask_robustness:
        _say(progress, "mask robustness: features and CNN under eroded / dilated masks")
        by_fold = {f.fold: f for f in folds}
        groups = [
            (cohort, part, [by_fold[k] for k in part.folds])
            for cohort, part in _per_plan(splits, cohorts)
        ]
        cuts = cnn.get("fold_thresholds")
        fold_cuts = None if cuts is None else {f.fold: c for f, c in zip(folds, cuts, strict=True)}
        robust = mask_robustness(cfg, groups, run_dir, fold_cuts, progress)
        if robust is not None:
            metrics["mask_robustness"] = robust
        clock.lap("mask_robustness")
    cut = cnn.get("threshold")
    if cnn.get("fold_thresholds"):  # each fold's own threshold on its own test cases
        cut = np.concatenate(
            [
                [c] * len(f.test)
                for c, f in zip(cnn["fold_thresholds"], models[0].folds, strict=False)
            ]
        )
    fairness = fairness_metrics(cfg, arrays, models[0], cut)
    if fairness:
        metrics["fairness"] = fairness
    ensemble = ensemble_summary(arrays, folds)
    if ensemble:
        metrics["ensemble"] = ensemble
    clock.lap("fairness")  # and the ensemble's summary
    if cfg.evaluate.learning_curve.enabled:
        _say(progress, "learning curve")
        first = splits.folds[0]
        metrics["learning_curve"] = learning_curve(
            cfg, cohorts[first], splits, run_dir, progress, X, executor
        )
        clock.lap("learning_curve")
    cuts = {name: m["fold_thresholds"] for name, m in per_model.items() if "fold_thresholds" in m}
    table = predictions_table(
        arrays, models, np.concatenate([f.predictions.std for f in folds]), cuts
    )
    atomic_write_text(run_dir / "predictions.csv", table.to_csv(index=False))
    write_bundle(run_dir, cfg, cohorts, folds, cnn.get("threshold"))
    clock.lap("bundle")
    if cfg.evaluate.explain:
        _say(progress, "explanations: Grad-CAM of a few TPs / FPs / FNs, sanity check")
        explained = explain_run(run_dir, arrays, cnn.get("threshold"), progress)
        if explained:
            metrics["explain"] = explained
        clock.lap("explain")
    return metrics


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, flush=True)
    log.info(message)
