"""The learning curve's sentence: which model leads at the small and at the large sizes."""

from __future__ import annotations

import pytest

from deepradiomics.report.narrative import learning_curve_verdict


def curve(gaps: list[float], repeats: int = 2, metric: str = "auc") -> list[dict]:
    """CNN 0.7 + gap and classical 0.7 at 25 / 50 / 75 / 100 % of 160 training cases, the
    same at every repeat."""
    fractions = (0.25, 0.5, 0.75, 1.0)[: len(gaps)]
    return [
        {
            "model": model,
            "fraction": f,
            "n_train": int(160 * f),
            "repeat": r,
            "test_score": s,
            "metric": metric,
        }
        for f, g in zip(fractions, gaps, strict=True)
        for r in range(repeats)
        for model, s in (("cnn", 0.7 + g), ("classical", 0.7))
    ]


@pytest.mark.parametrize(
    ("gaps", "expected"),
    [
        (
            [-0.08, -0.01, 0.0, 0.06],
            "Crossover: Classical radiomics is ahead up to 80 training cases, CNN from 160 "
            "training cases (CNN - Classical radiomics -0.080 at 40 training cases, +0.060 at "
            "160 training cases;",
        ),
        (
            [0.04, 0.02, -0.03],
            "Crossover: CNN is ahead up to 80 training cases, Classical radiomics from 120",
        ),
        ([-0.02, -0.05], "No crossover: Classical radiomics is ahead at every size"),
        ([0.04, -0.01, 0.03], "The curves cross more than once (CNN - Classical radiomics"),
    ],
)
def test_the_sentence_names_who_leads_where(gaps: list[float], expected: str) -> None:
    verdict = learning_curve_verdict(curve(gaps))
    assert verdict.startswith(expected), verdict
    assert verdict.endswith("one outer fold, 2 repeat(s) per size: small differences are noise).")


def test_no_sentence_without_two_models_at_two_sizes() -> None:
    assert learning_curve_verdict(curve([0.05])) == ""
    assert learning_curve_verdict([r for r in curve([0.1, 0.2]) if r["model"] == "cnn"]) == ""


def test_a_lower_is_better_metric_flips_who_leads() -> None:
    assert learning_curve_verdict(curve([0.05, 0.04], metric="mae")).startswith(
        "No crossover: Classical radiomics is ahead at every size"
    )
    assert learning_curve_verdict(curve([0.0, 0.0])).startswith("The curves are level")
