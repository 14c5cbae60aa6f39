"""How numbers, metrics and models are written in the report and the model card."""

from __future__ import annotations

from typing import Any

from deepradiomics.report.run_files import finite

# name: (label, better) with better = "higher", "lower" or "" (closer to an ideal value)
METRICS: dict[str, tuple[str, str]] = {
    "auc": ("AUC", "higher"),
    "macro_auc": ("Macro AUC", "higher"),
    "balanced_accuracy": ("Balanced accuracy", "higher"),
    "accuracy": ("Accuracy", "higher"),
    "sensitivity": ("Sensitivity", "higher"),
    "specificity": ("Specificity", "higher"),
    "brier": ("Brier score", "lower"),
    "calibration_slope": ("Calibration slope (ideal 1)", ""),
    "calibration_intercept": ("Calibration intercept (ideal 0)", ""),
    "ece": ("Expected calibration error", "lower"),
    "mae": ("MAE", "lower"),
    "rmse": ("RMSE", "lower"),
    "mse": ("MSE", "lower"),
    "r2": ("R²", "higher"),
    "c_index": ("C-index (Harrell)", "higher"),
    "c_index_uno": ("C-index (Uno)", "higher"),
    "td_auc": ("Time-dependent AUC (mean)", "higher"),
    "ibs": ("Integrated Brier score", "lower"),
    "dice": ("Dice", "higher"),
    "hd95": ("HD95 (mm)", "lower"),
}
MODEL_LABELS = {
    "cnn": "CNN",
    "classical": "Classical radiomics",
    "classical_combat": "Classical radiomics + ComBat",
}
DASH = "—"


def metric_label(name: str) -> str:
    if name in METRICS:
        return METRICS[name][0]
    if name.startswith("td_auc_t"):
        return f"Time-dependent AUC at t = {name[len('td_auc_t') :]}"
    return name


def metric_direction(name: str) -> str:
    """ "higher", "lower" or "" (metrics judged by closeness to an ideal value)."""
    if name.startswith("td_auc"):
        return "higher"
    return METRICS.get(name, ("", ""))[1]


def model_label(model: str) -> str:
    return MODEL_LABELS.get(model, model)


def ordered_metrics(names: Any) -> list[str]:
    """Known metrics in a fixed order, then the others alphabetically."""
    names = list(dict.fromkeys(str(n) for n in names))
    known = [m for m in METRICS if m in names]
    return known + sorted(n for n in names if n not in METRICS)


def fmt_number(value: Any, digits: int = 3) -> str:
    """A metric value: ``digits`` decimals (one for magnitudes of 100 and over)."""
    v = finite(value)
    if v is None:
        return DASH
    return f"{v:.1f}" if abs(v) >= 100 else f"{v:.{digits}f}"


def fmt_estimate(entry: Any) -> str:
    """``value [ci_low, ci_high]`` from a metrics.json entry (or a bare number)."""
    if not isinstance(entry, dict):
        return fmt_number(entry)
    value = fmt_number(entry.get("value"))
    low, high = finite(entry.get("ci_low")), finite(entry.get("ci_high"))
    if value == DASH or low is None or high is None:
        return value
    return f"{value} [{fmt_number(low)}, {fmt_number(high)}]"


def fmt_p(p: Any) -> str:
    """A p-value: three significant digits, ``< 0.001`` below that."""
    v = finite(p)
    if v is None:
        return DASH
    return "< 0.001" if v < 0.001 else f"{v:.3g}"


def fmt_percent(fraction: Any, digits: int = 0) -> str:
    v = finite(fraction)
    return DASH if v is None else f"{100 * v:.{digits}f} %"


def fmt_triple(values: Any, unit: str = "") -> str:
    """``(z, y, x)`` as ``a × b × c unit``; strings (``auto``) as they are."""
    if isinstance(values, list | tuple):
        return " × ".join(f"{float(v):g}" for v in values) + (f" {unit}" if unit else "")
    return DASH if values is None else str(values)


def phenotype_label(name: str) -> str:
    """A ground-truth phenotype column in words: ``texture_anisotropy`` -> ``texture
    anisotropy``, ``diameter_mm`` -> ``diameter``."""
    return name.removesuffix("_mm").replace("_", " ")
