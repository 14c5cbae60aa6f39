import numpy as np
import pytest
import SimpleITK as sitk

from deepradiomics.errors import UserError
from deepradiomics.preprocess.case import prepare_images
from deepradiomics.preprocess.crop import mask_box
from deepradiomics.preprocess.normalise import scale_window
from tests.preprocess.conftest import ball, index_centroid, make_image, modality, simple_plan


def _images(centre, shape=(24, 24, 24), radius=3.0):
    """CT with a body block and a bright ball; PET and MR copies; the ball as mask."""
    inside = ball(shape, centre, radius)
    ct = np.full(shape, 0.0, np.float32)
    ct[inside] = 100.0
    pet = np.where(inside, 6.0, 1.0).astype(np.float32)
    mr = np.where(inside, 400.0, 200.0).astype(np.float32)
    mr[:, :, :3] = 10.0  # dark background strip
    images = {"ct": make_image(ct), "pet": make_image(pet), "mr": make_image(mr)}
    return images, make_image(inside.astype(np.uint8)), inside


PLAN3 = [
    modality("ct", "ct", (-1100.0, 100.0)),
    modality("pet", "pet"),
    modality("mr", "mr", region="mask"),
]


def test_crop_is_centred_on_the_mask():
    images, mask, _ = _images(centre=(6, 15, 9))
    out = prepare_images("c", images, mask, simple_plan(PLAN3))
    assert out.meta["centred_on"] == "mask"
    np.testing.assert_allclose(out.meta["mask_centre"], (9.0, 15.0, 6.0))  # (x, y, z)
    # even grid on an integer centre: snapped by half a voxel, so voxels are copied exactly
    np.testing.assert_allclose(np.abs(np.subtract(out.meta["centre"], (9.0, 15.0, 6.0))), 0.5)
    np.testing.assert_allclose(index_centroid(out.mask), [7.5, 7.5, 7.5], atol=0.5)
    assert out.mask.sum() == int(ball((24, 24, 24), (6, 15, 9), 3.0).sum())
    hu = scale_window(np.array([-1024.0, 0.0, 100.0]), -1100.0, 100.0)  # padding, body, ball
    assert set(np.unique(out.image[0])) == set(hu.tolist())  # no interpolated in-between value
    assert out.meta["mask_truncated"] is False and out.meta["mask_voxels"] == int(out.mask.sum())


def test_padding_at_the_border_uses_each_modality_background():
    images, mask, _ = _images(centre=(2, 2, 2), radius=2.0)
    out = prepare_images("c", images, mask, simple_plan(PLAN3))
    # the grid centre lies half a voxel from voxel 2: the first 5 voxels along every axis
    # (at least) are outside
    ct, pet, mr = out.image
    assert ct[0, 0, 0] == pytest.approx(float(scale_window(np.float32(-1024.0), -1100.0, 100.0)))
    assert ct[10, 10, 10] == pytest.approx(float(scale_window(np.float32(0.0), -1100.0, 100.0)))
    assert pet[0, 0, 0] == 0.0 and pet[10, 10, 10] == pytest.approx(1.0 / 20.0)
    # MR pads with its minimum (10), then z-scored like every voxel
    mean, std = out.meta["normalisation"]["mr"]["mean"], out.meta["normalisation"]["mr"]["std"]
    assert out.meta["normalisation"]["mr"]["fill"] == 10.0
    assert mr[0, 0, 0] == pytest.approx((10.0 - mean) / std, rel=1e-5)
    assert out.mask[:5].sum() == 0 and out.mask.sum() > 0


def test_mr_zscore_in_its_region():
    images, mask, inside = _images(centre=(12, 12, 12), radius=5.0)
    mr = sitk.GetArrayFromImage(images["mr"])
    mr[inside] = np.linspace(300, 500, inside.sum())
    images["mr"] = make_image(mr)
    for region, sel in (
        ("mask", inside),
        ("volume", np.ones_like(inside)),
        ("body", (mr > 10.0) | inside),
    ):
        plan = simple_plan([modality("mr", "mr", region=region)], shape=(24, 24, 24))
        out = prepare_images("c", images, mask, plan)
        # a 24^3 grid at 1 mm centred on the ball is the image itself: check on the output
        region_out = out.image[0][sel]
        assert abs(region_out.mean()) < 1e-4, region
        assert region_out.std() == pytest.approx(1.0, abs=1e-4), region


def test_whole_volume_is_centre_cropped_or_padded():
    shape = (20, 30, 30)
    arr = np.arange(np.prod(shape), dtype=np.float32).reshape(shape) % 97
    plan = simple_plan([modality("pet", "pet", (0.0, 100.0))], shape=(24, 24, 40), crop=False)
    out = prepare_images("c", {"pet": make_image(arr)}, None, plan)
    assert out.mask is None and out.meta["centred_on"] == "image"
    img = out.image[0] * 100.0
    np.testing.assert_allclose(img[2:22, :, 5:35], arr[:, 3:27, :], atol=1e-4)  # exact shifts
    assert img[:2].max() == 0 and img[22:].max() == 0  # z padded
    assert img[:, :, :5].max() == 0 and img[:, :, 35:].max() == 0  # x padded


def test_truncated_mask_is_flagged():
    images, mask, _ = _images(centre=(12, 12, 12), radius=6.0)
    out = prepare_images("c", images, mask, simple_plan(PLAN3, shape=(8, 8, 8)))
    assert out.meta["mask_truncated"] is True


def test_mask_problems_name_the_case():
    images, mask, _ = _images(centre=(12, 12, 12))
    with pytest.raises(UserError, match="case c7: no mask, but the plan crops around the mask"):
        prepare_images("c7", images, None, simple_plan(PLAN3))
    empty = make_image(np.zeros((24, 24, 24), np.uint8))
    with pytest.raises(UserError, match="case c7: the mask is empty"):
        prepare_images("c7", images, empty, simple_plan(PLAN3))
    far = make_image(sitk.GetArrayFromImage(mask), origin=(500.0, 0.0, 0.0))
    with pytest.raises(UserError, match="case c7: the mask's centre lies outside the ct image"):
        prepare_images("c7", images, far, simple_plan(PLAN3))


def test_mask_box_extent_and_centre():
    arr = np.zeros((10, 12, 14), np.uint8)
    arr[2:5, 3:9, 4:6] = 1
    box = mask_box(make_image(arr, (2.0, 1.0, 0.5), origin=(10.0, 20.0, 30.0)))
    assert box.extent_mm == (6.0, 6.0, 1.0)
    assert box.centre == pytest.approx((10 + 4.5 * 0.5, 20 + 5.5, 30 + 3 * 2.0))
    assert box.voxels == 36 and box.volume_ml == pytest.approx(36 * 1.0 / 1000)
    assert mask_box(make_image(np.zeros((3, 3, 3), np.uint8))) is None
