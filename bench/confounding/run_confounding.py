"""Confounding bench (issue 12): does the site audit see the scanner, and does
domain-adversarial training help at a new site?

Synthetic cohorts (``deepradiomics synth --confounding C``) at three confounding levels,
leave-one-site-out, a plain CNN vs the same CNN with the DANN site adversary. Per run: the
site-probe AUC on the CNN's embeddings of unseen cases (``metrics.audit.site_probe.cnn``),
the out-of-fold outcome AUC (``metrics.test.auc``), the site-only baseline and the AUC of the
generator's true risk on the same cases (the oracle), all with patient-bootstrap CIs.

    OMP_NUM_THREADS=1 python bench/confounding/run_confounding.py --root /tmp/conf \\
        --levels 0 0.5 1 --seeds 0 1 2

Cohorts and runs go under ``--root`` (reused when present: a rerun only adds what is
missing); one row per run is appended to ``bench/confounding/results.csv``.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from deepradiomics.cli import main as cli
from deepradiomics.evaluate.bootstrap import bootstrap_ci
from deepradiomics.evaluate.metrics import roc_auc_batch

HERE = Path(__file__).parent
COHORT = {"cases": 120, "sites": 3, "size": 48}
CONFIG = {
    "preprocess": {"spacing": [2.0, 2.0, 2.0], "crop_mm": [48, 48, 48], "workers": 1},
    "model": {"name": "small3d", "kwargs": {"widths": [8, 16, 32]}, "dropout": 0.2},
    "train": {
        "epochs": 12,
        "batch_size": 16,
        "lr": 0.003,
        "patience": 12,
        "monitor": "loss",
        "tta": False,
    },
    "evaluate": {
        "split": "loso",
        "bootstrap": 500,
        "classical": False,
        "combat": False,
        "audit": {"permutations": 200},
    },
}
FIELDS = [
    "level",
    "seed",
    "variant",
    "site_probe_auc",
    "site_probe_low",
    "site_probe_high",
    "site_probe_p",
    "outcome_auc",
    "outcome_low",
    "outcome_high",
    "site_only_auc",
    "site_only_low",
    "site_only_high",
    "oracle_auc",
    "oracle_low",
    "oracle_high",
    "train_seconds",
    "total_seconds",
]


def cohort(root: Path, level: float, seed: int) -> Path:
    out = root / f"cohort_c{level:g}_s{seed}"
    if not (out / "cohort.csv").is_file():
        cli(
            [
                "synth",
                str(out),
                "--cases",
                str(COHORT["cases"]),
                "--sites",
                str(COHORT["sites"]),
                "--seed",
                str(seed),
                "--confounding",
                str(level),
                "--size",
                str(COHORT["size"]),
                "--no-pet",
                "--workers",
                "1",
            ]
        )
    return out


def oracle_auc(run: Path, cohort_dir: Path, seed: int) -> dict:
    """AUC of the generator's true risk on the run's out-of-fold cases, patient bootstrap."""
    pred = pd.read_csv(run / "predictions.csv")
    truth = pd.read_csv(cohort_dir / "ground_truth.csv").set_index("case_id")
    y = pred["y_true"].to_numpy(dtype=float)
    risk = truth.loc[pred["case_id"], "risk"].to_numpy(dtype=float)
    est = bootstrap_ci(
        lambda i: float(roc_auc_batch(y[i], risk[i])[0]),
        len(y),
        groups=pred["patient_id"].to_numpy(),
        n_boot=500,
        seed=seed,
        batch_statistic=lambda w: roc_auc_batch(y, risk, w),
    )
    return est.to_dict()


def one_run(root: Path, level: float, seed: int, variant: str) -> dict:
    data = cohort(root, level, seed)
    name = f"c{level:g}_s{seed}_{variant}"
    cfg = json.loads(json.dumps(CONFIG))
    cfg.update(name=name, seed=seed, cohort={"path": str(data / "cohort.csv")})
    cfg["preprocess"]["cache_dir"] = str(data / "cache")  # shared by the plain and adversarial runs
    cfg["model"]["site_adversary"] = variant == "adversarial"
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run = root / name
    t0 = time.perf_counter()
    assert cli(["run", str(path), "--out", str(run)]) == 0
    m = json.loads((run / "metrics.json").read_text())
    probe, test = m["audit"]["site_probe"]["cnn"], m["test"]["auc"]
    only, oracle = m["audit"]["site_only"]["auc"], oracle_auc(run, data, seed)
    return {
        "level": level,
        "seed": seed,
        "variant": variant,
        "site_probe_auc": probe["auc"]["value"],
        "site_probe_low": probe["auc"]["ci_low"],
        "site_probe_high": probe["auc"]["ci_high"],
        "site_probe_p": probe["p_permutation"],
        "outcome_auc": test["value"],
        "outcome_low": test["ci_low"],
        "outcome_high": test["ci_high"],
        "site_only_auc": only["value"],
        "site_only_low": only["ci_low"],
        "site_only_high": only["ci_high"],
        "oracle_auc": oracle["value"],
        "oracle_low": oracle["ci_low"],
        "oracle_high": oracle["ci_high"],
        "train_seconds": m["timing"]["train_seconds"],
        "total_seconds": round(time.perf_counter() - t0, 1),
    }


def summary(rows: pd.DataFrame) -> str:
    """Markdown: per level and variant, mean (min-max over seeds) of each headline number."""
    lines = [
        "| confounding | variant | seeds | site probe AUC (CNN) | outcome AUC (LOSO) | "
        "site-only AUC | oracle AUC |",
        "|---|---|---|---|---|---|---|",
    ]
    for (level, variant), g in rows.groupby(["level", "variant"], sort=True):
        cell = lambda c, g=g: f"{g[c].mean():.3f} ({g[c].min():.3f}-{g[c].max():.3f})"  # noqa: E731
        lines.append(
            f"| {level:g} | {variant} | {len(g)} | {cell('site_probe_auc')} | "
            f"{cell('outcome_auc')} | {cell('site_only_auc')} | {cell('oracle_auc')} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--levels", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--variants", nargs="+", default=["plain", "adversarial"])
    ap.add_argument("--results", type=Path, default=HERE / "results.csv")
    args = ap.parse_args()
    args.root.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        for level in args.levels:
            for variant in args.variants:
                row = one_run(args.root, level, seed, variant)
                new = not args.results.is_file()
                with args.results.open("a", newline="") as f:
                    w = csv.DictWriter(f, fieldnames=FIELDS)
                    if new:
                        w.writeheader()
                    w.writerow(
                        {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}
                    )
                print(json.dumps(row), flush=True)
    print(summary(pd.read_csv(args.results)))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
