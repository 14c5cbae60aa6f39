"""Every registered model: forward + backward on a tiny input, finite gradients everywhere."""

from __future__ import annotations

import pytest
import torch

from deepradiomics.errors import UserError
from deepradiomics.models import (
    accepts_kwarg,
    create_backbone,
    create_model,
    list_models,
    register_model,
)

# the smallest inputs each model handles (deep downsampling needs 32^3; the cube group CNN
# has 24x the channels of its widths, so it gets 8^3)
SHAPES = {
    "densenet121": (2, 2, 32, 32, 32),
    "unet": (2, 2, 32, 32, 32),
    "gcnn_cube": (2, 2, 8, 8, 8),
}


def test_registry_lists_the_families() -> None:
    names = set(list_models())
    assert {
        "small3d",
        "resnet10",
        "resnet18",
        "resnet34",
        "resnet50",
        "densenet121",
        "densenet_small",
        "unet",
        "small2d",
        "small25d",
        "resnet18_2d",
        "resnet18_25d",
        "gcnn_c4",
        "gcnn_cube",
    } <= names
    assert list_models() == sorted(names)


@pytest.mark.parametrize("name", list_models())
def test_forward_backward(name: str) -> None:
    torch.manual_seed(0)
    shape = SHAPES.get(name, (2, 2, 16, 16, 16))
    task = "segmentation" if name == "unet" else "binary"
    model = create_model(
        name,
        task=task,
        in_channels=shape[1],
        n_covariates=0 if task == "segmentation" else 2,
        n_sites=3,
        dropout=0.2,
    )
    backbone = model.backbone
    assert isinstance(backbone.num_features, int)
    x = torch.randn(*shape)
    emb = backbone.forward_features(x)
    assert emb.shape == (shape[0], backbone.num_features)
    cov = None if task == "segmentation" else torch.tensor([[0.5, float("nan")], [-1.0, 2.0]])
    out = model(x, cov)
    expected = (shape[0], 2, *shape[2:]) if task == "segmentation" else (shape[0],)
    assert out["out"].shape == expected
    assert out["site_logits"].shape == (shape[0], 3)
    loss = out["out"].float().pow(2).mean() + out["site_logits"].logsumexp(1).mean()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads), "every parameter takes part"
    assert all(torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0


def test_create_model_errors_name_the_key() -> None:
    with pytest.raises(UserError, match="model.name: unknown model 'resnet99'.*small3d"):
        create_model("resnet99")
    with pytest.raises(UserError, match="model.kwargs: model 'small3d'.*'depth'.*in_channels"):
        create_backbone("small3d", depth=3)
    with pytest.raises(
        UserError, match="model 'resnet10'.*'spatial_dims'.*in_channels, conv1_t_size"
    ):
        create_backbone("resnet10", spatial_dims=2)  # 3D only: the 2D variants are resnet18_2d/_25d
    with pytest.raises(UserError, match="cannot segment"):
        create_model("small3d", task="segmentation")
    with pytest.raises(UserError, match="multiclass model needs num_outputs >= 2"):
        create_model("small3d", task="multiclass")


def test_accepts_kwarg_and_duplicate_registration() -> None:
    assert accepts_kwarg("small3d", "spacing") and accepts_kwarg("resnet18", "spacing")
    assert not accepts_kwarg("densenet121", "spacing")

    def small3d() -> None:  # same name as a registered model
        return None

    with pytest.raises(ValueError, match="registered twice"):
        register_model(small3d)


def test_import_does_not_pull_monai() -> None:
    import subprocess
    import sys

    code = "import sys, deepradiomics.models, deepradiomics.losses; print('monai' in sys.modules)"
    assert (
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        == "False"
    )
