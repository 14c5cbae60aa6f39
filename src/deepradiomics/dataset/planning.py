"""Preprocessing plans fitted on training cases only: one per fold of an experiment.

Target spacing, crop and CT percentile windows are statistics of the cases
(``preprocess.plan``). A plan made from every case would let the test cases, and under
leave-one-site-out the left-out site, shape the inputs of the model tested on them.
``fold_cohorts`` fits each fold's plan on that fold's training part (its train and val
roles) and prepares every case under it, so a fold's test cases are preprocessed as
``predict`` preprocesses a new case: with a plan that never saw them.

Folds whose plans are equal share one prepared cohort in memory: always so when every plan
value is configured (``plan.fitted_parts`` empty), as in the demo. The cache is keyed by
content and plan, so two plans never share prepared arrays and a rerun reuses them all.
A case that fails under any fold's plan is left out of every fold (the split keeps the
rest), so every fold sees the same cases.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from deepradiomics.dataset.arrays import CohortArrays
from deepradiomics.dataset.manifest import CsvSource, plan_fit
from deepradiomics.errors import UserError
from deepradiomics.evaluate.splits import SplitAssignment
from deepradiomics.preprocess.pipeline import CaseFailure, PreparedCohort, prepare_planned
from deepradiomics.preprocess.plan import fitted_parts

TRAINING_ROLES = ("train", "val")


@dataclass(frozen=True)
class FoldCohorts:
    """The cohort as each fold's model sees it: ``by_fold[k]`` holds every case prepared
    under fold k's plan (``plan_fit``: what that plan saw); folds with equal plans share
    their tensors."""

    by_fold: dict[int, CohortArrays]
    source: CsvSource | CohortArrays | None = None  # to plan another split's folds alike

    def replanned(self, splits: SplitAssignment) -> FoldCohorts:
        """The same cases under the plans of ``splits``' folds (e.g. the other split scheme
        of the leave-one-site-out gap), each fitted on that fold's training part."""
        if self.source is None:
            return FoldCohorts({k: self.reference for k in splits.folds})
        kept, cohorts = fold_cohorts(self.source, splits)
        if len(kept.case_ids) != len(splits.case_ids):
            lost = sorted(set(splits.case_ids) - set(kept.case_ids))
            raise UserError(
                f"cases {', '.join(lost[:5])} could not be prepared under another fold's plan"
            )
        return cohorts

    def __getitem__(self, fold: int) -> CohortArrays:
        return self.by_fold[fold]

    @property
    def reference(self) -> CohortArrays:
        """The first fold's cohort: ids, targets, sites and covariates are every fold's."""
        return self.by_fold[min(self.by_fold)]

    @property
    def distinct_plans(self) -> int:
        return len({id(a.data.images) for a in self.by_fold.values()})

    def record(self) -> dict[str, Any] | None:
        """``metrics.json["plan"]``: what each fold's plan saw; ``None`` without plans."""
        if self.reference.plan is None:
            return None
        first = self.reference.plan_fit or {}
        per_fold = len(self.by_fold) > 1 and first["scope"] != "every case"
        return {
            "fit_on": "training part of each fold" if per_fold else first["scope"],
            "fitted": first.get("fitted", []),
            "distinct_plans": self.distinct_plans,
            "folds": {str(k): a.plan_fit for k, a in sorted(self.by_fold.items())},
        }


def training_part(splits: SplitAssignment, fold: int) -> list[str]:
    """Case ids in the train and val roles of ``fold``: what its plan may see."""
    t = splits.table
    rows = t[(t["fold"] == fold) & t["role"].isin(TRAINING_ROLES)]
    return rows["case_id"].astype(str).tolist()


def _merged(failures: list[list[CaseFailure]]) -> list[CaseFailure]:
    seen: dict[tuple[str, str], CaseFailure] = {}
    for group in failures:
        for f in group:
            seen.setdefault((f.case_id, f.stage), f)
    return sorted(seen.values(), key=lambda f: f.line)


def fold_cohorts(
    source: CsvSource | CohortArrays, splits: SplitAssignment, on_training_part: bool = True
) -> tuple[SplitAssignment, FoldCohorts]:
    """Each fold's cohort under the plan fitted on its training part, and ``splits``
    restricted to the cases every plan could prepare (see the module docstring). A
    ``.npz`` cohort has no plan: every fold gets it as it is. ``on_training_part=False``:
    one plan from every case for all folds (recorded as such)."""
    if isinstance(source, CohortArrays):
        return splits, FoldCohorts({k: source for k in splits.folds})
    cfg = source.cfg
    fitted = fitted_parts(cfg.preprocess, source.manifest.columns.modalities)
    by_id = {c.case_id: c for c in source.cases}
    prepared: list[PreparedCohort] = []
    fold_plan: dict[int, int] = {}
    fits: dict[int, dict[str, Any]] = {}
    for k in splits.folds:
        part = training_part(splits, k) if on_training_part else list(by_id)
        scope = (
            "every case"
            if not on_training_part
            else "training part"
            if len(splits.folds) == 1
            else f"training part of fold {k}"
        )
        fits[k] = plan_fit(scope, [by_id[i] for i in part], fitted)
        plan = source.fingerprinted.plan(cfg.preprocess, part)
        same = [j for j, p in enumerate(prepared) if p.plan == plan]
        if not same:
            prepared.append(
                prepare_planned(source.fingerprinted, plan, workers=cfg.preprocess.workers)
            )
        fold_plan[k] = same[0] if same else len(prepared) - 1
    failures = _merged([p.failures for p in prepared])
    kept = [c.case_id for c in source.cases if all(c.case_id in p.keys for p in prepared)]
    shared = [source.stack(p, kept, failures=failures) for p in prepared]
    for j, p in enumerate(prepared):
        p.save(source.out if j == 0 else source.out / f"plan_{j}")
    table = splits.table
    kept_splits = SplitAssignment(table[table["case_id"].isin(set(kept))].reset_index(drop=True))
    by_fold = {k: replace(shared[j], plan_fit=fits[k]) for k, j in fold_plan.items()}
    return kept_splits, FoldCohorts(by_fold, source)
