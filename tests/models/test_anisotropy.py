"""nnU-Net-style anisotropic stages: the pure plan, and models that really follow it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deepradiomics.errors import UserError
from deepradiomics.models import create_backbone, stage_kernels


def test_isotropic_spacing_is_fully_3d() -> None:
    assert stage_kernels((1.0, 1.0, 1.0), 4) == [((3, 3, 3), (2, 2, 2))] * 4


def test_thick_slices_get_in_plane_kernels_until_comparable() -> None:
    # 5 mm slices, 0.7 mm pixels: z/xy = 7.1 -> 3.6 -> 1.8 after two in-plane poolings
    plan = stage_kernels((5.0, 0.7, 0.7), 5)
    assert plan[:2] == [((1, 3, 3), (1, 2, 2))] * 2
    assert plan[2:] == [((3, 3, 3), (2, 2, 2))] * 3
    # exactly 2x is "comparable" (nnU-Net pools while the ratio is below 2)
    assert stage_kernels((2.0, 1.0, 1.0), 1) == [((3, 3, 3), (2, 2, 2))]
    assert stage_kernels((2.1, 1.0, 1.0), 2) == [((1, 3, 3), (1, 2, 2)), ((3, 3, 3), (2, 2, 2))]
    # a larger ratio tolerates more anisotropy
    assert stage_kernels((2.5, 1.0, 1.0), 1, ratio=3.0) == [((3, 3, 3), (2, 2, 2))]


def test_rule_is_per_axis() -> None:
    # one coarse in-plane axis (x) is treated the same way
    assert stage_kernels((1.0, 1.0, 3.0), 2) == [((3, 3, 1), (2, 2, 1)), ((3, 3, 3), (2, 2, 2))]


def test_bad_spacing_is_a_user_error() -> None:
    with pytest.raises(UserError, match="three positive numbers"):
        stage_kernels((1.0, 0.0, 1.0), 3)
    with pytest.raises(UserError, match="three positive numbers"):
        stage_kernels((1.0, 1.0), 3)


def _convs(module: nn.Module) -> list[nn.Conv3d]:
    return [m for m in module.modules() if isinstance(m, nn.Conv3d)]


def test_small3d_uses_in_plane_kernels_early() -> None:
    model = create_backbone("small3d", spacing=(5.0, 0.7, 0.7))
    convs = _convs(model)
    assert [c.kernel_size for c in convs] == [(1, 3, 3)] * 4 + [(3, 3, 3)] * 4
    pools = [m.kernel_size for m in model.modules() if isinstance(m, nn.MaxPool3d)]
    assert pools == [(1, 2, 2), (1, 2, 2), (2, 2, 2)]
    # a 5-slice crop of 40x40 pixels keeps its 5 slices until the in-plane grid is comparable
    fmap = model.forward_trunk(torch.randn(2, 1, 5, 40, 40))
    assert fmap.shape == (2, 128, 2, 5, 5)
    iso = create_backbone("small3d")
    assert {c.kernel_size for c in _convs(iso)} == {(3, 3, 3)}


def test_resnet18_follows_the_plan() -> None:
    model = create_backbone("resnet18", spacing=(5.0, 1.0, 1.0))
    # 6 resolution stages: stem (stride), max-pool, layer1..layer4 entry blocks
    assert model.plan[:2] == [((1, 3, 3), (1, 2, 2))] * 2 and model.plan[2] == (
        (3, 3, 3),
        (2, 2, 2),
    )
    net = model.net
    assert net.conv1.kernel_size == (1, 7, 7) and net.conv1.stride == (1, 2, 2)
    assert net.maxpool.kernel_size == (1, 3, 3) and net.maxpool.stride == (1, 2, 2)
    assert {c.kernel_size for c in _convs(net.layer1)} == {(3, 3, 3)}
    assert net.layer2[0].conv1.stride == (2, 2, 2)
    x = torch.randn(2, 1, 16, 64, 64)  # 16 x 5 mm slices; 64 x 1 mm pixels
    assert model(x).shape == (2, 512)
    iso = create_backbone("resnet18")
    assert iso.net.conv1.kernel_size == (7, 7, 7) and iso.net.conv1.stride == (2, 2, 2)


def test_resnet_in_plane_stages_deep_in_the_network() -> None:
    model = create_backbone(
        "resnet10", spacing=(8.0, 0.5, 0.5)
    )  # ratio 16 -> 8 -> 4: three in-plane stages
    net = model.net
    assert net.layer1[0].conv1.kernel_size == (1, 3, 3)
    assert net.layer2[0].conv1.kernel_size == (1, 3, 3) and net.layer2[0].conv1.stride == (1, 2, 2)
    assert net.layer2[0].downsample[0].stride == (1, 2, 2)
    assert net.layer2[0].conv2.kernel_size == (3, 3, 3)
    assert model(torch.randn(2, 1, 8, 64, 64)).shape == (2, 512)


def test_resnet50_bottlenecks_follow_the_plan() -> None:
    """Bottleneck blocks stride their 3^3 conv2; the 1x1 convolutions stay as they are."""
    model = create_backbone("resnet50", spacing=(5.0, 1.0, 1.0), widen_factor=0.25)
    net = model.net
    assert net.conv1.kernel_size == (1, 7, 7) and net.maxpool.kernel_size == (1, 3, 3)
    assert net.layer1[0].conv2.kernel_size == (3, 3, 3)
    entry = net.layer2[0]
    assert entry.conv2.stride == (2, 2, 2) and entry.downsample[0].stride == (2, 2, 2)
    assert entry.conv1.kernel_size == entry.conv3.kernel_size == (1, 1, 1)
    in_plane = create_backbone("resnet50", spacing=(8.0, 0.5, 0.5), widen_factor=0.25).net.layer2[0]
    assert in_plane.conv2.kernel_size == (1, 3, 3) and in_plane.conv2.stride == (1, 2, 2)
    assert model(torch.randn(2, 1, 16, 64, 64)).shape == (2, 512)


def test_unet_and_gcnn_c4_follow_the_plan() -> None:
    unet = create_backbone("unet", spacing=(3.0, 1.0, 1.0))
    assert unet.divisor == (8, 16, 16)
    first = [c.kernel_size for c in _convs(unet.input_block)]
    assert set(first) == {(1, 3, 3)}
    dense, emb = unet.forward_dense(torch.randn(2, 1, 16, 32, 32))
    assert dense.shape == (2, 16, 16, 32, 32) and emb.shape == (2, 256)
    with pytest.raises(UserError, match=r"multiple of \(8, 16, 16\)"):
        unet.forward_dense(torch.randn(2, 1, 12, 32, 32))
    gcnn = create_backbone("gcnn_c4", spacing=(3.0, 1.0, 1.0), widths=(2, 2, 2))
    assert gcnn.trunk[0].weight.shape[-3:] == (1, 3, 3)
    assert gcnn(torch.randn(2, 1, 4, 16, 16)).shape == (2, 2)
