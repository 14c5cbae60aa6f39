"""Cached crops of a synthetic cohort + its ground truth, for the phenotype probes.

    PYTHONPATH=src python bench/cnn_investigation/probe_data.py COHORT_DIR OUT.npz \
        --spacing 2 1 1 --crop 20 40 40

Writes images [N, C, D, H, W] (CT, PET), masks [N, D, H, W] and the ground-truth columns.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from deepradiomics.config import parse_config
from deepradiomics.dataset.load import load_cohort_arrays

COLUMNS = [
    "diameter_mm",
    "texture_anisotropy",
    "core_eccentricity",
    "core_offset_mm",
    "heterogeneity",
    "necrosis",
    "eta_visible",
    "eta_spatial",
    "eta_clinical",
    "eta_site",
    "risk",
    "label",
    "slice_thickness_mm",
    "age",
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("cohort", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--spacing", type=float, nargs=3, default=[2.0, 1.0, 1.0])
    ap.add_argument("--crop", type=float, nargs=3, default=[20.0, 40.0, 40.0])
    a = ap.parse_args()
    cfg = parse_config(
        {
            "cohort": {
                "path": str(a.cohort / "cohort.csv"),
                "task": "binary",
                "modalities": {
                    "ct": {"column": "ct", "kind": "ct", "window": "soft_tissue"},
                    "pet": {"column": "pet", "kind": "pet", "suv_max": 15},
                },
            },
            "preprocess": {"spacing": a.spacing, "crop_mm": a.crop, "workers": 1},
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        arrays = load_cohort_arrays(cfg, Path(tmp))
    truth = pd.read_csv(a.cohort / "ground_truth.csv", dtype={"case_id": str}).set_index("case_id")
    rows = truth.loc[list(arrays.data.case_ids)]
    np.savez_compressed(
        a.out,
        images=arrays.data.images.numpy(),
        masks=arrays.data.masks.numpy(),
        case_ids=np.array(arrays.data.case_ids),
        patient_ids=np.array(arrays.data.patient_ids),
        **{c: rows[c].to_numpy() for c in COLUMNS},
    )
    print(a.out, arrays.data.images.shape)


if __name__ == "__main__":
    main()
