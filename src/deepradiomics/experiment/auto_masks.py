"""``cohort.mask_from``: rows without a drawn mask are segmented by a segmentation bundle
before anything else, and the run then uses those automatic masks like drawn ones (the crop
around the lesion, the classical features, the mask channel).

The bundle (``RUN/bundle`` of a segmentation run on whole volumes) is applied as ``predict``
applies it (``inference.predict_cases``): each row's mask is written in the row's original
image geometry to ``RUN/auto_masks/`` and listed in ``RUN/auto_masks/auto_masks.csv``
(reused when the run is resumed). A row the bundle cannot prepare, or whose predicted mask
is empty, stays without a mask and goes on as it would have.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from deepradiomics.cohort.manifest import read_manifest
from deepradiomics.config import ExperimentConfig
from deepradiomics.files import atomic_write_text
from deepradiomics.inference import predict_cases

log = logging.getLogger(__name__)

FOLDER = "auto_masks"
RECORD = "auto_masks.csv"


def _reusable(record: Path, ids: list[str]) -> pd.DataFrame | None:
    """The record of an earlier (interrupted) run when it covers exactly ``ids``."""
    if not record.is_file():
        return None
    table = pd.read_csv(record, dtype={"case_id": str, "mask_file": str, "reason": str})
    if sorted(table["case_id"]) != sorted(ids):
        return None
    files = table.loc[table["status"] == "ok", "mask_file"]
    return table if all(Path(f).is_file() for f in files) else None


def segment_missing_masks(
    cfg: ExperimentConfig, run_dir: Path, progress: bool = True
) -> tuple[dict[str, Path], dict[str, Any] | None]:
    """(case id -> automatic mask file, summary for ``metrics.json["masks"]``); nothing
    without ``cohort.mask_from``."""
    bundle = cfg.cohort.mask_from
    if bundle is None or cfg.cohort.path is None:
        return {}, None
    manifest = read_manifest(cfg.cohort.path, cfg.cohort)
    column, id_column = manifest.columns.mask, manifest.columns.case_id
    table = manifest.table
    missing = table if column is None else table[table[column] == ""]
    ids = [str(c) for c in missing[id_column]]
    out = run_dir / FOLDER
    result = _reusable(out / RECORD, ids)
    if result is None and ids:
        predicted = predict_cases(
            bundle, missing, base_dir=manifest.root, masks_dir=out, progress=progress
        )
        for line in predicted.messages:
            log.warning("%s", line)
        result = predicted.table
        atomic_write_text(out / RECORD, result.to_csv(index=False))
    masks: dict[str, Path] = {}
    empty: list[str] = []
    failed: dict[str, str] = {}
    for row in (result if result is not None else pd.DataFrame()).itertuples():
        if row.status != "ok":
            failed[str(row.case_id)] = str(row.reason)
        elif float(row.volume_ml) <= 0:
            empty.append(str(row.case_id))
        else:
            masks[str(row.case_id)] = Path(row.mask_file)
    summary = {
        "bundle": str(bundle),
        "rows_without_mask": len(ids),
        "automatic": len(masks),
        "empty": empty,
        "failed": failed,
        "folder": FOLDER if ids else None,
    }
    return masks, summary
