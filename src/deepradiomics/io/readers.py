"""Read NIfTI, NRRD, MHA and DICOM series into SimpleITK images in one orientation.

Convention for every image the rest of the code sees: reoriented to LPS with
``sitk.DICOMOrient(img, "LPS")``, so ``sitk.GetArrayFromImage`` gives an array indexed
``[z, y, x]`` where x grows towards the patient's left, y towards posterior and z towards
superior (for axis-aligned acquisitions the direction matrix becomes the identity).
Spacing tuples used outside SimpleITK follow the array order ``(z, y, x)``: use
``spacing_zyx``.

DICOM series checks live in ``io.dicom``, PET SUV factors in ``io.suv``, the NIfTI
truncation check in ``io.nifti``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from deepradiomics.errors import UserError
from deepradiomics.io.dicom import read_dicom_series, sitk_error_reason
from deepradiomics.io.nifti import check_nifti_complete
from deepradiomics.io.suv import dicom_suv_factors

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
KINDS = {"ct": "CT", "mr": "MR", "pet": "PT"}  # modality kind -> DICOM Modality (0008,0060)


def is_dicom_dir(path: Path) -> bool:
    return path.is_dir()


def read_image(
    path: str | Path, kind: str | None = None, suv: bool = True, orient: bool = True
) -> sitk.Image:
    """Read a volume file or a DICOM series folder; reoriented to LPS unless ``orient=False``.

    ``kind`` is the modality kind (``ct``, ``mr``, ``pet``): a DICOM series of another
    Modality is refused. For ``pet`` DICOM series with ``suv=True`` voxels become
    body-weight SUV (float32) from the DICOM tags (``io.suv``); PET files (NIfTI...) carry no
    such tags and are returned as stored. Raises ``UserError`` naming the file when it is
    missing, unreadable, not 3D (a 4D image with one time point is accepted) or has more
    than one component per voxel.
    """
    path = Path(path)
    if kind is not None and kind not in KINDS:
        raise UserError(
            f"{path}: unknown modality kind {kind!r}; expected one of {', '.join(KINDS)}"
        )
    if not path.exists():
        raise UserError(f"{path}: file not found")
    if is_dicom_dir(path):
        img = _read_dicom(path, kind, suv)
    else:
        try:
            img = sitk.ReadImage(str(path))
        except RuntimeError as err:
            raise UserError(f"{path}: cannot read image ({sitk_error_reason(err)})") from None
        check_nifti_complete(path)
    img = _as_3d(img, path)
    return sitk.DICOMOrient(img, "LPS") if orient else img


def _read_dicom(path: Path, kind: str | None, suv: bool) -> sitk.Image:
    series = read_dicom_series(path)
    if kind is not None and series.modality and series.modality != KINDS[kind]:
        raise UserError(
            f"{path}: expected a {kind.upper()} series but its DICOM Modality is {series.modality}"
        )
    if kind != "pet" or not suv:
        return series.image
    factors = dicom_suv_factors(series.files, path)
    if len(factors) != series.image.GetSize()[2]:  # one multi-frame file: one factor for all
        if len(set(factors.tolist())) > 1:
            raise UserError(
                f"{path}: {len(factors)} files for {series.image.GetSize()[2]} slices; "
                "cannot match SUV factors to slices"
            )
        factors = np.full(series.image.GetSize()[2], factors[0])
    log.debug(
        "%s: SUVbw factors %.6g..%.6g over %d slices",
        path,
        factors.min(),
        factors.max(),
        len(factors),
    )
    voxels = sitk.GetArrayFromImage(series.image).astype(np.float64)
    suv_img = sitk.GetImageFromArray((voxels * factors[:, None, None]).astype(np.float32))
    suv_img.CopyInformation(series.image)
    return suv_img


def _as_3d(img: sitk.Image, path: Path) -> sitk.Image:
    if img.GetDimension() == 4 and img.GetSize()[3] == 1:
        img = img[:, :, :, 0]
    hint = (
        "; give the series folder, not one DICOM file"
        if path.suffix.lower() in (".dcm", ".ima")
        else ""
    )
    if img.GetDimension() != 3:
        raise UserError(
            f"{path}: image is {img.GetDimension()}D with size {img.GetSize()}, expected 3D{hint}"
        )
    if min(img.GetSize()) < 2:
        raise UserError(
            f"{path}: image has size {img.GetSize()}, only one voxel along an axis: a 2D image, "
            f"expected a 3D volume{hint}"
        )
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise UserError(
            f"{path}: image has {img.GetNumberOfComponentsPerPixel()} components per voxel "
            "(vector or RGB image), expected 1"
        )
    return img


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
        raise UserError(f"{path}: cannot read image header ({sitk_error_reason(err)})") from None
    return reader


def spacing_zyx(img: sitk.Image) -> tuple[float, float, float]:
    sx, sy, sz = img.GetSpacing()
    return (sz, sy, sx)


def to_array(img: sitk.Image, dtype: type = np.float32) -> np.ndarray:
    """Voxels as a ``[z, y, x]`` array (a copy)."""
    return sitk.GetArrayFromImage(img).astype(dtype, copy=False)


def write_image(img: sitk.Image, path: str | Path, compress: bool = True) -> None:
    sitk.WriteImage(img, str(path), useCompression=compress)
