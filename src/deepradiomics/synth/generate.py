"""Write the synthetic multi-site cohort: NIfTI volumes, masks, cohort.csv, ground_truth.csv.

``generate_cohort`` is the library entry (used by ``demo``, by tests and by the
``deepradiomics synth`` subcommand). The generative model is documented in the package
docstring (``deepradiomics.synth``). Output folder::

    OUT/cohort.csv          what a user would have: paths, site, outcome, covariates
    OUT/ground_truth.csv    true risk and phenotype per case (never read by training)
    OUT/synth.json          arguments, site table and risk coefficients
    OUT/images/case_0001_ct.nii.gz, case_0001_pet.nii.gz
    OUT/masks/case_0001_mask.nii.gz

Per-case randomness comes from seeds derived from (seed, patient index) for the anatomy and
lesion and (seed, case index) for the acquisition, so files do not depend on ``workers``.
"""

from __future__ import annotations

import json
import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
from tqdm import tqdm

from deepradiomics.errors import UsageError, UserError
from deepradiomics.synth.anatomy import draw_anatomy, tissue_labels, tissue_maps
from deepradiomics.synth.grid import FineGrid
from deepradiomics.synth.lesion import draw_lesion, render_lesion
from deepradiomics.synth.population import COEF, INTERCEPT, SITE_EFFECT, draw_cohort, n_repeat_scans
from deepradiomics.synth.scanner import acquire_ct, acquire_pet, pet_block
from deepradiomics.synth.sites import MAX_SITES, Site

COHORT_COLUMNS = [
    "case_id",
    "patient_id",
    "site",
    "ct",
    "pet",
    "mask",
    "label",
    "time",
    "event",
    "age",
    "sex",
    "age_band",
]
GZIP_LEVEL = 1  # noisy int16 volumes barely compress further; level 1 is several times faster
_PATIENT_STREAM, _CASE_STREAM = 2, 3


@dataclass(frozen=True)
class CaseTask:
    case_index: int
    case_id: str
    patient: dict
    site: Site
    out: str
    size: int
    pet: bool
    seed: int


def _write(
    arr: np.ndarray, geometry: tuple[tuple[float, ...], tuple[float, ...]], path: Path
) -> None:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(geometry[0])
    img.SetOrigin(geometry[1])
    sitk.WriteImage(img, str(path), True, GZIP_LEVEL)


def render_case(task: CaseTask) -> dict:
    """Render and write one case; returns the realised lesion measurements."""
    p, site = task.patient, task.site
    grid0 = FineGrid.make(task.size, site.pixel_spacing_mm, site.slice_thickness_mm)
    patient_rng = np.random.default_rng(
        np.random.SeedSequence([task.seed, _PATIENT_STREAM, int(p["patient_index"])])
    )
    anat = draw_anatomy(patient_rng, grid0.scale)
    lesion = draw_lesion(p, anat, grid0.extent_mm[0] / 2, grid0.scale, patient_rng)

    rng = np.random.default_rng(np.random.SeedSequence([task.seed, _CASE_STREAM, task.case_index]))
    shift = (
        rng.uniform(-3, 3) * grid0.scale,
        rng.normal(0, 2) * grid0.scale,
        rng.normal(0, 2) * grid0.scale,
    )  # patient positioning of this scan (z, y, x)
    grid = FineGrid.make(task.size, site.pixel_spacing_mm, site.slice_thickness_mm, shift)
    labels = tissue_labels(anat, grid)
    hu, suv = tissue_maps(labels, anat)
    mask_fine, _ = render_lesion(lesion, grid, labels, hu, suv)
    ct, mask = acquire_ct(hu, mask_fine, grid, site, rng)

    out = Path(task.out)
    ct_geom = grid.geometry((grid.slab, 1, 1))
    _write(ct, ct_geom, out / "images" / f"{task.case_id}_ct.nii.gz")
    _write(mask, ct_geom, out / "masks" / f"{task.case_id}_mask.nii.gz")
    if task.pet:
        block = pet_block(grid)
        _write(
            acquire_pet(suv, grid, site, rng),
            grid.geometry(block),
            out / "images" / f"{task.case_id}_pet.nii.gz",
        )
    voxel_ml = float(np.prod(ct_geom[0])) / 1000.0
    world_centre = lesion.centre + np.array(shift)
    return {
        "case_index": task.case_index,
        "lesion_voxels": int(mask.sum()),
        "lesion_volume_ml": round(int(mask.sum()) * voxel_ml, 4),
        "lesion_center_x_mm": round(float(world_centre[2]), 3),
        "lesion_center_y_mm": round(float(world_centre[1]), 3),
        "lesion_center_z_mm": round(float(world_centre[0]), 3),
        "core_offset_mm": round(float(np.linalg.norm(lesion.core_offset)), 3),
        "core_radius_mm": round(lesion.core_radius, 3),
        "heterogeneity_hu": round(lesion.heterogeneity_hu, 3),
        "diameter_mm": round(float(p["diameter_ref_mm"]) * grid.scale, 3),
    }


def _init_worker() -> None:
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)


def _check(cases: int, sites: int, seed: int, confounding: float, size: int, workers: int) -> None:
    problems = []
    if cases < 1:
        problems.append(f"--cases must be at least 1 (got {cases})")
    if not 1 <= sites <= MAX_SITES:
        problems.append(f"--sites must be between 1 and {MAX_SITES} (got {sites})")
    if seed < 0:
        problems.append(f"--seed must be 0 or more (got {seed})")
    if not (math.isfinite(confounding) and 0.0 <= confounding <= 1.0):
        problems.append(f"--confounding must be between 0 and 1 (got {confounding})")
    if not 24 <= size <= 512:
        problems.append(f"--size must be between 24 and 512 voxels (got {size})")
    if workers < 1:
        problems.append(f"--workers must be at least 1 (got {workers})")
    patients = cases - n_repeat_scans(cases)
    if 1 <= cases and sites > patients:
        problems.append(
            f"--sites {sites} needs at least one patient per site; --cases {cases} "
            f"gives {patients} patients"
        )
    if problems:
        raise UsageError("; ".join(problems))


def _prepare_folder(out: Path) -> None:
    """Create ``out``; a previous synth output there is replaced, anything else is refused."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / "synth.json").is_file():
            raise UserError(
                f"{out}: folder is not empty and holds no synthetic cohort "
                "(no synth.json); choose a new or empty folder"
            )
        for name in ("cohort.csv", "ground_truth.csv", "synth.json"):
            (out / name).unlink(missing_ok=True)
        for sub in ("images", "masks"):
            for f in (out / sub).glob("case_*.nii.gz"):
                f.unlink()
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)


def _run(tasks: list[CaseTask], workers: int, progress: bool) -> list[dict]:
    bar = tqdm(total=len(tasks), desc="synth", unit="case", disable=not progress)
    results: list[dict] = []
    try:
        if workers == 1:
            for t in tasks:
                results.append(render_case(t))
                bar.update()
        else:
            # fork where the platform has it (as classical.features does): workers start at
            # once and, unlike spawn, do not re-run a caller script that lacks a __main__ guard
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker) as pool:
                for r in pool.map(render_case, tasks, chunksize=1):
                    results.append(r)
                    bar.update()
    finally:
        bar.close()
    return results


def generate_cohort(
    out: str | Path,
    cases: int = 300,
    sites: int = 4,
    seed: int = 0,
    confounding: float = 0.0,
    size: int = 96,
    pet: bool = True,
    workers: int = 2,
    progress: bool = False,
) -> Path:
    """Write the synthetic cohort to ``out``; returns the path of ``cohort.csv``.

    Identical arguments give identical files whatever ``workers`` is. A tiny cohort for tests
    (``cases=12, size=32``) takes a couple of seconds.
    """
    _check(cases, sites, seed, confounding, size, workers)
    out = Path(out)
    _prepare_folder(out)
    site_table, table = draw_cohort(cases, sites, seed, confounding)
    width = max(4, len(str(cases)))
    table.insert(1, "case_id", [f"case_{i + 1:0{width}d}" for i in table["case_index"]])
    table.insert(2, "patient_id", [f"pat_{i + 1:0{width}d}" for i in table["patient_index"]])
    (out / "synth.json").write_text(
        json.dumps(
            {
                "generator": "deepradiomics.synth",
                "args": {
                    "cases": cases,
                    "sites": sites,
                    "seed": seed,
                    "confounding": confounding,
                    "size": size,
                    "pet": pet,
                },
                "intercept": INTERCEPT,
                "coefficients": COEF,
                "site_effect": SITE_EFFECT,
                "sites": [s.as_dict() for s in site_table],
            },
            indent=2,
        )
        + "\n"
    )

    tasks = [
        CaseTask(
            int(r["case_index"]),
            r["case_id"],
            r.to_dict(),
            site_table[int(r["site_index"])],
            str(out),
            size,
            pet,
            seed,
        )
        for _, r in table.iterrows()
    ]
    results = pd.DataFrame(_run(tasks, min(workers, cases), progress))
    table = table.merge(results, on="case_index", validate="one_to_one")

    table["ct"] = [f"images/{c}_ct.nii.gz" for c in table["case_id"]]
    table["pet"] = [f"images/{c}_pet.nii.gz" for c in table["case_id"]]
    table["mask"] = [f"masks/{c}_mask.nii.gz" for c in table["case_id"]]
    sites_df = pd.DataFrame([s.as_dict() for s in site_table]).rename(columns={"name": "site"})
    acquisition = ["slice_thickness_mm", "pixel_spacing_mm", "kernel", "noise_hu", "hu_offset"]
    truth = table.merge(sites_df[["site", *acquisition]], on="site", how="left")
    truth_cols = [
        "case_id",
        "patient_id",
        "site",
        "scan",
        "label",
        "time",
        "event",
        "age",
        "sex",
        "risk",
        "eta",
        "eta_visible",
        "eta_spatial",
        "eta_clinical",
        "eta_site",
        "diameter_mm",
        "elongation",
        "lobulation",
        "spiculation",
        "heterogeneity",
        "heterogeneity_hu",
        "necrosis",
        "core_radius_mm",
        "core_eccentricity",
        "core_offset_mm",
        "texture_anisotropy",
        "texture_angle_deg",
        "pet_uptake_suv",
        "time_event",
        "time_censor",
        "lesion_voxels",
        "lesion_volume_ml",
        "lesion_center_x_mm",
        "lesion_center_y_mm",
        "lesion_center_z_mm",
        *acquisition,
    ]
    truth[truth_cols].round(6).to_csv(out / "ground_truth.csv", index=False)
    cols = COHORT_COLUMNS if pet else [c for c in COHORT_COLUMNS if c != "pet"]
    table[cols].to_csv(out / "cohort.csv", index=False)  # written last: marks a complete cohort
    return out / "cohort.csv"
