"""Reading one case's volumes: every modality (in channel order) and its mask."""

from __future__ import annotations

from collections.abc import Mapping

import SimpleITK as sitk

from deepradiomics.cohort.manifest import Case
from deepradiomics.errors import UserError
from deepradiomics.io.readers import read_image


def read_case(
    case: Case, modalities: Mapping[str, tuple[str, bool]]
) -> tuple[dict[str, sitk.Image], sitk.Image | None]:
    """``modalities``: name -> (kind, suv), in channel order. Images are oriented to LPS."""
    missing = [m for m in modalities if m not in case.images]
    if missing:
        raise UserError(
            f"case {case.case_id} (line {case.line}): no image for modality {', '.join(missing)}"
        )
    images = {
        name: read_image(case.images[name], kind=kind, suv=suv)
        for name, (kind, suv) in modalities.items()
    }
    mask = read_image(case.mask) if case.mask is not None else None
    return images, mask
