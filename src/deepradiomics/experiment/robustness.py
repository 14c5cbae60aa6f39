"""Mask robustness (``evaluate.mask_robustness``): how much the classical features and the
CNN's prediction move when the mask moves a little.

Each case's mask is eroded and dilated by one voxel in its original image grid (a 3D cross,
i.e. face neighbours; SimpleITK's binary morphology), and with ``cohort.mask_from`` the
cases that have a drawn mask are also segmented by the bundle (the automatic mask as a
third reader). Every variant is prepared with the run's own plan (the crop follows the mask,
so the CNN's input moves too), then:

- classical features are extracted again; each feature's agreement across the variants is
  its ICC(2,1) over cases (``evaluate.metrics.icc_columns``; 0.75 / 0.9 are the usual
  "good" / "excellent" cuts, Koo & Li 2016);
- the CNN predicts each variant out of fold: every case by its own fold's members, as in
  the run; per case the spread (std and range) of its score across the variants, and the
  score's ICC; for binary tasks the share of cases whose class flips at the fold's threshold.

Outputs: ``metrics.json["mask_robustness"]``, ``RUN/robustness/feature_icc.csv`` and
``RUN/robustness/cnn_scores.csv`` (one column per variant).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk
import torch

from deepradiomics.bundle import load_bundle
from deepradiomics.config import ExperimentConfig
from deepradiomics.dataset.arrays import CohortArrays
from deepradiomics.dataset.covariates import encode_fold, encoding_width
from deepradiomics.evaluate import metrics as M
from deepradiomics.evaluate.ensemble import combine_members
from deepradiomics.evaluate.splits import SplitAssignment
from deepradiomics.experiment.classical import cohort_features
from deepradiomics.experiment.folds import FoldResult, fold_indices
from deepradiomics.experiment.members import member_model
from deepradiomics.files import atomic_write_text, safe_name
from deepradiomics.inference import predict_cases
from deepradiomics.io.readers import read_image
from deepradiomics.preprocess.case import apply_plan, with_mask_channel
from deepradiomics.tasks import get_task
from deepradiomics.train.checkpoint import load_checkpoint
from deepradiomics.train.loop import BEST, predict, resolve_device

log = logging.getLogger(__name__)

FOLDER = "robustness"
GOOD, EXCELLENT = 0.75, 0.9


def perturb_mask(mask: sitk.Image, voxels: int) -> sitk.Image:
    """``mask`` dilated (``voxels`` > 0) or eroded (< 0) by ``|voxels|`` face-neighbour steps."""
    binary = sitk.Cast(mask > 0, sitk.sitkUInt8)
    if voxels == 0:
        return binary
    step = sitk.BinaryDilate if voxels > 0 else sitk.BinaryErode
    out = step(binary, [abs(voxels)] * 3, sitk.sitkCross, 0, 1)
    out.CopyInformation(mask)
    return out


def _perturbed_masks(arrays: CohortArrays, voxels: int, folder: Path) -> dict[int, Path]:
    """Cohort index -> the case's mask perturbed by ``voxels`` (cases with a mask only)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i, case in enumerate(arrays.cases):
        if case.mask is None:
            continue
        path = folder / f"{safe_name(case.case_id)}.nii.gz"
        if not path.is_file():
            sitk.WriteImage(perturb_mask(read_image(case.mask, orient=False), voxels), str(path))
        out[i] = path
    return out


def _automatic_masks(
    cfg: ExperimentConfig, arrays: CohortArrays, folder: Path, progress: bool
) -> dict[int, Path]:
    """Cohort index -> the bundle's mask of each case that has a drawn one."""
    drawn = [
        i
        for i, c in enumerate(arrays.cases)
        if c.mask is not None and (arrays.mask_source is None or arrays.mask_source[i] == "drawn")
    ]
    if not drawn:
        return {}
    bundle = load_bundle(cfg.cohort.mask_from)  # its own column names, absolute paths
    table = pd.DataFrame(
        {
            bundle.cfg.cohort.case_id: [arrays.cases[i].case_id for i in drawn],
            **{
                m.column: [str(arrays.cases[i].images.get(m.name, "")) for i in drawn]
                for m in bundle.plan.modalities
            },
        }
    )
    result = predict_cases(cfg.cohort.mask_from, table, masks_dir=folder, progress=progress)
    by_id = {arrays.cases[i].case_id: i for i in drawn}
    return {
        by_id[str(r.case_id)]: Path(r.mask_file)
        for r in result.table.itertuples()
        if r.status == "ok" and float(r.volume_ml) > 0
    }


def _variant(
    cfg: ExperimentConfig, arrays: CohortArrays, masks: dict[int, Path]
) -> tuple[CohortArrays, np.ndarray]:
    """The cohort prepared with the run's plan and the given masks (cohort index -> file),
    and the indices it holds (cases whose variant could be prepared)."""
    images, seg, kept = [], [], []
    for i, path in sorted(masks.items()):
        case = replace(arrays.cases[i], mask=path)
        try:
            prepared = apply_plan(case, arrays.plan)
        except Exception as err:  # a mask eroded away, a crop that no longer fits
            log.warning("mask robustness: case %s left out: %s", case.case_id, err)
            continue
        image = prepared.image
        if cfg.preprocess.mask_channel:
            image = with_mask_channel(image, prepared.mask, f"case {case.case_id}")
        images.append(image)
        seg.append(prepared.mask)
        kept.append(i)
    index = np.asarray(kept, dtype=int)
    data = arrays.data
    new_images = data.images.clone()
    new_masks = data.masks.clone()
    if len(index):
        new_images[index] = torch.from_numpy(np.stack(images))
        new_masks[index] = torch.from_numpy(np.stack(seg))
    return replace(arrays, data=replace(data, images=new_images, masks=new_masks)), index


def _cnn_scores(
    cfg: ExperimentConfig,
    arrays: CohortArrays,
    splits: SplitAssignment,
    folds: list[FoldResult],
) -> np.ndarray:
    """Out-of-fold CNN scores of every case (cohort order; NaN where untested): each fold's
    members on its test cases, combined as the run combines them."""
    task = get_task(arrays.task)
    device = resolve_device(cfg.train.device)
    scores = np.full(len(arrays.data), np.nan)
    for f in folds:
        idx = fold_indices(splits, f.fold, arrays.data.case_ids)
        training_part = np.sort(np.concatenate([idx["train"], idx["val"]]))
        data, encoding = encode_fold(arrays, training_part)
        width = 0 if encoding is None else encoding_width(encoding)
        outs = []
        for m, folder in enumerate(f.member_dirs):
            _, model = member_model(cfg, arrays, f.fold, m, width, load_pretrained=False)
            model.load_state_dict(load_checkpoint(folder / BEST)["model"])
            outs.append(
                predict(
                    model.to(device),
                    data.subset(f.test),
                    arrays.task,
                    device,
                    tta=cfg.flip_tta,
                    anisotropic=arrays.anisotropic,
                )
            )
        kind = task.ensemble or "regression"
        ens = combine_members(outs, kind=kind, offsets=f.offsets)
        mean = ens.mean if ens.mean.ndim == 1 else ens.mean[:, -1]  # multiclass: last class
        scores[f.test] = mean
    return scores


def _feature_summary(icc: pd.Series) -> dict[str, Any]:
    ok = icc.dropna()
    return {
        "n_features": int(len(icc)),
        "n_defined": int(len(ok)),
        "median_icc": float(ok.median()) if len(ok) else None,
        "share_good": float((ok >= GOOD).mean()) if len(ok) else None,
        "share_excellent": float((ok >= EXCELLENT).mean()) if len(ok) else None,
        "lowest": {str(k): float(v) for k, v in ok.sort_values().head(10).items()},
    }


def mask_robustness(
    cfg: ExperimentConfig,
    groups: list[tuple[CohortArrays, SplitAssignment, list[FoldResult]]],
    run_dir: Path,
    fold_cuts: dict[int, float] | None,
    progress: bool = True,
) -> dict[str, Any] | None:
    """The robustness summary for ``metrics.json`` (see the module docstring); None when the
    cohort has no masks on disk. ``groups``: per preprocessing plan, its cohort, split and
    folds; each case is perturbed under the plan of the fold that tests it."""
    first = groups[0][0]
    if first.plan is None or not first.cases or first.data.masks is None:
        log.warning("mask robustness skipped: it needs a CSV cohort with masks")
        return None
    out = run_dir / FOLDER
    ids = np.asarray(first.data.case_ids)
    variants: dict[str, dict[int, Path]] = {
        "eroded_1": _perturbed_masks(first, -1, out / "eroded_1"),
        "dilated_1": _perturbed_masks(first, 1, out / "dilated_1"),
    }
    if cfg.cohort.mask_from is not None:
        variants["automatic"] = _automatic_masks(cfg, first, out / "automatic", progress)
    scores, features, counts = [], {}, {}
    for arrays, split, folds in groups:
        tested = np.concatenate([f.test for f in folds])
        prepared = {"original": (arrays, tested)}
        for name, masks in variants.items():
            mine = {i: p for i, p in masks.items() if i in set(tested.tolist())}
            if mine:
                prepared[name] = _variant(cfg, arrays, mine)
        table = pd.DataFrame(
            {name: _cnn_scores(cfg, a, split, folds)[tested] for name, (a, _) in prepared.items()},
            index=pd.Index(ids[tested], name="case_id"),
        )
        for name, (_, index) in prepared.items():  # cases whose variant was not prepared
            table.loc[~np.isin(tested, index), name] = np.nan
        scores.append(table)
        for name, (_, index) in prepared.items():
            counts[name] = counts.get(name, 0) + int(np.isin(tested, index).sum())
        if cfg.evaluate.classical and get_task(arrays.task).classical:
            for name, (a, index) in prepared.items():
                keep = np.intersect1d(index, tested)
                sub = replace(
                    a,
                    data=a.data.subset(keep),
                    cases=tuple(a.cases[i] for i in keep),
                )
                cache = run_dir / "classical" / "features"  # keyed by voxels: shared
                found = cohort_features(sub, cache, cfg.preprocess.workers, progress)
                features.setdefault(name, []).append(found)
    scores_table = pd.concat(scores)
    atomic_write_text(out / "cnn_scores.csv", scores_table.to_csv())
    summary: dict[str, Any] = {
        "variants": list(scores_table.columns),
        "cases": counts,
        "cnn": _cnn_summary(scores_table, fold_cuts, groups),
    }
    if features:
        summary["classical"] = _classical_summary(
            {name: pd.concat(parts) for name, parts in features.items()}, out
        )
    return summary


def _cnn_summary(
    scores: pd.DataFrame,
    fold_cuts: dict[int, float] | None,
    groups: list[tuple[CohortArrays, SplitAssignment, list[FoldResult]]],
) -> dict[str, Any]:
    """Per-case spread of the CNN's score across the mask variants (perturbations only:
    the automatic mask exists for some cases and is summarised apart)."""
    out: dict[str, Any] = {}
    sets = {"perturbed": ["original", "eroded_1", "dilated_1"]}
    if "automatic" in scores.columns:
        sets["automatic"] = ["original", "automatic"]
    for group, cols in sets.items():
        table = scores[[c for c in cols if c in scores.columns]].dropna()
        if len(table) < 2 or table.shape[1] < 2:
            continue
        values = table.to_numpy()
        spread = values.std(axis=1)
        entry = {
            "variants": list(table.columns),
            "n": int(len(table)),
            "icc": M.icc(values),
            "std_median": float(np.median(spread)),
            "range_median": float(np.median(np.ptp(values, axis=1))),
            "range_p95": float(np.percentile(np.ptp(values, axis=1), 95)),
        }
        if fold_cuts is not None:
            cut_of = {
                cid: fold_cuts[f.fold]
                for arrays, _, folds in groups
                for f in folds
                for cid in np.asarray(arrays.data.case_ids)[f.test]
            }
            cuts = np.array([cut_of[c] for c in table.index])
            called = values >= cuts[:, None]
            entry["class_flips"] = float((called.any(axis=1) & ~called.all(axis=1)).mean())
        out[group] = entry
    return out


def _complete_icc(values: np.ndarray) -> float:
    """ICC(2,1) over the subjects with a value in every condition (nan under 2 of them)."""
    ok = np.isfinite(values).all(axis=1)
    return M.icc(values[ok]) if ok.sum() >= 2 else float("nan")


def _classical_summary(features: dict[str, pd.DataFrame], out: Path) -> dict[str, Any]:
    """ICC(2,1) of every classical feature across the mask variants, over the cases every
    compared variant has."""
    summary: dict[str, Any] = {}
    groups = {
        "perturbed": ["original", "eroded_1", "dilated_1"],
        "automatic": ["original", "automatic"],
    }
    table = {}
    for group, names in groups.items():
        names = [n for n in names if n in features]
        if len(names) < 2:
            continue
        ids = sorted(set.intersection(*(set(features[n].index) for n in names)))
        if len(ids) < 2:
            continue
        columns = features["original"].columns
        stack = np.stack(
            [features[n].reindex(index=ids, columns=columns).to_numpy(float) for n in names], 1
        )
        # per feature over the cases it could be extracted for in every variant (a one-voxel
        # erosion can leave too little for some texture matrices)
        icc = pd.Series(
            [_complete_icc(stack[:, :, j]) for j in range(stack.shape[2])], index=columns
        )
        table[group] = icc
        summary[group] = {"variants": names, "cases": len(ids), **_feature_summary(icc)}
    if table:
        atomic_write_text(
            out / "feature_icc.csv", pd.DataFrame(table).rename_axis("feature").to_csv()
        )
    return summary
