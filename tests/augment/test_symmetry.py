"""Flips and 90-degree rotations: exact, equal to torch.rot90/flip and to the affine path."""

from __future__ import annotations

import pytest
import torch

from deepradiomics.augment import (
    RandomFlip,
    RandomRotate90,
    flip,
    permute_exact,
    rot90_matrix,
    rotate90,
    symmetry_group,
    warp,
)


@pytest.fixture
def cube() -> torch.Tensor:
    return torch.randn(2, 2, 6, 6, 6, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("axes", [(0, 1), (1, 2), (0, 2), (2, 0)])
def test_rot90_affine_path_equals_torch_rot90(cube, k, axes):
    ref = torch.rot90(cube, k, dims=(axes[0] + 2, axes[1] + 2))
    m = rot90_matrix(k, axes).expand(2, 3, 3)
    via_grid, _ = warp(cube, None, m)
    exact, _ = rotate90(cube, None, m)
    torch.testing.assert_close(via_grid, ref, atol=1e-5, rtol=0)
    assert torch.equal(exact, ref)


def test_in_plane_rot90_of_non_cubic_volume(cube):
    x = torch.randn(2, 1, 4, 6, 6)
    ref = torch.rot90(x, 1, dims=(3, 4))
    via_grid, _ = warp(x, None, rot90_matrix(1, (1, 2)).expand(2, 3, 3))
    torch.testing.assert_close(via_grid, ref, atol=1e-5, rtol=0)


def test_every_signed_permutation_exact_equals_affine_path(cube):
    group = symmetry_group((6, 6, 6), (1.0, 1.0, 1.0), anisotropic=False, proper=False)
    assert len(group) == 48
    for m in group:
        mats = torch.stack([m, torch.eye(3)])
        exact, _ = permute_exact(cube, None, mats)
        via_grid, _ = warp(cube, None, mats)
        torch.testing.assert_close(via_grid, exact, atol=1e-5, rtol=0)
        assert torch.equal(exact[1], cube[1])


def test_flips_are_exact_per_sample(cube):
    flags = torch.tensor([[True, False, True], [False, True, False]])
    mask = (cube > 0).to(torch.uint8)
    out, out_mask = flip(cube, mask, flags)
    assert torch.equal(out[0], cube[0].flip([1, 3]))
    assert torch.equal(out[1], cube[1].flip([2]))
    assert torch.equal(out_mask, (out > 0).to(torch.uint8))


def test_identity_symmetries_return_input(cube):
    out, _ = flip(cube, None, torch.zeros(2, 3, dtype=torch.bool))
    assert torch.equal(out, cube)
    out, _ = rotate90(cube, None, torch.eye(3).expand(2, 3, 3))
    assert torch.equal(out, cube)


@pytest.mark.parametrize(
    "shape, spacing, anisotropic, proper, size",
    [
        ((6, 6, 6), (1, 1, 1), False, True, 24),  # rotation group of the cube
        ((4, 6, 6), (1, 1, 1), False, True, 8),  # in-plane rotations, and 180 degrees about y and x
        ((6, 6, 6), (3, 1, 1), False, True, 8),  # z not swappable: thicker voxels
        ((4, 6, 6), (3, 1, 1), True, True, 4),  # anisotropic: rotations about z only
        ((4, 6, 6), (3, 1, 1), True, False, 8),  # with in-plane flips: the square's symmetries
        ((4, 5, 6), (1, 1, 1), False, True, 4),  # all lengths differ: the 180-degree turns only
    ],
)
def test_symmetry_group_keeps_shape_and_spacing(shape, spacing, anisotropic, proper, size):
    group = symmetry_group(shape, spacing, anisotropic, proper)
    assert len(group) == size
    x = torch.zeros(1, 1, *shape)
    for m in group:
        assert permute_exact(x, None, m[None])[0].shape == x.shape
        if anisotropic:
            assert m[0, 0] == 1


def test_anisotropic_random_symmetries_never_touch_z():
    gen = torch.Generator().manual_seed(1)
    x = (
        torch.arange(4, dtype=torch.float32)[None, None, :, None, None]
        .expand(64, 1, 4, 6, 6)
        .contiguous()
    )
    flags = RandomFlip(axes=(1, 2)).sample(x.shape, gen)
    assert not flags[:, 0].any() and flags[:, 1:].any()
    mats = RandomRotate90(anisotropic=True, spacing=(3, 1, 1)).sample(x.shape, gen)
    assert len(torch.unique(mats, dim=0)) == 4
    out, _ = rotate90(*flip(x, None, flags)[:1], None, mats)
    assert torch.equal(out, x)  # every slice still holds its own index


def test_random_rotate90_draws_the_whole_cube_group():
    mats = RandomRotate90().sample(torch.Size([400, 1, 6, 6, 6]), torch.Generator().manual_seed(0))
    assert len(torch.unique(mats, dim=0)) == 24
    assert torch.allclose(torch.linalg.det(mats), torch.ones(400))
