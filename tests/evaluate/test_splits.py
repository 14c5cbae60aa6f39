from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from deepradiomics.config import EvaluateConfig
from deepradiomics.errors import UserError
from deepradiomics.evaluate.splits import (
    COLUMNS,
    SplitAssignment,
    holdout_split,
    kfold_split,
    leave_one_site_out,
    make_splits,
    official_split,
    stratification_labels,
)
from tests.conftest import shared_path


def cohort(n_patients: int = 120, seed: int = 0) -> pd.DataFrame:
    """Patients with 1-3 cases each, a label per patient (30 % positive) and a site."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        label = int(rng.random() < 0.3)
        site = "ABCD"[rng.integers(4)]
        for k in range(rng.integers(1, 4)):
            rows.append(
                {"case_id": f"c{p}_{k}", "patient_id": f"p{p}", "label": label, "site": site}
            )
    return pd.DataFrame(rows)


def patients_by_role(split: SplitAssignment, fold: int) -> dict[str, set[str]]:
    part = split.table[split.table["fold"] == fold]
    return {
        role: set(part.loc[part["role"] == role, "patient_id"]) for role in ("train", "val", "test")
    }


def assert_patients_disjoint(split: SplitAssignment) -> None:
    for fold in split.folds:
        roles = patients_by_role(split, fold)
        assert not roles["train"] & roles["test"]
        assert not roles["val"] & roles["test"]
        assert not roles["train"] & roles["val"]
        assert roles["val"], "every fold needs a validation set"


def test_kfold_groups_patients_and_tests_each_case_once():
    df = cohort()
    split = kfold_split(df.case_id, df.patient_id, df.label, n_folds=5, val_fraction=0.2, seed=3)
    assert split.folds == [0, 1, 2, 3, 4]
    assert list(split.table.columns) == list(COLUMNS)
    assert_patients_disjoint(split)
    tested = split.table[split.table.role == "test"].case_id
    assert sorted(tested) == sorted(df.case_id)  # each case in test exactly once
    # every case has exactly one role per fold
    assert (split.table.groupby("fold").size() == len(df)).all()


def test_kfold_is_stratified_and_balanced():
    df = cohort(200)
    split = kfold_split(df.case_id, df.patient_id, df.label, n_folds=5, seed=0)
    overall = df.label.mean()
    label = df.set_index("case_id").label
    for fold in split.folds:
        test = split.table[(split.table.fold == fold) & (split.table.role == "test")].case_id
        assert abs(label[test].mean() - overall) < 0.05
        assert abs(len(test) - len(df) / 5) < 0.1 * len(df)
        val = split.table[(split.table.fold == fold) & (split.table.role == "val")].case_id
        assert abs(label[val].mean() - overall) < 0.1
        n_train_val = (split.table.fold == fold).sum() - len(test)
        assert 0.12 < len(val) / n_train_val < 0.28


def test_same_seed_same_split_other_seed_differs():
    df = cohort()
    a = kfold_split(df.case_id, df.patient_id, df.label, seed=7)
    b = kfold_split(df.case_id, df.patient_id, df.label, seed=7)
    c = kfold_split(df.case_id, df.patient_id, df.label, seed=8)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert not a.table.equals(c.table)


def test_leave_one_site_out_folds_are_sites():
    df = cohort()
    split = leave_one_site_out(df.case_id, df.patient_id, df.site, df.label, seed=0)
    assert [split.held_out(f) for f in split.folds] == ["A", "B", "C", "D"]
    site = df.set_index("case_id").site
    for fold in split.folds:
        test = split.table[(split.table.fold == fold) & (split.table.role == "test")].case_id
        assert set(site[test]) == {split.held_out(fold)}
        assert len(test) == (df.site == split.held_out(fold)).sum()
        others = split.table[(split.table.fold == fold) & (split.table.role != "test")].case_id
        assert split.held_out(fold) not in set(site[others])
    assert_patients_disjoint(split)


def test_leave_one_site_out_keeps_a_patient_spanning_sites_together():
    df = cohort(40)
    pid = df.patient_id.iloc[0]
    extra = pd.DataFrame(
        [
            {"case_id": "x1", "patient_id": pid, "label": 0, "site": "D"},
            {"case_id": "x2", "patient_id": pid, "label": 0, "site": "D"},
            {"case_id": "x3", "patient_id": pid, "label": 0, "site": "D"},
        ]
    )
    df = pd.concat([df, extra], ignore_index=True)
    with pytest.warns(UserWarning, match="1 patient"):
        split = leave_one_site_out(df.case_id, df.patient_id, df.site, df.label)
    assert_patients_disjoint(split)
    fold_d = split.folds[["A", "B", "C", "D"].index("D")]
    roles = split.table[(split.table.fold == fold_d) & (split.table.patient_id == pid)].role
    assert set(roles) == {"test"}  # majority site D: all of the patient's cases go there


def test_holdout_fraction_stratified_and_grouped():
    df = cohort(200)
    split = holdout_split(df.case_id, df.patient_id, df.label, test_fraction=0.25, seed=1)
    assert split.folds == [0]
    assert_patients_disjoint(split)
    roles = patients_by_role(split, 0)
    n_patients = df.patient_id.nunique()
    assert len(roles["test"]) == int(np.ceil(0.25 * n_patients))
    patient_label = df.groupby("patient_id").label.first()
    assert abs(patient_label[list(roles["test"])].mean() - patient_label.mean()) < 0.03


def test_official_split_uses_names_and_derives_val_when_missing():
    ids = [f"c{i}" for i in range(40)]
    names = ["train"] * 24 + ["validation"] * 6 + ["TEST"] * 10
    split = official_split(ids, ids, names)
    roles = split.roles(0)
    assert (
        (roles[:24] == "train").all()
        and (roles[24:30] == "val").all()
        and (roles[30:] == "test").all()
    )
    no_val = official_split(ids, ids, ["train"] * 30 + ["test"] * 10, strata=np.arange(40) % 2)
    roles = no_val.roles(0)
    assert (roles[30:] == "test").all()
    assert (roles[:30] == "val").sum() == 6  # ceil(0.2 * 30) patients, from train only


def test_official_split_rejects_unknown_names():
    with pytest.raises(UserError, match="case 'c2' has split 'holdout'"):
        official_split(["c0", "c1", "c2"], ["c0", "c1", "c2"], ["train", "test", "holdout"])


def test_csv_round_trip_and_indices(tmp_path):
    df = cohort(60)
    split = leave_one_site_out(df.case_id, df.patient_id, df.site, df.label)
    path = tmp_path / "splits.csv"
    split.to_csv(path)
    back = SplitAssignment.read_csv(path)
    pd.testing.assert_frame_equal(back.table, split.table, check_dtype=False)
    assert back.held_out(0) == "A"
    test_idx = back.indices(0, "test")
    assert (df.site.to_numpy()[test_idx] == "A").all()
    shuffled = df.case_id.sample(frac=1, random_state=0).to_numpy()
    idx = back.indices(0, "test", case_ids=shuffled)
    assert set(shuffled[idx]) == set(df.case_id[test_idx])


def test_reading_a_corrupted_split_names_file_and_problem(tmp_path):
    df = cohort(30)
    split = kfold_split(df.case_id, df.patient_id, df.label, n_folds=3)
    table = split.table.copy()
    pid = table.patient_id.iloc[0]
    first = table[(table.fold == 0) & (table.patient_id == pid)].index[0]
    other = table[(table.fold == 0) & (table.role != table.loc[first, "role"])].index[0]
    table.loc[other, "patient_id"] = pid  # now that patient is on two sides in fold 0
    path = tmp_path / "bad.csv"
    table.to_csv(path, index=False)
    with pytest.raises(
        UserError, match=r"bad.csv: fold 0: the patient of case .* more than one role"
    ):
        SplitAssignment.read_csv(path)
    table = split.table.copy()
    table.loc[5, "role"] = "tuning"
    table.to_csv(path, index=False)
    with pytest.raises(UserError, match=r"bad.csv: line 7: column role: 'tuning'"):
        SplitAssignment.read_csv(path)
    pd.DataFrame({"case_id": ["a"]}).to_csv(path, index=False)
    with pytest.raises(UserError, match="missing column"):
        SplitAssignment.read_csv(path)


def test_input_errors_name_the_problem():
    with pytest.raises(UserError, match="case id 'a' appears twice"):
        kfold_split(["a", "a", "b"], ["p", "q", "r"], n_folds=2)
    with pytest.raises(UserError, match="evaluate.folds = 5 is more than the 3 patients"):
        kfold_split(["a", "b", "c", "d"], ["p", "p", "q", "r"], n_folds=5)
    with pytest.raises(UserError, match="at least 2 sites"):
        leave_one_site_out(["a", "b"], ["p", "q"], ["X", "X"])
    with pytest.raises(UserError, match="case 'b' has no site"):
        leave_one_site_out(["a", "b"], ["p", "q"], ["X", ""])


def test_make_splits_dispatches_on_config():
    df = cohort(50)
    kw = {
        "case_ids": df.case_id,
        "patient_ids": df.patient_id,
        "strata": df.label,
        "sites": df.site,
        "seed": 2,
    }
    assert make_splits(EvaluateConfig(split="kfold", folds=3), **kw).folds == [0, 1, 2]
    assert make_splits(EvaluateConfig(split="loso"), **kw).held_out(3) == "D"
    assert make_splits(EvaluateConfig(split="holdout"), **kw).folds == [0]
    with pytest.raises(UserError, match="needs a site column"):
        make_splits(EvaluateConfig(split="loso"), **{**kw, "sites": None})


def test_stratification_labels_per_task():
    assert list(stratification_labels("binary", target=[0, 1, 1])) == ["0", "1", "1"]
    assert list(stratification_labels("survival", target=None, event=[1.0, 0.0])) == ["1", "0"]
    bins = stratification_labels("regression", target=np.arange(100.0))
    assert sorted(pd.Series(bins).value_counts().tolist()) == [25, 25, 25, 25]
    assert stratification_labels("segmentation") is None


def test_small_classes_fall_back_to_unstratified_with_a_warning():
    ids = [f"c{i}" for i in range(10)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        split = holdout_split(ids, ids, [0] * 9 + [1], test_fraction=0.2)
    assert any("without stratification" in str(w.message) for w in caught)
    assert_patients_disjoint(split)


def test_loso_on_real_hecktor_centres():
    info = pd.read_csv(shared_path("hecktor_clinical", "hecktor2021_patient_info_training.csv"))
    end = pd.read_csv(shared_path("hecktor_clinical", "hecktor2021_patient_endpoint_training.csv"))
    df = info.merge(end, on="PatientID")
    strata = stratification_labels("survival", event=df["Progression"])
    split = leave_one_site_out(df.PatientID, df.PatientID, df.CenterID, strata, seed=0)
    assert [split.held_out(f) for f in split.folds] == ["1", "2", "3", "4", "5"]
    sizes = [len(split.indices(f, "test")) for f in split.folds]
    assert sizes == [54, 72, 17, 56, 23]  # the per-centre counts documented in PROVENANCE.md
    assert_patients_disjoint(split)
    kfold = kfold_split(df.PatientID, df.PatientID, strata, n_folds=5, seed=0)
    rates = [df.Progression.to_numpy()[kfold.indices(f, "test")].mean() for f in kfold.folds]
    assert max(rates) - min(rates) < 0.05  # 55 events spread evenly over folds


def test_official_split_on_real_adrenalmnist():
    data = np.load(shared_path("adrenalmnist3d", "adrenalmnist3d.npz"))
    names = np.concatenate([np.full(len(data[f"{s}_labels"]), s) for s in ("train", "val", "test")])
    ids = [f"c{i}" for i in range(len(names))]
    split = official_split(ids, ids, names)
    counts = pd.Series(split.roles(0)).value_counts()
    assert counts.to_dict() == {"train": 1188, "test": 298, "val": 98}


def test_unstratified_kfold_for_segmentation():
    ids = [f"c{i}" for i in range(30)]
    split = kfold_split(ids, ids, stratification_labels("segmentation"), n_folds=5)
    sizes = split.table.groupby(["fold", "role"]).size().unstack()
    assert (sizes["test"] == 6).all() and (sizes["val"] == 5).all()
    assert_patients_disjoint(split)
