"""Splits on disk and in memory: the one ``splits.csv`` writer, and one model's parts.

``splits.csv`` (``case_id, patient_id, site, fold, role, held_out``; ``site`` empty when
the cohort has none) is what ``train`` and ``run`` both save and the report reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from deepradiomics.config import ExperimentConfig
from deepradiomics.dataset.arrays import ArrayData, CohortArrays
from deepradiomics.dataset.covariates import encode_fold, encoding_width
from deepradiomics.dataset.load import open_cohort
from deepradiomics.dataset.planning import fold_cohorts
from deepradiomics.errors import UserError
from deepradiomics.evaluate.splits import SplitAssignment, make_splits
from deepradiomics.files import atomic_write_text

SPLITS_FILE = "splits.csv"


def splits_table(splits: SplitAssignment, arrays: CohortArrays) -> pd.DataFrame:
    """The assignment with each case's site (empty without one) after ``patient_id``."""
    table = splits.table.copy()
    site = (
        dict(zip(arrays.data.case_ids, arrays.sites, strict=False))
        if arrays.sites is not None
        else {}
    )
    table.insert(2, "site", table["case_id"].map(site).fillna(""))
    return table


def save_splits(
    folder: Path, splits: SplitAssignment, arrays: CohortArrays, resume: bool = False
) -> Path:
    """Write ``folder/splits.csv``; with ``resume`` an existing file must hold the same
    assignment (a changed cohort or config would otherwise mix two splits in one run)."""
    path = folder / SPLITS_FILE
    table = splits_table(splits, arrays)
    if resume and path.is_file():
        saved = pd.read_csv(path, dtype=str, keep_default_na=False)
        if not saved.equals(table.astype(str)):
            raise UserError(
                f"{path} differs from the split of this cohort and config; the "
                "cohort changed since the run started: use a new --out folder"
            )
        return path
    atomic_write_text(path, table.to_csv(index=False))
    return path


@dataclass(frozen=True)
class SingleSplit:
    parts: dict[str, ArrayData]  # train / val / test
    arrays: CohortArrays
    encoding: dict | None  # covariate encoding fitted on the training part

    @property
    def n_covariates(self) -> int:
        return 0 if self.encoding is None else encoding_width(self.encoding)


def single_split(cfg: ExperimentConfig, run_dir: Path) -> SingleSplit:
    """train / val / test parts for one model: the official split, or a grouped holdout;
    a CSV cohort is preprocessed under the plan fitted on the training part (train + val)."""
    source = open_cohort(cfg, run_dir)
    labels = source if isinstance(source, CohortArrays) else source.labels()
    evaluate = cfg.evaluate
    if evaluate.split not in ("official", "holdout"):
        evaluate = evaluate.model_copy(
            update={"split": "official" if labels.official is not None else "holdout"}
        )
    splits = make_splits(
        evaluate,
        case_ids=labels.data.case_ids,
        patient_ids=labels.data.patient_ids,
        strata=labels.strata(),
        sites=labels.sites,
        official=labels.official,
        val_fraction=cfg.train.val_fraction,
        seed=cfg.seed,
    )
    splits, cohorts = fold_cohorts(source, splits)
    arrays = cohorts.reference
    save_splits(run_dir, splits, arrays)
    index = {
        role: splits.indices(0, role, arrays.data.case_ids) for role in ("train", "val", "test")
    }
    data, encoding = encode_fold(arrays, index["train"])
    return SingleSplit({role: data.subset(idx) for role, idx in index.items()}, arrays, encoding)
