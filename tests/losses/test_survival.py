"""Cox partial likelihood against lifelines (Efron), scikit-survival (Breslow) and by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from deepradiomics.errors import UserError
from deepradiomics.losses import CoxLoss, cox_partial_nll, get_loss


def _cohort(seed: int = 0, n: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    hazard = np.exp(x @ np.array([0.8, -0.5, 0.3]))
    time = np.ceil(rng.exponential(1 / hazard) * 4)  # coarse integer times: many ties
    event = (rng.uniform(size=n) < 0.7).astype(float)
    return x, time, event


def _nll(eta: np.ndarray, time: np.ndarray, event: np.ndarray, **kw) -> torch.Tensor:
    return cox_partial_nll(torch.tensor(eta), torch.tensor(time), torch.tensor(event), **kw)


def test_efron_equals_lifelines_log_likelihood() -> None:
    from lifelines import CoxPHFitter

    x, time, event = _cohort()
    assert len(np.unique(time[event > 0])) < int(event.sum())  # the data does have tied events
    df = pd.DataFrame(x, columns=["a", "b", "c"]).assign(T=time, E=event)
    cph = CoxPHFitter().fit(df, duration_col="T", event_col="E")
    eta = x @ cph.params_.to_numpy()
    ours = _nll(eta, time, event, ties="efron", reduction="sum")
    assert ours.item() == pytest.approx(-cph.log_likelihood_, abs=1e-6)
    mean = _nll(eta, time, event, ties="efron", reduction="mean")
    assert mean.item() == pytest.approx(-cph.log_likelihood_ / event.sum(), abs=1e-8)


def test_efron_gradient_vanishes_at_lifelines_optimum() -> None:
    from lifelines import CoxPHFitter

    x, time, event = _cohort(seed=1)
    df = pd.DataFrame(x, columns=["a", "b", "c"]).assign(T=time, E=event)
    fit = CoxPHFitter().fit(df, "T", "E", fit_options={"precision": 1e-12})
    beta = torch.tensor(fit.params_.to_numpy(), requires_grad=True)
    cox_partial_nll(
        torch.tensor(x) @ beta, torch.tensor(time), torch.tensor(event), "efron", "sum"
    ).backward()
    assert beta.grad.abs().max().item() < 1e-4


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_matches_scikit_survival(ties: str) -> None:
    from sksurv.linear_model import CoxPHSurvivalAnalysis
    from sksurv.linear_model.coxph import CoxPHOptimizer
    from sksurv.util import Surv

    x, time, event = _cohort(seed=2)
    y = Surv.from_arrays(event.astype(bool), time)
    coef = CoxPHSurvivalAnalysis(ties=ties).fit(x, y).coef_
    # sksurv's optimiser reports the negative log partial likelihood divided by n_samples
    ref = CoxPHOptimizer(x, event.astype(bool), time, np.zeros(3), ties).nlog_likelihood(
        coef
    ) * len(x)
    beta = torch.tensor(coef, requires_grad=True)
    ours = cox_partial_nll(
        torch.tensor(x) @ beta, torch.tensor(time), torch.tensor(event), ties, "sum"
    )
    assert ours.item() == pytest.approx(ref, abs=1e-8)
    ours.backward()
    assert beta.grad.abs().max().item() < 1e-4  # sksurv's coefficients are our optimum too


def test_breslow_and_efron_by_hand() -> None:
    # times 1, 1 (both events, tied), 2 (censored), 3 (event)
    eta = np.array([0.1, -0.4, 0.7, 0.2])
    time = np.array([1.0, 1.0, 2.0, 3.0])
    event = np.array([1.0, 1.0, 0.0, 1.0])
    e = np.exp(eta)
    r1, r3, tied = e.sum(), e[3], e[0] + e[1]
    breslow = -(eta[0] + eta[1] - 2 * math.log(r1)) - (eta[3] - math.log(r3))
    efron = -(eta[0] + eta[1] - math.log(r1) - math.log(r1 - tied / 2)) - (eta[3] - math.log(r3))
    assert _nll(eta, time, event, ties="breslow", reduction="sum").item() == pytest.approx(
        breslow, abs=1e-12
    )
    assert _nll(eta, time, event, ties="efron", reduction="sum").item() == pytest.approx(
        efron, abs=1e-12
    )
    # without ties the two agree
    time_distinct = np.array([1.0, 1.5, 2.0, 3.0])
    assert _nll(eta, time_distinct, event, ties="breslow").item() == pytest.approx(
        _nll(eta, time_distinct, event, ties="efron").item(), abs=1e-12
    )


def test_invariant_to_order_and_shift_and_stable_for_large_risks() -> None:
    x, time, event = _cohort(seed=3, n=30)
    eta = x @ np.array([1.0, 2.0, -1.0])
    perm = np.random.default_rng(0).permutation(len(eta))
    a = _nll(eta, time, event).item()
    assert _nll(eta[perm], time[perm], event[perm]).item() == pytest.approx(a, abs=1e-10)
    assert _nll(eta + 500.0, time, event).item() == pytest.approx(a, abs=1e-8)  # no overflow
    assert math.isfinite(_nll(eta * 300.0, time, event).item())


def test_no_events_gives_zero_with_gradient() -> None:
    eta = torch.randn(5, requires_grad=True)
    loss = cox_partial_nll(eta, torch.arange(5.0), torch.zeros(5))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(eta.grad, torch.zeros(5))


def test_float32_input_and_module_interface() -> None:
    x, time, event = _cohort(seed=4, n=20)
    eta = torch.tensor(x[:, 0], dtype=torch.float32, requires_grad=True)
    target = torch.tensor(np.stack([time, event], 1), dtype=torch.float32)
    loss = get_loss(None, "survival")(eta, target)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(_nll(x[:, 0], time, event).item(), rel=1e-5)
    loss.backward()
    assert torch.isfinite(eta.grad).all()
    assert get_loss("cox_breslow", "survival").ties == "breslow"
    with pytest.raises(ValueError, match=r"\[N, 2\]"):
        CoxLoss()(eta, target[:, 0])
    with pytest.raises(UserError, match="ties"):
        CoxLoss("exact")
