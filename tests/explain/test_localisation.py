"""Shares of positive attribution per region, and the outside-the-body flag."""

from __future__ import annotations

import numpy as np
import pytest

from deepradiomics.explain.localisation import body_mask, localise, summarise


def _phantom():
    image = np.zeros((20, 20, 20), np.float32)
    image[3:17, 3:17, 3:17] = 0.5  # body
    lesion = np.zeros(image.shape, bool)
    lesion[8:12, 8:12, 8:12] = True
    image[lesion] = 0.8
    return image, lesion


def test_shares_by_region() -> None:
    image, lesion = _phantom()
    body = body_mask(image)
    assert body.sum() == 14**3
    attribution = np.zeros(image.shape)
    attribution[lesion] = 1.0  # 64 voxels x 1
    attribution[1, 1, 1] = 64.0  # as much outside the body
    attribution[10, 10, 14] = -100.0  # negative attribution is not counted
    loc = localise(attribution, lesion, body, (1.0, 1.0, 1.0), margin_mm=2.0)
    assert loc.lesion == pytest.approx(0.5) and loc.outside == pytest.approx(0.5)
    assert loc.margin == 0.0 and loc.body == 0.0
    assert loc.flagged
    attribution[1, 1, 1] = 0.0
    attribution[10, 10, 13] = 64.0  # 1 mm from the lesion: in the 2 mm margin
    attribution[10, 10, 16] = 64.0  # 4 mm away: body
    loc = localise(attribution, lesion, body, (1.0, 1.0, 1.0), margin_mm=2.0)
    assert (loc.lesion, loc.margin, loc.body, loc.outside) == pytest.approx(
        (1 / 3, 1 / 3, 1 / 3, 0)
    )
    assert not loc.flagged
    # margins are in millimetres: with 3 mm voxels the voxel at 1 voxel = 3 mm is body
    loc = localise(attribution, lesion, body, (3.0, 3.0, 3.0), margin_mm=2.0)
    assert loc.margin == 0.0 and loc.body == pytest.approx(2 / 3)


def test_summary() -> None:
    image, lesion = _phantom()
    body = body_mask(image)
    a = np.where(lesion, 1.0, 0.0)
    b = np.zeros(image.shape)
    b[0, 0, 0] = 1.0
    s = summarise([localise(a, lesion, body, (1, 1, 1)), localise(b, lesion, body, (1, 1, 1))])
    assert s["cases"] == 2 and s["flagged_outside_body"] == 1
    assert s["lesion_median"] == pytest.approx(0.5) and s["outside_median"] == pytest.approx(0.5)
