"""read_image on synthetic files: formats round trip, one orientation convention, refusals."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from deepradiomics.errors import UserError
from deepradiomics.io.readers import read_header, read_image, spacing_zyx, to_array, write_image


def _rotation(axis: np.ndarray, degrees: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    t = np.radians(degrees)
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k


def _image(direction: np.ndarray, dtype=np.int16, shape=(5, 6, 7)) -> sitk.Image:
    """Distinct voxel values ([z, y, x] = shape), anisotropic spacing, given direction."""
    arr = np.arange(np.prod(shape)).reshape(shape).astype(dtype)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.8, 1.1, 2.5))
    img.SetOrigin((-12.5, 30.25, 101.0))
    img.SetDirection(direction.flatten().tolist())
    return img


# columns are the index axes in LPS: i -> anterior, j -> inferior, k -> right (all flipped)
PERMUTED_FLIPPED = np.array([[0, 0, -1], [-1, 0, 0], [0, -1, 0]], dtype=float)
OBLIQUE_FLIPPED = _rotation(np.array([1.0, 2.0, 0.5]), 25) @ PERMUTED_FLIPPED


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
@pytest.mark.parametrize("dtype", [np.int16, np.float32])
def test_round_trip(tmp_path, suffix, dtype):
    img = _image(OBLIQUE_FLIPPED, dtype)
    path = tmp_path / f"vol{suffix}"
    write_image(img, path)
    back = read_image(path, orient=False)
    assert back.GetPixelID() == img.GetPixelID()
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(img))
    tol = 1e-5 if suffix.startswith(".nii") else 1e-12  # NIfTI stores geometry as float32
    np.testing.assert_allclose(back.GetSpacing(), img.GetSpacing(), atol=tol)
    np.testing.assert_allclose(back.GetOrigin(), img.GetOrigin(), atol=tol * 100)
    np.testing.assert_allclose(back.GetDirection(), img.GetDirection(), atol=tol)
    assert read_header(path).GetSize() == img.GetSize()


def _physical_points(img: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """Physical point (N x 3) and [z, y, x] array value (N) of every voxel."""
    size = img.GetSize()
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in size], indexing="ij"), -1).reshape(-1, 3)
    d = np.array(img.GetDirection()).reshape(3, 3)
    pts = np.array(img.GetOrigin()) + (idx * np.array(img.GetSpacing())) @ d.T
    values = sitk.GetArrayFromImage(img)[idx[:, 2], idx[:, 1], idx[:, 0]]
    return pts, values


def _value_at(img: sitk.Image, pts: np.ndarray) -> np.ndarray:
    d = np.array(img.GetDirection()).reshape(3, 3)
    cont = np.linalg.solve(d @ np.diag(img.GetSpacing()), (pts - np.array(img.GetOrigin())).T).T
    idx = np.rint(cont).astype(int)
    np.testing.assert_allclose(cont, idx, atol=1e-6)  # voxel centres map onto voxel centres
    return sitk.GetArrayFromImage(img)[idx[:, 2], idx[:, 1], idx[:, 0]]


@pytest.mark.parametrize(
    "direction",
    [PERMUTED_FLIPPED, OBLIQUE_FLIPPED, np.diag([-1.0, -1.0, 1.0])],
    ids=["permuted-flipped", "oblique-flipped", "RAS-like"],
)
def test_orientation_is_lps_and_voxels_keep_their_place(tmp_path, direction):
    path = tmp_path / "vol.nrrd"
    write_image(_image(direction), path)
    original = read_image(path, orient=False)
    img = read_image(path)
    d = np.array(img.GetDirection()).reshape(3, 3)
    # each index axis runs along the patient axis it is closest to, in the +L, +P, +S sense
    assert np.all(np.argmax(np.abs(d), axis=0) == [0, 1, 2])
    assert np.all(np.diag(d) > 0.7)
    if np.allclose(np.abs(direction), np.round(np.abs(direction))):
        np.testing.assert_allclose(d, np.eye(3), atol=1e-12)
    pts, values = _physical_points(img)
    np.testing.assert_array_equal(_value_at(original, pts), values)
    assert sorted(spacing_zyx(img)) == pytest.approx([0.8, 1.1, 2.5])


def test_to_array_is_zyx(tmp_path):
    img = _image(np.eye(3))
    assert to_array(img).shape == (5, 6, 7) and to_array(img).dtype == np.float32
    assert spacing_zyx(img) == (2.5, 1.1, 0.8)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_4d_with_one_time_point_is_accepted(tmp_path, suffix):
    img = _image(np.eye(3), np.float32)
    path = tmp_path / f"vol4d{suffix}"
    if suffix == ".nii.gz":  # as other tools write it: dim[0] = 4, dim[4] = 1
        affine = np.diag([-0.8, -1.1, 2.5, 1.0])
        affine[:3, 3] = [12.5, -30.25, 101.0]  # RAS of the LPS origin
        nib.save(nib.Nifti1Image(sitk.GetArrayFromImage(img).T[..., None], affine), str(path))
        assert nib.load(str(path)).header["dim"][0] == 4
    else:  # SimpleITK keeps these 4D on reading
        sitk.WriteImage(sitk.JoinSeries([img]), str(path))
        assert sitk.ReadImage(str(path)).GetDimension() == 4
    back = read_image(path)
    assert back.GetDimension() == 3
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(img))
    np.testing.assert_allclose(back.GetSpacing(), img.GetSpacing(), atol=1e-6)
    np.testing.assert_allclose(back.GetOrigin(), img.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(back.GetDirection(), img.GetDirection(), atol=1e-6)


def test_4d_with_several_time_points_is_refused(tmp_path):
    img = _image(np.eye(3), np.float32)
    path = tmp_path / "dynamic.nii.gz"
    sitk.WriteImage(sitk.JoinSeries([img, img]), str(path))
    with pytest.raises(UserError, match=r"dynamic\.nii\.gz: image is 4D"):
        read_image(path)


def test_2d_image_is_refused(tmp_path):
    path = tmp_path / "slice.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((8, 9), np.int16)), str(path))
    with pytest.raises(UserError, match=r"slice\.nrrd: image is 2D"):
        read_image(path)


def test_single_slice_volume_is_refused(tmp_path):
    path = tmp_path / "thin.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((1, 8, 9), np.int16)), str(path))
    with pytest.raises(UserError, match=r"thin\.nii\.gz: .*one voxel"):
        read_image(path)


@pytest.mark.parametrize("suffix", [".nrrd", ".nii.gz"])
def test_multi_component_image_is_refused(tmp_path, suffix):
    img = _image(np.eye(3), np.float32)
    path = tmp_path / f"vector{suffix}"
    sitk.WriteImage(sitk.Compose(img, img, img), str(path))
    with pytest.raises(UserError, match=rf"vector{suffix.replace('.', r'[.]')}: .*3 components"):
        read_image(path)


def test_corrupt_files_are_user_errors(tmp_path):
    garbage = tmp_path / "garbage.nii.gz"
    garbage.write_bytes(gzip.compress(b"not an image at all" * 20))
    with pytest.raises(UserError, match=r"garbage\.nii\.gz: cannot read image"):
        read_image(garbage)
    empty = tmp_path / "empty.mha"
    empty.write_bytes(b"")
    with pytest.raises(UserError, match=r"empty\.mha: cannot read image"):
        read_image(empty)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".nrrd", ".mha"])
def test_truncated_files_are_user_errors(tmp_path, suffix):
    """SimpleITK zero-fills truncated NIfTI (plain and gzipped) silently; we refuse them."""
    good = tmp_path / f"good{suffix}"
    write_image(
        _image(np.eye(3), np.float32, shape=(20, 20, 20)), good, compress=suffix.endswith(".gz")
    )
    read_image(good)
    truncated = tmp_path / f"truncated{suffix}"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size * 2 // 3])
    with pytest.raises(
        UserError, match=rf"truncated{suffix.replace('.', r'[.]')}: .*(truncat|cannot read)"
    ):
        read_image(truncated)


def test_missing_path_and_bad_kind(tmp_path):
    with pytest.raises(UserError, match=r"nope\.nii\.gz: file not found"):
        read_image(tmp_path / "nope.nii.gz")
    write_image(_image(np.eye(3)), tmp_path / "v.nrrd")
    with pytest.raises(UserError, match="unknown modality kind 'spect'"):
        read_image(tmp_path / "v.nrrd", kind="spect")


def test_pet_file_is_returned_as_stored(tmp_path):
    """Files carry no DICOM SUV tags: PET NIfTI values are used as they are."""
    img = _image(np.eye(3), np.float32)
    write_image(img, tmp_path / "suv.nii.gz")
    back = read_image(tmp_path / "suv.nii.gz", kind="pet", suv=True)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(img))


def test_folder_without_dicom_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(UserError, match=rf"{tmp_path.name}: folder holds no DICOM image series"):
        read_image(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no DICOM image series"):
        read_image(empty)
