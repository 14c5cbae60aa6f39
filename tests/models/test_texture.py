"""lesion_texture: masked pooling, what it depends on, and the registry wiring."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deepradiomics.models import create_model
from deepradiomics.models.registry import create_backbone
from deepradiomics.models.texture import OrientedFilters, erode_in_plane, gabor_kernels


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


@pytest.mark.parametrize("start", ["one Gabor filter", "gabor"])
def test_stripes_have_a_larger_orientation_spread_than_isotropic_noise(start: str) -> None:
    """With every filter a Gabor filter at the stripes' wavelength (what training is expected
    to find), or untrained as ``gabor: true`` starts them (pairs at 3-6 voxel wavelengths)."""
    net = create_backbone("lesion_texture", in_channels=2, filters=8, gabor=start == "gabor")
    net.eval()
    if start == "one Gabor filter":
        r = torch.arange(9.0) - 4
        wave = torch.cos(2 * torch.pi / 5 * r)[None, :]
        net.oriented.weight.data[:] = wave * torch.exp(-(r[:, None] ** 2 + r**2) / 8)
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


def test_mixed_precision_keeps_the_offsets_in_float32() -> None:
    """Under bf16 autocast the centroids and offsets are float32 sums (a bf16 matmul over
    positions 0-39 would round them by ~0.4 %): the core and level offsets match float32 to
    1e-4 of the lesion's radius while the 1x1 maps themselves are bf16."""
    torch.manual_seed(0)
    from deepradiomics.models.texture import LesionTextureNet

    net = LesionTextureNet(3, texture_channels=1, levels=3, shape=True).eval()
    x = _cored_volume(6).expand(2, -1, -1, -1, -1).clone()
    x = torch.cat([x[:, :1], x[:, :1] * 0.5, x[:, 1:]], 1)
    offsets = slice(2 * 8 + 2 * 4, 2 * 8 + 3 * 4)  # after energies, spreads, means, SDs
    with torch.no_grad():
        full = net.pooled(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = net.pooled(x)
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed[:, offsets], full[:, offsets], atol=1e-4, rtol=0)
    torch.testing.assert_close(mixed[:, -3:], full[:, -3:], atol=1e-4, rtol=0)  # level offsets


def _disc_mask(radius: float, spikes: int = 0, d: int = 4, size: int = 40) -> torch.Tensor:
    """``[1, 1, d, size, size]``: a disc in every slice, with ``spikes`` thin rays (length
    ``radius``) out of it."""
    yy, xx = torch.meshgrid(torch.arange(size * 1.0), torch.arange(size * 1.0), indexing="ij")
    c = (size - 1) / 2
    r, phi = ((yy - c) ** 2 + (xx - c) ** 2).sqrt(), torch.atan2(yy - c, xx - c)
    disc = r <= radius
    for k in range(spikes):
        angle = -torch.pi + 2 * torch.pi * (k + 0.3) / spikes
        ray = (torch.remainder(phi - angle + torch.pi, 2 * torch.pi) - torch.pi).abs() * r < 0.8
        disc |= ray & (r <= 2 * radius)
    return disc.float().expand(1, 1, d, size, size).clone()


def test_outline_statistics_grow_with_a_rougher_boundary() -> None:
    """Spicules on a disc raise the perimeter, the largest outline distance over the mean and
    its spread; a disc's outline is close to a circle (max / mean near 1, small spread)."""
    from deepradiomics.models.texture import outline_statistics

    disc, spiky = _disc_mask(7.0), _disc_mask(7.0, spikes=6)
    a, b = outline_statistics(disc)[0], outline_statistics(spiky)[0]
    assert b[0] > a[0] + 0.3  # log perimeter: the rays add ~12 x 6 x 2 edges per slice
    assert a[2] < 1.1 and b[2] > 1.4  # max distance / mean: the rays reach 2 radii
    assert a[3] < 0.08 and b[3] > 2 * a[3]  # coefficient of variation of the distances
    # faces: 2 x area per slab (top and bottom); the stack is 4 slices of the same disc
    assert a[1].item() == pytest.approx(np.log1p(2 * disc[0, 0, 0].sum().item()), rel=1e-6)
    assert outline_statistics(torch.zeros(1, 1, 2, 8, 8)).isfinite().all()


def test_outline_statistics_ignore_quarter_turns_flips_and_position() -> None:
    from deepradiomics.models.texture import outline_statistics

    mask = _disc_mask(6.0, spikes=5)
    moved = torch.roll(mask, (3, -4), (-2, -1))  # the rays stay inside the crop
    stats = outline_statistics(torch.cat([mask, torch.rot90(mask, 1, (-2, -1)), mask.flip(-1)]))
    torch.testing.assert_close(stats[1:], stats[:1].expand(2, 4), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(outline_statistics(moved), stats[:1], rtol=1e-5, atol=1e-5)


def _cored_volume(offset: int) -> torch.Tensor:
    """CT 0.7 in a 14 x 14 lesion (the window's units) with a dark 6 x 6 core (0.3),
    ``offset`` voxels right of the centre; the mask is the last channel."""
    x = torch.zeros(1, 2, 4, 40, 40)
    x[:, 1, :, 13:27, 13:27] = 1.0
    x[:, 0] = 0.55
    x[:, 0, :, 13:27, 13:27] = 0.7
    x[:, 0, :, 17:23, 17 + offset : 23 + offset] = 0.3
    return x


def test_levels_see_the_dark_share_and_where_the_core_sits() -> None:
    """At initialisation the middle level (0.5 of three) is a soft threshold 0.05 wide
    between the core (0.3: weight sigmoid(4) = 0.98) and the rest (0.7: 0.02): its share
    is about the core's share of the lesion, its centroid about the core's."""
    net = create_backbone("lesion_texture", in_channels=2, levels=3).eval()
    central, eccentric = _cored_volume(0), _cored_volume(4)
    with torch.no_grad():
        a, b = net.pooled(central), net.pooled(eccentric)
    share, offset = a[0, -5], a[0, -2]  # [..., shares (3), offsets (3)]
    assert share.item() == pytest.approx(36 / 196, abs=0.02)
    assert offset.item() < 0.05  # a central core: its centroid is the lesion's
    radius = 14.0  # sqrt of the lesion's area per slice
    assert b[0, -2].item() == pytest.approx(4 / radius, rel=0.15)
    assert b[0, -5].item() == pytest.approx(share.item(), rel=1e-4)  # moving keeps the share
    assert a[0, -6] < 0.05 and a[0, -4] > 0.7  # level 0.25: nothing below; 0.75: most
    turned = torch.rot90(eccentric, 1, (-2, -1))
    with torch.no_grad():
        torch.testing.assert_close(net.pooled(turned)[0, -6:], b[0, -6:], rtol=1e-4, atol=1e-5)


def test_relative_levels_find_the_core_whatever_the_sites_intensity_offset() -> None:
    """Three more levels, relative to the lesion's median (0.7) after a 3 x 3 mean: the deepest
    (3/16 of the window under it) holds the 6 x 6 core and its smoothed rim, not the bright
    voxels next to it; a site's offset of the whole image (+0.1) leaves them as they are,
    while the absolute levels see other shares."""
    net = create_backbone("lesion_texture", in_channels=2, levels=3, relative_levels=True)
    x = _cored_volume(4)
    with torch.no_grad():
        a, b = net.eval().pooled(x), net.pooled(x + 0.1)
    plain = create_backbone("lesion_texture", in_channels=2, levels=3).eval()
    assert a.shape[1] == plain.pooled(x).shape[1] + 2 * 3
    # [..., shares: 3 absolute, 3 relative; offsets: 3 absolute, 3 relative]; about the core's
    # 36 / 196, less its corners, which the 3 x 3 mean lifts to the level (5 bright of 9)
    assert a[0, -7].item() == pytest.approx(36 / 196, abs=0.035)
    assert a[0, -1].item() == pytest.approx(4 / 14, rel=0.15)  # its offset over the radius
    relative = [-9, -8, -7, -3, -2, -1]
    torch.testing.assert_close(a[:, relative], b[:, relative], rtol=1e-4, atol=1e-5)
    assert (a[0, -12:-9] - b[0, -12:-9]).abs().max() > 0.1
    net(x).sum().backward()
    assert net.level_maps.weight.grad[3:, 1].abs().sum() > 0  # the relative copy learns
    with pytest.raises(ValueError, match="set levels >= 1"):
        create_backbone("lesion_texture", in_channels=2, relative_levels=True)


def test_shape_and_levels_extend_the_pooled_vector_and_train() -> None:
    net = create_backbone("lesion_texture", in_channels=3, texture_channels=1, shape=True, levels=3)
    x = torch.rand(2, 3, 4, 20, 20)
    x[:, -1] = 0.0
    x[:, -1, :, 5:15, 6:14] = 1.0
    pooled = net.pooled(x)
    assert pooled.shape == (2, 2 * 8 + 3 * 4 + 1 + 4 + 2 * 3)
    net(x).sum().backward()
    assert net.level_maps.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="levels"):
        create_backbone("lesion_texture", in_channels=2, levels=-1)


def test_hidden_zero_feeds_the_normalised_statistics_to_the_head() -> None:
    model = create_model(
        "lesion_texture", task="binary", in_channels=3, hidden=0, texture_channels=1, levels=3
    )
    x = torch.rand(4, 3, 4, 20, 20)
    x[:, -1] = 0.0
    x[:, -1, :, 5:15, 6:14] = 1.0
    model.eval()
    out = model(x)
    pooled = model.backbone.pooled(x)
    assert out["embedding"].shape == pooled.shape == (4, 2 * 8 + 3 * 4 + 1 + 2 * 3)
    bn = model.backbone.mlp[0]
    expected = (pooled - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps)
    torch.testing.assert_close(out["embedding"], expected * bn.weight + bn.bias)
    with pytest.raises(ValueError, match="hidden"):
        create_backbone("lesion_texture", in_channels=2, hidden=-1)


def test_texture_floor_keeps_a_dark_core_out_of_the_texture_energies() -> None:
    """A dark core's edge is a strong isotropic edge: without the floor it dominates the
    band-pass energies; with it the energies stay near those of the same lesion without a
    core, and a lesion that is dark throughout still gives finite features."""
    g = torch.Generator().manual_seed(4)
    x = torch.zeros(1, 2, 4, 40, 40)
    x[:, 0] = 0.65 + 0.03 * torch.randn(4, 40, 40, generator=g)
    x[:, 1, :, 6:34, 6:34] = 1.0
    cored = x.clone()
    cored[:, 0, :, 16:24, 16:24] = 0.3
    energies = {}
    for floor in (None, 0.5):
        net = create_backbone("lesion_texture", in_channels=2, texture_floor=floor).eval()
        with torch.no_grad():
            energies[floor] = (net.pooled(x)[0, :8], net.pooled(cored)[0, :8])  # log levels
    plain, core = energies[None]
    assert (core - plain).min() > 1.0  # the edge multiplies every filter's energy
    plain, core = energies[0.5]
    assert (core - plain).abs().max() < 0.3
    dark = x.clone()
    dark[:, 0] = 0.2
    with torch.no_grad():
        assert net.pooled(dark).isfinite().all()


def half_striped() -> tuple[torch.Tensor, torch.Tensor]:
    """A 28 x 28 lesion: 5-voxel stripes on its left half, faint noise on its right; a Gabor
    bank at the stripes' wavelength."""
    r = torch.arange(9.0) - 4
    gabor = torch.cos(2 * torch.pi / 5 * r)[None, :] * torch.exp(-(r[:, None] ** 2 + r**2) / 8)
    xx = torch.arange(40.0).expand(40, 40)
    x = torch.zeros(1, 2, 4, 40, 40)
    x[:, 0] = 0.05 * torch.randn(4, 40, 40, generator=torch.Generator().manual_seed(0))
    x[:, 0, :, :, :20] += torch.sin(2 * torch.pi / 5 * xx[:, :20])
    x[:, 1, :, 6:34, 6:34] = 1.0
    return x, gabor


def test_energy_shares_add_up_to_the_energies_inside_the_region() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 2, 3, 20, 24, generator=g)
    region = (torch.rand(2, 1, 3, 20, 24, generator=g) > 0.4).float()
    bank = OrientedFilters(filters=3, kernel=7, rotations=4)
    with torch.no_grad():
        shares, energies = bank.maps(x, region), bank(x, region)
    assert shares.shape == (2, 2 * 12, 3, 20, 24)
    torch.testing.assert_close(shares.sum((2, 3, 4)), energies.flatten(1), rtol=1e-4, atol=1e-6)
    assert float(shares.abs().masked_select(region == 0).max()) == 0.0


def test_the_texture_share_sits_on_the_striped_half() -> None:
    x, gabor = half_striped()
    bank = OrientedFilters(filters=1, kernel=9, rotations=1)
    bank.weight.data[:] = gabor
    with torch.no_grad():
        shares = bank.maps(x[:, :1], x[:, 1:])[0, 0]
    left, right = float(shares[..., :20].sum()), float(shares[..., 20:].sum())
    assert left > 20 * abs(right), (left, right)


def test_attribution_changes_the_route_not_the_features() -> None:
    net = create_backbone(
        "lesion_texture", in_channels=2, filters=3, z_slices=2, levels=2, texture_floor=0.3
    ).eval()
    x, _ = half_striped()
    with torch.no_grad():
        direct = net.pooled(x)
        with net.attribution():
            assert net._attributing
            spatial = net.pooled(x)
    assert not net._attributing
    torch.testing.assert_close(spatial, direct, rtol=1e-4, atol=1e-5)


def test_gabor_kernels_are_quadrature_pairs_at_spread_wavelengths() -> None:
    """Unit norm; each pair's spectrum peaks across the columns at its wavelength (3 to 6
    pixels for a 9-pixel kernel); the cosine and sine of a pair are nearly orthogonal."""
    bank = gabor_kernels(8, 9)
    assert bank.shape == (8, 9, 9)
    torch.testing.assert_close(bank.square().sum((1, 2)), torch.ones(8))
    spectrum = torch.fft.rfft(bank.sum(1), n=90).abs()  # along the columns, 0.011 cycles/px
    peak = spectrum.argmax(-1).float() / 90
    for j, wavelength in enumerate((3.0, 3.0, 4.0, 4.0, 5.0, 5.0, 6.0, 6.0)):
        assert peak[j].item() == pytest.approx(1 / wavelength, abs=0.03)
    for j in range(0, 8, 2):
        assert abs((bank[j] * bank[j + 1]).sum().item()) < 0.05


def test_erode_in_plane_trims_the_rim_in_plane_only_and_not_at_the_image_edge() -> None:
    region = torch.zeros(1, 1, 3, 9, 9)
    region[..., 2:7, 2:7] = 1  # a 5 x 5 square on every slice
    region[..., 0:3, 6:9] = 1  # and a block touching the image's top-right corner
    eroded = erode_in_plane(region, 1)
    assert eroded[0, 0, 1, 3:6, 3:6].sum() == 9  # the square's 3 x 3 interior
    assert eroded[0, 0, 1, 2, 2] == 0 and eroded[0, 0, 1, 6, 3] == 0  # its rim goes
    assert eroded[0, 0, 1, 0, 8] == 1  # the image edge does not erode
    assert torch.equal(eroded[0, 0, 0], eroded[0, 0, 2])  # nothing across slices
    assert torch.equal(erode_in_plane(region, 0), region)
