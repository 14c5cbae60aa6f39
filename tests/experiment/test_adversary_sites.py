"""Under leave-one-site-out the site adversary never trains on the held-out site."""

from __future__ import annotations

import json
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


def test_adversary_summary_reads_each_members_kept_epoch(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from deepradiomics.experiment.site_audit import adversary_summary

    def member(name: str, kept: int, accuracies: list[float]) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        rows = [{"epoch": e + 1, "site_accuracy": a} for e, a in enumerate(accuracies)]
        (folder / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (folder / "done.json").write_text(json.dumps({"best_epoch": kept}))
        return folder

    sites = np.array(["A", "A", "A", "B", "B", "C"])
    folds = [
        SimpleNamespace(member_dirs=[member("f0", 2, [0.9, 0.4, 0.1])], trained=np.arange(4)),
        SimpleNamespace(member_dirs=[member("f1", 3, [0.9, 0.8, 0.6])], trained=np.arange(6)),
    ]
    summary = adversary_summary(folds, sites)
    assert summary == {
        "site_accuracy": (0.4 + 0.6) / 2,  # the kept epochs, not the last ones
        "constant_guess": (3 / 4 + 3 / 6) / 2,  # the largest training site's share per fold
        "members": 2,
    }
    plain = [SimpleNamespace(member_dirs=[tmp_path / "missing"], trained=None)]
    assert adversary_summary(plain, sites) is None
