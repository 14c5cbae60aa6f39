"""The run's synthetic-truth audit (``metrics.truth``; ``audit.truth`` and
``audit.phenotype`` hold the pure functions).

- ``ground_truth``: ``cohort.ground_truth`` read and checked against the cohort before any
  training;
- ``truth_block``: the oracle and each model's correlation with the risk's parts, plus the
  phenotype probe (``truth.phenotype_probe``) on two representations: ``cnn``, each fold's
  members' embeddings of the cases none of them trained on (probed inside each fold, one
  embedding space per fold), and ``classical``, the hand-crafted features of every case.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from deepradiomics.audit.phenotype import PHENOTYPES, phenotype_probe
from deepradiomics.audit.truth import oracle_score, read_ground_truth, truth_audit, truth_for_cases
from deepradiomics.classical.models import feature_columns
from deepradiomics.config import ExperimentConfig
from deepradiomics.dataset.arrays import CohortArrays
from deepradiomics.experiment.evaluation import ModelPredictions
from deepradiomics.experiment.folds import FoldResult, embedding_rows

UNSEEN = "cases no member of the fold trained on, probed inside each fold"


def ground_truth(cfg: ExperimentConfig, arrays: CohortArrays) -> pd.DataFrame | None:
    """``cohort.ground_truth`` read and checked against the cohort (None without one)."""
    if cfg.cohort.ground_truth is None:
        return None
    truth = read_ground_truth(cfg.cohort.ground_truth)
    oracle_score(
        arrays.task, truth_for_cases(truth, arrays.data.case_ids, str(cfg.cohort.ground_truth))
    )
    return truth


def phenotype_probes(
    cfg: ExperimentConfig,
    arrays: CohortArrays,
    folds: list[FoldResult],
    X: pd.DataFrame | None,
    truth: pd.DataFrame,
) -> dict[str, Any]:
    """``{representation: probe}`` for the representations this run has."""
    ids = np.asarray(arrays.data.case_ids).astype(str)
    patients = np.asarray(arrays.data.patient_ids).astype(str)
    kw = dict(n_boot=cfg.evaluate.bootstrap, seed=cfg.seed, level=cfg.evaluate.ci_level)
    out: dict[str, Any] = {}
    rows = embedding_rows(folds, len(ids), unseen=True)
    if rows is not None:
        emb, index, block = rows
        rows_truth = truth_for_cases(truth, ids[index], "cohort.ground_truth")
        probe = phenotype_probe(emb, rows_truth, patients[index], blocks=block, cases=UNSEEN, **kw)
        if probe is not None:
            out["cnn"] = probe
    if X is not None:
        features = X.loc[:, feature_columns(X)].to_numpy(dtype=float)
        rows_truth = truth_for_cases(truth, ids, "cohort.ground_truth")
        probe = phenotype_probe(features, rows_truth, patients, cases="every case", **kw)
        if probe is not None:
            out["classical"] = probe
    return out


def truth_block(
    cfg: ExperimentConfig,
    arrays: CohortArrays,
    models: list[ModelPredictions],
    folds: list[FoldResult],
    X: pd.DataFrame | None,
    truth: pd.DataFrame,
) -> dict[str, Any]:
    """``metrics.truth``: the oracle, each model's correlation with the risk's parts and,
    when the ground truth has the phenotypes, what each representation encodes of them."""
    d = arrays.data
    out = truth_audit(
        arrays.task,
        truth,
        d.case_ids,
        d.patient_ids,
        d.targets.numpy(),
        {m.name: m.stacked() for m in models},
        n_boot=cfg.evaluate.bootstrap,
        seed=cfg.seed,
        level=cfg.evaluate.ci_level,
    )
    probes = phenotype_probes(cfg, arrays, folds, X, truth)
    if probes:
        names = {p for probe in probes.values() for p in probe["r"]}
        out["phenotype_probe"] = {
            "components": {p: c for p, c in PHENOTYPES.items() if p in names},
            "correlation": "spearman",
            "representations": probes,
        }
    return out
