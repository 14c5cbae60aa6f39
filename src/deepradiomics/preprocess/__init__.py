"""Preprocessing: fingerprint a cohort, plan, resample / normalise / crop, cache.

Public API (everything else is an implementation detail)::

    from deepradiomics.preprocess import prepare_cohort, prepare_experiment, apply_plan, Plan

    # training / experiments: the whole cohort, cached on disk, parallel over cases
    prepared = prepare_cohort(cases, manifest.columns.modalities, cfg.preprocess,
                              cache_dir, workers=4)          # -> PreparedCohort
    prepared = prepare_experiment(cfg, out_dir)              # same, from an ExperimentConfig;
                                                             # also writes fingerprint.json,
                                                             # plan.json, cases.json
    prepared.plan                       # Plan: spacing, shape, crop, anisotropy, windows
    prepared.failures                   # [CaseFailure(case_id, line, stage, reason)]
    image, mask, meta = prepared.load_case("case_007")       # [C,D,H,W] f32, [D,H,W] u8|None
    images, masks, ids = prepared.load_all()                 # [N,C,D,H,W] in memory
    prepared = PreparedCohort.open(out_dir)                  # reopen a saved run

    # prediction on new cases with the plan saved at training time
    plan = Plan.load(bundle / "plan.json")
    case = apply_plan(new_case, plan)   # PreparedCase(image, mask, meta), no cache

Arrays are ``[z, y, x]`` (D, H, W) in LPS; channels follow the modality order of the
config. Modules: ``fingerprint`` (cohort statistics), ``plan`` (pure planning rules),
``crop`` (grid placement), ``resample`` (SimpleITK), ``normalise`` (CT / MR / PET),
``case`` (one case through a plan), ``cache`` (content-keyed atomic cache), ``pipeline``
(parallel cohort runs and the ``deepradiomics preprocess`` command).
"""

from deepradiomics.preprocess.case import PreparedCase, apply_plan
from deepradiomics.preprocess.fingerprint import Fingerprint
from deepradiomics.preprocess.pipeline import (
    CaseFailure,
    PreparedCohort,
    prepare_cohort,
    prepare_experiment,
)
from deepradiomics.preprocess.plan import Plan, make_plan

__all__ = [
    "CaseFailure",
    "Fingerprint",
    "Plan",
    "PreparedCase",
    "PreparedCohort",
    "apply_plan",
    "make_plan",
    "prepare_cohort",
    "prepare_experiment",
]
