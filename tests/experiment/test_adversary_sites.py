"""Under leave-one-site-out the site adversary never trains on the held-out site."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from deepradiomics.config import ExperimentConfig
from deepradiomics.dataset.arrays import ArrayData, CohortArrays
from deepradiomics.dataset.covariates import encode_fold
from deepradiomics.experiment.folds import fold_indices
from deepradiomics.experiment.members import member_jobs
from deepradiomics.experiment.runner import make_run_splits


def test_adversary_targets_exclude_the_held_out_site(tmp_path: Path) -> None:
    n = 36
    ids = tuple(f"c{i}" for i in range(n))
    data = ArrayData(
        torch.zeros(n, 1, 2, 2, 2),
        torch.tensor(np.arange(n) % 2, dtype=torch.float32),
        ids,
        tuple(f"p{i // 2}" for i in range(n)),
    )  # two scans per patient
    sites = np.array(["A", "B", "C"])[(np.arange(n) // 2) % 3]  # a patient stays at one site
    arrays = CohortArrays(task="binary", data=data, classes=["0", "1"], sites=sites)
    for members in (1, 3):
        cfg = ExperimentConfig.model_validate(
            {
                "evaluate": {"split": "loso", "ensemble_members": members},
                "model": {"site_adversary": True},
            }
        )
        splits = make_run_splits(cfg, arrays)
        for fold in splits.folds:
            idx = fold_indices(splits, fold, ids)
            held_out = set(sites[idx["test"]])
            assert len(held_out) == 1
            encoded, _ = encode_fold(arrays, np.concatenate([idx["train"], idx["val"]]))
            code = arrays.site_names.index(held_out.pop())
            for job in member_jobs(
                cfg, arrays, fold, idx["train"], idx["val"], idx["test"], tmp_path
            ):
                # what train_one_epoch feeds the adversary: the sites of the member's training cases
                assert code not in set(encoded.subset(job.train).sites.tolist())
                assert code not in set(encoded.subset(job.stop).sites.tolist())
