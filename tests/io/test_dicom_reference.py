"""DICOM series vs dicom2nifti's reference NIfTI: GE, Philips, Siemens, Hitachi, RLE, JPEG.

Every case is integer MR without rescale, so voxels must be identical. Geometry is checked
twice: against SimpleITK's reading of the NIfTI (both in LPS), and against nibabel's affine
(RAS, an independent reader) voxel by voxel through physical space.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from deepradiomics.io.readers import read_image
from tests.conftest import shared_path

CASES = [
    "ge/anatomical",
    "philips/anatomical",
    "siemens/anatomical",
    "hitachi/anatomical",
    "generic/compressed_rle",
    "generic/compressed_jpeg",
]
REFERENCES = ["001_ground_truth.nii.gz", "001_ground_truth_reoriented.nii.gz"]
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


@pytest.mark.parametrize("case", CASES)
def test_dicom_series_matches_reference_nifti(case):
    folder = shared_path("dicom2nifti_reader_cases", *case.split("/"), "001")
    dicom = read_image(folder, kind="mr")
    voxels = sitk.GetArrayFromImage(dicom)
    assert voxels.dtype.kind in "iu"  # stored integers, no rescale to floats
    for name in REFERENCES:
        nifti = read_image(folder.parent / name)
        assert dicom.GetSize() == nifti.GetSize(), name
        np.testing.assert_array_equal(voxels, sitk.GetArrayFromImage(nifti), err_msg=name)
        np.testing.assert_allclose(dicom.GetSpacing(), nifti.GetSpacing(), atol=1e-5)
        np.testing.assert_allclose(dicom.GetOrigin(), nifti.GetOrigin(), atol=2e-4)
        # SimpleITK takes the NIfTI direction from the float32 qform quaternion: GE is off by 1.7e-5
        np.testing.assert_allclose(dicom.GetDirection(), nifti.GetDirection(), atol=5e-5)


@pytest.mark.parametrize("case", CASES)
def test_every_voxel_sits_where_nibabel_puts_it(case):
    folder = shared_path("dicom2nifti_reader_cases", *case.split("/"), "001")
    dicom = read_image(folder)
    ref = nib.load(str(folder.parent / REFERENCES[0]))
    ref_voxels = np.asarray(ref.dataobj)
    size = dicom.GetSize()
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in size], indexing="ij"), -1).reshape(-1, 3)
    direction = np.array(dicom.GetDirection()).reshape(3, 3)
    lps = np.array(dicom.GetOrigin()) + (idx * np.array(dicom.GetSpacing())) @ direction.T
    ras = np.c_[lps @ LPS_TO_RAS.T, np.ones(len(lps))]
    ref_idx = (np.linalg.inv(ref.affine) @ ras.T).T[:, :3]
    rounded = np.rint(ref_idx).astype(int)
    assert np.abs(ref_idx - rounded).max() < 1e-3  # voxel centres land on voxel centres
    values = sitk.GetArrayFromImage(dicom)[idx[:, 2], idx[:, 1], idx[:, 0]]
    np.testing.assert_array_equal(values, ref_voxels[rounded[:, 0], rounded[:, 1], rounded[:, 2]])


def test_oblique_cases_are_really_oblique():
    """Hitachi and Philips are oblique: the reorientation is not a pure axis permutation."""
    for case in ("hitachi/anatomical", "philips/anatomical"):
        img = read_image(shared_path("dicom2nifti_reader_cases", *case.split("/"), "001"))
        d = np.array(img.GetDirection()).reshape(3, 3)
        assert np.abs(d - np.eye(3)).max() > 0.01
        assert np.all(np.argmax(np.abs(d), axis=0) == [0, 1, 2]) and np.all(np.diag(d) > 0)
