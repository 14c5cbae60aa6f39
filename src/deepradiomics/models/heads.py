"""Task heads on top of any backbone: one model = backbone -> embedding -> head(s).

``RadiomicsNet(backbone, task, ...)`` returns a dict from ``forward(x, covariates=None)``:

- ``out``: the task output. binary: ``[N]`` logits; multiclass: ``[N, K]`` logits;
  regression: ``[N]`` (``[N, k]`` when ``num_outputs=k > 1``); survival: ``[N]`` log-risk
  (linear head without bias: the Cox likelihood ignores a constant); segmentation:
  ``[N, K, D, H, W]`` per-voxel logits (K >= 2 classes incl. background, default 2).
- ``embedding``: the backbone's image embedding ``[N, F]`` (Grad-CAM, analyses).
- ``site_logits``: ``[N, n_sites]``, only when ``n_sites > 0``: a site classifier on the
  embedding behind a gradient-reversal layer, so minimising its cross-entropy pushes the
  backbone to forget the site (domain-adversarial training).

Clinical covariates are fused late: ``concat(embedding, MLP([values, missing mask]))`` feeds
the task head. Covariates come in standardised (numeric) / one-hot (categorical) with NaN
(or +-inf) for missing; a missing value enters as 0 plus a 1 in its indicator column.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from deepradiomics.errors import UserError
from deepradiomics.tasks import Task, get_task


class GradReverse(torch.autograd.Function):
    """Identity forward; multiplies the gradient by ``-lambda`` backward (Ganin & Lempitsky)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lambd: float) -> torch.Tensor:  # type: ignore[override]
        ctx.lambd = float(lambd)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return -ctx.lambd * grad, None


def grad_reverse(x: torch.Tensor, lambd: float = 1.0) -> torch.Tensor:
    return GradReverse.apply(x, lambd)


class CovariateEncoder(nn.Module):
    """``[N, K]`` covariates with NaN for missing -> ``[N, hidden]`` (value + indicator MLP)."""

    def __init__(self, n_covariates: int, hidden: int = 16) -> None:
        super().__init__()
        self.n_covariates = n_covariates
        self.net = nn.Sequential(nn.Linear(2 * n_covariates, hidden), nn.ReLU(inplace=True))
        self.num_features = hidden

    def forward(self, covariates: torch.Tensor) -> torch.Tensor:
        missing = ~torch.isfinite(covariates)
        values = torch.where(missing, torch.zeros_like(covariates), covariates)
        return self.net(torch.cat([values, missing.to(values.dtype)], dim=1))


def dann_schedule(progress: float) -> float:
    """The DANN ramp (Ganin et al. 2016, eq. 14): ``2 / (1 + exp(-10 p)) - 1`` for training
    progress ``p`` in [0, 1]; 0 at the start (the adversary learns before it pushes back), ~1
    from half-way on."""
    p = min(1.0, max(0.0, float(progress)))
    return 2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0


class SiteAdversary(nn.Module):
    """Site classifier behind a gradient-reversal layer; ``lambd`` may change during training.

    The hidden activation is a leaky ReLU: with a plain ReLU the reversed gradient can push
    the embedding where every hidden unit is off, leaving a constant classifier (site loss
    exactly log K) that no longer trains (seen on tiny cohorts, bench/confounding).
    """

    def __init__(
        self, in_features: int, n_sites: int, hidden: int = 64, lambd: float = 1.0
    ) -> None:
        super().__init__()
        self.lambd = lambd
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, n_sites)
        )

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.net(grad_reverse(embedding, self.lambd))


def _default_outputs(task: Task, num_outputs: int | None) -> int:
    """The head's outputs: the task's fixed count, else ``num_outputs`` (one per class for
    class tasks, which must say how many; otherwise default ``task.min_outputs``)."""
    if task.outputs is not None:
        if num_outputs not in (None, task.outputs):
            raise UserError(
                f"a {task.name} model has exactly {task.outputs} output(s), got "
                f"num_outputs={num_outputs}"
            )
        return task.outputs
    n = num_outputs if num_outputs is not None or task.classes else task.min_outputs
    if n is None or n < task.min_outputs:
        raise UserError(
            f"a {task.name} model needs num_outputs >= {task.min_outputs}, got {num_outputs}"
        )
    return n


class RadiomicsNet(nn.Module):
    """Backbone + task head, optional covariate fusion and site adversary (see module doc)."""

    def __init__(
        self,
        backbone: nn.Module,
        task: str | Task = "binary",
        num_outputs: int | None = None,
        n_covariates: int = 0,
        n_sites: int = 0,
        dropout: float = 0.0,
        covariate_hidden: int = 16,
        adversary_lambda: float = 1.0,
    ) -> None:
        super().__init__()
        spec = get_task(task)
        self.task = spec.name
        self.dense = spec.dense
        self.num_outputs = _default_outputs(spec, num_outputs)
        self.backbone = backbone
        self.backbone_frozen = False
        features = int(backbone.num_features)
        self.covariates = None
        if n_covariates > 0:
            if spec.dense:
                raise UserError(f"clinical covariates are not used by {spec.name} models")
            self.covariates = CovariateEncoder(n_covariates, covariate_hidden)
        self.dropout = nn.Dropout(dropout)
        if spec.dense:
            if not hasattr(backbone, "forward_dense"):
                raise UserError(
                    f"model.name: {type(backbone).__name__} cannot segment; use a U-Net ('unet')"
                )
            self.head = nn.Conv3d(int(backbone.num_dense_features), self.num_outputs, 1)
        else:
            fused = features + (covariate_hidden if self.covariates is not None else 0)
            self.head = nn.Linear(fused, self.num_outputs, bias=spec.head_bias)
        self.site_adversary = (
            SiteAdversary(features, n_sites, lambd=adversary_lambda) if n_sites > 0 else None
        )

    def freeze_backbone(self) -> None:
        """Linear probe: the backbone's parameters stop training and it stays in eval mode
        (its batch-norm statistics stay those it came with); only the heads learn."""
        self.backbone.requires_grad_(False)
        self.backbone_frozen = True
        self.backbone.eval()

    def train(self, mode: bool = True) -> RadiomicsNet:
        super().train(mode)
        if self.backbone_frozen:
            self.backbone.eval()
        return self

    def forward(
        self, x: torch.Tensor, covariates: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        if self.dense:
            dense, embedding = self.backbone.forward_dense(x)
            out = self.head(self.dropout(dense))
        else:
            embedding = self.backbone.forward_features(x)
            z = embedding
            if self.covariates is not None:
                if covariates is None:  # every covariate missing: the indicators say so
                    covariates = torch.full(
                        (x.shape[0], self.covariates.n_covariates),
                        float("nan"),
                        dtype=embedding.dtype,
                        device=embedding.device,
                    )
                if covariates.shape != (x.shape[0], self.covariates.n_covariates):
                    raise ValueError(
                        f"covariates must be [{x.shape[0]}, {self.covariates.n_covariates}],"
                        f" got {list(covariates.shape)}"
                    )
                z = torch.cat([embedding, self.covariates(covariates.to(embedding.dtype))], dim=1)
            out = self.head(self.dropout(z))
            if self.num_outputs == 1:
                out = out.squeeze(1)
        result = {"out": out, "embedding": embedding}
        if self.site_adversary is not None:
            result["site_logits"] = self.site_adversary(embedding)
        return result


def memory_format(model: nn.Module) -> torch.memory_format:
    """``channels_last_3d`` for convolution trunks; the standard layout for a backbone that
    says ``channels_last = False`` (its broadcasts and reductions are slower on the other)."""
    net = getattr(model, "module", model)  # DDP
    backbone = getattr(net, "backbone", net)
    return (
        torch.channels_last_3d
        if getattr(backbone, "channels_last", True)
        else torch.contiguous_format
    )
