"""ComBat harmonisation (Johnson et al. 2007; Fortin et al. 2017/2018, as in neuroCombat).

Written here rather than calling neuroCombat because neuroCombat has no fit/transform
split (its ``neuroCombatFromTraining`` drops covariate effects and refuses new sites), and
the baseline needs ComBat fitted inside each training fold and applied to held-out rows.
On the training data ``ComBat().fit_transform`` equals ``neuroCombat(...)["data"]``
(tests/classical/test_combat.py checks parametric and non-parametric, with covariates).

Model, per feature ``g``: ``x = a_g + C beta_g + gamma_{site,g} + delta_{site,g} * eps``,
fitted with a design of site one-hot columns plus the protected covariates (numeric as
given, categorical one-hot without the first level). Site location/scale are shrunk by
empirical Bayes, each site's priors estimated across features.

Sites never seen in fitting (leave-one-site-out): ``transform`` estimates the new site's
location and scale from that site's own rows *in the same call*, without labels, after
standardising them with the fitted grand mean, pooled variance and covariate effects.
The empirical Bayes priors for the new site come from the training sites
(``unseen_prior="training"``, pooled over all training sites and features: "a new site is
like a typical training site") or from the new site itself (``"own"``, as ComBat treats
any site). Fewer than ``min_new_site_cases`` rows of a new site is a ``UserError``;
``unseen_sites="error"`` refuses new sites altogether. Nothing is stored by ``transform``:
the fitted state depends on the training rows only.

The same class harmonises CNN embeddings: it only sees a (cases x features) matrix.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils.validation import check_is_fitted, validate_data

from deepradiomics.errors import UserError

SITE_COLUMN = "combat__site"
COVARIATE_PREFIX = "combat__cov__"
META_PREFIX = "combat__"


# ----------------------------------------------------------------------------- covariates


def _is_categorical(col: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)


class _CovariateDesign:
    """Covariate columns -> design columns; categories learned at fit (one-hot, first dropped)."""

    def __init__(self, covariates: Any, n_rows: int) -> None:
        frame = _as_frame(covariates, n_rows, "fit")
        self.columns = list(frame.columns)
        self.levels: dict[str, np.ndarray] = {}
        for name in self.columns:
            if _is_categorical(frame[name]):
                self.levels[name] = np.unique(frame[name].astype(str).to_numpy())

    def matrix(self, covariates: Any, n_rows: int) -> np.ndarray:
        frame = _as_frame(covariates, n_rows, "transform")
        if list(frame.columns) != self.columns:
            raise UserError(
                f"ComBat: covariates {list(frame.columns)} differ from those fitted {self.columns}"
            )
        parts = [np.zeros((n_rows, 0))]
        for name in self.columns:
            col = frame[name]
            if col.isna().any():
                raise UserError(
                    f"ComBat: covariate {name!r} has missing values; impute or drop them first"
                )
            if name in self.levels:
                values = col.astype(str).to_numpy()
                unknown = sorted(set(values) - set(self.levels[name]))
                if unknown:
                    raise UserError(
                        f"ComBat: covariate {name!r} has levels {unknown} not seen in fitting"
                    )
                parts.append((values[:, None] == self.levels[name][None, 1:]).astype(float))
            else:
                parts.append(col.to_numpy(dtype=float)[:, None])
        return np.hstack(parts)


def _as_frame(covariates: Any, n_rows: int, step: str) -> pd.DataFrame:
    if covariates is None:
        return pd.DataFrame(index=range(n_rows))
    if isinstance(covariates, pd.Series):
        covariates = covariates.to_frame()
    if isinstance(covariates, pd.DataFrame):
        frame = covariates.reset_index(drop=True)
    else:
        arr = np.asarray(covariates, dtype=float)
        arr = arr[:, None] if arr.ndim == 1 else arr
        frame = pd.DataFrame(arr, columns=[f"covariate{i}" for i in range(arr.shape[1])])
    if len(frame) != n_rows:
        raise UserError(f"ComBat {step}: covariates have {len(frame)} rows, features {n_rows}")
    return frame


# ----------------------------------------------------------------------------- empirical Bayes


def _a_prior(delta_hat: np.ndarray) -> float:
    m, s2 = delta_hat.mean(), delta_hat.var(ddof=1)
    return (2 * s2 + m**2) / s2


def _b_prior(delta_hat: np.ndarray) -> float:
    m, s2 = delta_hat.mean(), delta_hat.var(ddof=1)
    return (m * s2 + m**3) / s2


def _postmean(g_hat, g_bar, n, d_star, t2):
    return (t2 * n * g_hat + d_star * g_bar) / (t2 * n + d_star)


def _postvar(sum2, n, a, b):
    return (0.5 * sum2 + b) / (n / 2.0 + a - 1.0)


def _parametric(s, g_hat, d_hat, g_bar, t2, a, b, conv=1e-4, max_iter=10_000):
    """Iterative posterior means of gamma and delta (neuroCombat's ``it_sol``, same stopping
    rule)."""
    n = s.shape[0]
    g_old, d_old = g_hat.copy(), d_hat.copy()
    for _ in range(max_iter):
        g_new = _postmean(g_hat, g_bar, n, d_old, t2)
        d_new = _postvar(((s - g_new) ** 2).sum(axis=0), n, a, b)
        with np.errstate(divide="ignore", invalid="ignore"):  # a zero gamma: as neuroCombat, stop
            change = max(
                (np.abs(g_new - g_old) / g_old).max(), (np.abs(d_new - d_old) / d_old).max()
            )
        g_old, d_old = g_new, d_new
        if not change > conv:
            break
    return g_old, d_old


def _non_parametric(s, g_prior, d_prior, exclude_self, chunk=256):
    """Posterior means under the empirical prior of (gamma, delta) pairs (neuroCombat's
    ``int_eprior``), computed in log space so long sites do not underflow. With
    ``exclude_self`` feature i's own estimate is left out of its prior."""
    m = s.shape[0]
    s1, s2 = s.sum(axis=0), (s**2).sum(axis=0)
    log_norm = -0.5 * m * np.log(2 * np.pi * d_prior)
    g_star, d_star = np.empty(s.shape[1]), np.empty(s.shape[1])
    for start in range(0, s.shape[1], chunk):
        rows = np.arange(start, min(start + chunk, s.shape[1]))
        sum2 = s2[rows, None] - 2 * s1[rows, None] * g_prior[None, :] + m * g_prior[None, :] ** 2
        log_lh = log_norm[None, :] - sum2 / (2 * d_prior[None, :])
        if exclude_self:
            log_lh[np.arange(len(rows)), rows] = -np.inf
        w = np.exp(log_lh - log_lh.max(axis=1, keepdims=True))
        w /= w.sum(axis=1, keepdims=True)
        g_star[rows], d_star[rows] = w @ g_prior, w @ d_prior
    return g_star, d_star


# ----------------------------------------------------------------------------- ComBat


class ComBat(BaseEstimator):
    """ComBat harmonisation as a fit/transform estimator; site (and covariates) are explicit.

    Parameters
    ----------
    parametric : parametric (normal / inverse-gamma) or non-parametric empirical Bayes priors.
    eb : shrink site estimates by empirical Bayes; ``False`` uses the raw location/scale.
    mean_only : adjust site locations only, not scales.
    unseen_sites : ``"estimate"`` (see module docstring) or ``"error"``.
    unseen_prior : priors for a new site: ``"training"`` (pooled training sites) or ``"own"``.
    min_new_site_cases : fewest rows of a new site that ``transform`` accepts.

    Site labels are compared as text (``1`` and ``"1"`` are the same site); rows of ``X``,
    ``site`` and ``covariates`` are aligned by position.

    Fitted attributes: ``sites_``, ``site_counts_``, ``grand_mean_``, ``var_pooled_``,
    ``beta_covariates_``, ``gamma_hat_``, ``delta_hat_``, ``gamma_star_``, ``delta_star_``,
    per-site priors ``gamma_bar_``, ``t2_``, ``a_prior_``, ``b_prior_``, and the pooled priors
    for new sites ``pooled_prior_`` (dict).
    """

    def __init__(
        self,
        parametric: bool = True,
        eb: bool = True,
        mean_only: bool = False,
        unseen_sites: Literal["estimate", "error"] = "estimate",
        unseen_prior: Literal["training", "own"] = "training",
        min_new_site_cases: int = 5,
    ) -> None:
        self.parametric = parametric
        self.eb = eb
        self.mean_only = mean_only
        self.unseen_sites = unseen_sites
        self.unseen_prior = unseen_prior
        self.min_new_site_cases = min_new_site_cases

    # -- helpers ---------------------------------------------------------------
    @staticmethod
    def _sites(site: Any, n_rows: int) -> np.ndarray:
        labels = np.asarray(site).astype(str)
        if labels.ndim != 1 or len(labels) != n_rows:
            raise UserError(
                f"ComBat: site must be one label per row ({n_rows}), got shape {labels.shape}"
            )
        return labels

    def _standardise(self, X: np.ndarray, covariates: Any) -> tuple[np.ndarray, np.ndarray]:
        cov = self.covariate_design_.matrix(covariates, X.shape[0])
        stand_mean = self.grand_mean_[None, :] + cov @ self.beta_covariates_
        return (X - stand_mean) / np.sqrt(self.var_pooled_)[None, :], stand_mean

    def _site_estimates(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        g_hat = s.mean(axis=0)
        d_hat = np.ones(s.shape[1]) if self.mean_only else s.var(axis=0, ddof=1)
        d_hat[d_hat == 0] = 1.0  # neuroCombat's convert_zeroes
        return g_hat, d_hat

    def _shrink(self, s, g_hat, d_hat, prior: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        if not self.eb:
            return g_hat, d_hat
        if self.parametric:
            if self.mean_only:
                return _postmean(g_hat, prior["gamma_bar"], 1, 1, prior["t2"]), np.ones_like(d_hat)
            return _parametric(
                s, g_hat, d_hat, prior["gamma_bar"], prior["t2"], prior["a"], prior["b"]
            )
        g_star, d_star = _non_parametric(s, prior["gammas"], prior["deltas"], prior["exclude_self"])
        return g_star, (np.ones_like(d_hat) if self.mean_only else d_star)

    @staticmethod
    def _own_prior(g_hat: np.ndarray, d_hat: np.ndarray, mean_only: bool) -> dict[str, Any]:
        return {
            "gamma_bar": g_hat.mean(),
            "t2": g_hat.var(ddof=1),
            "a": None if mean_only else _a_prior(d_hat),
            "b": None if mean_only else _b_prior(d_hat),
            "gammas": g_hat,
            "deltas": d_hat,
            "exclude_self": True,
        }

    # -- API -------------------------------------------------------------------
    def fit(self, X: Any, site: Any, covariates: Any = None) -> ComBat:
        """Learn the grand mean, pooled variance, covariate effects and per-site EB estimates."""
        X = validate_data(self, X, dtype=np.float64, reset=True)
        n, p = X.shape
        labels = self._sites(site, n)
        self.sites_, codes, self.site_counts_ = np.unique(
            labels, return_inverse=True, return_counts=True
        )
        small = [
            f"{s} ({c})" for s, c in zip(self.sites_, self.site_counts_, strict=False) if c < 2
        ]
        if small:
            raise UserError(
                f"ComBat: every site needs at least 2 cases to estimate its scale; too few: {small}"
            )
        if len(self.sites_) < 2:
            raise UserError(f"ComBat: needs at least 2 sites, got {list(self.sites_)}")
        if p < 2:
            raise UserError(
                "ComBat: needs at least 2 features (its priors are estimated across features)"
            )
        self.covariate_design_ = _CovariateDesign(covariates, n)
        n_sites = len(self.sites_)
        onehot = (codes[:, None] == np.arange(n_sites)[None, :]).astype(float)
        design = np.hstack([onehot, self.covariate_design_.matrix(covariates, n)])
        if np.linalg.matrix_rank(design) < design.shape[1]:
            raise UserError(
                "ComBat: covariates are collinear with the sites (e.g. a covariate constant within "
                f"each site, or duplicated); covariates: {self.covariate_design_.columns}"
            )
        beta = np.linalg.solve(design.T @ design, design.T @ X)
        self.grand_mean_ = (self.site_counts_ / n) @ beta[:n_sites]
        self.beta_covariates_ = beta[n_sites:]
        var_pooled = ((X - design @ beta) ** 2).mean(axis=0)
        # constant features get unit scale (what neuroCombat's zero-variance rule amounts to)
        self.var_pooled_ = np.where(var_pooled == 0, 1.0, var_pooled)

        s, _ = self._standardise(X, covariates)
        g_hats, d_hats, g_stars, d_stars, priors = [], [], [], [], []
        for k in range(n_sites):
            rows = s[codes == k]
            g_hat, d_hat = self._site_estimates(rows)
            prior = self._own_prior(g_hat, d_hat, self.mean_only)
            g_star, d_star = self._shrink(rows, g_hat, d_hat, prior)
            (
                g_hats.append(g_hat),
                d_hats.append(d_hat),
                g_stars.append(g_star),
                d_stars.append(d_star),
            )
            priors.append(prior)
        self.gamma_hat_, self.delta_hat_ = np.array(g_hats), np.array(d_hats)
        self.gamma_star_, self.delta_star_ = np.array(g_stars), np.array(d_stars)
        self.gamma_bar_ = np.array([pr["gamma_bar"] for pr in priors])
        self.t2_ = np.array([pr["t2"] for pr in priors])
        self.a_prior_ = np.array([np.nan if pr["a"] is None else pr["a"] for pr in priors])
        self.b_prior_ = np.array([np.nan if pr["b"] is None else pr["b"] for pr in priors])
        all_g, all_d = self.gamma_hat_.ravel(), self.delta_hat_.ravel()
        self.pooled_prior_ = {
            "gamma_bar": all_g.mean(),
            "t2": all_g.var(ddof=1),
            "a": None if self.mean_only else _a_prior(all_d),
            "b": None if self.mean_only else _b_prior(all_d),
            "gammas": all_g,
            "deltas": all_d,
            "exclude_self": False,
        }
        return self

    def transform(self, X: Any, site: Any, covariates: Any = None) -> np.ndarray:
        """Harmonised copy of ``X``; rows of a new site are handled as the class docstring says."""
        check_is_fitted(self, "gamma_star_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        labels = self._sites(site, X.shape[0])
        s, stand_mean = self._standardise(X, covariates)
        known = {label: k for k, label in enumerate(self.sites_)}
        adjusted = np.empty_like(s)
        for label in np.unique(labels):
            rows = labels == label
            if label in known:
                g_star, d_star = self.gamma_star_[known[label]], self.delta_star_[known[label]]
            else:
                g_star, d_star = self._new_site(label, s[rows])
            adjusted[rows] = (s[rows] - g_star) / np.sqrt(d_star)
        return adjusted * np.sqrt(self.var_pooled_)[None, :] + stand_mean

    def fit_transform(self, X: Any, site: Any, covariates: Any = None) -> np.ndarray:
        return self.fit(X, site, covariates).transform(X, site, covariates)

    def _new_site(self, label: str, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.unseen_sites == "error":
            raise UserError(
                f"ComBat: site {str(label)!r} was not in the training data and unseen_sites='error'"
            )
        needed = max(self.min_new_site_cases, 2)
        if s.shape[0] < needed:
            raise UserError(
                f"ComBat: site {str(label)!r} was not in the training data and has "
                f"{s.shape[0]} case(s); at least {needed} are needed to estimate its location "
                "and scale"
            )
        g_hat, d_hat = self._site_estimates(s)
        if self.unseen_prior == "own":
            prior = self._own_prior(g_hat, d_hat, self.mean_only)
        else:
            prior = self.pooled_prior_
        return self._shrink(s, g_hat, d_hat, prior)


class ComBatColumns(TransformerMixin, BaseEstimator):
    """ComBat as a Pipeline step: site and covariates travel as reserved columns of ``X``.

    ``X`` is a DataFrame whose column ``site_column`` holds the site and whose columns
    starting with ``covariate_prefix`` hold the protected covariates (name after the
    prefix; non-numeric columns are categorical). The step fits ``combat`` on the other
    columns, and ``transform`` returns them harmonised, as a float array without the
    reserved columns. Build such an ``X`` with ``with_site_columns``. This keeps
    ``fit(X, y)`` / ``predict(X)`` standard, so GridSearchCV and cross-validation split the
    site together with the features and never show ComBat a held-out row while fitting.
    """

    def __init__(
        self,
        combat: ComBat | None = None,
        site_column: str = SITE_COLUMN,
        covariate_prefix: str = COVARIATE_PREFIX,
    ) -> None:
        self.combat = combat
        self.site_column = site_column
        self.covariate_prefix = covariate_prefix

    def _split(self, X: Any) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame | None]:
        if not isinstance(X, pd.DataFrame) or self.site_column not in X.columns:
            raise UserError(
                f"ComBat step: X must be a DataFrame with a {self.site_column!r} column "
                "(see deepradiomics.classical.combat.with_site_columns)"
            )
        cov_cols = [c for c in X.columns if str(c).startswith(self.covariate_prefix)]
        feat_cols = [c for c in X.columns if c != self.site_column and c not in cov_cols]
        covs = (
            X[cov_cols].rename(columns=lambda c: c[len(self.covariate_prefix) :])
            if cov_cols
            else None
        )
        return X[feat_cols], X[self.site_column], covs

    def fit(self, X: Any, y: Any = None) -> ComBatColumns:
        feats, site, covs = self._split(X)
        self.combat_ = clone(self.combat if self.combat is not None else ComBat())
        self.combat_.fit(feats.to_numpy(dtype=float), site.to_numpy(), covs)
        self.feature_names_out_ = np.asarray(feats.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "combat_")
        feats, site, covs = self._split(X)
        if list(feats.columns) != list(self.feature_names_out_):
            raise UserError("ComBat step: feature columns differ from those seen in fitting")
        return self.combat_.transform(feats.to_numpy(dtype=float), site.to_numpy(), covs)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "combat_")
        return self.feature_names_out_


def with_site_columns(
    features: pd.DataFrame, site: Any, covariates: pd.DataFrame | None = None
) -> pd.DataFrame:
    """``features`` plus the reserved site/covariate columns that ``ComBatColumns`` consumes.

    ``site`` and ``covariates`` are aligned by position (one entry per row of ``features``).
    """
    if any(str(c).startswith(META_PREFIX) for c in features.columns):
        raise UserError(f"feature columns may not start with the reserved prefix {META_PREFIX!r}")
    out = features.copy()
    site = np.asarray(site)
    if len(site) != len(features):
        raise UserError(f"site has {len(site)} entries, features {len(features)} rows")
    out[SITE_COLUMN] = site.astype(str)
    if covariates is not None:
        if len(covariates) != len(features):
            raise UserError(f"covariates have {len(covariates)} rows, features {len(features)}")
        for name in covariates.columns:
            out[f"{COVARIATE_PREFIX}{name}"] = covariates[name].to_numpy()
    return out
