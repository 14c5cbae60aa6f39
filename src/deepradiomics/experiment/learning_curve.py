"""Learning curves: test score against the share of training patients, CNN and classical.

On the first outer fold, each fraction of the fold's training patients (a grouped,
stratified subsample, drawn anew for every repeat) trains a CNN (early stopping on the
fold's validation cases) and the classical baseline; both are scored on the fold's test
cases and on their own training cases. A curve still rising at 100 % says more data would
help (variance-limited); a flat curve far below the training score says so too, while a
flat curve close to the training score says the model is bias-limited.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from deepradiomics.classical.models import make_baseline
from deepradiomics.config import ExperimentConfig
from deepradiomics.dataset.arrays import CohortArrays
from deepradiomics.dataset.covariates import encode_fold, encoding_width
from deepradiomics.evaluate.primary import primary_score
from deepradiomics.evaluate.splits import SplitAssignment, grouped_holdout
from deepradiomics.experiment.classical import classical_scores, classical_target
from deepradiomics.experiment.executor import ExecutorSpec, run_fits
from deepradiomics.experiment.folds import fold_indices
from deepradiomics.experiment.members import MemberJob, MemberOutput, run_member
from deepradiomics.seeds import derive_seed, fraction_key
from deepradiomics.tasks import get_task


def training_subset(
    arrays: CohortArrays, train: np.ndarray, fraction: float, seed: int
) -> np.ndarray:
    """A grouped, stratified ``fraction`` of the patients of ``train`` (all of it at 1.0)."""
    if fraction >= 1.0:
        return train
    patients = np.asarray(arrays.data.patient_ids)[train]
    strata = arrays.strata()
    labels = np.zeros(len(train), dtype=int) if strata is None else np.asarray(strata)[train]
    dropped = grouped_holdout(patients, labels, 1.0 - fraction, seed, what="learning-curve")
    return train[~dropped]


def _scores(
    arrays: CohortArrays, sub: np.ndarray, idx: dict[str, np.ndarray], out: MemberOutput
) -> tuple[float, float]:
    """(training score, test score) of one CNN point."""
    targets = arrays.data.targets.numpy()
    return (
        primary_score(arrays.task, targets[np.unique(sub)], out.train),
        primary_score(arrays.task, targets[idx["test"]], out.test),
    )


def _classical_point(
    cfg: ExperimentConfig, arrays: CohortArrays, X: Any, sub: np.ndarray, idx: dict[str, np.ndarray]
) -> tuple[float, float]:
    targets = arrays.data.targets.numpy()
    patients = np.asarray(arrays.data.patient_ids)
    est = make_baseline(
        arrays.task,
        seed=derive_seed(cfg.seed, "classical"),
        covariates=arrays.covariates is not None,
    )
    est.fit(X.iloc[sub], classical_target(arrays.task, targets, sub), groups=patients[sub])
    return (
        primary_score(arrays.task, targets[sub], classical_scores(arrays.task, est, X.iloc[sub])),
        primary_score(
            arrays.task,
            targets[idx["test"]],
            classical_scores(arrays.task, est, X.iloc[idx["test"]]),
        ),
    )


def learning_curve(
    cfg: ExperimentConfig,
    arrays: CohortArrays,
    splits: SplitAssignment,
    run_dir: Path,
    progress: bool = True,
    classical_X: Any = None,
    executor: ExecutorSpec | None = None,
) -> list[dict[str, Any]]:
    """Rows ``{model, fraction, n_train, repeat, train_score, test_score, metric}``; each
    point is stored in ``run_dir/learning_curve`` so a rerun reuses it."""
    lc = cfg.evaluate.learning_curve
    fold = splits.folds[0]
    idx = fold_indices(splits, fold, arrays.data.case_ids)
    data, encoding = encode_fold(arrays, np.sort(np.concatenate([idx["train"], idx["val"]])))
    width = 0 if encoding is None else encoding_width(encoding)
    root = run_dir / "learning_curve"
    points = []  # (fraction, repeat, subset, folder) of the points not stored yet
    stored: dict[tuple[float, int], list] = {}
    for fraction in sorted(lc.fractions):
        for repeat in range(lc.repeats):
            folder = root / f"fraction_{fraction:g}_repeat_{repeat}"
            if (folder / "point.json").is_file():
                stored[fraction, repeat] = json.loads((folder / "point.json").read_text())
                continue
            sub = training_subset(
                arrays,
                idx["train"],
                fraction,
                seed=derive_seed(cfg.seed, "learning_curve_subset", repeat, fraction_key(fraction)),
            )
            points.append((fraction, repeat, sub, folder))
    # the CNN points are independent fits; one model seed per repeat, shared by its fractions
    arglist = [
        (
            cfg.model_copy(update={"seed": derive_seed(cfg.seed, "learning_curve_model", r)}),
            arrays,
            data,
            MemberJob(0, 0, sub, idx["val"], idx["test"], folder / "cnn", embed=False),
            width,
            progress and not (executor and executor.parallel),
        )
        for _, r, sub, folder in points
    ]
    outs = run_fits(executor or ExecutorSpec(), run_member, arglist)
    classical: dict[bytes, tuple[float, float]] = {}  # the whole training part: one fit
    for (fraction, repeat, sub, folder), out in zip(points, outs, strict=True):
        common = {
            "fraction": fraction,
            "n_train": int(len(sub)),
            "repeat": repeat,
            "metric": get_task(arrays.task).primary_metric,
        }
        tr, te = _scores(arrays, sub, idx, out)
        new = [{"model": "cnn", **common, "train_score": tr, "test_score": te}]
        if classical_X is not None:
            key = sub.tobytes()  # the classical fit is deterministic: same cases, same point
            if key not in classical:
                classical[key] = _classical_point(cfg, arrays, classical_X, sub, idx)
            tr, te = classical[key]
            new.append({"model": "classical", **common, "train_score": tr, "test_score": te})
        (folder / "point.json").write_text(json.dumps(new))
        stored[fraction, repeat] = new
    return [row for key in sorted(stored) for row in stored[key]]
