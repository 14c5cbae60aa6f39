"""Regression loss."""

from __future__ import annotations

import torch
from torch import nn


class MSELoss(nn.MSELoss):
    """Mean squared error; the target is reshaped to the prediction's shape (``[N]`` or
    ``[N, k]``) so a ``[N]`` vs ``[N, 1]`` mix-up cannot broadcast into an ``N x N`` loss."""

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return super().forward(prediction, target.to(prediction.dtype).reshape(prediction.shape))
