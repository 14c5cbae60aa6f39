"""Write small DICOM series with pydicom for reader and SUV tests (no real patient data)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

PET_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
FAKE_NAME, FAKE_ID, FAKE_BIRTH = "Doe^Jane", "PID-31337", "19420101"

# The SIEMENS case of cornerstonejs/calculate-suv: expected factor 0.00042748316187197236
SIEMENS_PET = {
    "SeriesDate": "20201217",
    "SeriesTime": "104829.000000",
    "AcquisitionDate": "20201217",
    "AcquisitionTime": "104830.351370",
    "PatientWeight": 67,
    "Units": "BQML",
    "DecayCorrection": "START",
    "CorrectedImage": ["NORM", "DTIM", "ATTN", "SCAT", "DECY", "RAN"],
    "RadionuclideTotalDose": 374000000,
    "RadionuclideHalfLife": 6586.2,
    "RadiopharmaceuticalStartTime": "083045.000000",
}
SIEMENS_FACTOR = 0.00042748316187197236


def stored_slices(n: int, rows: int = 4, cols: int = 5) -> np.ndarray:
    """Distinct int16 values per voxel: ``[z, y, x]``."""
    return (np.arange(n * rows * cols).reshape(n, rows, cols) * 7 + 3).astype(np.int16)


def write_series(
    folder: Path,
    stored: np.ndarray,
    *,
    modality: str = "PT",
    slopes: Sequence[float] | None = None,
    positions: Sequence[Sequence[float]] | None = None,
    orientation: Sequence[float] = (1, 0, 0, 0, 1, 0),
    spacing: tuple[float, float] = (1.0, 1.5),
    pet: dict[str, Any] | None = None,
    per_slice: Sequence[dict[str, Any]] | None = None,
    philips: Sequence[dict[str, str]] | None = None,
    series_uid: str | None = None,
) -> list[Path]:
    """One file per slice of ``stored`` (``[z, y, x]`` int16); returns the files in z order.

    ``pet`` holds SUV attributes (flat, calculate-suv style) written to every slice,
    ``per_slice`` overrides per slice, ``philips`` the private (7053,1000)/(7053,1009)
    per slice.
    """
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    study, frame = generate_uid(), generate_uid()
    sop_class = PET_STORAGE if modality == "PT" else CT_STORAGE
    row, col = np.array(orientation[:3], float), np.array(orientation[3:], float)
    normal = np.cross(row, col)
    files = []
    for k, plane in enumerate(stored):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = sop_class
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.SOPClassUID = sop_class
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series_uid, frame
        ds.PatientName, ds.PatientID, ds.PatientBirthDate = FAKE_NAME, FAKE_ID, FAKE_BIRTH
        ds.Modality = modality
        ds.InstanceNumber = k + 1
        position = positions[k] if positions is not None else (10.0 + 2.5 * k * normal).tolist()
        ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in orientation]
        ds.PixelSpacing = [f"{spacing[0]}", f"{spacing[1]}"]
        ds.SliceThickness = "2.5"
        ds.Rows, ds.Columns = plane.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope = f"{slopes[k] if slopes is not None else 1.0:.10g}"
        ds.RescaleIntercept = "0"
        attrs = dict(pet or {})
        attrs.update(per_slice[k] if per_slice is not None else {})
        _set_pet(ds, attrs)
        if philips is not None:
            block = ds.private_block(0x7053, "Philips PET Private Group", create=True)
            for key, offset in (
                ("SUVScaleFactor", 0x00),
                ("ActivityConcentrationScaleFactor", 0x09),
            ):
                if key in philips[k]:
                    block.add_new(offset, "DS", philips[k][key])
        ds.PixelData = np.ascontiguousarray(plane, dtype="<i2").tobytes()
        path = folder / f"slice_{k:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files


RADIOPHARM_KEYS = (
    "RadionuclideTotalDose",
    "RadionuclideHalfLife",
    "RadiopharmaceuticalStartTime",
    "RadiopharmaceuticalStartDateTime",
)


def _set_pet(ds: Dataset, attrs: dict[str, Any]) -> None:
    """Flat attributes into the dataset, the radiopharmaceutical ones into their sequence."""
    radiopharm = Dataset()
    for key, value in attrs.items():
        setattr(radiopharm if key in RADIOPHARM_KEYS else ds, key, value)
    if len(radiopharm):
        ds.RadiopharmaceuticalInformationSequence = [radiopharm]
