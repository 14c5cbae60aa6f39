"""Patients, lesion phenotypes and outcomes of the synthetic cohort (no images).

Everything here is one vectorised draw from the cohort seed, so the table of cases (site,
covariates, phenotype, true risk, label, survival) exists before any volume is rendered and
does not depend on how the rendering is parallelised. The generative model is described in
the package docstring (``deepradiomics.synth``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from deepradiomics.synth.sites import Site, make_sites

REPEAT_FRACTION = 0.05  # share of cases that are a second scan of an earlier patient
INTERCEPT = -0.4
SITE_EFFECT = 2.5  # largest |logit| shift of a site at confounding = 1
# log-odds per standard deviation of each standardised phenotype / covariate
COEF = {
    "size": 0.8,
    "irregularity": 0.6,
    "heterogeneity": 0.5,
    "necrosis": 0.4,
    "core_eccentricity": 0.9,
    "texture_anisotropy": 0.7,
    "age": 0.4,
    "male": 0.3,
}
DIAMETER_MEDIAN_MM = 17.0  # at the reference scale (size 96)
DIAMETER_LOG_SD = 0.3
DIAMETER_RANGE_MM = (8.0, 32.0)
AGE_MEAN, AGE_SD = 64.0, 10.0
WEIBULL_SHAPE = 1.3
MEDIAN_SURVIVAL_MONTHS = 30.0  # at eta = INTERCEPT (an average patient at a neutral site)
AGE_BANDS = ((-np.inf, 55, "<55"), (55, 65, "55-64"), (65, 75, "65-74"), (75, np.inf, "75+"))

_UNIFORM_SD = math.sqrt(1 / 12)


def _z_uniform(u: np.ndarray) -> np.ndarray:
    return (u - 0.5) / _UNIFORM_SD


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def age_band(age: np.ndarray) -> np.ndarray:
    out = np.empty(len(age), dtype=object)
    for lo, hi, name in AGE_BANDS:
        out[(age >= lo) & (age < hi)] = name
    return out


def _site_counts(n_patients: int, weights: np.ndarray) -> np.ndarray:
    """Patients per site by largest remainder; every site gets at least one patient."""
    k = len(weights)
    counts = np.ones(k, dtype=int)
    share = weights * (n_patients - k)
    counts += np.floor(share).astype(int)
    rest = n_patients - counts.sum()
    counts[np.argsort(-(share - np.floor(share)), kind="stable")[:rest]] += 1
    return counts


def draw_patients(
    n_patients: int, sites: list[Site], confounding: float, rng: np.random.Generator
) -> pd.DataFrame:
    """One row per patient: site, covariates, phenotype, risk decomposition and outcomes."""
    n = n_patients
    counts = _site_counts(n, np.array([s.weight for s in sites]))
    site_idx = rng.permutation(np.repeat(np.arange(len(sites)), counts))
    age = np.clip(np.round(rng.normal(AGE_MEAN, AGE_SD, n)), 30, 90).astype(int)
    male = rng.random(n) < 0.5
    log_d = np.clip(
        rng.normal(math.log(DIAMETER_MEDIAN_MM), DIAMETER_LOG_SD, n), *np.log(DIAMETER_RANGE_MM)
    )
    pheno = {
        "lobulation": rng.random(n),
        "spiculation": rng.random(n),
        "heterogeneity": rng.random(n),
        "necrosis": rng.random(n),
        "core_eccentricity": rng.random(n),
        "texture_anisotropy": rng.random(n),
    }
    elongation = rng.uniform(1.0, 1.4, n)
    texture_angle = rng.uniform(0.0, 180.0, n)
    z = {
        "size": (log_d - math.log(DIAMETER_MEDIAN_MM)) / DIAMETER_LOG_SD,
        # mean of two U(0,1): sd = sqrt(1/24)
        "irregularity": ((pheno["lobulation"] + pheno["spiculation"]) / 2 - 0.5)
        / math.sqrt(1 / 24),
        "heterogeneity": _z_uniform(pheno["heterogeneity"]),
        "necrosis": _z_uniform(pheno["necrosis"]),
        "core_eccentricity": _z_uniform(pheno["core_eccentricity"]),
        "texture_anisotropy": _z_uniform(pheno["texture_anisotropy"]),
        "age": (age - AGE_MEAN) / AGE_SD,
        "male": male - 0.5,
    }
    eta_visible = sum(COEF[k] * z[k] for k in ("size", "irregularity", "heterogeneity", "necrosis"))
    eta_spatial = sum(COEF[k] * z[k] for k in ("core_eccentricity", "texture_anisotropy"))
    eta_clinical = COEF["age"] * z["age"] + COEF["male"] * z["male"]
    eta_site = confounding * np.array([s.outcome_logit for s in sites])[site_idx]
    eta = INTERCEPT + eta_visible + eta_spatial + eta_clinical + eta_site
    risk = _sigmoid(eta)
    label = (rng.random(n) < risk).astype(int)

    # Weibull proportional hazards on the same linear predictor: S(t) = exp(-(t/lam)^k e^(eta-b0))
    lam = MEDIAN_SURVIVAL_MONTHS / math.log(2) ** (1 / WEIBULL_SHAPE)
    t_event = lam * (rng.exponential(1.0, n) * np.exp(-(eta - INTERCEPT))) ** (1 / WEIBULL_SHAPE)
    t_censor = np.minimum(rng.uniform(24.0, 72.0, n), rng.exponential(150.0, n))
    event = (t_event <= t_censor).astype(int)
    time = np.round(np.minimum(t_event, t_censor), 2)

    pet_uptake = np.exp(
        math.log(5.0) + 0.3 * z["size"] + 0.3 * z["heterogeneity"] + rng.normal(0.0, 0.2, n)
    )
    return pd.DataFrame(
        {
            "patient_index": np.arange(n),
            "site_index": site_idx,
            "site": [sites[i].name for i in site_idx],
            "age": age,
            "sex": np.where(male, "M", "F"),
            "age_band": age_band(age),
            "diameter_ref_mm": np.exp(log_d),
            "elongation": elongation,
            **pheno,
            "texture_angle_deg": texture_angle,
            "pet_uptake_suv": pet_uptake,
            "eta_visible": eta_visible,
            "eta_spatial": eta_spatial,
            "eta_clinical": eta_clinical,
            "eta_site": eta_site,
            "eta": eta,
            "risk": risk,
            "label": label,
            "time_event": t_event,
            "time_censor": t_censor,
            "time": time,
            "event": event,
        }
    )


def n_repeat_scans(cases: int) -> int:
    return int(REPEAT_FRACTION * cases + 0.5)


def draw_cohort(
    cases: int, n_sites: int, seed: int, confounding: float
) -> tuple[list[Site], pd.DataFrame]:
    """Site table and one row per case (scan), in case order, with ``case_index`` and ``scan``.

    About ``REPEAT_FRACTION`` of the cases are a second scan (``scan`` = 2) of a patient who
    already has one: same patient, site, phenotype and outcome, new acquisition. Rows are in a
    random order so second scans are interleaved with the rest.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    sites = make_sites(
        n_sites, np.random.default_rng(np.random.SeedSequence([seed, 1])), SITE_EFFECT
    )
    n_rep = n_repeat_scans(cases)
    patients = draw_patients(cases - n_rep, sites, confounding, rng)
    repeated = rng.choice(len(patients), size=n_rep, replace=False)
    table = pd.concat(
        [patients.assign(scan=1), patients.iloc[np.sort(repeated)].assign(scan=2)],
        ignore_index=True,
    )
    table = table.iloc[rng.permutation(len(table))].reset_index(drop=True)
    table.insert(0, "case_index", np.arange(len(table)))
    return sites, table
