"""Read NIfTI, NRRD, MHA and DICOM series into SimpleITK images in one orientation.

Convention for every image the rest of the code sees: reoriented to LPS with
``sitk.DICOMOrient(img, "LPS")``, so ``sitk.GetArrayFromImage`` gives an array indexed
``[z, y, x]`` where x grows towards the patient's left, y towards posterior and z towards
superior (for axis-aligned acquisitions the direction matrix becomes the identity).
Spacing tuples used outside SimpleITK follow the array order ``(z, y, x)``: use
``spacing_zyx``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from deepradiomics.errors import UserError

IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")


def is_dicom_dir(path: Path) -> bool:
    return path.is_dir()


def _read_dicom_series(path: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    series = reader.GetGDCMSeriesIDs(str(path))
    if not series:
        raise UserError(f"{path}: folder holds no DICOM series")
    if len(series) > 1:
        raise UserError(
            f"{path}: folder holds {len(series)} DICOM series; give one series per folder"
        )
    files = reader.GetGDCMSeriesFileNames(str(path), series[0])
    reader.SetFileNames(files)
    return reader.Execute()


def read_image(
    path: str | Path, kind: str | None = None, suv: bool = True, orient: bool = True
) -> sitk.Image:
    """Read a volume file or a DICOM series folder; reoriented to LPS unless ``orient=False``.

    ``kind`` is the modality kind (``ct``, ``mr``, ``pet``); for ``pet`` DICOM series with
    ``suv=True`` voxels are converted to body-weight SUV from the DICOM tags. Raises
    ``UserError`` naming the file when it is missing, unreadable or not 3D.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: file not found")
    try:
        img = _read_dicom_series(path) if is_dicom_dir(path) else sitk.ReadImage(str(path))
    except RuntimeError as err:
        first = str(err).strip().splitlines()[-1] if str(err).strip() else "unknown reason"
        raise UserError(f"{path}: cannot read image ({first})") from None
    if img.GetDimension() != 3:
        if img.GetDimension() == 4 and img.GetSize()[3] == 1:
            img = img[:, :, :, 0]
        else:
            raise UserError(f"{path}: image is {img.GetDimension()}D with size {img.GetSize()}, expected 3D")
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise UserError(f"{path}: image has {img.GetNumberOfComponentsPerPixel()} components per voxel, expected 1")
    return sitk.DICOMOrient(img, "LPS") if orient else img


def read_header(path: str | Path) -> sitk.ImageFileReader | None:
    """Geometry without voxels (files only; ``None`` for DICOM folders)."""
    path = Path(path)
    if is_dicom_dir(path):
        return None
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as err:
        raise UserError(f"{path}: cannot read image header ({str(err).strip().splitlines()[-1]})") from None
    return reader


def spacing_zyx(img: sitk.Image) -> tuple[float, float, float]:
    sx, sy, sz = img.GetSpacing()
    return (sz, sy, sx)


def to_array(img: sitk.Image, dtype: type = np.float32) -> np.ndarray:
    """Voxels as a ``[z, y, x]`` array (a copy)."""
    return sitk.GetArrayFromImage(img).astype(dtype, copy=False)


def write_image(img: sitk.Image, path: str | Path, compress: bool = True) -> None:
    sitk.WriteImage(img, str(path), useCompression=compress)
