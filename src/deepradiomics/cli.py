"""One entry point, ``deepradiomics``, with subcommands.

Only argparse is imported here so ``--help`` is instant; each subcommand's module is imported
when it runs. A ``UserError`` becomes one line on stderr and its exit code (1, or 2 for
usage), never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

# subcommand -> "module:function"; the function takes the parsed args and returns an exit code
HANDLERS = {
    "synth": "deepradiomics.synth.generate:command",
    "validate": "deepradiomics.cohort.validate:command",
    "preprocess": "deepradiomics.preprocess.pipeline:command",
    "train": "deepradiomics.train.command:command",
    "run": "deepradiomics.experiment:command_run",
    "demo": "deepradiomics.experiment:command_demo",
    "predict": "deepradiomics.predict:command",
    "receptive-field": "deepradiomics.explain.field_command:command",
    "explain": "deepradiomics.experiment.explain_cases:command",
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
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--confounding", type=float, default=0.0,
                   help="0..1: how strongly site predicts the outcome (default 0)")
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
    s.add_argument("--seed", type=int, help="override the config's seed")
    s.add_argument("--validation-only", action="store_true",
                   help="recipe exploration: evaluate on the validation split, leave the test split unseen")

    s = sub.add_parser("run", help="the whole experiment: splits, training, evaluation, report")
    s.add_argument("config", help="experiment YAML")
    s.add_argument("--out", required=True, help="run folder (rerun to resume)")

    s = sub.add_parser("demo", help="synthetic multi-site cohort, end to end, on CPU in minutes")
    s.add_argument("--out", default="demo_run", help="run folder (default demo_run)")

    s = sub.add_parser("predict", help="apply a trained bundle to new cases")
    s.add_argument("bundle", help="RUN/bundle folder")
    s.add_argument("cases", help="cohort CSV of new cases")
    s.add_argument("--out", required=True, help="predictions CSV")

    s = sub.add_parser("receptive-field",
                       help="receptive field of each stage (voxels, mm) vs crop and lesion")
    s.add_argument("source", help="experiment YAML, or a registry model name")
    s.add_argument("--spacing", type=float, nargs=3, metavar=("Z", "Y", "X"),
                   help="voxel spacing in mm (default: the config's / plan's, else 1 1 1)")
    s.add_argument("--shape", type=int, nargs=3, metavar=("Z", "Y", "X"),
                   help="input size in voxels (default: the config's / plan's, else 64^3)")
    s.add_argument("--plan", help="folder with plan.json (+ fingerprint.json): a run folder, "
                   "its preprocess/ or bundle/, or a `preprocess --out` folder")
    s.add_argument("--json", help="also write the table as JSON here")

    s = sub.add_parser("explain", help="attribution maps of a run's ensemble, in each case's "
                       "original image geometry (NIfTI + PNG + explain.json)")
    s.add_argument("run", help="run folder (or its bundle/)")
    s.add_argument("cases", help="cohort CSV of the cases to explain")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--method", action="append", choices=["gradcam", "gradcampp", "occlusion"],
                   help="attribution method (repeat for several; default gradcam)")
    s.add_argument("--sanity", action="store_true",
                   help="also run the cascading-randomisation sanity check")
    return p


def _handler(command: str) -> Callable[[argparse.Namespace], int]:
    module, func = HANDLERS[command].split(":")
    return getattr(importlib.import_module(module), func)


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
        return int(_handler(args.command)(args) or 0)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted; finished work is kept (rerun to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
