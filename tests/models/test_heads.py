"""Heads: task outputs, covariate fusion with missing values, gradient reversal, site adversary."""

from __future__ import annotations

import pytest
import torch

from deepradiomics.errors import UserError
from deepradiomics.models import RadiomicsNet, create_backbone, create_model, grad_reverse
from deepradiomics.models.heads import CovariateEncoder


def _x(n: int = 3) -> torch.Tensor:
    return torch.randn(n, 1, 16, 16, 16, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(
    ("task", "k", "shape"),
    [
        ("binary", None, (3,)),
        ("multiclass", 4, (3, 4)),
        ("regression", None, (3,)),
        ("regression", 2, (3, 2)),
        ("survival", None, (3,)),
    ],
)
def test_task_output_shapes(task: str, k: int | None, shape: tuple) -> None:
    torch.manual_seed(0)
    model = create_model("small3d", task=task, num_outputs=k, widths=(4, 8)).eval()
    out = model(_x())
    assert out["out"].shape == shape and out["embedding"].shape == (3, 8)
    assert "site_logits" not in out


def test_survival_head_has_no_bias() -> None:
    model = create_model("small3d", task="survival", widths=(4, 8))
    assert model.head.bias is None
    assert create_model("small3d", widths=(4, 8)).head.bias is not None


def test_segmentation_head_on_unet() -> None:
    torch.manual_seed(0)
    model = create_model("unet", task="segmentation", num_outputs=3, filters=(4, 8, 16)).eval()
    out = model(torch.randn(2, 1, 8, 12, 16))
    assert out["out"].shape == (2, 3, 8, 12, 16) and out["embedding"].shape == (2, 16)
    with pytest.raises(UserError, match="not used by segmentation"):
        create_model("unet", task="segmentation", n_covariates=2)


def test_unet_forward_matches_monai_dynunet() -> None:
    from monai.networks.nets import DynUNet

    torch.manual_seed(0)
    bb = create_backbone("unet", filters=(4, 8, 16, 32))
    ref = DynUNet(
        3,
        1,
        2,
        kernel_size=[(3, 3, 3)] * 4,
        strides=[(1, 1, 1)] + [(2, 2, 2)] * 3,
        upsample_kernel_size=[(2, 2, 2)] * 3,
        filters=[4, 8, 16, 32],
        norm_name=("INSTANCE", {"affine": True}),
    )
    for name in ("input_block", "downsamples", "bottleneck", "upsamples"):
        getattr(ref, name).load_state_dict(getattr(bb, name).state_dict())
    x = torch.randn(1, 1, 16, 16, 16)
    dense, _ = bb.forward_dense(x)
    torch.testing.assert_close(ref.output_block(dense), ref(x))


def test_missing_covariates_are_explicit() -> None:
    torch.manual_seed(0)
    model = create_model("small3d", widths=(4, 8), n_covariates=3).eval()
    x = _x(2)
    full = torch.tensor([[0.3, -1.0, 2.0], [1.0, 0.5, -0.2]])
    with_nan = full.clone()
    with_nan[0, 1] = float("nan")
    out = model(x, with_nan)["out"]
    assert torch.isfinite(out).all()
    # a missing value is not the same as an observed 0: the indicator changes the output
    zero = full.clone()
    zero[0, 1] = 0.0
    assert not torch.allclose(model(x, zero)["out"][0], out[0])
    assert torch.equal(model(x, zero)["out"][1], out[1])  # the other case is untouched
    # covariates=None means all missing, same as an all-NaN matrix
    all_nan = torch.full((2, 3), float("nan"))
    torch.testing.assert_close(model(x)["out"], model(x, all_nan)["out"])
    # the encoder sees [values with 0 for missing, indicators]
    enc = CovariateEncoder(2, hidden=4)
    lin = enc.net[0]
    c = torch.tensor([[float("nan"), 2.0]])
    expected = torch.relu(lin(torch.tensor([[0.0, 2.0, 1.0, 0.0]])))
    torch.testing.assert_close(enc(c), expected)
    with pytest.raises(ValueError, match=r"covariates must be \[2, 3\]"):
        model(x, full[:, :2])


def test_covariates_reach_the_output_with_gradients() -> None:
    torch.manual_seed(0)
    model = create_model("small3d", widths=(4, 8), n_covariates=2, dropout=0.5)
    cov = torch.tensor([[1.0, float("nan")], [0.0, 1.0], [2.0, 3.0]])
    model(_x(), cov)["out"].sum().backward()
    assert model.covariates.net[0].weight.grad.abs().sum() > 0
    assert torch.isfinite(model.covariates.net[0].weight.grad).all()


@pytest.mark.parametrize("lambd", [1.0, 0.3, 2.5])
def test_grad_reverse_multiplies_gradient_by_minus_lambda(lambd: float) -> None:
    x = torch.randn(4, 5, requires_grad=True)
    upstream = torch.randn(4, 5)
    y = grad_reverse(x, lambd)
    assert torch.equal(y, x)
    y.backward(upstream)
    assert torch.equal(x.grad, -lambd * upstream)


def test_site_adversary_pushes_the_backbone_the_other_way() -> None:
    torch.manual_seed(0)
    model = create_model("small3d", widths=(4, 8), n_sites=3).train()
    x, sites = _x(), torch.tensor([0, 1, 2])
    out = model(x)
    assert out["site_logits"].shape == (3, 3)
    ce = torch.nn.functional.cross_entropy(out["site_logits"], sites)
    emb_grad_reversed = torch.autograd.grad(ce, out["embedding"], retain_graph=True)[0]
    model.site_adversary.lambd = 0.5
    out2 = model(x)
    # the gradient reaching the embedding is -lambda x the adversary's own gradient
    adv_in = out2["embedding"].detach().requires_grad_()
    plain = torch.autograd.grad(
        torch.nn.functional.cross_entropy(model.site_adversary.net(adv_in), sites), adv_in
    )[0]
    ce2 = torch.nn.functional.cross_entropy(out2["site_logits"], sites)
    reversed_half = torch.autograd.grad(ce2, out2["embedding"])[0]
    torch.testing.assert_close(reversed_half, -0.5 * plain)
    assert emb_grad_reversed.abs().sum() > 0


def test_head_argument_errors() -> None:
    bb = create_backbone("small3d", widths=(4,))
    with pytest.raises(UserError, match="exactly 1 output"):
        RadiomicsNet(bb, task="binary", num_outputs=2)
    with pytest.raises(UserError, match="cohort.task: unknown task 'ranking'"):
        RadiomicsNet(bb, task="ranking")
    with pytest.raises(UserError, match="num_outputs >= 2"):
        RadiomicsNet(
            create_backbone("unet", filters=(4, 8, 16)), task="segmentation", num_outputs=1
        )
