"""How well single fixed statistics of the preprocessed crops track the generator's spatial
phenotypes, the measurement behind ``lesion_texture``'s ``gabor`` and ``level_box`` options:

1. texture anisotropy: a quadrature Gabor bank (8 angles in [0, pi)) at several wavelengths,
   energies summed over the lesion less a dark core (in-plane 5 x 5 mean below 0.5, 40 HU)
   eroded by 0 or 1 voxel; the spread of the 8 energies (std / mean), vs what the shipped
   model pools (the same bank through its windowed route, ``windowed``);
2. necrosis and core eccentricity: a soft threshold of the CT at 0.5 (40 HU) or 0.12 (48 HU)
   under each lesion's median, in the central 8 slices, ``width`` wide, read raw or after an
   in-plane 3 x 3 mean (``box``): its share of the lesion (necrosis) and its centroid's
   in-plane distance from the lesion's, over the lesion's smallest in-plane semi-axis (core
   eccentricity) and in mm against the true offset, overall and by site.

    PYTHONPATH=src python bench/cnn_investigation/phenotype_statistics.py RUN

RUN is a finished ``deepradiomics run`` / ``demo`` folder of a synthetic cohort with
``ground_truth.csv`` (its ``config.yaml``; the preprocessing cache makes it quick). Prints
Spearman r with the true phenotype, on every case (fold 1's preprocessing plan).
"""

from __future__ import annotations

import math

import pandas as pd
import torch
import torch.nn.functional as F
from run_crops import crops_of_command_line

from deepradiomics.audit.truth import spearman
from deepradiomics.models.texture import box_mean, erode_in_plane

ANGLES = torch.arange(8) * math.pi / 8


def gabor_pairs(wavelength: float, kernel: int = 9) -> torch.Tensor:
    """``[16, 1, k, k]``: cosine and sine Gabor kernels at the 8 angles."""
    r = torch.arange(kernel, dtype=torch.float32) - kernel // 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    envelope = torch.exp(-(xx.square() + yy.square()) / (2 * (0.6 * wavelength) ** 2))
    bank = []
    for a in ANGLES:
        u = xx * torch.cos(a) + yy * torch.sin(a)
        for phase in (0.0, math.pi / 2):
            k = envelope * torch.cos(2 * math.pi * u / wavelength + phase)
            bank.append(k - k.mean())
    return torch.stack(bank)[:, None]


def anisotropy_rows(x: torch.Tensor, truth: pd.Series) -> None:
    n, _, d, h, w = x.shape
    ct, mask = x[:, :1], (x[:, -1:] > 0.5).float()
    dark = (box_mean(ct, 5) < 0.5).float()
    for wavelength in (3.0, 3.5, 4.0, 5.0, 6.0):
        bank = gabor_pairs(wavelength)
        for e in (0, 1):
            region = erode_in_plane(mask * (1 - dark), e)
            region = torch.where(region.flatten(1).sum(1).view(-1, 1, 1, 1, 1) > 0, region, mask)
            count = region.flatten(1).sum(1).clamp_min(1)
            z = ct - ((ct * region).flatten(1).sum(1) / count).view(-1, 1, 1, 1, 1)
            spreads = []
            for image in (z, z * region):  # the response everywhere / of the windowed image
                resp = F.conv2d(image.transpose(1, 2).reshape(n * d, 1, h, w), bank, padding=4)
                energy = resp.view(n, d, 8, 2, h, w).square().sum(3)
                energy = (energy * region.transpose(1, 2)).sum((1, 3, 4))  # [N, 8]
                spreads.append((energy.std(1) / energy.mean(1)).numpy())
            print(
                f"| anisotropy | Gabor {wavelength} px, erode {e} | "
                f"{spearman(spreads[0], truth.to_numpy()):.2f} | "
                f"{spearman(spreads[1], truth.to_numpy()):.2f} (windowed) |"
            )


def core_rows(x: torch.Tensor, rows: pd.DataFrame) -> None:
    lo = (x.shape[2] - 8) // 2
    x = x[:, :, lo : lo + 8]
    mask = (x[:, -1] > 0.5).float()
    h, w = mask.shape[-2:]
    grid = torch.stack(
        torch.meshgrid(torch.arange(h) * 1.0, torch.arange(w) * 1.0, indexing="ij"), -1
    )

    def moments(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        total = weight.flatten(1).sum(1).clamp_min(1e-6)
        centre = torch.einsum("ndhw,hwi->ni", weight, grid) / total[:, None]
        q = grid[None] - centre[:, None, None]
        cov = torch.einsum("ndhw,nhwi,nhwj->nij", weight, q, q) / total[:, None, None]
        return total, centre, cov

    volume, centre, cov = moments(mask)
    smallest = (4 * torch.linalg.eigvalsh(cov)[:, 0].clamp_min(1e-3)).sqrt()
    lesion = x[:, 0].masked_fill(mask == 0, float("nan")).flatten(1)
    median = torch.nanmedian(lesion, 1).values.view(-1, 1, 1, 1)
    true_mm = rows["core_offset_mm"].to_numpy()
    by_site = rows.groupby("site").indices  # site -> row positions
    for box in (1, 3):
        smooth = box_mean(x[:, :1], box)[:, 0] if box > 1 else x[:, 0]
        for floor, width in ((0.5, 0.05), (0.5, 0.02), ("median - 0.12", 0.02)):
            level = 0.5 if floor == 0.5 else median - 0.12  # 40 HU, or 48 HU under the median
            dark = mask * torch.sigmoid((level - smooth) / width)
            dark_volume, dark_centre, _ = moments(dark)
            share = (dark_volume / volume.clamp_min(1)).numpy()
            mm = (dark_centre - centre).square().sum(1).sqrt()
            offset = (mm / smallest).numpy()
            sites = " ".join(
                f"{name} {spearman(mm.numpy()[at], true_mm[at]):.2f}"
                for name, at in by_site.items()
            )
            print(
                f"| necrosis / core eccentricity | level {floor}, box {box}, width {width} | "
                f"{spearman(share, rows['necrosis'].to_numpy()):.2f} | "
                f"{spearman(offset, rows['core_eccentricity'].to_numpy()):.2f} | "
                f"{spearman(mm.numpy(), true_mm):.2f} ({sites}) |"
            )
    hu = rows.groupby("site")[["hu_offset", "slice_thickness_mm", "noise_hu"]].first()
    print("sites (CT offset HU, slice mm, noise HU):", hu.round(1).to_dict("index"))
    r = spearman(true_mm, rows["core_eccentricity"].to_numpy())
    print(f"the true offset in mm vs core eccentricity: r {r:.2f}")


def main() -> None:
    crops = crops_of_command_line(__doc__)
    x, rows = crops.arrays.data.images.float(), crops.rows
    print("| phenotype | statistic | r | r |\n|---|---|---|---|")
    anisotropy_rows(x, rows["texture_anisotropy"])
    print("\n| | statistic | r necrosis | r eccentricity | r offset mm (by site) |")
    print("|---|---|---|---|---|")
    core_rows(x, rows.reset_index(drop=True))


if __name__ == "__main__":
    main()
