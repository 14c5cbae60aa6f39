"""Group CNNs: the groups are groups, layers are equivariant, embeddings exactly invariant."""

from __future__ import annotations

import itertools

import pytest
import torch

from deepradiomics.errors import UserError
from deepradiomics.models import create_backbone
from deepradiomics.models.equivariant import GROUPS, LiftingConv, RotationGroup, SymmetricMaxPool


@pytest.mark.parametrize(("name", "order"), [("c4", 4), ("cube", 24)])
def test_group_tables(name: str, order: int) -> None:
    g = RotationGroup(GROUPS[name])
    assert len(g) == order
    n = range(len(g))
    assert all(g.mul[0][a] == a == g.mul[a][0] for a in n)  # identity
    assert all(g.mul[a][g.inv[a]] == 0 for a in n)
    assert all(
        g.mul[g.mul[a][b]][c] == g.mul[a][g.mul[b][c]] for a, b, c in itertools.product(n, n, n)
    )
    # the table agrees with the action on a volume without symmetry
    t = torch.randn(5, 5, 5)
    for a, b in itertools.product(n, n):
        assert torch.equal(g.act(g.act(t, b), a), g.act(t, g.mul[a][b]))


def test_lifting_conv_is_equivariant() -> None:
    torch.manual_seed(0)
    group = RotationGroup(GROUPS["cube"])
    lift = LiftingConv(group, 2, 3, (3, 3, 3)).double()
    x = torch.randn(1, 2, 7, 7, 7, dtype=torch.float64)
    out = lift(x).reshape(1, 3, len(group), 7, 7, 7)
    for s in range(len(group)):
        rotated = lift(group.act(x, s)).reshape(out.shape)
        # rotating the input rotates every map and sends group channel g to s.g
        expected = torch.stack(
            [group.act(out[:, :, group.mul[group.inv[s]][g]], s) for g in range(len(group))], 2
        )
        torch.testing.assert_close(rotated, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("size", [8, 7])
def test_symmetric_max_pool_commutes_with_rotations(size: int) -> None:
    group = RotationGroup(GROUPS["cube"])
    pool = SymmetricMaxPool((2, 2, 2))
    x = torch.randn(1, 1, size, size, size)
    for s in range(len(group)):
        assert torch.equal(pool(group.act(x, s)), group.act(pool(x), s))


def _embeddings(model, x, group) -> torch.Tensor:
    return torch.stack([model.forward_features(group.act(x, s)) for s in range(len(group))])


@pytest.mark.parametrize("size", [12, 11])
def test_gcnn_c4_embedding_is_exactly_invariant(size: int) -> None:
    torch.manual_seed(0)
    model = create_backbone("gcnn_c4", in_channels=2, widths=(3, 4, 5)).double().eval()
    x = torch.randn(2, 2, 6, size, size, dtype=torch.float64)  # rotation in (y, x) only: any depth
    emb = _embeddings(model, x, model.group)
    assert emb.abs().max() > 1e-3
    torch.testing.assert_close(emb, emb[:1].expand_as(emb), rtol=0, atol=1e-12)
    # float32 too, to float tolerance
    model32 = model.float()
    emb32 = _embeddings(model32, x.float(), model.group)
    torch.testing.assert_close(emb32, emb32[:1].expand_as(emb32), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("size", [8, 9])
def test_gcnn_cube_embedding_is_exactly_invariant_to_all_24_rotations(size: int) -> None:
    torch.manual_seed(0)
    model = create_backbone("gcnn_cube", widths=(2, 3, 3)).double().eval()
    x = torch.randn(2, 1, size, size, size, dtype=torch.float64)
    emb = _embeddings(model, x, model.group)
    assert emb.shape[0] == 24 and emb.abs().max() > 1e-3
    torch.testing.assert_close(emb, emb[:1].expand_as(emb), rtol=0, atol=1e-12)


def test_control_plain_cnn_is_not_invariant() -> None:
    # the same check fails for an ordinary CNN, so the test above can fail
    torch.manual_seed(0)
    model = create_backbone("small3d", widths=(4, 4, 4)).double().eval()
    group = RotationGroup(GROUPS["c4"])
    emb = _embeddings(model, torch.randn(1, 1, 8, 8, 8, dtype=torch.float64), group)
    assert (emb - emb[:1]).abs().max() > 1e-4


def test_cube_group_refuses_anisotropic_spacing() -> None:
    with pytest.raises(UserError, match="isotropic voxels"):
        create_backbone("gcnn_cube", spacing=(3.0, 1.0, 1.0))
    with pytest.raises(UserError, match="square pixels"):
        create_backbone("gcnn_c4", spacing=(3.0, 1.0, 0.5))
