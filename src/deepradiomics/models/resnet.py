"""3D ResNet-10/18/34/50: MONAI's ``ResNet`` with a cheap stem and optional anisotropic stages.

MONAI's default stem (7^3 conv, stride 1, 64 channels) costs about 11.5 GFLOP per 64^3 volume
on its own; here the stem is strided (``conv1_t_stride=2``) by default so a 64^3 volume costs a
few GFLOP in total (bench/models_results.md has the numbers). With ``spacing`` the stem,
max-pool and residual stages follow ``anisotropy.stage_kernels``: MONAI builds every block
with cubic 3^3 kernels and stride 2, so the convolutions of the in-plane stages are rebuilt
here with ``(1, 3, 3)`` kernels and ``(1, 2, 2)`` strides (MONAI has no per-stage kernel
argument). ResNet-50 uses bottleneck blocks, whose 3^3 convolution (``conv2``) is the one
rebuilt. ``shortcut_type`` and ``bias_downsample`` are MONAI's; published trunks need
particular values (``models.pretrained`` sets them).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from deepradiomics.errors import UserError
from deepradiomics.models.anisotropy import plan_for
from deepradiomics.models.registry import register_model

_LAYERS = {
    "resnet10": [1, 1, 1, 1],
    "resnet18": [2, 2, 2, 2],
    "resnet34": [3, 4, 6, 3],
    "resnet50": [3, 4, 6, 3],
}
_BOTTLENECK = {"resnet50"}


def _reshaped(conv: nn.Conv3d, kernel: Sequence[int], stride: Sequence[int]) -> nn.Conv3d:
    """``conv`` with a new kernel size / stride ('same' padding), re-initialised as MONAI does."""
    kernel, stride = tuple(kernel), tuple(stride)
    if conv.kernel_size == kernel and conv.stride == stride:
        return conv
    new = nn.Conv3d(
        conv.in_channels,
        conv.out_channels,
        kernel,
        stride=stride,
        padding=tuple(k // 2 for k in kernel),
        bias=conv.bias is not None,
    )
    nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
    return new


class ResNetBackbone(nn.Module):
    """MONAI ``ResNet`` without its classifier: ``forward_features`` is the pooled embedding."""

    def __init__(
        self,
        arch: str,
        in_channels: int = 1,
        conv1_t_size: int = 7,
        conv1_t_stride: int = 2,
        no_max_pool: bool = False,
        widen_factor: float = 1.0,
        spacing: Sequence[float] | None = None,
        anisotropy_ratio: float = 2.0,
        shortcut_type: str = "B",
        bias_downsample: bool = True,
        spatial_dims: int = 3,
    ) -> None:
        super().__init__()
        from monai.networks.nets import ResNet  # heavy import, only when a ResNet is built
        from monai.networks.nets.resnet import ResNetBlock, ResNetBottleneck, get_inplanes

        if conv1_t_stride not in (1, 2):
            raise ValueError(f"conv1_t_stride must be 1 or 2, got {conv1_t_stride}")
        if shortcut_type not in ("A", "B"):
            raise UserError(f"model.kwargs.shortcut_type must be 'A' or 'B', got {shortcut_type!r}")
        block = ResNetBottleneck if arch in _BOTTLENECK else ResNetBlock
        n_down = (conv1_t_stride == 2) + (not no_max_pool) + 3
        plan = plan_for(spacing, n_down + 1, anisotropy_ratio)
        stem_kernel = tuple(conv1_t_size if k == 3 else 1 for k in plan[0][0])
        stem_stride = plan[0][1] if conv1_t_stride == 2 else (1, 1, 1)
        if spatial_dims == 2:  # the 2D / 2.5D models (models.slices)
            if spacing is not None:
                raise ValueError("spacing applies to 3D models only")
            stem_kernel, stem_stride = stem_kernel[1:], stem_stride[1:]
        self.net = ResNet(
            block,
            _LAYERS[arch],
            get_inplanes(),
            spatial_dims=spatial_dims,
            n_input_channels=in_channels,
            conv1_t_size=stem_kernel,
            conv1_t_stride=stem_stride,
            no_max_pool=no_max_pool,
            widen_factor=widen_factor,
            shortcut_type=shortcut_type,
            bias_downsample=bias_downsample,
            feed_forward=False,
        )
        if spacing is not None:
            self._apply_plan(plan, stage=int(conv1_t_stride == 2))
        self.plan = plan
        self.num_features = int(get_inplanes()[3] * widen_factor) * block.expansion

    def _apply_plan(self, plan: list, stage: int) -> None:
        """Rebuild max-pool and block convolutions with the plan's per-stage kernels/strides."""
        net = self.net
        if not net.no_max_pool:
            kernel, pool = plan[stage]
            net.maxpool = nn.MaxPool3d(kernel, pool, padding=tuple(k // 2 for k in kernel))
            stage += 1
        for name in ("layer1", "layer2", "layer3", "layer4"):
            for i, block in enumerate(getattr(net, name)):
                kernel, pool = plan[stage]
                # the block's spatial convolutions, the strided one first (MONAI strides
                # conv1 of a basic block, conv2 of a bottleneck)
                convs = ["conv2"] if hasattr(block, "conv3") else ["conv1", "conv2"]
                for j, conv in enumerate(convs):
                    stride = (1, 1, 1)
                    if name != "layer1" and i == 0 and j == 0:  # the stage's strided entry
                        if not isinstance(block.downsample, nn.Sequential):
                            raise UserError(
                                "anisotropic ResNets need model.kwargs.shortcut_type 'B'"
                            )
                        block.downsample[0] = _reshaped(block.downsample[0], (1, 1, 1), pool)
                        stride, stage = pool, stage + 1
                    setattr(block, conv, _reshaped(getattr(block, conv), kernel, stride))
                    kernel = plan[stage][0]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    forward = forward_features


def _resnet(depth: int) -> Callable[..., ResNetBackbone]:
    """The registered builder of ResNet-``depth`` (MONAI), strided 7^3 stem by default: takes
    ``ResNetBackbone``'s keywords except ``arch`` and ``spatial_dims`` (3D only), and says so
    in its signature, which ``create_model`` checks user keywords against."""

    def build(**kwargs: Any) -> ResNetBackbone:
        return ResNetBackbone(f"resnet{depth}", **kwargs)

    params = inspect.signature(ResNetBackbone).parameters
    build.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [p for name, p in params.items() if name not in ("arch", "spatial_dims")]
    )
    build.__name__ = build.__qualname__ = f"resnet{depth}"
    block = "bottleneck" if depth >= 50 else "basic"
    build.__doc__ = f"3D ResNet-{depth} (MONAI, {block} blocks), strided 7^3 stem by default."
    return register_model(build)


resnet10 = _resnet(10)
resnet18 = _resnet(18)
resnet34 = _resnet(34)
resnet50 = _resnet(50)
