"""Model-randomisation sanity check for attribution methods (Adebayo et al., NeurIPS 2018).

The parameterised layers of a trained model are re-initialised one after another from the
top (the head) down to the first convolution (*cascading randomisation*); after each step the
method's map of every case is compared with the trained model's map by Spearman rank
correlation and SSIM. A method that explains the model must give different maps once the
model is random; one that only reflects the input (an edge detector) does not.

A method **passes** when the median (over cases) Spearman correlation between the trained
model's map and the fully randomised model's map (over the voxels where either is non-zero:
two maps zero on the same background would otherwise agree on every background voxel) is
below ``PASS_SPEARMAN`` = 0.5: maps that
still share more than half their rank order with a network of random weights say more about
the image than about what the model learned.

SSIM is computed on maps scaled to [0, 1] by each map's maximum (SSIM needs a common range;
this scaling is for the comparison only), with a 7^3 uniform window and Wang et al.'s
constants; written here because scikit-image is not a dependency.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from scipy import ndimage, stats
from torch import nn

Method = Callable[[nn.Module, torch.Tensor], torch.Tensor]  # (model, x) -> maps [N, D, H, W]
PASS_SPEARMAN = 0.5


def parameter_layers(model: nn.Module, x: torch.Tensor) -> list[str]:
    """Names of the modules that own parameters, in the order the forward pass runs them."""
    order: list[str] = []
    hooks = []
    for name, module in model.named_modules():
        if name and any(True for _ in module.parameters(recurse=False)):
            hooks.append(
                module.register_forward_hook(
                    lambda m, i, o, name=name: order.append(name) if name not in order else None
                )
            )
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return order


def randomise(module: nn.Module, generator: torch.Generator) -> None:
    """Re-draw ``module``'s own parameters: N(0, std) with the trained tensor's std (at least
    0.01; norm scales N(1, 0.1), shifts and biases N(0, 0.1)); norm running stats reset."""
    with torch.no_grad():
        for name, p in module.named_parameters(recurse=False):
            if p.dim() >= 2:
                std = max(float(p.std()), 0.01)
                p.copy_(torch.randn(p.shape, generator=generator) * std)
            elif name == "weight":
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=generator))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=generator))
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_mean is not None:
            module.reset_running_stats()


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation of two maps over the voxels where either is non-zero (0 when either
    is constant there). Voxels where both are zero (outside the layer's support, such as a
    map gated by the lesion mask, or below the ReLU in both) say nothing about the weights,
    and their tied ranks would count as agreement."""
    a, b = np.ravel(a), np.ravel(b)
    either = (a != 0) | (b != 0)
    a, b = a[either], b[either]
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(stats.spearmanr(a, b).statistic)


def ssim(a: np.ndarray, b: np.ndarray, window: int = 7) -> float:
    """Mean SSIM of two maps, each scaled to [0, 1] by its maximum absolute value."""

    def scaled(m: np.ndarray) -> np.ndarray:
        top = float(np.abs(m).max())
        return np.asarray(m, dtype=np.float64) / top if top > 0 else np.zeros(m.shape)

    a, b = scaled(a), scaled(b)
    size = min(window, *a.shape)
    mean = lambda v: ndimage.uniform_filter(v, size=size)  # noqa: E731
    mu_a, mu_b = mean(a), mean(b)
    var_a = mean(a * a) - mu_a**2
    var_b = mean(b * b) - mu_b**2
    cov = mean(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    return float(s.mean())


@dataclass
class SanityResult:
    """Per cascade step (``layers[k]`` randomised, with every layer above it): median and
    per-case similarities to the trained model's maps; ``passed`` on the last step."""

    method: str
    layers: list[str]
    spearman: list[float]  # median over cases, per step
    ssim: list[float]
    spearman_cases: list[list[float]] = field(default_factory=list)
    threshold: float = PASS_SPEARMAN

    @property
    def final_spearman(self) -> float:
        return self.spearman[-1]

    @property
    def passed(self) -> bool:
        return self.final_spearman < self.threshold

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("spearman_cases")
        d.update(
            final_spearman=round(self.final_spearman, 4),
            final_ssim=round(self.ssim[-1], 4),
            passed=self.passed,
            rule=f"passes when the median Spearman correlation between the trained and "
            f"the fully randomised model's maps (over the voxels where either is non-zero) "
            f"is below {self.threshold}",
        )
        d["spearman"] = [round(v, 4) for v in self.spearman]
        d["ssim"] = [round(v, 4) for v in self.ssim]
        return d


def cascading_randomisation(
    model: nn.Module,
    x: torch.Tensor,
    method: Method,
    name: str = "method",
    seed: int = 0,
    max_steps: int = 8,
) -> SanityResult:
    """Run the check for ``method`` on cases ``x`` (the model itself is not modified).

    At most ``max_steps`` comparisons, evenly spread over the cascade, the last one always
    being the fully randomised model.
    """
    model = copy.deepcopy(model).eval()
    layers = parameter_layers(model, x)[::-1]  # top (head) first
    if not layers:
        raise ValueError("the model has no parameters to randomise")
    steps = sorted(
        {int(round(v)) for v in np.linspace(0, len(layers) - 1, min(max_steps, len(layers)))}
    )
    reference = method(model, x).detach().cpu().numpy()
    generator = torch.Generator().manual_seed(seed)
    rho, sim, per_case, names = [], [], [], []
    for k, layer in enumerate(layers):
        randomise(model.get_submodule(layer), generator)
        if k not in steps:
            continue
        maps = method(model, x).detach().cpu().numpy()
        r = [spearman(a, b) for a, b in zip(reference, maps, strict=False)]
        s = [ssim(a, b) for a, b in zip(reference, maps, strict=False)]
        per_case.append(r)
        rho.append(float(np.median(r)))
        sim.append(float(np.median(s)))
        names.append(layer)
    return SanityResult(name, names, rho, sim, per_case)
