"""Fold 1's preprocessed crops of a finished demo run, with the ground truth of their cases.

Shared by the bench scripts that read a run's crops (``probe_design.py``,
``statistics_proxy.py``, ``phenotype_statistics.py``); the preprocessing cache makes it quick.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import torch

from deepradiomics.config import ExperimentConfig, load_config
from deepradiomics.dataset.arrays import CohortArrays
from deepradiomics.experiment.runner import planned_cohorts


class RunCrops(NamedTuple):
    cfg: ExperimentConfig
    fold: int
    arrays: CohortArrays  # fold 1's cohort: every case, preprocessed under that fold's plan
    truth: pd.DataFrame  # the whole ground_truth.csv, by case_id
    rows: pd.DataFrame  # its rows in the order of arrays' cases


def run_crops(run: Path) -> RunCrops:
    """``run``'s config, fold 1's crops and the ground truth (``cohort.ground_truth``)."""
    cfg = load_config(run / "config.yaml")
    truth = pd.read_csv(cfg.cohort.ground_truth, dtype={"case_id": str}).set_index("case_id")
    splits, cohorts, _ = planned_cohorts(cfg, run)
    fold = splits.folds[0]
    arrays = cohorts[fold]
    return RunCrops(cfg, fold, arrays, truth, truth.loc[list(map(str, arrays.data.case_ids))])


def crops_of_command_line(doc: str) -> RunCrops:
    """A script's one argument, RUN (``doc``'s first line is its help), read with two
    threads."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("run", type=Path)
    torch.set_num_threads(2)
    return run_crops(ap.parse_args().run)
