"""A cohort through preprocessing: fingerprint, plan, prepare every case into the cache.

``prepare_cohort`` runs two parallel passes over the cases (one process pool for both):

1. fingerprint: hash each case's files, then reuse its cached fingerprint or read the
   files once and compute it;
2. after ``plan.make_plan`` (or with a given plan): reuse the prepared case from the cache
   when its key (content + plan) is there, else ``case.apply_plan`` and store it.

A case that fails (unreadable file, empty mask, any error) is reported as a
``CaseFailure`` with its reason; the others still finish, and everything finished is
already in the cache, so a rerun only redoes what is missing. ``deepradiomics preprocess``
(``cli``) runs ``prepare_experiment`` on ``config_for_source``.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepradiomics.cohort.manifest import Case, build_cases, read_manifest
from deepradiomics.config import (
    CohortConfig,
    ExperimentConfig,
    ModalityConfig,
    PreprocessConfig,
    load_config,
)
from deepradiomics.errors import UsageError, UserError
from deepradiomics.preprocess.cache import CaseCache, case_key, content_digest, fingerprint_key
from deepradiomics.preprocess.case import apply_plan
from deepradiomics.preprocess.fingerprint import CaseFingerprint, Fingerprint, fingerprint_case
from deepradiomics.preprocess.parallel import Outcome, case_pool, guarded, run_jobs
from deepradiomics.preprocess.plan import Plan, make_plan

FINGERPRINT_FILE = "fingerprint.json"
PLAN_FILE = "plan.json"
INDEX_FILE = "cases.json"


@dataclass(frozen=True)
class CaseFailure:
    """A case that could not be prepared, and why."""

    case_id: str
    line: int
    stage: str  # fingerprint | preprocess
    reason: str
    detail: str | None = None  # traceback of unexpected errors (not user errors)

    def __str__(self) -> str:
        return f"case {self.case_id} (line {self.line}): {self.stage}: {self.reason}"


def _fingerprint_one(
    case: Case, modalities: Mapping[str, ModalityConfig], cache_root: Path
) -> tuple[tuple[str, CaseFingerprint], bool]:
    reading = {m: (c.kind, c.suv) for m, c in modalities.items()}
    digest = content_digest(case, list(modalities))
    cache, key = CaseCache(cache_root), fingerprint_key(digest, reading)
    record = cache.load_fingerprint(key)
    if record is not None:
        return (digest, CaseFingerprint.from_dict({**record, "case_id": case.case_id})), True
    fp = fingerprint_case(case, modalities)
    record = asdict(fp)
    record.pop("case_id")  # the cache is keyed by content; the id belongs to the manifest
    cache.save_fingerprint(key, record)
    return (digest, fp), False


def _fingerprint_job(
    case: Case, modalities: Mapping[str, ModalityConfig], cache_root: Path
) -> Outcome:
    return guarded(_fingerprint_one, case, modalities, cache_root)


def _prepare_one(case: Case, plan: Plan, digest: str, cache_root: Path) -> tuple[str, bool]:
    cache, key = CaseCache(cache_root), case_key(digest, plan)
    if cache.has_case(key):
        return key, True
    cache.save_case(key, apply_plan(case, plan))
    return key, False


def _prepare_job(case: Case, plan: Plan, digest: str, cache_root: Path) -> Outcome:
    return guarded(_prepare_one, case, plan, digest, cache_root)


@dataclass
class PreparedCohort:
    """The prepared cases of a cohort: the plan, the fingerprint and the cache index."""

    plan: Plan
    fingerprint: Fingerprint
    cache_dir: Path
    keys: dict[str, str]  # case_id -> cache key, prepared cases only, manifest order
    failures: list[CaseFailure] = field(default_factory=list)
    computed: int = 0
    reused: int = 0

    @property
    def case_ids(self) -> list[str]:
        return list(self.keys)

    def load_case(self, case_id: str) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
        """``(image [C, D, H, W] float32, mask [D, H, W] uint8 or None, meta)``."""
        if case_id not in self.keys:
            raise KeyError(f"case {case_id} is not among the prepared cases")
        case = CaseCache(self.cache_dir).load_case(self.keys[case_id])
        case.meta["case_id"] = case_id  # same files may serve two ids
        return case.image, case.mask, case.meta

    def meta(self, case_id: str) -> dict[str, Any]:
        """A prepared case's metadata without loading its arrays."""
        return {**CaseCache(self.cache_dir).load_meta(self.keys[case_id]), "case_id": case_id}

    def load_all(
        self, case_ids: Sequence[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
        """Every prepared case stacked: images ``[N, C, D, H, W]``, masks ``[N, D, H, W]``
        (``None`` unless every case has one) and the case ids, in order."""
        ids = list(case_ids) if case_ids is not None else self.case_ids
        n, c = len(ids), len(self.plan.modalities)
        images = np.empty((n, c, *self.plan.shape), dtype=np.float32)
        masks: np.ndarray | None = np.empty((n, *self.plan.shape), dtype=np.uint8)
        for i, cid in enumerate(ids):
            images[i], mask, _ = self.load_case(cid)
            if mask is None:
                masks = None
            elif masks is not None:
                masks[i] = mask
        return images, masks, ids

    def save(self, out_dir: str | Path) -> list[Path]:
        """Write ``fingerprint.json``, ``plan.json`` and ``cases.json`` (the index)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.fingerprint.save(out / FINGERPRINT_FILE)
        self.plan.save(out / PLAN_FILE)
        index = {
            "cache_dir": str(self.cache_dir.resolve()),
            "cases": self.keys,
            "failures": [asdict(f) for f in self.failures],
        }
        (out / INDEX_FILE).write_text(json.dumps(index, indent=1))
        return [out / FINGERPRINT_FILE, out / PLAN_FILE, out / INDEX_FILE]

    @classmethod
    def open(cls, out_dir: str | Path) -> PreparedCohort:
        """Reopen what ``save`` wrote (the cache must still be where it was)."""
        out = Path(out_dir)
        path = out / INDEX_FILE
        if not path.is_file():
            raise UserError(f"{out}: no {INDEX_FILE}; run deepradiomics preprocess first")
        index = json.loads(path.read_text())
        return cls(
            plan=Plan.load(out / PLAN_FILE),
            fingerprint=Fingerprint.load(out / FINGERPRINT_FILE),
            cache_dir=Path(index["cache_dir"]),
            keys=dict(index["cases"]),
            failures=[CaseFailure(**f) for f in index["failures"]],
        )


@dataclass
class FingerprintedCases:
    """The first pass over a cohort: each readable case's content digest and fingerprint.

    Planning needs only this; ``prepare_planned`` then prepares the cases under any plan
    (one per fold, say) without reading or hashing the files again.
    """

    cases: list[Case]  # every case given, manifest order
    modalities: dict[str, ModalityConfig]
    cache_dir: Path
    digests: dict[str, str]  # case_id -> content digest, readable cases only
    fingerprint: Fingerprint  # readable cases, manifest order
    failures: list[CaseFailure] = field(default_factory=list)

    @property
    def case_ids(self) -> list[str]:
        return [c.case_id for c in self.cases if c.case_id in self.digests]

    def plan(self, preprocess: PreprocessConfig, case_ids: Collection[str] | None = None) -> Plan:
        """``make_plan`` on the fingerprints of ``case_ids`` only (default: every readable case)."""
        fp = self.fingerprint if case_ids is None else self.fingerprint.subset(case_ids)
        if not fp.cases:
            reasons = "; ".join(str(f) for f in self.failures[:3])
            raise UserError(
                f"no case could be read ({len(self.failures)} failed): {reasons}"
                if self.failures and case_ids is None
                else "cannot plan preprocessing: none of the planning cases could be read"
            )
        return make_plan(fp, preprocess, self.modalities)


def _check_cases(cases: Sequence[Case], modalities: Mapping[str, ModalityConfig]) -> None:
    if not cases:
        raise UserError("the cohort has no case to preprocess")
    seen: dict[str, int] = {}
    for c in cases:
        if c.case_id in seen:
            raise UserError(
                f"case_id '{c.case_id}' appears twice (lines {seen[c.case_id]} and {c.line})"
            )
        seen[c.case_id] = c.line
    if not modalities:
        raise UserError("no image modality to preprocess (cohort.modalities is empty)")


def _failure(case: Case, stage: str, out: Outcome) -> CaseFailure:
    return CaseFailure(case.case_id, case.line, stage, out.reason or "", out.detail)


def fingerprint_cases(
    cases: Sequence[Case],
    modalities: Mapping[str, ModalityConfig],
    cache_dir: str | Path,
    *,
    workers: int = 1,
    progress: bool = True,
) -> FingerprintedCases:
    """Hash and fingerprint every case (cached by content); unreadable cases are failures."""
    _check_cases(cases, modalities)
    cache_root = Path(cache_dir)
    CaseCache(cache_root).sweep_temp_files()
    failures: list[CaseFailure] = []
    digests: dict[str, str] = {}
    fps: dict[int, CaseFingerprint] = {}
    with case_pool(workers, len(cases), __name__) as pool:
        args = [(c, dict(modalities), cache_root) for c in cases]
        for i, out in run_jobs(_fingerprint_job, args, pool, "fingerprint", progress):
            if out.reason is not None:
                failures.append(_failure(cases[i], "fingerprint", out))
            else:
                digests[cases[i].case_id], fps[i] = out.value
    failures.sort(key=lambda f: f.line)
    return FingerprintedCases(
        cases=list(cases),
        modalities=dict(modalities),
        cache_dir=cache_root,
        digests={c.case_id: digests[c.case_id] for c in cases if c.case_id in digests},
        fingerprint=Fingerprint(
            modalities={m: c.kind for m, c in modalities.items()},
            cases=[fps[i] for i in sorted(fps)],
        ),
        failures=failures,
    )


def prepare_planned(
    fingerprinted: FingerprintedCases,
    plan: Plan,
    *,
    workers: int = 1,
    progress: bool = True,
) -> PreparedCohort:
    """Every readable case prepared under ``plan`` (cache entries are keyed by content and
    plan, so cases another plan prepared are never reused for this one)."""
    fc = fingerprinted
    failures = list(fc.failures)
    ok = [c for c in fc.cases if c.case_id in fc.digests]
    keys: dict[str, str] = {}
    counts = {True: 0, False: 0}
    with case_pool(workers, len(ok), __name__) as pool:
        args = [(c, plan, fc.digests[c.case_id], fc.cache_dir) for c in ok]
        for j, out in run_jobs(_prepare_job, args, pool, "preprocess", progress):
            if out.reason is not None:
                failures.append(_failure(ok[j], "preprocess", out))
            else:
                keys[ok[j].case_id] = out.value
                counts[out.cached] += 1
    failures.sort(key=lambda f: f.line)
    return PreparedCohort(
        plan=plan,
        fingerprint=fc.fingerprint,
        cache_dir=fc.cache_dir,
        keys={c.case_id: keys[c.case_id] for c in ok if c.case_id in keys},
        failures=failures,
        computed=counts[False],
        reused=counts[True],
    )


def prepare_cohort(
    cases: Sequence[Case],
    modalities: Mapping[str, ModalityConfig],
    preprocess: PreprocessConfig,
    cache_dir: str | Path,
    *,
    workers: int | None = None,
    plan: Plan | None = None,
    progress: bool = True,
) -> PreparedCohort:
    """Fingerprint, plan from every readable case (unless ``plan`` is given) and prepare
    every case into ``cache_dir``.

    ``modalities`` maps channel names (keys of ``Case.images``) to their settings, in
    channel order: ``Manifest.columns.modalities``. ``workers`` defaults to
    ``preprocess.workers``; 1 runs in this process. Experiments that must plan from
    training cases only call ``fingerprint_cases``, ``FingerprintedCases.plan`` and
    ``prepare_planned`` themselves.
    """
    workers = int(workers or preprocess.workers)
    fc = fingerprint_cases(cases, modalities, cache_dir, workers=workers, progress=progress)
    if plan is None:
        plan = fc.plan(preprocess)
    return prepare_planned(fc, plan, workers=workers, progress=progress)


def prepare_experiment(
    cfg: ExperimentConfig,
    out_dir: str | Path,
    *,
    workers: int | None = None,
    progress: bool = True,
    plan: Plan | None = None,
) -> PreparedCohort:
    """Read the config's manifest, prepare it and save fingerprint / plan / index in ``out_dir``.

    The cache is ``preprocess.cache_dir`` when set, else ``out_dir/cache``.
    """
    if cfg.cohort.path is None:
        raise UserError("cohort.path is not set: nothing to preprocess")
    if cfg.cohort.is_npz:
        raise UserError(
            f"{cfg.cohort.path}: a .npz cohort holds arrays already; nothing to preprocess"
        )
    manifest = read_manifest(cfg.cohort.path, cfg.cohort)
    out = Path(out_dir)
    cache = cfg.preprocess.cache_dir or (out / "cache")
    prepared = prepare_cohort(
        build_cases(manifest),
        manifest.columns.modalities,
        cfg.preprocess,
        cache,
        workers=workers,
        plan=plan,
        progress=progress,
    )
    prepared.save(out)
    return prepared


def config_for_source(source: Path) -> ExperimentConfig:
    """What ``deepradiomics preprocess SOURCE`` prepares: an experiment YAML as it is; a
    cohort CSV with default settings."""
    suffix = source.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return load_config(source)
    if suffix != ".csv":
        raise UsageError(f"{source}: expected an experiment YAML (.yaml) or a cohort CSV (.csv)")
    if not source.is_file():
        raise UserError(f"cohort file not found: {source}")
    try:
        columns = {str(c).strip() for c in pd.read_csv(source, nrows=0).columns}
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise UserError(f"{source}: not a readable CSV: {err}") from None
    # preprocessing needs no outcome: pick a task the CSV's columns satisfy
    task = (
        "binary"
        if "label" in columns
        else "survival"
        if {"time", "event"} <= columns
        else "segmentation"
        if "mask" in columns
        else "binary"
    )
    return ExperimentConfig(cohort=CohortConfig(path=source.resolve(), task=task))


def describe_plan(plan: Plan) -> list[str]:
    """A few human lines about a plan."""
    z, y, x = plan.spacing
    lines = [f"spacing  {z:g} x {y:g} x {x:g} mm (z, y, x): {plan.spacing_rule}"]
    if plan.anisotropic:
        lines.append(
            f"         anisotropic along axis {plan.anisotropic_axis}: use in-plane kernels there"
        )
    shape = " x ".join(str(n) for n in plan.shape)
    if plan.crop_mm is None:
        lines.append(f"crop     whole volume, centred crop/pad to {shape} voxels")
    else:
        crop = " x ".join(f"{c:g}" for c in plan.crop_mm)
        lines.append(f"crop     {crop} mm centred on the mask -> {shape} voxels")
    for m in plan.modalities:
        what = (
            f"[{m.window[0]:g}, {m.window[1]:g}] -> {list(plan.window_range)}"
            if m.window is not None
            else ""
        )
        lines.append(f"channel  {m.name} ({m.kind}): {m.window_source} {what}".rstrip())
    return lines
