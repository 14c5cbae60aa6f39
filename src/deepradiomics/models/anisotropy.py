"""Per-stage convolution kernels and pooling for anisotropic voxels (nnU-Net's rule, small).

A CT with 0.7 x 0.7 mm pixels and 5 mm slices has voxels seven times longer along z. A 3x3x3
kernel there mixes tissue 15 mm apart along z but 2 mm apart in-plane, and pooling z early
throws the few slices away. nnU-Net's answer: while an axis's spacing is more than ``ratio``
times the finest spacing, give it kernel 1 and do not pool it; pool the other axes (which
doubles their effective spacing) until the axes are comparable, then go fully 3D.

Everything is in array order ``(z, y, x)``, like ``io.readers.spacing_zyx``; the in-plane
"3x3x1" kernel is ``(1, 3, 3)`` here.
"""

from __future__ import annotations

from collections.abc import Sequence

from deepradiomics.errors import UserError

Triple = tuple[int, int, int]


def _check_spacing(spacing_zyx: Sequence[float]) -> tuple[float, float, float]:
    if len(spacing_zyx) != 3 or not all(float(s) > 0 for s in spacing_zyx):
        raise UserError(
            "model spacing must be three positive numbers (z, y, x) in mm, "
            f"got {tuple(spacing_zyx)}"
        )
    return tuple(float(s) for s in spacing_zyx)  # type: ignore[return-value]


def stage_kernels(
    spacing_zyx: Sequence[float], n_stages: int, ratio: float = 2.0
) -> list[tuple[Triple, Triple]]:
    """``[(kernel, pool), ...]`` for ``n_stages`` resolution stages, first stage first.

    ``kernel`` is the convolution kernel used inside stage ``i``; ``pool`` is the downsampling
    factor applied at the end of stage ``i`` (a network with ``n`` stages uses the first
    ``n - 1`` pools). An axis whose current spacing exceeds ``ratio`` times the finest current
    spacing gets kernel 1 and pool 1; the others get kernel 3 and pool 2, and their spacing
    doubles for the next stage. Isotropic spacing gives ``((3, 3, 3), (2, 2, 2))`` everywhere.
    """
    if n_stages < 1:
        raise ValueError(f"n_stages must be >= 1, got {n_stages}")
    if ratio <= 1:
        raise UserError(f"anisotropy ratio must be > 1, got {ratio}")
    spacing = list(_check_spacing(spacing_zyx))
    plan: list[tuple[Triple, Triple]] = []
    for _ in range(n_stages):
        finest = min(spacing)
        coarse = [s > ratio * finest for s in spacing]
        kernel = tuple(1 if c else 3 for c in coarse)
        pool = tuple(1 if c else 2 for c in coarse)
        plan.append((kernel, pool))  # type: ignore[arg-type]
        spacing = [s * p for s, p in zip(spacing, pool, strict=False)]
    return plan


def isotropic_plan(n_stages: int) -> list[tuple[Triple, Triple]]:
    """The plan for cubic voxels: 3x3x3 kernels and 2x2x2 pooling at every stage."""
    return [((3, 3, 3), (2, 2, 2)) for _ in range(n_stages)]


def plan_for(
    spacing_zyx: Sequence[float] | None, n_stages: int, ratio: float = 2.0
) -> list[tuple[Triple, Triple]]:
    """``stage_kernels`` when a spacing is given, else the isotropic plan."""
    return (
        isotropic_plan(n_stages)
        if spacing_zyx is None
        else stage_kernels(spacing_zyx, n_stages, ratio)
    )
