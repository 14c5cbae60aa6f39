"""Time ``deepradiomics explain`` on the demo cohort.

    deepradiomics demo --out /tmp/explain_demo            # the demo run (also explains 6 cases)
    python bench/explain_bench.py /tmp/explain_demo --cases 30 --out /tmp/explain_maps \
        [--method gradcam --method gradcampp] [--no-sanity]

Writes the first ``--cases`` rows of the run's cohort (``RUN/cohort/cohort.csv``, or
``--cohort``; image paths made absolute) to a CSV and runs ``explain`` on them (default:
Grad-CAM, Grad-CAM++ and occlusion, with the sanity check), then prints the time per method
(all members of the ensemble) and in total (incl. reading, preparing and the sanity check).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from deepradiomics.experiment.explain_cases import explain_cases


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("run")
    p.add_argument("--cases", type=int, default=30)
    p.add_argument("--cohort", help="cohort CSV (default RUN/cohort/cohort.csv)")
    p.add_argument("--out", required=True)
    p.add_argument("--method", action="append", help="default: gradcam, gradcampp, occlusion")
    p.add_argument("--no-sanity", action="store_true")
    args = p.parse_args()
    methods = tuple(args.method or ("gradcam", "gradcampp", "occlusion"))
    run, out = Path(args.run), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cohort = Path(args.cohort) if args.cohort else run / "cohort" / "cohort.csv"
    table = pd.read_csv(cohort, dtype=str, keep_default_na=False).head(args.cases)
    for col in ("ct", "pet", "mask"):
        table[col] = [str((cohort.parent / v).resolve()) for v in table[col]]
    csv = out / "cases.csv"
    table.to_csv(csv, index=False)
    start = time.perf_counter()
    result = explain_cases(run, csv, out / "maps", methods, sanity=not args.no_sanity)
    total = time.perf_counter() - start
    print(
        json.dumps(
            {
                "cases": len(result["cases"]),
                "members": result["members"],
                "seconds_per_method": result["seconds"],
                "total_seconds": round(total, 1),
                "sanity": {
                    m: {k: s[k] for k in ("final_spearman", "final_ssim", "passed")}
                    for m, s in result.get("sanity", {}).items()
                },
                "localisation": result["localisation"],
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
