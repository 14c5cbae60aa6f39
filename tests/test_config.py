"""Config preflight: mistakes that used to surface after minutes of preprocessing are errors
at load time, naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepradiomics.config import load_config, parse_config
from deepradiomics.errors import UserError


def check(data: dict, *expected: str) -> None:
    with pytest.raises(UserError) as err:
        parse_config(data, source="exp.yaml")
    for text in expected:
        assert text in str(err.value)
    assert str(err.value).startswith("exp.yaml: ")


def test_defaults_pass() -> None:
    cfg = parse_config({})
    assert cfg.cohort.task == "binary" and cfg.model.name == "small3d"


def test_unknown_task() -> None:
    check({"cohort": {"task": "ranking"}}, "cohort.task: unknown task 'ranking'", "binary")


def test_unknown_model() -> None:
    check({"model": {"name": "resnet99"}}, "model.name: unknown model 'resnet99'", "resnet18")


def test_wrong_model_keyword() -> None:
    check(
        {"model": {"name": "small3d", "kwargs": {"widht": 8}}},
        "model.kwargs: model 'small3d'",
        "widht",
    )


def test_model_keyword_the_pipeline_sets() -> None:
    check(
        {"model": {"kwargs": {"in_channels": 3}}}, "model.kwargs.in_channels: set by the pipeline"
    )


def test_good_model_keywords_pass() -> None:
    cfg = parse_config({"model": {"name": "resnet18", "kwargs": {"spacing": [1, 1, 1]}}})
    assert cfg.model.kwargs == {"spacing": [1, 1, 1]}


def test_loss_that_does_not_fit_the_task() -> None:
    check(
        {"cohort": {"task": "survival"}, "train": {"loss": "bce"}},
        "train.loss: 'bce' does not fit a survival task (cohort.task)",
        "cox_efron",
    )


def test_unknown_loss() -> None:
    check({"train": {"loss": "hinge"}}, "train.loss: unknown loss 'hinge'")


def test_fitting_loss_passes() -> None:
    assert (
        parse_config({"cohort": {"task": "multiclass"}, "train": {"loss": "focal"}}).train.loss
        == "focal"
    )


@pytest.mark.parametrize(
    ("augment", "key"),
    [
        ({"scale": [1.2, 0.9]}, "augment.scale"),
        ({"scale": [0, 1.1]}, "augment.scale"),
        ({"rotate_deg": 400}, "augment.rotate_deg"),
        ({"elastic_p": 1.5}, "augment.elastic_p"),
        ({"intensity_scale": 1.0}, "augment.intensity_scale"),
        ({"elastic_control_points": 2}, "augment.elastic_control_points"),
    ],
)
def test_augmentation_out_of_range(augment: dict, key: str) -> None:
    check({"augment": augment}, key)


def test_negative_seed() -> None:
    check({"seed": -1}, "seed:")


def test_several_problems_are_all_named() -> None:
    with pytest.raises(UserError) as err:
        parse_config({"augment": {"scale": [2, 1]}, "model": {"name": "nope"}}, source="x")
    assert "augment.scale" in str(err.value)


def test_load_config_preflights(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text("cohort: {path: c.csv, task: regression}\ntrain: {loss: cox}\n")
    with pytest.raises(UserError, match=f"{path}: train.loss: 'cox' does not fit a regression"):
        load_config(path)


# issue 11: keys removed (train.num_workers) and added (evaluate.fairness)


def test_num_workers_is_gone_with_a_reason():
    with pytest.raises(UserError, match=r"exp.yaml: train: .*num_workers was removed.*in memory"):
        parse_config({"train": {"num_workers": 4}}, source="exp.yaml")
    assert "num_workers" not in type(parse_config({}).train).model_fields


def test_old_saved_config_with_the_default_num_workers_still_loads():
    """Configs saved before the removal (bundles, run folders) hold ``num_workers: 0``."""
    cfg = parse_config({"train": {"num_workers": 0, "epochs": 3}})
    assert cfg.train.epochs == 3 and "num_workers" not in cfg.train.model_dump()


def test_fairness_minimum_sizes_default_and_validate():
    cfg = parse_config({})
    assert (cfg.evaluate.fairness.min_patients, cfg.evaluate.fairness.min_events) == (30, 10)
    with pytest.raises(UserError, match="evaluate.fairness.min_patients"):
        parse_config({"evaluate": {"fairness": {"min_patients": 0}}})
    with pytest.raises(UserError, match="evaluate.fairness.min_group: unknown key"):
        parse_config({"evaluate": {"fairness": {"min_group": 3}}})


SEG = {"cohort": {"task": "segmentation"}, "model": {"name": "unet"}}


def test_segmentation_loss_that_does_not_fit() -> None:
    check(
        {**SEG, "train": {"loss": "bce"}},
        "train.loss: 'bce' does not fit a segmentation task",
        "dice_ce",
    )


def test_segmentation_needs_a_model_that_segments() -> None:
    check({"cohort": {"task": "segmentation"}}, "model.name: 'small3d' cannot segment", "unet")


def test_segmentation_takes_no_covariates() -> None:
    check(
        {**SEG, "cohort": {"task": "segmentation", "covariates_numeric": ["age"]}},
        "takes no clinical covariates (got age)",
    )


def test_segmentation_needs_masks_not_an_npz_cohort() -> None:
    check(
        {**SEG, "cohort": {"task": "segmentation", "path": "cohort.npz"}},
        "cohort.path: a segmentation task needs a mask per case",
    )


def test_patch_is_for_segmentation_only() -> None:
    check({"train": {"patch": [16, 16, 16]}}, "train.patch: patches are for segmentation")
    assert parse_config({**SEG, "train": {"patch": [16, 16, 16]}}).train.patch == (16, 16, 16)


def test_segmentation_cohort_without_its_mask_column(tmp_path: Path) -> None:
    (tmp_path / "cohort.csv").write_text("case_id,patient_id,ct,label\nc1,p1,c1.nii.gz,1\n")
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("cohort: {path: cohort.csv, task: segmentation}\nmodel: {name: unet}\n")
    with pytest.raises(UserError) as err:
        load_config(cfg)
    assert "cohort.mask: column 'mask' not found in" in str(err.value)
    assert "columns: case_id, patient_id, ct, label" in str(err.value)
    named = "cohort: {path: cohort.csv, task: segmentation, mask: label}\nmodel: {name: unet}\n"
    cfg.write_text(named)  # the column a config names is the one looked for
    assert load_config(cfg).cohort.mask == "label"
    cfg.write_text("cohort: {path: cohort.csv}\n")  # other tasks need no mask
    assert load_config(cfg).cohort.task == "binary"
