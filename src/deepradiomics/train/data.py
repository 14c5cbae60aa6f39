"""Whole cohorts held in memory as tensors: the training loop's only view of the data.

At radiomics crop sizes a cohort fits in memory (300 cases x 2 x 64^3 float32 is 0.6 GB),
so there is no per-sample Dataset/DataLoader: the loop indexes batches from resident
tensors and augments them batched on the training device (see ``augment``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from deepradiomics.errors import UserError

NPZ_SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ArrayData:
    """Images [N, C, D, H, W] and per-case targets, aligned by row.

    ``targets``: float [N] (binary 0/1, regression), long [N] (multiclass), float [N, 2]
    (survival: time, event); ``masks`` uint8 [N, D, H, W] (segmentation or ROI);
    ``covariates`` float [N, K] with NaN where missing; ``sites`` long [N].
    """

    images: torch.Tensor
    targets: torch.Tensor
    case_ids: tuple[str, ...]
    patient_ids: tuple[str, ...]
    covariates: torch.Tensor | None = None
    sites: torch.Tensor | None = None
    masks: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, index: np.ndarray | list[int] | torch.Tensor) -> "ArrayData":
        idx = torch.as_tensor(np.asarray(index), dtype=torch.long)
        pick = lambda t: None if t is None else t[idx]  # noqa: E731
        return replace(
            self,
            images=self.images[idx],
            targets=self.targets[idx],
            case_ids=tuple(self.case_ids[i] for i in idx.tolist()),
            patient_ids=tuple(self.patient_ids[i] for i in idx.tolist()),
            covariates=pick(self.covariates),
            sites=pick(self.sites),
            masks=pick(self.masks),
        )


def load_npz(path: str | Path) -> dict[str, ArrayData]:
    """A MedMNIST-style ``.npz`` (``train_/val_/test_images`` and ``_labels``) with its split.

    uint8 images are scaled to [0, 1]; each image is its own patient (MedMNIST splits are
    patient-level already).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"cohort file not found: {path}")
    with np.load(path) as npz:
        missing = [f"{s}_{k}" for s in NPZ_SPLITS for k in ("images", "labels") if f"{s}_{k}" not in npz]
        if missing:
            raise UserError(f"{path}: missing arrays {', '.join(missing)} (MedMNIST layout expected)")
        out = {}
        for split in NPZ_SPLITS:
            images = npz[f"{split}_images"]
            labels = npz[f"{split}_labels"].reshape(len(images), -1)
            if images.ndim == 4:
                images = images[:, None]
            if images.ndim != 5:
                raise UserError(f"{path}: {split}_images has shape {images.shape}, expected N x D x H x W")
            scale = 255.0 if images.dtype == np.uint8 else 1.0
            ids = tuple(f"{split}_{i:05d}" for i in range(len(images)))
            out[split] = ArrayData(
                images=torch.from_numpy(images.astype(np.float32) / scale),
                targets=torch.from_numpy(labels[:, 0].astype(np.float32)),
                case_ids=ids,
                patient_ids=ids,
            )
    return out
