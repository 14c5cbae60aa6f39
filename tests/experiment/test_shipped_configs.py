"""The configs a user copies (examples/*.yaml) and the demo's own config parse and say what they promise."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepradiomics.config import load_config
from deepradiomics.experiment.demo import demo_config

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


def test_there_are_examples_for_binary_survival_and_adrenalmnist():
    names = {p.stem for p in EXAMPLES}
    assert {"synthetic_binary", "synthetic_survival", "adrenalmnist3d"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_config_is_valid(path: Path):
    cfg = load_config(path)
    assert cfg.name and cfg.cohort.path
    if path.stem.startswith("adrenalmnist3d"):
        assert str(cfg.cohort.path).endswith(".npz") and cfg.evaluate.split == "official"


def test_demo_config_is_valid_and_compares_with_the_classical_baseline(tmp_path: Path):
    cfg = demo_config(tmp_path / "cohort.csv")
    assert Path(cfg.cohort.path) == tmp_path / "cohort.csv"
    assert cfg.evaluate.classical and cfg.evaluate.combat and cfg.evaluate.learning_curve.enabled
    assert cfg.evaluate.split == "kfold"
    # the texture model sees the lesion through its mask channel, and the plan counts z as
    # anisotropic so that augmentation never turns a texture through z (bench/cnn_investigation.md)
    assert cfg.model.name == "lesion_texture" and cfg.preprocess.mask_channel
    spacing = cfg.preprocess.spacing
    assert spacing[0] / spacing[1] >= cfg.preprocess.anisotropy_ratio
    assert cfg.cohort.subgroups == ["sex", "age_band"]  # the demo report's fairness section
