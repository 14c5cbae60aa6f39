"""Phenotype and outcome probes for a rotation-equivariant lesion-texture network (issue 10).

    python bench/cnn_investigation/equivariant_probe.py DATA.npz --target texture_anisotropy \
        --variant energy --epochs 60 [--device cuda]

Standalone (torch + numpy only) so that it runs on a machine without the project's other
dependencies. DATA.npz comes from ``probe_data.py`` (CT, PET crops, lesion masks, ground truth).
Three-fold CV over patients; prints the held-out Pearson r (regression of the z-scored
phenotype) or AUC (``--target label``) and the final training loss, one JSON line.

Variants:
- ``energy``: a learned in-plane filter bank, each filter applied at ``rotations`` angles (a
  lifting group convolution), squared responses averaged over the lesion interior; per filter
  the orientation-mean energy (log) and the orientation spread (std / mean over angles, zero for
  an isotropic texture); plus the lesion's log volume and masked intensity statistics of a
  learned 1x1 intensity map; an MLP.
- ``energy_moments``: ``energy`` plus, per learned intensity channel, the distance between its
  centre of mass inside the lesion and the lesion's centroid (rotation invariant; a displaced
  necrotic core moves it).
- ``plain``: the same filter bank without rotated copies (an ordinary CNN layer) and the same
  pooling: the control for the equivariance.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def rotated_bank(weight: torch.Tensor, rotations: int) -> torch.Tensor:
    """[K, 1, k, k] kernels -> [K * R, 1, k, k], each kernel at R angles in [0, pi)."""
    k = weight.shape[-1]
    angles = torch.arange(rotations, device=weight.device, dtype=weight.dtype) * math.pi / rotations
    cos, sin = torch.cos(angles), torch.sin(angles)
    theta = torch.zeros(rotations, 2, 3, device=weight.device, dtype=weight.dtype)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = cos, -sin, sin, cos
    grid = F.affine_grid(theta, (rotations, 1, k, k), align_corners=True)
    K = weight.shape[0]
    w = weight.unsqueeze(1).expand(K, rotations, 1, k, k).reshape(K * rotations, 1, k, k)
    g = grid.unsqueeze(0).expand(K, rotations, k, k, 2).reshape(K * rotations, k, k, 2)
    return F.grid_sample(w, g, align_corners=True, padding_mode="zeros")


class LesionEnergyNet(nn.Module):
    def __init__(
        self,
        variant: str,
        filters: int = 8,
        kernel: int = 9,
        rotations: int = 8,
        intensity: int = 4,
        in_channels: int = 2,
        hidden: int = 32,
    ) -> None:
        super().__init__()
        self.spectral = variant.startswith("spectral")
        variant = variant.replace("spectral_", "energy_").replace("spectral", "energy")
        self.variant, self.rotations = variant, (rotations if variant != "plain" else 1)
        nf = filters if variant != "plain" else filters * rotations
        self.weight = nn.Parameter(torch.randn(nf, 1, kernel, kernel) / kernel)
        yy, xx = torch.meshgrid(
            torch.linspace(-1, 1, kernel), torch.linspace(-1, 1, kernel), indexing="ij"
        )
        self.register_buffer("disc", ((xx**2 + yy**2) <= 1).float())
        self.intensity = nn.Conv3d(in_channels, intensity, 1)
        n = (2 * filters if variant != "plain" else 2 * nf) + 2 * intensity + 1
        if variant == "energy_moments":
            n += intensity
        self.norm = nn.BatchNorm1d(n)
        self.mlp = nn.Sequential(
            nn.Linear(n, hidden), nn.ReLU(), nn.Dropout(0.2), nn.Linear(hidden, 1)
        )

    def bank(self) -> torch.Tensor:
        w = self.weight * self.disc
        w = (
            w - (w.sum((-2, -1), keepdim=True) / self.disc.sum()) * self.disc
        )  # zero mean: band-pass
        return rotated_bank(w, self.rotations) if self.rotations > 1 else w

    def features(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        N, C, D, H, W = x.shape
        m = mask.float()
        interior = -F.max_pool3d(-m, (1, 5, 5), stride=1, padding=(0, 2, 2))  # eroded 2 mm in-plane
        ct = x[:, :1].permute(0, 2, 1, 3, 4).reshape(N * D, 1, H, W)
        bank = self.bank()
        if self.spectral:  # Parseval: the same energies from the windowed slab's power spectrum
            c = x[:, 0]
            wsum = interior.sum((1, 2, 3)).clamp_min(1.0)
            mu = (c * interior).sum((1, 2, 3)) / wsum
            z = (c - mu.view(N, 1, 1, 1)) * interior
            power = torch.fft.fft2(z).abs().square().sum(1) / wsum.view(N, 1, 1)  # [N, H, W]
            k = bank.shape[-1]
            padded = F.pad(bank[:, 0], (0, W - k, 0, H - k))
            hsq = torch.fft.fft2(padded).abs().square()  # [F*R, H, W]
            energy = torch.einsum("nhw,fhw->nf", power, hsq) / (H * W)
        else:
            resp = F.conv2d(ct, bank, padding=bank.shape[-1] // 2).reshape(N, D, -1, H, W)
            wi = interior.unsqueeze(2)  # [N, D, 1, H, W]
            energy = (resp.square() * wi).sum((1, 3, 4)) / wi.sum((1, 3, 4)).clamp_min(
                1.0
            )  # [N, F*R]
        if self.rotations > 1:
            e = energy.reshape(N, -1, self.rotations) + 1e-6
            mean = e.mean(-1)
            tex = [mean.log(), e.std(-1) / mean]
        else:
            tex = [(energy + 1e-6).log(), torch.zeros_like(energy)]
        f = self.intensity(x)  # [N, I, D, H, W]
        wm = m.unsqueeze(1)
        vol = wm.sum((2, 3, 4)).clamp_min(1.0)
        mu = (f * wm).sum((2, 3, 4)) / vol
        sd = (
            ((f - mu[..., None, None, None]).square() * wm).sum((2, 3, 4)).div(vol).add(1e-6).sqrt()
        )
        parts = [*tex, mu, sd, vol.log()]
        if self.variant == "energy_moments":
            ys = torch.arange(H, device=x.device, dtype=x.dtype).view(1, 1, 1, H, 1)
            xs = torch.arange(W, device=x.device, dtype=x.dtype).view(1, 1, 1, 1, W)
            cy, cx = (wm * ys).sum((2, 3, 4)) / vol, (wm * xs).sum((2, 3, 4)) / vol
            p = torch.softmax(f.masked_fill(wm == 0, -1e4).flatten(2), -1).view_as(
                f
            )  # where each channel is high
            py, px = (p * ys).sum((2, 3, 4)), (p * xs).sum((2, 3, 4))
            radius = (vol / D).sqrt()  # ~ in-plane lesion radius scale
            parts.append(((py - cy) ** 2 + (px - cx) ** 2).add(1e-6).sqrt() / radius)
        return torch.cat(parts, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.norm(self.features(x, mask))).squeeze(1)


def augment(
    x: torch.Tensor, m: torch.Tensor, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """In-plane flips and 90-degree rotations per case (the phenotypes are invariant to them)."""
    out_x, out_m = [], []
    for i in range(x.shape[0]):
        xi, mi = x[i], m[i]
        k = int(torch.randint(4, (1,), generator=gen))
        xi, mi = torch.rot90(xi, k, (-2, -1)), torch.rot90(mi, k, (-2, -1))
        if torch.rand(1, generator=gen) < 0.5:
            xi, mi = xi.flip(-1), mi.flip(-1)
        out_x.append(xi)
        out_m.append(mi)
    return torch.stack(out_x), torch.stack(out_m)


def auc(y: np.ndarray, s: np.ndarray) -> float:
    order = np.argsort(s)
    ranks = np.empty(len(s))
    ranks[order] = np.arange(1, len(s) + 1)
    pos = y == 1
    return float((ranks[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * (~pos).sum()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--target", default="texture_anisotropy")
    ap.add_argument("--variant", default="energy")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--filters", type=int, default=8)
    ap.add_argument("--kernel", type=int, default=9)
    ap.add_argument("--rotations", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--max-cases", type=int, default=0)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    d = np.load(a.data)
    n = len(d["label"]) if not a.max_cases else a.max_cases
    x = torch.from_numpy(d["images"][:n]).float()
    m = torch.from_numpy(d["masks"][:n]).float()
    y_raw = d[a.target][:n].astype(float)
    binary = a.target == "label"
    y = y_raw if binary else (y_raw - y_raw.mean()) / y_raw.std()
    patients = d["patient_ids"][:n]
    uniq = np.unique(patients)
    rng = np.random.default_rng(a.seed)
    fold_of = dict(zip(rng.permutation(uniq), np.arange(len(uniq)) % 3, strict=True))
    folds = np.array([fold_of[p] for p in patients])
    pred = np.zeros(n)
    losses = []
    t0 = time.time()
    dev = torch.device(a.device)
    for k in range(3):
        tr, te = np.where(folds != k)[0], np.where(folds == k)[0]
        net = LesionEnergyNet(
            a.variant, a.filters, a.kernel, a.rotations, in_channels=x.shape[1]
        ).to(dev)
        opt = torch.optim.AdamW(net.parameters(), lr=a.lr, weight_decay=1e-3)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, a.lr, total_steps=a.epochs * math.ceil(len(tr) / 32)
        )
        gen = torch.Generator().manual_seed(a.seed * 100 + k)
        yt = torch.tensor(y, dtype=torch.float32)
        for _ in range(a.epochs):
            net.train()
            perm = tr[torch.randperm(len(tr), generator=gen).numpy()]
            tot = 0.0
            for b in range(0, len(perm), 32):
                idx = perm[b : b + 32]
                if len(idx) < 2:
                    continue
                xb, mb = augment(x[idx], m[idx], gen)
                out = net(xb.to(dev), mb.to(dev))
                tgt = yt[idx].to(dev)
                loss = (
                    F.binary_cross_entropy_with_logits(out, tgt) if binary else F.mse_loss(out, tgt)
                )
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                tot += float(loss.detach()) * len(idx)
            last = tot / len(tr)
        losses.append(round(last, 3))
        net.eval()
        with torch.no_grad():
            pred[te] = net(x[te].to(dev), m[te].to(dev)).cpu().numpy()
    score = auc(y.astype(int), pred) if binary else float(np.corrcoef(pred, y)[0, 1])
    print(
        json.dumps(
            {
                "variant": a.variant,
                "target": a.target,
                "seed": a.seed,
                "epochs": a.epochs,
                "filters": a.filters,
                "kernel": a.kernel,
                "rotations": a.rotations,
                "score": round(score, 3),
                "metric": "auc" if binary else "r",
                "train_loss": losses,
                "wall_s": round(time.time() - t0, 1),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
