"""model_card.md from the same fake run folders as the report."""

from __future__ import annotations

import json

from deepradiomics.report import write_model_card
from tests.report.run_builder import binary_run, regression_run, survival_run, truth_with_probe


def ci(e: dict) -> str:
    return f"{e['value']:.3f} [{e['ci_low']:.3f}, {e['ci_high']:.3f}]"


def test_binary_model_card(tmp_path):
    run = binary_run(tmp_path / "run")
    card = write_model_card(run)
    assert card == run / "model_card.md"
    text = card.read_text()
    assert text.startswith("# Model card: demo-binary")
    mitchell = [
        "## Model details",
        "## Intended use",
        "## Factors",
        "## Metrics",
        "## Evaluation data",
        "## Training data",
        "## Quantitative analyses",
        "## Ethical considerations",
        "## Caveats and recommendations",
    ]  # Mitchell et al. 2019, in their order
    assert [line for line in text.splitlines() if line.startswith("## ")] == mitchell
    assert "- Subgroups evaluated: sex, age_band" in text
    assert "By sex (CNN; groups too small to compare are marked):" in text
    metrics = json.loads((run / "metrics.json").read_text())
    pooled = next(line for line in text.splitlines() if line.startswith("| AUC |"))
    assert (
        pooled
        == "| AUC | "
        + " | ".join(
            ci(metrics["models"][m]["test"]["auc"])
            for m in ("cnn", "classical", "classical_combat")
        )
        + " |"
    )
    assert "Per site, CNN, next to pooled:" in text
    assert ci(metrics["per_site"]["gamma"]["auc"]) in text
    assert "| alpha | 40 | 34 |" in text
    limitations = text[text.index("## Caveats and recommendations") :]
    assert (
        "Confounding audit: The site is strongly predictable from the CNN's embeddings (AUC 0.93"
        in limitations
    )
    assert "Small site(s) alpha, beta" in limitations  # under 10 positives
    assert "CNN outperforms Classical radiomics on AUC" in limitations
    assert "Sites were mixed inside the splits (kfold)" in limitations
    assert "5-fold cross-validation" in text and "200 bootstrap resamples" in text
    assert "case-0" not in text and "pat-0" not in text
    # the learning curve in numbers: cnn 0.7 + 0.1 f + 0.01 r, classical 0.02 lower
    assert "Learning curve (first fold; mean test score, SD over repeats):" in text
    assert "| 50 % | 48 | 0.755 (0.007) | 0.735 (0.007) | 0.020 |" in text
    assert "No crossover: CNN is ahead at every size (CNN - Classical radiomics +0.020" in text


def test_survival_and_regression_cards(tmp_path):
    text = write_model_card(survival_run(tmp_path / "surv")).read_text()
    assert "survival (risk) prediction of `time / event`" in text
    assert "| C-index (Harrell) | 0.712 [0.662, 0.762] | 0.662 [0.612, 0.712] |" in text
    assert "single CNN" in text
    text = write_model_card(regression_run(tmp_path / "reg")).read_text()
    assert "cohort.json is not in the run folder" in text
    assert "| MAE | 3.211 [2.711, 3.711] |" in text
    assert "held-out test set" in text


def test_model_card_gives_the_phenotype_probe(tmp_path):
    run = binary_run(tmp_path / "run")
    assert "phenotype probe" not in write_model_card(run).read_text()
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["truth"] = truth_with_probe()
    (run / "metrics.json").write_text(json.dumps(metrics))
    text = write_model_card(run).read_text()
    lines = text.splitlines()
    top = lines.index("| phenotype (part of the risk) | CNN embeddings | hand-crafted features |")
    assert lines[top + 2] == "| diameter (visible) | 0.900 [0.800, 1.000] | 0.950 [0.850, 1.050] |"
    assert lines[top + 4].startswith("| texture anisotropy (spatial) | 0.500 [0.400, 0.600]")
    assert (
        "The CNN's embeddings carry more of texture anisotropy (0.500 vs 0.250) and less of "
        "necrosis (0.300 vs 0.800) than the hand-crafted features"
    ) in text
