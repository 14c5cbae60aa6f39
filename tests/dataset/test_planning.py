"""Per-fold preprocessing plans: fitted on each fold's training part, never on its test
cases nor, under leave-one-site-out, on the left-out site."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deepradiomics.config import parse_config
from deepradiomics.dataset.manifest import csv_arrays, open_csv
from deepradiomics.dataset.planning import fold_cohorts, training_part
from deepradiomics.evaluate.splits import make_splits
from deepradiomics.preprocess.pipeline import prepare_planned
from tests.cohort.cohort_builder import Cohort, ct_array, mask_array, volume

SITES = "ABC"


def _cohort(root: Path, odd_spacing=(3.0, 3.0, 4.0), odd_shift: int = 800) -> Path:
    """12 cases at sites A, B, C (both labels at each); site C's CT has another spacing and
    intensities shifted by ``odd_shift`` HU."""
    cohort = Cohort(root, n=12)
    for i, row in enumerate(cohort.rows):
        row["site"] = SITES[i % 3]
        row["label"] = str((i // 3) % 2)
        if row["site"] == "C":
            cohort.replace(i, "ct", volume(ct_array(i) + odd_shift, spacing=odd_spacing))
            cohort.replace(i, "mask", volume(mask_array(), spacing=odd_spacing))
    return cohort.save()


def _config(csv: Path, split: str, window=None, **preprocess):
    ct = {"column": "ct", "kind": "ct"} | ({"window": window} if window else {})
    return parse_config(
        {
            "cohort": {"path": str(csv), "modalities": {"ct": ct}},
            "preprocess": {"workers": 1, **preprocess},
            "evaluate": {"split": split, "folds": 2},
        },
        source="test",
        base_dir=csv.parent,
    )


def _planned(cfg, run_dir: Path):
    source = open_csv(cfg, run_dir)
    labels = source.labels()
    splits = make_splits(
        cfg.evaluate,
        case_ids=labels.data.case_ids,
        patient_ids=labels.data.patient_ids,
        strata=labels.strata(),
        sites=labels.sites,
        val_fraction=cfg.train.val_fraction,
        seed=cfg.seed,
    )
    return source, *fold_cohorts(source, splits)


def _left_out_c(splits, cohorts):
    (fold,) = [k for k in splits.folds if splits.held_out(k) == "C"]
    return cohorts[fold]


def test_loso_plan_never_sees_the_left_out_site(tmp_path: Path) -> None:
    a = _cohort(tmp_path / "a")
    b = _cohort(tmp_path / "b", odd_spacing=(0.5, 0.5, 0.7), odd_shift=-600)
    cfg_a, cfg_b = _config(a, "loso"), _config(b, "loso")
    _, splits_a, cohorts_a = _planned(cfg_a, tmp_path / "run_a")
    _, splits_b, cohorts_b = _planned(cfg_b, tmp_path / "run_b")
    plan_a = _left_out_c(splits_a, cohorts_a)
    plan_b = _left_out_c(splits_b, cohorts_b)
    # site C's volumes changed completely: the plan that prepares site C did not move
    assert plan_a.plan == plan_b.plan
    assert plan_a.plan.spacing == (2.0, 1.0, 1.0)  # A and B only: (z, y, x) medians
    assert plan_a.plan_fit["sites"] == {"A": 4, "B": 4}
    assert plan_a.plan_fit["cases"] == 8
    assert plan_a.plan_fit["fitted"] == ["spacing", "crop", "shape", "window ct"]
    # ... while the plans that trained on site C moved with it (the test can fail)
    others_a = [cohorts_a[k].plan for k in splits_a.folds if splits_a.held_out(k) != "C"]
    others_b = [cohorts_b[k].plan for k in splits_b.folds if splits_b.held_out(k) != "C"]
    assert all(pa != pb for pa, pb in zip(others_a, others_b, strict=True))
    # and the old plan from every case would have used site C's window
    assert csv_arrays(cfg_a, tmp_path / "all").plan.modalities[0].window != (
        plan_a.plan.modalities[0].window
    )


def test_kfold_plans_come_from_each_folds_training_part(tmp_path: Path) -> None:
    cfg = _config(_cohort(tmp_path / "c"), "kfold")
    source, splits, cohorts = _planned(cfg, tmp_path / "run")
    assert cohorts.distinct_plans == 2
    for k in splits.folds:
        part = training_part(splits, k)
        test = set(splits.case_ids[splits.roles(k) == "test"])
        assert test and not test & set(part)
        assert cohorts[k].plan == source.fingerprinted.plan(cfg.preprocess, part)
        assert cohorts[k].plan_fit["cases"] == len(part)
        # every case is prepared under the fold's plan: the test cases too
        assert cohorts[k].data.case_ids == tuple(splits.case_ids)
        assert tuple(cohorts[k].data.images.shape[2:]) == cohorts[k].plan.shape
    record = cohorts.record()
    assert record["fit_on"] == "training part of each fold"
    assert record["folds"]["0"]["scope"] == "training part of fold 0"


def test_configured_plans_are_shared_by_every_fold(tmp_path: Path) -> None:
    cfg = _config(
        _cohort(tmp_path / "c"),
        "loso",
        window=[-100, 300],
        spacing=[2.0, 2.0, 2.0],
        crop_mm=[8, 8, 8],
    )
    _, splits, cohorts = _planned(cfg, tmp_path / "run")
    assert cohorts.distinct_plans == 1
    images = {id(cohorts[k].data.images) for k in splits.folds}
    assert len(images) == 1  # one prepared cohort in memory for all folds
    assert cohorts.record()["fitted"] == []


def test_cache_is_keyed_by_the_plan(tmp_path: Path) -> None:
    cfg = _config(_cohort(tmp_path / "c"), "kfold")
    source = open_csv(cfg, tmp_path / "run")
    ids = source.fingerprinted.case_ids
    on_ab = source.fingerprinted.plan(cfg.preprocess, [i for i in ids if int(i[1:]) % 3 != 2])
    on_all = source.fingerprinted.plan(cfg.preprocess)
    assert on_ab != on_all
    first = prepare_planned(source.fingerprinted, on_ab, progress=False)
    other = prepare_planned(source.fingerprinted, on_all, progress=False)
    assert other.computed == 12 and other.reused == 0  # nothing reused across plans
    assert set(first.keys.values()).isdisjoint(other.keys.values())
    again = prepare_planned(source.fingerprinted, on_ab, progress=False)
    assert again.computed == 0 and again.reused == 12
    assert again.keys == first.keys
    img_first = first.load_case("C000")[0]
    img_other = other.load_case("C000")[0]
    assert img_first.shape != img_other.shape or not np.array_equal(img_first, img_other)


@pytest.mark.parametrize("split", ["holdout"])
def test_holdout_plans_from_its_training_part(tmp_path: Path, split: str) -> None:
    cfg = _config(_cohort(tmp_path / "c"), split)
    source, splits, cohorts = _planned(cfg, tmp_path / "run")
    (fold,) = splits.folds
    part = training_part(splits, fold)
    assert cohorts[fold].plan_fit["scope"] == "training part"
    assert cohorts[fold].plan_fit["cases"] == len(part) < 12
    assert cohorts[fold].plan == source.fingerprinted.plan(cfg.preprocess, part)
