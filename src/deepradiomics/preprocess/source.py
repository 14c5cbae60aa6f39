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


def original_image(case: Case, modality: str, kind: str) -> sitk.Image:
    """``case``'s image of ``modality`` as stored on disk (not reoriented): the geometry that
    maps computed on the network input are carried back to."""
    return read_image(case.images[modality], kind=kind, suv=False, orient=False)
