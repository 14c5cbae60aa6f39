"""MedMNIST-style ``.npz`` cohorts: images and labels with their official split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from deepradiomics.config import ExperimentConfig
from deepradiomics.dataset.arrays import ArrayData, CohortArrays
from deepradiomics.errors import UserError
from deepradiomics.tasks import get_task

NPZ_SPLITS = ("train", "val", "test")


def load_npz(path: str | Path) -> dict[str, ArrayData]:
    """A MedMNIST-style ``.npz`` (``train_/val_/test_images`` and ``_labels``) with its split.

    uint8 images are scaled to [0, 1]; each image is its own patient (MedMNIST splits are
    patient-level already).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"cohort file not found: {path}")
    with np.load(path) as npz:
        missing = [
            f"{s}_{k}" for s in NPZ_SPLITS for k in ("images", "labels") if f"{s}_{k}" not in npz
        ]
        if missing:
            raise UserError(
                f"{path}: missing arrays {', '.join(missing)} (MedMNIST layout expected)"
            )
        out = {}
        for split in NPZ_SPLITS:
            images = npz[f"{split}_images"]
            labels = npz[f"{split}_labels"].reshape(len(images), -1)
            if labels.shape[1] != 1:
                raise UserError(
                    f"{path}: {split}_labels has {labels.shape[1]} columns per image; one "
                    "class label per image expected (multi-label cohorts are not supported)"
                )
            bad = ~np.isfinite(labels[:, 0]) | (labels[:, 0] < 0) | (labels[:, 0] % 1 != 0)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise UserError(
                    f"{path}: {split}_labels[{i}] is {labels[i, 0]}; labels must be class "
                    "indices 0, 1, 2, ..."
                )
            if images.ndim == 4:
                images = images[:, None]
            if images.ndim != 5:
                raise UserError(
                    f"{path}: {split}_images has shape {images.shape}, expected N x D x H x W"
                )
            scale = 255.0 if images.dtype == np.uint8 else 1.0
            ids = tuple(f"{split}_{i:05d}" for i in range(len(images)))
            out[split] = ArrayData(
                images=torch.from_numpy(images.astype(np.float32) / scale),
                targets=torch.from_numpy(labels[:, 0].astype(np.float32)),
                case_ids=ids,
                patient_ids=ids,
            )
    return out


def npz_arrays(cfg: ExperimentConfig) -> CohortArrays:
    """Every case of the configured ``.npz`` cohort, with the official split per case."""
    if not get_task(cfg.cohort.task).classes:
        raise UserError(
            f"cohort.task: a .npz cohort holds class labels; task '{cfg.cohort.task}' "
            "needs a CSV cohort"
        )
    parts = load_npz(cfg.cohort.path)
    images = torch.cat([parts[s].images for s in NPZ_SPLITS])
    targets = torch.cat([parts[s].targets for s in NPZ_SPLITS])
    ids = sum((parts[s].case_ids for s in NPZ_SPLITS), ())
    n_classes = int(targets.max().item()) + 1
    classes = cfg.cohort.classes or [str(c) for c in range(n_classes)]
    if n_classes > len(classes):
        split, top = next(
            (s, int(t.max().item()))
            for s in NPZ_SPLITS
            if len(t := parts[s].targets) and t.max().item() >= len(classes)
        )
        raise UserError(
            f"{cfg.cohort.path}: {split}_labels go up to {top}, but cohort.classes "
            f"names {len(classes)} classes ({', '.join(map(str, classes))}); give one name "
            "per class"
        )
    task = "binary" if len(classes) == 2 else "multiclass"
    if task == "multiclass":
        targets = targets.long()
    data = ArrayData(images=images, targets=targets, case_ids=ids, patient_ids=ids)
    official = np.concatenate([[s] * len(parts[s]) for s in NPZ_SPLITS])
    return CohortArrays(task=task, data=data, classes=classes, official=official)
