"""Cascading randomisation: it fails a method that ignores the weights, passes Grad-CAM."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from deepradiomics.explain.gradcam import grad_cam
from deepradiomics.explain.occlusion import occlusion
from deepradiomics.explain.sanity import (
    PASS_SPEARMAN,
    cascading_randomisation,
    parameter_layers,
    spearman,
    ssim,
)


def edge_detector(model, x: torch.Tensor) -> torch.Tensor:
    """Sobel gradient magnitude of the input: a 'map' that never looks at the model."""
    arr = x[:, 0].numpy()
    mag = [np.sqrt(sum(ndimage.sobel(a, axis=k) ** 2 for k in range(3))) for a in arr]
    return torch.from_numpy(np.stack(mag))


def test_similarity_measures() -> None:
    rng = np.random.default_rng(0)
    a = rng.random((8, 8, 8))
    assert spearman(a, 2 * a + 1) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert abs(spearman(a, rng.random((8, 8, 8)))) < 0.2
    # two maps on the same zero background: only the voxels where either is non-zero count
    gated, other = np.zeros((8, 8, 8)), np.zeros((8, 8, 8))
    gated[2:6, 2:6, 2:6], other[2:6, 2:6, 2:6] = a[:4, :4, :4], rng.random((4, 4, 4))
    assert abs(spearman(gated, other)) < 0.3
    assert spearman(gated, 2 * gated) == pytest.approx(1.0)
    assert ssim(a, 3 * a) == pytest.approx(1.0)  # each map is scaled by its maximum
    assert ssim(a, rng.random((8, 8, 8))) < 0.3


def test_edge_detector_fails(toy) -> None:
    x = toy.images[:6]
    result = cascading_randomisation(toy.model, x, edge_detector, "edges")
    assert result.spearman[-1] == pytest.approx(1.0) and not result.passed
    assert result.layers[0] == "head" and result.layers[-1] == "backbone.trunk.0"


@pytest.mark.parametrize("method", ["gradcam", "gradcampp"])
def test_gradcam_on_the_trained_toy_passes(toy, method) -> None:
    x = toy.images[toy.labels == 1][:6]
    before = [p.detach().clone() for p in toy.model.parameters()]
    result = cascading_randomisation(
        toy.model, x, lambda m, v: grad_cam(m, v, method=method)[0], method
    )
    assert result.passed, result.to_dict()
    assert result.final_spearman < PASS_SPEARMAN
    assert len(result.spearman) == len(parameter_layers(toy.model, x))
    # the trained model is left as it was
    assert all(torch.equal(a, b) for a, b in zip(before, toy.model.parameters(), strict=False))
    d = result.to_dict()
    assert d["passed"] is True and "below 0.5" in d["rule"]


def test_occlusion_on_the_trained_toy_passes(toy) -> None:
    x = toy.images[toy.labels == 1][:4]
    result = cascading_randomisation(
        toy.model,
        x,
        lambda m, v: occlusion(m, v, patch=(4, 4, 4), batch=64),
        "occlusion",
        max_steps=2,
    )
    assert result.passed, result.to_dict()


def test_the_cascade_reaches_lesion_textures_pointwise_maps() -> None:
    """Its 1x1 maps (Grad-CAM's default layer reads them) are modules the cascade randomises."""
    from deepradiomics.models import create_model

    model = create_model("lesion_texture", in_channels=2, levels=2)
    x = torch.rand(1, 2, 8, 16, 16)
    x[:, 1] = 0
    x[:, 1, 2:6, 4:12, 4:12] = 1
    layers = parameter_layers(model, x)
    assert {"backbone.intensity", "backbone.level_maps", "backbone.oriented"} <= set(layers)
