"""The task registry: what binary / multiclass / regression / survival / segmentation mean.

Everything that differs between tasks is a field here, asked by the pieces that need it
(``get_task(cfg.cohort.task).default_loss``), never re-decided elsewhere by comparing task
names. The headline (primary) metric is one per task and the same everywhere: the run's
``metrics.json``, the report's headline, the model comparisons, the learning curve and early
stopping (``train.monitor: score``). For regression it is R^2: on one validation set
``R^2 = 1 - MSE / Var(y_val)`` ranks epochs exactly like ``-MSE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from deepradiomics.errors import UserError

Activation = Literal["sigmoid", "softmax", "identity"]
Stratifier = Literal["label", "event", "quantiles"]
EnsembleKind = Literal["probability", "probability_map", "log_risk", "regression"]


@dataclass(frozen=True)
class Task:
    """One prediction task and everything that depends on it."""

    name: str
    description: str  # in words, for the model card
    target_keys: tuple[str, ...]  # cohort config keys that hold the outcome
    truth_columns: tuple[str, ...]  # the outcome's columns in predictions.csv
    classes: bool  # the outcome is a class label (mapped to class indices)
    n_classes: int | None  # exactly this many classes (binary: 2); None: any number
    target_dtype: Literal["float32", "int64"]  # training targets as the loss takes them
    activation: Activation  # raw head output -> prediction
    head_bias: bool  # False for Cox log-risks: the partial likelihood ignores a constant
    outputs: int | None  # head outputs when fixed; None: one per class / chosen
    min_outputs: int
    dense: bool  # per-voxel output (a segmentation map) instead of one value per case
    default_loss: str
    losses: tuple[str, ...]  # every loss that fits (names of ``losses.get_loss``)
    primary_metric: str  # the headline metric key of ``metrics.json``
    higher_is_better: bool
    stratifier: Stratifier | None  # what splits stratify on
    ensemble: EnsembleKind | None  # how members' outputs are combined; None: not ensembled
    score_column: str  # predictions.csv column suffix: ``cnn_prob``, ``cnn_risk``, ...
    classical: bool  # a classical radiomics baseline exists for it

    @property
    def scores_per_class(self) -> bool:
        """One score column per class (multiclass probabilities) instead of one per case."""
        return self.classes and self.outputs is None

    @property
    def time_to_event(self) -> bool:
        """The outcome is (time, event) with censoring: targets are ``[N, 2]``."""
        return self.target_keys == ("time", "event")


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task(
            name="binary",
            description="binary classification",
            target_keys=("target",),
            truth_columns=("y_true",),
            classes=True,
            n_classes=2,
            target_dtype="float32",
            activation="sigmoid",
            head_bias=True,
            outputs=1,
            min_outputs=1,
            dense=False,
            default_loss="bce",
            losses=("bce", "focal"),
            primary_metric="auc",
            higher_is_better=True,
            stratifier="label",
            ensemble="probability",
            score_column="prob",
            classical=True,
        ),
        Task(
            name="multiclass",
            description="multiclass classification",
            target_keys=("target",),
            truth_columns=("y_true",),
            classes=True,
            n_classes=None,
            target_dtype="int64",
            activation="softmax",
            head_bias=True,
            outputs=None,
            min_outputs=2,
            dense=False,
            default_loss="ce",
            losses=("ce", "focal"),
            primary_metric="macro_auc",
            higher_is_better=True,
            stratifier="label",
            ensemble="probability",
            score_column="prob",
            classical=True,
        ),
        Task(
            name="regression",
            description="regression",
            target_keys=("target",),
            truth_columns=("y_true",),
            classes=False,
            n_classes=None,
            target_dtype="float32",
            activation="identity",
            head_bias=True,
            outputs=None,
            min_outputs=1,
            dense=False,
            default_loss="mse",
            losses=("mse",),
            primary_metric="r2",
            higher_is_better=True,
            stratifier="quantiles",
            ensemble="regression",
            score_column="pred",
            classical=True,
        ),
        Task(
            name="survival",
            description="survival (risk) prediction",
            target_keys=("time", "event"),
            truth_columns=("time", "event"),
            classes=False,
            n_classes=None,
            target_dtype="float32",
            activation="identity",
            head_bias=False,
            outputs=1,
            min_outputs=1,
            dense=False,
            default_loss="cox_efron",
            losses=("cox_efron", "cox", "cox_breslow"),
            primary_metric="c_index",
            higher_is_better=True,
            stratifier="event",
            ensemble="log_risk",
            score_column="risk",
            classical=True,
        ),
        Task(
            name="segmentation",
            description="segmentation",
            target_keys=("mask",),
            truth_columns=(),
            classes=False,
            n_classes=None,
            target_dtype="int64",
            activation="softmax",
            head_bias=True,
            outputs=None,
            min_outputs=2,
            dense=True,
            default_loss="dice_ce",
            losses=("dice_ce", "dice", "dice_focal"),
            primary_metric="dice",
            higher_is_better=True,
            stratifier=None,
            ensemble="probability_map",
            score_column="mask",
            classical=False,
        ),
    )
}

# every loss name ``losses.get_loss`` builds: the union of what the tasks take
LOSSES: tuple[str, ...] = tuple(dict.fromkeys(n for t in TASKS.values() for n in t.losses))


def get_task(name: str | Task) -> Task:
    """The registered task called ``name`` (a ``Task`` is returned as it is)."""
    if isinstance(name, Task):
        return name
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        raise UserError(f"cohort.task: unknown task {name!r}; one of {', '.join(TASKS)}") from None
