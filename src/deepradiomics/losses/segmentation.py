"""Segmentation losses: MONAI's soft Dice and Dice + CE, and Dice + Focal, for our heads.

Logits are ``[N, K, D, H, W]`` with K >= 2 (background first, softmax); targets are integer
label maps ``[N, D, H, W]`` or ``[N, 1, D, H, W]``. Dice is computed on the foreground classes
(``include_background=False``), smoothed so empty masks predicted empty score 0 loss.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deepradiomics.errors import UserError
from deepradiomics.losses.classification import FocalLoss

KINDS = ("dice", "dice_ce", "dice_focal")


class SegmentationLoss(nn.Module):
    """``kind``: ``dice`` (MONAI DiceLoss), ``dice_ce`` (MONAI DiceCELoss) or ``dice_focal``
    (MONAI DiceLoss + our softmax ``FocalLoss``); softmax over the K classes."""

    def __init__(
        self,
        kind: str = "dice_ce",
        class_weights: Sequence[float] | None = None,
        gamma: float = 2.0,
        smooth: float = 1e-5,
    ) -> None:
        super().__init__()
        from monai.losses import DiceCELoss, DiceLoss  # heavy import, only when used

        if kind not in KINDS:
            raise UserError(
                f"train.loss: unknown segmentation loss {kind!r}; one of {', '.join(KINDS)}"
            )
        common = dict(
            include_background=False,
            to_onehot_y=True,
            softmax=True,
            smooth_nr=smooth,
            smooth_dr=smooth,
        )
        weight = (
            None
            if class_weights is None
            else torch.as_tensor(list(class_weights), dtype=torch.float32)
        )
        if kind == "dice_ce":
            self.loss = DiceCELoss(**common, weight=weight)
        else:
            self.loss = DiceLoss(**common, weight=None if weight is None else weight[1:])
        # MONAI's DiceFocalLoss applies a per-channel *sigmoid* focal term, which does not fit
        # softmax logits (a perfect softmax prediction still costs); our softmax focal loss
        # over all classes is the CE of Dice + CE with the (1 - p_t)^gamma factor.
        self.focal = (
            FocalLoss(gamma=gamma, class_weights=class_weights) if kind == "dice_focal" else None
        )
        self.kind = kind

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if logits.shape[1] < 2:
            raise ValueError("segmentation logits need K >= 2 channels (background first)")
        if target.ndim == logits.ndim - 1:
            target = target.unsqueeze(1)
        loss = self.loss(logits, target.to(logits.dtype))
        if self.focal is not None:
            loss = loss + self.focal(logits, target)
        return loss
