"""``RUN/bundle``: everything ``predict`` needs, loadable without executing pickled code.

    bundle/
      bundle.json     task, classes, threshold, channels, sites, members (file, fold,
                      survival offset, covariate encoding)
      config.yaml     the resolved experiment config
      plan.json       the preprocessing plan (CSV cohorts)
      members/        fold_K_member_M.pt: {"model": state_dict} (torch.load weights_only)

The ensemble is every fold's members: each was trained on its fold's training part, so
together they use the whole cohort, and their spread is the prediction's uncertainty.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deepradiomics.config import ExperimentConfig, save_config
from deepradiomics.experiment.data import CohortArrays
from deepradiomics.train.checkpoint import load_checkpoint, save_checkpoint
from deepradiomics.train.loop import BEST

MANIFEST = "bundle.json"


def write_bundle(run_dir: Path, cfg: ExperimentConfig, arrays: CohortArrays, folds: list[Any],
                 threshold: float | None) -> Path:
    out = run_dir / "bundle"
    (out / "members").mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.yaml")
    if arrays.plan is not None:
        arrays.plan.save(out / "plan.json")
    members = []
    for f in folds:
        for m, folder in enumerate(f.member_dirs):
            name = f"fold_{f.fold}_member_{m}.pt"
            weights = load_checkpoint(folder / BEST)["model"]
            save_checkpoint({"model": weights}, out / "members" / name)
            members.append({"file": f"members/{name}", "fold": f.fold, "member": m,
                            "offset": None if f.offsets is None else f.offsets[m],
                            "encoding": f.encoding})
    manifest = {
        "task": arrays.task, "classes": arrays.classes, "threshold": threshold,
        "in_channels": arrays.in_channels, "spacing": arrays.spacing,
        "anisotropic": arrays.anisotropic, "sites": arrays.site_names,
        "numeric_covariates": list(arrays.numeric_covariates),
        "covariates": [] if arrays.covariates is None else list(arrays.covariates.columns),
        "members": members,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return out
