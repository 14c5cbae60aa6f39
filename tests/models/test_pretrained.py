"""Published trunk weights from a local file: hash, weights-only loading, key layouts, freeze.

The checkpoints are random tensors written in the published key layouts (MedicalNet's
``{"state_dict": {"module.*", "module.conv_seg.*"}}`` built here without MONAI; FMCIB's
``trunk_state_dict`` / Lighter ``state_dict`` written from MONAI's ``resnet50``, which is
how the authors built it); nothing is downloaded. Narrow widths keep them small; the
published widths are checked on the meta device.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from deepradiomics.config import parse_config
from deepradiomics.dataset.arrays import ArrayData
from deepradiomics.errors import UserError
from deepradiomics.models import build_from_config as build_model
from deepradiomics.models import create_backbone
from deepradiomics.models.pretrained import pretrained_kwargs
from deepradiomics.train.loop import Setup, fit, make_optimiser

_DEPTHS = {10: ([1, 1, 1, 1], False), 18: ([2, 2, 2, 2], False), 50: ([3, 4, 6, 3], True)}


def medicalnet_state(depth: int, width: float = 1.0, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under Tencent/MedicalNet's ResNet names and shapes (``module.``-prefixed,
    with its ``conv_seg`` decoder); ResNet-18 has type-A (parameter-free) shortcuts."""
    layers, bottleneck = _DEPTHS[depth]
    shortcut_b = depth != 18
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}

    def conv(name: str, cin: int, cout: int, k: int) -> None:
        sd[f"{name}.weight"] = torch.randn(cout, cin, k, k, k, generator=g) * 0.05

    def bn(name: str, c: int) -> None:
        sd[f"{name}.weight"] = torch.rand(c, generator=g) + 0.5
        sd[f"{name}.bias"] = torch.randn(c, generator=g) * 0.1
        sd[f"{name}.running_mean"] = torch.randn(c, generator=g) * 0.1
        sd[f"{name}.running_var"] = torch.rand(c, generator=g) + 0.5
        sd[f"{name}.num_batches_tracked"] = torch.tensor(1234)

    planes = [int(p * width) for p in (64, 128, 256, 512)]
    expansion = 4 if bottleneck else 1
    inplanes = planes[0]
    conv("conv1", 1, inplanes, 7)
    bn("bn1", inplanes)
    for stage, (n_blocks, p) in enumerate(zip(layers, planes, strict=False), start=1):
        for b in range(n_blocks):
            pre = f"layer{stage}.{b}"
            if bottleneck:
                conv(f"{pre}.conv1", inplanes, p, 1), bn(f"{pre}.bn1", p)
                conv(f"{pre}.conv2", p, p, 3), bn(f"{pre}.bn2", p)
                conv(f"{pre}.conv3", p, p * 4, 1), bn(f"{pre}.bn3", p * 4)
            else:
                conv(f"{pre}.conv1", inplanes, p, 3), bn(f"{pre}.bn1", p)
                conv(f"{pre}.conv2", p, p, 3), bn(f"{pre}.bn2", p)
            entry = b == 0 and (stage > 1 or inplanes != p * expansion)
            if entry and shortcut_b:
                conv(f"{pre}.downsample.0", inplanes, p * expansion, 1)
                bn(f"{pre}.downsample.1", p * expansion)
            inplanes = p * expansion
    sd["conv_seg.0.weight"] = torch.randn(inplanes, 32, 2, 2, 2, generator=g)
    sd["conv_seg.0.bias"] = torch.randn(32, generator=g)
    bn("conv_seg.1", 32)
    conv("conv_seg.3", 32, 32, 3)
    bn("conv_seg.4", 32)
    conv("conv_seg.6", 32, 2, 1)
    return {f"module.{k}": v for k, v in sd.items()}


def fmcib_state(width: float = 0.25, seed: int = 0) -> dict[str, torch.Tensor]:
    """FMCIB's trunk (MONAI ``resnet50`` as the authors call it) with random weights and
    batch-norm statistics."""
    from monai.networks.nets import resnet50

    torch.manual_seed(seed)
    trunk = resnet50(
        pretrained=False,
        n_input_channels=1,
        widen_factor=width,
        conv1_t_stride=2,
        feed_forward=False,
        bias_downsample=True,
    )
    sd = trunk.state_dict()
    for k, v in sd.items():
        if k.endswith(("running_mean", "running_var")):
            sd[k] = torch.rand_like(v) + 0.5
        elif k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(99)
    return sd


def _save(obj: object, path: Path) -> str:
    torch.save(obj, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cfg(
    path: Path,
    sha: str,
    layout: str,
    name: str,
    kwargs: dict | None = None,
    freeze: bool = False,
    **extra: dict,
):
    return parse_config(
        {
            "seed": 3,
            "model": {
                "name": name,
                "kwargs": kwargs or {},
                "dropout": 0.0,
                "pretrained": {
                    "path": str(path),
                    "sha256": sha,
                    "layout": layout,
                    "freeze": freeze,
                },
            },
            **extra,
        }
    )


def _build(cfg, in_channels: int = 1, spacing=(5.0, 1.0, 1.0)):
    return build_model(cfg, "binary", in_channels, 2, spacing)


def _assert_trunk_equals(model, weights: dict[str, torch.Tensor]) -> None:
    trunk = model.backbone.net.state_dict()
    assert set(trunk) == set(weights), "every trunk tensor, nothing else"
    for k, v in weights.items():
        assert torch.equal(trunk[k], v), k


@pytest.mark.parametrize(("depth", "width"), [(10, 1.0), (18, 0.25), (50, 0.125)])
def test_medicalnet_layout_loads_every_trunk_tensor(
    tmp_path: Path, depth: int, width: float
) -> None:
    state = medicalnet_state(depth, width, seed=depth)
    path = tmp_path / f"resnet_{depth}.pth"
    sha = _save({"state_dict": state, "epoch": 200}, path)
    kwargs = {} if width == 1.0 else {"widen_factor": width}
    model = _build(_cfg(path, sha, "medicalnet", f"resnet{depth}", kwargs))
    trunk = {
        k[len("module.") :]: v for k, v in state.items() if not k.startswith("module.conv_seg.")
    }
    _assert_trunk_equals(model, trunk)
    # the published architecture, not the cohort's anisotropic plan (spacing was 5 x 1 x 1 mm)
    assert model.backbone.net.conv1.kernel_size == (7, 7, 7)
    assert model.backbone.net.conv1.stride == (2, 2, 2)
    out = model.eval()(torch.randn(2, 1, 32, 32, 32))["out"]
    assert out.shape == (2,) and torch.isfinite(out).all()


@pytest.mark.parametrize("form", ["trunk_state_dict", "lighter"])
def test_fmcib_layout_loads_every_trunk_tensor(tmp_path: Path, form: str) -> None:
    trunk = fmcib_state(width=0.25)
    head = {"0.0.weight": torch.randn(8, 1024), "0.0.bias": torch.randn(8)}
    if form == "trunk_state_dict":
        obj = {"trunk_state_dict": trunk, "head_state_dict": head}
    else:  # a Lighter training checkpoint
        obj = {
            "state_dict": {
                **{f"model.trunk.{k}": v for k, v in trunk.items()},
                **{f"model.heads.{k}": v for k, v in head.items()},
            }
        }
    path = tmp_path / "model_weights.torch"
    sha = _save(obj, path)
    model = _build(_cfg(path, sha, "fmcib", "resnet50", {"widen_factor": 0.25}))
    _assert_trunk_equals(model, trunk)


def test_fmcib_architecture_is_the_published_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry's resnet50 with the fmcib layout's keywords has exactly the tensors of
    FMCIB's MONAI constructor at the published width (built on the meta device: no memory;
    random init skipped, it takes seconds on meta tensors)."""
    from monai.networks.nets import resnet50

    monkeypatch.setattr(torch.nn.init, "kaiming_normal_", lambda t, *a, **k: t)

    with torch.device("meta"):
        ours = create_backbone("resnet50", **pretrained_kwargs("fmcib", "resnet50", {}))
        theirs = resnet50(
            pretrained=False,
            n_input_channels=1,
            widen_factor=2,
            conv1_t_stride=2,
            feed_forward=False,
            bias_downsample=True,
        )
    mine = {k: tuple(v.shape) for k, v in ours.net.state_dict().items()}
    assert mine == {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    assert ours.num_features == 4096 and mine["conv1.weight"] == (128, 1, 7, 7, 7)


def test_first_convolution_over_several_modalities(tmp_path: Path) -> None:
    """1-channel weights in a CT+PET model: the kernel is repeated and divided by 2, so equal
    channels give the published response."""
    state = medicalnet_state(10, 0.25)
    path = tmp_path / "resnet_10.pth"
    sha = _save({"state_dict": state}, path)
    one = _build(_cfg(path, sha, "medicalnet", "resnet10", {"widen_factor": 0.25})).eval()
    two = _build(
        _cfg(path, sha, "medicalnet", "resnet10", {"widen_factor": 0.25}), in_channels=2
    ).eval()
    w = state["module.conv1.weight"]
    assert torch.equal(two.backbone.net.conv1.weight, torch.cat([w, w], 1) / 2)
    x = torch.randn(2, 1, 32, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = one.backbone(x), two.backbone(torch.cat([x, x], 1))
    # float32 sums in another order: relative error ~1e-6 of the embedding's scale
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-5 * float(a.abs().max()))


def test_hash_mismatch_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "resnet_10.pth"
    _save({"state_dict": medicalnet_state(10, 0.25)}, path)
    with pytest.raises(
        UserError,
        match=rf"model.pretrained.sha256: {path} has SHA-256 [0-9a-f]{{64}}, the config expects 0{{64}}",
    ):
        _build(_cfg(path, "0" * 64, "medicalnet", "resnet10", {"widen_factor": 0.25}))
    with pytest.raises(UserError, match=r"model.pretrained.path: file not found: .*absent.pth"):
        _build(_cfg(tmp_path / "absent.pth", "0" * 64, "medicalnet", "resnet10"))


def test_mismatch_lists_missing_unexpected_and_reshaped_keys(tmp_path: Path) -> None:
    state = medicalnet_state(10, 0.25)
    del state["module.layer4.0.bn2.weight"]
    state["module.fc.weight"] = torch.zeros(3, 128)
    path = tmp_path / "resnet_10.pth"
    sha = _save({"state_dict": state}, path)
    # conv1_t_size 3 (the config wins over the layout's 7): the stem no longer fits either
    cfg = _cfg(path, sha, "medicalnet", "resnet10", {"widen_factor": 0.25, "conv1_t_size": 3})
    with pytest.raises(UserError) as err:
        _build(cfg)
    msg = str(err.value)
    assert f"{path} (medicalnet layout, model resnet10)" in msg
    assert "missing (1): layer4.0.bn2.weight" in msg
    assert "unexpected (1): fc.weight" in msg
    assert "shape mismatch (1): conv1.weight (16, 1, 7, 7, 7) vs model (16, 1, 3, 3, 3)" in msg
    # type-A shortcuts asked of a ResNet-10 checkpoint with type-B ones: downsample keys listed
    path_b = tmp_path / "resnet_10_b.pth"
    sha_b = _save({"state_dict": medicalnet_state(10, 0.25)}, path_b)
    with pytest.raises(
        UserError,
        match=r"unexpected \(18\): layer2.0.downsample.0.weight, layer2.0.downsample.1.weight",
    ):
        _build(
            _cfg(
                path_b,
                sha_b,
                "medicalnet",
                "resnet10",
                {"widen_factor": 0.25, "shortcut_type": "A"},
            )
        )


def test_wrong_container_and_wrong_model(tmp_path: Path) -> None:
    path = tmp_path / "weights.pth"
    sha = _save({"model": {}}, path)
    with pytest.raises(
        UserError,
        match=r"not a medicalnet checkpoint: expected a dict with 'state_dict', found \['model'\]",
    ):
        _build(_cfg(path, sha, "medicalnet", "resnet10"))
    with pytest.raises(
        UserError,
        match=r"model.pretrained.layout: fmcib weights fit resnet50; model.name is 'small3d'",
    ):
        _build(_cfg(path, sha, "fmcib", "small3d"))


class Payload:
    """Anything that is not a tensor or a built-in: torch.save pickles it by reference."""


def test_a_checkpoint_with_pickled_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "resnet_10.pth"
    sha = _save({"state_dict": medicalnet_state(10, 0.25), "opt": Payload()}, path)
    with pytest.raises(
        UserError, match=r"resnet_10.pth: refused: the file holds more than weights"
    ):
        _build(_cfg(path, sha, "medicalnet", "resnet10", {"widen_factor": 0.25}))


def test_config_validates_the_pretrained_block(tmp_path: Path) -> None:
    good = {"path": "w/resnet_10.pth", "sha256": "a" * 64, "layout": "medicalnet"}
    with pytest.raises(
        UserError, match=r"model.pretrained.layout: Input should be 'medicalnet' or 'fmcib'"
    ):
        parse_config({"model": {"name": "resnet10", "pretrained": {**good, "layout": "timm"}}})
    with pytest.raises(UserError, match=r"model.pretrained.sha256: String should match pattern"):
        parse_config({"model": {"name": "resnet10", "pretrained": {**good, "sha256": "abc"}}})
    with pytest.raises(UserError, match=r"model.pretrained.trunk_lr: unknown key"):
        parse_config({"model": {"name": "resnet10", "pretrained": {**good, "trunk_lr": 0.1}}})
    with pytest.raises(
        UserError,
        match=r"model.pretrained.layout: medicalnet weights fit resnet10, "
        r"resnet18, resnet34, resnet50; model.name is 'densenet121'",
    ):
        parse_config({"model": {"name": "densenet121", "pretrained": good}})  # at load, no file
    cfg = parse_config({"model": {"name": "resnet10", "pretrained": good}}, base_dir=tmp_path)
    assert cfg.model.pretrained.path == (tmp_path / "w/resnet_10.pth").resolve()
    assert cfg.model.pretrained.freeze is False


def test_predict_rebuilds_without_the_weights_file(tmp_path: Path) -> None:
    path = tmp_path / "resnet_10.pth"
    sha = _save({"state_dict": medicalnet_state(10, 0.25)}, path)
    cfg = _cfg(path, sha, "medicalnet", "resnet10", {"widen_factor": 0.25})
    trained = _build(cfg)
    path.unlink()
    rebuilt = build_model(cfg, "binary", 1, 2, None, load_pretrained=False)
    rebuilt.load_state_dict(trained.state_dict())  # same architecture: the bundle's weights fit


def _tiny_data(n: int = 8) -> ArrayData:
    g = torch.Generator().manual_seed(0)
    return ArrayData(
        images=torch.randn(n, 1, 16, 16, 16, generator=g),
        targets=torch.tensor([0.0, 1.0] * (n // 2)),
        case_ids=tuple(f"c{i}" for i in range(n)),
        patient_ids=tuple(f"p{i}" for i in range(n)),
    )


@pytest.mark.parametrize("freeze", [True, False])
def test_freeze_trains_only_the_heads(tmp_path: Path, freeze: bool) -> None:
    path = tmp_path / "resnet_10.pth"
    sha = _save({"state_dict": medicalnet_state(10, 0.25)}, path)
    cfg = _cfg(
        path,
        sha,
        "medicalnet",
        "resnet10",
        {"widen_factor": 0.25},
        freeze=freeze,
        train={
            "epochs": 1,
            "batch_size": 4,
            "warmup_epochs": 0,
            "lr": 0.01,
            "device": "cpu",
            "tta": False,
        },
        augment={"rotate90": False, "affine_p": 0.0},
    )
    model = _build(cfg)
    trunk = model.backbone.named_parameters()
    heads = [p for n, p in model.named_parameters() if not n.startswith("backbone.")]
    assert all(p.requires_grad != freeze for _, p in trunk)
    assert all(p.requires_grad for p in heads)
    optimised = {
        id(p) for group in make_optimiser(model, cfg.train).param_groups for p in group["params"]
    }
    expected = {id(p) for p in (heads if freeze else model.parameters())}
    assert optimised == expected
    before = {k: v.clone() for k, v in model.state_dict().items()}
    setup = Setup(task="binary", train=cfg.train, augment=cfg.augment, seed=0)
    fit(model, _tiny_data(), None, setup, tmp_path / "run", progress=False)  # 2 steps
    after = model.state_dict()
    trunk_keys = [k for k in before if k.startswith("backbone.")]
    changed = [k for k in trunk_keys if not torch.equal(before[k], after[k])]
    if freeze:  # weights and batch-norm statistics: the trunk stayed in eval mode
        assert changed == []
    else:
        assert len(changed) > len(trunk_keys) // 2
    assert not torch.equal(before["head.weight"], after["head.weight"])
