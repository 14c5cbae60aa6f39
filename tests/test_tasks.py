"""The task registry: one place that says what each task means, asked by every other piece."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from deepradiomics.config import CohortConfig
from deepradiomics.errors import UserError
from deepradiomics.evaluate.panel import metric_panel
from deepradiomics.evaluate.primary import primary_score
from deepradiomics.evaluate.splits import stratification_labels
from deepradiomics.losses import get_loss
from deepradiomics.models import create_model
from deepradiomics.tasks import LOSSES, TASKS, Task, get_task
from deepradiomics.train.loop import activate

rng = np.random.default_rng(0)


def test_registry_names_and_lookup() -> None:
    assert list(TASKS) == ["binary", "multiclass", "regression", "survival", "segmentation"]
    assert all(t.name == name for name, t in TASKS.items())
    assert get_task("survival") is TASKS["survival"]
    assert get_task(TASKS["binary"]) is TASKS["binary"]
    with pytest.raises(UserError, match="cohort.task: unknown task 'ranking'; one of binary"):
        get_task("ranking")


def test_a_task_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        TASKS["binary"].primary_metric = "accuracy"  # type: ignore[misc]


def test_one_headline_metric_per_task() -> None:
    """Regression's headline is R^2 everywhere (it was R^2 in the run, MAE in the report and
    -MSE in early stopping)."""
    assert {n: t.primary_metric for n, t in TASKS.items()} == {
        "binary": "auc",
        "multiclass": "macro_auc",
        "regression": "r2",
        "survival": "c_index",
        "segmentation": "dice",
    }
    assert all(t.higher_is_better for t in TASKS.values())


def test_r2_ranks_epochs_like_minus_mse() -> None:
    """Early stopping on R^2 picks the same epoch as on -MSE: on one validation set R^2 is an
    increasing affine function of -MSE."""
    y = rng.normal(size=40)
    epochs = [y + rng.normal(scale=s, size=40) for s in (1.0, 0.3, 0.5, 0.2, 0.8)]
    r2 = [primary_score("regression", y, p) for p in epochs]
    neg_mse = [-float(np.mean((y - p) ** 2)) for p in epochs]
    assert np.argsort(r2).tolist() == np.argsort(neg_mse).tolist()
    assert np.allclose(r2, 1 + np.array(neg_mse) / np.var(y))


@pytest.mark.parametrize("name", [n for n, t in TASKS.items() if not t.dense])
def test_the_panel_reports_the_headline_metric(name: str) -> None:
    n = 60
    task = TASKS[name]
    if task.time_to_event:
        kwargs = {
            "time": rng.uniform(1, 10, n),
            "event": rng.integers(0, 2, n),
            "y_score": rng.normal(size=n),
        }
        targets = np.column_stack([kwargs["time"], kwargs["event"]])
    elif task.scores_per_class:
        targets = np.arange(n) % 3
        kwargs = {"y_true": targets, "y_score": rng.dirichlet(np.ones(3), n)}
    else:
        targets = (np.arange(n) % 2).astype(float)
        score = rng.uniform(size=n)
        kwargs = {"y_true": targets, "y_score": score}
    panel = metric_panel(name, n_boot=0, **kwargs)
    assert task.primary_metric in panel
    assert panel[task.primary_metric]["value"] == pytest.approx(
        primary_score(name, targets, kwargs["y_score"]), rel=1e-9
    )


def test_losses_come_from_the_tasks() -> None:
    assert set(LOSSES) == {
        "bce",
        "ce",
        "focal",
        "mse",
        "cox",
        "cox_efron",
        "cox_breslow",
        "dice",
        "dice_ce",
        "dice_focal",
    }
    for t in TASKS.values():
        assert t.default_loss in t.losses
        assert callable(get_loss(None, t.name))


@pytest.mark.parametrize("name", list(TASKS))
def test_head_outputs_and_activation(name: str) -> None:
    task = TASKS[name]
    n_out = 3 if task.classes and task.outputs is None else None
    model = create_model(
        "unet" if task.dense else "small3d", task=name, in_channels=1, num_outputs=n_out
    ).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 32, 32, 32))["out"]
    k = task.outputs or n_out or task.min_outputs
    assert tuple(out.shape[:2] if task.dense else out.shape) == ((2,) if k == 1 else (2, k))
    pred = activate(name, out)
    if task.activation == "sigmoid":
        assert ((pred > 0) & (pred < 1)).all()
    elif task.activation == "softmax":
        assert torch.allclose(pred.sum(1), torch.ones_like(pred.sum(1)))
    else:
        assert torch.equal(pred, out)
    head = model.head
    assert (head.bias is not None) == task.head_bias


def test_stratifier() -> None:
    y = np.array([0.1, 5.0, 2.0, 3.0, 4.0, 0.5, 7.0, 9.0])
    assert stratification_labels("binary", target=[0, 1, 1]).tolist() == ["0", "1", "1"]
    assert stratification_labels("survival", event=[1, 0]).tolist() == ["1", "0"]
    assert len(set(stratification_labels("regression", target=y))) == 4
    assert stratification_labels("segmentation", target=y) is None


def test_config_accepts_exactly_the_registered_tasks() -> None:
    for name in TASKS:
        assert CohortConfig(task=name).task == name
    with pytest.raises(ValueError, match="unknown task 'ranking'"):
        CohortConfig(task="ranking")


def test_task_describes_itself() -> None:
    assert isinstance(TASKS["binary"], Task)
    assert TASKS["survival"].time_to_event and not TASKS["regression"].time_to_event
    assert TASKS["multiclass"].scores_per_class and not TASKS["binary"].scores_per_class
    assert [n for n, t in TASKS.items() if t.classical] == [
        "binary",
        "multiclass",
        "regression",
        "survival",
    ]
