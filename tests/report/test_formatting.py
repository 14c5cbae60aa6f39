"""Number formatting shared by the report and the model card."""

from __future__ import annotations

from deepradiomics.report.formatting import fmt_estimate, fmt_p, metric_label, ordered_metrics


def test_estimates_and_p_values():
    assert fmt_estimate({"value": 0.81234, "ci_low": 0.7, "ci_high": 0.9}) == "0.812 [0.700, 0.900]"
    assert fmt_estimate({"value": 0.5, "ci_low": None, "ci_high": None}) == "0.500"
    assert fmt_estimate({"value": None}) == "—"
    assert fmt_estimate(float("nan")) == "—"
    assert (
        fmt_estimate({"value": 123.45, "ci_low": 100.0, "ci_high": 150.0}) == "123.5 [100.0, 150.0]"
    )
    assert fmt_p(0.0004) == "< 0.001" and fmt_p(0.01234) == "0.0123" and fmt_p(None) == "—"


def test_metric_names_and_order():
    assert ordered_metrics(["zeta", "brier", "auc", "td_auc_t3"]) == [
        "auc",
        "brier",
        "td_auc_t3",
        "zeta",
    ]
    assert metric_label("td_auc_t3") == "Time-dependent AUC at t = 3"
    assert metric_label("unknown_metric") == "unknown_metric"
