import numpy as np
import pytest

from deepradiomics.config import ModalityConfig
from deepradiomics.preprocess.fingerprint import Fingerprint, fingerprint_case, fingerprint_images
from tests.preprocess.conftest import ct_case, make_image


def _ct_with_box():
    arr = np.full((24, 24, 24), -1000.0, np.float32)
    arr[2:22, 2:22, 2:22] = np.arange(20**3, dtype=np.float32).reshape(20, 20, 20) % 400 - 100
    mask = np.zeros(arr.shape, np.uint8)
    mask[4:9, 6:12, 10:17] = 1  # 5 x 6 x 7 voxels
    spacing = (3.0, 0.8, 0.7)
    return arr, mask, spacing


def test_case_fingerprint_values():
    arr, mask, spacing = _ct_with_box()
    fp = fingerprint_images(
        "c1", {"ct": make_image(arr, spacing)}, make_image(mask, spacing), {"ct": "ct"}
    )
    assert fp.spacing["ct"] == pytest.approx(spacing)
    assert fp.size["ct"] == (24, 24, 24)
    assert fp.mask_extent_mm == pytest.approx((15.0, 4.8, 4.9))
    assert fp.mask_volume_ml == pytest.approx(5 * 6 * 7 * 3.0 * 0.8 * 0.7 / 1000)
    inside = arr[mask > 0]
    m = fp.intensity["ct"]["mask"]
    assert m["voxels"] == inside.size
    assert m["p0_5"] == pytest.approx(np.percentile(inside, 0.5))
    assert m["p50"] == pytest.approx(np.percentile(inside, 50))
    assert m["p99_5"] == pytest.approx(np.percentile(inside, 99.5))
    assert m["mean"] == pytest.approx(inside.mean()) and m["std"] == pytest.approx(inside.std())
    fg = fp.intensity["ct"]["foreground"]
    body = arr[arr > -500]
    assert fg["voxels"] == body.size and fg["p50"] == pytest.approx(np.percentile(body, 50))


def test_modality_on_another_grid_uses_the_mask_in_physical_space():
    # CT 1 mm, PET 2 mm over the same field; PET is 5 SUV exactly where the mask is
    mask = np.zeros((24, 24, 24), np.uint8)
    mask[8:16, 8:16, 8:16] = 1
    pet = np.zeros((12, 12, 12), np.float32)
    pet[4:8, 4:8, 4:8] = 5.0
    images = {
        "ct": make_image(np.zeros((24, 24, 24), np.float32), origin=(0, 0, 0)),
        "pet": make_image(pet, (2.0, 2.0, 2.0), origin=(0.5, 0.5, 0.5)),  # voxel edges align
    }
    fp = fingerprint_images("c", images, make_image(mask), {"ct": "ct", "pet": "pet"})
    assert fp.spacing["pet"] == (2.0, 2.0, 2.0) and fp.size["pet"] == (12, 12, 12)
    stats = fp.intensity["pet"]["mask"]
    assert stats["voxels"] == 64 and stats["p0_5"] == 5.0 and stats["p99_5"] == 5.0
    assert fp.intensity["pet"]["foreground"]["p50"] == 5.0  # Otsu separates 0 from 5


def test_no_mask_and_empty_mask():
    img = make_image(np.zeros((6, 6, 6), np.float32))
    fp = fingerprint_images("c", {"ct": img}, None, {"ct": "ct"})
    assert fp.mask_extent_mm is None and fp.intensity["ct"]["mask"] is None
    fp = fingerprint_images(
        "c", {"ct": img}, make_image(np.zeros((6, 6, 6), np.uint8)), {"ct": "ct"}
    )
    assert fp.mask_extent_mm is None


def test_fingerprint_case_from_files_and_json_round_trip(tmp_path):
    cases = [ct_case(tmp_path, f"c{i}", spacing=(2.0, 1.0, 1.0), radius=3.0 + i) for i in range(3)]
    mods = {"ct": ModalityConfig(column="ct", kind="ct")}
    fp = Fingerprint({"ct": "ct"}, [fingerprint_case(c, mods) for c in cases])
    np.testing.assert_allclose(fp.spacings(), [[2.0, 1.0, 1.0]] * 3)
    ext = fp.mask_extents_mm()
    assert ext.shape == (3, 3) and np.all(np.diff(ext[:, 1]) > 0)  # bigger balls, bigger boxes
    mask_p50 = fp.intensity("ct", "mask", "p50")
    assert np.all(np.abs(mask_p50 - 60.0) < 5)  # tumour HU 60 plus noise
    fp.save(tmp_path / "fingerprint.json")
    back = Fingerprint.load(tmp_path / "fingerprint.json")
    assert back == fp
    summary = back.to_dict()["summary"]
    assert summary["cases"] == 3 and summary["spacing_median"] == [2.0, 1.0, 1.0]
    assert summary["cases_with_mask"] == 3
