"""Phenotype probe: which of a synthetic cohort's lesion phenotypes a representation encodes.

The truth audit (``audit.truth``) asks what each model's *score* follows; a phenotype that
carries little weight in the risk, or one the model sees but weighs wrongly, barely shows
there. The probe asks what the *representation* holds: a ridge regression predicts each
phenotype of the generator's ``ground_truth.csv`` (diameter, lobulation, spiculation,
heterogeneity, necrosis, core eccentricity, texture anisotropy) from the CNN's embeddings or
from the hand-crafted features, cross-validated over patients, and the Spearman correlation
of its out-of-fold predictions with the true values (patient-bootstrap CI) says how much of
the phenotype the representation carries in a linearly readable form. A representation
that cannot see the texture's orientation gives r near 0 for ``texture_anisotropy`` however
it is trained; this is the diagnostic that showed the first demo CNN saw lesion size but not
texture (bench/cnn_investigation.md).

Inside each probe fold the features are standardised on the fold's training rows and the
ridge penalty is chosen per phenotype by leave-one-out on them (scikit-learn's ``RidgeCV``),
so nothing of the held-out rows is used. All features enter, not a few leading principal
components as in the site probe: the texture's orientation lives in low-variance directions
of the hand-crafted features (on the demo's draw 0, 32 components give r 0.10 for texture
anisotropy, all standardised features 0.33: bench/cnn_investigation/probe_design.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import RidgeCV

from deepradiomics.audit.site import clean_features, grouped_folds
from deepradiomics.audit.truth import spearman, spearman_batch
from deepradiomics.evaluate.bootstrap import bootstrap_ci, patient_codes

# the generator's phenotypes that enter the true risk, and the part of it they belong to
PHENOTYPES = {
    "diameter_mm": "visible",
    "lobulation": "visible",
    "spiculation": "visible",
    "heterogeneity": "visible",
    "necrosis": "visible",
    "core_eccentricity": "spatial",
    "texture_anisotropy": "spatial",
}
PROBE_FOLDS = 5
RIDGE_ALPHAS = np.logspace(-2, 5, 15)
MIN_PATIENTS_PER_FOLD = 3


def present_phenotypes(truth: pd.DataFrame) -> list[str]:
    """The ``PHENOTYPES`` columns ``truth`` has with finite values for every case."""
    out = []
    for name in PHENOTYPES:
        if name in truth.columns:
            values = pd.to_numeric(truth[name], errors="coerce").to_numpy(dtype=float)
            if np.isfinite(values).all():
                out.append(name)
    return out


def probe_predictions(
    X: np.ndarray,
    Y: np.ndarray,
    patients: Sequence | None = None,
    *,
    blocks: Sequence | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Out-of-fold ridge predictions ``[n, P]`` of the columns of ``Y`` from ``X``.

    Folds are patient-grouped, made inside each ``blocks`` label (rows of different blocks
    live in different spaces, e.g. the embeddings of different folds' models). A block with
    too few patients for two folds of ``MIN_PATIENTS_PER_FOLD`` is left NaN.
    """
    X = clean_features(X)
    Y = np.asarray(Y, dtype=float).reshape(len(X), -1)
    pcode, _ = patient_codes(patients, len(X))
    block = np.zeros(len(X), dtype=int) if blocks is None else pd.factorize(np.asarray(blocks))[0]
    rng = np.random.default_rng(seed)
    pred = np.full(Y.shape, np.nan)
    if X.shape[1] == 0:
        return pred
    for b in np.unique(block):
        rows = np.flatnonzero(block == b)
        n_patients = len(np.unique(pcode[rows]))
        n_folds = min(PROBE_FOLDS, n_patients // MIN_PATIENTS_PER_FOLD)
        if n_folds < 2:
            continue
        folds = grouped_folds(np.zeros(len(rows)), pcode[rows], n_folds, rng)
        for f in range(n_folds):
            tr, te = rows[folds != f], rows[folds == f]
            mu, sd = X[tr].mean(axis=0), X[tr].std(axis=0)
            sd[sd == 0] = 1.0
            z_tr, z_te = (X[tr] - mu) / sd, (X[te] - mu) / sd
            ridge = RidgeCV(alphas=RIDGE_ALPHAS, alpha_per_target=True)
            pred[te] = ridge.fit(z_tr, Y[tr]).predict(z_te).reshape(len(te), -1)
    return pred


def phenotype_probe(
    X: np.ndarray,
    truth: pd.DataFrame,
    patients: Sequence | None = None,
    *,
    blocks: Sequence | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    cases: str = "",
) -> dict[str, Any] | None:
    """``{"cases", "n_features", "r": {phenotype: estimate}}`` for the rows of ``X`` and their
    ``truth`` rows (same order); None without a phenotype column or a usable feature.

    ``r`` is the Spearman correlation of the out-of-fold prediction with the true value, with
    a patient-bootstrap CI (the same resamples for every phenotype), on the rows predicted.
    """
    names = present_phenotypes(truth)
    X = clean_features(X)
    if not names or X.shape[1] == 0:
        return None
    Y = truth[names].to_numpy(dtype=float)
    patients = np.asarray(patients if patients is not None else np.arange(len(X))).astype(str)
    pred = probe_predictions(X, Y, patients, blocks=blocks, seed=seed)
    done = np.isfinite(pred).all(axis=1)
    if done.sum() < 3:
        return None
    pred, Y, groups = pred[done], Y[done], patients[done]
    r = {}
    for j, name in enumerate(names):
        p, y = pred[:, j], Y[:, j]
        est = bootstrap_ci(
            lambda idx, p=p, y=y: spearman(p[idx], y[idx]),
            len(y),
            batch_statistic=lambda counts, p=p, y=y: spearman_batch(p, y, counts),
            groups=groups,
            n_boot=n_boot,
            seed=seed,
            level=level,
        )
        r[name] = est.to_dict()
    return {"cases": cases, "n_features": int(X.shape[1]), "r": r}
