"""build_augmenter: config wiring, reproducibility from the seed, identity when off, errors."""

from __future__ import annotations

import pytest
import torch

from deepradiomics.augment import build_augmenter
from deepradiomics.config import AugmentConfig, parse_config
from deepradiomics.errors import UserError

ALL_ON = dict(elastic_p=1.0, gamma=0.3, noise_std=0.05)
ALL_OFF = AugmentConfig.off().model_dump()  # every transform off


def _batch(device="cpu"):
    g = torch.Generator().manual_seed(0)
    image = torch.randn(2, 1, 16, 16, 16, generator=g).to(device)
    mask = (torch.rand(2, 1, 16, 16, 16, generator=g) > 0.8).to(torch.uint8).to(device)
    return image, mask


@pytest.mark.parametrize("anisotropic", [False, True])
def test_same_seed_same_batch(anisotropic):
    aug = build_augmenter(
        AugmentConfig(**ALL_ON),
        anisotropic=anisotropic,
        spacing=(3.0, 1.0, 1.0) if anisotropic else None,
    )
    image, mask = _batch()
    a = aug(image, mask, generator=torch.Generator().manual_seed(5))
    b = aug(image, mask, generator=torch.Generator().manual_seed(5))
    c = aug(image, mask, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    assert not torch.equal(a[0], image)
    assert a[1].dtype == torch.uint8 and set(a[1].unique().tolist()) <= {0, 1}


def test_params_reproduce_the_batch():
    aug = build_augmenter(AugmentConfig(**ALL_ON), anisotropic=False)
    image, mask = _batch()
    params = aug.sample(image.shape, torch.Generator().manual_seed(3))
    direct = aug(image, mask, generator=torch.Generator().manual_seed(3))
    replay = aug.apply(image, mask, params)
    assert torch.equal(direct[0], replay[0]) and torch.equal(direct[1], replay[1])


def test_everything_off_is_the_identity():
    aug = build_augmenter(AugmentConfig.off(), anisotropic=False)
    assert aug.transforms == []
    image, mask = _batch()
    out, m = aug(image, mask, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, image) and torch.equal(m, mask)


def test_config_selects_transforms():
    names = lambda aug: [type(t).__name__ for t in aug.transforms]  # noqa: E731
    assert names(build_augmenter(AugmentConfig(), anisotropic=False)) == [
        "RandomSpatial",
        "RandomIntensity",
    ]
    assert names(build_augmenter(AugmentConfig(**ALL_ON), anisotropic=True)) == [
        "RandomSpatial",
        "RandomGamma",
        "RandomIntensity",
        "RandomNoise",
    ]
    spatial = build_augmenter(
        AugmentConfig(**{**ALL_OFF, "flip": True}), anisotropic=True
    ).transforms[0]
    assert (
        spatial.flip.axes == (1, 2)
        and spatial.rotate90 is None
        and spatial.affine is None
        and spatial.elastic is None
    )


def test_symmetries_only_are_exact():
    aug = build_augmenter(
        AugmentConfig(**{**ALL_OFF, "flip": True, "rotate90": True}), anisotropic=False
    )
    image, mask = _batch()
    out, m = aug(image, mask, generator=torch.Generator().manual_seed(0))
    for i in range(2):  # a permutation of the very same voxel values
        assert torch.equal(out[i].flatten().sort().values, image[i].flatten().sort().values)
        assert m[i].sum() == mask[i].sum()


def test_bad_scale_is_a_user_error_when_the_config_loads():
    for scale in ([1.2, 0.9], [0.0, 1.0]):
        with pytest.raises(UserError, match=r"augment\.scale: must be \[low, high\]"):
            parse_config({"augment": {"scale": scale}})


def test_wrong_batch_is_rejected():
    aug = build_augmenter(AugmentConfig(), anisotropic=False)
    gen = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="batch"):
        aug(torch.zeros(1, 16, 16, 16), generator=gen)
    with pytest.raises(TypeError, match="floating"):
        aug(torch.zeros(1, 1, 8, 8, 8, dtype=torch.uint8), generator=gen)
    with pytest.raises(ValueError, match="mask shape"):
        aug(torch.zeros(1, 1, 8, 8, 8), torch.zeros(1, 1, 8, 8, 4), generator=gen)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_runs_on_cuda_and_reproduces():
    aug = build_augmenter(AugmentConfig(**ALL_ON), anisotropic=False)
    image, mask = _batch("cuda")
    a = aug(image, mask, generator=torch.Generator(device="cuda").manual_seed(1))
    b = aug(image, mask, generator=torch.Generator(device="cuda").manual_seed(1))
    assert a[0].device.type == "cuda" and a[1].device.type == "cuda"
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    no_noise = build_augmenter(AugmentConfig(elastic_p=1.0, gamma=0.3), anisotropic=False)
    cpu_params = no_noise.sample(
        image.shape, torch.Generator().manual_seed(2)
    )  # CPU draws, CUDA data
    on_gpu = no_noise.apply(image, mask, cpu_params)
    on_cpu = no_noise.apply(image.cpu(), mask.cpu(), cpu_params)
    torch.testing.assert_close(on_gpu[0].cpu(), on_cpu[0], atol=1e-4, rtol=0)


@pytest.mark.parametrize("settings", [ALL_ON, {**ALL_ON, "affine_p": 0.0, "elastic_p": 0.0}])
def test_a_share_of_the_batch_augments_as_its_rows_of_the_whole_batch(settings):
    # what each process of a distributed run does with its share (rank::world) of a global
    # batch; the second setting leaves some shares without any interpolating transform
    from deepradiomics.augment import take_rows

    aug = build_augmenter(AugmentConfig(**settings), anisotropic=False)
    g = torch.Generator().manual_seed(1)
    image = torch.randn(6, 2, 12, 12, 12, generator=g)
    mask = (torch.rand(6, 1, 12, 12, 12, generator=g) > 0.7).to(torch.uint8)
    params = aug.sample(image.shape, torch.Generator().manual_seed(2))
    whole, whole_mask = aug.apply(image, mask, params)
    for rank in (0, 1, 2):
        rows = torch.arange(6)[rank::3]
        part, part_mask = aug.apply(image[rows], mask[rows], take_rows(params, rows, 6))
        # the same per-sample arithmetic on fewer samples: equal up to float rounding
        torch.testing.assert_close(part, whole[rows], rtol=1e-5, atol=1e-5)
        assert torch.equal(part_mask, whole_mask[rows])
    # control: another share's parameters do not fit
    other = aug.apply(image[:2], mask[:2], take_rows(params, torch.arange(2, 4), 6))[0]
    assert not torch.allclose(other, whole[:2], atol=1e-3)
