"""The run's confounding audit (``metrics.audit``): site probes on three representations,
the site-only outcome baseline, optionally the random-split vs leave-one-site-out gap, and
the verdict in words (``audit.site`` holds the pure functions).

Representations probed:

- ``cnn``: each fold's model embeds the cases none of its members trained on (held-out and
  early-stopping cases; an ensemble's members side by side); the probe is cross-validated
  inside each fold (one embedding space) and the out-of-fold probabilities pooled. When a
  fold's unseen cases span fewer than two sites (leave-one-site-out with bootstrap members),
  every case embedded by each fold's model is probed instead, and ``cases`` says so.
- ``classical``: the hand-crafted features of every case (the site/covariate columns that
  ComBat reads are left out).
- ``intensity``: histogram and moments of the cached crops inside the body.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepradiomics.audit.site import (
    intensity_features,
    probe_positive,
    site_only_baseline,
    site_only_positive,
    site_probe,
    site_verdict,
)
from deepradiomics.classical.models import feature_columns
from deepradiomics.config import ExperimentConfig
from deepradiomics.dataset.arrays import CohortArrays
from deepradiomics.dataset.planning import FoldCohorts
from deepradiomics.dataset.splits import save_splits
from deepradiomics.evaluate.splits import SplitAssignment, make_splits
from deepradiomics.experiment.evaluation import compare_models
from deepradiomics.experiment.executor import ExecutorSpec
from deepradiomics.experiment.folds import FoldResult, cnn_predictions, embedding_rows, run_folds
from deepradiomics.experiment.members import DONE

UNSEEN = "cases no member of the fold trained on (held-out and early-stopping), per fold"
ALL = "every case, embedded by each fold's model (a fold's unseen cases span fewer than two sites)"


def site_probes(
    cfg: ExperimentConfig, arrays: CohortArrays, folds: list[FoldResult], X: pd.DataFrame | None
) -> dict[str, Any]:
    """``{representation: probe dict}`` for the representations this run has."""
    a = cfg.evaluate
    sites = arrays.sites
    patients = np.asarray(arrays.data.patient_ids)
    kw = dict(
        n_permutations=a.audit.permutations, n_boot=a.bootstrap, seed=cfg.seed, level=a.ci_level
    )
    out: dict[str, Any] = {}
    n = len(arrays.data)
    for unseen, cases in ((True, UNSEEN), (False, ALL)):
        rows = embedding_rows(folds, n, unseen)
        if rows is None:
            break
        emb, index, block = rows
        probe = site_probe(emb, sites[index], patients[index], blocks=block, cases=cases, **kw)
        if probe is not None:
            out["cnn"] = probe.to_dict()
            break
    if X is not None:
        features = X.loc[:, feature_columns(X)]
        probe = site_probe(
            features.to_numpy(dtype=float), sites, patients, cases="every case", **kw
        )
        if probe is not None:
            out["classical"] = probe.to_dict()
    probe = site_probe(
        intensity_features(arrays.data.images.numpy()), sites, patients, cases="every case", **kw
    )
    if probe is not None:
        out["intensity"] = probe.to_dict()
    return out


def loso_gap(
    cfg: ExperimentConfig,
    cohorts: FoldCohorts,
    folds: list[FoldResult],
    run_dir: Path,
    progress: bool = True,
    executor: ExecutorSpec | None = None,
) -> dict[str, Any]:
    """The CNN under the other split scheme (k-fold <-> leave-one-site-out, trained into
    ``run_dir/loso_gap``) and the paired difference leave-one-site-out minus random split of
    the headline metric on the same cases, with its patient-bootstrap CI."""
    other = "kfold" if cfg.evaluate.split == "loso" else "loso"
    cfg_other = cfg.model_copy(
        update={"evaluate": cfg.evaluate.model_copy(update={"split": other})}
    )
    arrays = cohorts.reference
    d = arrays.data
    splits = make_splits(
        cfg_other.evaluate,
        case_ids=d.case_ids,
        patient_ids=d.patient_ids,
        strata=arrays.strata(),
        sites=arrays.sites,
        official=arrays.official,
        val_fraction=cfg.train.val_fraction,
        seed=cfg.seed,
    )
    folder = run_dir / "loso_gap"
    folder.mkdir(parents=True, exist_ok=True)
    save_splits(folder, splits, arrays)
    replanned = cohorts.replanned(splits)  # each fold planned on its own training part
    other_folds = run_folds(cfg_other, replanned, splits, splits.folds, folder, progress, executor)
    mine, theirs = cnn_predictions(folds, len(d)), cnn_predictions(other_folds, len(d))
    loso, random = (mine, theirs) if cfg.evaluate.split == "loso" else (theirs, mine)
    loso.name, random.name = "loso", cfg.evaluate.split if other == "loso" else "kfold"
    out = {}
    for row in compare_models(cfg, arrays, loso, random):
        if row["scope"] == "pooled":
            out[row["metric"]] = {
                "value": row["difference"],
                "ci_low": row["ci_low"],
                "ci_high": row["ci_high"],
                "loso": row["value_a"],
                "random_split": row["value_b"],
                "random_split_scheme": random.name,
            }
    return out


def adversary_summary(folds: list[FoldResult], sites: np.ndarray) -> dict[str, Any] | None:
    """The site adversary at each member's kept epoch (its ``history.jsonl``): training-batch
    site accuracy, mean over members, next to a constant guess's (the largest training site's
    share, mean over folds). None when no member logged an adversary."""
    accuracies, chance = [], []
    for f in folds:
        for folder in f.member_dirs:
            history, done = folder / "history.jsonl", folder / DONE
            if not (history.is_file() and done.is_file()):
                continue
            kept = json.loads(done.read_text())["best_epoch"]
            rows = [json.loads(line) for line in history.read_text().splitlines() if line]
            row = next((r for r in rows if r.get("epoch") == kept), rows[-1] if rows else {})
            if "site_accuracy" in row:
                accuracies.append(float(row["site_accuracy"]))
        if f.trained is not None and len(f.trained):
            counts = np.unique(sites[f.trained], return_counts=True)[1]
            chance.append(float(counts.max() / len(f.trained)))
    if not accuracies:
        return None
    return {
        "site_accuracy": float(np.mean(accuracies)),
        "constant_guess": float(np.mean(chance)) if chance else None,
        "members": len(accuracies),
    }


def site_audit(
    cfg: ExperimentConfig,
    cohorts: FoldCohorts,
    splits: SplitAssignment,
    folds: list[FoldResult],
    X: pd.DataFrame | None,
    run_dir: Path,
    progress: bool = True,
    executor: ExecutorSpec | None = None,
) -> dict[str, Any]:
    """``metrics.audit``: site probes, site-only baseline, the LOSO gap when configured, the
    verdict, and the verdict again under ``warnings`` when confounding is suspected."""
    a = cfg.evaluate
    arrays = cohorts.reference
    audit: dict[str, Any] = {"site_probe": site_probes(cfg, arrays, folds, X)}
    if arrays.task in ("binary", "multiclass", "survival", "regression"):
        audit["site_only"] = site_only_baseline(
            arrays.task,
            arrays.data.targets.numpy(),
            arrays.sites,
            arrays.data.patient_ids,
            n_boot=a.bootstrap,
            seed=cfg.seed,
            level=a.ci_level,
        )
    if a.audit.loso_gap:
        audit["loso_gap"] = loso_gap(cfg, cohorts, folds, run_dir, progress, executor)
    audit["adversarial"] = cfg.model.site_adversary
    if cfg.model.site_adversary:
        adversary = adversary_summary(folds, np.asarray(arrays.sites))
        if adversary is not None:
            audit["adversary"] = adversary
    audit["verdict"] = site_verdict(audit, adversarial=cfg.model.site_adversary)
    cnn = audit["site_probe"].get("cnn")
    if cnn is not None and probe_positive(cnn) and site_only_positive(audit.get("site_only", {})):
        audit["warnings"] = [audit["verdict"]]
    return audit
