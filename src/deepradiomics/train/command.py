"""``deepradiomics train CONFIG --out DIR``: train one model, evaluate it on the test part.

The split is the cohort's official one for ``.npz`` cohorts, otherwise one patient-grouped
stratified holdout (``evaluate.test_fraction``) with an inner validation split taken from
the training part. Writes ``DIR/metrics.json`` (``{"test": {metric: {value, ci_low,
ci_high}}, "val": ...}``), ``DIR/checkpoint.pt`` (every epoch, for ``--resume``),
``DIR/best.pt`` and ``DIR/config.yaml``. Runs under ``torchrun`` as well.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from deepradiomics.config import ExperimentConfig, config_to_dict, load_config, save_config
from deepradiomics.seeds import derive_seed
from deepradiomics.tasks import get_task
from deepradiomics.train import distributed as dist
from deepradiomics.train.data import ArrayData
from deepradiomics.train.loop import Setup, fit, predict, resolve_device


def build_setup(cfg: ExperimentConfig, task: str, n_classes: int, anisotropic: bool,
                spacing: tuple[float, float, float] | None) -> Setup:
    return Setup(
        task=task, train=cfg.train, augment=cfg.augment, seed=cfg.seed, anisotropic=anisotropic,
        spacing=spacing, n_classes=n_classes,
        adversary_weight=cfg.model.adversary_weight if cfg.model.site_adversary else 0.0,
        config=config_to_dict(cfg),
    )


def build_model(cfg: ExperimentConfig, task: str, in_channels: int, n_classes: int,
                spacing: tuple[float, float, float] | None, n_covariates: int = 0,
                n_sites: int = 0, load_pretrained: bool = True) -> torch.nn.Module:
    """The configured model, initialised from the config's seed, then from
    ``model.pretrained``'s published trunk weights unless ``load_pretrained`` is false
    (``predict`` loads the bundle's weights over it anyway)."""
    from deepradiomics.models import accepts_kwarg, create_model
    from deepradiomics.models import pretrained as published

    kwargs = dict(cfg.model.kwargs)
    pretrained = cfg.model.pretrained
    if pretrained is not None:  # the published architecture; isotropic kernels
        kwargs = published.pretrained_kwargs(pretrained.layout, cfg.model.name, kwargs)
    elif spacing is not None and accepts_kwarg(cfg.model.name, "spacing"):
        kwargs.setdefault("spacing", tuple(spacing))
    torch.manual_seed(derive_seed(cfg.seed, "init"))
    model = create_model(
        cfg.model.name, task=task, in_channels=in_channels,
        num_outputs=n_classes if get_task(task).scores_per_class else None, n_covariates=n_covariates,
        n_sites=n_sites if cfg.model.site_adversary else 0, dropout=cfg.model.dropout, **kwargs,
    )
    if pretrained is not None and load_pretrained:
        published.load_pretrained(model, pretrained, cfg.model.name)
    return model


def evaluate_split(task: str, data: ArrayData, pred: np.ndarray, cfg: ExperimentConfig,
                   threshold: float | None) -> dict:
    """Metric panel with patient-bootstrap CIs for one split."""
    from deepradiomics.evaluate.panel import metric_panel

    return metric_panel(task, data.targets.numpy(), pred, groups=list(data.patient_ids),
                        n_boot=cfg.evaluate.bootstrap, seed=derive_seed(cfg.seed, "bootstrap"),
                        threshold=threshold,
                        level=cfg.evaluate.ci_level)


def train_and_evaluate(cfg: ExperimentConfig, out: Path, resume: bool,
                       validation_only: bool = False) -> dict:
    """Train, then evaluate on the validation and test parts; ``validation_only`` (recipe
    exploration) leaves the test part unpredicted, so choices cannot lean on it."""
    from deepradiomics.evaluate.metrics import configured_threshold
    from deepradiomics.experiment.data import single_split

    split = single_split(cfg, out)
    parts, info, task = split.parts, split.arrays, split.arrays.task
    model = build_model(cfg, task, info.in_channels, info.n_classes, info.spacing,
                        n_covariates=split.n_covariates, n_sites=len(info.site_names))
    setup = build_setup(cfg, task, info.n_classes, info.anisotropic, info.spacing)
    result = fit(model, parts["train"], parts["val"], setup, out, resume=resume)
    device = resolve_device(cfg.train.device)
    evaluated = [n for n in parts if n != "train" and not (validation_only and n == "test")]
    preds = {name: predict(model, parts[name], task, device, tta=cfg.train.tta,
                           anisotropic=info.anisotropic) for name in evaluated}
    threshold = None
    if get_task(task).n_classes == 2:
        threshold = configured_threshold(parts["val"].targets.numpy(), preds["val"], cfg.evaluate.threshold)
    metrics = {name: evaluate_split(task, parts[name], p, cfg, threshold) for name, p in preds.items()}
    metrics.update(task=task, threshold=threshold, best_epoch=result.best_epoch,
                   epochs_run=result.epochs_run, train_seconds=round(result.seconds, 1))
    return metrics


def command(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    if args.seed is not None:
        cfg.seed = args.seed
    dist.init_from_env()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if dist.is_main():
        save_config(cfg, out / "config.yaml")
    validation_only = args.validation_only
    metrics = train_and_evaluate(cfg, out, resume=args.resume, validation_only=validation_only)
    if dist.is_main():
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        part = "val" if validation_only else "test"
        shown = ", ".join(f"{k} {v['value']:.3f}" for k, v in list(metrics.get(part, {}).items())[:4])
        print(f"{part}: {shown}\nwrote {out / 'metrics.json'}")
    return 0
