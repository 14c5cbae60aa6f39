"""What a segmentation run writes: per-case scores, predicted masks, worst / median figures.

The CNN's out-of-fold foreground probability maps (members averaged, on the network-input
grid) are scored against the reference masks on that grid (the plan's spacing, so HD95 and
volumes are in mm / mL): Dice, HD95 and the volume difference per case, pooled and per site
with patient-bootstrap CIs (``evaluation.model_metrics``). Each case's prediction is also
written as a NIfTI mask in the case's original image geometry (``RUN/masks/``: the
probability resampled linearly onto the original grid, then thresholded at 0.5, so the
outline is smooth rather than staircased), and the worst and median cases by Dice get a
figure (``RUN/segmentation/``: three planes, reference and predicted outlines).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk
from matplotlib.figure import Figure

from deepradiomics.config import ExperimentConfig
from deepradiomics.dataset.arrays import CohortArrays
from deepradiomics.evaluate import metrics as M
from deepradiomics.evaluate.panel import segmentation_scores
from deepradiomics.experiment.evaluation import ModelPredictions, model_metrics
from deepradiomics.experiment.folds import FoldResult
from deepradiomics.explain.geometry import mask_to_original, orthogonal_planes
from deepradiomics.files import atomic_write_text, safe_name
from deepradiomics.io.readers import read_image
from deepradiomics.preprocess.source import original_image

MASKS = "masks"
FIGURES = "segmentation"


def write_masks(
    arrays: CohortArrays, idx: np.ndarray, maps: np.ndarray, out: Path
) -> tuple[list[str], np.ndarray]:
    """``out/<case>_pred.nii.gz`` per predicted case in its original geometry. Returns the
    file names relative to the run folder and each mask's Dice against the case's reference
    mask file in that geometry (empty names and nan for cohorts without files)."""
    dice_original = np.full(len(idx), np.nan)
    if arrays.prepared is None or not arrays.cases:
        return [""] * len(idx), dice_original
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for k, (i, fg) in enumerate(zip(idx, maps, strict=True)):
        cid = arrays.data.case_ids[i]
        _, _, meta = arrays.prepared.load_case(cid)
        name = f"{safe_name(cid)}_pred.nii.gz"
        first = arrays.plan.modalities[0]
        reference = original_image(arrays.cases[i], first.name, first.kind)
        mask = mask_to_original(fg, meta, reference)
        sitk.WriteImage(mask, str(out / name))
        names.append(f"{out.name}/{name}")
        drawn = arrays.cases[i].mask
        if drawn is not None:
            reference = read_image(drawn, suv=False, orient=False)
            same = sitk.GetArrayViewFromImage(reference).shape == mask.GetSize()[::-1]
            if same:
                dice_original[k] = M.dice(
                    sitk.GetArrayViewFromImage(mask), sitk.GetArrayViewFromImage(reference) > 0
                )
    return names, dice_original


def case_figure(
    path: Path,
    image: np.ndarray,
    reference: np.ndarray,
    predicted: np.ndarray,
    spacing: tuple[float, float, float],
    title: str,
) -> None:
    """Three orthogonal planes through the reference lesion's centre: the image, the
    reference outline (cyan) and the predicted outline (magenta)."""
    found = reference if reference.any() else predicted
    fig = Figure(figsize=(9, 3.2))
    for k, (name, take, aspect) in enumerate(orthogonal_planes(image.shape, found, spacing)):
        ax = fig.add_subplot(1, 3, k + 1)
        ax.imshow(take(image), cmap="gray", aspect=aspect, origin="lower")
        for mask, colour in ((reference, "cyan"), (predicted, "magenta")):
            if take(mask).any():
                ax.contour(take(mask).astype(float), levels=[0.5], colors=colour, linewidths=0.9)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{title} (reference: cyan, predicted: magenta)", fontsize=9)
    fig.savefig(path, dpi=90)


def pick_figure_cases(dice: np.ndarray) -> dict[str, int]:
    """Positions (into ``dice``) of the worst case and the median case by Dice."""
    order = np.argsort(dice, kind="stable")
    return {"worst": int(order[0]), "median": int(order[(len(order) - 1) // 2])}


def _member_spread(folds: list[FoldResult], masks: np.ndarray) -> np.ndarray:
    """Per test case: the members' mean voxel std over the predicted and reference lesion
    (0 with one member; nan when both are empty)."""
    out = []
    for f in folds:
        for k, i in enumerate(f.test):
            region = (f.predictions.score[k] >= 0.5) | masks[i].astype(bool)
            std = f.predictions.std[k] if f.predictions.std is not None else None
            out.append(float(std[region].mean()) if region.any() and std is not None else np.nan)
    return np.array(out)


def _nan_mean(values: np.ndarray) -> float | None:
    ok = np.isfinite(values)
    return float(values[ok].mean()) if ok.any() else None


def segmentation_results(
    cfg: ExperimentConfig,
    arrays: CohortArrays,
    folds: list[FoldResult],
    model: ModelPredictions,
    run_dir: Path,
) -> dict[str, Any]:
    """Metrics (the ``metrics.json`` entries), ``predictions.csv``, ``masks/`` and figures."""
    d = arrays.data
    masks = d.masks.numpy()
    spacing = tuple(float(s) for s in arrays.spacing) if arrays.spacing else (1.0, 1.0, 1.0)
    cnn = model_metrics(cfg, arrays, model)
    idx, maps = model.stacked()
    scores = segmentation_scores(maps, masks[idx], spacing)
    files, dice_original = write_masks(arrays, idx, maps, run_dir / MASKS)
    fold = np.concatenate([[f.fold] * len(f.test) for f in model.folds])
    table = pd.DataFrame(
        {
            "case_id": np.asarray(d.case_ids)[idx],
            "patient_id": np.asarray(d.patient_ids)[idx],
            "site": arrays.sites[idx] if arrays.sites is not None else "",
            "fold": fold,
            "reference_volume_ml": [M.volume_ml(masks[i], spacing) for i in idx],
            "cnn_volume_ml": [M.volume_ml(m >= 0.5, spacing) for m in maps],
            **{f"cnn_{name}": values for name, values in scores.items()},
            "cnn_dice_original": dice_original,
            "cnn_std": _member_spread(folds, masks),
            "cnn_mask_file": files,
        }
    )
    atomic_write_text(run_dir / "predictions.csv", table.to_csv(index=False))
    figures = []
    (run_dir / FIGURES).mkdir(exist_ok=True)
    images = d.images.numpy()
    for role, pos in pick_figure_cases(scores["dice"]).items():
        i = int(idx[pos])
        cid = d.case_ids[i]
        name = f"{role}_{safe_name(cid)}.png"
        title = f"{role} case {cid}: Dice {scores['dice'][pos]:.3f}"
        case_figure(
            run_dir / FIGURES / name, images[i, 0], masks[i], maps[pos] >= 0.5, spacing, title
        )
        figures.append(
            {
                "role": role,
                "case_id": cid,
                "dice": float(scores["dice"][pos]),
                "hd95": float(scores["hd95"][pos]),
                "file": f"{FIGURES}/{name}",
            }
        )
    summary = {
        "grid": f"network-input grid ({' x '.join(f'{s:g}' for s in spacing)} mm, z y x)",
        "masks": MASKS if any(files) else None,
        "patch": None if cfg.train.patch is None else list(cfg.train.patch),
        "input_shape": list(d.images.shape[2:]),
        "centred_on_mask": bool(arrays.plan is not None and arrays.plan.centre_on_mask),
        "empty_predictions": int(sum(float(m.max()) < 0.5 for m in maps)),
        "dice_original_mean": _nan_mean(dice_original),
        "figures": figures,
    }
    return {
        "test": cnn["test"],
        "per_site": cnn["per_site"],
        "per_fold": cnn["per_fold"],
        "models": {"cnn": {"inputs": "images", **cnn}},
        "segmentation": summary,
    }
