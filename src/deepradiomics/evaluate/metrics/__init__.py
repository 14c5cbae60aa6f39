"""Metrics as plain functions: ``(y_true, y_score, ...) -> float`` or a small dataclass.

No I/O and no hidden state. A metric that is undefined for the data it is given (one class
only, no comparable survival pairs, an empty mask) returns ``nan``; malformed input (shapes,
probabilities outside [0, 1]) raises ``ValueError``.

Some metrics also have a ``*_batch`` kernel taking a ``(B, n)`` matrix of case weights and
returning ``(B,)`` values. With integer weights (how often a case was drawn) it equals the
metric on the resampled data, so the patient bootstrap (``evaluate.bootstrap``) can evaluate
all resamples in one vectorised call instead of ``B`` Python calls.

Survival conventions: ``risk`` is higher for worse prognosis (earlier events); ``time`` and
``event`` (1 = event, 0 = censored) are the observed follow-up. Metrics that need the
censoring distribution (Uno's C, time-dependent AUC, Brier score) estimate it from
``train_time``/``train_event`` when given, else from the evaluated data.

One module per task family (``classification``, ``calibration``, ``regression``,
``survival``, ``segmentation``, ``agreement``) over shared checks and kernels (``core``); every name is
re-exported here, so ``from deepradiomics.evaluate import metrics as M; M.roc_auc`` works.
"""

from deepradiomics.evaluate.metrics.agreement import icc, icc_columns
from deepradiomics.evaluate.metrics.calibration import (
    brier_score,
    calibration_batch,
    calibration_intercept,
    calibration_slope,
    expected_calibration_error,
    expected_calibration_error_batch,
)
from deepradiomics.evaluate.metrics.classification import (
    THRESHOLD_METRICS,
    accuracy,
    balanced_accuracy,
    configured_threshold,
    macro_auc,
    macro_auc_batch,
    multiclass_accuracy_batch,
    roc_auc,
    roc_auc_batch,
    select_threshold,
    sensitivity,
    specificity,
    threshold_rates_batch,
)
from deepradiomics.evaluate.metrics.core import weighted_mean_batch
from deepradiomics.evaluate.metrics.regression import mae, r2, r2_batch, rmse
from deepradiomics.evaluate.metrics.segmentation import dice, hd95, mean_dice, volume_ml
from deepradiomics.evaluate.metrics.survival import (
    BreslowBaseline,
    TimeDependentAUC,
    check_survival,
    default_tau,
    harrell_c_index,
    harrell_c_index_batch,
    integrated_brier_score,
    integrated_brier_score_batch,
    time_dependent_auc,
    time_dependent_auc_batch,
    uno_c_index,
    uno_c_index_batch,
)

__all__ = [
    "THRESHOLD_METRICS",
    "BreslowBaseline",
    "TimeDependentAUC",
    "accuracy",
    "balanced_accuracy",
    "brier_score",
    "calibration_batch",
    "calibration_intercept",
    "calibration_slope",
    "check_survival",
    "configured_threshold",
    "default_tau",
    "dice",
    "expected_calibration_error",
    "expected_calibration_error_batch",
    "harrell_c_index",
    "harrell_c_index_batch",
    "hd95",
    "icc",
    "icc_columns",
    "integrated_brier_score",
    "integrated_brier_score_batch",
    "macro_auc",
    "macro_auc_batch",
    "mae",
    "mean_dice",
    "multiclass_accuracy_batch",
    "r2",
    "r2_batch",
    "rmse",
    "roc_auc",
    "roc_auc_batch",
    "select_threshold",
    "sensitivity",
    "specificity",
    "threshold_rates_batch",
    "time_dependent_auc",
    "time_dependent_auc_batch",
    "uno_c_index",
    "uno_c_index_batch",
    "volume_ml",
    "weighted_mean_batch",
]
