"""Where the attribution falls: lesion, a margin around it, the rest of the body, outside it.

Computed on the network-input grid (where the map, the prepared image and mask share voxels).
Shares are of the *positive* attribution (a map's sum over its positive voxels). The body is
the first channel above a low threshold (10 % of the way from its minimum to its 99th
percentile: air, padding and the table's surroundings are below), holes filled. A case whose
share outside the body exceeds ``OUTSIDE_FLAG`` (25 %) is flagged: the model may be reading
something other than the patient (a shortcut: padding, field of view, a marker).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage

REGIONS = ("lesion", "margin", "body", "outside")
MARGIN_MM = 10.0
OUTSIDE_FLAG = 0.25


def body_mask(channel: np.ndarray) -> np.ndarray:
    """Boolean body mask of one prepared channel ``[D, H, W]`` (see module doc)."""
    lo, hi = float(channel.min()), float(np.percentile(channel, 99))
    body = channel > lo + 0.1 * (hi - lo) if hi > lo else np.zeros(channel.shape, bool)
    return ndimage.binary_fill_holes(body)


@dataclass(frozen=True)
class Localisation:
    """Shares (0..1, summing to 1 when the map has positive attribution) per region."""

    lesion: float
    margin: float
    body: float
    outside: float
    flagged: bool

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def localise(
    attribution: np.ndarray,
    lesion: np.ndarray | None,
    body: np.ndarray,
    spacing: Sequence[float],
    margin_mm: float = MARGIN_MM,
) -> Localisation:
    """Shares of ``attribution``'s positive part in lesion / margin / body / outside."""
    pos = np.clip(np.asarray(attribution, dtype=np.float64), 0, None)
    total = pos.sum()
    lesion = np.zeros(pos.shape, bool) if lesion is None else np.asarray(lesion, bool)
    if lesion.any():
        distance = ndimage.distance_transform_edt(~lesion, sampling=tuple(spacing))
        margin = (distance <= margin_mm) & ~lesion
    else:
        margin = np.zeros(pos.shape, bool)
    body = np.asarray(body, bool) & ~lesion & ~margin
    outside = ~(lesion | margin | body)
    if total <= 0:
        return Localisation(0.0, 0.0, 0.0, 0.0, False)
    shares = [float(pos[r].sum() / total) for r in (lesion, margin, body, outside)]
    return Localisation(*shares, flagged=shares[3] > OUTSIDE_FLAG)


def summarise(results: Sequence[Localisation]) -> dict[str, Any]:
    """Median share per region over cases and the number of flagged cases."""
    if not results:
        return {"cases": 0}
    out: dict[str, Any] = {"cases": len(results)}
    for r in REGIONS:
        vals = np.array([getattr(x, r) for x in results])
        out[f"{r}_median"] = round(float(np.median(vals)), 4)
    out["flagged_outside_body"] = int(sum(x.flagged for x in results))
    out["flag_rule"] = f"share of positive attribution outside the body > {OUTSIDE_FLAG}"
    out["margin_mm"] = MARGIN_MM
    return out
