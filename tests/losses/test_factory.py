"""get_loss: task defaults and errors that name the config key."""

from __future__ import annotations

import pytest

from deepradiomics.errors import UserError
from deepradiomics.losses import (
    CoxLoss,
    MSELoss,
    WeightedBCELoss,
    WeightedCELoss,
    get_loss,
)
from deepradiomics.tasks import LOSSES, TASKS


def test_task_defaults() -> None:
    assert {name: t.default_loss for name, t in TASKS.items()} == {
        "binary": "bce",
        "multiclass": "ce",
        "regression": "mse",
        "survival": "cox_efron",
        "segmentation": "dice_ce",
    }
    assert isinstance(get_loss(None, "binary"), WeightedBCELoss)
    assert isinstance(get_loss(None, "multiclass"), WeightedCELoss)
    assert isinstance(get_loss(None, "regression"), MSELoss)
    cox = get_loss(None, "survival")
    assert isinstance(cox, CoxLoss) and cox.ties == "efron"
    assert get_loss("cox", "survival").ties == "efron"
    assert get_loss(None, "segmentation").kind == "dice_ce"


def test_errors_name_the_key() -> None:
    with pytest.raises(UserError, match="train.loss: unknown loss 'hinge'"):
        get_loss("hinge", "binary")
    with pytest.raises(UserError, match="'mse' does not fit a binary task; use one of bce, focal"):
        get_loss("mse", "binary")
    with pytest.raises(UserError, match="cohort.task"):
        get_loss(None, "ranking")
    with pytest.raises(UserError, match="train.class_weight"):
        get_loss(None, "survival", class_weights=[1.0, 2.0])


@pytest.mark.parametrize("task", list(TASKS))
def test_every_loss_a_task_lists_is_built(task: str) -> None:
    for name in TASKS[task].losses:
        assert callable(get_loss(name, task))
    others = set(LOSSES) - set(TASKS[task].losses)
    for name in others:
        with pytest.raises(UserError, match=f"does not fit a {task} task"):
            get_loss(name, task)
