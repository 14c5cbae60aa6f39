"""Report figures as inline SVG strings (matplotlib, imported lazily; no pyplot state).

Each figure's element ids are prefixed with the figure's name, so several SVGs inlined in
one HTML page never share an id. The XML header, DOCTYPE and namespace declarations are
dropped: HTML5 parses inline ``<svg>`` (and ``xlink:href``) without them, and the page then
holds no URL at all.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from deepradiomics.report.formatting import metric_label, model_label
from deepradiomics.report.risk_groups import RiskGroups

if TYPE_CHECKING:
    from matplotlib.figure import Figure

COLORS = {"cnn": "#1f77b4", "classical": "#ff7f0e", "classical_combat": "#2ca02c"}
_OTHER_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
_RC = {"font.size": 9, "axes.spines.top": False, "axes.spines.right": False, "svg.fonttype": "path"}


def styled(draw: Callable[..., str]) -> Callable[..., str]:
    """Run a figure function under the report's matplotlib style (fonts drawn as paths)."""

    @functools.wraps(draw)
    def wrapper(*args: Any, **kwargs: Any) -> str:
        import matplotlib

        with matplotlib.rc_context(_RC):
            return draw(*args, **kwargs)

    return wrapper


def color(model: str, index: int = 0) -> str:
    return COLORS.get(model, _OTHER_COLORS[index % len(_OTHER_COLORS)])


def new_figure(width: float = 5.0, height: float = 4.0, ncols: int = 1) -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    fig.subplots(1, ncols, squeeze=False)
    return fig


def legend_below(fig: Figure, ncols: int = 1) -> None:
    """The figure's legend under the axes, where it cannot hide data."""
    fig.legend(loc="outside lower center", ncols=ncols, fontsize=8, frameon=False)


def to_svg(fig: Figure, name: str) -> str:
    """The figure as an inline ``<svg>`` element whose ids all start with ``name``."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": name}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", svg, count=2)
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.DOTALL)
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{name}-\1"', svg)
    svg = re.sub(r'href="#([^"]+)"', rf'href="#{name}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{name}-\1)", svg)
    return svg.replace("<svg", f'<svg role="img" aria-label="{name}"', 1)


@styled
def roc_figure(curves: Mapping[str, tuple[np.ndarray, np.ndarray, str]]) -> str:
    """ROC curves, one per model: ``{model: (y_true, probability, legend text)}``."""
    from sklearn.metrics import roc_curve

    fig = new_figure(4.6, 4.9)
    ax = fig.axes[0]
    for i, (model, (y, p, legend)) in enumerate(curves.items()):
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, color=color(model, i), lw=1.8, label=legend)
    ax.plot([0, 1], [0, 1], ls="--", color="#999999", lw=1, label="chance")
    ax.set(
        xlabel="1 − specificity (false positive rate)",
        ylabel="sensitivity (true positive rate)",
        xlim=(0, 1),
        ylim=(0, 1.01),
        aspect="equal",
    )
    legend_below(fig)
    return to_svg(fig, "roc")


@styled
def calibration_figure(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]], n_bins: int = 10
) -> str:
    """Reliability diagram (observed event rate per bin of predicted probability, equal-width
    bins, empty bins skipped) and the distribution of predictions below it."""
    from matplotlib.figure import Figure
    from sklearn.calibration import calibration_curve

    fig = Figure(figsize=(4.6, 5.0), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot([0, 1], [0, 1], ls="--", color="#999999", lw=1, label="perfect calibration")
    edges = np.linspace(0, 1, n_bins + 1)
    for i, (model, (y, p)) in enumerate(curves.items()):
        observed, predicted = calibration_curve(y, p, n_bins=n_bins, strategy="uniform")
        top.plot(
            predicted,
            observed,
            marker="o",
            ms=4,
            lw=1.5,
            color=color(model, i),
            label=model_label(model),
        )
        bottom.hist(p, bins=edges, histtype="step", color=color(model, i), lw=1.3)
    top.set(ylabel="observed fraction of positives", xlim=(0, 1), ylim=(0, 1))
    top.legend(loc="upper left", fontsize=8, frameon=False)
    bottom.set(xlabel="predicted probability", ylabel="cases")
    bottom.yaxis.get_major_locator().set_params(integer=True)
    return to_svg(fig, "calibration")


@styled
def km_figure(groups: Mapping[str, RiskGroups], p_texts: Mapping[str, str]) -> str:
    """Kaplan-Meier curves of the low/high predicted-risk groups, one panel per model."""
    fig = new_figure(4.4 * len(groups), 3.8, ncols=len(groups))
    for ax, (model, g) in zip(fig.axes, groups.items(), strict=False):
        for curve, col in zip(g.curves, ("#2b8cbe", "#d7301f"), strict=False):
            ax.step(
                curve.time,
                curve.survival,
                where="post",
                color=col,
                lw=1.8,
                label=f"{curve.label} (n = {curve.n}, {curve.events} events)",
            )
            ax.fill_between(
                curve.time, curve.ci_low, curve.ci_high, step="post", color=col, alpha=0.15, lw=0
            )
        ax.set(
            title=f"{model_label(model)}: log-rank p {p_texts[model]}",
            xlabel="time",
            ylabel="survival probability",
            ylim=(0, 1.02),
        )
        ax.legend(loc="lower left", fontsize=8, frameon=False)
    return to_svg(fig, "km")


@styled
def learning_curve_figure(records: Sequence[Mapping[str, Any]]) -> str:
    """Mean test score (error bars: SD over repeats) against the training fraction, one line
    per model; the training score dashed in the same colour."""
    import pandas as pd

    table = pd.DataFrame(list(records))
    metric = str(table["metric"].iloc[0]) if "metric" in table.columns else "score"
    fig = new_figure(5.2, 4.2)
    ax = fig.axes[0]
    for i, (model, part) in enumerate(table.groupby("model", sort=False)):
        name, col = model_label(str(model)), color(str(model), i)
        test = part.groupby("fraction")["test_score"].agg(["mean", "std"])
        x = 100 * test.index.to_numpy(dtype=float)
        ax.errorbar(
            x,
            test["mean"],
            yerr=test["std"].fillna(0.0),
            marker="o",
            ms=4,
            capsize=3,
            lw=1.8,
            color=col,
            label=f"{name}: test",
        )
        if "train_score" in part.columns and part["train_score"].notna().any():
            train = part.groupby("fraction")["train_score"].mean()
            ax.plot(
                100 * train.index.to_numpy(dtype=float),
                train.to_numpy(),
                ls="--",
                lw=1,
                color=col,
                label=f"{name}: training",
            )
    ax.set(xlabel="training data used (%)", ylabel=metric_label(metric), xlim=(0, 105))
    legend_below(fig, ncols=2)
    return to_svg(fig, "learning-curve")


@styled
def ensemble_figure(member_errors: Sequence[float], ensemble_error: float, metric: str) -> str:
    """Each member's error as a point, with the members' mean and the ensemble's error as lines."""
    fig = new_figure(max(3.8, 0.35 * len(member_errors) + 2.5), 3.8)
    ax = fig.axes[0]
    errors = np.asarray(member_errors, dtype=float)
    ax.plot(np.arange(1, len(errors) + 1), errors, "o", color="#3182bd", label="member")
    ax.axhline(float(np.mean(errors)), color="#636363", ls=":", lw=1.3, label="mean of members")
    ax.axhline(ensemble_error, color="#d7301f", lw=1.8, label="ensemble (averaged predictions)")
    ax.set(
        xlabel="member",
        ylabel=f"{metric_label(metric)} (lower is better)",
        xlim=(0.4, len(errors) + 0.6),
    )
    ax.xaxis.get_major_locator().set_params(integer=True)
    legend_below(fig)
    return to_svg(fig, "ensemble")


@styled
def uncertainty_figure(std: np.ndarray) -> str:
    """Histogram of the ensemble spread (cnn_std) over the evaluated cases."""
    fig = new_figure(4.6, 3.2)
    ax = fig.axes[0]
    ax.hist(np.asarray(std, dtype=float), bins=20, color="#756bb1")
    ax.set(xlabel="spread between ensemble members (cnn_std)", ylabel="cases")
    ax.yaxis.get_major_locator().set_params(integer=True)
    return to_svg(fig, "uncertainty")


@styled
def truth_figure(
    correlations: Mapping[str, Mapping[str, tuple[float, float, float]]],
    components: Sequence[str],
) -> str:
    """Grouped bars: per risk component, each model's rank correlation with its CI."""
    fig = new_figure(max(4.6, 1.3 * len(components) + 1.8), 3.6)
    ax = fig.axes[0]
    models = list(correlations)
    width = 0.8 / max(len(models), 1)
    x = np.arange(len(components))
    for i, model in enumerate(models):
        vals = np.array(
            [correlations[model].get(c, (np.nan,) * 3) for c in components], dtype=float
        )
        value, low, high = vals[:, 0], vals[:, 1], vals[:, 2]
        err = np.vstack([value - low, high - value])
        err = np.where(np.isfinite(err), err, 0.0)
        ax.bar(
            x + (i - (len(models) - 1) / 2) * width,
            np.nan_to_num(value),
            width,
            yerr=err,
            capsize=2,
            color=color(model, i),
            label=model_label(model),
        )
    ax.axhline(0.0, color="#57606a", lw=0.8)
    ax.set_xticks(x, list(components))
    ax.set(
        xlabel="component of the true risk",
        ylabel="rank correlation with the score",
        ylim=(-0.5, 1.0),
    )
    legend_below(fig, ncols=min(len(models), 3))
    return to_svg(fig, "truth")
