"""One model on one split (what ``deepradiomics train`` runs): train, then evaluate on test.

The split is the cohort's official one for ``.npz`` cohorts, otherwise one patient-grouped
stratified holdout (``evaluate.test_fraction``) with an inner validation split taken from
the training part. ``train_and_evaluate`` writes ``DIR/splits.csv``, ``DIR/checkpoint.pt``
(every epoch, for ``resume``), ``DIR/best.pt`` and ``DIR/history.jsonl`` and returns the
metrics (``{"test": {metric: {value, ci_low, ci_high}}, "val": ...}``). Runs under
``torchrun`` as well.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepradiomics.config import ExperimentConfig, save_config
from deepradiomics.dataset.arrays import ArrayData
from deepradiomics.dataset.splits import single_split
from deepradiomics.evaluate.metrics import configured_threshold
from deepradiomics.evaluate.panel import metric_panel
from deepradiomics.files import write_json
from deepradiomics.models import build_from_config
from deepradiomics.seeds import derive_seed
from deepradiomics.tasks import get_task
from deepradiomics.train import distributed as dist
from deepradiomics.train.loop import fit, predict, resolve_device, setup_from_config


def evaluate_split(
    task: str,
    data: ArrayData,
    pred: np.ndarray,
    cfg: ExperimentConfig,
    threshold: float | None,
    spacing: tuple[float, float, float] | None = None,
) -> dict:
    """Metric panel with patient-bootstrap CIs for one split (segmentation: against the
    masks, distances in the units of ``spacing``)."""
    truth = data.masks.numpy() if get_task(task).dense else data.targets.numpy()
    return metric_panel(
        task,
        truth,
        pred,
        spacing=spacing,
        groups=list(data.patient_ids),
        n_boot=cfg.evaluate.bootstrap,
        seed=derive_seed(cfg.seed, "bootstrap"),
        threshold=threshold,
        level=cfg.evaluate.ci_level,
    )


def train_and_evaluate(
    cfg: ExperimentConfig, out: Path, resume: bool, validation_only: bool = False
) -> dict:
    """Train the configured model on one split into ``out``; its metrics per split.
    ``validation_only`` (recipe exploration) leaves the test part unpredicted, so choices
    cannot lean on it."""
    split = single_split(cfg, out)
    parts, info, task = split.parts, split.arrays, split.arrays.task
    model = build_from_config(
        cfg,
        task,
        info.in_channels,
        info.n_classes,
        info.spacing,
        n_covariates=split.n_covariates,
        n_sites=len(info.site_names),
    )
    setup = setup_from_config(cfg, task, info.n_classes, info.anisotropic, info.spacing)
    result = fit(model, parts["train"], parts["val"], setup, out, resume=resume)
    device = resolve_device(cfg.train.device)
    evaluated = [n for n in parts if n != "train" and not (validation_only and n == "test")]
    preds = {
        name: predict(
            model,
            parts[name],
            task,
            device,
            tta=cfg.flip_tta,
            anisotropic=info.anisotropic,
            patch=cfg.train.patch,
            overlap=cfg.train.sw_overlap,
        )
        for name in evaluated
    }
    threshold = None
    if get_task(task).n_classes == 2:
        threshold = configured_threshold(
            parts["val"].targets.numpy(), preds["val"], cfg.evaluate.threshold
        )
    metrics = {
        name: evaluate_split(task, parts[name], p, cfg, threshold, info.spacing)
        for name, p in preds.items()
    }
    metrics.update(
        task=task,
        threshold=threshold,
        best_epoch=result.best_epoch,
        epochs_run=result.epochs_run,
        train_seconds=round(result.seconds, 1),
    )
    if info.plan_fit is not None:
        metrics["plan"] = info.plan_fit  # what the plan saw: the training part
    return metrics


def train_to_folder(
    cfg: ExperimentConfig, out: Path, resume: bool = False, validation_only: bool = False
) -> dict:
    """``train_and_evaluate`` alone or as one process under ``torchrun``; the main process
    also writes ``out/config.yaml`` and ``out/metrics.json``."""
    dist.init_from_env()
    out.mkdir(parents=True, exist_ok=True)
    if dist.is_main():
        save_config(cfg, out / "config.yaml")
    metrics = train_and_evaluate(cfg, out, resume=resume, validation_only=validation_only)
    if dist.is_main():
        write_json(out / "metrics.json", metrics)
    return metrics
