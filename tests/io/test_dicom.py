"""DICOM series reading on synthetic series: what SimpleITK alone gets wrong, and refusals."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from pydicom.uid import generate_uid

from deepradiomics.errors import UserError
from deepradiomics.io.dicom import read_dicom_series
from deepradiomics.io.readers import read_image
from tests.io.synthetic_dicom import stored_slices, write_series


def test_per_slice_rescale_with_unit_first_slope_is_not_truncated(tmp_path):
    stored = stored_slices(3)
    slopes = [1.0, 0.5, 0.3]
    write_series(tmp_path, stored, modality="CT", slopes=slopes)
    reader = (
        sitk.ImageSeriesReader()
    )  # what SimpleITK alone returns: integers, slices 2-3 truncated
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path)))
    plain = sitk.GetArrayFromImage(reader.Execute())
    assert plain.dtype.kind == "i"
    series = read_dicom_series(tmp_path)
    expected = stored * np.array(slopes)[:, None, None]
    assert not np.allclose(plain, expected)
    np.testing.assert_allclose(sitk.GetArrayFromImage(series.image), expected, rtol=1e-12)
    assert series.modality == "CT"
    assert all(f.endswith(f"slice_{k:03d}.dcm") for k, f in enumerate(series.files))


def test_slices_are_sorted_by_position_not_file_name(tmp_path):
    stored = stored_slices(4)
    z = [7.5, 0.0, 5.0, 2.5]  # file k sits at z[k]
    write_series(tmp_path, stored, modality="CT", positions=[(0.0, 0.0, v) for v in z])
    img = read_image(tmp_path, kind="ct")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), stored[np.argsort(z)])
    assert img.GetOrigin() == pytest.approx((0.0, 0.0, 0.0))
    assert img.GetSpacing() == pytest.approx(
        (1.5, 1.0, 2.5)
    )  # PixelSpacing is (row, column) spacing


def test_oblique_series_geometry_follows_the_headers(tmp_path):
    """IPP/IOP written by hand: voxel (i, j, k) must sit at IPP_k + i*dc*row + j*dr*col."""
    angle = np.radians(20)
    row = np.array([np.cos(angle), np.sin(angle), 0.0])
    col = np.array([0.0, 0.0, -1.0])  # coronal-ish, rows running inferior
    normal = np.cross(row, col)
    stored = stored_slices(3)
    positions = [np.array([5.0, -3.0, 40.0]) + 2.5 * k * normal for k in range(3)]
    write_series(tmp_path, stored, modality="MR", orientation=(*row, *col), positions=positions)
    img = read_image(tmp_path, kind="mr")  # reoriented to LPS
    array = sitk.GetArrayFromImage(img)
    for k, j, i in [(0, 0, 0), (2, 3, 4), (1, 2, 1)]:
        point = (
            positions[k] + i * 1.5 * row + j * 1.0 * col
        )  # PixelSpacing (1.0, 1.5): column step 1.5
        idx = img.TransformPhysicalPointToIndex(point.tolist())
        assert np.allclose(img.TransformIndexToPhysicalPoint(idx), point, atol=1e-4)
        assert array[idx[2], idx[1], idx[0]] == stored[k, j, i]


@pytest.mark.parametrize(
    ("z", "message"),
    [([0.0, 2.5, 7.5, 10.0], "not uniform"), ([0.0, 2.5, 2.5, 5.0], "same position")],
    ids=["missing-slice", "duplicate-slice"],
)
def test_irregular_slices_are_refused(tmp_path, z, message):
    write_series(
        tmp_path, stored_slices(len(z)), modality="CT", positions=[(0.0, 0.0, v) for v in z]
    )
    with pytest.raises(UserError, match=rf"{tmp_path.name}: .*{message}"):
        read_image(tmp_path)


def test_gantry_tilt_is_refused(tmp_path):
    positions = [(0.0, 0.7 * k, 2.5 * k) for k in range(3)]
    write_series(tmp_path, stored_slices(3), modality="CT", positions=positions)
    with pytest.raises(UserError, match="gantry tilt"):
        read_image(tmp_path)


def test_mixed_orientations_are_refused(tmp_path):
    uid = generate_uid()
    write_series(tmp_path, stored_slices(2), modality="CT", series_uid=uid)
    write_series(
        tmp_path / "x",
        stored_slices(1),
        modality="CT",
        series_uid=uid,
        orientation=(1, 0, 0, 0, 0, -1),
        positions=[(0.0, 1.0, 2.5)],
    )
    (tmp_path / "x" / "slice_000.dcm").rename(tmp_path / "slice_009.dcm")
    with pytest.raises(UserError, match="different orientations"):
        read_image(tmp_path)


def test_two_series_in_one_folder_are_refused(tmp_path):
    write_series(tmp_path, stored_slices(2), modality="CT")
    write_series(tmp_path / "b", stored_slices(2), modality="CT")
    for f in (tmp_path / "b").iterdir():
        f.rename(tmp_path / f"b_{f.name}")
    with pytest.raises(UserError, match="2 DICOM series; give one series per folder"):
        read_image(tmp_path)


def test_single_dicom_file_hints_at_the_folder(tmp_path):
    files = write_series(tmp_path, stored_slices(2), modality="CT")
    with pytest.raises(UserError, match=r"slice_000\.dcm: .*give the series folder"):
        read_image(files[0])


def test_wrong_modality_kind_is_refused(tmp_path):
    write_series(tmp_path, stored_slices(2), modality="CT")
    with pytest.raises(UserError, match="expected a MR series but its DICOM Modality is CT"):
        read_image(tmp_path, kind="mr")
    assert read_image(tmp_path, kind="ct").GetSize() == (5, 4, 2)


def test_subfolders_are_named_when_the_folder_has_no_series(tmp_path):
    write_series(tmp_path / "PET", stored_slices(2))
    with pytest.raises(UserError, match="subfolders are not searched; it has: PET"):
        read_image(tmp_path)
