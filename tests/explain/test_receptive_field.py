"""Theoretical receptive field (traced layer arithmetic) = empirical one (gradient support)."""

from __future__ import annotations

import json

import pytest
import torch

from deepradiomics.cli import main
from deepradiomics.explain.field_spec import build_backbone
from deepradiomics.explain.receptive_field import empirical_receptive_field, receptive_field

# narrow widths: the field does not depend on channel counts, and the test stays fast
CASES = [
    ("small3d", {"widths": (2, 2, 2, 2)}, (1.0, 1.0, 1.0), (40, 40, 40)),
    ("small3d", {"widths": (2, 2, 2, 2)}, (5.0, 0.7, 0.7), (12, 64, 64)),
    ("resnet10", {"widen_factor": 1 / 16}, (1.0, 1.0, 1.0), (48, 48, 48)),
    ("resnet10", {"widen_factor": 1 / 16}, (4.0, 1.0, 1.0), (16, 64, 64)),
    ("gcnn_c4", {"widths": (1, 1, 1, 1)}, (1.0, 1.0, 1.0), (24, 24, 24)),
    ("densenet_small", {"init_features": 4, "growth_rate": 2}, (1.0, 1.0, 1.0), (32, 32, 32)),
    ("small25d", {"widths": (2, 2, 2, 2)}, (1.0, 1.0, 1.0), (9, 40, 40)),
]


@pytest.mark.parametrize(
    "name,kwargs,spacing,shape", CASES, ids=[f"{c[0]}-{'x'.join(map(str, c[2]))}" for c in CASES]
)
def test_theoretical_field_equals_gradient_support(name, kwargs, spacing, shape) -> None:
    torch.manual_seed(0)
    backbone = build_backbone(name, kwargs, spacing, None)
    stages = receptive_field(backbone, shape, spacing)
    measured = empirical_receptive_field(backbone, shape)
    assert len(stages) == len(measured) >= 3
    for stage, extent in zip(stages, measured, strict=False):
        assert stage.extent_in(shape) == extent, stage
    # a downsampled stage's field fits inside the input unclipped: the full size is compared
    assert any(s.extent_in(shape) == s.voxels for s in stages if max(s.stride) > 1)


def test_known_values_and_millimetres() -> None:
    # small3d, isotropic: two 3^3 convs per stage, 2^3 max-pools: 5, 14, 32, 68 voxels
    b = build_backbone("small3d", {"widths": (2, 2, 2, 2)}, (1.0, 1.0, 1.0), None)
    assert [s.voxels[0] for s in receptive_field(b, (32, 32, 32))] == [5, 14, 32, 68]
    # 5 mm slices, 0.7 mm pixels: in-plane kernels until z is pooled, field counted in mm
    b = build_backbone("small3d", {"widths": (2, 2, 2, 2)}, (5.0, 0.7, 0.7), None)
    stages = receptive_field(b, (12, 64, 64), (5.0, 0.7, 0.7))
    assert [s.voxels for s in stages] == [(1, 5, 5), (1, 14, 14), (5, 32, 32), (14, 68, 68)]
    assert stages[-1].mm == pytest.approx((70.0, 47.6, 47.6))
    assert stages[-1].stride == (2, 8, 8)


def test_cli_model_and_spacing(tmp_path, capsys) -> None:
    out = tmp_path / "rf.json"
    assert (
        main(
            [
                "receptive-field",
                "small3d",
                "--spacing",
                "2",
                "1",
                "1",
                "--shape",
                "32",
                "48",
                "48",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "136 x 68 x 68" in text
    data = json.loads(out.read_text())
    assert data["stages"][-1]["mm"] == [136.0, 68.0, 68.0]
    assert data["shape"] == [32, 48, 48]


def test_cli_config_with_explicit_preprocess(tmp_path, capsys) -> None:
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(
        "model: {name: small3d, kwargs: {widths: [2, 2, 2, 2]}}\n"
        "preprocess: {spacing: [1.0, 1.0, 1.0], crop_mm: [48, 48, 48]}\n"
    )
    assert main(["receptive-field", str(cfg)]) == 0
    text = capsys.readouterr().out
    assert "crop   48 x 48 x 48 mm -> 48 x 48 x 48 voxels" in text
    assert "first stage whose field covers the whole crop: 4" in text


def test_cli_config_auto_spacing_needs_a_plan(tmp_path, capsys) -> None:
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("model: {name: small3d}\n")
    assert main(["receptive-field", str(cfg)]) == 1
    assert "--plan" in capsys.readouterr().err


def test_cli_unknown_model(capsys) -> None:
    assert main(["receptive-field", "nonet"]) == 1
    assert "unknown model 'nonet'" in capsys.readouterr().err


@pytest.mark.parametrize("kernel", [5, 9])
def test_lesion_texture_reports_its_fft_filters_support(kernel: int) -> None:
    from deepradiomics.models import create_model

    model = create_model("lesion_texture", in_channels=2, texture_channels=1, kernel=kernel)
    (stage,) = receptive_field(model.backbone, (8, 24, 24), spacing=(2.0, 0.5, 0.5))
    # each oriented energy is a k x k in-plane filter applied slice by slice (through the FFT)
    assert stage.voxels == (1, kernel, kernel) and stage.stride == (1, 1, 1)
    assert stage.mm == (2.0, kernel * 0.5, kernel * 0.5)
