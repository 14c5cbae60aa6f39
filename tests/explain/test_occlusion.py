"""Occlusion: hiding the cube lowers the toy's score most; batching does not change the map."""

from __future__ import annotations

import numpy as np
import torch

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
