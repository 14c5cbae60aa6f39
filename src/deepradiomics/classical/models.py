"""Classical radiomics baselines as scikit-learn estimators.

``make_baseline(task, combat=..., seed=...)`` returns a ``GridSearchCV`` around

    prepare      median imputation + standard scaling of the feature columns
                 (ComBat's reserved site/covariate columns pass through untouched)
    combat       optional: ComBat fitted on the training rows (``ComBatColumns``)
    variance     drop constant features
    correlation  drop a feature whose |Pearson r| with an earlier kept one exceeds 0.9
    select       univariate SelectKBest (ANOVA F / F-regression) or L1-based SelectFromModel
    model        logistic regression (binary, multiclass), ridge (regression), or
                 elastic-net Cox (survival; its L1 part is the selection step)

tuned by an inner cross-validation on the training rows only: folds grouped by patient
(``fit(X, y, groups=patient_ids)``) and stratified by class (survival: by event).

Site and covariates for ComBat reach the pipeline as columns of ``X`` (see
``combat.with_site_columns``): ``fit(X, y)`` / ``predict(X)`` stay standard, every
splitter slices site with the features, and no global metadata-routing switch is needed.
With ``combat=False`` those columns are dropped, so one ``X`` serves both variants.

``covariates=True`` also gives the model the clinical covariates (the same columns), encoded
(numeric: median imputation, a missing indicator, scaling; categorical: one-hot with missing
as its own level) and always kept: they bypass the radiomics feature selection, as the CNN's
covariate fusion bypasses its image trunk. ``make_clinical_baseline`` is the covariates-only
model, the floor an image model must clear.

Survival targets are scikit-survival structured arrays (``survival_target(event, time)``);
``predict`` then gives a risk score (higher = earlier event).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.feature_selection import (
    SelectFromModel,
    SelectKBest,
    SelectorMixin,
    VarianceThreshold,
    f_classif,
    f_regression,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Lasso, LogisticRegression, Ridge
from sklearn.metrics import log_loss
from sklearn.model_selection import (
    BaseCrossValidator,
    GridSearchCV,
    GroupKFold,
    StratifiedGroupKFold,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from deepradiomics.classical.combat import (
    COVARIATE_PREFIX,
    META_PREFIX,
    SITE_COLUMN,
    ComBat,
    ComBatColumns,
)
from deepradiomics.errors import UserError
from deepradiomics.tasks import TASKS, Task

BaselineTask = str  # a task with a classical baseline (``tasks.Task.classical``)
Selection = Literal["kbest", "l1"]


# ----------------------------------------------------------------------------- building blocks


def feature_columns(X: Any) -> list:
    """Columns of ``X`` that are features (all but ComBat's reserved ``combat__`` columns)."""
    if hasattr(X, "columns"):
        return [c for c in X.columns if not str(c).startswith(META_PREFIX)]
    X = check_array(X, dtype=None, ensure_all_finite=False)  # scikit-learn's message for 1-D input
    return list(range(X.shape[1]))


def covariate_columns(X: Any) -> list:
    """The clinical covariate columns of ``X`` (``combat__cov__*``; none for a plain array)."""
    if hasattr(X, "columns"):
        return [c for c in X.columns if str(c).startswith(COVARIATE_PREFIX)]
    return []


def radiomics_columns(X: Any) -> list:
    """What the radiomics branch reads when ComBat is on: features plus the reserved columns."""
    return feature_columns(X) + combat_columns(X)


def combat_columns(X: Any) -> list:
    """ComBat's reserved site/covariate columns of ``X`` (none for a plain array)."""
    if hasattr(X, "columns"):
        return [c for c in X.columns if str(c).startswith(META_PREFIX)]
    return []


class CorrelationFilter(SelectorMixin, BaseEstimator):
    """Drop features highly correlated with an earlier kept feature (|r| > ``threshold``).

    Greedy in column order, so the result is deterministic; constant features correlate
    with nothing. Written here because scikit-learn has no correlation filter.
    """

    def __init__(self, threshold: float = 0.9) -> None:
        self.threshold = threshold

    def fit(self, X: Any, y: Any = None) -> CorrelationFilter:
        X = validate_data(self, X, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.abs(np.corrcoef(X, rowvar=False)) if X.shape[0] > 1 else np.eye(X.shape[1])
        corr = np.nan_to_num(np.atleast_2d(corr), nan=0.0)
        keep = np.zeros(X.shape[1], dtype=bool)
        for j in range(X.shape[1]):
            keep[j] = not np.any(corr[j, keep] > self.threshold)
        self.support_ = keep
        return self

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self, "support_")
        return self.support_


def _strata(y: Any) -> np.ndarray | None:
    if y is None:
        return None
    y = np.asarray(y)
    if y.dtype.names:  # scikit-survival target: stratify by the event indicator
        return y[y.dtype.names[0]].astype(int)
    return y


def _with_site(strata: np.ndarray | None, X: Any, n_splits: int) -> np.ndarray | None:
    """Strata crossed with ComBat's site column when ``X`` has one: ComBat in the pipeline
    needs >= 2 rows of every site in each inner training fold, and folds stratified by class
    alone often leave a small site with one row there (every candidate then scores NaN and
    GridSearchCV silently keeps the first). Kept as they are when no crossed stratum has
    ``n_splits`` rows (StratifiedGroupKFold would refuse)."""
    if not hasattr(X, "columns") or SITE_COLUMN not in X.columns:
        return strata
    site = X[SITE_COLUMN].to_numpy().astype(str)
    crossed = site if strata is None else np.char.add(np.char.add(strata.astype(str), "|"), site)
    return crossed if np.unique(crossed, return_counts=True)[1].max() >= n_splits else strata


class InnerCV(BaseCrossValidator):
    """K folds grouped by ``groups`` (patients) and, with ``stratify``, stratified by class
    (for survival targets: by event), crossed with the site when ``X`` carries ComBat's site
    column (see ``_with_site``). Without ``groups`` each row is its own group."""

    def __init__(self, n_splits: int = 3, stratify: bool = True, random_state: int = 0) -> None:
        self.n_splits = n_splits
        self.stratify = stratify
        self.random_state = random_state

    def split(self, X: Any, y: Any = None, groups: Any = None):
        n = len(X)
        groups = np.arange(n) if groups is None else np.asarray(groups)
        if y is not None and not np.asarray(y).dtype.names:
            # fail here with scikit-learn's own messages (NaN/inf, unknown label types)
            # rather than in every inner fit
            y = check_array(y, ensure_2d=False, dtype=None, ensure_all_finite=True, input_name="y")
            if self.stratify:
                type_of_target(y, input_name="y", raise_unknown=True)
        strata = _with_site(_strata(y) if self.stratify else None, X, self.n_splits)
        if strata is not None:
            splitter = StratifiedGroupKFold(
                self.n_splits, shuffle=True, random_state=self.random_state
            )
            with warnings.catch_warnings():  # small crossed strata are expected here
                warnings.filterwarnings("ignore", "The least populated class", UserWarning)
                folds = list(splitter.split(X, strata, groups))
            yield from folds
        else:
            splitter = GroupKFold(self.n_splits, shuffle=True, random_state=self.random_state)
            yield from splitter.split(X, y, groups)

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return self.n_splits

    def _iter_test_indices(
        self, X=None, y=None, groups=None
    ):  # pragma: no cover - split() is overridden
        raise NotImplementedError


def survival_target(event: Any, time: Any) -> np.ndarray:
    """scikit-survival's structured target from event indicators (1 = event) and times."""
    from sksurv.util import Surv

    return Surv.from_arrays(
        event=np.asarray(event).astype(bool), time=np.asarray(time, dtype=float)
    )


# ----------------------------------------------------------------------------- pipelines


def _check_task(task: str) -> Task:
    """The registered task, if it has a classical baseline."""
    spec = TASKS.get(task)
    if spec is None or not spec.classical:
        have = [name for name, t in TASKS.items() if t.classical]
        raise UserError(f"classical baseline: task {task!r} has no baseline; choose from {have}")
    return spec


@dataclass(frozen=True)
class AtMost:
    """``max_features`` for SelectFromModel: ``k``, or every feature when fewer remain."""

    k: int

    def __call__(self, X: Any) -> int:
        return min(self.k, X.shape[1])


def _top_k_by_model(model: BaseEstimator, k: int = 10) -> SelectFromModel:
    """L1-based selection: the ``k`` features with the largest |coefficient| of an L1 model
    (never none, even when the penalty zeroes every coefficient)."""
    return SelectFromModel(model, threshold=-np.inf, max_features=AtMost(k))


def _model(task: BaselineTask, seed: int) -> BaseEstimator:
    spec = _check_task(task)
    if spec.classes:
        return LogisticRegression(C=0.1, class_weight="balanced", max_iter=5000, random_state=seed)
    if not spec.time_to_event:
        return Ridge(alpha=1.0)
    from sksurv.linear_model import CoxnetSurvivalAnalysis

    return CoxnetSurvivalAnalysis(l1_ratio=0.5, alphas=[0.1], fit_baseline_model=True)


def _radiomics_steps(task: BaselineTask, combat: bool, selection: Selection, seed: int) -> list:
    """prepare, (combat), variance, correlation, (select): the radiomics features' path."""
    features = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    parts: list = [("features", features, feature_columns)]
    if combat:
        parts.append(("site", "passthrough", combat_columns))
    prepare = ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)
    steps: list = [("prepare", prepare.set_output(transform="pandas") if combat else prepare)]
    if combat:
        steps.append(("combat", ComBatColumns(ComBat())))
    steps += [("variance", VarianceThreshold(0.0)), ("correlation", CorrelationFilter(0.9))]
    spec = _check_task(task)
    if spec.classes:
        if selection == "kbest":
            steps.append(("select", SelectKBest(f_classif, k=10)))
        else:
            l1 = LogisticRegression(
                l1_ratio=1.0,
                solver="saga",
                C=0.1,
                class_weight="balanced",
                max_iter=5000,
                random_state=seed,
            )
            steps.append(("select", _top_k_by_model(l1)))
    elif not spec.time_to_event:  # regression
        steps.append(
            (
                "select",
                SelectKBest(f_regression, k=10)
                if selection == "kbest"
                else _top_k_by_model(Lasso(alpha=0.1, random_state=seed)),
            )
        )
    return steps  # survival: the elastic-net Cox's L1 part is the selection step


def _clinical_encoder() -> ColumnTransformer:
    """Numeric covariates: median + missing indicator + scaling; categorical: one-hot with
    missing as a level (unseen levels at prediction time encode as all zeros)."""
    numeric = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", add_indicator=True)),
            ("scale", StandardScaler()),
        ]
    )
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    return ColumnTransformer(
        [
            ("numeric", numeric, make_column_selector(dtype_include=np.number)),
            ("categorical", categorical, make_column_selector(dtype_exclude=np.number)),
        ],
        sparse_threshold=0.0,
    )


def baseline_pipeline(
    task: BaselineTask,
    combat: bool = False,
    selection: Selection = "kbest",
    seed: int = 0,
    covariates: bool = False,
) -> Pipeline:
    """The untuned pipeline (defaults in the middle of ``baseline_grid``).

    ``covariates``: the clinical covariate columns join the selected radiomics features in front of the
    model (steps ``features`` -> ``model``; the radiomics steps then sit in
    ``features.radiomics``).
    """
    _check_task(task)
    if selection not in ("kbest", "l1"):
        raise UserError(f"classical baseline: selection {selection!r} unknown; use 'kbest' or 'l1'")
    radiomics = _radiomics_steps(task, combat, selection, seed)
    if not covariates:
        return Pipeline([*radiomics, ("model", _model(task, seed))])
    branches = ColumnTransformer(
        [
            ("radiomics", Pipeline(radiomics), radiomics_columns if combat else feature_columns),
            ("clinical", _clinical_encoder(), covariate_columns),
        ],
        sparse_threshold=0.0,
    )
    return Pipeline([("features", branches), ("model", _model(task, seed))])


def clinical_pipeline(task: BaselineTask, seed: int = 0) -> Pipeline:
    """The covariates-only model: encoded clinical covariates -> the task's linear model."""
    _check_task(task)
    encoder = ColumnTransformer([("clinical", _clinical_encoder(), covariate_columns)])
    return Pipeline([("features", encoder), ("model", _model(task, seed))])


def baseline_grid(
    task: BaselineTask, selection: Selection = "kbest", covariates: bool = False
) -> dict[str, list]:
    """Hyperparameters searched by the inner cross-validation (``covariates``: the selection's
    keys sit under ``features__radiomics__``)."""
    if _check_task(task).time_to_event:
        return _model_grid(task)
    if selection == "kbest":
        grid: dict[str, list] = {"select__k": [5, 10, 20]}
    else:
        grid = {"select__max_features": [AtMost(5), AtMost(10), AtMost(20)]}
    if covariates:
        grid = {f"features__radiomics__{k}": v for k, v in grid.items()}
    grid.update(_model_grid(task))
    return grid


def _model_grid(task: BaselineTask) -> dict[str, list]:
    spec = _check_task(task)
    if spec.time_to_event:
        return {"model__alphas": [[a] for a in (0.01, 0.03, 0.1, 0.3)]}
    if not spec.classes:
        return {"model__alpha": [0.1, 1.0, 10.0, 100.0]}
    return {"model__C": [0.01, 0.1, 1.0]}


def neg_log_loss(estimator: Any, X: Any, y: Any) -> float:
    """Inner-CV score: minus the log-loss over every class the model was fitted on, so an
    inner test fold that holds one class only (a rare class with fewer patients than folds)
    is scored instead of failing: scikit-learn's ``"neg_log_loss"`` then returns NaN for
    every candidate and ``GridSearchCV`` silently keeps the first."""
    return -float(log_loss(y, estimator.predict_proba(X), labels=estimator.classes_))


def _search(
    pipeline: Pipeline, grid: dict[str, list], task: BaselineTask, seed: int, inner_folds: int
) -> GridSearchCV:
    """Inner CV stratified by class or event (not by regression quantiles); classifiers
    scored by log-loss, the others by the model's own score (R^2, Harrell's C)."""
    spec = _check_task(task)
    cv = InnerCV(
        n_splits=inner_folds, stratify=spec.stratifier in ("label", "event"), random_state=seed
    )
    scoring = neg_log_loss if spec.classes else None
    return GridSearchCV(pipeline, grid, scoring=scoring, cv=cv, refit=True, n_jobs=1)


def make_baseline(
    task: BaselineTask,
    combat: bool = False,
    seed: int = 0,
    selection: Selection = "kbest",
    inner_folds: int = 3,
    param_grid: dict[str, list] | None = None,
    covariates: bool = False,
) -> GridSearchCV:
    """Tuned classical baseline: ``fit(X, y, groups=patient_ids)``, then ``predict`` /
    ``predict_proba`` (classification) on held-out rows.

    ``X`` is a DataFrame of features (plus, with ``combat=True`` or ``covariates=True``, the
    columns added by ``combat.with_site_columns``); the inner folds never split a patient.
    Same seed, same folds, same model.
    """
    pipeline = baseline_pipeline(task, combat, selection, seed, covariates=covariates)
    grid = param_grid if param_grid is not None else baseline_grid(task, selection, covariates)
    return _search(pipeline, grid, task, seed, inner_folds)


def make_clinical_baseline(task: BaselineTask, seed: int = 0, inner_folds: int = 3) -> GridSearchCV:
    """The tuned covariates-only model (``X`` as for ``make_baseline``; only its
    ``combat__cov__`` columns are read)."""
    return _search(clinical_pipeline(task, seed), _model_grid(task), task, seed, inner_folds)


def out_of_fold_scores(search: GridSearchCV, X: Any, y: Any, groups: Any) -> np.ndarray:
    """Probability of the positive class for every row of a fitted binary ``search``'s
    training data, each from a refit of the chosen candidate that did not see the row's
    patient (the search's own inner folds): out-of-sample scores to choose a decision
    threshold on when no validation split was held out."""
    from sklearn.base import clone
    from sklearn.model_selection import cross_val_predict

    scores = cross_val_predict(
        clone(search.best_estimator_), X, y, groups=groups, cv=search.cv, method="predict_proba"
    )
    return scores[:, 1]
