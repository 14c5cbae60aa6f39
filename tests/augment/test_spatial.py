"""Rotation, zoom, elastic deformation: cross-checked with scipy.ndimage, spacing-aware."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from deepradiomics.augment import (
    AffineParams,
    ElasticParams,
    RandomAffine,
    RandomElastic,
    RandomSpatial,
    SpatialParams,
    affine,
    affine_matrix,
    elastic,
    elastic_displacement,
    spatial,
    warp,
)


def _scipy_warp(
    volume: np.ndarray, matrix: np.ndarray, spacing, field: np.ndarray | None = None
) -> np.ndarray:
    """Reference: trilinear pull-back in voxel indices; A and field in mm; edges replicated."""
    shape = volume.shape
    idx = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij"))
    centre = (np.array(shape, dtype=np.float64) - 1) / 2
    s = np.asarray(spacing, dtype=np.float64)
    phys = (idx - centre[:, None, None, None]) * s[:, None, None, None]
    src = np.einsum("ij,j...->i...", matrix, phys)
    if field is not None:
        src = src + field
    coords = src / s[:, None, None, None] + centre[:, None, None, None]
    return ndimage.map_coordinates(volume, coords, order=1, mode="nearest")


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (2.5, 0.8, 1.0)])
def test_affine_matches_scipy_in_physical_space(spacing):
    x = torch.randn(2, 1, 6, 10, 8, generator=_gen(), dtype=torch.float64)
    params = AffineParams(
        angles=torch.tensor([[0.3, -0.2, 0.1], [-0.5, 0.0, 0.4]], dtype=torch.float64),
        scales=torch.tensor([[1.1, 1.1, 1.1], [0.9, 1.2, 1.0]], dtype=torch.float64),
    )
    out, _ = affine(x, None, params, spacing=spacing)
    mats = affine_matrix(params).numpy()
    for i in range(2):
        ref = _scipy_warp(x[i, 0].numpy(), mats[i], spacing)
        np.testing.assert_allclose(out[i, 0].numpy(), ref, atol=1e-9)


def test_elastic_field_and_warp_match_scipy():
    x = torch.randn(1, 1, 8, 12, 10, generator=_gen(), dtype=torch.float64)
    spacing = (2.0, 1.0, 1.0)
    params = RandomElastic(control_points=4, max_displacement=2.0).sample(x.shape, _gen(3))
    coarse = params.coarse.double()
    field = elastic_displacement(coarse, x.shape[2:])
    for c in range(3):  # the upsampled field: linear interpolation, control points at the corners
        ref = ndimage.zoom(
            coarse[0, c].numpy(), np.array(x.shape[2:]) / 4, order=1, grid_mode=False
        )
        np.testing.assert_allclose(field[0, c].numpy(), ref, atol=1e-9)
    out, _ = elastic(x, None, coarse, spacing=spacing)
    ref = _scipy_warp(x[0, 0].numpy(), np.eye(3), spacing, field[0].numpy())
    np.testing.assert_allclose(out[0, 0].numpy(), ref, atol=1e-5)


def test_rotation_is_physical_for_anisotropic_voxels():
    """A 90-degree turn about x of a Gaussian blob on 2x1x1 mm voxels swaps its z and y widths."""
    spacing, shape = (2.0, 1.0, 1.0), (16, 32, 24)
    sig = torch.tensor([7.0, 4.0, 5.0], dtype=torch.float64)

    def blob(widths):
        axes = [
            (torch.arange(n, dtype=torch.float64) - (n - 1) / 2) * s
            for n, s in zip(shape, spacing, strict=False)
        ]
        z, y, x = torch.meshgrid(*axes, indexing="ij")
        return torch.exp(
            -0.5 * ((z / widths[0]) ** 2 + (y / widths[1]) ** 2 + (x / widths[2]) ** 2)
        )

    params = AffineParams(
        angles=torch.tensor([[0.0, 0.0, math.pi / 2]], dtype=torch.float64), scales=torch.ones(1, 3)
    )
    out, _ = affine(blob(sig)[None, None], None, params, spacing=spacing)
    expected = blob(sig[[1, 0, 2]])
    assert (out[0, 0] - expected).abs().max() < 0.03
    naive, _ = affine(blob(sig)[None, None], None, params)  # ignoring the voxel aspect distorts it
    assert (naive[0, 0] - expected).abs().max() > 0.2


def test_zoom_enlarges_content():
    mask = torch.zeros(1, 1, 24, 24, 24, dtype=torch.uint8)
    mask[..., 8:16, 8:16, 8:16] = 1
    params = AffineParams(angles=torch.zeros(1, 3), scales=torch.full((1, 3), 2.0))
    _, out = affine(mask.float(), mask, params)
    assert out.sum().item() == 8 * 512


def test_identity_parameters_return_input():
    x = torch.randn(2, 1, 16, 16, 16, generator=_gen())
    mask = (x > 0.5).to(torch.uint8)
    out, m = affine(x, mask, AffineParams(angles=torch.zeros(2, 3), scales=torch.ones(2, 3)))
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)
    assert torch.equal(m, mask)
    out, m = elastic(x, mask, torch.zeros(2, 3, 5, 5, 5))
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)
    assert torch.equal(m, mask)
    out, m = spatial(x, mask, SpatialParams())
    assert out is x and m is mask


def _random_spatial(**kw) -> RandomSpatial:
    return RandomSpatial(
        affine=RandomAffine(degrees=30, scale=(0.8, 1.2), **kw),
        elastic=RandomElastic(control_points=5, max_displacement=2.0, **kw),
    )


@pytest.mark.parametrize("mask_dtype", [torch.uint8, torch.bool, torch.float32])
def test_mask_stays_binary_and_moves_with_the_image(mask_dtype):
    g = _gen(2)
    mask = (
        ndimage.gaussian_filter(torch.rand(2, 1, 16, 16, 16, generator=g).numpy(), (0, 0, 2, 2, 2))
        > 0.5
    )
    mask = torch.from_numpy(mask).to(mask_dtype)
    aug = _random_spatial()
    params = aug.sample(mask.shape, g)
    as_image, out_mask = aug.apply(mask.float(), mask, params)
    assert out_mask.dtype == mask_dtype
    assert set(out_mask.float().unique().tolist()) <= {0.0, 1.0}
    m = out_mask.float()
    # nearest picks the corner with the largest trilinear weight (at least 1/8): it can
    # disagree with the interpolated image only where that lies within [1/8, 7/8].
    assert torch.all(m[as_image > 7 / 8 + 1e-5] == 1)
    assert torch.all(m[as_image < 1 / 8 - 1e-5] == 0)
    assert ((as_image > 0.5).float() != m).float().mean() < 0.05
    assert not torch.equal(m, mask.float())  # it did move


def test_integer_labels_survive():
    labels = torch.randint(0, 4, (2, 1, 16, 16, 16), generator=_gen()).to(torch.int64)
    aug = _random_spatial()
    _, out = aug(labels.float(), labels, generator=_gen(1))
    assert out.dtype == torch.int64 and set(out.unique().tolist()) <= {0, 1, 2, 3}


def test_anisotropic_spatial_stays_in_plane():
    """In-plane only: each output slice is made from its own input slice."""
    x = (
        torch.arange(8, dtype=torch.float32)[None, None, :, None, None]
        .expand(4, 1, 8, 16, 16)
        .contiguous()
    )
    aug = _random_spatial(anisotropic=True, spacing=(4.0, 1.0, 1.0))
    params = aug.sample(x.shape, _gen())
    assert torch.all(params.affine.angles[:, 1:] == 0) and torch.all(
        params.affine.scales[:, 0] == 1
    )
    assert torch.all(params.elastic.coarse[:, 0] == 0)
    out, _ = aug.apply(x, None, params)
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


def test_probabilities_select_samples():
    shape = torch.Size([200, 1, 4, 4, 4])
    none = RandomAffine(p=0.0).sample(shape, _gen())
    assert torch.all(none.angles == 0) and torch.all(none.scales == 1)
    half = RandomElastic(p=0.5).sample(shape, _gen())
    assert 0.35 < half.active.float().mean() < 0.65
    assert torch.all(half.coarse[~half.active] == 0) and torch.all(
        half.coarse[half.active].abs().sum((1, 2, 3, 4)) > 0
    )


def test_composition_is_one_resampling():
    """Flip + rotation + elastic through one grid equals the scipy reference of the composed map."""
    x = torch.randn(1, 1, 8, 8, 8, generator=_gen(), dtype=torch.float64)
    params = SpatialParams(
        flip=torch.tensor([[True, False, False]]),
        affine=AffineParams(
            angles=torch.tensor([[0.2, 0.1, -0.3]]), scales=torch.tensor([[1.1, 1.1, 1.1]])
        ),
        elastic=ElasticParams(coarse=torch.zeros(1, 3, 3, 3, 3), active=torch.tensor([True])),
    )
    params.elastic.coarse[0, :, 1, 1, 1] = torch.tensor([1.0, -0.5, 0.7])
    out, _ = spatial(x, None, params)
    matrix = (
        (torch.diag(torch.tensor([-1.0, 1.0, 1.0])) @ affine_matrix(params.affine)[0])
        .double()
        .numpy()
    )
    field = elastic_displacement(params.elastic.coarse.double(), (8, 8, 8))[0].numpy()
    np.testing.assert_allclose(
        out[0, 0].numpy(), _scipy_warp(x[0, 0].numpy(), matrix, (1, 1, 1), field), atol=1e-5
    )


def test_half_precision_image_is_sampled_in_float32():
    x = torch.randn(2, 1, 8, 8, 8, generator=_gen())
    params = AffineParams(angles=torch.full((2, 3), 0.2), scales=torch.ones(2, 3))
    out16, _ = affine(x.bfloat16(), None, params)
    out32, _ = affine(x.bfloat16().float(), None, params)
    assert out16.dtype == torch.bfloat16
    torch.testing.assert_close(out16.float(), out32, atol=2e-2, rtol=1e-2)


def test_warp_rejects_nothing_silently():
    x = torch.randn(1, 1, 4, 4, 4)
    out, _ = warp(x, None, torch.eye(3)[None])
    torch.testing.assert_close(out, x, atol=1e-6, rtol=0)
