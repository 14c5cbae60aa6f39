"""Attribution maps of a trained run's ensemble for some cases, in each case's original
image geometry (``deepradiomics explain RUN CASES.csv --out DIR [--method ...]``, and a
few TPs / FPs / FNs at the end of ``run``).

Each case is read and prepared with the bundle's plan (as ``predict`` does); every member of
the bundle gives a map on the network-input grid (Grad-CAM / Grad-CAM++ at the default layer,
or occlusion) and the ensemble's map is the members' mean, raw (no per-case rescaling). It is
then resampled onto the case's first image as stored on disk (``explain.geometry``) and
written as ``DIR/<case_id>_<method>.nii.gz``; ``DIR/<case_id>_<method>.png`` shows three
orthogonal planes through the lesion centre (image, mask outline, map; the colour scale runs
from 0 to that case's maximum: display only). ``DIR/explain.json`` holds per-case attribution
shares (lesion / margin / body / outside), their summary, the receptive field of the model
next to the crop and the lesions, and with ``--sanity`` the cascading-randomisation check.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk
import torch
from matplotlib.figure import Figure

from deepradiomics.bundle import load_bundle, load_member
from deepradiomics.cohort.manifest import build_cases, read_manifest
from deepradiomics.dataset.covariates import apply_encoding
from deepradiomics.dataset.manifest import covariate_table
from deepradiomics.errors import UsageError, UserError
from deepradiomics.explain.field_spec import build_backbone, field_summary
from deepradiomics.explain.geometry import orthogonal_planes, to_original
from deepradiomics.explain.gradcam import METHODS as GRADCAM_METHODS
from deepradiomics.explain.gradcam import default_layer, grad_cam, map_composition
from deepradiomics.explain.localisation import body_mask, localise, summarise
from deepradiomics.explain.occlusion import occlusion
from deepradiomics.explain.receptive_field import receptive_field
from deepradiomics.explain.sanity import cascading_randomisation
from deepradiomics.files import safe_name, write_json
from deepradiomics.inference import cohort_config
from deepradiomics.preprocess.case import model_input, prepare_images
from deepradiomics.preprocess.source import original_image, read_case

METHODS = ("gradcam", "gradcampp", "occlusion")


def attribution(
    method: str,
    model: Any,
    x: Any,
    covariates: Any = None,
    chunk: int = 16,
    mask_channel: bool = False,
) -> Any:
    """``[N, D, H, W]`` map of one model (see ``explain.gradcam`` / ``explain.occlusion``),
    ``chunk`` cases at a time; with ``mask_channel`` occlusion leaves the last (mask) channel
    as it is (the lesion's outline is given, not found in the image)."""
    maps = []
    occluded = x.shape[1] - 1 if mask_channel else None
    for i in range(0, len(x), chunk):
        xi = x[i : i + chunk]
        ci = None if covariates is None else covariates[i : i + chunk]
        if method == "occlusion":
            maps.append(occlusion(model, xi, covariates=ci, channels=occluded))
        else:
            maps.append(grad_cam(model, xi, method=method, covariates=ci)[0])
    return torch.cat(maps)


def composition(
    method: str, models: list[tuple[Any, Any]], x: Any, chunk: int = 16
) -> dict[str, np.ndarray] | None:
    """Each kind of channel's share of each case's Grad-CAM map (``map_composition``) over
    the members, each weighted by its map's mass (the ensemble's map is their mean); None for
    occlusion or a backbone that does not name its channels."""
    if method not in GRADCAM_METHODS:
        return None
    shares: dict[str, Any] = {}
    mass = torch.zeros(len(x))
    for model, cov in models:
        for i in range(0, len(x), chunk):
            c = None if cov is None else cov[i : i + chunk]
            found = map_composition(model, x[i : i + chunk], method=method, covariates=c)
            if found is None:
                return None
            part, m = found
            for kind, share in part.items():
                shares.setdefault(kind, torch.zeros(len(x)))[i : i + chunk] += share * m
            mass[i : i + chunk] += m
    safe = torch.where(mass > 0, mass, torch.ones_like(mass))
    return {k: (v / safe).numpy() for k, v in shares.items()}


def figure(
    path: Path,
    image: np.ndarray,
    mask: np.ndarray | None,
    amap: np.ndarray,
    spacing: tuple[float, float, float],
    title: str,
) -> None:
    """Three orthogonal planes through the lesion centre: image, mask outline, map."""
    top = float(amap.max()) if float(amap.max()) > 0 else 1.0
    fig = Figure(figsize=(9, 3.4))
    for k, (name, take, aspect) in enumerate(orthogonal_planes(image.shape, mask, spacing)):
        ax = fig.add_subplot(1, 3, k + 1)
        ax.imshow(take(image), cmap="gray", aspect=aspect, origin="lower")
        im = ax.imshow(
            np.ma.masked_less_equal(take(amap), 0),
            cmap="inferno",
            alpha=0.55,
            vmin=0,
            vmax=top,
            aspect=aspect,
            origin="lower",
        )
        if mask is not None and take(mask).any():
            ax.contour(take(mask), levels=[0.5], colors="cyan", linewidths=0.8)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=fig.axes, shrink=0.8, label="map (0 to this case's max; display only)")
    fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=90)


def explain_cases(
    run: str | Path,
    cases_csv: str | Path,
    out: str | Path,
    methods: tuple[str, ...] = ("gradcam",),
    sanity: bool = False,
    figures: bool = True,
) -> dict[str, Any]:
    """Explain the cases of ``cases_csv`` with the run's bundle (see module doc)."""
    for m in methods:
        if m not in METHODS:
            raise UsageError(f"--method {m!r}: one of {', '.join(METHODS)}")
    bundle = load_bundle(run)
    csv = Path(cases_csv)
    if not csv.is_file():
        raise UsageError(f"cases file not found: {csv}")
    manifest = read_manifest(csv, cohort_config(bundle, csv), targets=False)
    cases = build_cases(manifest)
    cols = manifest.columns
    table = covariate_table(cases, cols.covariates_numeric, cols.covariates_categorical)
    return explain_case_list(bundle, cases, table, Path(out), methods, sanity, figures)


def explain_case_list(
    bundle: Any,
    cases: list[Any],
    covariates: Any,
    out: Path,
    methods: tuple[str, ...],
    sanity: bool = False,
    figures: bool = True,
    max_sanity_cases: int = 8,
) -> dict[str, Any]:
    """Maps, figures and ``explain.json`` for ``cases`` (``Case`` objects) with their
    covariate table (one row per case, in order), using ``bundle``'s members."""
    out.mkdir(parents=True, exist_ok=True)
    plan = bundle.plan
    prepared, references, rows, failures = [], [], [], {}
    reading = {m.name: (m.kind, m.suv) for m in plan.modalities}
    first = plan.modalities[0]
    for i, case in enumerate(cases):
        try:
            images, mask = read_case(case, reading)
            prepared.append((case, prepare_images(case.case_id, images, mask, plan)))
            references.append(original_image(case, first.name, first.kind))
            rows.append(i)
        except UserError as err:
            failures[case.case_id] = str(err)
            print(f"error: {err}", file=sys.stderr)
    if not prepared:
        raise UserError("no case to explain could be prepared")
    mask_channel = bundle.cfg.preprocess.mask_channel
    inputs = [model_input(p, mask_channel, f"case {c.case_id}") for c, p in prepared]
    x = torch.from_numpy(np.stack(inputs))
    cov_table = None if covariates is None else covariates.iloc[rows].reset_index(drop=True)
    models = []
    # members of folds planned otherwise (plans fitted on other training parts) work on
    # another grid, where their maps cannot be averaged with these: they are left out
    same_plan = [m for m in bundle.members if bundle.plan_of(m) == plan]
    for member in same_plan:
        model = load_member(bundle, member).eval()
        cov = (
            None
            if member.encoding is None or cov_table is None
            else torch.from_numpy(apply_encoding(cov_table, member.encoding)).float()
        )
        models.append((model, cov))
    spacing = tuple(float(s) for s in plan.spacing)
    per_case: dict[str, dict[str, Any]] = {c.case_id: {} for c, _ in prepared}
    summary: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for method in methods:
        start = time.perf_counter()
        maps = torch.stack(
            [attribution(method, m, x, cov, mask_channel=mask_channel) for m, cov in models]
        )
        maps = maps.mean(0).numpy()
        kinds = composition(method, models, x)
        locs = []
        for i, ((case, prep), ref, amap) in enumerate(
            zip(prepared, references, maps, strict=False)
        ):
            name = f"{safe_name(case.case_id)}_{method}"
            sitk.WriteImage(to_original(amap, prep.meta, ref), str(out / f"{name}.nii.gz"))
            loc = localise(amap, prep.mask, body_mask(prep.image[0]), spacing)
            locs.append(loc)
            per_case[case.case_id][method] = {
                **loc.to_dict(),
                "map_max": float(amap.max()),
                "file": f"{name}.nii.gz",
                **({"composition": {k: float(v[i]) for k, v in kinds.items()}} if kinds else {}),
            }
            if figures:
                figure(
                    out / f"{name}.png",
                    prep.image[0],
                    prep.mask,
                    amap,
                    spacing,
                    f"{case.case_id}: {method} (ensemble of {len(models)})",
                )
        seconds[method] = round(time.perf_counter() - start, 2)
        summary[method] = summarise(locs)
    result: dict[str, Any] = {
        "methods": list(methods),
        "members": len(models),
        "members_other_plan": len(bundle.members) - len(same_plan),
        "cases": per_case,
        "localisation": summary,
        "failures": failures,
        "seconds": seconds,
        "display_scaling": "figures: 0 to each case's map maximum; NIfTI maps are raw "
        "(members' mean, score units), zero outside the crop",
    }
    if set(methods) & set(GRADCAM_METHODS):
        result["gradcam_layer"] = default_layer(models[0][0], tuple(x.shape[1:]))
    backbone = build_backbone(
        bundle.cfg.model.name,
        dict(bundle.cfg.model.kwargs),
        bundle.spacing or spacing,
        bundle.in_channels,
    )
    lesions = [
        np.ptp(np.argwhere(p.mask), axis=0) + 1
        for _, p in prepared
        if p.mask is not None and p.mask.any()
    ]
    lesion_mm = (
        tuple(
            round(float(v * s), 2)
            for v, s in zip(np.median(lesions, axis=0), spacing, strict=False)
        )
        if lesions
        else None
    )
    result["receptive_field"] = field_summary(
        receptive_field(backbone, plan.shape, spacing, bundle.in_channels),
        spacing,
        plan.crop_mm,
        plan.shape,
        lesion_mm,
    )
    if sanity:  # on the first member: the check is about the method, not the ensemble
        model, cov = models[0]
        xs = x[:max_sanity_cases]
        cs = None if cov is None else cov[:max_sanity_cases]
        result["sanity"] = {
            m: cascading_randomisation(
                model,
                xs,
                lambda mod, v, m=m: attribution(m, mod, v, cs, mask_channel=mask_channel),
                m,
            ).to_dict()
            for m in methods
        }
    write_json(out / "explain.json", result, indent=1)
    return result


PER_GROUP = 2  # cases per group (true positive, false positive, false negative) in a run


def pick_cases(
    predictions: Any, threshold: float | None, per_group: int = PER_GROUP
) -> list[tuple[str, str, float]]:
    """``(case_id, group, probability)``: the most confident true and false positives and
    the most confidently missed positives of the out-of-fold CNN predictions."""
    t = 0.5 if threshold is None else float(threshold)
    p, y = predictions["cnn_prob"].astype(float), predictions["y_true"].astype(float)
    groups = {
        "true positive": (y == 1) & (p >= t),
        "false positive": (y == 0) & (p >= t),
        "false negative": (y == 1) & (p < t),
    }
    picked = []
    for group, sel in groups.items():
        rows = predictions[sel].assign(picked_prob=p[sel])
        rows = rows.sort_values("picked_prob", ascending=group == "false negative").head(per_group)
        picked += [
            (str(r.case_id), group, round(float(r.picked_prob), 4)) for r in rows.itertuples()
        ]
    return picked


def explain_run(
    run_dir: Path, arrays: Any, threshold: float | None, progress: bool = False
) -> dict[str, Any] | None:
    """Grad-CAM of the run's ensemble on a few TPs / FPs / FNs (binary CSV cohorts), with the
    sanity check and the receptive field: ``RUN/explain/`` and ``metrics.json["explain"]``."""
    if arrays.task != "binary" or arrays.plan is None or not arrays.cases:
        return None
    predictions = pd.read_csv(run_dir / "predictions.csv", dtype={"case_id": str})
    picked = pick_cases(predictions, threshold)
    if not picked:
        return None
    position = {c.case_id: i for i, c in enumerate(arrays.cases)}
    rows = [position[cid] for cid, _, _ in picked]
    covariates = None if arrays.covariates is None else arrays.covariates.iloc[rows]
    result = explain_case_list(
        load_bundle(run_dir / "bundle"),
        [arrays.cases[i] for i in rows],
        covariates,
        run_dir / "explain",
        ("gradcam",),
        sanity=True,
    )
    for cid, group, prob in picked:
        if cid in result["cases"]:
            result["cases"][cid].update(group=group, prob=prob)
    write_json(run_dir / "explain" / "explain.json", result, indent=1)
    return {
        k: result[k]
        for k in (
            "sanity",
            "localisation",
            "receptive_field",
            "cases",
            "seconds",
            "display_scaling",
            "gradcam_layer",
        )
        if k in result
    }
