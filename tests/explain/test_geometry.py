"""A map carried back from the network input lies on the case's original image grid."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from deepradiomics.errors import UserError
from deepradiomics.explain.geometry import to_original
from deepradiomics.preprocess.case import prepare_images
from tests.preprocess.conftest import ball, make_image, modality, simple_plan

# an oblique, anisotropic CT: 0.8 x 0.8 mm pixels, 2.5 mm slices, rotated about z and shifted
ANGLE = np.deg2rad(20.0)
DIRECTION = (np.cos(ANGLE), -np.sin(ANGLE), 0.0, np.sin(ANGLE), np.cos(ANGLE), 0.0, 0.0, 0.0, 1.0)
SPACING = (2.5, 0.8, 0.8)
SHAPE = (20, 48, 40)


def _case():
    inside = ball(SHAPE, (9, 22, 18), 7.0, SPACING)
    ct = np.where(inside, 60.0, 20.0).astype(np.float32)
    image = make_image(ct, SPACING, origin=(-31.5, 12.25, -80.0), direction=DIRECTION)
    mask = make_image(
        inside.astype(np.uint8), SPACING, origin=(-31.5, 12.25, -80.0), direction=DIRECTION
    )
    plan = simple_plan(
        [modality("ct", "ct", (-100.0, 100.0))], spacing=(1.5, 1.5, 1.5), shape=(16, 16, 16)
    )
    return image, mask, inside, prepare_images("c1", {"ct": image}, mask, plan)


def test_map_has_the_original_size_spacing_origin_direction() -> None:
    image, _, inside, prepared = _case()
    out = to_original(prepared.mask.astype(np.float32), prepared.meta, image)
    assert out.GetSize() == image.GetSize()
    assert out.GetSpacing() == pytest.approx(image.GetSpacing(), abs=1e-9)
    assert out.GetOrigin() == pytest.approx(image.GetOrigin(), abs=1e-9)
    assert out.GetDirection() == pytest.approx(image.GetDirection(), abs=1e-9)
    # and in the right place: the network-input mask carried back overlaps the original mask
    back = sitk.GetArrayFromImage(out) >= 0.5
    dice = 2 * (back & inside).sum() / (back.sum() + inside.sum())
    assert dice > 0.85, dice


def test_outside_the_crop_is_zero_and_a_wrong_shape_is_an_error() -> None:
    image, _, _, prepared = _case()
    out = sitk.GetArrayFromImage(
        to_original(np.ones((16, 16, 16), np.float32), prepared.meta, image)
    )
    covered = out > 0
    # the 24 mm crop covers ~10 slices of 2.5 mm and ~30 pixels of 0.8 mm, not the whole CT
    assert 0 < covered.sum() < covered.size
    assert 7 <= covered.any(axis=(1, 2)).sum() <= 12
    with pytest.raises(UserError, match="case c1: map shape"):
        to_original(np.ones((8, 8, 8), np.float32), prepared.meta, image)
