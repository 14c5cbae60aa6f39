"""Synthetic-truth audit: what a model learned of the generator's risk, and what it missed.

A synthetic cohort comes with the generator's ``ground_truth.csv`` (``deepradiomics.synth``):
per case the true risk and its additive parts on the logit scale,

    eta = intercept + eta_visible + eta_spatial + eta_clinical + eta_site

(``visible``: size, irregularity, heterogeneity, necrosis, what first-order, shape and
texture features see; ``spatial``: core eccentricity and texture orientation, carried only by
the arrangement of the voxels; ``clinical``: age and sex; ``site``: the site's outcome shift).
Two questions, on exactly the cases a model was tested on:

- the oracle: the task's metrics of the true risk itself (``risk`` for a binary outcome, the
  linear predictor ``eta`` for survival), the ceiling no model can beat on average;
- per model and component: the Spearman rank correlation of its out-of-fold score with the
  component. Rank correlation, because models score on different scales (probability,
  log-risk) and only the ordering of cases matters for a risk score. A model that learned a
  component correlates with it; one that learned the scanner correlates with ``site``.

Intervals resample patients (``evaluate.bootstrap``), so repeat scans count once.
Pure functions: no file is written here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from deepradiomics.errors import UserError
from deepradiomics.evaluate.bootstrap import bootstrap_ci
from deepradiomics.evaluate.panel import metric_panel

COMPONENTS = ("visible", "spatial", "clinical", "site")
ORACLE_SCORE = {"binary": "risk", "survival": "eta"}
REQUIRED = ("case_id", "risk", "eta", *(f"eta_{c}" for c in COMPONENTS))


def read_ground_truth(path: str | Path) -> pd.DataFrame:
    """The generator's ``ground_truth.csv`` indexed by ``case_id``; a missing file, column,
    duplicate case or non-number is a ``UserError`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"cohort.ground_truth: file not found: {path}")
    try:
        table = pd.read_csv(path, dtype={"case_id": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not a readable CSV: {err}") from None
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise UserError(
            f"{path}: missing column(s) {', '.join(missing)} (expected the "
            "ground_truth.csv written by 'deepradiomics synth')"
        )
    dup = table["case_id"][table["case_id"].duplicated()]
    if len(dup):
        raise UserError(f"{path}: case_id {dup.iloc[0]} appears more than once")
    for col in REQUIRED[1:]:
        values = pd.to_numeric(table[col], errors="coerce")
        bad = ~np.isfinite(values.to_numpy(dtype=float))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise UserError(
                f"{path}: line {row + 2}: column {col}: "
                f"'{table[col].iloc[row]}' is not a finite number"
            )
        table[col] = values.astype(float)
    return table.set_index("case_id")


def truth_for_cases(
    truth: pd.DataFrame, case_ids: Sequence[str], source: str = "ground truth"
) -> pd.DataFrame:
    """The rows of ``truth`` for ``case_ids``, in that order; cases it lacks are an error."""
    ids = [str(c) for c in case_ids]
    missing = [c for c in ids if c not in truth.index]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise UserError(f"{source}: no row for case {missing[0]}{more} of the cohort")
    return truth.loc[ids]


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties); ``nan`` when either is constant."""
    rx, ry = rankdata(x), rankdata(y)
    sx, sy = rx.std(), ry.std()
    if len(rx) < 3 or sx == 0 or sy == 0:
        return float("nan")
    return float(np.mean((rx - rx.mean()) * (ry - ry.mean())) / (sx * sy))


def resampled_ranks(x: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``[B, n]`` average ranks of each case of ``x`` ``[n]`` among the cases of each resample
    (row of ``counts`` ``[B, n]``: how often each case is drawn), ties sharing their mean rank:
    ``rankdata(x[idx])`` of a resample's indices, for every row at once (one sort of ``x``)."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    cum = np.cumsum(counts[:, order], axis=1)  # cases at or below each sorted position
    last = np.r_[np.flatnonzero(xs[1:] != xs[:-1]), len(xs) - 1]  # each tie group's end
    group = np.searchsorted(last, np.arange(len(xs)))  # sorted position -> its tie group
    upto = cum[:, last]  # [B, groups]: cases at or below each value
    below = np.concatenate([np.zeros((len(counts), 1), upto.dtype), upto[:, :-1]], axis=1)
    ranks = np.empty(counts.shape, dtype=float)
    ranks[:, order] = (below + (upto - below + 1) / 2)[:, group]
    return ranks


def spearman_batch(x: np.ndarray, y: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """:func:`spearman` on every resample of a ``[B, n]`` count matrix at once (the
    ``batch_statistic`` of ``evaluate.bootstrap``): the count-weighted Pearson correlation of
    the resampled ranks; ``nan`` where :func:`spearman` is."""
    w = np.asarray(counts, dtype=float)
    total = w.sum(1, keepdims=True)
    rx, ry = resampled_ranks(x, counts), resampled_ranks(y, counts)
    dx = rx - (w * rx).sum(1, keepdims=True) / total
    dy = ry - (w * ry).sum(1, keepdims=True) / total
    vx, vy = (w * dx * dx).sum(1), (w * dy * dy).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (w * dx * dy).sum(1) / np.sqrt(vx * vy)
    return np.where((total[:, 0] < 3) | (vx == 0) | (vy == 0), np.nan, r)


def component_correlations(
    score: np.ndarray,
    components: pd.DataFrame,
    *,
    groups: Sequence | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, dict[str, Any]]:
    """``{component: {value, ci_low, ci_high, ...}}``: rank correlation of ``score`` with each
    ``eta_<component>`` column, with patient-bootstrap intervals (same resamples for all)."""
    score = np.asarray(score, dtype=float)
    if score.ndim != 1 or len(score) != len(components):
        raise ValueError(f"score must be one value per case ({len(components)}), got {score.shape}")
    out = {}
    for comp in COMPONENTS:
        eta = components[f"eta_{comp}"].to_numpy(dtype=float)
        est = bootstrap_ci(
            lambda idx, e=eta: spearman(score[idx], e[idx]),
            len(score),
            batch_statistic=lambda counts, e=eta: spearman_batch(score, e, counts),
            groups=groups,
            n_boot=n_boot,
            seed=seed,
            level=level,
        )
        out[comp] = est.to_dict()
    return out


def oracle_score(task: str, truth: pd.DataFrame) -> np.ndarray:
    """The generator's own risk score for ``task`` (see ``ORACLE_SCORE``)."""
    if task not in ORACLE_SCORE:
        raise UserError(
            f"cohort.ground_truth: the truth audit covers binary and survival "
            f"outcomes (the generator's); this task is {task}"
        )
    return truth[ORACLE_SCORE[task]].to_numpy(dtype=float)


def image_oracle_score(truth: pd.DataFrame) -> np.ndarray:
    """The image part of the true risk alone (``eta_visible + eta_spatial``): the most any
    model that sees only the image (no covariates, no site) can rank by."""
    return (truth["eta_visible"] + truth["eta_spatial"]).to_numpy(dtype=float)


def truth_audit(
    task: str,
    truth: pd.DataFrame,
    case_ids: Sequence[str],
    patient_ids: Sequence[str],
    targets: np.ndarray,
    scores: dict[str, tuple[np.ndarray, np.ndarray]],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """The ``truth`` block of ``metrics.json``.

    ``scores`` maps each model to ``(cohort indices, out-of-fold scores)``; the oracles are
    scored on the cases of the first model (every model is tested on the same cases in a
    run). ``targets`` are the cohort's typed targets (survival: ``[N, 2]`` time, event).
    """
    if not scores:
        raise ValueError("no model predictions to audit")
    ids = np.asarray(case_ids).astype(str)
    patients = np.asarray(patient_ids).astype(str)
    idx0 = np.asarray(next(iter(scores.values()))[0])
    rows = truth_for_cases(truth, ids[idx0], "cohort.ground_truth")
    common: dict[str, Any] = {
        "groups": patients[idx0],
        "n_boot": n_boot,
        "seed": seed,
        "level": level,
    }
    if task == "survival":
        y = {"time": targets[idx0, 0], "event": targets[idx0, 1]}
    else:
        y = {"y_true": targets[idx0]}
    out: dict[str, Any] = {
        "oracle_score": ORACLE_SCORE.get(task),
        "correlation": "spearman",
        "oracle": metric_panel(task, y_score=oracle_score(task, rows), **y, **common),
    }
    image = image_oracle_score(rows)
    if task == "binary":  # a probability in (0, 1); only its ranking (AUC) is meaningful
        image = 1.0 / (1.0 + np.exp(-(image - np.median(image))))
    out["oracle_image"] = metric_panel(task, y_score=image, **y, **common)
    models = {}
    for name, (idx, score) in scores.items():
        idx = np.asarray(idx)
        score = np.asarray(score, dtype=float)
        if score.ndim != 1:
            continue  # multi-column scores have no single ranking to correlate
        part = truth_for_cases(truth, ids[idx], "cohort.ground_truth")
        models[name] = {
            "components": component_correlations(
                score, part, groups=patients[idx], n_boot=n_boot, seed=seed, level=level
            )
        }
    out["models"] = models
    return out
