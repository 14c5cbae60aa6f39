"""lesion_texture: masked pooling, what it depends on, and the registry wiring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepradiomics.models import create_model
from deepradiomics.models.registry import create_backbone
from deepradiomics.models.texture import masked_moments


def test_masked_moments_match_numpy() -> None:
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(2, 3, 4, 5, 6, generator=g)
    weight = (torch.rand(2, 1, 4, 5, 6, generator=g) > 0.6).float()
    mean, cov = masked_moments(feat, weight)
    for i in range(2):
        keep = weight[i, 0].flatten().bool().numpy()
        f = feat[i].flatten(1).numpy()[:, keep]
        np.testing.assert_allclose(mean[i].numpy(), f.mean(1), atol=1e-5)
        np.testing.assert_allclose(cov[i].numpy(), np.cov(f, bias=True), atol=1e-5)


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
    assert net.num_features == 64 and a.shape == (1, 64)
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
    assert out["out"].shape[0] == 2 and out["embedding"].shape == (2, 64)
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


def test_in_plane_path_equals_the_3d_convolution_and_takes_channels_last_3d() -> None:
    net = create_backbone("lesion_texture", in_channels=2).eval()
    net.to(memory_format=torch.channels_last_3d)  # what the training loop does
    x = _volume((slice(None), slice(10, 16), slice(10, 16)))
    conv = net.stage1[0][0]
    with torch.no_grad():
        flat = x.transpose(1, 2).flatten(0, 1)
        via2d = conv(flat).unflatten(0, (1, x.shape[2])).transpose(1, 2)
        via3d = torch.nn.functional.conv3d(x, conv.weight, None, 1, (0, 1, 1))
        torch.testing.assert_close(via2d, via3d, atol=1e-5, rtol=1e-5)
        assert net(x.contiguous(memory_format=torch.channels_last_3d)).shape == (1, 64)
