"""Our PyRadiomics extraction against reference values.

1. PyRadiomics' own baseline CSVs (lung1 CT, brain1 MR), with the settings recorded in the
   baseline's diagnostics rows: every feature of the 7 classes must be reproduced.
2. The IBSI-1 digital phantom against the IBSI consensus values, for the families
   PyRadiomics implements (statistics/intensity histogram, morphology, GLCM and GLRLM
   "3D averaged", GLSZM, NGLDM (= PyRadiomics GLDM), NGTDM "3D"). Known deviations are
   listed below with their reason and checked after their documented correction.
"""

from __future__ import annotations

import ast
import math

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from deepradiomics.classical.features import FEATURE_CLASSES, RadiomicsSettings, extract_case
from tests.conftest import shared_path

pytestmark = pytest.mark.shared_data

# --------------------------------------------------------------------------- PyRadiomics baseline

BASELINE_RTOL = 1e-6
# brain1's mesh-based shape values in the baseline were written by PyRadiomics 2.0.1b1
# (see its diagnostics_Versions_PyRadiomics row); today's marching-cubes mesh differs from
# it by < 1e-3 relative on this case (PyRadiomics' own test suite accepts 3 %). lung1's
# mesh values, written by the same version, still agree to 1e-11.
MESH_FEATURES = ("MeshVolume", "SurfaceArea", "SurfaceVolumeRatio", "Sphericity")
MESH_RTOL = {"brain1": 2e-3, "lung1": BASELINE_RTOL}


def _baseline(case: str) -> tuple[dict, dict[str, dict[str, float]]]:
    base = shared_path("pyradiomics_testcases", "baseline")
    settings = None
    values: dict[str, dict[str, float]] = {}
    for cls in FEATURE_CLASSES:
        col = pd.read_csv(base / f"baseline_{cls}.csv", index_col=0)[case]
        cls_settings = ast.literal_eval(col["diagnostics_Configuration_Settings"])
        assert ast.literal_eval(col["diagnostics_Configuration_EnabledImageTypes"]) == {
            "Original": {}
        }
        assert settings in (None, cls_settings), "one extraction must serve every class"
        settings = cls_settings
        values[cls] = {k: float(v) for k, v in col.items() if k.startswith(f"original_{cls}_")}
    return settings, values


def compare_with_baseline(case: str) -> dict[str, tuple[int, int, float]]:
    """Per class: (features compared, features within tolerance, worst relative error)."""
    settings, expected = _baseline(case)
    folder = shared_path("pyradiomics_testcases")
    image = sitk.ReadImage(str(folder / f"{case}_image.nrrd"))
    mask = sitk.ReadImage(str(folder / f"{case}_label.nrrd"))
    got = extract_case(image, mask, RadiomicsSettings(extra=settings))
    summary = {}
    for cls, ref in expected.items():
        ok, worst = 0, 0.0
        for name, ref_value in ref.items():
            assert name in got, f"{case}: {name} not extracted"
            rel = abs(got[name] - ref_value) / max(abs(ref_value), 1e-12)
            rtol = MESH_RTOL[case] if name.rsplit("_", 1)[-1] in MESH_FEATURES else BASELINE_RTOL
            ok += rel <= rtol
            worst = max(worst, rel)
        summary[cls] = (len(ref), ok, worst)
    return summary


@pytest.mark.parametrize("case", ["lung1", "brain1"])
def test_pyradiomics_baseline_reproduced(case: str) -> None:
    summary = compare_with_baseline(case)
    print(
        f"\n{case}: "
        + ", ".join(f"{c} {ok}/{n} worst {w:.1e}" for c, (n, ok, w) in summary.items())
    )
    assert set(summary) == set(FEATURE_CLASSES)
    assert sum(n for n, _, _ in summary.values()) == 107  # 18+14+24+16+16+14+5 baseline features
    for cls, (n, ok, worst) in summary.items():
        assert ok == n, (
            f"{case} {cls}: {n - ok} of {n} features off (worst relative error {worst:.2e})"
        )


# --------------------------------------------------------------------------- IBSI digital phantom

# PyRadiomics feature name -> IBSI-1 tag. GLCM/GLRLM: PyRadiomics computes features per
# direction and averages them, i.e. IBSI's "3D, averaged" aggregation.
IBSI_TAGS: dict[str, dict[str, str]] = {
    "shape": {
        "MeshVolume": "morph_volume",
        "VoxelVolume": "morph_vol_approx",
        "SurfaceArea": "morph_area_mesh",
        "SurfaceVolumeRatio": "morph_av",
        "Sphericity": "morph_sphericity",
        "Maximum3DDiameter": "morph_diam",
        "MajorAxisLength": "morph_pca_maj_axis",
        "MinorAxisLength": "morph_pca_min_axis",
        "LeastAxisLength": "morph_pca_least_axis",
        "Elongation": "morph_pca_elongation",
        "Flatness": "morph_pca_flatness",
    },
    "firstorder": {
        "Mean": "stat_mean",
        "Variance": "stat_var",
        "Skewness": "stat_skew",
        "Kurtosis": "stat_kurt",
        "Median": "stat_median",
        "Minimum": "stat_min",
        "10Percentile": "stat_p10",
        "90Percentile": "stat_p90",
        "Maximum": "stat_max",
        "InterquartileRange": "stat_iqr",
        "Range": "stat_range",
        "MeanAbsoluteDeviation": "stat_mad",
        "RobustMeanAbsoluteDeviation": "stat_rmad",
        "Energy": "stat_energy",
        "RootMeanSquared": "stat_rms",
        "Entropy": "ih_entropy",
        "Uniformity": "ih_uniformity",
    },
    "glcm": {
        k: f"{v}_3D_avg"
        for k, v in {
            "Autocorrelation": "cm_auto_corr",
            "ClusterProminence": "cm_clust_prom",
            "ClusterShade": "cm_clust_shade",
            "ClusterTendency": "cm_clust_tend",
            "Contrast": "cm_contrast",
            "Correlation": "cm_corr",
            "DifferenceAverage": "cm_diff_avg",
            "DifferenceEntropy": "cm_diff_entr",
            "DifferenceVariance": "cm_diff_var",
            "Id": "cm_inv_diff",
            "Idm": "cm_inv_diff_mom",
            "Idmn": "cm_inv_diff_mom_norm",
            "Idn": "cm_inv_diff_norm",
            "Imc1": "cm_info_corr1",
            "Imc2": "cm_info_corr2",
            "InverseVariance": "cm_inv_var",
            "JointAverage": "cm_joint_avg",
            "JointEnergy": "cm_energy",
            "JointEntropy": "cm_joint_entr",
            "MaximumProbability": "cm_joint_max",
            "SumAverage": "cm_sum_avg",
            "SumEntropy": "cm_sum_entr",
            "SumSquares": "cm_joint_var",
        }.items()
    },
    "glrlm": {
        k: f"{v}_3D_avg"
        for k, v in {
            "ShortRunEmphasis": "rlm_sre",
            "LongRunEmphasis": "rlm_lre",
            "LowGrayLevelRunEmphasis": "rlm_lgre",
            "HighGrayLevelRunEmphasis": "rlm_hgre",
            "ShortRunLowGrayLevelEmphasis": "rlm_srlge",
            "ShortRunHighGrayLevelEmphasis": "rlm_srhge",
            "LongRunLowGrayLevelEmphasis": "rlm_lrlge",
            "LongRunHighGrayLevelEmphasis": "rlm_lrhge",
            "GrayLevelNonUniformity": "rlm_glnu",
            "GrayLevelNonUniformityNormalized": "rlm_glnu_norm",
            "RunLengthNonUniformity": "rlm_rlnu",
            "RunLengthNonUniformityNormalized": "rlm_rlnu_norm",
            "RunPercentage": "rlm_r_perc",
            "GrayLevelVariance": "rlm_gl_var",
            "RunVariance": "rlm_rl_var",
            "RunEntropy": "rlm_rl_entr",
        }.items()
    },
    "glszm": {
        k: f"{v}_3D"
        for k, v in {
            "SmallAreaEmphasis": "szm_sze",
            "LargeAreaEmphasis": "szm_lze",
            "LowGrayLevelZoneEmphasis": "szm_lgze",
            "HighGrayLevelZoneEmphasis": "szm_hgze",
            "SmallAreaLowGrayLevelEmphasis": "szm_szlge",
            "SmallAreaHighGrayLevelEmphasis": "szm_szhge",
            "LargeAreaLowGrayLevelEmphasis": "szm_lzlge",
            "LargeAreaHighGrayLevelEmphasis": "szm_lzhge",
            "GrayLevelNonUniformity": "szm_glnu",
            "GrayLevelNonUniformityNormalized": "szm_glnu_norm",
            "SizeZoneNonUniformity": "szm_zsnu",
            "SizeZoneNonUniformityNormalized": "szm_zsnu_norm",
            "ZonePercentage": "szm_z_perc",
            "GrayLevelVariance": "szm_gl_var",
            "ZoneVariance": "szm_zs_var",
            "ZoneEntropy": "szm_zs_entr",
        }.items()
    },
    "gldm": {
        k: f"{v}_3D"
        for k, v in {  # GLDM with alpha 0 is IBSI's NGLDM (distance 1)
            "SmallDependenceEmphasis": "ngl_lde",
            "LargeDependenceEmphasis": "ngl_hde",
            "LowGrayLevelEmphasis": "ngl_lgce",
            "HighGrayLevelEmphasis": "ngl_hgce",
            "SmallDependenceLowGrayLevelEmphasis": "ngl_ldlge",
            "SmallDependenceHighGrayLevelEmphasis": "ngl_ldhge",
            "LargeDependenceLowGrayLevelEmphasis": "ngl_hdlge",
            "LargeDependenceHighGrayLevelEmphasis": "ngl_hdhge",
            "GrayLevelNonUniformity": "ngl_glnu",
            "DependenceNonUniformity": "ngl_dcnu",
            "DependenceNonUniformityNormalized": "ngl_dcnu_norm",
            "GrayLevelVariance": "ngl_gl_var",
            "DependenceVariance": "ngl_dc_var",
            "DependenceEntropy": "ngl_dc_entr",
        }.items()
    },
    "ngtdm": {
        k: f"{v}_3D"
        for k, v in {
            "Coarseness": "ngt_coarseness",
            "Contrast": "ngt_contrast",
            "Busyness": "ngt_busyness",
            "Complexity": "ngt_complexity",
            "Strength": "ngt_strength",
        }.items()
    },
}

# Known deviations of PyRadiomics from IBSI: (reason, correction applied to our value
# before comparing). ``n`` is the number of voxels in the ROI.
IBSI_DEVIATIONS = {
    "firstorder_Kurtosis": (
        "PyRadiomics reports kurtosis, IBSI excess kurtosis (documented in "
        "RadiomicsFirstOrder.getKurtosisFeatureValue): IBSI = PyRadiomics - 3",
        lambda v, n: v - 3.0,
    ),
    **{
        f"shape_{axis}AxisLength": (
            "PyRadiomics' PCA divides the voxel-coordinate covariance by n, the IBSI "
            "reference values by n - 1: IBSI = PyRadiomics * sqrt(n / (n - 1))",
            lambda v, n: v * math.sqrt(n / (n - 1)),
        )
        for axis in ("Major", "Minor", "Least")
    },
}
# IBSI features of these families with no PyRadiomics counterpart in our extraction:
# Compactness 1/2 and Spherical disproportion (deprecated in PyRadiomics: functions of
# Sphericity), NGLDM dependence count percentage / normalised grey level non-uniformity
# (removed from PyRadiomics' GLDM: always 1 / equal to first-order Uniformity), the
# intensity-histogram and statistics features PyRadiomics lacks (mode, gradients, QCOD,
# CoV, median absolute deviation), and every "3D, merged" GLCM/GLRLM variant.


def _ibsi_match(value: float, reference: float, tolerance: float) -> bool:
    """IBSI values are given to 3 significant digits: allow half a unit of the last digit
    on top of the stated tolerance."""
    if reference == 0:
        return abs(value) <= tolerance + 5e-4
    half_unit = 0.5 * 10 ** (math.floor(math.log10(abs(reference))) - 2)
    return abs(value - reference) <= tolerance + half_unit * (1 + 1e-9)


def compare_with_ibsi_phantom() -> tuple[dict[str, tuple[int, int]], set[str]]:
    """Per class (features compared, matched); and the deviations that fail uncorrected."""
    root = shared_path("ibsi_phantoms")
    image = sitk.ReadImage(str(root / "ibsi_1_digital_phantom/nifti/image/phantom.nii.gz"))
    mask = sitk.ReadImage(str(root / "ibsi_1_digital_phantom/nifti/mask/mask.nii.gz"))
    ref = pd.read_csv(
        root / "reference_values/ibsi_1_reference_values_digital_phantom.csv", encoding="utf-8-sig"
    ).set_index("tag")
    # IBSI's phantom settings: no resampling, grey levels used as they are (bin width 1
    # maps 1..6 onto bins 1..6), no intensity shift.
    settings = RadiomicsSettings(bin_width=1.0, voxel_array_shift=0.0)
    got = extract_case(image, mask, settings)
    n_voxels = int(np.count_nonzero(sitk.GetArrayFromImage(mask) == 1))
    summary = {}
    needs_correction = set()
    for cls, tags in IBSI_TAGS.items():
        ok = 0
        for name, tag in tags.items():
            value = got[f"original_{cls}_{name}"]
            key = f"{cls}_{name}"
            reference, tolerance = (
                float(ref.loc[tag, "reference value"]),
                float(ref.loc[tag, "tolerance"]),
            )
            if key in IBSI_DEVIATIONS:
                if not _ibsi_match(value, reference, tolerance):
                    needs_correction.add(key)
                value = IBSI_DEVIATIONS[key][1](value, n_voxels)
            matched = _ibsi_match(value, reference, tolerance)
            assert matched, f"IBSI {tag}: ours {value:.6g}, reference {reference} +- {tolerance}"
            ok += matched
        summary[cls] = (len(tags), ok)
    return summary, needs_correction


def test_ibsi_digital_phantom() -> None:
    summary, needs_correction = compare_with_ibsi_phantom()
    total = sum(n for n, _ in summary.values())
    print(
        "\nIBSI digital phantom: "
        + ", ".join(f"{c} {ok}/{n}" for c, (n, ok) in summary.items())
        + f"; {len(IBSI_DEVIATIONS)} of {total} after a listed correction"
    )
    assert total == 102
    assert all(ok == n for n, ok in summary.values())
    # the deviations are real: uncorrected, these fall outside the IBSI tolerance (the major
    # axis deviates the same way but its 0.1 mm tolerance absorbs it on this phantom)
    assert needs_correction == {
        "firstorder_Kurtosis",
        "shape_MinorAxisLength",
        "shape_LeastAxisLength",
    }
