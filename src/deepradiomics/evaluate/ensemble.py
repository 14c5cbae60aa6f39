"""Ensembles of fitted members (folds x bootstrap members): combine, measure spread, gain.

- :func:`member_resamples`: the patient-grouped bootstrap resample each member trains on,
  with its out-of-bag cases.
- :func:`combine_members`: the ensemble prediction (mean of probabilities, of log-risks or
  risks, of regression values) and the members' spread (std) as per-case uncertainty.
- :func:`ensemble_gain`: average member error versus ensemble error. For squared error the
  gain equals the average spread of members around the ensemble (the ambiguity
  decomposition of Krogh & Vedelsby, 1995), so it is the variance the ensemble removed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from deepradiomics.evaluate.bootstrap import resample_counts

Kind = Literal["probability", "probability_map", "log_risk", "risk", "regression"]
ErrorFn = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class MemberSample:
    """Cases one bootstrap member trains on (with repeats) and its out-of-bag cases."""

    in_bag: np.ndarray
    out_of_bag: np.ndarray


def member_resamples(patient_ids: Sequence, n_members: int, seed: int = 0) -> list[MemberSample]:
    """One patient-grouped bootstrap resample per member (indices into ``patient_ids``)."""
    n = len(patient_ids)
    counts = np.concatenate(list(resample_counts(patient_ids, n, n_members, seed)))
    cases = np.arange(n)
    return [MemberSample(np.repeat(cases, row), cases[row == 0]) for row in counts]


@dataclass(frozen=True)
class EnsemblePrediction:
    """``mean`` is the ensemble prediction; ``std`` the members' spread (same shape)."""

    mean: np.ndarray
    std: np.ndarray
    n_members: int
    maps: bool = False  # one probability per voxel (segmentation): ``std`` is a map per case

    @property
    def uncertainty(self) -> np.ndarray:
        """Per-case spread: ``std`` for one output per case (a map per case for probability
        maps); for class probabilities, the spread of the probability of the ensemble's
        predicted class."""
        if self.std.ndim == 1 or self.maps:
            return self.std
        top = np.argmax(self.mean, axis=1)
        return self.std[np.arange(len(top)), top]


def _members(predictions: np.ndarray | Sequence[np.ndarray], maps: bool = False) -> np.ndarray:
    p = np.asarray(predictions, dtype=np.float32 if maps else float)
    if (p.ndim < 3 if maps else p.ndim not in (2, 3)) or p.shape[0] < 1:
        shape = "(members, cases, *voxels)" if maps else "(members, cases[, classes])"
        raise ValueError(f"member predictions must be {shape}, got shape {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError("member predictions contain nan or inf")
    return p


def combine_members(
    predictions: np.ndarray | Sequence[np.ndarray],
    kind: Kind = "probability",
    offsets: Sequence[float] | None = None,
) -> EnsemblePrediction:
    """Average the members' predictions, shape ``(members, cases[, classes])``.

    ``probability``: mean of probabilities (checked to lie in [0, 1]); ``probability_map``:
    the same per voxel, ``(members, cases, *voxels)`` (segmentation); ``log_risk``: mean of
    log-risks (Cox heads); ``risk``: mean of risks; ``regression``: mean. Cox log-risks are
    only defined up to a constant per member: pass ``offsets`` (e.g. each member's mean
    training log-risk) to subtract first, so that ``std`` measures disagreement about the
    cases rather than arbitrary shifts. ``std`` is over members (ddof=0).
    """
    maps = kind == "probability_map"
    p = _members(predictions, maps)
    if kind in ("probability", "probability_map") and ((p < 0) | (p > 1)).any():
        raise ValueError("probability members must lie in [0, 1]")
    if kind == "risk" and (p < 0).any():
        raise ValueError("risk members must be non-negative (use kind='log_risk' for log-risks)")
    if kind not in ("probability", "probability_map", "log_risk", "risk", "regression"):
        raise ValueError(f"unknown ensemble kind {kind!r}")
    if offsets is not None:
        off = np.asarray(offsets, dtype=float)
        if off.shape != (p.shape[0],):
            raise ValueError(f"offsets must have one value per member ({p.shape[0]})")
        p = p - off.reshape((-1,) + (1,) * (p.ndim - 1))
    return EnsemblePrediction(p.mean(axis=0), p.std(axis=0), p.shape[0], maps)


def out_of_bag_mean(
    indices: Sequence[np.ndarray], predictions: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """The ensemble's out-of-sample score on its training part: each case's prediction
    averaged over the members that did not train on it (``indices[m]``: the cases member
    ``m`` predicted out of sample, ``predictions[m]`` its scores on them). Returns (sorted
    case indices, their mean score); cases every member trained on are left out."""
    if len(indices) != len(predictions):
        raise ValueError(f"{len(indices)} index arrays for {len(predictions)} prediction arrays")
    idx = np.concatenate([np.asarray(i, dtype=int) for i in indices] or [np.empty(0, int)])
    if not len(idx):
        return idx, np.empty(0)
    score = np.concatenate([np.asarray(p, dtype=float) for p in predictions])
    cases, pos = np.unique(idx, return_inverse=True)
    total = np.zeros((len(cases),) + score.shape[1:])
    np.add.at(total, pos, score)
    counts = np.bincount(pos, minlength=len(cases)).reshape((-1,) + (1,) * (score.ndim - 1))
    return cases, total / counts


def _squared(y: np.ndarray, pred: np.ndarray) -> float:
    if pred.ndim == 2:  # class probabilities against one-hot truth (multiclass Brier score)
        y = np.eye(pred.shape[1])[y.astype(int)]
        return float(np.mean(np.sum((pred - y) ** 2, axis=1)))
    return float(np.mean((pred - y) ** 2))


def _absolute(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(np.abs(pred - y)))


@dataclass(frozen=True)
class EnsembleGain:
    member_errors: np.ndarray
    ensemble_error: float

    @property
    def mean_member_error(self) -> float:
        return float(np.mean(self.member_errors))

    @property
    def reduction(self) -> float:
        """Average member error minus ensemble error (> 0: the ensemble helps)."""
        return self.mean_member_error - self.ensemble_error

    @property
    def relative_reduction(self) -> float:
        m = self.mean_member_error
        return self.reduction / m if m != 0 else float("nan")


def ensemble_gain(
    predictions: np.ndarray | Sequence[np.ndarray],
    y_true: Sequence,
    error: Literal["squared", "absolute"] | ErrorFn = "squared",
    kind: Kind = "probability",
) -> EnsembleGain:
    """Each member's error, the ensemble's error and the reduction.

    ``error``: ``squared`` (MSE; the Brier score for probabilities, summed over classes for
    class probabilities), ``absolute`` (MAE), or any ``error(y_true, prediction) -> float``
    where lower is better (e.g. ``lambda y, s: 1 - roc_auc(y, s)``).
    """
    p = _members(predictions)
    y = np.asarray(y_true)
    if len(y) != p.shape[1]:
        raise ValueError(f"y_true has {len(y)} cases but the members predict {p.shape[1]}")
    fn = (
        {"squared": _squared, "absolute": _absolute}.get(error) if isinstance(error, str) else error
    )
    if fn is None:
        raise ValueError(f"unknown error {error!r} (expected 'squared', 'absolute' or a function)")
    ensemble = combine_members(p, kind).mean
    return EnsembleGain(np.array([fn(y, m) for m in p]), float(fn(y, ensemble)))
