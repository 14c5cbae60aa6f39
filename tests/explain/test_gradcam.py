"""Grad-CAM / Grad-CAM++: the map of a trained toy peaks at the planted object; every
registry model gets a map of its input's size at its default layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepradiomics.errors import UserError
from deepradiomics.explain.gradcam import default_layer, grad_cam, map_composition
from deepradiomics.models import create_model, list_models


def _peaks(cam: torch.Tensor) -> np.ndarray:
    return np.array([[int(v) for v in torch.unravel_index(c.argmax(), c.shape)] for c in cam])


@pytest.mark.parametrize("method", ["gradcam", "gradcampp"])
def test_map_peaks_at_the_planted_object(toy, method) -> None:
    cam, raw = grad_cam(toy.model, toy.images, method=method)
    assert cam.shape == toy.images[:, 0].shape and raw.shape[1:] == (8, 8, 8)
    pos = np.flatnonzero(toy.labels.numpy() == 1)
    # share of the map's voxels above its value at the object's centre: 0 = the peak
    above = np.array([float((cam[i] > cam[i][tuple(toy.centres[i])]).float().mean()) for i in pos])
    assert np.median(above) <= 0.03 and above.max() <= 0.10, above
    # and the argmax is within about one map cell (stride 2) of the cube's centre
    peaks = _peaks(cam[pos])
    assert np.linalg.norm(peaks - toy.centres[pos], axis=1).max() <= 4.5
    # a control: the same maps read at another case's object centre are not high there
    shifted = np.roll(pos, 1)
    above_other = np.array(
        [
            float((cam[i] > cam[i][tuple(toy.centres[j])]).float().mean())
            for i, j in zip(pos, shifted, strict=False)
        ]
    )
    assert np.median(above_other) >= 0.2, above_other
    assert (raw >= 0).all() and float(raw.max()) > 0  # raw, unscaled, ReLU'd


def test_default_layer_is_the_last_spatial_stage() -> None:
    small = create_model("small3d", widths=(2, 2))
    assert default_layer(small, (1, 16, 16, 16)) == "backbone.trunk"
    resnet = create_model("resnet10", widen_factor=1 / 16)
    assert default_layer(resnet, (1, 32, 32, 32)) == "backbone.net.layer4"


def test_lesion_texture_map_is_the_lesion_read_by_the_model() -> None:
    """Its default layer is the mask-gated 1x1 maps: nothing outside the lesion (which the
    model never reads) or outside the central slab it looks at gets attribution."""
    torch.manual_seed(0)
    model = create_model(
        "lesion_texture", task="multiclass", num_outputs=2, in_channels=2, z_slices=4, levels=2
    )
    x = torch.rand(2, 2, 12, 16, 16)
    x[:, 1] = 0
    x[:, 1, 2:10, 4:12, 3:13] = 1  # the lesion, 8 slices deep; the model reads slices 4-7
    assert default_layer(model, (2, 12, 16, 16)) == "backbone.lesion_maps"
    read = torch.zeros(12, 16, 16, dtype=torch.bool)
    read[4:8, 4:12, 3:13] = True
    inside = 0.0
    for target in (0, 1):  # an untrained model: the ReLU may zero one class's map
        cam, raw = grad_cam(model, x, target=target)
        assert raw.shape == (2, 4, 16, 16)  # the slab the model reads, placed back on it
        torch.testing.assert_close(cam[:, 4:8], raw)
        assert float(cam[:, ~read].abs().max()) == 0.0
        inside = max(inside, float(cam[:, read].max()))
    assert inside > 0


def test_lesion_texture_map_places_the_texture_where_it_is() -> None:
    """The texture energies are pooled through the FFT; Grad-CAM's default layer still gets
    them as voxel shares (``LesionTextureNet.attribution``): a score that rises with one Gabor
    energy is placed on the lesion's striped half, not on its flat half."""
    from tests.models.test_texture import half_striped

    model = create_model(
        "lesion_texture", task="binary", in_channels=2, filters=1, rotations=1, intensity=1,
        hidden=1, erode=0,
    ).eval()  # fmt: skip
    x, gabor = half_striped()
    with torch.no_grad():
        model.backbone.oriented.weight[:] = gabor
        for p in (*model.backbone.intensity.parameters(), *model.backbone.mlp[1].parameters()):
            p.zero_()  # the hidden unit reads the log energy only
        model.backbone.mlp[1].weight[0, 0] = 1.0
        model.backbone.mlp[1].bias[0] = 10.0
        model.head.weight.fill_(1.0)
    cam, _ = grad_cam(model, x)
    left, right = float(cam[0, :, :, :20].sum()), float(cam[0, :, :, 20:].sum())
    assert left > 20 * right, (left, right)
    assert float(cam[0, :, :6].abs().max()) == 0.0  # nothing outside the lesion
    assert not model.backbone._attributing  # the mode ends with the map
    # the score reads the texture energy only: the map is all texture
    parts, mass = map_composition(model, x)
    assert set(parts) == {"intensity", "texture"}  # no soft levels in this model
    assert float(mass[0]) > 0
    assert float(parts["texture"][0]) == pytest.approx(1.0, abs=1e-4)
    assert float(parts["intensity"][0]) == pytest.approx(0.0, abs=1e-4)


def test_map_composition_adds_up_and_only_named_channels_have_one() -> None:
    torch.manual_seed(1)
    model = create_model(
        "lesion_texture", task="binary", in_channels=3, texture_channels=1, levels=3
    ).eval()
    x = torch.rand(3, 3, 6, 24, 24)
    x[:, -1] = 0.0
    x[:, -1, 1:5, 6:18, 5:19] = 1.0
    parts, mass = map_composition(model, x)
    assert set(parts) == {"intensity", "levels", "texture"}
    total = sum(parts.values())
    cam, raw = grad_cam(model, x)
    torch.testing.assert_close(mass, raw.flatten(1).sum(1), rtol=1e-4, atol=1e-6)
    has_map = mass > 0
    assert has_map.any()
    # shares of a positive map add up to 1 (float32 sums over ~3,000 voxels: 1e-4)
    torch.testing.assert_close(total[has_map], torch.ones(int(has_map.sum())), atol=1e-4, rtol=0)
    small = create_model("small3d", task="binary", in_channels=1, widths=(2, 4))
    assert map_composition(small, torch.rand(1, 1, 8, 8, 8)) is None


SHAPES = {
    "gcnn_cube": (1, 8, 8, 8),
    "densenet121": (1, 32, 32, 32),
    "unet": (1, 32, 32, 32),
    "lesion_texture": (2, 16, 16, 16),  # image + lesion mask channel
}
SMALL = {
    "small3d": {"widths": (2, 4)},
    "gcnn_c4": {"widths": (1, 2)},
    "gcnn_cube": {"widths": (1, 1)},
    "resnet10": {"widen_factor": 1 / 16},
    "unet": {"filters": (2, 2, 4)},
    "densenet_small": {"init_features": 4, "growth_rate": 2},
}


@pytest.mark.parametrize("name", [m for m in list_models() if m not in ("resnet34", "densenet121")])
def test_every_registry_model_gets_a_map(name) -> None:
    torch.manual_seed(0)
    model = create_model(name, task="multiclass", num_outputs=3, **SMALL.get(name, {}))
    x = torch.randn(2, *SHAPES.get(name, (1, 16, 16, 16)))
    cam, raw = grad_cam(model, x, method="gradcampp")
    assert cam.shape == x[:, 0].shape
    assert torch.isfinite(cam).all()


def test_unknown_layer_and_method() -> None:
    model = create_model("small3d", widths=(2, 2))
    x = torch.randn(1, 1, 8, 8, 8)
    with pytest.raises(UserError, match="layer 'backbone.nope'"):
        grad_cam(model, x, layer="backbone.nope")
    with pytest.raises(UserError, match="unknown Grad-CAM method"):
        grad_cam(model, x, method="lime")
