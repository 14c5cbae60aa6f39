"""What splits.csv says: per-fold role counts and the patient-leak check.

The check is recomputed from the saved assignment (not trusted from the runner): within a
fold, a patient with cases in ``test`` and in ``train``/``val`` is a leak that invalidates
the test estimate; a patient in both ``train`` and ``val`` only weakens early stopping.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

ROLES = ("train", "val", "test")
MAX_EXAMPLES = 3


@dataclass(frozen=True)
class Crossing:
    """Patients of one fold whose cases sit in more than one role."""

    fold: int
    roles: tuple[str, ...]
    n_patients: int
    example_cases: tuple[str, ...]  # one case id per patient, at most MAX_EXAMPLES

    def describe(self) -> str:
        examples = ", ".join(f"'{c}'" for c in self.example_cases)
        more = " and others" if self.n_patients > len(self.example_cases) else ""
        who = "patient" if self.n_patients == 1 else "patients"
        return (
            f"fold {self.fold}: {self.n_patients} {who} with cases in both "
            f"{' and '.join(self.roles)} (the patient of case {examples}{more})"
        )


@dataclass(frozen=True)
class LeakCheck:
    test_leaks: list[Crossing]  # patient in test and in train/val of the same fold
    val_leaks: list[Crossing]  # patient in train and val (no test) of the same fold

    @property
    def ok(self) -> bool:
        return not self.test_leaks


def patient_leaks(splits: pd.DataFrame) -> LeakCheck:
    """Patients crossing roles within a fold (see the module docstring)."""
    test, val = [], []
    for fold, part in splits.groupby("fold", sort=True):
        roles = part.groupby("patient_id", sort=False)["role"].agg(lambda r: frozenset(r))
        first_case = part.groupby("patient_id", sort=False)["case_id"].first()
        crossed = roles[roles.map(len) > 1]
        has_test = crossed.map(lambda r: "test" in r).astype(bool)
        for sel, bucket in ((crossed[has_test], test), (crossed[~has_test], val)):
            if sel.empty:
                continue
            role_set = sorted(set().union(*sel), key=ROLES.index)
            bucket.append(
                Crossing(
                    fold=int(fold),
                    roles=tuple(role_set),
                    n_patients=len(sel),
                    example_cases=tuple(first_case[sel.index[:MAX_EXAMPLES]].astype(str)),
                )
            )
    return LeakCheck(test, val)


def outcome_count(task: str, truth: pd.DataFrame | None) -> tuple[str, pd.Series] | None:
    """("positives" | "events", per-case 0/1 indexed by case_id) for binary/survival tasks."""
    if truth is None:
        return None
    truth = truth.drop_duplicates("case_id")
    if task == "binary" and "y_true" in truth.columns:
        return "positives", (truth.set_index("case_id")["y_true"] == 1).astype(int)
    if task == "survival" and "event" in truth.columns:
        return "events", (truth.set_index("case_id")["event"] != 0).astype(int)
    return None


def held_out_label(part: pd.DataFrame, by_site: bool) -> str:
    """The fold's held-out group: the ``held_out`` column, else (``by_site``, for
    leave-one-site-out) the test cases' site(s)."""
    if "held_out" in part.columns:
        values = part["held_out"].dropna().astype(str)
        values = values[values != ""]
        if len(values):
            return ", ".join(sorted(values.unique()))
    if by_site and "site" in part.columns:
        sites = part.loc[part["role"] == "test", "site"].dropna().astype(str).unique()
        return ", ".join(sorted(sites))
    return ""


def fold_summary(
    splits: pd.DataFrame, task: str, truth: pd.DataFrame | None, by_site: bool = False
) -> pd.DataFrame:
    """One row per fold: held-out group, then cases / patients / outcomes per role.

    Outcome counts (positives or events) come from ``truth`` (predictions.csv) and are
    missing (``NaN``) for a role with cases absent from it (e.g. training cases of a holdout).
    ``by_site``: name each fold's held-out site(s) (leave-one-site-out).
    """
    counted = outcome_count(task, truth)
    rows = []
    for fold, part in splits.groupby("fold", sort=True):
        row: dict = {"fold": int(fold), "held_out": held_out_label(part, by_site)}
        for role in ROLES:
            cases = part[part["role"] == role]
            row[f"{role}_cases"] = len(cases)
            row[f"{role}_patients"] = cases["patient_id"].nunique()
            if counted is not None:
                values = counted[1].reindex(cases["case_id"])
                row[f"{role}_{counted[0]}"] = int(values.sum()) if values.notna().all() else np.nan
        rows.append(row)
    return pd.DataFrame(rows)
