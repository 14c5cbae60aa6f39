"""Is the lesion's centre or the CT the limit of the core-eccentricity estimate?

    PYTHONPATH=src python bench/cnn_investigation/core_centre_screen.py RUN

RUN is a run folder of the demo's config (``demo_candidate.py`` writes one; the crops come
from fold 1, ``run_crops.py``). The estimate is the one ``lesion_texture`` starts from: the
in-plane distance between the centroid of a soft dark level (relative to the lesion's median,
after a 3 x 3 mean: ``relative_levels``) and the lesion's centre, over its radius, in the
middle 8 slices. Prints the Spearman r of it with the true core eccentricity for
- the lesion's centre taken as the mask's centroid (the model's), the centroid of the mask
  eroded in-plane by 2 voxels, or weighted by the squared depth inside the lesion (lobes and
  spicules pull those less);
- the dark level read on the CT, on the PET (the core is cold there too) or on a mix.
"""

from __future__ import annotations

import torch
from run_crops import crops_of_command_line

from deepradiomics.audit.truth import spearman
from deepradiomics.models.texture import (
    Centre,
    LesionTextureNet,
    centre_offset,
    erode_in_plane,
    lesion_centre,
)


def weighted_centre(weight: torch.Tensor, radius: torch.Tensor) -> Centre:
    """Centroid (row, column) of ``weight`` ``[N, 1, D, H, W]``, with ``radius`` kept."""
    h, w = weight.shape[-2:]
    total = weight.flatten(1).sum(1, keepdim=True).clamp_min(1e-6)
    cy = weight.sum((2, 4)).flatten(1) @ torch.arange(h, dtype=weight.dtype)
    cx = weight.sum((2, 3)).flatten(1) @ torch.arange(w, dtype=weight.dtype)
    return cy[:, None] / total, cx[:, None] / total, radius


def main() -> None:
    crops = crops_of_command_line(__doc__)
    x = crops.arrays.data.images.float()
    truth = crops.rows["core_eccentricity"].to_numpy()
    net = LesionTextureNet(in_channels=x.shape[1], **crops.cfg.model.kwargs)
    lo = (x.shape[2] - 8) // 2
    x = x[:, :, lo : lo + 8]
    mask = (x[:, -1:] > 0.5).float()
    relative = net._relative(x[:, :-1], mask)  # [N, 2, ...]: CT, PET less the lesion's median
    ct, pet = relative[:, :1], relative[:, 1:2]
    model_centre = lesion_centre(mask)
    radius = model_centre[2]
    eroded = erode_in_plane(mask, 2)
    eroded = torch.where(eroded.flatten(1).sum(1).view(-1, 1, 1, 1, 1) > 0, eroded, mask)
    depth = sum(erode_in_plane(mask, k) for k in range(12))
    centres = {
        "mask centroid (the model's)": model_centre,
        "centroid of the mask eroded by 2": weighted_centre(eroded, radius),
        "centroid weighted by depth^2": weighted_centre(depth.square(), radius),
    }
    readings = {
        "CT": (ct, 0.02),
        "PET x2": (2 * pet, 0.05),
        "0.7 CT + 0.3 PET": (0.7 * ct + 0.3 * pet, 0.02),
    }

    def r(image: torch.Tensor, level: int, width: float, centre: Centre) -> float:
        dark = torch.sigmoid((-image - level / 16) / width) * mask
        total = dark.flatten(1).sum(1, keepdim=True).clamp_min(1e-6)
        return spearman(centre_offset(dark, total, centre)[:, 0].numpy(), truth)

    print("| dark level read on | lesion centre | r, 1/16 under the median | 2/16 | 3/16 |")
    print("|---|---|---|---|---|")
    for reading, (image, width) in readings.items():
        for name, centre in centres.items():
            if reading != "CT" and centre is not model_centre:
                continue
            rs = " | ".join(f"{r(image, k, width, centre):.2f}" for k in (1, 2, 3))
            print(f"| {reading} | {name} | {rs} |")


if __name__ == "__main__":
    main()
