import numpy as np
import pytest
import SimpleITK as sitk

from deepradiomics.cohort.manifest import Case
from deepradiomics.preprocess.case import apply_plan, prepare_images
from deepradiomics.preprocess.crop import centred_grid, image_centre
from deepradiomics.preprocess.resample import resample_mask, resample_onto, resample_to_spacing
from tests.preprocess.conftest import (
    ball,
    index_centroid,
    make_image,
    modality,
    physical_centroid,
    simple_plan,
    write,
)

SPACING = (3.0, 0.8, 0.7)  # z, y, x
ORIGIN = (-10.0, 5.0, 20.0)  # x, y, z


def _ball_image(centre=(10, 15, 12), radius=4.0, shape=(20, 30, 28), value=10.0, direction=None):
    arr = np.where(ball(shape, centre, radius, SPACING), value, 0.0).astype(np.float32)
    return make_image(arr, SPACING, ORIGIN, direction)


def test_bright_ball_lands_at_its_physical_position():
    img = _ball_image()
    p = np.array(img.TransformContinuousIndexToPhysicalPoint((12, 15, 10)))
    shift = np.array([3.0, -2.0, 4.0])  # grid centre relative to the ball (x, y, z mm)
    grid = centred_grid(img, tuple(p + shift), (1.0, 1.0, 1.0), (16, 16, 16))
    out = resample_onto(img, grid)
    expected = 7.5 - shift[::-1]  # (z, y, x) index of the ball centre in the grid
    np.testing.assert_allclose(index_centroid(out), expected, atol=0.3)
    assert out.dtype == np.float32 and out.shape == (16, 16, 16)


def test_orientation_on_read_keeps_physical_positions(tmp_path):
    # written in RAS-like axes (x and y flipped); read_image reorients to LPS
    img = _ball_image(direction=(-1, 0, 0, 0, -1, 0, 0, 0, 1))
    p = np.array(img.TransformContinuousIndexToPhysicalPoint((12, 15, 10)))
    mask = make_image(
        (sitk.GetArrayFromImage(img) > 0).astype(np.uint8), SPACING, ORIGIN, img.GetDirection()
    )
    case = Case(
        "c",
        "c",
        {"pet": write(img, tmp_path / "pet.nii.gz")},
        write(mask, tmp_path / "mask.nii.gz"),
        line=2,
    )
    prepared = apply_plan(case, simple_plan([modality("pet", "pet")]))
    np.testing.assert_allclose(prepared.meta["mask_centre"], p, atol=1e-4)
    # the grid is snapped to the source lattice: its centre moves by under half a voxel
    shift = np.asarray(prepared.meta["centre"]) - p
    assert np.all(np.abs(shift) <= np.array([0.7, 0.8, 3.0]) / 2 + 1e-6)
    expected = 7.5 - shift[::-1]  # (z, y, x) index of p in the 1 mm grid (LPS after reading)
    np.testing.assert_allclose(index_centroid(prepared.image[0]), expected, atol=0.3)
    np.testing.assert_allclose(index_centroid(prepared.mask), expected, atol=0.6)
    assert np.allclose(np.asarray(prepared.meta["direction"]).reshape(3, 3), np.eye(3))  # LPS


def test_mask_stays_binary():
    arr = np.zeros((20, 30, 28), np.uint8)
    arr[ball(arr.shape, (10, 15, 12), 5.0, SPACING)] = 3
    mask = make_image(arr, SPACING, ORIGIN)
    grid = centred_grid(mask, image_centre(mask), (1.0, 1.0, 1.0), (24, 24, 24))
    out = resample_mask(mask, grid)
    assert out.dtype == np.uint8 and set(np.unique(out)) == {0, 1}
    # nearest neighbour keeps the volume close to the original (within a voxel shell)
    original_ml = (arr > 0).sum() * np.prod(SPACING) / 1000
    assert abs(out.sum() / 1000 - original_ml) / original_ml < 0.25


def test_modalities_on_different_grids_end_on_one_grid():
    centre = np.array([11.3, 12.1, 10.6])  # physical (x, y, z)

    def ball_on(shape, spacing, origin, value):
        img = make_image(np.zeros(shape, np.float32), spacing, origin)
        idx = np.array(img.TransformPhysicalPointToContinuousIndex(tuple(centre)))[::-1]
        return make_image(
            np.where(ball(shape, idx, 4.0, spacing), value, 0).astype(np.float32), spacing, origin
        )

    ct = ball_on((24, 24, 24), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), 200.0)
    pet = ball_on((12, 14, 12), (2.0, 1.8, 2.0), (-0.5, 0.7, 0.5), 8.0)
    mask = sitk.Cast(ct > 0, sitk.sitkUInt8)
    plan = simple_plan(
        [modality("ct", "ct", (-100.0, 300.0)), modality("pet", "pet")], spacing=(1.5, 1.5, 1.5)
    )
    out = prepare_images("c", {"ct": ct, "pet": pet}, mask, plan)
    assert out.image.shape == (2, 16, 16, 16) and out.mask.shape == (16, 16, 16)
    c_ct = index_centroid(out.image[0] - 0.25)  # 0 HU -> 0.25; padding -> 0
    c_pet = index_centroid(out.image[1])
    np.testing.assert_allclose(c_ct, c_pet, atol=0.35)
    np.testing.assert_allclose(c_ct, [7.5] * 3, atol=0.35)
    assert out.meta["original_spacing"] == {"ct": [1.0, 1.0, 1.0], "pet": [2.0, 1.8, 2.0]}


def test_full_volume_resample_keeps_centre_and_extent():
    img = _ball_image()
    out = resample_to_spacing(img, (1.0, 1.0, 1.0))
    assert out.GetSize() == (round(28 * 0.7), round(30 * 0.8), 20 * 3)
    np.testing.assert_allclose(image_centre(out), image_centre(img), atol=1e-6)
    np.testing.assert_allclose(physical_centroid(out), physical_centroid(img), atol=0.15)


def test_bspline_interpolation_is_available():
    img = _ball_image()
    grid = centred_grid(img, image_centre(img), (1.0, 1.0, 1.0), (16, 16, 16))
    lin, bsp = resample_onto(img, grid, "linear"), resample_onto(img, grid, "bspline")
    assert not np.array_equal(lin, bsp)
    assert index_centroid(np.clip(bsp, 0, None)) == pytest.approx(index_centroid(lin), abs=0.3)
