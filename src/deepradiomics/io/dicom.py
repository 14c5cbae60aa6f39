"""Read one DICOM image series from a folder with SimpleITK (GDCM), with the checks it lacks.

SimpleITK stacks the slices and applies each slice's RescaleSlope/Intercept, but it picks
the pixel type from the first slice only: a series whose first slice has slope 1 and the
others not (PET) comes back as integers with the other slices truncated. It also only
warns when slices are missing, duplicated or sheared (gantry tilt) and then returns a
volume with a wrong geometry. Those cases are fixed (float re-read) or refused here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import SimpleITK as sitk

from deepradiomics.errors import UserError

_POSITION, _ORIENTATION, _SLOPE, _INTERCEPT, _MODALITY = (
    "0020|0032",
    "0020|0037",
    "0028|1053",
    "0028|1052",
    "0008|0060",
)
_KEYS = (_POSITION, _ORIENTATION, _SLOPE, _INTERCEPT, _MODALITY)
_SPACING_RTOL = 0.01  # slice gaps may differ by 1 % (rounding of positions in the headers)
_SHEAR_TOL_MM = 0.01
_INTEGER_TYPES = {
    sitk.sitkInt8,
    sitk.sitkUInt8,
    sitk.sitkInt16,
    sitk.sitkUInt16,
    sitk.sitkInt32,
    sitk.sitkUInt32,
    sitk.sitkInt64,
    sitk.sitkUInt64,
}


def series_file_names(folder: Path) -> list[str]:
    """Files of the one DICOM image series in ``folder``, in slice order."""
    warnings = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)  # GDCM's "No Series were found" noise
    try:
        ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
        if len(ids) > 1:
            raise UserError(
                f"{folder}: folder holds {len(ids)} DICOM series; give one series per folder"
            )
        files = (
            list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), ids[0])) if ids else []
        )
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(warnings)
    if not files:
        raise UserError(f"{folder}: folder holds no DICOM image series{_why_no_series(folder)}")
    return files


def _why_no_series(folder: Path) -> str:
    """A hint for an empty result: non-image DICOM (RTSTRUCT, SEG...) or series in subfolders."""
    import pydicom

    modalities = set()
    for f in sorted(p for p in folder.iterdir() if p.is_file())[:20]:
        try:
            modalities.add(str(pydicom.dcmread(f, stop_before_pixels=True).get("Modality", "?")))
        except Exception:  # not DICOM: nothing to report
            continue
    if modalities:
        return (
            f" (its DICOM files are {', '.join(sorted(modalities))} objects without image slices)"
        )
    subfolders = [p.name for p in sorted(folder.iterdir()) if p.is_dir()]
    if subfolders:
        return f" (subfolders are not searched; it has: {', '.join(subfolders[:5])})"
    return ""


class DicomSeries(NamedTuple):
    image: sitk.Image  # in DICOM's own orientation: index z is ``files[z]``
    files: list[str]  # in slice order
    modality: str  # (0008,0060), upper case, '' when absent


def read_dicom_series(folder: Path) -> DicomSeries:
    """The one image series in ``folder``, with per-slice rescale applied."""
    files = series_file_names(folder)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        img = reader.Execute()
        meta = [
            {key: reader.GetMetaData(i, key) for key in _KEYS if reader.HasMetaDataKey(i, key)}
            for i in range(len(files))
        ]
        if img.GetPixelID() in _INTEGER_TYPES and _rescale_varies(meta):
            reader.SetOutputPixelType(sitk.sitkFloat64)
            img = reader.Execute()
    except RuntimeError as err:
        raise UserError(f"{folder}: cannot read DICOM series ({sitk_error_reason(err)})") from None
    if len(files) > 1:
        _check_slices(folder, files, meta)
    return DicomSeries(img, files, meta[0].get(_MODALITY, "").strip().upper())


def _rescale_varies(meta: list[dict[str, str]]) -> bool:
    for key in (_SLOPE, _INTERCEPT):
        values = {_float(m.get(key), 1.0 if key == _SLOPE else 0.0) for m in meta}
        if len(values) > 1:
            return True
    return False


def _check_slices(folder: Path, files: list[str], meta: list[dict[str, str]]) -> None:
    if any(_POSITION not in m or _ORIENTATION not in m for m in meta):
        return  # not a classic one-slice-per-file series; nothing to check against
    orientations = np.array([_floats(m[_ORIENTATION]) for m in meta])
    if np.abs(orientations - orientations[0]).max() > 1e-4:
        raise UserError(
            f"{folder}: slices have different orientations (ImageOrientationPatient); "
            "the folder mixes several acquisitions (localizers?)"
        )
    row, col = orientations[0, :3], orientations[0, 3:6]
    normal = np.cross(row, col)
    positions = np.array([_floats(m[_POSITION]) for m in meta])
    steps = np.diff(positions, axis=0)
    gaps = steps @ normal
    if np.any(np.abs(gaps) < 1e-3):
        i = int(np.argmin(np.abs(gaps)))
        raise UserError(
            f"{folder}: two slices at the same position ({Path(files[i]).name}, "
            f"{Path(files[i + 1]).name}): several time frames or series in one folder"
        )
    median = float(np.median(gaps))
    if np.abs(gaps - median).max() > _SPACING_RTOL * abs(median):
        raise UserError(
            f"{folder}: slice spacing is not uniform (from {np.abs(gaps).min():.3f} to "
            f"{np.abs(gaps).max():.3f} mm): slices are missing or the series is irregular"
        )
    shear = np.linalg.norm(steps - np.outer(gaps, normal), axis=1).max()
    if shear > _SHEAR_TOL_MM:
        raise UserError(
            f"{folder}: slices are shifted in-plane by {shear:.2f} mm per slice (gantry tilt); "
            "resample the series to a regular grid first (e.g. dcm2niix corrects tilt)"
        )


def _float(text: str | None, default: float) -> float:
    try:
        return float(text) if text is not None and text.strip() else default
    except ValueError:
        return default


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.strip().split("\\")]


def sitk_error_reason(err: Exception) -> str:
    """The useful part of a SimpleITK exception: the ITK error line, plus a reader's last
    detail line (e.g. NRRD's "fread got only ...")."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if not lines:
        return "unknown reason"
    main = next((line for line in lines if "ERROR:" in line), lines[-1])
    main = re.sub(r"^\w+\(0x[0-9a-fA-F]+\):\s*", "", main.split("ERROR:", 1)[-1].strip())
    last = re.sub(r"^\[\w+\]\s*", "", lines[-1])
    if last and last not in main and "ERROR:" not in lines[-1] and not last.startswith("Reason:"):
        main = f"{main.rstrip(':')}; {last}"
    return main
