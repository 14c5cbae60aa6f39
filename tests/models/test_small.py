"""small3d: translation equivariance of the convolutional trunk, shapes, channels_last."""

from __future__ import annotations

import torch

from deepradiomics.models import create_backbone


def test_trunk_is_translation_equivariant_away_from_borders() -> None:
    # Three 2x max-pools: a shift by 8 voxels must shift the feature map by exactly 1 cell.
    # Receptive field of one output cell: 68 voxels (centre 8j + 3.5), so with zero padding the
    # cells whose field stays clear of both borders (and of the 8 zero voxels shifted in) are
    # j = 4..6 along a 96-voxel axis.
    torch.manual_seed(0)
    model = create_backbone("small3d").double().eval()
    x = torch.randn(1, 1, 8, 8, 96, dtype=torch.float64)
    shifted = torch.zeros_like(x)
    shifted[..., 8:] = x[..., :-8]
    a, b = model.forward_trunk(x), model.forward_trunk(shifted)
    assert a.shape == (1, 128, 1, 1, 12)
    torch.testing.assert_close(b[..., 5:8], a[..., 4:7], rtol=0, atol=1e-12)
    # the border cells do differ (zero padding), so the comparison above is not vacuous
    assert (b[..., 1] - a[..., 0]).abs().max() > 1e-6
    # and a shift that is not a multiple of the total stride does not commute with pooling
    shifted3 = torch.zeros_like(x)
    shifted3[..., 3:] = x[..., :-3]
    c = model.forward_trunk(shifted3)
    assert (c[..., 5:8] - a[..., 4:7]).abs().max() > 1e-6


def test_embedding_shape_and_channels_last_give_same_numbers() -> None:
    torch.manual_seed(0)
    model = create_backbone("small3d", in_channels=2).eval()
    x = torch.randn(2, 2, 28, 28, 28)
    emb = model(x)
    assert emb.shape == (2, 128)
    cl = model.to(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(
        cl(x.to(memory_format=torch.channels_last_3d)), emb, rtol=1e-4, atol=1e-5
    )


def test_same_seed_same_weights() -> None:
    torch.manual_seed(3)
    a = create_backbone("small3d").state_dict()
    torch.manual_seed(3)
    b = create_backbone("small3d").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_convs_per_stage() -> None:
    one = create_backbone("small3d", convs_per_stage=1)
    two = create_backbone("small3d")
    n_convs = [sum(isinstance(m, torch.nn.Conv3d) for m in b.modules()) for b in (one, two)]
    assert n_convs == [4, 8]
    assert one(torch.randn(2, 1, 28, 28, 28)).shape == (2, 128)
