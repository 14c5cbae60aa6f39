"""One entry point, ``deepradiomics``, with subcommands, and their thin handlers.

Only argparse is imported at module level so ``--help`` is instant; each handler imports
the library function it calls when it runs, turns arguments into that call and prints the
result. A ``UserError`` becomes one line on stderr and its exit code (1, or 2 for usage),
never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path


def _int_at_least(minimum: int) -> Callable[[str], int]:
    """argparse ``type``: an integer >= ``minimum`` (else a one-line usage error)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


SEED, COUNT = _int_at_least(0), _int_at_least(1)


def _synth(args: argparse.Namespace) -> int:
    """``deepradiomics synth OUT --cases N --sites K --seed S --confounding C --size 96``."""
    import pandas as pd

    from deepradiomics.synth.generate import generate_cohort

    start = time.perf_counter()
    path = generate_cohort(
        args.out,
        cases=args.cases,
        sites=args.sites,
        seed=args.seed,
        confounding=args.confounding,
        size=args.size,
        pet=not args.no_pet,
        workers=args.workers,
        progress=sys.stderr.isatty(),
    )
    cohort = pd.read_csv(path)
    print(
        f"wrote {len(cohort)} cases ({cohort['patient_id'].nunique()} patients, "
        f"{cohort['site'].nunique()} sites, {cohort['label'].mean():.0%} label 1) to {path} "
        f"in {time.perf_counter() - start:.1f} s; true risk and phenotype in "
        f"{path.parent / 'ground_truth.csv'}"
    )
    return 0


def _validate(args: argparse.Namespace) -> int:
    """``deepradiomics validate``: one line per problem, a summary; exit 1 on errors."""
    from deepradiomics.cohort.manifest import read_manifest
    from deepradiomics.cohort.validate import cohort_config_for, validate_manifest

    cfg = cohort_config_for(args.cohort, args.config)
    report = validate_manifest(read_manifest(cfg.path, cfg), progress=True)
    for p in report.problems:
        print(p)
    print(report.summary())
    return 0 if report.ok else 1


def _preprocess(args: argparse.Namespace) -> int:
    """``deepradiomics preprocess SOURCE [--out DIR] [--workers N]``."""
    from deepradiomics.errors import UsageError
    from deepradiomics.preprocess.pipeline import (
        FINGERPRINT_FILE,
        INDEX_FILE,
        PLAN_FILE,
        config_for_source,
        describe_plan,
        prepare_experiment,
    )

    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1")
    cfg = config_for_source(Path(args.source))
    out = Path(args.out) if args.out else Path("preprocessed")
    start = time.perf_counter()
    prepared = prepare_experiment(cfg, out, workers=args.workers)
    total = len(prepared.keys) + len(prepared.failures)
    print(
        f"prepared {len(prepared.keys)}/{total} cases in {time.perf_counter() - start:.1f} s "
        f"({prepared.computed} computed, {prepared.reused} from the cache)"
    )
    for line in describe_plan(prepared.plan):
        print(f"  {line}")
    truncated = [cid for cid in prepared.case_ids if prepared.meta(cid).get("mask_truncated")]
    if truncated:
        print(
            f"  note: the mask reaches outside the crop in {len(truncated)} case(s) "
            "(set preprocess.crop_mm larger to keep whole masks)"
        )
    print(
        f"wrote {out / FINGERPRINT_FILE}, {out / PLAN_FILE}, {out / INDEX_FILE}; "
        f"cache {prepared.cache_dir}"
    )
    if prepared.failures:
        print(f"{len(prepared.failures)} case(s) failed:", file=sys.stderr)
        for f in prepared.failures:
            print(f"  {f}", file=sys.stderr)
        return 1
    return 0


def _train(args: argparse.Namespace) -> int:
    """``deepradiomics train CONFIG --out DIR [--resume] [--seed S]`` (also under torchrun)."""
    from deepradiomics.config import load_config
    from deepradiomics.train import distributed as dist
    from deepradiomics.train.holdout import train_to_folder

    cfg = load_config(args.config)
    if args.seed is not None:
        cfg.seed = args.seed
    out = Path(args.out)
    metrics = train_to_folder(cfg, out, resume=args.resume, validation_only=args.validation_only)
    if dist.is_main():
        part = "val" if args.validation_only else "test"
        shown = ", ".join(
            f"{k} {v['value']:.3f}" for k, v in list(metrics.get(part, {}).items())[:4]
        )
        print(f"{part}: {shown}\nwrote {out / 'metrics.json'}")
    return 0


def _run(args: argparse.Namespace) -> int:
    """``deepradiomics run CONFIG --out RUN``."""
    from deepradiomics.config import load_config
    from deepradiomics.experiment.runner import run_experiment

    run_experiment(load_config(args.config), Path(args.out), executor=_executor(args))
    print(f"report: {Path(args.out) / 'report.html'}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    """``deepradiomics demo [--out RUN] [--cohort-seed N]``."""
    from deepradiomics.experiment.demo import run_demo

    return run_demo(Path(args.out), _executor(args), args.cohort_seed)


def _executor(args: argparse.Namespace):
    """The ``ExecutorSpec`` of ``run`` / ``demo``'s executor options."""
    from deepradiomics.experiment.executor import ExecutorSpec

    return ExecutorSpec(
        kind=args.executor,
        workers=args.workers,
        cpus_per_fit=args.cpus_per_fit,
        gpus_per_fit=args.gpus_per_fit,
        ray_address=args.ray_address,
    )


def _add_executor_options(s: argparse.ArgumentParser) -> None:
    g = s.add_argument_group("where the fits run (folds x members, learning-curve repeats)")
    g.add_argument(
        "--executor",
        choices=["local", "ray"],
        default="local",
        help="local processes (default) or Ray tasks (pip install 'deepradiomics[ray]')",
    )
    g.add_argument(
        "--workers",
        type=COUNT,
        default=1,
        help="local: fits at a time (default 1, in this process); ray without --ray-address: "
        "CPUs of the local cluster it starts",
    )
    g.add_argument(
        "--cpus-per-fit", type=COUNT, help="threads (Ray: CPUs) per fit (default: cores / workers)"
    )
    g.add_argument("--gpus-per-fit", type=float, default=0.0, help="Ray: GPUs per fit")
    g.add_argument("--ray-address", help="join this Ray cluster (auto or HOST:PORT)")


def _predict(args: argparse.Namespace) -> int:
    """``deepradiomics predict``: exit 0 when a case was predicted, 1 when none could be."""
    from deepradiomics.errors import UsageError
    from deepradiomics.files import atomic_write_text
    from deepradiomics.inference import predict_cases

    out = Path(args.out)
    if out.exists() and Path(args.cases).exists() and out.resolve() == Path(args.cases).resolve():
        raise UsageError(f"--out {out} is the cases CSV itself; choose another file")
    masks = out.with_name(f"{out.name.removesuffix('.csv')}_masks")  # segmentation bundles
    result = predict_cases(args.bundle, args.cases, progress=True, masks_dir=masks)
    for line in result.messages:
        print(line, file=sys.stderr)
    atomic_write_text(out, result.table.to_csv(index=False))
    print(f"predicted {result.n_ok} case(s), {result.n_failed} failed; wrote {out}")
    if result.n_ok == 0:
        print(
            "error: no case could be predicted (reasons above and in the reason column)",
            file=sys.stderr,
        )
        return 1
    return 0


def _receptive_field(args: argparse.Namespace) -> int:
    """``deepradiomics receptive-field CONFIG.yaml | MODEL [--spacing Z Y X] [--plan DIR]``."""
    from deepradiomics.explain.field_spec import field_spec, field_summary, field_table
    from deepradiomics.explain.receptive_field import receptive_field
    from deepradiomics.files import write_json

    spec = field_spec(args.source, plan=args.plan, spacing=args.spacing, shape=args.shape)
    stages = receptive_field(spec.backbone(), spec.shape, spec.spacing)
    print(spec.describe())
    print("\n".join(field_table(stages, spec.crop, spec.shape, spec.lesion)))
    if args.json:
        write_json(
            args.json,
            field_summary(stages, spec.spacing, spec.crop, spec.shape, spec.lesion),
            indent=1,
        )
    return 0


def _explain(args: argparse.Namespace) -> int:
    """``deepradiomics explain RUN CASES.csv --out DIR [--method ...] [--sanity]``."""
    from deepradiomics.experiment.explain_cases import explain_cases

    methods = tuple(args.method or ["gradcam"])
    result = explain_cases(args.run, args.cases, args.out, methods, sanity=args.sanity)
    n = len(result["cases"])
    for method, s in result["localisation"].items():
        print(
            f"{method}: {n} case(s) in {result['seconds'][method]} s; median share in lesion "
            f"{s['lesion_median']:.2f}, margin {s['margin_median']:.2f}, body "
            f"{s['body_median']:.2f}, outside {s['outside_median']:.2f}; "
            f"{s['flagged_outside_body']} flagged"
        )
    for method, s in result.get("sanity", {}).items():
        verdict = "passed" if s["passed"] else "FAILED"
        print(
            f"sanity {method}: {verdict} (median Spearman to the randomised model "
            f"{s['final_spearman']:.2f}; threshold {s['threshold']})"
        )
    print(f"wrote {args.out}/explain.json and one map per case and method")
    return 0


# subcommand -> handler: takes the parsed args, returns the exit code
HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "synth": _synth,
    "validate": _validate,
    "preprocess": _preprocess,
    "train": _train,
    "run": _run,
    "demo": _demo,
    "predict": _predict,
    "receptive-field": _receptive_field,
    "explain": _explain,
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="deepradiomics",
        description="End-to-end deep-learning radiomics with honest, site-aware validation.",
    )
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("synth", help="write the synthetic multi-site cohort (NIfTI + cohort.csv)")
    s.add_argument("out", help="output folder")
    s.add_argument("--cases", type=int, default=300, help="number of cases (default 300)")
    s.add_argument("--sites", type=int, default=4, help="number of sites (default 4)")
    s.add_argument("--seed", type=SEED, default=0)
    s.add_argument(
        "--confounding",
        type=float,
        default=0.0,
        help="0..1: how strongly site predicts the outcome (default 0)",
    )
    s.add_argument("--size", type=int, default=96, help="in-plane size in voxels (default 96)")
    s.add_argument("--no-pet", action="store_true", help="CT only, no PET-like channel")
    s.add_argument("--workers", type=int, default=2)

    s = sub.add_parser("validate", help="check every case of a cohort; one line per problem")
    s.add_argument("cohort", help="cohort CSV")
    s.add_argument("--config", help="experiment YAML whose cohort section maps the columns")

    s = sub.add_parser("preprocess", help="fingerprint, plan and cache the preprocessed cases")
    s.add_argument("source", help="experiment YAML, or a cohort CSV (default settings)")
    s.add_argument("--out", help="folder for fingerprint.json, plan.json and the cache")
    s.add_argument("--workers", type=int, help="parallel processes (default: config)")

    s = sub.add_parser("train", help="train one model; writes DIR/metrics.json and the checkpoint")
    s.add_argument("config", help="experiment YAML")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.pt")
    s.add_argument("--seed", type=SEED, help="override the config's seed")
    s.add_argument(
        "--validation-only",
        action="store_true",
        help="recipe exploration: evaluate on the validation split, leave the test split unseen",
    )

    s = sub.add_parser("run", help="the whole experiment: splits, training, evaluation, report")
    s.add_argument("config", help="experiment YAML")
    s.add_argument("--out", required=True, help="run folder (rerun to resume)")
    _add_executor_options(s)

    s = sub.add_parser("demo", help="synthetic multi-site cohort, end to end, on CPU in minutes")
    s.add_argument("--out", default="demo_run", help="run folder (default demo_run)")
    s.add_argument(
        "--cohort-seed",
        type=SEED,
        default=0,
        help="another draw of the synthetic cohort, same settings (default 0: the demo's)",
    )
    _add_executor_options(s)

    s = sub.add_parser("predict", help="apply a trained bundle to new cases")
    s.add_argument("bundle", help="a run folder (its bundle/) or the bundle folder itself")
    s.add_argument("cases", help="cohort CSV of new cases")
    s.add_argument(
        "--out",
        required=True,
        help="predictions CSV (a segmentation bundle writes the masks to OUT_masks/)",
    )

    s = sub.add_parser(
        "receptive-field", help="receptive field of each stage (voxels, mm) vs crop and lesion"
    )
    s.add_argument("source", help="experiment YAML, or a registry model name")
    s.add_argument(
        "--spacing",
        type=float,
        nargs=3,
        metavar=("Z", "Y", "X"),
        help="voxel spacing in mm (default: the config's / plan's, else 1 1 1)",
    )
    s.add_argument(
        "--shape",
        type=int,
        nargs=3,
        metavar=("Z", "Y", "X"),
        help="input size in voxels (default: the config's / plan's, else 64^3)",
    )
    s.add_argument(
        "--plan",
        help="folder with plan.json (+ fingerprint.json): a run folder, "
        "its preprocess/ or bundle/, or a `preprocess --out` folder",
    )
    s.add_argument("--json", help="also write the table as JSON here")

    s = sub.add_parser(
        "explain",
        help="attribution maps of a run's ensemble, in each case's "
        "original image geometry (NIfTI + PNG + explain.json)",
    )
    s.add_argument("run", help="run folder (or its bundle/)")
    s.add_argument("cases", help="cohort CSV of the cases to explain")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument(
        "--method",
        action="append",
        choices=["gradcam", "gradcampp", "occlusion"],
        help="attribution method (repeat for several; default gradcam)",
    )
    s.add_argument(
        "--sanity", action="store_true", help="also run the cascading-randomisation sanity check"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.version:
        from deepradiomics import __version__

        print(__version__)
        return 0
    if not args.command:
        parser.print_help()
        return 2
    from deepradiomics.errors import UserError

    try:
        code = int(HANDLERS[args.command](args) or 0)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        code = err.exit_code
    except KeyboardInterrupt:
        print("interrupted; finished work is kept (rerun to resume)", file=sys.stderr)
        code = 130
    if "WORLD_SIZE" in os.environ:  # started by torchrun (``train``)
        from deepradiomics.train import distributed as dist

        if dist.launched():
            dist.end_process(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
