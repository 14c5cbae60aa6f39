"""The Python API, for notebooks and scripts (``import deepradiomics as dr``)::

    cfg = dr.load_config("experiment.yaml")        # or a dict of the same sections
    result = dr.run(cfg, "runs/first")             # the whole experiment, resumable
    result.metrics["test"]["auc"]                  # {"value", "ci_low", "ci_high"}
    result.predictions                             # DataFrame: out-of-fold predictions
    result.report, result.bundle                   # paths in the run folder
    preds = dr.predict(result.bundle, "new.csv")   # or a DataFrame of new cases

The same pipeline as the CLI (``run`` and ``predict`` write and read the same files).
``deepradiomics/__init__.py`` imports this module only when one of these names is used, so
``import deepradiomics`` stays light (no torch).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from deepradiomics import config as _config
from deepradiomics.config import ExperimentConfig
from deepradiomics.experiment.executor import ExecutorSpec
from deepradiomics.experiment.runner import run_experiment
from deepradiomics.inference import predict_cases

__all__ = ["RunResult", "load_config", "predict", "run"]


def load_config(source: str | Path | Mapping[str, Any] | ExperimentConfig) -> ExperimentConfig:
    """The validated experiment config from a YAML path or a mapping of sections (relative
    paths in a mapping are resolved against the current folder); errors name the key."""
    if isinstance(source, ExperimentConfig):
        return source
    if isinstance(source, Mapping):
        return _config.parse_config(dict(source), source="config", base_dir=Path.cwd())
    return _config.load_config(source)


@dataclass(frozen=True)
class RunResult:
    """What ``run`` wrote: its folder, the ``metrics.json`` content and ``predictions.csv``."""

    folder: Path
    metrics: dict[str, Any]
    predictions: pd.DataFrame

    @property
    def report(self) -> Path:
        return self.folder / "report.html"

    @property
    def bundle(self) -> Path:
        return self.folder / "bundle"

    @property
    def model_card(self) -> Path:
        return self.folder / "model_card.md"

    @property
    def splits(self) -> Path:
        return self.folder / "splits.csv"

    def __repr__(self) -> str:
        head = self.metrics.get("test", {})
        shown = ", ".join(f"{k} {v['value']:.3f}" for k, v in list(head.items())[:3])
        return f"RunResult({str(self.folder)!r}, {len(self.predictions)} cases; {shown})"


def run(
    config: str | Path | Mapping[str, Any] | ExperimentConfig,
    out: str | Path,
    progress: bool = True,
    executor: ExecutorSpec | None = None,
) -> RunResult:
    """Run (or resume) the experiment into the folder ``out``, as ``deepradiomics run``;
    ``executor`` (``ExecutorSpec(kind="ray", ...)``) runs the fits elsewhere."""
    folder = Path(out)
    metrics = run_experiment(load_config(config), folder, progress=progress, executor=executor)
    predictions = pd.read_csv(
        folder / "predictions.csv",
        dtype={"case_id": str, "patient_id": str, "site": str},
        keep_default_na=False,
        na_values=[""],
    )
    return RunResult(folder, metrics, predictions)


def predict(
    bundle: str | Path,
    cases: str | Path | pd.DataFrame,
    base_dir: str | Path | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Predictions of a run's bundle for new cases, as ``deepradiomics predict`` writes them:
    one row per case (``status`` ok / failed with its ``reason``), the task's prediction
    columns, ``uncertainty`` and ``n_members``.

    ``cases``: a cohort CSV path, or a DataFrame with the same columns (relative image paths
    are resolved against ``base_dir``, default the current folder).
    """
    return predict_cases(bundle, cases, workers=workers, progress=progress, base_dir=base_dir).table
