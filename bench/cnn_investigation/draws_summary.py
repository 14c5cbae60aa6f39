"""The demo's CNN against the classical baseline over several draws of the generator.

    PYTHONPATH=src python bench/cnn_investigation/draws_summary.py RUN [RUN ...]

Each RUN is a whole ``deepradiomics demo --cohort-seed N --out RUN`` folder (classical
baseline and learning curve on). Prints one row per run (oracle, CNN and classical AUC, their
paired difference with its patient-bootstrap CI and DeLong p, the CNN's r with the spatial part
of the true risk), then over the runs: how often the CNN is ahead, the mean difference with a
t-interval across draws, and the learning curve's CNN - classical at each training size
(mean of its repeats per draw, then over draws).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import stats

from deepradiomics.report.tables import learning_curve_summary


def ci(d: dict, digits: int = 3) -> str:
    return f"{d['value']:.{digits}f} [{d['ci_low']:.{digits}f}, {d['ci_high']:.{digits}f}]"


def pooled_auc_comparison(m: dict, a: str, b: str) -> dict:
    return next(
        c
        for c in m["comparisons"]
        if (c["a"], c["b"], c["metric"], c["scope"]) == (a, b, "auc", "pooled")
    )


def curve_gaps(m: dict) -> dict[float, float]:
    """Per training fraction: CNN - classical mean test AUC over the repeats."""
    mean = learning_curve_summary(m["learning_curve"]).mean
    return (mean["cnn"] - mean["classical"]).dropna().to_dict()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="+")
    args = ap.parse_args()
    diffs, curves = [], []
    print(
        "| run | oracle | CNN AUC | classical | CNN - classical (DeLong p) | CNN r spatial |"
        "\n|---|---|---|---|---|---|"
    )
    for run in args.runs:
        m = json.loads((run / "metrics.json").read_text())
        c = pooled_auc_comparison(m, "cnn", "classical")
        diffs.append(c["difference"])
        curves.append(curve_gaps(m))
        print(
            f"| {run.name} | {m['truth']['oracle']['auc']['value']:.3f} "
            f"| {ci(m['models']['cnn']['test']['auc'])} "
            f"| {m['models']['classical']['test']['auc']['value']:.3f} "
            f"| {c['difference']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}] "
            f"({c['delong_p']:.3f}) "
            f"| {ci(m['truth']['models']['cnn']['components']['spatial'], 2)} |"
        )
    d = np.asarray(diffs)
    ahead = int((d > 0).sum())
    print(f"\nCNN ahead on {ahead} of {len(d)} runs; mean CNN - classical {d.mean():+.3f}", end="")
    if len(d) > 1:
        half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
        sign_p = stats.binomtest(ahead, len(d)).pvalue
        print(
            f" (SD {d.std(ddof=1):.3f}; 95 % t-interval over runs "
            f"[{d.mean() - half:+.3f}, {d.mean() + half:+.3f}]; sign test p {sign_p:.3f})"
        )
    else:
        print()
    fractions = sorted(set().union(*curves))
    print("\nlearning curve, CNN - classical test AUC (mean of repeats), per run and mean:")
    print("| fraction | " + " | ".join(r.name for r in args.runs) + " | mean | classical ahead |")
    print("|---" * (len(args.runs) + 3) + "|")
    for f in fractions:
        g = [c.get(f, np.nan) for c in curves]
        print(
            f"| {f:.0%} | "
            + " | ".join(f"{x:+.3f}" for x in g)
            + f" | {np.nanmean(g):+.3f} | {int(np.sum(np.asarray(g) < 0))} of {len(g)} |"
        )


if __name__ == "__main__":
    main()
