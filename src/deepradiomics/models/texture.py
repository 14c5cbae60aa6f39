"""``lesion_texture``: a small CNN that looks at the lesion's texture and internal layout.

Built for phenotypes that a plain VGG trunk with early pooling and global averaging over the
whole crop misses (see ``bench/cnn_investigation.md``): the orientation of a texture at a
few-millimetre wavelength and where a necrotic core sits inside a lesion. Known answers to
texture, all here:

- the lesion mask is the last input channel (the network knows where the lesion is);
- no downsampling before the texture is resolved: stage 1 runs at the input resolution with
  in-plane kernels, stage 2 halves the in-plane resolution once;
- orderless pooling masked to the lesion: the masked mean of the stage-2 features (what and
  where inside the lesion, e.g. a dark core next to the margin) and a masked second-order
  (covariance, bilinear) pooling of a few stage-1 channels, the learned analogue of the
  structure tensor, whose eigenvalue spread measures how oriented the texture is whatever
  its angle; signed square root, as in bilinear CNNs;
- the lesion's log volume over the whole crop (size is the strongest single phenotype and masked means do not
  carry it);
- a small MLP on the pooled vector (orientation strength is not linear in the covariance
  entries).

``forward_features(x) -> [N, num_features]``; the input is ``[N, C, D, H, W]`` whose last
channel is the mask (read as mask > 0.5, so interpolation and intensity jitter do not
blur it).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from deepradiomics.models.registry import register_model

_EPS = 1e-6


class InPlaneConv(nn.Conv3d):
    """A ``(1, 3, 3)`` convolution run as a 2D convolution on ``[N * D, C, H, W]`` input
    (faster on CPU than Conv3d); its weight stays 5-D, so ``model.to(memory_format=
    torch.channels_last_3d)`` (the training loop) applies to it like to any Conv3d."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__(
            cin, cout, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight[:, :, 0], None, self.stride[1:], self.padding[1:])


def _block(cin: int, cout: int, kernel_z: int, stride: int = 1) -> nn.Sequential:
    """conv-BN-ReLU; in-plane only (2D on z-folded input, see ``InPlaneConv``) when
    ``kernel_z`` is 1, else ``(kernel_z, 3, 3)`` with in-plane ``stride``."""
    if kernel_z == 1:
        return nn.Sequential(
            InPlaneConv(cin, cout, stride), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
        )
    return nn.Sequential(
        nn.Conv3d(
            cin,
            cout,
            (kernel_z, 3, 3),
            stride=(1, stride, stride),
            padding=(kernel_z // 2, 1, 1),
            bias=False,
        ),
        nn.BatchNorm3d(cout),
        nn.ReLU(inplace=True),
    )


def masked_moments(feat: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted mean ``[N, C]`` and covariance ``[N, C, C]`` of ``feat`` ``[N, C, ...]`` over
    its spatial positions, weighted by ``weight`` ``[N, 1, ...]`` (>= 0)."""
    f = feat.flatten(2)
    w = weight.flatten(2)
    total = w.sum(-1, keepdim=True).clamp_min(_EPS)  # [N, 1, 1]
    mean = (f * w).sum(-1, keepdim=True) / total  # [N, C, 1]
    centred = (f - mean) * w.sqrt()
    cov = centred @ centred.transpose(1, 2) / total  # [N, C, C]
    return mean.squeeze(-1), cov


def signed_sqrt(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.sqrt(x.abs() + _EPS)


class LesionTextureNet(nn.Module):
    """Two resolution stages, mask-weighted first- and second-order pooling, an MLP."""

    def __init__(
        self,
        in_channels: int = 2,
        widths: Sequence[int] = (16, 32),
        cov_channels: int = 8,
        hidden: int = 64,
        kernel_z: int = 1,
        z_slices: int | None = None,
    ) -> None:
        super().__init__()
        if z_slices is not None and z_slices < 1:
            raise ValueError(f"z_slices must be at least 1, got {z_slices}")
        self.z_slices = z_slices
        if in_channels < 2:
            raise ValueError(
                "lesion_texture needs an image channel and the mask as the last channel"
            )
        if len(widths) != 2:
            raise ValueError(f"widths must be two numbers (stage 1, stage 2), got {tuple(widths)}")
        w1, w2 = (int(w) for w in widths)
        self.in_plane = kernel_z == 1
        self.stage1 = nn.Sequential(_block(in_channels, w1, kernel_z), _block(w1, w1, kernel_z))
        self.stage2 = nn.Sequential(_block(w1, w2, kernel_z, 2), _block(w2, w2, kernel_z))
        self.reduce = nn.Conv3d(w1, cov_channels, 1)
        n_cov = cov_channels * (cov_channels + 1) // 2
        self.register_buffer(
            "_triu", torch.triu_indices(cov_channels, cov_channels), persistent=False
        )
        pooled = w1 + w2 + n_cov + 1
        # per-feature standardisation across the batch (a per-sample LayerNorm would divide
        # out the overall texture energy that distinguishes lesions)
        self.mlp = nn.Sequential(
            nn.BatchNorm1d(pooled), nn.Linear(pooled, hidden), nn.ReLU(inplace=True)
        )
        self.num_features = hidden

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled vector before the MLP: [mean stage 1, mean stage 2, cov, log volume]."""
        # hard 0/1: intensity augmentation may have scaled and shifted the mask channel
        mask = (x[:, -1:] > 0.5).to(x.dtype)
        log_volume = torch.log1p(mask.flatten(1).sum(1, keepdim=True))  # the whole crop's lesion
        if self.z_slices is not None and x.shape[2] > self.z_slices:  # the lesion's middle slab
            lo = (x.shape[2] - self.z_slices) // 2
            x, mask = x[:, :, lo : lo + self.z_slices], mask[:, :, lo : lo + self.z_slices]
        if self.in_plane:  # [N, C, D, H, W] -> [N * D, C, H, W] and back
            n, _, d = x.shape[:3]
            flat = x.transpose(1, 2).flatten(0, 1)
            f1 = self.stage1(flat)
            f2 = self.stage2(f1)
            unfold = lambda f: f.unflatten(0, (n, d)).transpose(1, 2)  # noqa: E731
            f1, f2 = unfold(f1), unfold(f2)
        else:
            f1 = self.stage1(x)
            f2 = self.stage2(f1)
        m2 = F.adaptive_avg_pool3d(mask, f2.shape[2:])
        mean1, _ = masked_moments(f1, mask)
        mean2, _ = masked_moments(f2, m2)
        _, cov = masked_moments(self.reduce(f1), mask)
        cov = signed_sqrt(cov[:, self._triu[0], self._triu[1]])
        return torch.cat([mean1, mean2, cov, log_volume], dim=1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.pooled(x))

    forward = forward_features


@register_model
def lesion_texture(
    in_channels: int = 2,
    widths: Sequence[int] = (16, 32),
    cov_channels: int = 8,
    hidden: int = 64,
    kernel_z: int = 1,
    z_slices: int | None = None,
) -> LesionTextureNet:
    """Lesion texture/layout CNN; the last input channel must be the lesion mask
    (``preprocess.mask_channel: true``). ``kernel_z`` 1: in-plane kernels (thick slices).
    ``z_slices``: convolve only that many central slices (the crop is centred on the lesion;
    the log volume still counts the whole mask): in-plane phenotypes at a fraction of the cost."""
    return LesionTextureNet(in_channels, widths, cov_channels, hidden, kernel_z, z_slices)
