"""Rotation-equivariant group CNNs over 90-degree rotations of the voxel grid (written by hand).

Two groups: C4, the 4 in-plane rotations about z (good for anisotropic CT/MR, where only the
axial plane has no preferred direction), and O, the 24 rotations of the cube (isotropic
voxels). A *lifting* convolution turns an image into feature maps indexed by (channel, group
element); *group* convolutions keep that index; every filter is shared by all rotated copies,
so rotating the input rotates the feature maps and permutes the group index. Averaging over
space and taking the maximum over the group index gives an embedding that is exactly
invariant to the group's rotations of the whole input (about its centre).

Exactness needs care, and every layer here keeps it: odd kernels with symmetric 'same'
zero padding, stride 1, and a max-pool that tiles each axis symmetrically (kernel 2 on even
sizes, kernel 3 with padding 1 on odd sizes, stride 2 both; see ``SymmetricMaxPool``).
Why not escnn: it needs gfortran and downgrades numpy (PERFORMANCE.md); a 90-degree group
convolution is a few dozen lines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from deepradiomics.errors import UserError
from deepradiomics.models.anisotropy import plan_for
from deepradiomics.models.registry import register_model

# rot90 planes among the last three axes (z, y, x): 0 -> rotate in (y, x), 1 -> in (z, x)
_PLANES = {"yx": (-2, -1), "zx": (-3, -1)}


class RotationGroup:
    """A finite group of 90-degree grid rotations, closed from generator planes.

    Elements are words of generator rotations; ``act(t, g)`` rotates the last three axes of
    ``t`` by element ``g``. ``mul[a][b]`` is the index of "b, then a"; ``inv[a]`` of a's inverse.
    """

    def __init__(self, planes: Sequence[str]) -> None:
        self.planes = [_PLANES[p] for p in planes]
        probe = torch.arange(27.0).reshape(3, 3, 3)  # no symmetry: its images identify rotations
        self.words: list[tuple[int, ...]] = [()]
        keys = {self._key(probe): 0}
        frontier = [()]
        while frontier:  # breadth-first closure: shortest words first, identity is element 0
            nxt = []
            for word in frontier:
                for j in range(len(self.planes)):
                    cand = word + (j,)
                    key = self._key(self._apply(probe, cand))
                    if key not in keys:
                        keys[key] = len(self.words)
                        self.words.append(cand)
                        nxt.append(cand)
            frontier = nxt
        n = len(self.words)
        self.mul = [
            [keys[self._key(self.act(self.act(probe, b), a))] for b in range(n)] for a in range(n)
        ]
        self.inv = [row.index(0) for row in self.mul]

    @staticmethod
    def _key(t: torch.Tensor) -> tuple[float, ...]:
        return tuple(t.flatten().tolist())

    def _apply(self, t: torch.Tensor, word: tuple[int, ...]) -> torch.Tensor:
        for j in word:
            t = torch.rot90(t, 1, self.planes[j])
        return t

    def __len__(self) -> int:
        return len(self.words)

    def act(self, t: torch.Tensor, g: int) -> torch.Tensor:
        """Rotate the last three axes of ``t`` by element ``g``."""
        return self._apply(t, self.words[g])


GROUPS = {"c4": ("yx",), "cube": ("yx", "zx")}


class LiftingConv(nn.Module):
    """Image ``[N, C, D, H, W]`` -> group features ``[N, O * |G|, D, H, W]`` (o-major)."""

    def __init__(self, group: RotationGroup, cin: int, cout: int, kernel: Sequence[int]) -> None:
        super().__init__()
        self.group = group
        self.weight = nn.Parameter(torch.empty(cout, cin, *kernel))
        nn.init.kaiming_normal_(self.weight, nonlinearity="relu")
        self.padding = tuple(k // 2 for k in kernel)

    def full_weight(self) -> torch.Tensor:
        w = torch.stack([self.group.act(self.weight, g) for g in range(len(self.group))], 1)
        return w.flatten(0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv3d(x, self.full_weight(), padding=self.padding)


class GroupConv(nn.Module):
    """Group features ``[N, C * |G|, ...]`` -> ``[N, O * |G|, ...]``; filter for output g is
    the base filter rotated by g with its input group axis permuted by ``g^-1``."""

    def __init__(self, group: RotationGroup, cin: int, cout: int, kernel: Sequence[int]) -> None:
        super().__init__()
        self.group = group
        n = len(group)
        self.weight = nn.Parameter(torch.empty(cout, cin, n, *kernel))
        fan_in = cin * n * math.prod(kernel)
        nn.init.normal_(self.weight, std=math.sqrt(2.0 / fan_in))
        self.padding = tuple(k // 2 for k in kernel)
        perms = [[group.mul[group.inv[g]][h] for h in range(n)] for g in range(n)]
        self.register_buffer("perms", torch.tensor(perms), persistent=False)

    def full_weight(self) -> torch.Tensor:
        w = torch.stack(
            [self.group.act(self.weight[:, :, self.perms[g]], g) for g in range(len(self.group))], 1
        )  # [O, G_out, C, G_in, k...]
        return w.flatten(0, 1).flatten(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv3d(x, self.full_weight(), padding=self.padding)


class GroupBatchNorm(nn.Module):
    """BatchNorm with one (mean, var, gamma, beta) per channel shared by all group copies."""

    def __init__(self, channels: int, group_size: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm3d(channels)
        self.channels, self.group_size = channels, group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, d, h, w = x.shape
        y = self.bn(x.reshape(n, self.channels, self.group_size * d, h, w))
        return y.reshape(x.shape)


class SymmetricMaxPool(nn.Module):
    """Max-pool by 2 (or 1) per axis whose windows tile each axis symmetrically about its
    centre, so the pooling commutes with flips and 90-degree rotations: kernel 2 on even
    sizes, kernel 3 with padding 1 on odd sizes, stride 2 in both cases."""

    def __init__(self, pool: Sequence[int]) -> None:
        super().__init__()
        if any(p not in (1, 2) for p in pool):
            raise ValueError(f"pool factors must be 1 or 2, got {tuple(pool)}")
        self.pool = tuple(pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        kernel = tuple(
            1 if p == 1 else (2 if n % 2 == 0 else 3) for p, n in zip(self.pool, size, strict=False)
        )
        padding = tuple(k // 2 if k == 3 else 0 for k in kernel)
        return F.max_pool3d(x, kernel, self.pool, padding)


class GroupCNN(nn.Module):
    """Lifting conv + group convs (two per stage, BN, ReLU), symmetric pooling between stages;
    ``forward_features`` = mean over space, max over the group -> invariant ``[N, widths[-1]]``.

    ``spacing`` (C4 only) gives nnU-Net-style in-plane ``(1, 3, 3)`` kernels and ``(1, 2, 2)``
    pooling early on; the cube group needs isotropic voxels and a cubic input.
    """

    def __init__(
        self,
        group: str,
        in_channels: int = 1,
        widths: Sequence[int] = (4, 8, 16, 32),
        spacing: Sequence[float] | None = None,
        anisotropy_ratio: float = 2.0,
    ) -> None:
        super().__init__()
        self.group = RotationGroup(GROUPS[group])
        n = len(self.group)
        if spacing is not None:
            sz, sy, sx = (float(s) for s in spacing)
            if abs(sy - sx) > 1e-3 * max(sy, sx):
                raise UserError(
                    f"model 'gcnn_{group}': 90-degree in-plane rotations need square pixels, "
                    f"got spacing (y, x) = ({sy}, {sx})"
                )
            if group == "cube" and abs(sz - sy) > 1e-3 * max(sz, sy):
                raise UserError(
                    f"model 'gcnn_cube' needs isotropic voxels, got spacing {tuple(spacing)}"
                )
        plan = plan_for(spacing, len(widths), anisotropy_ratio)
        layers: list[nn.Module] = []
        cin = in_channels
        for i, (width, (kernel, _)) in enumerate(zip(widths, plan, strict=False)):
            if i == 0:
                layers.append(LiftingConv(self.group, cin, width, kernel))
            else:
                layers.append(SymmetricMaxPool(plan[i - 1][1]))
                layers.append(GroupConv(self.group, cin, width, kernel))
            layers += [GroupBatchNorm(width, n), nn.ReLU(inplace=True)]
            layers += [
                GroupConv(self.group, width, width, kernel),
                GroupBatchNorm(width, n),
                nn.ReLU(inplace=True),
            ]
            cin = width
        self.trunk = nn.Sequential(*layers)
        self.plan = plan
        self.num_features = int(widths[-1])

    def forward_trunk(self, x: torch.Tensor) -> torch.Tensor:
        """Group feature maps ``[N, F, |G|, d, h, w]`` (equivariant, before pooling)."""
        y = self.trunk(x)
        return y.reshape(y.shape[0], self.num_features, len(self.group), *y.shape[2:])

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_trunk(x).flatten(3).mean(-1).amax(-1)

    forward = forward_features


@register_model
def gcnn_c4(
    in_channels: int = 1,
    widths: Sequence[int] = (4, 8, 16, 32),
    spacing: Sequence[float] | None = None,
    anisotropy_ratio: float = 2.0,
) -> GroupCNN:
    """C4 group CNN: exactly invariant to 90-degree rotations in the axial (y, x) plane.

    ``4 x widths`` channels (16-128 by default): small3d's cost with a quarter of its weights."""
    return GroupCNN("c4", in_channels, widths, spacing, anisotropy_ratio)


@register_model
def gcnn_cube(
    in_channels: int = 1,
    widths: Sequence[int] = (2, 4, 8, 16),
    spacing: Sequence[float] | None = None,
) -> GroupCNN:
    """Cube-group (24 rotations) CNN: exactly invariant to every 90-degree rotation of a cube
    input; channel counts are ``24 x widths`` (48-384), so it is meant for crops up to ~32^3
    (forward: about 9.5 GFLOP per 32^3 volume, 76 per 64^3)."""
    return GroupCNN("cube", in_channels, widths, spacing)
