"""Occlusion: hiding the cube lowers the toy's score most; batching does not change the map."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepradiomics.errors import UserError
from deepradiomics.explain.occlusion import _starts, occlusion


def test_patches_cover_every_voxel() -> None:
    assert _starts(16, 4, 4) == [0, 4, 8, 12]
    assert _starts(10, 4, 4) == [0, 4, 6]
    assert _starts(3, 4, 4) == [0]


def test_occlusion_peaks_at_the_cube_and_batching_is_exact(toy) -> None:
    pos = np.flatnonzero(toy.labels.numpy() == 1)[:4]
    x = toy.images[pos]
    maps = occlusion(toy.model, x, patch=(4, 4, 4), stride=(2, 2, 2), batch=64)
    assert maps.shape == x[:, 0].shape
    for m, (z, y, w) in zip(maps, toy.centres[pos], strict=False):
        assert float(m[z, y, w]) > 0  # hiding the cube lowers the score
        assert float((m > m[z, y, w]).float().mean()) <= 0.05
    again = occlusion(toy.model, x[:1], patch=(4, 4, 4), stride=(2, 2, 2), batch=5)
    torch.testing.assert_close(again[0], maps[0], rtol=1e-4, atol=1e-5)


class MaskReader(torch.nn.Module):
    """Scores the mean of channel 0 inside the mask of channel 1."""

    def forward(self, x: torch.Tensor, covariates=None) -> dict[str, torch.Tensor]:
        mask = x[:, 1:]
        return {"out": (x[:, :1] * mask).flatten(1).sum(1) / mask.flatten(1).sum(1)}


def test_a_kept_mask_channel_is_not_occluded() -> None:
    """With ``channels=1`` only the image is hidden (the fill is its median, 1): the map is
    zero outside the lesion the model reads and non-zero where the lesion is bright."""
    x = torch.ones(1, 2, 8, 8, 8)
    x[0, 0, :4] = 3.0
    x[0, 1] = 0
    x[0, 1, 2:6, 2:6, 2:6] = 1
    kept = occlusion(MaskReader(), x, patch=(2, 2, 2), channels=1)[0]
    lesion = x[0, 1] > 0
    assert float(kept[~lesion].abs().max()) == 0.0
    assert float(kept[2:4][lesion[2:4]].min()) > 0 and float(kept[4:][lesion[4:]].max()) == 0
    with pytest.raises(UserError, match="channels"):
        occlusion(MaskReader(), x, channels=3)
