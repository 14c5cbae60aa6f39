"""``get_loss``: one loss by name, or the task's default, with the task checked.

Which losses fit which task is the task's (``tasks.Task.losses``, ``default_loss``); this
module only builds them.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from deepradiomics.errors import UserError
from deepradiomics.losses.classification import FocalLoss, WeightedBCELoss, WeightedCELoss
from deepradiomics.losses.regression import MSELoss
from deepradiomics.losses.survival import CoxLoss
from deepradiomics.tasks import LOSSES, get_task

_WEIGHTED = ("bce", "ce", "focal", "dice", "dice_ce", "dice_focal")


def get_loss(
    name: str | None, task: str, class_weights: Sequence[float] | None = None
) -> nn.Module:
    """The loss module ``name`` (``None``: the task's ``default_loss``) for ``task``.

    Call signature of every returned module: ``loss(model_out, target)`` where ``model_out`` is
    ``RadiomicsNet(...)["out"]`` and ``target`` is: binary 0/1 ``[N]``; multiclass integer
    ``[N]``; regression ``[N]`` (or ``[N, k]``); survival ``[N, 2]`` = (time, event);
    segmentation integer label map ``[N, D, H, W]``. ``class_weights`` (one per class) apply to
    the classification and segmentation losses. ``"cox"`` is ``"cox_efron"``.
    """
    spec = get_task(task)
    name = spec.default_loss if name is None else name
    if name not in LOSSES:
        raise UserError(f"train.loss: unknown loss {name!r}; one of {', '.join(LOSSES)}")
    if name not in spec.losses:
        raise UserError(
            f"train.loss: {name!r} does not fit a {spec.name} task; use one of "
            f"{', '.join(spec.losses)}"
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
