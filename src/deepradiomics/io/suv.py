"""PET body-weight SUV factors from DICOM attributes (multiply modality values by them).

Follows the QIBA "vendor-neutral pseudo-code for SUV calculation" (happy path plus the
vendor cases) as implemented by cornerstonejs/calculate-suv, whose real-scanner test cases
are our ground truth (``tests/io/test_suv.py``). No maintained Python library computes SUV
factors from plain header metadata (MIRP does it only inside its own image objects, and
needs pandas >= 3), so the formula is written here.

Input is one mapping per DICOM instance keyed by DICOM attribute keywords, with the
Radiopharmaceutical Information Sequence item flattened to the top level and the Philips
private tags under ``PhilipsPETPrivateGroup`` (the same shape as calculate-suv's JSON):

* ``Units`` BQML: ``weight_g / decayed_dose``; CNTS: Philips SUVScaleFactor (7053,1000), or
  ActivityConcentrationScaleFactor (7053,1009) times the BQML factor; GML: already SUV, 1.
* ``DecayCorrection`` START: dose decayed from injection to the scan time, which is the
  series date/time, or the earliest acquisition date/time of the series when the series
  time is later (post-processed series, Siemens), or GE's private scan date/time
  (0009,100D) when present; ADMIN: images are decay corrected to the injection, so the
  dose is not decayed; NONE: each frame is decayed to the time of its mean count rate
  inside the frame (acquisition start + frame-averaged decay time, as in MIRP).
* Injection: RadiopharmaceuticalStartDateTime, else RadiopharmaceuticalStartTime on the
  SeriesDate (one day earlier when that would fall after the scan: injection before midnight).

The factor applies to modality values (stored value x RescaleSlope + RescaleIntercept),
which is what SimpleITK returns. Patient names, IDs and birth dates are never read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.valuerep import DA, DT, TM

from deepradiomics.errors import UserError

_SEQ = "in RadiopharmaceuticalInformationSequence (0054,0016)"
# keyword -> tag, for messages that name the attribute a user must look for
TAGS = {
    "Units": "(0054,1001)",
    "DecayCorrection": "(0054,1102)",
    "CorrectedImage": "(0028,0051)",
    "SUVType": "(0054,1006)",
    "PatientWeight": "(0010,1030)",
    "SeriesDate": "(0008,0021)",
    "SeriesTime": "(0008,0031)",
    "AcquisitionDate": "(0008,0022)",
    "AcquisitionTime": "(0008,0032)",
    "ActualFrameDuration": "(0018,1242)",
    "FrameReferenceTime": "(0054,1300)",
    "RadionuclideTotalDose": f"(0018,1074) {_SEQ}",
    "RadionuclideHalfLife": f"(0018,1075) {_SEQ}",
    "RadiopharmaceuticalStartTime": f"(0018,1072) {_SEQ}",
    "RadiopharmaceuticalStartDateTime": f"(0018,1078) {_SEQ}",
    "SUVScaleFactor": "(7053,1000) Philips PET Private Group",
    "ActivityConcentrationScaleFactor": "(7053,1009) Philips PET Private Group",
    "GEPrivatePostInjectionDateTime": "(0009,100D) GEMS_PETD_01",
}
_SERIES_KEYS = (
    "SeriesDate",
    "SeriesTime",
    "AcquisitionDate",
    "AcquisitionTime",
    "PatientWeight",
    "Units",
    "DecayCorrection",
    "CorrectedImage",
    "SUVType",
    "ActualFrameDuration",
    "FrameReferenceTime",
)
_RADIOPHARM_KEYS = (
    "RadionuclideTotalDose",
    "RadionuclideHalfLife",
    "RadiopharmaceuticalStartTime",
    "RadiopharmaceuticalStartDateTime",
)
_PHILIPS_CREATOR = "Philips PET Private Group"
_GE_CREATOR = "GEMS_PETD_01"


def suv_bw_factor(meta: Mapping[str, Any], source: str = "PET metadata") -> float:
    """Body-weight SUV factor of one instance (a one-instance series)."""
    return suv_bw_factors([meta], source)[0]


def suv_bw_factors(
    instances: Sequence[Mapping[str, Any]], source: str = "PET metadata"
) -> list[float]:
    """Body-weight SUV factor of every instance of one PET series, in the given order.

    ``source`` (a file or folder name) starts every error message. Raises ``UserError``
    naming the DICOM attribute when a required one is missing or unusable.
    """
    if not instances:
        raise UserError(f"{source}: no PET instances to compute an SUV factor from")
    first = instances[0]
    units = _text(first, "Units", source).upper()
    for key in ("Units", "DecayCorrection"):
        values = {str(m.get(key, "")).strip().upper() for m in instances}
        if len(values) > 1:
            raise UserError(
                f"{source}: {key} {TAGS[key]} differs between instances ({sorted(values)});"
                " give one PET series per folder"
            )
    if units == "GML":
        suv_type = str(first.get("SUVType") or "BW").strip().upper()
        if suv_type != "BW":
            raise UserError(
                f"{source}: Units GML with SUVType {TAGS['SUVType']} {suv_type}: values are "
                "SUV normalised by something else than body weight; body-weight SUV expected"
            )
        return [1.0] * len(instances)
    if units not in ("BQML", "CNTS"):
        raise UserError(
            f"{source}: PET Units {TAGS['Units']} is {units!r}; "
            "SUV needs BQML, CNTS (Philips) or GML"
        )
    decay = _text(first, "DecayCorrection", source).upper()
    if decay not in ("START", "ADMIN", "NONE"):
        raise UserError(
            f"{source}: DecayCorrection {TAGS['DecayCorrection']} is {decay!r}; "
            "expected START, ADMIN or NONE"
        )
    _check_corrections(first, decay, source)

    if units == "BQML":
        return _bqml_factors(instances, decay, source)
    return _cnts_factors(instances, decay, source)


def _cnts_factors(instances: Sequence[Mapping[str, Any]], decay: str, source: str) -> list[float]:
    """Philips counts: the private SUV scale factor, else activity scale x the BQML factor."""
    factors: list[float] = []
    bqml: list[float] | None = None
    for index, meta in enumerate(instances):
        philips = meta.get("PhilipsPETPrivateGroup") or {}
        suv_scale = _optional_float(philips.get("SUVScaleFactor"), "SUVScaleFactor", source)
        activity_scale = _optional_float(
            philips.get("ActivityConcentrationScaleFactor"),
            "ActivityConcentrationScaleFactor",
            source,
        )
        if suv_scale:
            factors.append(suv_scale)
        elif activity_scale:
            bqml = bqml if bqml is not None else _bqml_factors(instances, decay, source)
            factors.append(activity_scale * bqml[index])
        else:
            raise _no_philips_factor(source)
    return factors


def _no_philips_factor(source: str) -> UserError:
    return UserError(
        f"{source}: PET Units CNTS need the Philips private SUVScaleFactor {TAGS['SUVScaleFactor']}"
        f" or ActivityConcentrationScaleFactor {TAGS['ActivityConcentrationScaleFactor']};"
        " both are missing or zero"
    )


def _bqml_factors(instances: Sequence[Mapping[str, Any]], decay: str, source: str) -> list[float]:
    if decay == "ADMIN":  # images decay corrected to the injection: the full dose counts
        return [
            _weight_g(m, source) / _positive(m, "RadionuclideTotalDose", source) for m in instances
        ]
    injection = _injection_datetime(instances[0], source)
    if decay == "START":
        scan = _scan_datetime(instances, source)
        return [_decayed_factor(m, injection, scan, 0.0, source) for m in instances]
    # NONE: each frame holds its own, undecayed counts: decay to the frame's mean-count time
    factors = []
    for m in instances:
        half_life = _positive(m, "RadionuclideHalfLife", source)
        frame_s = _positive(m, "ActualFrameDuration", source) / 1000.0
        lam = math.log(2.0) / half_life
        mean_count_s = math.log(lam * frame_s / -math.expm1(-lam * frame_s)) / lam
        start = _datetime(m, "AcquisitionDate", "AcquisitionTime", source)
        factors.append(_decayed_factor(m, injection, start, mean_count_s, source))
    return factors


def _decayed_factor(
    meta: Mapping[str, Any],
    injection: tuple[datetime, bool],
    scan: datetime,
    extra_s: float,
    source: str,
) -> float:
    start, date_assumed = injection
    if date_assumed and start > scan:  # injection time taken on the series date but before midnight
        start -= timedelta(days=1)
    decay_s = (scan - start).total_seconds() + extra_s
    if decay_s < 0:
        raise UserError(
            f"{source}: injection time {start:%Y-%m-%d %H:%M:%S} is after the scan time "
            f"{scan:%Y-%m-%d %H:%M:%S}; check RadiopharmaceuticalStart(Date)Time and SeriesTime"
        )
    dose = _positive(meta, "RadionuclideTotalDose", source)
    half_life = _positive(meta, "RadionuclideHalfLife", source)
    return _weight_g(meta, source) / (dose * 2.0 ** (-decay_s / half_life))


def _scan_datetime(instances: Sequence[Mapping[str, Any]], source: str) -> datetime:
    series = _datetime(instances[0], "SeriesDate", "SeriesTime", source)
    acquisitions = [
        _datetime(
            m,
            "AcquisitionDate" if m.get("AcquisitionDate") else "SeriesDate",
            "AcquisitionTime",
            source,
        )
        for m in instances
        if m.get("AcquisitionTime")
    ]
    earliest = min(acquisitions, default=series)
    if series <= earliest:
        return series
    # Series date/time rewritten after the scan (post-processing, Siemens): QIBA falls back to
    # GE's private scan time, else to the earliest acquisition of the series.
    ge_scan = instances[0].get("GEPrivatePostInjectionDateTime")
    if ge_scan:
        return _parse_dt(ge_scan, "GEPrivatePostInjectionDateTime", source)
    return earliest


def _injection_datetime(meta: Mapping[str, Any], source: str) -> tuple[datetime, bool]:
    """Injection date/time and whether its date was assumed (taken from SeriesDate)."""
    if meta.get("RadiopharmaceuticalStartDateTime"):
        return _parse_dt(
            meta["RadiopharmaceuticalStartDateTime"], "RadiopharmaceuticalStartDateTime", source
        ), False
    if not meta.get("RadiopharmaceuticalStartTime"):
        raise UserError(
            f"{source}: PET SUV needs the injection time: RadiopharmaceuticalStartDateTime "
            f"{TAGS['RadiopharmaceuticalStartDateTime']} or RadiopharmaceuticalStartTime "
            f"{TAGS['RadiopharmaceuticalStartTime']}; both are missing"
        )
    return _datetime(meta, "SeriesDate", "RadiopharmaceuticalStartTime", source), True


def _check_corrections(meta: Mapping[str, Any], decay: str, source: str) -> None:
    corrected = meta.get("CorrectedImage")
    if not corrected:  # Type 2: may be empty; nothing to check against
        return
    flags = (
        {corrected.strip().upper()}
        if isinstance(corrected, str)
        else {str(c).strip().upper() for c in corrected}
    )
    if "ATTN" not in flags:
        raise UserError(
            f"{source}: CorrectedImage {TAGS['CorrectedImage']} lacks ATTN: "
            "PET without attenuation correction has no meaningful SUV"
        )
    if decay != "NONE" and "DECY" not in flags:
        raise UserError(
            f"{source}: DecayCorrection is {decay} but CorrectedImage {TAGS['CorrectedImage']} "
            "lacks DECY; the decay correction of these images is unclear"
        )


def _missing(key: str, source: str) -> UserError:
    return UserError(
        f"{source}: PET SUV needs DICOM attribute {key} {TAGS.get(key, '')}".rstrip()
        + "; it is missing or empty"
    )


def _text(meta: Mapping[str, Any], key: str, source: str) -> str:
    value = meta.get(key)
    if value is None or not str(value).strip():
        raise _missing(key, source)
    return str(value).strip()


def _optional_float(value: Any, key: str, source: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError(
            f"{source}: {key} {TAGS.get(key, '')} is not a number ({value!r})"
        ) from None
    if not math.isfinite(number):
        raise UserError(f"{source}: {key} {TAGS.get(key, '')} is not finite ({value!r})")
    return number


def _positive(meta: Mapping[str, Any], key: str, source: str) -> float:
    number = _optional_float(meta.get(key), key, source)
    if number is None:
        raise _missing(key, source)
    if number <= 0:
        raise UserError(f"{source}: {key} {TAGS.get(key, '')} must be positive (got {number})")
    return number


def _weight_g(meta: Mapping[str, Any], source: str) -> float:
    return _positive(meta, "PatientWeight", source) * 1000.0  # DICOM weight is in kg


def _clean_time(value: Any) -> str:
    """Tolerate the legacy ``HH:MM:SS`` form and more than 6 fraction digits."""
    text = str(value).strip().replace(":", "")
    whole, dot, frac = text.partition(".")
    return whole + dot + frac[:6] if dot else whole


def _datetime(meta: Mapping[str, Any], date_key: str, time_key: str, source: str) -> datetime:
    date_text, time_text = _text(meta, date_key, source), _text(meta, time_key, source)
    try:
        return datetime.combine(DA(date_text.replace(".", "")), TM(_clean_time(time_text)))
    except (TypeError, ValueError):
        raise UserError(
            f"{source}: cannot read {date_key}/{time_key} {TAGS[date_key]}/{TAGS[time_key]} "
            f"as a DICOM date and time ({date_text!r}, {time_text!r})"
        ) from None


def _parse_dt(value: Any, key: str, source: str) -> datetime:
    text = str(value).strip()
    date_part, sign, zone = text[:8], "", ""
    rest = text[8:]
    for s in "+-":
        if s in rest:
            rest, sign, zone = rest.partition(s)
    try:
        parsed = DT(date_part + _clean_time(rest) + sign + zone)
    except (TypeError, ValueError):
        raise UserError(
            f"{source}: cannot read {key} {TAGS.get(key, '')} as a DICOM date-time ({text!r})"
        ) from None
    return parsed.replace(tzinfo=None)  # every time of one exam is local to the scanner


def suv_metadata(ds: Dataset) -> dict[str, Any]:
    """The SUV-relevant attributes of one pydicom dataset, in the mapping shape above.

    Reads only scan, dose and weight attributes (never names, IDs or birth dates); absent
    or empty attributes are left out.
    """
    meta: dict[str, Any] = {}
    for key in _SERIES_KEYS:
        value = ds.get(key)
        if value is not None and value != "":
            meta[key] = (
                list(value) if key == "CorrectedImage" and not isinstance(value, str) else value
            )
    radiopharm = ds.get("RadiopharmaceuticalInformationSequence")
    if radiopharm:
        item = radiopharm[0]
        for key in _RADIOPHARM_KEYS:
            value = item.get(key)
            if value is not None and value != "":
                meta[key] = value
    philips = {}
    for key, offset in (("SUVScaleFactor", 0x00), ("ActivityConcentrationScaleFactor", 0x09)):
        value = _private_value(ds, 0x7053, _PHILIPS_CREATOR, offset)
        if value is not None:
            philips[key] = value
    meta["PhilipsPETPrivateGroup"] = philips
    ge_scan = _private_value(ds, 0x0009, _GE_CREATOR, 0x0D)
    if ge_scan:
        meta["GEPrivatePostInjectionDateTime"] = str(ge_scan)
    return meta


def _private_value(ds: Dataset, group: int, creator: str, offset: int) -> Any:
    """A private attribute by creator name; falls back to the usual ``gggg,10xx`` slot when the
    creator element was stripped (some anonymisers do that)."""
    try:
        element = ds.private_block(group, creator)[offset]
    except KeyError:
        tag = (group << 16) | 0x1000 | offset
        if tag not in ds:
            return None
        element = ds[tag]
    value = element.value
    if isinstance(value, bytes):  # unknown private VR read as UN
        value = value.decode("ascii", errors="replace").strip("\x00 ")
    return value if value not in (None, "") else None


def read_suv_metadata(files: Sequence[str | Path]) -> list[dict[str, Any]]:
    """SUV metadata of each DICOM file (headers only, pixels are not read)."""
    metas = []
    for f in files:
        try:
            ds = pydicom.dcmread(str(f), stop_before_pixels=True)
        except Exception as err:  # pydicom raises several types for broken files
            raise UserError(f"{f}: cannot read DICOM header ({type(err).__name__})") from None
        metas.append(suv_metadata(ds))
    return metas


def dicom_suv_factors(files: Sequence[str | Path], source: str | Path | None = None) -> np.ndarray:
    """Per-file SUVbw factors of one PET DICOM series (``files`` in slice order)."""
    where = (
        str(source) if source is not None else str(Path(files[0]).parent) if files else "PET series"
    )
    return np.asarray(suv_bw_factors(read_suv_metadata(files), where), dtype=np.float64)
