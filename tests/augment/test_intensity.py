"""Intensity scale/shift, gamma and noise: formulas, identity twins, probabilities."""

from __future__ import annotations

import torch

from deepradiomics.augment import (
    RandomGamma,
    RandomIntensity,
    RandomNoise,
    add_noise,
    gamma,
    scale_shift,
)


def _x() -> torch.Tensor:
    return torch.randn(2, 2, 16, 16, 16, generator=torch.Generator().manual_seed(0))


def test_scale_shift_per_sample_and_channel():
    x = _x()
    scale = torch.tensor([[1.0, 2.0], [0.5, 1.0]])
    shift = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    out = scale_shift(x, scale, shift)
    torch.testing.assert_close(out[0, 1], 2 * x[0, 1] + 1)
    torch.testing.assert_close(out[1, 0], 0.5 * x[1, 0] - 1)
    assert torch.equal(scale_shift(x, torch.ones(2, 2), torch.zeros(2, 2)), x)


def test_random_intensity_draws_in_range():
    params = RandomIntensity(scale=0.2, shift=0.1).sample(
        torch.Size([500, 2, 1, 1, 1]), torch.Generator().manual_seed(0)
    )
    assert params.scale.min() >= 0.8 and params.scale.max() <= 1.2 and params.scale.std() > 0.05
    assert params.shift.abs().max() <= 0.1


def test_gamma_keeps_range_and_bends_the_curve():
    x = _x()
    out = gamma(x, torch.tensor([[0.5, -0.5], [0.0, 0.3]]))
    for i in range(2):
        for c in range(2):
            torch.testing.assert_close(out[i, c].min(), x[i, c].min())
            torch.testing.assert_close(out[i, c].max(), x[i, c].max())
    torch.testing.assert_close(out[1, 0], x[1, 0], atol=1e-5, rtol=0)  # log_gamma 0: identity
    unit = (x[0, 0] - x[0, 0].min()) / (x[0, 0].max() - x[0, 0].min())
    expected = unit.pow(torch.e**0.5) * (x[0, 0].max() - x[0, 0].min()) + x[0, 0].min()
    torch.testing.assert_close(out[0, 0], expected)
    assert (out[0, 0] < x[0, 0] - 1e-3).any()  # gamma > 1 darkens the middle
    const = torch.ones(1, 1, 4, 4, 4)
    assert torch.equal(gamma(const, torch.tensor([[0.3]])), const)


def test_random_gamma_probability():
    draws = RandomGamma(0.3, p=0.5).sample(
        torch.Size([400, 1, 1, 1, 1]), torch.Generator().manual_seed(0)
    )
    assert draws.abs().max() <= 0.3
    assert 0.35 < (draws != 0).float().mean() < 0.65


def test_noise_std_and_reproducible_field():
    x = torch.zeros(3, 1, 16, 16, 16)
    std = torch.tensor([0.0, 0.1, 0.5])
    out = add_noise(x, std, seed=7)
    assert torch.equal(out[0], x[0])
    assert abs(out[1].std().item() - 0.1) < 0.01 and abs(out[2].std().item() - 0.5) < 0.05
    assert torch.equal(add_noise(x, std, seed=7), out)
    assert not torch.equal(add_noise(x, std, seed=8), out)


def test_random_noise_draws_std_up_to_max():
    params = RandomNoise(0.2).sample(
        torch.Size([300, 1, 1, 1, 1]), torch.Generator().manual_seed(0)
    )
    assert params.std.min() >= 0 and params.std.max() <= 0.2 and params.std.max() > 0.15


def test_intensity_transforms_leave_the_mask_alone():
    x, mask = _x(), (_x() > 0)
    g = torch.Generator().manual_seed(0)
    for t in (RandomIntensity(), RandomGamma(), RandomNoise()):
        _, m = t(x, mask, generator=g)
        assert m is mask
