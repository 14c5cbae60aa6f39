"""Fake run folders (the contract of notes/run_contract.md) with numpy-generated predictions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from deepradiomics.config import ExperimentConfig, save_config

SITES = ("alpha", "beta", "gamma")


def entry(value: float, half_width: float, n: int) -> dict[str, Any]:
    return {
        "value": value,
        "ci_low": value - half_width,
        "ci_high": value + half_width,
        "n": n,
        "n_patients": n,
        "n_boot": 200,
        "n_skipped": 0,
    }


def cohort_table(rng: np.random.Generator, n_patients: int, extra: int) -> pd.DataFrame:
    """Cases with patient ids (``extra`` patients have a second scan) and sites."""
    patients = [f"pat-{i:04d}" for i in range(n_patients)]
    site_of = {p: SITES[i % len(SITES)] for i, p in enumerate(patients)}
    rows = [p for p in patients] + list(rng.choice(patients, size=extra, replace=False))
    return pd.DataFrame(
        {
            "case_id": [f"case-{i:04d}" for i in range(len(rows))],
            "patient_id": rows,
            "site": [site_of[p] for p in rows],
        }
    )


def kfold_splits(cases: pd.DataFrame, folds: int, rng: np.random.Generator) -> pd.DataFrame:
    """Patient-grouped k folds; a quarter of each training part's patients is validation."""
    patients = cases["patient_id"].unique()
    fold_of = dict(zip(rng.permutation(patients), np.arange(len(patients)) % folds, strict=False))
    parts = []
    for k in range(folds):
        train_p = [p for p in patients if fold_of[p] != k]
        val_p = set(rng.choice(train_p, size=len(train_p) // 4, replace=False))
        role = np.where(
            cases["patient_id"].map(fold_of) == k,
            "test",
            np.where(cases["patient_id"].isin(val_p), "val", "train"),
        )
        parts.append(cases.assign(fold=k, role=role, held_out=""))
    return pd.concat(parts, ignore_index=True)[
        ["case_id", "patient_id", "site", "fold", "role", "held_out"]
    ]


def write_config(run: Path, task: str, **evaluate: Any) -> None:
    cfg = ExperimentConfig.model_validate(
        {
            "name": f"demo-{task}",
            "cohort": {
                "task": task,
                "covariates_numeric": ["age"],
                "covariates_categorical": ["sex"],
                "modalities": {"ct": {"column": "ct", "kind": "ct"}},
            },
            "evaluate": {"bootstrap": 200, "ensemble_members": 3, **evaluate},
        }
    )
    save_config(cfg, run / "config.yaml")


def cohort_json(cases: pd.DataFrame, task: str, outcome: pd.Series) -> dict[str, Any]:
    sites = {}
    for site, part in cases.groupby("site"):
        info: dict[str, Any] = {"n_cases": len(part), "n_patients": part["patient_id"].nunique()}
        o = outcome[part.index]
        if task == "binary":
            info["positives"] = int(o.sum())
        elif task == "survival":
            info["events"] = int(o.sum())
            info["median_time"] = 12.5
        else:
            info["mean"] = float(o.mean())
        sites[site] = info
    return {
        "n_cases": len(cases),
        "n_patients": int(cases["patient_id"].nunique()),
        "task": task,
        "modalities": ["ct"],
        "sites": sites,
        "covariates": {
            "age": {"missing": 3, "mean": 61.2},
            "sex": {"missing": 0, "levels": {"F": 50, "M": len(cases) - 50}},
        },
        "spacing_summary": {"median": [5.0, 0.8, 0.8]},
        "plan": {
            "spacing": [3.0, 1.0, 1.0],
            "shape": [24, 64, 64],
            "crop_mm": [72.0, 64.0, 64.0],
            "anisotropic": True,
            "anisotropic_axis": 0,
            "spacing_rule": "median",
        },
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=1))


VERDICT = (
    "The site is strongly predictable from the CNN's embeddings (AUC 0.93 [0.89, 0.96], "
    "permutation p = 0.005) and the site alone predicts the outcome (AUC 0.62 [0.55, 0.69]): "
    "part of the model's performance may come from the site rather than the disease; judge it "
    "by the leave-one-site-out results."
)


def fabricated_fairness(pred: pd.DataFrame, rng: np.random.Generator) -> dict[str, Any]:
    """The audit of the site and of a sex column and an age band with a group too small to
    compare, computed by ``audit.fairness`` on the fabricated CNN predictions."""
    from deepradiomics.audit.fairness import Outcomes, subgroup_audit

    patients = pred["patient_id"].unique()
    sex = dict(zip(patients, rng.choice(["F", "M"], len(patients)), strict=False))
    band = dict(
        zip(
            patients,
            rng.choice(["<50", "50-70", ">=70"], len(patients), p=[0.06, 0.5, 0.44]),
            strict=False,
        )
    )
    outcomes = Outcomes(
        "binary", pred["cnn_prob"].to_numpy(), y_true=pred["y_true"].to_numpy(), threshold=0.42
    )
    columns = {
        "site": pred["site"],
        "sex": pred["patient_id"].map(sex),
        "age_band": pred["patient_id"].map(band),
    }
    return {
        col: subgroup_audit(
            labels.to_numpy(),
            outcomes,
            patients=pred["patient_id"],
            n_boot=100,
            min_patients=20,
            min_events=5,
        )
        for col, labels in columns.items()
    }


def binary_run(run: Path, seed: int = 0) -> Path:
    """cnn + classical + classical_combat, per site, comparisons, ensemble, learning curve."""
    rng = np.random.default_rng(seed)
    run.mkdir(parents=True, exist_ok=True)
    cases = cohort_table(rng, n_patients=100, extra=20)
    splits = kfold_splits(cases, 5, rng)
    tests = splits[splits["role"] == "test"].set_index("case_id")["fold"]
    y = (rng.random(len(cases)) < 0.35).astype(int)

    def sig(x: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-x))

    pred = cases.assign(fold=cases["case_id"].map(tests).to_numpy(), y_true=y)
    for model, strength in (("cnn", 1.1), ("classical", 0.7), ("classical_combat", 0.8)):
        pred[f"{model}_prob"] = sig(strength * (2 * y - 1) + rng.normal(0, 1.2, len(y)))
    pred["cnn_std"] = np.abs(rng.normal(0, 0.05, len(y)))
    models = {}
    for i, model in enumerate(("cnn", "classical", "classical_combat")):
        p = pred[f"{model}_prob"]
        test = {
            "auc": entry(roc_auc_score(y, p), 0.051 + 0.001 * i, len(y)),
            "accuracy": entry(0.7712 - 0.01 * i, 0.07, len(y)),
            "brier": entry(0.1634 + 0.01 * i, 0.03, len(y)),
            "calibration_slope": entry(0.91, 0.2, len(y)),
        }
        per_site = {}
        for j, site in enumerate(SITES):
            m = (pred["site"] == site).to_numpy()
            per_site[site] = {
                "auc": entry(roc_auc_score(y[m], p[m]), 0.01 + 0.001 * j, int(m.sum())),
                "brier": entry(0.15 + 0.02 * j + 0.001 * i, 0.05, int(m.sum())),
            }
        models[model] = {"test": test, "per_site": per_site}
    metrics = {
        "task": "binary",
        "split": "kfold",
        "threshold": 0.42,
        "test": models["cnn"]["test"],
        "per_site": models["cnn"]["per_site"],
        "per_fold": [
            {"fold": k, "auc": 0.8 + 0.01 * k, "brier": 0.16 - 0.002 * k} for k in range(5)
        ],
        "models": models,
        "comparisons": [
            {
                "a": "cnn",
                "b": "classical",
                "metric": "auc",
                "difference": 0.0831,
                "ci_low": 0.0212,
                "ci_high": 0.1503,
                "p_value": 0.0123,
                "scope": "pooled",
            },
            {
                "a": "cnn",
                "b": "classical_combat",
                "metric": "auc",
                "difference": 0.051,
                "ci_low": -0.012,
                "ci_high": 0.113,
                "p_value": 0.1178,
                "scope": "pooled",
            },
            {
                "a": "cnn",
                "b": "classical",
                "metric": "brier",
                "difference": -0.02,
                "ci_low": -0.05,
                "ci_high": 0.01,
                "p_value": None,
                "scope": "alpha",
            },
        ],
        "ensemble": {
            "members": 3,
            "member_error": 0.181,
            "ensemble_error": 0.1634,
            "metric": "brier",
            "per_member": [0.175, 0.183, 0.185],
        },
        "learning_curve": [
            {
                "model": model,
                "fraction": f,
                "n_train": int(96 * f),
                "repeat": r,
                "train_score": 0.99 - 0.02 * f,
                "test_score": base + 0.1 * f + 0.01 * r,
                "metric": "auc",
            }
            for model, base in (("cnn", 0.7), ("classical", 0.68))
            for f in (0.25, 0.5, 0.75, 1.0)
            for r in range(2)
        ],
        "fairness": fabricated_fairness(pred, rng),
        "audit": {
            "site_probe": {
                rep: {
                    "auc": {"value": auc, "ci_low": auc - 0.04, "ci_high": auc + 0.03},
                    "balanced_accuracy": {"value": 0.71, "ci_low": 0.64, "ci_high": 0.78},
                    "chance": {"auc": 0.5, "balanced_accuracy": 0.333},
                    "p_permutation": p,
                    "n_permutations": 200,
                    "cases": "every case",
                }
                for rep, auc, p in (("cnn", 0.93, 0.005), ("intensity", 0.55, 0.31))
            },
            "site_only": {"auc": {"value": 0.62, "ci_low": 0.55, "ci_high": 0.69}},
            "loso_gap": {
                "auc": {
                    "value": -0.08,
                    "ci_low": -0.15,
                    "ci_high": -0.01,
                    "loso": 0.62,
                    "random_split": 0.70,
                    "random_split_scheme": "kfold",
                }
            },
            "verdict": VERDICT,
            "warnings": [VERDICT],
        },
        "timing": {"total_seconds": 600.0, "train_seconds": 500.0},
    }
    write_config(run, "binary", classical=True, combat=True)
    write_json(run / "cohort.json", cohort_json(cases, "binary", pd.Series(y)))
    splits.to_csv(run / "splits.csv", index=False)
    pred.to_csv(run / "predictions.csv", index=False)
    write_json(run / "metrics.json", metrics)
    return run


def survival_run(run: Path, seed: int = 1) -> Path:
    """cnn + classical risks with times and events; KM groups and log-rank."""
    rng = np.random.default_rng(seed)
    run.mkdir(parents=True, exist_ok=True)
    cases = cohort_table(rng, n_patients=90, extra=0)
    splits = kfold_splits(cases, 3, rng)
    tests = splits[splits["role"] == "test"].set_index("case_id")["fold"]
    true_risk = rng.normal(0, 1, len(cases))
    event_time = rng.exponential(10 * np.exp(-0.8 * true_risk))
    censor = rng.uniform(2, 30, len(cases))
    time = np.minimum(event_time, censor).round(2)
    event = (event_time <= censor).astype(int)
    pred = cases.assign(fold=cases["case_id"].map(tests).to_numpy(), time=time, event=event)
    pred["cnn_risk"] = true_risk + rng.normal(0, 0.7, len(cases))
    pred["classical_risk"] = true_risk + rng.normal(0, 1.5, len(cases))
    pred["cnn_std"] = 0.0
    models = {
        m: {
            "test": {"c_index": entry(0.7123 - 0.05 * i, 0.05, len(cases))},
            "per_site": {
                s: {"c_index": entry(0.7 - 0.01 * j, 0.1, 30)} for j, s in enumerate(SITES)
            },
        }
        for i, m in enumerate(("cnn", "classical"))
    }
    metrics = {
        "task": "survival",
        "split": "kfold",
        "test": models["cnn"]["test"],
        "per_site": models["cnn"]["per_site"],
        "models": models,
        "per_fold": [{"fold": k, "c_index": 0.7} for k in range(3)],
    }
    write_config(run, "survival", folds=3, ensemble_members=1)
    write_json(run / "cohort.json", cohort_json(cases, "survival", pd.Series(event)))
    splits.to_csv(run / "splits.csv", index=False)
    pred.to_csv(run / "predictions.csv", index=False)
    write_json(run / "metrics.json", metrics)
    return run


def regression_run(run: Path, seed: int = 2) -> Path:
    """Only config.yaml, metrics.json and predictions.csv (no splits, cohort, extras)."""
    rng = np.random.default_rng(seed)
    run.mkdir(parents=True, exist_ok=True)
    y = rng.normal(50, 10, 40)
    pd.DataFrame(
        {
            "case_id": [f"case-{i:04d}" for i in range(40)],
            "site": "alpha",
            "fold": 0,
            "y_true": y,
            "cnn_pred": y + rng.normal(0, 4, 40),
            "cnn_std": 0.0,
        }
    ).to_csv(run / "predictions.csv", index=False)
    write_config(run, "regression", split="holdout", ensemble_members=1, classical=False)
    test = {
        "mae": entry(3.2109, 0.5, 40),
        "rmse": entry(4.0123, 0.6, 40),
        "r2": entry(0.8234, 0.05, 40),
    }
    write_json(
        run / "metrics.json",
        {"task": "regression", "split": "holdout", "test": test, "per_site": {"alpha": test}},
    )
    return run


def truth_with_probe() -> dict[str, Any]:
    """A ``metrics.truth`` block with a phenotype probe: the CNN ahead on texture anisotropy,
    behind on necrosis, level on diameter (overlapping intervals)."""
    r = lambda v: {"value": v, "ci_low": v - 0.1, "ci_high": v + 0.1, "n": 90}  # noqa: E731
    return {
        "oracle": {"auc": {"value": 0.83, "ci_low": 0.78, "ci_high": 0.88}},
        "models": {"cnn": {"components": {"visible": r(0.6), "spatial": r(0.2)}}},
        "phenotype_probe": {
            "components": {
                "diameter_mm": "visible",
                "necrosis": "visible",
                "texture_anisotropy": "spatial",
            },
            "representations": {
                "cnn": {
                    "r": {"diameter_mm": r(0.9), "necrosis": r(0.3), "texture_anisotropy": r(0.5)}
                },
                "classical": {
                    "r": {"diameter_mm": r(0.95), "necrosis": r(0.8), "texture_anisotropy": r(0.25)}
                },
            },
        },
    }
