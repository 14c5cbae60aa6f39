"""The spatial part of the outcome is in the voxel arrangement, not in the intensity histogram."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import RidgeCV
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from deepradiomics.io.readers import read_image, spacing_zyx, to_array
from deepradiomics.synth import draw_cohort, generate_cohort
from deepradiomics.synth.anatomy import draw_anatomy, tissue_labels, tissue_maps
from deepradiomics.synth.grid import FineGrid
from deepradiomics.synth.lesion import draw_lesion, render_lesion
from tests.synth.spatial_stats import FIRST_ORDER, core_offset, first_order, texture_coherence


def _render(**phenotype: float) -> tuple[np.ndarray, np.ndarray]:
    """One lesion (fine grid, no scanner) of a fixed patient with the given phenotype values."""
    _, table = draw_cohort(20, 1, seed=0, confounding=0.0)
    p = table.iloc[0].to_dict()
    p.update(
        {
            "diameter_ref_mm": 22.0,
            "elongation": 1.1,
            "heterogeneity": 0.5,
            "necrosis": 0.5,
            "lobulation": 0.2,
            "spiculation": 0.2,
            **phenotype,
        }
    )
    grid = FineGrid.make(96, 0.9, 1.0)
    rng = np.random.default_rng(0)
    anat = draw_anatomy(rng, grid.scale)
    lesion = draw_lesion(p, anat, grid.extent_mm[0] / 2, grid.scale, rng)
    labels = tissue_labels(anat, grid)
    hu, suv = tissue_maps(labels, anat)
    mask, _ = render_lesion(lesion, grid, labels, hu, suv)
    return hu, mask


SPACING = (1.0, 0.9, 0.9)


def _quantiles(hu: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.percentile(hu[mask], np.arange(2, 99, 4))


def test_core_position_moves_no_histogram_mass() -> None:
    central, m0 = _render(core_eccentricity=0.0, texture_anisotropy=0.0)
    marginal, m1 = _render(core_eccentricity=1.0, texture_anisotropy=0.0)
    assert (m0 == m1).all()  # same lesion outline
    assert np.abs(_quantiles(central, m0) - _quantiles(marginal, m1)).max() < 4.0  # HU
    assert abs(np.mean(central[m0]) - np.mean(marginal[m1])) < 1.0
    assert core_offset(marginal, m1, SPACING) > core_offset(central, m0, SPACING) + 0.25


def test_stripes_and_blobs_share_the_histogram() -> None:
    blobs, m0 = _render(core_eccentricity=0.5, texture_anisotropy=0.0)
    stripes, m1 = _render(core_eccentricity=0.5, texture_anisotropy=1.0)
    assert np.abs(_quantiles(blobs, m0) - _quantiles(stripes, m1)).max() < 4.0
    assert abs(np.std(blobs[m0]) - np.std(stripes[m1])) < 1.0
    assert texture_coherence(stripes, m1, SPACING) > texture_coherence(blobs, m0, SPACING) + 0.3


def test_more_heterogeneity_and_necrosis_show_in_the_histogram() -> None:
    low, m = _render(core_eccentricity=0.5, texture_anisotropy=0.5, heterogeneity=0.0, necrosis=0.0)
    high, m2 = _render(
        core_eccentricity=0.5, texture_anisotropy=0.5, heterogeneity=1.0, necrosis=1.0
    )
    assert np.std(high[m2]) > np.std(low[m]) + 8
    assert np.percentile(high[m2], 10) < np.percentile(low[m], 10) - 10


@pytest.fixture(scope="module")
def imaged(tmp_path_factory) -> pd.DataFrame:
    """A moderate cohort at the reference size: spatial and first-order statistics per case."""
    out = tmp_path_factory.mktemp("spatial") / "cohort"
    path = generate_cohort(out, cases=60, sites=4, seed=11, size=96, pet=False, workers=2)
    cohort, truth = pd.read_csv(path), pd.read_csv(out / "ground_truth.csv")
    rows = []
    for _, r in cohort.iterrows():
        img = read_image(out / r["ct"])
        ct, mask = to_array(img), to_array(read_image(out / r["mask"]), np.uint8)
        sp = spacing_zyx(img)
        rows.append(
            [core_offset(ct, mask, sp), texture_coherence(ct, mask, sp), *first_order(ct, mask)]
        )
    stats = pd.DataFrame(rows, columns=["core_offset", "coherence", *FIRST_ORDER])
    return pd.concat([truth, stats], axis=1)


def _cv_r2(x: np.ndarray, y: np.ndarray) -> float:
    model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 3, 20)))
    pred = cross_val_predict(model, x, y, cv=5)
    return float(1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum())


def test_spatial_statistics_recover_the_hidden_phenotype(imaged: pd.DataFrame) -> None:
    t = imaged
    assert np.corrcoef(t["core_offset"], t["core_eccentricity"])[0, 1] > 0.4
    assert np.corrcoef(t["coherence"], t["texture_anisotropy"])[0, 1] > 0.4
    spatial = t[["core_offset", "coherence"]].to_numpy()
    assert _cv_r2(spatial, t["eta_spatial"].to_numpy()) > 0.15
    # and so they predict the outcome beyond what the first-order features give
    pred = cross_val_predict(
        make_pipeline(StandardScaler(), RidgeCV()), spatial, t["eta_spatial"], cv=5
    )
    assert roc_auc_score(t["label"], pred) > 0.6


def test_first_order_features_miss_the_spatial_part(imaged: pd.DataFrame) -> None:
    t = imaged
    first = t[FIRST_ORDER].to_numpy()
    assert _cv_r2(first, t["eta_spatial"].to_numpy()) < 0.05
    # while they do see the visible part: spread <- heterogeneity, dark tail <- necrosis
    assert _cv_r2(first, t["eta_visible"].to_numpy()) > 0.2
    assert np.corrcoef(t["p75"] - t["p25"], t["heterogeneity"])[0, 1] > 0.3
    assert np.corrcoef(t["p10"], t["necrosis"])[0, 1] < -0.25
