"""CNN vs classical radiomics (with and without ComBat) on the real soft-tissue-sarcoma FDG-PET.

    .venv/bin/python bench/sarcoma/run_sarcoma.py --out runs/sarcoma \
        --splits kfold loso --seeds 0 1 2

Data: ``../shared/data/ibsi_sts_validation`` (IBSI re-export of TCIA Soft-tissue-Sarcoma;
see its PROVENANCE.md): PET in SUVbw and the GTV mask for 51 patients, the DICOM header
summary (MR scanner vendor, sex, age) and a THIRD-PARTY, unverified histology label.

What it does, all under ``--out`` (never inside the repo's tracked tree):

1. ``cohort.csv``: case_id, patient_id, pet, mask (absolute paths into the shared data),
   site = MR scanner vendor (GE / Philips / Siemens), label (1 = the ``--target`` histology,
   0 = the rest), histology (3 classes), age (years, from ``059Y``), sex. The two patients
   whose MR header names "Varian Medical Systems / ARIA RadOnc" (an oncology record system,
   not an MR scanner, so their MR vendor is unknown) are left out unless ``--keep-unknown-vendor``
   (then their site is ``unknown``).
2. one experiment YAML per (split, seed): ``<split>_seed<k>.yaml``.
3. ``deepradiomics run`` on each (through the library: ``run_experiment(load_config(yaml), out)``;
   the equivalent command is ``deepradiomics run <split>_seed<k>.yaml --out <split>_seed<k>``),
   resumable: rerunning reuses finished folds.
4. ``summary.json`` and ``summary.md``: pooled AUC with CI per model, paired comparisons
   (bootstrap difference, DeLong), per-site AUCs, timing; plus a single-feature reference
   (SUVmax in the mask, fixed direction "lower SUV -> liposarcoma") from the classical features.

The CNN and the baseline are image-only (no clinical covariates), so the side-by-side
compares images with images. Heavy imports stay inside functions.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = (REPO.parent / "shared" / "data" / "ibsi_sts_validation").resolve()
VENDORS = {"GE MEDICAL SYSTEMS": "GE", "Philips Medical Systems": "Philips", "SIEMENS": "Siemens"}
TARGETS = ("liposarcoma", "leiomyosarcoma", "multiclass")
MODELS = ("cnn", "classical", "classical_combat")


def mr_vendor(manufacturer: str) -> str:
    """'SIEMENS / MIM Software' -> 'Siemens'; anything not an MR vendor -> 'unknown'."""
    head = manufacturer.split("/")[0].strip()
    return VENDORS.get(head, "unknown")


def age_years(value: str) -> float:
    """DICOM age string '059Y' -> 59.0 (other units -> NaN)."""
    m = re.fullmatch(r"(\d{3})Y", str(value).strip())
    return float(m.group(1)) if m else float("nan")


def build_cohort(data_dir: Path, target: str, keep_unknown_vendor: bool = False) -> pd.DataFrame:
    """One row per patient (PET + GTV mask), site = MR vendor, binary or 3-class label."""
    header = pd.read_csv(data_dir / "sts_dicom_header_summary.csv", dtype=str)
    labels = pd.read_csv(data_dir / "labels_histology_3class_thirdparty.csv", dtype=str)
    labels = labels.rename(columns={"Patient ID": "patient_id", "Histological type": "histology"})
    table = header.merge(labels, on="patient_id", how="inner", validate="one_to_one")
    rows = []
    for r in table.itertuples():
        folder = data_dir / "nifti" / r.patient_id
        rows.append(
            {
                "case_id": r.patient_id,
                "patient_id": r.patient_id,
                "pet": str(folder / "PET_image.nii.gz"),
                "mask": str(folder / "PET_mask.nii.gz"),
                "site": mr_vendor(r.mr_manufacturer),
                "label": r.histology if target == "multiclass" else int(r.histology == target),
                "histology": r.histology,
                "age": age_years(r.age),
                "sex": r.sex,
            }
        )
    cohort = pd.DataFrame(rows)
    if not keep_unknown_vendor:
        cohort = cohort[cohort["site"] != "unknown"].reset_index(drop=True)
    return cohort


def experiment(
    cohort_csv: Path, target: str, split: str, seed: int, args: argparse.Namespace, cache_dir: Path
) -> dict[str, Any]:
    """The experiment config (as a YAML-ready mapping) for one split and seed."""
    task = "multiclass" if target == "multiclass" else "binary"
    recipe = {
        "small3d": {
            "mask_channel": False,
            "kwargs": {"widths": list(args.widths), "convs_per_stage": 1},
            "dropout": 0.3,
            "augment": {"flip": True, "rotate90": True, "rotate_deg": 15, "scale": [0.9, 1.1]},
        },
        "lesion_texture": {  # the demo's model and augmentation, its kwargs left at defaults
            "mask_channel": True,
            "kwargs": {},
            "dropout": 0.2,
            "augment": {"rotate_deg": 0, "scale": [1, 1], "affine_p": 0.0},
        },
    }[args.model]
    return {
        "name": f"sts-pet-{target}-{split}-seed{seed}",
        "seed": seed,
        "cohort": {
            "path": str(cohort_csv),
            "task": task,
            "target": "label",
            "site": "site",
            "modalities": {"pet": {"column": "pet", "kind": "pet", "suv_max": args.suv_max}},
            "subgroups": ["sex"],
        },
        "preprocess": {
            "spacing": list(args.spacing),
            "crop_mm": list(args.crop_mm),
            "cache_dir": str(cache_dir),
            "mask_channel": recipe["mask_channel"],
            "workers": args.workers,
        },
        "model": {
            "name": args.model,
            "kwargs": recipe["kwargs"],
            "dropout": recipe["dropout"],
            "site_adversary": args.site_adversary,
        },
        "augment": recipe["augment"],
        "train": {
            "epochs": args.epochs,
            "batch_size": 8,
            "lr": 3e-3,
            "patience": args.patience,
            "warmup_epochs": 2,
            "class_weight": "balanced",
            "tta": True,
            "monitor": args.monitor,
        },
        "evaluate": {
            "split": split,
            "folds": args.folds,
            "ensemble_members": args.members,
            "bootstrap": args.bootstrap,
            "classical": True,
            "combat": True,
            "learning_curve": {"enabled": False},
        },
    }


def suvmax_reference(run_dir: Path, cohort: pd.DataFrame, n_boot: int, seed: int) -> dict | None:
    """AUC of -SUVmax (in the resampled mask) for label 1, with a patient-bootstrap CI.

    Not fitted on anything (the direction is fixed before looking: lipomatous tumours take up
    little FDG), so it needs no cross-validation; it anchors what the images can give."""
    import numpy as np

    from deepradiomics.evaluate.panel import metric_panel

    path = run_dir / "classical" / "features.csv"
    if not path.is_file():
        return None
    feats = pd.read_csv(path, index_col=0)
    col = "pet__original_firstorder_Maximum"
    if col not in feats.columns:
        return None
    y = cohort.set_index("case_id").loc[feats.index, "label"].astype(int).to_numpy()
    score = -feats[col].to_numpy(dtype=float)
    auc = metric_panel("binary", y, score, n_boot=n_boot, seed=seed)["auc"]
    return {
        "feature": col,
        "direction": "lower -> positive",
        "auc": dict(auc),
        "suvmax_median_pos": float(np.median(-score[y == 1])),
        "suvmax_median_neg": float(np.median(-score[y == 0])),
    }


def summarise(metrics: dict[str, Any], primary: str) -> dict[str, Any]:
    """The numbers results.md needs from one run's metrics.json."""
    audit = metrics.get("audit") or {}
    out: dict[str, Any] = {
        "models": {},
        "comparisons": [],
        "timing": metrics.get("timing"),
        "audit": {
            "site_probe": {
                rep: {k: p.get(k) for k in ("auc", "balanced_accuracy", "chance", "p_permutation")}
                for rep, p in (audit.get("site_probe") or {}).items()
            },
            "site_only": audit.get("site_only"),
            "verdict": audit.get("verdict"),
        },
    }
    for name, m in metrics["models"].items():
        out["models"][name] = {
            "pooled": m["test"].get(primary),
            "per_site": {s: p.get(primary) for s, p in m["per_site"].items()},
            "per_fold": [f.get(primary) for f in m["per_fold"]],
            "sensitivity": m["test"].get("sensitivity"),
            "specificity": m["test"].get("specificity"),
        }
    for c in metrics.get("comparisons", []):
        out["comparisons"].append(
            {
                k: c[k]
                for k in (
                    "a",
                    "b",
                    "scope",
                    "value_a",
                    "value_b",
                    "difference",
                    "ci_low",
                    "ci_high",
                    "p_value",
                    "delong_p",
                )
            }
        )
    return out


def _fmt(v: dict | None) -> str:
    if not v or v.get("value") is None:
        return "n/a"
    return f"{v['value']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]"


def _num(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def write_summary(out: Path, cohort: pd.DataFrame, results: dict[str, Any], primary: str) -> None:
    (out / "summary.json").write_text(json.dumps(results, indent=1, default=str))
    counts = pd.crosstab(cohort["site"], cohort["histology"], margins=True)
    lines = [
        "# summary (generated by bench/sarcoma/run_sarcoma.py)",
        "",
        "## cohort",
        "",
        "| site | " + " | ".join(counts.columns) + " |",
        "|---|" + "---|" * counts.shape[1],
    ]
    lines += [f"| {s} | " + " | ".join(str(v) for v in row) + " |" for s, row in counts.iterrows()]
    lines += [
        "",
        f"## pooled {primary} with CI",
        "",
        "| run | " + " | ".join(MODELS) + " | train s | total s |",
        "|---|" + "---|" * (len(MODELS) + 2),
    ]
    for run, r in results["runs"].items():
        cells = [_fmt(r["models"].get(m, {}).get("pooled")) for m in MODELS]
        t = r.get("timing") or {}
        lines.append(
            f"| {run} | "
            + " | ".join(cells)
            + f" | {t.get('train_seconds', '')} | {t.get('total_seconds', '')} |"
        )
    lines += [
        "",
        f"## repeats: pooled {primary} over seeds (mean, min-max; seeds differ in "
        "splits for kfold, in validation carve-out and initialisation for both)",
        "",
        "| split | seeds | " + " | ".join(MODELS) + " |",
        "|---|---|" + "---|" * len(MODELS),
    ]
    for split in ("kfold", "loso"):
        runs = [r for name, r in sorted(results["runs"].items()) if name.startswith(f"{split}_")]
        if not runs:
            continue
        cells = []
        for m in MODELS:
            vals = [r["models"][m]["pooled"]["value"] for r in runs if m in r["models"]]
            cells.append(
                f"{sum(vals) / len(vals):.3f} ({min(vals):.3f}-{max(vals):.3f})" if vals else "n/a"
            )
        lines.append(f"| {split} | {len(runs)} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## paired comparisons (pooled)",
        "",
        "| run | a vs b | a | b | a - b [CI] | bootstrap p | DeLong p |",
        "|---|---|---|---|---|---|---|",
    ]
    for run, r in results["runs"].items():
        for c in r["comparisons"]:
            if c["scope"] != "pooled":
                continue
            lines.append(
                f"| {run} | {c['a']} vs {c['b']} | {_num(c['value_a'])} | "
                f"{_num(c['value_b'])} | {_num(c['difference'])} "
                f"[{_num(c['ci_low'])}, {_num(c['ci_high'])}] | {_num(c['p_value'])} | "
                f"{_num(c['delong_p'])} |"
            )
    lines += ["", f"## per-site {primary} (point [CI])", ""]
    for run, r in results["runs"].items():
        sites = sorted({s for m in r["models"].values() for s in m["per_site"]})
        lines += [
            f"**{run}**",
            "",
            "| model | " + " | ".join(sites) + " |",
            "|---|" + "---|" * len(sites),
        ]
        for m in MODELS:
            if m in r["models"]:
                lines.append(
                    f"| {m} | "
                    + " | ".join(_fmt(r["models"][m]["per_site"].get(s)) for s in sites)
                    + " |"
                )
        lines.append("")
    lines += [
        "## site audit (MR vendor as site; metrics.json audit)",
        "",
        "| run | probe cnn AUC | probe classical AUC | probe intensity AUC | chance | "
        "p (cnn / classical / intensity) | site-only outcome AUC |",
        "|---|---|---|---|---|---|---|",
    ]
    for run, r in results["runs"].items():
        a = r.get("audit") or {}
        probes = a.get("site_probe") or {}
        reps = ("cnn", "classical", "intensity")
        chance = next((p["chance"]["auc"] for p in probes.values() if p.get("chance")), None)
        site_only = (a.get("site_only") or {}).get("auc")
        lines.append(
            f"| {run} | "
            + " | ".join(_fmt((probes.get(k) or {}).get("auc")) for k in reps)
            + f" | {_num(chance)} | "
            + " / ".join(_num((probes.get(k) or {}).get("p_permutation")) for k in reps)
            + f" | {_fmt(site_only)} |"
        )
    lines.append("")
    for run, r in results["runs"].items():
        if (r.get("audit") or {}).get("verdict"):
            lines += [f"- **{run}**: {r['audit']['verdict']}"]
    lines.append("")
    if results.get("suvmax_reference"):
        lines += [
            "## single-feature reference",
            "",
            "```",
            json.dumps(results["suvmax_reference"], indent=1),
            "```",
        ]
    (out / "summary.md").write_text("\n".join(lines) + "\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--out",
        type=Path,
        default=Path("/tmp/sarcoma_runs"),
        help="output folder (cohort.csv, YAMLs, runs); default /tmp/sarcoma_runs",
    )
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="ibsi_sts_validation folder")
    p.add_argument(
        "--target",
        choices=TARGETS,
        default="liposarcoma",
        help="positive class vs the rest, or the 3-class task (default liposarcoma)",
    )
    p.add_argument("--splits", nargs="+", choices=("kfold", "loso"), default=["kfold", "loso"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument(
        "--keep-unknown-vendor",
        action="store_true",
        help="keep the 2 patients whose MR vendor is unknown (site 'unknown')",
    )
    p.add_argument("--spacing", nargs=3, type=float, default=[4.0, 4.0, 4.0], help="z y x mm")
    p.add_argument("--crop-mm", nargs=3, type=float, default=[224.0, 192.0, 192.0], help="z y x mm")
    p.add_argument(
        "--suv-max",
        type=float,
        default=30.0,
        help="SUV clip (default 30: above every SUVmax in the cohort, 29.99)",
    )
    p.add_argument(
        "--model",
        choices=("small3d", "lesion_texture"),
        default="small3d",
        help="small3d (default) or the demo's lesion_texture with the mask as an input "
        "channel and the demo's augmentation (runs are named *_lesion_texture)",
    )
    p.add_argument("--widths", nargs="+", type=int, default=[8, 16, 32, 64])
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--patience", type=int, default=15)
    p.add_argument(
        "--members",
        type=int,
        default=3,
        help="bootstrap CNN members per fold (out-of-bag early stopping; default 3)",
    )
    p.add_argument(
        "--monitor",
        choices=("loss", "score"),
        default="loss",
        help="early stopping / best epoch on the stopping cases' loss (default) or AUC",
    )
    p.add_argument(
        "--site-adversary",
        action="store_true",
        help="domain-adversarial CNN (model.site_adversary; runs are named *_adversarial)",
    )
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument(
        "--write-only", action="store_true", help="write cohort.csv and YAMLs, run nothing"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    cohort = build_cohort(args.data, args.target, args.keep_unknown_vendor)
    cohort_csv = out / "cohort.csv"
    cohort.to_csv(cohort_csv, index=False)
    print(pd.crosstab(cohort["site"], cohort["histology"], margins=True), flush=True)
    jobs = []
    for split in args.splits:
        for seed in args.seeds:
            name = (
                f"{split}_seed{seed}"
                + ("" if args.model == "small3d" else f"_{args.model}")
                + ("_adversarial" if args.site_adversary else "")
            )
            path = out / f"{name}.yaml"
            path.write_text(
                yaml.safe_dump(
                    experiment(cohort_csv, args.target, split, seed, args, out / "cache"),
                    sort_keys=False,
                )
            )
            jobs.append((name, path))
    if args.write_only:
        return 0

    from deepradiomics.config import load_config
    from deepradiomics.experiment.runner import run_experiment

    primary = "macro_auc" if args.target == "multiclass" else "auc"
    summary_path = out / "summary.json"
    results: dict[str, Any] = {
        "target": args.target,
        "args": vars(args) | {"out": str(out), "data": str(args.data)},
        "runs": {},
    }
    if summary_path.is_file():
        results["runs"] = json.loads(summary_path.read_text()).get("runs", {})
    for name, path in jobs:
        t0 = time.perf_counter()
        print(f"== {name}: deepradiomics run {path} --out {out / name}", flush=True)
        metrics = run_experiment(load_config(path), out / name)
        results["runs"][name] = summarise(metrics, primary) | {
            "wall_seconds": round(time.perf_counter() - t0, 1)
        }
        if args.target != "multiclass" and "suvmax_reference" not in results:
            ref = suvmax_reference(out / name, cohort, args.bootstrap, 0)
            if ref:
                results["suvmax_reference"] = ref
        write_summary(out, cohort, results, primary)
    print((out / "summary.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
