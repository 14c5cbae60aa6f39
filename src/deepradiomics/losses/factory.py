"""``get_loss``: one loss by name, or the task's default, with the task checked."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from deepradiomics.errors import UserError
from deepradiomics.losses.classification import FocalLoss, WeightedBCELoss, WeightedCELoss
from deepradiomics.losses.regression import MSELoss
from deepradiomics.losses.survival import CoxLoss

TASK_DEFAULTS = {
    "binary": "bce",
    "multiclass": "ce",
    "regression": "mse",
    "survival": "cox_efron",
    "segmentation": "dice_ce",
}

# loss name -> the tasks it fits
LOSS_TASKS = {
    "bce": ("binary",),
    "ce": ("multiclass",),
    "focal": ("binary", "multiclass"),
    "mse": ("regression",),
    "cox": ("survival",),
    "cox_efron": ("survival",),
    "cox_breslow": ("survival",),
    "dice": ("segmentation",),
    "dice_ce": ("segmentation",),
    "dice_focal": ("segmentation",),
}

_WEIGHTED = ("bce", "ce", "focal", "dice", "dice_ce", "dice_focal")


def get_loss(
    name: str | None, task: str, class_weights: Sequence[float] | None = None
) -> nn.Module:
    """The loss module ``name`` (``None``: ``TASK_DEFAULTS[task]``) for ``task``.

    Call signature of every returned module: ``loss(model_out, target)`` where ``model_out`` is
    ``RadiomicsNet(...)["out"]`` and ``target`` is: binary 0/1 ``[N]``; multiclass integer
    ``[N]``; regression ``[N]`` (or ``[N, k]``); survival ``[N, 2]`` = (time, event);
    segmentation integer label map ``[N, D, H, W]``. ``class_weights`` (one per class) apply to
    the classification and segmentation losses. ``"cox"`` is ``"cox_efron"``.
    """
    if task not in TASK_DEFAULTS:
        raise UserError(f"cohort.task: unknown task {task!r}; one of {', '.join(TASK_DEFAULTS)}")
    name = TASK_DEFAULTS[task] if name is None else name
    if name not in LOSS_TASKS:
        raise UserError(f"train.loss: unknown loss {name!r}; one of {', '.join(LOSS_TASKS)}")
    if task not in LOSS_TASKS[name]:
        fits = [n for n, tasks in LOSS_TASKS.items() if task in tasks]
        raise UserError(
            f"train.loss: {name!r} does not fit a {task} task; use one of {', '.join(fits)}"
        )
    if class_weights is not None and name not in _WEIGHTED:
        raise UserError(f"train.class_weight: the {name!r} loss takes no class weights")

    if name == "bce":
        return WeightedBCELoss(class_weights)
    if name == "ce":
        return WeightedCELoss(class_weights)
    if name == "focal":
        return FocalLoss(class_weights=class_weights)
    if name == "mse":
        return MSELoss()
    if name.startswith("cox"):
        return CoxLoss("breslow" if name == "cox_breslow" else "efron")
    from deepradiomics.losses.segmentation import SegmentationLoss  # imports MONAI

    return SegmentationLoss(name, class_weights)
