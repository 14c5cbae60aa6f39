"""The CNN across the outer splits: members per fold, ensembled, into out-of-fold predictions.

For each fold the covariate encoding is fitted on the training part, every member is
trained (or reused from a finished earlier run), and the members' test predictions are
averaged, their spread kept as the per-case uncertainty. Cox log-risks are centred on each
member's mean training log-risk first (a Cox head is defined only up to a constant).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deepradiomics.config import ExperimentConfig
from deepradiomics.dataset.arrays import ArrayData, CohortArrays
from deepradiomics.dataset.covariates import encode_fold, encoding_width
from deepradiomics.dataset.planning import FoldCohorts
from deepradiomics.evaluate.ensemble import combine_members, out_of_bag_mean
from deepradiomics.evaluate.splits import SplitAssignment
from deepradiomics.experiment.evaluation import FoldPredictions, ModelPredictions
from deepradiomics.experiment.executor import ExecutorSpec, run_fits
from deepradiomics.experiment.members import MemberJob, MemberOutput, member_jobs, run_member
from deepradiomics.tasks import get_task


@dataclass
class FoldResult:
    """The CNN ensemble of one outer fold: its predictions (the same type as every other
    model's) plus what the bundle and the ensemble / ComBat analyses need."""

    predictions: FoldPredictions  # ensemble mean on test (std: members' spread), stop, train
    members: list[np.ndarray]  # each member's (centred) test prediction
    seconds: float = 0.0
    encoding: dict | None = None  # covariate encoding of this fold's training part
    member_dirs: list[Path] = field(default_factory=list)
    offsets: list[float] | None = None  # survival: each member's mean training log-risk
    embeddings: list[np.ndarray] = field(default_factory=list)  # per member [N, F], optional
    trained: np.ndarray | None = None  # cohort indices any member of the fold trained on

    @property
    def fold(self) -> int:
        return self.predictions.fold

    @property
    def test(self) -> np.ndarray:
        return self.predictions.test


def cnn_predictions(folds: list[FoldResult], n: int) -> ModelPredictions:
    """The CNN ensemble's out-of-fold predictions in the shape every model shares."""
    return ModelPredictions("cnn", [f.predictions for f in folds], n)


def fold_indices(
    splits: SplitAssignment, fold: int, case_ids: tuple[str, ...]
) -> dict[str, np.ndarray]:
    return {role: splits.indices(fold, role, case_ids) for role in ("train", "val", "test")}


@dataclass(frozen=True)
class FoldPlan:
    """What one outer fold trains: its indices, its covariate-encoded data and member jobs."""

    fold: int
    arrays: CohortArrays  # the fold's cohort, under its own preprocessing plan
    idx: dict[str, np.ndarray]
    training_part: np.ndarray
    data: ArrayData
    encoding: dict | None
    width: int
    jobs: list[MemberJob]


def plan_fold(
    cfg: ExperimentConfig, arrays: CohortArrays, splits: SplitAssignment, fold: int, run_dir: Path
) -> FoldPlan:
    idx = fold_indices(splits, fold, arrays.data.case_ids)
    training_part = np.sort(np.concatenate([idx["train"], idx["val"]]))
    data, encoding = encode_fold(arrays, training_part)
    width = 0 if encoding is None else encoding_width(encoding)
    jobs = member_jobs(
        cfg, arrays, fold, idx["train"], idx["val"], idx["test"], run_dir / "folds" / f"fold_{fold}"
    )
    return FoldPlan(fold, arrays, idx, training_part, data, encoding, width, jobs)


def run_folds(
    cfg: ExperimentConfig,
    cohorts: FoldCohorts,
    splits: SplitAssignment,
    folds: list[int],
    run_dir: Path,
    progress: bool = True,
    executor: ExecutorSpec | None = None,
) -> list[FoldResult]:
    """Every member of every fold in ``folds`` (each on its cohort ``cohorts[fold]``) as one
    batch of independent fits
    (``executor``: this process by default), then each fold's ensemble."""
    executor = executor or ExecutorSpec()
    plans = [plan_fold(cfg, cohorts[k], splits, k, run_dir) for k in folds]
    show = progress and not executor.parallel
    arglist = [(cfg, p.arrays, p.data, job, p.width, show) for p in plans for job in p.jobs]
    outs = iter(run_fits(executor, run_member, arglist))
    return [fold_result(p, [next(outs) for _ in p.jobs]) for p in plans]


def fold_result(plan: FoldPlan, outs: list[MemberOutput]) -> FoldResult:
    """The fold's ensemble from its members' outputs."""
    arrays, fold, idx, jobs = plan.arrays, plan.fold, plan.idx, plan.jobs
    training_part = plan.training_part
    kind = get_task(arrays.task).ensemble or "regression"
    offsets = [float(np.mean(o.train)) for o in outs] if kind == "log_risk" else None
    ens = combine_members([o.test for o in outs], kind=kind, offsets=offsets)
    shift = offsets or [0.0] * len(outs)
    centred = [o.test - shift[i] for i, o in enumerate(outs)]
    stop, stop_score = out_of_bag_mean(
        [j.stop for j in jobs], [o.stop - shift[i] for i, o in enumerate(outs)]
    )
    predictions = FoldPredictions(
        fold, idx["test"], ens.mean, std=ens.uncertainty, stop=stop, stop_score=stop_score
    )
    result = FoldResult(
        predictions,
        members=centred,
        seconds=sum(o.seconds for o in outs),
        encoding=plan.encoding,
        member_dirs=[j.folder for j in jobs],
        offsets=offsets,
        embeddings=[o.embedding for o in outs if o.embedding is not None],
        trained=np.unique(np.concatenate([j.train for j in jobs])),
    )
    if get_task(arrays.task).time_to_event:
        # every member predicted its own unique training cases; average where they overlap
        train_sets = [np.unique(j.train) for j in jobs]
        common = training_part
        preds = np.zeros(len(common))
        counts = np.zeros(len(common))
        for j, (cases, o) in enumerate(zip(train_sets, outs, strict=False)):
            pos = np.searchsorted(common, cases)
            preds[pos] += o.train - offsets[j]
            counts[pos] += 1
        seen = counts > 0
        predictions.train, predictions.train_score = common[seen], preds[seen] / counts[seen]
    return result


def embedding_rows(
    folds: list[FoldResult], n: int, unseen: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(embeddings, cohort index, fold) of the rows a probe reads: per fold, the cases no
    member trained on (``unseen``) or every case, embedded by that fold's members side by side;
    None without embeddings."""
    X, index, block = [], [], []
    for f in folds:
        if not f.embeddings:
            return None
        emb = np.hstack(f.embeddings)
        rows = (
            np.setdiff1d(np.arange(n), f.trained)
            if unseen and f.trained is not None
            else np.arange(n)
        )
        X.append(emb[rows])
        index.append(rows)
        block.append(np.full(len(rows), f.fold))
    return np.concatenate(X), np.concatenate(index), np.concatenate(block)
