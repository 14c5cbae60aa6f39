"""Patient-grouped splits, scikit-learn style, saved as a table of assignments.

Every splitter returns a :class:`SplitAssignment`: one row per (case, fold) with the case's
role in that fold (``train``, ``val`` or ``test``). All cases of one patient always share a
role within a fold. The ``val`` part (for early stopping) is always carved out of the
training part of its fold, grouped by patient and stratified, so it never touches ``test``.

Splitters:

- :func:`kfold_split`: ``StratifiedGroupKFold`` on the stratum (label; event for survival);
  every case is tested exactly once.
- :func:`leave_one_site_out`: ``LeaveOneGroupOut`` on the site; a patient with cases at
  several sites is assigned to its majority site (with a warning).
- :func:`holdout_split`: one grouped, stratified test set of ``test_fraction`` of patients.
- :func:`official_split`: the split shipped with a cohort (e.g. MedMNIST ``.npz``).

:func:`make_splits` dispatches on ``evaluate.split`` of the experiment config.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import LeaveOneGroupOut, StratifiedGroupKFold, train_test_split

from deepradiomics.config import EvaluateConfig
from deepradiomics.errors import UserError
from deepradiomics.seeds import derive_seed
from deepradiomics.tasks import get_task

ROLES = ("train", "val", "test")
COLUMNS = ("case_id", "patient_id", "fold", "role", "held_out")
_OFFICIAL_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}


@dataclass(frozen=True)
class SplitAssignment:
    """Which case plays which role in which fold.

    ``table`` has the columns of :data:`COLUMNS`, one row per (case, fold), cases in their
    original order within each fold. ``held_out`` names the left-out site for
    leave-one-site-out and is empty otherwise.
    """

    table: pd.DataFrame

    @property
    def folds(self) -> list[int]:
        return sorted(int(f) for f in self.table["fold"].unique())

    @property
    def case_ids(self) -> np.ndarray:
        """Case ids in their original order."""
        return self.table["case_id"].drop_duplicates().to_numpy()

    def roles(self, fold: int) -> np.ndarray:
        """Role of each case (aligned with :attr:`case_ids`) in ``fold``."""
        part = self.table[self.table["fold"] == fold].set_index("case_id")["role"]
        return part.reindex(self.case_ids).to_numpy()

    def indices(self, fold: int, role: str, case_ids: Sequence[str] | None = None) -> np.ndarray:
        """Positions of the ``role`` cases of ``fold`` in ``case_ids`` (default: the split's)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        part = self.table[(self.table["fold"] == fold) & (self.table["role"] == role)]
        order = self.case_ids if case_ids is None else np.asarray(case_ids, dtype=str)
        position = pd.Series(np.arange(len(order)), index=order)
        missing = ~part["case_id"].isin(position.index)
        if missing.any():
            raise UserError(
                f"split assignment names case '{part['case_id'][missing].iloc[0]}' "
                "that is not in the cohort"
            )
        return np.sort(position[part["case_id"]].to_numpy())

    def held_out(self, fold: int) -> str:
        """Name of the left-out group of ``fold`` (the site for leave-one-site-out), or ''."""
        return str(self.table.loc[self.table["fold"] == fold, "held_out"].iloc[0])

    def to_csv(self, path: str | Path) -> None:
        self.table.to_csv(path, index=False)

    @classmethod
    def read_csv(cls, path: str | Path) -> SplitAssignment:
        """Reload a saved assignment; a malformed file is a ``UserError`` naming it."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"split file not found: {path}")
        try:
            table = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise UserError(f"{path}: not a readable CSV: {err}") from None
        missing = [c for c in COLUMNS if c not in table.columns]
        if missing:
            raise UserError(f"{path}: missing column(s) {', '.join(missing)}")
        bad_fold = ~table["fold"].str.fullmatch(r"\d+")
        if bad_fold.any():
            row = int(np.flatnonzero(bad_fold)[0])
            raise UserError(
                f"{path}: line {row + 2}: column fold: '{table['fold'][row]}' is not a fold number"
            )
        table["fold"] = table["fold"].astype(int)
        split = cls(table[list(COLUMNS)])
        split.validate(str(path))
        return split

    def validate(self, source: str = "split assignment") -> None:
        """Check the invariants: known roles, each case once per fold, patients on one side."""
        t = self.table
        bad = ~t["role"].isin(ROLES)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise UserError(
                f"{source}: line {row + 2}: column role: '{t['role'].iloc[row]}' is not one of "
                f"{', '.join(ROLES)}"
            )
        n_cases = t["case_id"].nunique()
        for fold, part in t.groupby("fold"):
            dup = part["case_id"].duplicated()
            if dup.any():
                raise UserError(
                    f"{source}: fold {fold}: case '{part['case_id'][dup].iloc[0]}' appears twice"
                )
            if len(part) != n_cases:
                raise UserError(f"{source}: fold {fold} lists {len(part)} of the {n_cases} cases")
            mixed = part.groupby("patient_id")["role"].nunique() > 1
            if mixed.any():
                case = part.loc[part["patient_id"] == mixed[mixed].index[0], "case_id"].iloc[0]
                raise UserError(
                    f"{source}: fold {fold}: the patient of case '{case}' has cases in more "
                    "than one role"
                )


def stratification_labels(
    task: str, target: Sequence | None = None, event: Sequence | None = None, n_bins: int = 4
) -> np.ndarray | None:
    """What to stratify on (``Task.stratifier``): the label (classification), the event
    (survival), quantile bins of the target (regression), nothing (segmentation)."""
    stratifier = get_task(task).stratifier
    if stratifier == "label":
        return None if target is None else np.asarray(target).astype(str)
    if stratifier == "event":
        return None if event is None else np.asarray(event).astype(int).astype(str)
    if stratifier == "quantiles" and target is not None:
        values = pd.Series(np.asarray(target, dtype=float))
        return pd.qcut(values, q=n_bins, labels=False, duplicates="drop").astype(str).to_numpy()
    return None


def _check_inputs(
    case_ids: Sequence, patient_ids: Sequence, strata: Sequence | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cases = np.asarray(case_ids).astype(str)
    patients = np.asarray(patient_ids).astype(str)
    if cases.ndim != 1 or len(cases) == 0:
        raise UserError("splits need at least one case")
    if len(patients) != len(cases):
        raise UserError(f"splits: {len(cases)} case ids but {len(patients)} patient ids")
    dup = pd.Series(cases).duplicated()
    if dup.any():
        raise UserError(f"splits: case id '{cases[dup.to_numpy()][0]}' appears twice")
    empty = (patients == "") | (cases == "")
    if empty.any():
        raise UserError(f"splits: case '{cases[empty][0]}' has no case or patient id")
    labels = np.zeros(len(cases), dtype=str) if strata is None else np.asarray(strata).astype(str)
    if len(labels) != len(cases):
        raise UserError(f"splits: {len(cases)} cases but {len(labels)} stratification labels")
    return cases, patients, labels


def _patient_strata(patients: np.ndarray, labels: np.ndarray) -> pd.Series:
    """One stratum per patient: its most frequent label (ties: the smallest)."""
    counts = pd.DataFrame({"p": patients, "s": labels}).value_counts(["p", "s"]).reset_index()
    counts = counts.sort_values(["p", "count", "s"], ascending=[True, False, True])
    return counts.drop_duplicates("p").set_index("p")["s"]


def grouped_holdout(
    patients: np.ndarray, labels: np.ndarray, fraction: float, seed: int, what: str = "held-out"
) -> np.ndarray:
    """Boolean mask of the cases whose patients fall in a stratified ``fraction`` of patients."""
    pstrata = _patient_strata(patients, labels)
    if len(pstrata) < 2:
        raise UserError(
            f"splits: the {what} set needs at least 2 patients to split, got {len(pstrata)}"
        )
    try:
        _, held = train_test_split(
            pstrata.index.to_numpy(),
            test_size=fraction,
            stratify=pstrata.to_numpy(),
            random_state=seed,
        )
    except ValueError:  # a stratum too small to be represented on both sides
        warnings.warn(
            f"splits: too few patients per class to stratify the {what} split "
            f"({len(pstrata)} patients); splitting by patient without stratification",
            UserWarning,
            stacklevel=2,
        )
        _, held = train_test_split(pstrata.index.to_numpy(), test_size=fraction, random_state=seed)
    return np.isin(patients, held)


def _assign(
    cases: np.ndarray,
    patients: np.ndarray,
    labels: np.ndarray,
    test_masks: list[np.ndarray],
    val_fraction: float,
    seed: int,
    held_out: list[str] | None = None,
    val_masks: list[np.ndarray | None] | None = None,
) -> SplitAssignment:
    """Build the table; each fold's val set comes from its training part unless given."""
    frames = []
    for fold, test in enumerate(test_masks):
        role = np.where(test, "test", "train").astype(object)
        val = None if val_masks is None else val_masks[fold]
        if val is None:
            train = ~test
            inner = grouped_holdout(
                patients[train],
                labels[train],
                val_fraction,
                derive_seed(seed, "validation_split", fold),
                what="training",
            )
            val = np.zeros(len(cases), dtype=bool)
            val[np.flatnonzero(train)[inner]] = True
        role[val] = "val"
        frames.append(
            pd.DataFrame(
                {
                    "case_id": cases,
                    "patient_id": patients,
                    "fold": fold,
                    "role": role,
                    "held_out": "" if held_out is None else held_out[fold],
                }
            )
        )
    split = SplitAssignment(pd.concat(frames, ignore_index=True))
    split.validate()
    return split


def kfold_split(
    case_ids: Sequence,
    patient_ids: Sequence,
    strata: Sequence | None = None,
    n_folds: int = 5,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> SplitAssignment:
    """Patient-grouped stratified k-fold; every case is in ``test`` in exactly one fold."""
    cases, patients, labels = _check_inputs(case_ids, patient_ids, strata)
    n_patients = len(np.unique(patients))
    if n_folds > n_patients:
        raise UserError(
            f"evaluate.folds = {n_folds} is more than the {n_patients} patients in the cohort"
        )
    splitter = StratifiedGroupKFold(
        n_splits=n_folds, shuffle=True, random_state=derive_seed(seed, "outer_split")
    )
    tests = []
    for _, test_idx in splitter.split(cases, labels, groups=patients):
        mask = np.zeros(len(cases), dtype=bool)
        mask[test_idx] = True
        tests.append(mask)
    return _assign(cases, patients, labels, tests, val_fraction, seed)


def leave_one_site_out(
    case_ids: Sequence,
    patient_ids: Sequence,
    sites: Sequence,
    strata: Sequence | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> SplitAssignment:
    """One fold per site (sorted by name): that site is ``test``, the others train and val."""
    cases, patients, labels = _check_inputs(case_ids, patient_ids, strata)
    site = np.asarray(sites, dtype=object)
    if len(site) != len(cases):
        raise UserError(f"splits: {len(cases)} cases but {len(site)} site values")
    missing = pd.isna(site) | (site.astype(str) == "")
    if missing.any():
        raise UserError(
            f"leave-one-site-out: case '{cases[missing][0]}' has no site (column cohort.site)"
        )
    site = site.astype(str)
    majority = _patient_strata(patients, site)
    spanning = pd.DataFrame({"p": patients, "s": site}).groupby("p")["s"].nunique() > 1
    if spanning.any():
        warnings.warn(
            f"leave-one-site-out: {int(spanning.sum())} patient(s) have cases at several sites; "
            "all cases of such a patient go with the patient's majority site",
            UserWarning,
            stacklevel=2,
        )
    group = majority.reindex(patients).to_numpy()
    names = sorted(np.unique(group))
    if len(names) < 2:
        raise UserError(f"leave-one-site-out needs at least 2 sites, the cohort has {len(names)}")
    tests = [np.zeros(len(cases), dtype=bool) for _ in names]
    for fold, (_, test_idx) in enumerate(
        LeaveOneGroupOut().split(cases, groups=np.searchsorted(names, group))
    ):
        tests[fold][test_idx] = True
    return _assign(cases, patients, labels, tests, val_fraction, seed, held_out=names)


def holdout_split(
    case_ids: Sequence,
    patient_ids: Sequence,
    strata: Sequence | None = None,
    test_fraction: float = 0.25,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> SplitAssignment:
    """One fixed test set: a grouped, stratified ``test_fraction`` of the patients (fold 0)."""
    cases, patients, labels = _check_inputs(case_ids, patient_ids, strata)
    test = grouped_holdout(
        patients, labels, test_fraction, derive_seed(seed, "outer_split"), what="cohort"
    )
    return _assign(cases, patients, labels, [test], val_fraction, seed)


def official_split(
    case_ids: Sequence,
    patient_ids: Sequence,
    split_names: Sequence,
    strata: Sequence | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> SplitAssignment:
    """The split shipped with the cohort (``train``/``val``/``test`` per case, fold 0).

    Without ``val`` cases, a grouped stratified val set is taken from ``train``.
    """
    cases, patients, labels = _check_inputs(case_ids, patient_ids, strata)
    raw = np.asarray(split_names).astype(str)
    if len(raw) != len(cases):
        raise UserError(f"official split: {len(cases)} cases but {len(raw)} split names")
    names = np.array([_OFFICIAL_NAMES.get(n.strip().lower(), "") for n in raw], dtype=object)
    unknown = names == ""
    if unknown.any():
        i = int(np.flatnonzero(unknown)[0])
        raise UserError(
            f"official split: case '{cases[i]}' has split '{raw[i]}' (expected train, val or test)"
        )
    if not (names == "test").any() or not (names == "train").any():
        raise UserError("official split: needs both 'train' and 'test' cases")
    val = names == "val"
    return _assign(
        cases,
        patients,
        labels,
        [names == "test"],
        val_fraction,
        seed,
        val_masks=[val if val.any() else None],
    )


def make_splits(
    evaluate: EvaluateConfig,
    *,
    case_ids: Sequence,
    patient_ids: Sequence,
    strata: Sequence | None = None,
    sites: Sequence | None = None,
    official: Sequence | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> SplitAssignment:
    """The split named by ``evaluate.split``; pass ``train.val_fraction`` and the config seed."""
    if evaluate.split == "kfold":
        return kfold_split(case_ids, patient_ids, strata, evaluate.folds, val_fraction, seed)
    if evaluate.split == "loso":
        if sites is None:
            raise UserError("evaluate.split 'loso' needs a site column (cohort.site)")
        return leave_one_site_out(case_ids, patient_ids, sites, strata, val_fraction, seed)
    if evaluate.split == "holdout":
        return holdout_split(
            case_ids, patient_ids, strata, evaluate.test_fraction, val_fraction, seed
        )
    if official is None:
        raise UserError(
            "evaluate.split 'official' needs the cohort's own split names (a .npz cohort)"
        )
    return official_split(case_ids, patient_ids, official, strata, val_fraction, seed)
