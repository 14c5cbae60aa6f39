"""``RUN/bundle``: everything ``predict`` needs, loadable without executing pickled code.

Written by ``run`` (``write_bundle``), read by ``predict`` and the Python API
(``load_bundle``, ``load_member``): the one module that knows the layout.

    bundle/
      bundle.json     task, classes, threshold, channels, sites, members (file, fold,
                      survival offset, covariate encoding)
      config.yaml     the resolved experiment config
      plan.json       the preprocessing plan (CSV cohorts; the first fold's)
      plans/          fold_K.json: each fold's plan, only when the folds' plans differ (each
                      was fitted on its fold's training part); members name theirs
      members/        fold_K_member_M.pt: {"model": state_dict} (torch.load weights_only)

The ensemble is every fold's members: each was trained on its fold's training part, so
together they use the whole cohort, and their spread is the prediction's uncertainty.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from deepradiomics.config import ExperimentConfig, load_config, save_config
from deepradiomics.dataset.covariates import encoding_width
from deepradiomics.dataset.planning import FoldCohorts
from deepradiomics.errors import UsageError, UserError
from deepradiomics.files import atomic_write_text
from deepradiomics.io.weights import read_weights
from deepradiomics.models import build_from_config
from deepradiomics.preprocess.plan import Plan
from deepradiomics.tasks import TASKS, get_task
from deepradiomics.train.checkpoint import load_checkpoint, save_checkpoint
from deepradiomics.train.loop import BEST

MANIFEST = "bundle.json"


class FittedFold(Protocol):
    """What ``write_bundle`` reads of one outer fold (``experiment.folds.FoldResult``)."""

    @property
    def fold(self) -> int: ...

    member_dirs: list[Path]
    offsets: list[float] | None
    encoding: dict | None


def write_bundle(
    run_dir: Path,
    cfg: ExperimentConfig,
    cohorts: FoldCohorts,
    folds: Sequence[FittedFold],
    threshold: float | None,
) -> Path:
    """``run_dir/bundle`` from the run's config, each fold's cohort (its plan) and every
    fold's member weights."""
    out = run_dir / "bundle"
    arrays = cohorts.reference
    (out / "members").mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.yaml")
    if arrays.plan is not None:
        arrays.plan.save(out / "plan.json")
    per_fold = arrays.plan is not None and cohorts.distinct_plans > 1
    members = []
    for f in folds:
        own: dict[str, Any] = {}
        if per_fold:
            plan = cohorts[f.fold].plan
            (out / "plans").mkdir(exist_ok=True)
            plan.save(out / "plans" / f"fold_{f.fold}.json")
            own = {
                "plan": f"plans/fold_{f.fold}.json",
                "spacing": list(plan.spacing),
                "anisotropic": plan.anisotropic,
            }
        for m, folder in enumerate(f.member_dirs):
            name = f"fold_{f.fold}_member_{m}.pt"
            weights = load_checkpoint(folder / BEST)["model"]
            save_checkpoint({"model": weights}, out / "members" / name)
            members.append(
                {
                    "file": f"members/{name}",
                    "fold": f.fold,
                    "member": m,
                    "offset": None if f.offsets is None else f.offsets[m],
                    "encoding": f.encoding,
                    **own,
                }
            )
    manifest = {
        "task": arrays.task,
        "classes": arrays.classes,
        "threshold": threshold,
        "in_channels": arrays.in_channels,
        "spacing": arrays.spacing,
        "anisotropic": arrays.anisotropic,
        "sites": arrays.site_names,
        "numeric_covariates": list(arrays.numeric_covariates),
        "covariates": [] if arrays.covariates is None else list(arrays.covariates.columns),
        "members": members,
    }
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=1))
    return out


@dataclass(frozen=True)
class Member:
    """One fitted model of the bundle."""

    path: Path
    fold: int
    member: int
    offset: float | None  # survival: mean training log-risk, subtracted
    encoding: dict[str, Any] | None  # covariate encoding fitted on its training part
    plan: Plan | None = None  # its fold's plan when folds differ (else the bundle's)
    spacing: tuple[float, float, float] | None = None  # that plan's grid, for the model
    anisotropic: bool = False


@dataclass(frozen=True)
class Bundle:
    """What ``RUN/bundle`` holds (see the module docstring)."""

    folder: Path
    cfg: ExperimentConfig
    plan: Plan
    task: str
    classes: list[str]
    threshold: float | None
    in_channels: int
    spacing: tuple[float, float, float] | None
    anisotropic: bool
    sites: list[str]
    members: list[Member]

    @property
    def n_classes(self) -> int:
        return len(self.classes) if get_task(self.task).classes else 0

    def plan_of(self, member: Member) -> Plan:
        """The plan a member's inputs are prepared with (its fold's)."""
        return member.plan or self.plan

    def plan_groups(self) -> list[tuple[Plan, list[int]]]:
        """``(plan, member positions)`` per distinct plan, in member order."""
        groups: list[tuple[Plan, list[int]]] = []
        for i, m in enumerate(self.members):
            plan = self.plan_of(m)
            for p, idx in groups:
                if p == plan:
                    idx.append(i)
                    break
            else:
                groups.append((plan, [i]))
        return groups


def _member_plan(folder: Path, entry: dict[str, Any]) -> dict[str, Any]:
    if not entry.get("plan"):
        return {}
    spacing = entry.get("spacing")
    return {
        "plan": Plan.load(folder / entry["plan"]),
        "spacing": None if spacing is None else tuple(float(s) for s in spacing),
        "anisotropic": bool(entry.get("anisotropic", False)),
    }


def load_bundle(folder: str | Path) -> Bundle:
    """Read ``bundle.json``, ``config.yaml`` and ``plan.json`` of a bundle folder (or of a run
    folder's ``bundle/``); weights are read later.

    ``UsageError`` when the folder or its ``bundle.json`` is missing; ``UserError`` when a
    file is unreadable or the bundle cannot be applied to CSV cases.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"bundle folder not found: {folder}")
    if not (folder / MANIFEST).is_file() and (folder / "bundle" / MANIFEST).is_file():
        folder = folder / "bundle"  # a run folder: its bundle
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise UsageError(
            f"{folder}: no {MANIFEST} (nor bundle/{MANIFEST}); pass a run folder or its bundle "
            "folder (RUN/bundle)"
        )
    try:
        info = json.loads(manifest_path.read_text())
        members = [
            Member(
                folder / m["file"],
                int(m["fold"]),
                int(m["member"]),
                None if m.get("offset") is None else float(m["offset"]),
                m.get("encoding"),
                **_member_plan(folder, m),
            )
            for m in info["members"]
        ]
        task = str(info["task"])
        spacing = info.get("spacing")
        fields = {
            "classes": [str(c) for c in info.get("classes") or []],
            "threshold": info.get("threshold"),
            "in_channels": int(info["in_channels"]),
            "spacing": None if spacing is None else tuple(float(s) for s in spacing),
            "anisotropic": bool(info.get("anisotropic", False)),
            "sites": list(info.get("sites") or []),
        }
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(
            f"{manifest_path}: not a valid bundle manifest ({type(err).__name__}: {err})"
        ) from None
    if task not in TASKS or TASKS[task].ensemble is None:
        raise UserError(f"{manifest_path}: task '{task}' cannot be predicted by this command")
    if not members:
        raise UserError(f"{manifest_path}: the bundle lists no member model")
    if not (folder / "plan.json").is_file():
        raise UserError(
            f"{folder}: no plan.json (the bundle was trained on a .npz cohort, which "
            "has no preprocessing plan for CSV cases)"
        )
    return Bundle(
        folder=folder,
        cfg=load_config(folder / "config.yaml", files=False),  # the cohort may be gone
        plan=Plan.load(folder / "plan.json"),
        task=task,
        members=members,
        **fields,
    )


def load_member(bundle: Bundle, member: Member) -> torch.nn.Module:
    """The member's model rebuilt from the config, weights loaded with ``weights_only``."""
    if not member.path.is_file():
        raise UserError(f"bundle member file not found: {member.path}")
    state = read_weights(member.path)
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise UserError(f"{member.path}: expected a dict with the member's 'model' weights")
    n_cov = 0 if member.encoding is None else encoding_width(member.encoding)
    model = build_from_config(
        bundle.cfg,
        bundle.task,
        bundle.in_channels,
        bundle.n_classes,
        member.spacing if member.plan is not None else bundle.spacing,
        n_covariates=n_cov,
        n_sites=len(bundle.sites),
        load_pretrained=False,  # the member's weights replace them; the file may be elsewhere
    )
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        raise UserError(
            f"{member.path}: weights do not fit the bundle's model "
            f"({bundle.cfg.model.name}): {str(err).splitlines()[0]}"
        ) from None
    return model
