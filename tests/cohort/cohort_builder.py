"""Small on-disk cohorts (8x8x8 volumes) for the validation tests, built in ``tmp_path``."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import SimpleITK as sitk

SIZE = 8
SPACING = (1.0, 1.0, 2.0)
COLUMNS = [
    "case_id",
    "patient_id",
    "site",
    "ct",
    "pet",
    "mask",
    "label",
    "time",
    "event",
    "age",
    "sex",
    "age_band",
]


def volume(
    array: np.ndarray, spacing=SPACING, origin=(0.0, 0.0, 0.0), direction=None
) -> sitk.Image:
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    if direction is not None:
        img.SetDirection(direction)
    return img


def ct_array(seed: int, shape=(SIZE, SIZE, SIZE)) -> np.ndarray:
    return np.random.default_rng(seed).integers(-100, 200, shape).astype(np.int16)


def pet_array(seed: int, shape=(SIZE, SIZE, SIZE)) -> np.ndarray:
    return np.random.default_rng(seed + 1000).random(shape).astype(np.float32) * 5


def mask_array(shape=(SIZE, SIZE, SIZE)) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    m[2:5, 2:6, 3:6] = 1
    return m


class Cohort:
    """Ten clean cases at two sites (5 each, both labels at each site), ct + pet + mask.

    Tests break one thing (``write``/``rows``) and then call ``save()``.
    """

    def __init__(self, root: Path, n: int = 10) -> None:
        self.root = root
        (root / "images").mkdir(parents=True, exist_ok=True)
        self.rows: list[dict[str, str]] = []
        for i in range(n):
            files = {
                "ct": volume(ct_array(i)),
                "pet": volume(pet_array(i)),
                "mask": volume(mask_array()),
            }
            row = {
                "case_id": f"C{i:03d}",
                "patient_id": f"P{i:03d}",
                "site": "AB"[i % 2],
                "label": str((i // 2) % 2),
                "time": str(10 + i),
                "event": str((i // 4) % 2),
                "age": str(50 + i),
                "sex": "FM"[i % 2],
                "age_band": "40-60",
            }
            for col, img in files.items():
                row[col] = self.write(f"images/c{i:03d}_{col}.nii.gz", img)
            self.rows.append({c: row[c] for c in COLUMNS})

    def write(self, rel: str, img: sitk.Image) -> str:
        sitk.WriteImage(img, str(self.root / rel), useCompression=True)
        return rel

    def replace(self, case: int, column: str, img: sitk.Image, name: str | None = None) -> str:
        """Write ``img`` as the file of ``column`` for case ``case``; returns the CSV cell."""
        rel = name or f"images/c{case:03d}_{column}_broken.nii.gz"
        self.rows[case][column] = self.write(rel, img)
        return rel

    def save(self, name: str = "cohort.csv") -> Path:
        path = self.root / name
        columns = list(self.rows[0]) if self.rows else COLUMNS
        with path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, columns)
            w.writeheader()
            w.writerows(self.rows)
        return path

    def config(self, text: str, name: str = "experiment.yaml") -> Path:
        path = self.root / name
        path.write_text(text)
        return path
