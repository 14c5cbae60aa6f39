"""lesion_texture: masked pooling, what it depends on, and the registry wiring."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deepradiomics.models import create_model
from deepradiomics.models.registry import create_backbone
from deepradiomics.models.texture import OrientedFilters


def test_band_energy_equals_the_convolution_route() -> None:
    """Parseval: the spectral energies are the mean squared circular convolution of the
    windowed, region-demeaned volume."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 2, 3, 20, 24, generator=g)
    region = (torch.rand(2, 1, 3, 20, 24, generator=g) > 0.4).float()
    bank = OrientedFilters(filters=3, kernel=7, rotations=4)
    energy = bank(x, region)  # [2, 2, 12]
    count = region.flatten(1).sum(1).view(2, 1, 1, 1, 1)
    windowed = (x - (x * region).sum((2, 3, 4), keepdim=True) / count) * region
    k = bank.kernels()
    flat = F.pad(windowed.flatten(0, 2).unsqueeze(1), (3, 3, 3, 3), mode="circular")
    # conv2d is a correlation; the spectral route convolves: flip the kernels
    resp = F.conv2d(flat, k.flip(-1, -2)).view(2, 2, 3, 12, 20, 24)
    direct = resp.square().sum((2, 4, 5)) / count.view(2, 1, 1)
    torch.testing.assert_close(energy, direct, rtol=1e-4, atol=1e-6)


def test_rotating_the_input_by_90_degrees_permutes_the_angles() -> None:
    """Eight angles in [0, pi): a quarter turn of the texture moves each filter's energies four
    angles along, so the orientation spread and level do not change."""
    net = create_backbone("lesion_texture", in_channels=2, filters=4, rotations=8).eval()
    x = _volume((slice(None), slice(8, 32), slice(8, 32)))
    turned = torch.rot90(x, 1, (-2, -1))
    with torch.no_grad():
        a, b = net.pooled(x), net.pooled(turned)
        e = net.oriented(x[:, :1], x[:, 1:]).view(4, 8)
        f = net.oriented(turned[:, :1], turned[:, 1:]).view(4, 8)
    torch.testing.assert_close(f, torch.roll(e, 4, -1), rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(a[:, :8], b[:, :8], rtol=1e-4, atol=1e-5)  # level, spread


def test_stripes_have_a_larger_orientation_spread_than_isotropic_noise() -> None:
    """With a Gabor filter at the stripes' wavelength (what training is expected to find)."""
    net = create_backbone("lesion_texture", in_channels=2, filters=8).eval()
    r = torch.arange(9.0) - 4
    gabor = torch.cos(2 * torch.pi / 5 * r)[None, :] * torch.exp(-(r[:, None] ** 2 + r**2) / 8)
    net.oriented.weight.data[:] = gabor
    net.to(memory_format=torch.channels_last_3d)  # what the training loop does
    yy, xx = torch.meshgrid(torch.arange(40.0), torch.arange(40.0), indexing="ij")
    g = torch.Generator().manual_seed(3)
    spreads = []
    for angle in (0.3, 1.1):  # 5-voxel stripes at two angles, then noise
        stripes = torch.sin(2 * torch.pi / 5 * (xx * np.cos(angle) + yy * np.sin(angle)))
        spreads.append(stripes)
    spreads.append(torch.randn(4, 40, 40, generator=g))
    out = []
    for img in spreads:
        x = torch.zeros(1, 2, 4, 40, 40)
        x[:, 0] = img
        x[:, 1, :, 6:34, 6:34] = 1.0
        with torch.no_grad():
            out.append(net.pooled(x)[0, 8:16].mean().item())  # mean spread over filters
    assert min(out[0], out[1]) > 2 * out[2], out
    assert out[0] == pytest.approx(out[1], rel=0.25)  # whatever the stripes' angle


def _volume(mask_box: tuple[slice, ...]) -> torch.Tensor:
    x = torch.rand(1, 2, 6, 40, 40, generator=torch.Generator().manual_seed(1))
    x[:, -1] = 0.0
    x[(0, 1, *mask_box)] = 1.0
    return x


def test_features_ignore_voxels_far_from_the_lesion() -> None:
    net = create_backbone("lesion_texture", in_channels=2).eval()
    x = _volume((slice(None), slice(2, 10), slice(2, 10)))
    y = x.clone()
    y[:, 0, :, 24:, 24:] = torch.rand(1, 6, 16, 16)  # > 14 voxels from the lesion
    with torch.no_grad():
        a, b = net(x), net(y)
        c = net(torch.cat([x[:, :1] * 0.5, x[:, 1:]], 1))  # the lesion's own voxels changed
    assert net.num_features == 32 and a.shape == (1, 32)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_mask_is_read_as_a_threshold_and_size_enters() -> None:
    net = create_backbone("lesion_texture", in_channels=2).eval()
    small = _volume((slice(None), slice(10, 16), slice(10, 16)))
    large = _volume((slice(None), slice(10, 26), slice(10, 26)))
    jittered = small.clone()
    jittered[:, -1] = jittered[:, -1] * 1.1 + 0.05  # intensity augmentation on the mask channel
    with torch.no_grad():
        # the pooling region (and so the log volume) is the same lesion
        torch.testing.assert_close(net.pooled(small)[:, -1], net.pooled(jittered)[:, -1])
        assert net.pooled(large)[0, -1] > net.pooled(small)[0, -1] + 1.0  # log volume


def test_registry_builds_a_trainable_model() -> None:
    model = create_model("lesion_texture", task="binary", in_channels=3)
    out = model(torch.rand(2, 3, 4, 16, 16))
    assert out["out"].shape[0] == 2 and out["embedding"].shape == (2, 32)
    with pytest.raises(ValueError, match="mask as the last channel"):
        create_backbone("lesion_texture", in_channels=1)


def test_mask_channel_is_appended_last() -> None:
    from deepradiomics.errors import UserError
    from deepradiomics.preprocess.case import with_mask_channel

    image = np.random.default_rng(0).random((3, 2, 4, 5, 5), dtype=np.float32)
    mask = (image[:, 0] > 0.5).astype(np.uint8)
    both = with_mask_channel(image, mask, "cohort")
    assert both.shape == (3, 3, 4, 5, 5) and both.dtype == np.float32
    np.testing.assert_array_equal(both[:, :2], image)
    np.testing.assert_array_equal(both[:, 2], mask)
    assert with_mask_channel(image[0], mask[0], "case a").shape == (3, 4, 5, 5)
    with pytest.raises(UserError, match="case b: preprocess.mask_channel needs a lesion mask"):
        with_mask_channel(image[0], None, "case b")


def test_z_slices_convolves_the_middle_slab_and_counts_the_whole_mask() -> None:
    net = create_backbone("lesion_texture", in_channels=2, z_slices=2).eval()
    x = _volume((slice(1, 5), slice(10, 16), slice(10, 16)))  # 6 slices, lesion on 1..4
    y = x.clone()
    y[:, 0, 0] = 5.0  # an outer slice: outside the slab
    with torch.no_grad():
        torch.testing.assert_close(net(x), net(y))
        assert net.pooled(x)[0, -1].item() == pytest.approx(np.log1p(4 * 36), rel=1e-6)


def test_mixed_precision_keeps_the_energies_in_float32() -> None:
    """The training loop autocasts to bf16 on CUDA; FFTs have no bf16, so the bank computes
    in float32 under autocast and gives the float32 energies."""
    bank = OrientedFilters(filters=2, kernel=5, rotations=4)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 1, 2, 16, 16, generator=g)
    region = torch.ones(1, 1, 2, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = bank(x, region)
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, bank(x, region))
