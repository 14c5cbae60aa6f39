import numpy as np
import pytest

from deepradiomics.errors import UserError
from deepradiomics.preprocess.normalise import (
    CT_WINDOWS,
    foreground_threshold,
    intensity_stats,
    scale_window,
    window_bounds,
    zscore,
)
from tests.preprocess.conftest import make_image


def test_soft_tissue_window_numbers():
    lo, hi = window_bounds("soft_tissue")
    assert (lo, hi) == (-160.0, 240.0)  # W400 / L40
    hu = np.array([-1000.0, -160.0, 40.0, 240.0, 3000.0])
    np.testing.assert_allclose(scale_window(hu, lo, hi), [0.0, 0.0, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(scale_window(hu, lo, hi, (-1.0, 1.0)), [-1.0, -1.0, 0.0, 1.0, 1.0])
    assert scale_window(hu, lo, hi).dtype == np.float32


def test_named_windows_are_width_level():
    assert window_bounds("lung") == (-1350.0, 150.0)  # W1500 / L-600
    assert window_bounds("mediastinum") == (-125.0, 225.0)
    assert window_bounds("brain") == (0.0, 80.0)
    for name, (width, level) in CT_WINDOWS.items():
        lo, hi = window_bounds(name)
        assert hi - lo == width and (lo + hi) / 2 == level


def test_unknown_window_names_the_key():
    with pytest.raises(
        UserError, match=r"cohort.modalities.ct.window: unknown CT window 'softtissue'.*lung"
    ):
        window_bounds("softtissue", "cohort.modalities.ct.window")


def test_zscore_inside_region_has_mean_0_std_1():
    rng = np.random.default_rng(0)
    arr = rng.gamma(2.0, 50.0, size=(10, 12, 14)).astype(np.float32)
    region = np.zeros(arr.shape, bool)
    region[2:8, 3:9, 4:10] = True
    out = zscore(arr, arr[region].mean(), arr[region].std())
    assert abs(out[region].mean()) < 1e-5
    assert abs(out[region].std() - 1.0) < 1e-5
    assert zscore(np.full(4, 7.0), 7.0, 0.0).tolist() == [0.0] * 4  # constant: centred only


def test_pet_clip_to_suv_max():
    suv = np.array([-0.5, 0.0, 5.0, 10.0, 20.0, 35.0])
    np.testing.assert_allclose(scale_window(suv, 0.0, 20.0), [0, 0, 0.25, 0.5, 1.0, 1.0])


def test_foreground_threshold():
    assert foreground_threshold(make_image(np.zeros((4, 4, 4), np.float32)), "ct") == -500.0
    arr = np.full((20, 20, 20), 3.0, np.float32)  # MR-like: dark background, bright body
    arr[5:15, 5:15, 5:15] = 300.0
    t = foreground_threshold(make_image(arr), "mr")
    assert 3.0 <= t < 300.0
    assert int((arr > t).sum()) == 1000


def test_intensity_stats_match_numpy():
    values = np.arange(1001, dtype=np.float64)
    s = intensity_stats(values)
    assert s["p0_5"] == pytest.approx(np.percentile(values, 0.5))
    assert s["p50"] == 500.0 and s["p99_5"] == pytest.approx(995.0)
    assert s["mean"] == 500.0 and s["std"] == pytest.approx(values.std())
    assert s["voxels"] == 1001
    assert intensity_stats(np.array([])) is None
