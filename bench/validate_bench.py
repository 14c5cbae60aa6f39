"""Time ``validate_manifest`` on a cohort of 96^3 cases (CT int16, PET float32, mask uint8).

    .venv/bin/python bench/validate_bench.py --cases 300 --workers 1 2 4

Writes the cohort once into --dir (default: a temporary folder) and reuses it when present.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from deepradiomics.cohort.manifest import read_manifest
from deepradiomics.cohort.validate import validate_manifest

SIZE = 96


def _write_case(root: Path, i: int) -> dict[str, str]:
    rng = np.random.default_rng(i)
    zz, yy, xx = np.mgrid[:SIZE, :SIZE, :SIZE]
    ball = (zz - 48) ** 2 + (yy - 48) ** 2 + (xx - 48) ** 2 < (8 + i % 10) ** 2
    ct = (rng.normal(0, 20, (SIZE,) * 3) + 60 * ball).astype(np.int16)
    pet = (rng.gamma(2.0, 0.5, (SIZE,) * 3) + 4 * ball).astype(np.float32)
    row = {
        "case_id": f"B{i:04d}",
        "patient_id": f"P{i:04d}",
        "site": f"S{i % 4}",
        "label": str((i // 4) % 2),
    }
    for name, arr in (("ct", ct), ("pet", pet), ("mask", ball.astype(np.uint8))):
        img = sitk.GetImageFromArray(arr)
        img.SetSpacing((1.0, 1.0, 1.5))
        rel = f"images/{row['case_id']}_{name}.nii.gz"
        sitk.WriteImage(img, str(root / rel), useCompression=True)
        row[name] = rel
    return row


def build(root: Path, n: int) -> Path:
    csv_path = root / f"cohort_{n}.csv"
    if csv_path.exists():
        return csv_path
    (root / "images").mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(2) as pool:
        rows = list(pool.map(lambda i: _write_case(root, i), range(n)))
    with csv_path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return csv_path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--dir", type=Path)
    args = ap.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="validate_bench_"))
    t0 = time.perf_counter()
    csv_path = build(root, args.cases)
    print(
        f"cohort: {csv_path} ({args.cases} cases x 3 files of {SIZE}^3), built in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    manifest = read_manifest(csv_path)
    for workers in args.workers:
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            report = validate_manifest(manifest, workers=workers)
            times.append(time.perf_counter() - t)
        assert report.ok, report.summary()
        best = min(times)
        print(
            f"workers={workers}: best of {args.repeats} {best:.2f} s "
            f"({best / args.cases * 1e3:.1f} ms/case); {report.summary()}"
        )


if __name__ == "__main__":
    main()
