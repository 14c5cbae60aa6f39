"""Classification losses: BCE / CE with class weights, focal loss, balanced class weights.

Class weights follow PyTorch's ``CrossEntropyLoss(weight=...)`` convention everywhere: the
loss is the weighted mean ``sum_i w[y_i] l_i / sum_i w[y_i]``. So binary BCE on a logit ``z``
with weights ``[w0, w1]`` equals CE on the two logits ``[0, z]`` with the same weights.
Focal loss is written here because MONAI's ``FocalLoss`` (made for dense outputs) averages
over the class channel as well, so its gamma=0 case is CE / K, not CE.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepradiomics.errors import UserError


def balanced_class_weights(labels: Sequence[int] | np.ndarray, n_classes: int) -> list[float]:
    """scikit-learn's 'balanced' weights ``n / (K * count_k)`` for integer labels 0..K-1."""
    y = np.asarray(labels).astype(int).ravel()
    counts = np.bincount(y, minlength=n_classes)[:n_classes]
    if (counts == 0).any():
        missing = [k for k in range(n_classes) if counts[k] == 0]
        raise UserError(f"train.class_weight 'balanced': class(es) {missing} have no training case")
    return (len(y) / (n_classes * counts)).tolist()


def _weights(class_weights: Sequence[float] | None, n: int) -> torch.Tensor | None:
    if class_weights is None:
        return None
    w = torch.as_tensor(list(class_weights), dtype=torch.float32)
    if w.numel() != n or (w < 0).any() or w.sum() <= 0:
        raise UserError(
            f"train.class_weight: need {n} non-negative weights, got {list(class_weights)}"
        )
    return w


def _weighted_mean(loss: torch.Tensor, sample_w: torch.Tensor | None) -> torch.Tensor:
    if sample_w is None:
        return loss.mean()
    return (loss * sample_w).sum() / sample_w.sum()


class WeightedBCELoss(nn.Module):
    """Binary cross-entropy on logits ``[N]``, 0/1 targets ``[N]``; ``class_weights=[w0, w1]``."""

    def __init__(self, class_weights: Sequence[float] | None = None) -> None:
        super().__init__()
        self.register_buffer("class_weights", _weights(class_weights, 2), persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.to(logits.dtype).reshape(logits.shape)
        loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        w = self.class_weights
        sample_w = None if w is None else (1 - target) * w[0].to(logits) + target * w[1].to(logits)
        return _weighted_mean(loss, sample_w)


class WeightedCELoss(nn.CrossEntropyLoss):
    """Cross-entropy on logits ``[N, K]`` and integer targets ``[N]``, optional class weights."""

    def __init__(
        self, class_weights: Sequence[float] | None = None, n_classes: int | None = None
    ) -> None:
        n = n_classes if n_classes is not None else (len(class_weights) if class_weights else 0)
        super().__init__(weight=_weights(class_weights, n))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return super().forward(logits, target.long().reshape(-1))


class FocalLoss(nn.Module):
    """Focal loss (Lin et al. 2017): ``-alpha_t (1 - p_t)^gamma log p_t`` per sample.

    Binary (logits ``[N]``, 0/1 targets) or multiclass (logits ``[N, K]`` or per-voxel
    ``[N, K, D, H, W]``, integer targets).
    ``alpha``: binary, a float weighting positives (``1 - alpha`` for negatives); multiclass, a
    per-class list; applied as a factor as in the paper. ``class_weights`` give the CE-style
    weighted mean. With ``gamma=0`` and no alpha it is exactly (weighted) BCE / CE.
    """

    def __init__(
        self,
        gamma: float = 2.0,
        alpha: float | Sequence[float] | None = None,
        class_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if gamma < 0:
            raise UserError(f"focal loss gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)
        self.alpha = alpha
        self.class_weights = None if class_weights is None else list(class_weights)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if logits.ndim == 1:  # binary
            t = target.to(logits.dtype).reshape(logits.shape)
            logp_t = -F.binary_cross_entropy_with_logits(logits, t, reduction="none")
            k, idx = 2, t.round().long()
            alpha = (
                None
                if self.alpha is None
                else torch.stack(
                    [1 - torch.tensor(float(self.alpha)), torch.tensor(float(self.alpha))]
                )
            )
        else:  # [N, K] or dense [N, K, *spatial] with targets [N, *spatial] / [N, 1, *spatial]
            idx = target.long().reshape(logits.shape[:1] + logits.shape[2:])
            logp_t = logits.log_softmax(1).gather(1, idx.unsqueeze(1)).squeeze(1)
            k = logits.shape[1]
            alpha = None if self.alpha is None else _weights(self.alpha, k)  # type: ignore[arg-type]
        loss = -(1 - logp_t.exp()).pow(self.gamma) * logp_t
        if alpha is not None:
            loss = loss * alpha.to(logits)[idx]
        w = _weights(self.class_weights, k)
        return _weighted_mean(loss, None if w is None else w.to(logits)[idx])
