"""Cox proportional-hazards negative partial log-likelihood, Breslow or Efron ties.

Written by hand (vectorised, no Python loop over samples): MONAI has no survival loss, and
torchsurv is not a dependency of this project. For event times ``t_j`` with ``d_j`` tied
events, risk-set sum ``R_j = sum_{T_i >= t_j} exp(eta_i)`` and tied-event sum
``E_j = sum_{i dies at t_j} exp(eta_i)``, the log partial likelihood is

    Breslow: sum_j [ sum_{i dies at t_j} eta_i - d_j log R_j ]
    Efron:   sum_j [ sum_{i dies at t_j} eta_i - sum_{l=0}^{d_j-1} log(R_j - l / d_j E_j) ]

(lifelines and R's ``coxph`` default to Efron). ``reduction="sum"`` returns the negative log
partial likelihood (``-lifelines.CoxPHFitter.log_likelihood_`` at the same coefficients);
``"mean"`` divides it by the number of events. A batch without events gives 0 (still
attached to the graph, so ``backward`` works).
"""

from __future__ import annotations

import torch
from torch import nn

from deepradiomics.errors import UserError

TIES = ("efron", "breslow")


def cox_partial_nll(
    log_risk: torch.Tensor,
    time: torch.Tensor,
    event: torch.Tensor,
    ties: str = "efron",
    reduction: str = "mean",
) -> torch.Tensor:
    """Negative Cox partial log-likelihood of ``log_risk`` ``[N]`` (see module doc).

    Computed in float64 with log-sum-exp (no overflow for large risks), returned in
    ``log_risk``'s dtype.
    """
    if ties not in TIES:
        raise UserError(f"train.loss: Cox ties must be one of {TIES}, got {ties!r}")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    eta = log_risk.reshape(-1)
    time = time.reshape(-1).to(eta.device)
    died = event.reshape(-1).to(eta.device) > 0
    if not (eta.numel() == time.numel() == died.numel()):
        raise ValueError("log_risk, time and event must have the same number of samples")
    n_events = int(died.sum())
    if n_events == 0:
        return eta.sum() * 0.0
    e64 = eta.double()
    # log R_g for every distinct time, stably: log-cumsum-exp over samples in descending time,
    # read at the last sample of each time group (the risk set is every T >= t_g)
    _, group = torch.unique(time, return_inverse=True)  # ascending distinct times
    order = torch.argsort(time, descending=True, stable=True)
    log_cum = torch.logcumsumexp(e64[order], 0)
    n_groups = int(group.max()) + 1
    last = torch.zeros(n_groups, dtype=torch.long, device=eta.device).scatter_reduce(
        0, group[order], torch.arange(len(order), device=eta.device), "amax"
    )
    log_risk_set = log_cum[last]
    ev_group = group[died]
    log_denom = log_risk_set[ev_group]
    if ties == "efron":
        # E_g / R_g (each term <= 1, no overflow) and the rank l of each event in its tie
        # group (0..d-1; only the set of ranks matters): log(R - l/d E) = log R + log1p(-l/d E/R)
        ratio = torch.zeros(n_groups, dtype=e64.dtype, device=eta.device).index_add(
            0, ev_group, torch.exp(e64[died] - log_denom)
        )
        d = torch.zeros(n_groups, dtype=torch.long, device=eta.device).index_add(
            0, ev_group, torch.ones_like(ev_group)
        )
        by_group = torch.argsort(ev_group, stable=True)
        starts = torch.cumsum(d, 0) - d
        rank = torch.empty_like(ev_group)
        rank[by_group] = torch.arange(n_events, device=eta.device) - starts[ev_group[by_group]]
        frac = rank.to(e64.dtype) / d[ev_group].to(e64.dtype)
        log_denom = log_denom + torch.log1p(-frac * ratio[ev_group])
    nll = (log_denom - e64[died]).sum()
    if reduction == "mean":
        nll = nll / n_events
    return nll.to(log_risk.dtype)


class CoxLoss(nn.Module):
    """``CoxLoss(ties)(log_risk [N], target [N, 2])`` with target columns (time, event)."""

    def __init__(self, ties: str = "efron", reduction: str = "mean") -> None:
        super().__init__()
        if ties not in TIES:
            raise UserError(f"train.loss: Cox ties must be one of {TIES}, got {ties!r}")
        self.ties, self.reduction = ties, reduction

    def forward(self, log_risk: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.ndim != 2 or target.shape[1] != 2:
            raise ValueError(
                f"survival target must be [N, 2] (time, event), got {list(target.shape)}"
            )
        return cox_partial_nll(log_risk, target[:, 0], target[:, 1], self.ties, self.reduction)
