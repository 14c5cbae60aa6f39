"""Read the files of a run folder (the contract written by ``deepradiomics run``).

Only ``config.yaml`` and ``metrics.json`` are required; ``cohort.json``, ``splits.csv`` and
``predictions.csv`` are optional and the report omits what depends on them. Malformed files
are a ``UserError`` naming the file and the key or column.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from deepradiomics.errors import UserError
from deepradiomics.tasks import TASKS, get_task

MODEL_ORDER = ("cnn", "classical", "classical_combat")
SPLIT_COLUMNS = ("case_id", "patient_id", "fold", "role")


@dataclass(frozen=True)
class RunData:
    """Everything the report and the model card are made from."""

    run_dir: Path
    config: dict[str, Any]
    config_text: str
    metrics: dict[str, Any]
    date: str
    cohort: dict[str, Any] | None = None
    splits: pd.DataFrame | None = None
    predictions: pd.DataFrame | None = None

    @property
    def task(self) -> str:
        return str(self.metrics.get("task") or self.section("cohort").get("task") or "binary")

    @property
    def name(self) -> str:
        return str(self.config.get("name") or self.run_dir.name)

    def section(self, key: str) -> dict[str, Any]:
        """A config section as a mapping (empty when absent)."""
        value = self.config.get(key)
        return value if isinstance(value, dict) else {}

    @property
    def models(self) -> dict[str, dict[str, Any]]:
        """``{model: {"test": panel, "per_site": {...}}}``, CNN first; the CNN comes from the
        top-level ``test``/``per_site`` when ``models`` does not list it."""
        raw = self.metrics.get("models") or {}
        models = {str(k): v for k, v in raw.items() if isinstance(v, dict)}
        if "cnn" not in models and isinstance(self.metrics.get("test"), dict):
            models["cnn"] = {
                "test": self.metrics["test"],
                "per_site": self.metrics.get("per_site") or {},
            }
        order = [m for m in MODEL_ORDER if m in models] + sorted(set(models) - set(MODEL_ORDER))
        return {m: models[m] for m in order}

    @property
    def score_suffix(self) -> str | None:
        """``_prob`` / ``_pred`` / ``_risk``: the suffix of a model's one score column in
        predictions.csv; None when a task has none or several per model (multiclass)."""
        spec = get_task(self.task)
        return None if spec.dense or spec.scores_per_class else f"_{spec.score_column}"

    def score_column(self, model: str) -> str | None:
        """The predictions.csv column with ``model``'s score (binary/regression/survival)."""
        suffix = self.score_suffix
        if suffix is None or self.predictions is None:
            return None
        col = f"{model}{suffix}"
        return col if col in self.predictions.columns else None

    def scored_models(self) -> list[str]:
        """Models with a score column in predictions.csv, in report order."""
        if self.predictions is None:
            return []
        suffix = self.score_suffix or "\0"
        found = [c[: -len(suffix)] for c in self.predictions.columns if c.endswith(suffix)]
        order = [m for m in MODEL_ORDER if m in found]
        return order + sorted(set(found) - set(order))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: the top level must be a JSON object")
    return data


def _read_csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, dtype={"case_id": str, "patient_id": str, "site": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not a readable CSV: {err}") from None
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}")
    return table


def _numeric(table: pd.DataFrame, path: Path, columns: list[str]) -> None:
    """Make ``columns`` numeric; a non-number is an error naming the line and column."""
    for col in columns:
        values = pd.to_numeric(table[col], errors="coerce")
        bad = values.isna() & table[col].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise UserError(
                f"{path}: line {row + 2}: column {col}: '{table[col].iloc[row]}' is not a number"
            )
        table[col] = values


def _read_splits(path: Path) -> pd.DataFrame:
    table = _read_csv(path, SPLIT_COLUMNS)
    _numeric(table, path, ["fold"])
    table["fold"] = table["fold"].astype(int)
    table["role"] = table["role"].astype(str)
    bad = ~table["role"].isin(("train", "val", "test"))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise UserError(
            f"{path}: line {row + 2}: column role: '{table['role'].iloc[row]}' is not one of "
            "train, val, test"
        )
    return table


def _read_predictions(path: Path, task: str) -> pd.DataFrame:
    truth = get_task(task).truth_columns
    table = _read_csv(path, ("case_id", *truth))
    score_like = [
        c
        for c in table.columns
        if c.rsplit("_", 1)[-1] in ("prob", "pred", "risk", "std") or "_prob_" in c
    ]
    _numeric(table, path, [*truth, *score_like])
    return table


def _run_date(metrics: dict[str, Any], metrics_path: Path) -> str:
    """``metrics.json``'s ``date`` when given, else the time the file was written."""
    if metrics.get("date"):
        return str(metrics["date"])
    return datetime.fromtimestamp(metrics_path.stat().st_mtime).strftime("%Y-%m-%d %H:%M")


def load_run(run_dir: str | Path) -> RunData:
    """Read and check the run folder's files (see the module docstring)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run folder not found: {run_dir}")
    for name in ("config.yaml", "metrics.json"):
        if not (run_dir / name).is_file():
            raise UserError(f"{run_dir}: {name} not found (is this a finished run folder?)")
    config_path = run_dir / "config.yaml"
    config_text = config_path.read_text()
    try:
        config = yaml.safe_load(config_text) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{config_path}: not valid YAML: {err}") from None
    if not isinstance(config, dict):
        raise UserError(f"{config_path}: the top level must be a mapping of sections")
    metrics_path = run_dir / "metrics.json"
    metrics = _read_json(metrics_path)
    partial = RunData(run_dir, config, config_text, metrics, "")
    task = partial.task
    if task not in TASKS:
        raise UserError(f"{metrics_path}: key task: unknown task '{task}'")
    cohort = _read_json(run_dir / "cohort.json") if (run_dir / "cohort.json").is_file() else None
    splits = _read_splits(run_dir / "splits.csv") if (run_dir / "splits.csv").is_file() else None
    pred_path = run_dir / "predictions.csv"
    predictions = _read_predictions(pred_path, task) if pred_path.is_file() else None
    return RunData(
        run_dir=run_dir,
        config=config,
        config_text=config_text,
        metrics=metrics,
        date=_run_date(metrics, metrics_path),
        cohort=cohort,
        splits=splits,
        predictions=predictions,
    )


def finite(value: Any) -> float | None:
    """``value`` as a float, or None when missing or not finite (JSON null, NaN)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None
