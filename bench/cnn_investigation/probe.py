"""Phenotype probe: regress a generator phenotype from the cached crops, 3-fold CV, report r.

    OMP_NUM_THREADS=1 PYTHONPATH=src python bench/cnn_investigation/probe.py DATA.npz \
        --model lesion_texture --target texture_anisotropy --epochs 30

``--model structure_tensor`` is the non-learned reference: the in-plane structure tensor of
the CT inside the mask, its coherence (lambda1 - lambda2) / (lambda1 + lambda2) per slice,
averaged; reported per slice thickness too (does the phenotype survive the site's
acquisition and the preprocessing?).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy.ndimage import gaussian_filter, sobel
from torch import nn

from deepradiomics.models.registry import create_backbone


def structure_coherence(ct: np.ndarray, mask: np.ndarray, sigma: float = 1.5) -> float:
    """Mask-weighted mean in-plane coherence of the structure tensor (orientation strength)."""
    gy = sobel(ct, axis=1)
    gx = sobel(ct, axis=2)
    jxx = gaussian_filter(gx * gx, (0, sigma, sigma))
    jyy = gaussian_filter(gy * gy, (0, sigma, sigma))
    jxy = gaussian_filter(gx * gy, (0, sigma, sigma))
    w = mask.astype(float)
    if w.sum() == 0:
        return float("nan")
    a, b, c = (np.sum(j * w) / w.sum() for j in (jxx, jxy, jyy))  # tensor averaged over lesion
    return float(np.sqrt((a - c) ** 2 + 4 * b**2) / max(a + c, 1e-9))


def folds(n: int, k: int, seed: int = 0) -> list[np.ndarray]:
    return np.array_split(np.random.default_rng(seed).permutation(n), k)


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """In-plane flips and 90-degree rotations (both phenotypes are invariant to them)."""
    if torch.rand(1, generator=g) < 0.5:
        x = x.flip(-1)
    if torch.rand(1, generator=g) < 0.5:
        x = x.flip(-2)
    k = int(torch.randint(0, 4, (1,), generator=g))
    return torch.rot90(x, k, (-2, -1))


def train_probe(x, y, tr, te, args) -> np.ndarray:
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    kwargs = {"in_channels": x.shape[1]}
    trunk = create_backbone(args.model, **kwargs)
    net = nn.Sequential(trunk, nn.Dropout(0.1), nn.Linear(trunk.num_features, 1))
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, args.lr, total_steps=args.epochs * int(np.ceil(len(tr) / 16))
    )
    mu, sd = y[tr].mean(), y[tr].std()
    yt = torch.tensor((y - mu) / sd, dtype=torch.float32)
    for _epoch in range(args.epochs):
        net.train()
        perm = tr[torch.randperm(len(tr), generator=g).numpy()]
        losses = []
        for i in range(0, len(perm), 16):
            b = perm[i : i + 16]
            if len(b) < 2:
                continue
            xb = augment(x[b], g) if args.augment else x[b]
            loss = nn.functional.mse_loss(net(xb).squeeze(1), yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(x[te[i : i + 32]]).squeeze(1) for i in range(0, len(te), 32)])
        tr_pred = torch.cat([net(x[tr[i : i + 32]]).squeeze(1) for i in range(0, len(tr), 32)])
    r_tr = np.corrcoef(tr_pred.numpy(), yt[tr].numpy())[0, 1]
    print(f"  fold: final train loss {np.mean(losses[-5:]):.3f}, train r {r_tr:.2f}", flush=True)
    return pred.numpy() * sd + mu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--model", default="lesion_texture")
    ap.add_argument("--target", nargs="+", default=["texture_anisotropy"])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--no-mask", action="store_true")
    ap.add_argument("--no-augment", dest="augment", action="store_false")
    ap.add_argument("--channels", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--z-slices", type=int, help="keep this many central slices")
    args = ap.parse_args()
    torch.set_num_threads(1)
    d = np.load(args.data)
    images, masks = d["images"], d["masks"]
    if args.z_slices:
        lo = (images.shape[2] - args.z_slices) // 2
        images, masks = images[:, :, lo : lo + args.z_slices], masks[:, lo : lo + args.z_slices]
    t0 = time.perf_counter()
    if args.model == "structure_tensor":
        coh = np.array([structure_coherence(images[i, 0], masks[i]) for i in range(len(images))])
        for target in args.target:
            y = d[target]
            print(f"{target}: structure-tensor coherence r = {np.corrcoef(coh, y)[0, 1]:.3f}")
            for th in np.unique(d["slice_thickness_mm"]):
                s = d["slice_thickness_mm"] == th
                print(
                    f"  slices {th:g} mm (n={s.sum()}): r = {np.corrcoef(coh[s], y[s])[0, 1]:.3f}"
                )
        return
    chans = [images[:, c] for c in args.channels]
    if not args.no_mask:
        chans.append(masks.astype(np.float32))
    x = torch.from_numpy(np.stack(chans, 1).astype(np.float32))
    for target in args.target:
        y = d[target].astype(float)
        pred = np.full(len(y), np.nan)
        for te in folds(len(y), 3):
            tr = np.setdiff1d(np.arange(len(y)), te)
            pred[te] = train_probe(x, y, tr, te, args)
        r = np.corrcoef(pred, y)[0, 1]
        print(
            f"{args.model} {target}: held-out r = {r:.3f} (n={len(y)}, {args.epochs} epochs, "
            f"{time.perf_counter() - t0:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
