"""Apply a trained bundle (``bundle.load_bundle``) to new cases: ``predict_cases``, behind
``deepradiomics predict BUNDLE CASES.csv --out PREDS.csv`` and ``deepradiomics.predict()``.

The cases CSV uses the training cohort's column names (outcome columns not needed). Each
case is validated (``cohort.validate`` without targets) and prepared with the bundle's saved
plan (``preprocess.case.apply_plan``: exactly as in training, never re-planned); a case that
fails either step is reported with its reason and the others are still predicted. Every
member of the bundle (folds x bootstrap members) predicts with its own covariate encoding;
the ensemble is their mean (survival: log-risk minus the member's training offset) and the
members' spread is the per-case uncertainty.

``PREDS.csv``: one row per input row, in input order: ``case_id``, ``status`` (ok | failed),
``reason``, then binary ``prob`` + ``predicted_class`` (at the bundle's threshold),
multiclass ``prob_<class>`` + ``predicted_class``, regression ``prediction``, survival
``log_risk`` (higher = higher risk); then ``uncertainty`` and ``n_members``. A
segmentation bundle writes each case's mask (NIfTI, the case's original geometry) into a
folder and its rows hold ``mask_file``, ``volume_ml``, ``uncertainty`` (members' mean voxel
spread inside the mask) and ``n_members``; ``cohort.mask_from`` uses it for rows without
a drawn mask.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk
import torch
from tqdm import tqdm

from deepradiomics.bundle import Bundle, load_bundle, load_member
from deepradiomics.cohort.manifest import (
    Case,
    Manifest,
    build_cases,
    manifest_from_table,
    read_manifest,
)
from deepradiomics.cohort.problems import Problem
from deepradiomics.cohort.validate import validate_manifest
from deepradiomics.config import CohortConfig, ModalityConfig
from deepradiomics.dataset.arrays import ArrayData
from deepradiomics.dataset.covariates import apply_encoding
from deepradiomics.dataset.manifest import covariate_table
from deepradiomics.errors import UsageError, UserError
from deepradiomics.evaluate.ensemble import combine_members
from deepradiomics.explain.geometry import mask_to_original
from deepradiomics.files import safe_name
from deepradiomics.preprocess.case import apply_plan, model_input
from deepradiomics.preprocess.parallel import case_pool, guarded, run_jobs
from deepradiomics.preprocess.plan import Plan
from deepradiomics.preprocess.source import original_image
from deepradiomics.tasks import get_task
from deepradiomics.train.loop import predict as model_outputs
from deepradiomics.train.loop import resolve_device


def cohort_config(bundle: Bundle, csv: Path) -> CohortConfig:
    """The training cohort's column mapping for ``csv``, with the plan's channels.

    The saved config lists every column role, so each would count as named explicitly (and
    be required); here only what prediction needs must exist: the case id, the image
    columns, the covariates and, when the plan crops around it, the mask. Other roles
    (site, patient, mask otherwise) are used when the CSV has them, as in training.
    """
    modalities = {
        m.name: ModalityConfig(column=m.column, kind=m.kind, suv=m.suv)
        for m in bundle.plan.modalities
    }
    required = {"path", "case_id", "modalities", "covariates_numeric", "covariates_categorical"}
    if bundle.plan.centre_on_mask or bundle.cfg.preprocess.mask_channel:
        required.add("mask")
    values = {**dict(bundle.cfg.cohort), "path": csv, "modalities": modalities}
    return CohortConfig.model_construct(_fields_set=required, **values)


def _reason(p: Problem) -> str:
    """A validation problem without its severity and case (those are in the row)."""
    where = []
    if p.column:
        where.append(f"column {p.column}")
    if p.file:
        where.append(f"file {p.file}")
    return f"{', '.join(where)}: {p.message}" if where else p.message


def _prepare_case(
    case: Case, plan: Plan, mask_channel: bool = False
) -> tuple[tuple[np.ndarray, dict], bool]:
    prepared = apply_plan(case, plan)
    return (model_input(prepared, mask_channel, f"case {case.case_id}"), prepared.meta), False


def _prepare_job(case: Case, plan: Plan, mask_channel: bool = False) -> Any:
    return guarded(_prepare_case, case, plan, mask_channel)


def prepare_cases(
    cases: list[Case],
    plan: Plan,
    workers: int = 1,
    progress: bool = False,
    mask_channel: bool = False,
) -> tuple[dict[int, np.ndarray], dict[int, str], dict[int, dict]]:
    """Images ``[C, D, H, W]`` of the cases ``apply_plan`` could prepare, the reasons of the
    others, and the prepared cases' ``meta`` (crop grid), all keyed by position in ``cases``.

    Reuses the preprocessing runner (its process pool setup, per-case error capture and
    progress bar) so prediction fails and parallelises exactly like ``preprocess``.
    """
    images: dict[int, np.ndarray] = {}
    failures: dict[int, str] = {}
    metas: dict[int, dict] = {}
    with case_pool(workers, len(cases), __name__) as pool:
        for i, out in run_jobs(
            _prepare_job, [(c, plan, mask_channel) for c in cases], pool, "preprocess", progress
        ):
            if out.reason is not None:
                failures[i] = out.reason
            else:
                images[i], metas[i] = out.value
    return images, failures, metas


def member_outputs(
    bundle: Bundle,
    images: np.ndarray,
    covariates: pd.DataFrame | None,
    progress: bool = False,
    members: list[int] | None = None,
) -> np.ndarray:
    """The raw output of every member (or of the ``members`` positions, whose plan prepared
    ``images``), ``(members, cases[, classes])``: probabilities, log-risks (before the
    offset), values, or foreground probability maps ``(members, cases, D, H, W)``
    (segmentation)."""
    device = resolve_device("auto")
    n = len(images)
    base = ArrayData(
        images=torch.from_numpy(images),
        targets=torch.zeros(n),
        case_ids=tuple(map(str, range(n))),
        patient_ids=tuple(map(str, range(n))),
    )
    outs = []
    chosen = bundle.members if members is None else [bundle.members[i] for i in members]
    for m in tqdm(
        chosen,
        desc="members",
        unit="model",
        file=sys.stderr,
        disable=None if progress else True,
        leave=False,
    ):
        model = load_member(bundle, m).to(device)
        cov = None
        if m.encoding is not None and covariates is not None:
            cov = torch.from_numpy(apply_encoding(covariates, m.encoding))
        outs.append(
            model_outputs(
                model,
                replace(base, covariates=cov),
                bundle.task,
                device,
                tta=bundle.cfg.flip_tta,
                anisotropic=m.anisotropic if m.plan is not None else bundle.anisotropic,
                patch=bundle.cfg.train.patch,
                overlap=bundle.cfg.train.sw_overlap,
            )
        )
    return np.stack(outs)


def ensemble_columns(bundle: Bundle, outputs: np.ndarray) -> pd.DataFrame:
    """The task's prediction columns plus ``uncertainty`` and ``n_members``, one row per case."""
    kind = get_task(bundle.task).ensemble
    offsets = [m.offset or 0.0 for m in bundle.members] if kind == "log_risk" else None
    ens = combine_members(outputs, kind=kind, offsets=offsets)
    cols: dict[str, Any] = {}
    if bundle.task == "binary":
        threshold = 0.5 if bundle.threshold is None else float(bundle.threshold)
        cols["prob"] = ens.mean
        cols["predicted_class"] = np.where(
            ens.mean >= threshold, bundle.classes[1], bundle.classes[0]
        )
    elif bundle.task == "multiclass":
        for k, c in enumerate(bundle.classes):
            cols[f"prob_{c}"] = ens.mean[:, k]
        cols["predicted_class"] = np.asarray(bundle.classes)[np.argmax(ens.mean, axis=1)]
    elif bundle.task == "regression":
        cols["prediction"] = ens.mean
    else:
        cols["log_risk"] = ens.mean
    cols["uncertainty"] = ens.uncertainty
    cols["n_members"] = ens.n_members
    return pd.DataFrame(cols)


def mask_columns(
    bundle: Bundle,
    outputs: np.ndarray,
    cases: list[Case],
    metas: list[dict],
    masks_dir: Path,
) -> pd.DataFrame:
    """Segmentation: each case's ensemble mask written as ``masks_dir/<case>_mask.nii.gz`` in
    the case's original geometry; columns ``mask_file``, ``volume_ml`` (of that mask),
    ``uncertainty`` (the members' mean voxel std inside it) and ``n_members``."""
    masks_dir.mkdir(parents=True, exist_ok=True)
    first = bundle.plan.modalities[0]
    files, volumes, spread = [], [], []
    for k, (case, meta) in enumerate(zip(cases, metas, strict=True)):
        ens = combine_members(outputs[:, k : k + 1], kind="probability_map")
        reference = original_image(case, first.name, first.kind)
        mask = mask_to_original(ens.mean[0], meta, reference)
        path = masks_dir / f"{safe_name(case.case_id)}_mask.nii.gz"
        sitk.WriteImage(mask, str(path))
        inside = ens.mean[0] >= 0.5
        files.append(str(path))
        volumes.append(
            float(sitk.GetArrayViewFromImage(mask).sum() * np.prod(reference.GetSpacing()) / 1000)
        )
        spread.append(float(ens.uncertainty[0][inside].mean()) if inside.any() else np.nan)
    return pd.DataFrame(
        {
            "mask_file": files,
            "volume_ml": volumes,
            "uncertainty": spread,
            "n_members": [outputs.shape[0]] * len(cases),
        }
    )


@dataclass
class Predictions:
    """``table``: the PREDS.csv rows; ``messages``: stderr lines in input order (a failed
    case's errors, a predicted case's validation warnings);
    ``members``: the members' raw outputs on the predicted cases (rows with status ok)."""

    table: pd.DataFrame
    messages: list[str]
    members: np.ndarray

    @property
    def n_ok(self) -> int:
        return int((self.table["status"] == "ok").sum())

    @property
    def n_failed(self) -> int:
        return len(self.table) - self.n_ok


def _validated(
    bundle: Bundle, csv: Path, table: pd.DataFrame | None = None
) -> tuple[Manifest, list[Case], dict[int, str], dict[int, list[str]]]:
    """Manifest, cases, and by position: the reasons of the rows that failed validation and
    the stderr lines of every row (its errors, else its warnings). ``table``: the rows (then
    ``csv`` only names them and locates relative paths), else the CSV is read."""
    if table is None:
        manifest = read_manifest(csv, cohort_config(bundle, csv), targets=False)
    else:
        manifest = manifest_from_table(table, csv, cohort_config(bundle, csv), targets=False)
    report = validate_manifest(manifest, targets=False)
    if report.cohort_errors:
        raise UserError(f"{csv}: " + "; ".join(p.message for p in report.cohort_errors))
    cases = build_cases(manifest)
    failed: dict[int, str] = {}
    messages: dict[int, list[str]] = {}
    for i, case in enumerate(cases):
        problems = report.for_line(case.line)
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            failed[i] = "; ".join(_reason(p) for p in errors)
        messages[i] = [str(p) for p in (errors or problems)]
    return manifest, cases, failed, messages


def predict_cases(
    bundle_dir: str | Path,
    cases: str | Path | pd.DataFrame,
    workers: int | None = None,
    progress: bool = False,
    base_dir: str | Path | None = None,
    masks_dir: str | Path | None = None,
) -> Predictions:
    """Predict every usable case with the bundle (see the module docstring).

    ``cases``: a cases CSV, or a DataFrame with its columns whose relative file paths are
    resolved against ``base_dir`` (default: the current folder). ``workers``: preprocessing
    processes (default: the bundle config's ``preprocess.workers``; 1 prepares in this
    process). ``masks_dir``: where a segmentation bundle writes the masks (required then).
    """
    bundle = load_bundle(bundle_dir)
    dense = get_task(bundle.task).dense
    if dense and masks_dir is None:
        raise UsageError(f"{bundle_dir}: a segmentation bundle needs a folder for the masks")
    table = None
    if isinstance(cases, pd.DataFrame):
        table = cases
        csv = Path(base_dir or Path.cwd()).resolve() / "<cases DataFrame>"
    else:
        csv = Path(cases)
        if not csv.is_file():
            raise UsageError(f"cases file not found: {csv}")
    manifest, records, failed, messages = _validated(bundle, csv, table)
    usable = [i for i in range(len(records)) if i not in failed]
    workers = workers or bundle.cfg.preprocess.workers
    groups = bundle.plan_groups()  # one group unless the folds' plans differ
    prepared, metas = [], []  # per plan group: images and crop grids by usable position
    for plan, _ in groups:
        images, prep_failed, grids = prepare_cases(
            [records[i] for i in usable],
            plan,
            workers,
            progress,
            bundle.cfg.preprocess.mask_channel,
        )
        prepared.append(images)
        metas.append(grids)
        for j, reason in sorted(prep_failed.items()):
            if usable[j] in failed:
                continue
            case = records[usable[j]]
            reason = re.sub(rf"^case {re.escape(case.case_id)}( \(line \d+\))?: ", "", reason)
            failed[usable[j]] = f"preprocess: {reason}"
            # the warnings of a case that then failed are noise next to its error
            messages[usable[j]] = [
                f"error: case {case.case_id} (line {case.line}): preprocess: {reason}"
            ]
    ok = [i for i in range(len(records)) if i not in failed]
    table = pd.DataFrame(
        {
            "case_id": [c.case_id for c in records],
            "status": ["failed" if i in failed else "ok" for i in range(len(records))],
            "reason": [failed.get(i, "") for i in range(len(records))],
        }
    )
    per_case = (bundle.n_classes,) if get_task(bundle.task).scores_per_class else ()
    per_case = tuple(bundle.plan.shape) if dense else per_case
    outputs = np.zeros((len(bundle.members), 0, *per_case))  # no case: columns stay empty
    position = {i: j for j, i in enumerate(usable)}
    if ok:
        cols = manifest.columns
        cov = covariate_table(
            [records[i] for i in ok], cols.covariates_numeric, cols.covariates_categorical
        )
        parts = {}
        for (_, idx), images in zip(groups, prepared, strict=True):
            stacked = np.stack([images[position[i]] for i in ok])
            parts.update(zip(idx, member_outputs(bundle, stacked, cov, progress, idx), strict=True))
        outputs = np.stack([parts[i] for i in range(len(bundle.members))])
    if dense:  # segmentation bundles keep one plan (one group)
        ok_metas = [metas[0][position[i]] for i in ok]
        pred = mask_columns(bundle, outputs, [records[i] for i in ok], ok_metas, Path(masks_dir))
    else:
        pred = ensemble_columns(bundle, outputs)
    pred.index = ok
    table = table.join(pred)
    table["n_members"] = table["n_members"].astype("Int64")
    lines = [line for i in range(len(records)) for line in messages[i]]
    return Predictions(table=table, messages=lines, members=outputs)
