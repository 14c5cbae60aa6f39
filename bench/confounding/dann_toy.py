"""Why domain-adversarial training does not lower the site probe on tiny cohorts (issue 12).

    OMP_NUM_THREADS=1 PYTHONPATH=src python bench/confounding/dann_toy.py --out /tmp/dann_toy.jsonl

Two-site 8^3 cohorts (64 training cases, 64 held-out cases from another draw); the disease is
a bright centre (+1), the scanner signature of site 1 is one of: ``channel`` (a second input
channel offset by +1), ``offset`` (+0.8 everywhere), ``noise`` (extra N(0, 0.6) noise),
``contrast`` (x 1.6); ``confounded``: a second channel offset by +1 at site 1 as in ``channel``,
but the site agrees with the outcome in 85 % of cases and the disease is fainter (+0.3).
small3d 4-8, 30 epochs, batch 16, AdamW lr 0.01, no augmentation. Variants: ``plain``;
``reversal`` (the shipped ``site_adversary``: gradient reversal, DANN ramp to weight 1);
``confusion`` (not shipped, defined here: the adversary trains on the detached embedding and
the encoder is pushed towards a uniform site prediction, Tzeng et al. 2015, same ramp). Per
run, on the held-out embeddings:

- ``probe``: the audit's site probe (``audit.site.site_probe``: standardise, principal
  components each scaled to unit variance, L2 logistic regression, grouped inner CV);
- ``probe_unwhitened``: the same without the per-component scaling (only the features
  standardised), which cannot use directions of tiny variance;
- ``max_smd``: the largest standardised site-mean difference over embedding coordinates;
- ``adversary_accuracy``: the adversary's training-batch accuracy, mean of the last 5 epochs.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from deepradiomics.audit import site as audit_site
from deepradiomics.config import AugmentConfig, TrainConfig
from deepradiomics.dataset.arrays import ArrayData
from deepradiomics.evaluate import metrics as M
from deepradiomics.models import create_model
from deepradiomics.models.heads import SiteAdversary
from deepradiomics.train.loop import Setup, embed, fit

SIGNATURES = ("channel", "offset", "noise", "contrast", "confounded")
VARIANTS = ("plain", "reversal", "confusion")
NO_AUGMENT = AugmentConfig.off()


def cohort(n: int, seed: int, signature: str) -> ArrayData:
    rng = np.random.default_rng(seed)
    site, label = np.arange(n) % 2, (np.arange(n) // 2) % 2
    if signature == "confounded":
        site = np.where(rng.random(n) < 0.85, label, 1 - label)
    x = rng.normal(0, 0.3, size=(n, 1, 8, 8, 8)).astype(np.float32)
    x[label == 1, :, 2:6, 2:6, 2:6] += 0.3 if signature == "confounded" else 1.0
    if signature == "noise":
        x[site == 1] += rng.normal(0, 0.6, size=x[site == 1].shape).astype(np.float32)
    elif signature == "offset":
        x[site == 1] += 0.8
    elif signature == "contrast":
        x[site == 1] *= 1.6
    elif signature in ("channel", "confounded"):
        extra = rng.normal(0, 0.3, size=(n, 1, 8, 8, 8)).astype(np.float32)
        extra[site == 1] += 1.0
        x = np.concatenate([x, extra], axis=1)
    ids = tuple(f"c{seed}_{i}" for i in range(n))
    return ArrayData(
        torch.from_numpy(x),
        torch.from_numpy(label.astype(np.float32)),
        ids,
        ids,
        sites=torch.from_numpy(site).long(),
    )


class _Confuse(torch.autograd.Function):
    """Zero in the forward pass; backward hands the encoder the gradient of the mean
    cross-entropy to a uniform site prediction (times ``lambd``) instead of the incoming one."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, lambd: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(logits)
        ctx.lambd = lambd
        return torch.zeros_like(logits)

    @staticmethod
    def backward(ctx, _grad: torch.Tensor) -> tuple:  # type: ignore[override]
        (logits,) = ctx.saved_tensors
        uniform = 1.0 / logits.shape[1]
        return ctx.lambd * (torch.softmax(logits, 1) - uniform) / len(logits), None


class ConfusionAdversary(SiteAdversary):
    """Its logits train the classifier on the detached embedding; a frozen copy of the same
    classifier adds the confusion gradient for the encoder (value 0, so the loop's site loss
    and accuracy stay the classifier's own)."""

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        trained = self.net(embedding.detach())
        frozen = {name: p.detach() for name, p in self.net.named_parameters()}
        confused = torch.func.functional_call(self.net, frozen, (embedding,))
        return trained + _Confuse.apply(confused, self.lambd)


def _standardise_only(train: np.ndarray, test: np.ndarray, _k: int) -> tuple:
    mu, sd = train.mean(axis=0), train.std(axis=0)
    sd[sd == 0] = 1.0
    return (train - mu) / sd, (test - mu) / sd


def probe_auc(emb: np.ndarray, sites: np.ndarray, whitened: bool) -> float:
    original = audit_site.project_components
    if not whitened:
        audit_site.project_components = _standardise_only
    try:
        probe = audit_site.site_probe(emb, sites, n_permutations=0, n_boot=10)
    finally:
        audit_site.project_components = original
    return round(probe.to_dict()["auc"]["value"], 3)


def run(signature: str, variant: str, seed: int, epochs: int) -> dict:
    adversarial = variant != "plain"
    torch.manual_seed(seed)
    train, test = cohort(64, 0, signature), cohort(64, 1, signature)
    model = create_model(
        "small3d",
        in_channels=train.images.shape[1],
        widths=(4, 8),
        n_sites=2 if adversarial else 0,
        dropout=0.0,
    )
    if variant == "confusion":
        old = model.site_adversary
        model.site_adversary = ConfusionAdversary(old.net[0].in_features, 2)
        model.site_adversary.load_state_dict(old.state_dict())
    setup = Setup(
        task="binary",
        train=TrainConfig(
            epochs=epochs, batch_size=16, lr=0.01, warmup_epochs=0, device="cpu", patience=epochs
        ),
        augment=NO_AUGMENT,
        seed=seed,
        adversary_weight=1.0 if adversarial else 0.0,
    )
    with tempfile.TemporaryDirectory() as folder:
        fit(model, train, None, setup, folder, progress=False)
        rows = [json.loads(line) for line in (Path(folder) / "history.jsonl").open()]
    emb = embed(model, test, torch.device("cpu"))
    sites = test.sites.numpy()
    smd = np.abs(emb[sites == 1].mean(0) - emb[sites == 0].mean(0)) / (emb.std(0) + 1e-12)
    with torch.no_grad():
        score = model(test.images)["out"].numpy()
    return {
        "signature": signature,
        "variant": variant,
        "seed": seed,
        "probe": probe_auc(emb, sites, whitened=True),
        "probe_unwhitened": probe_auc(emb, sites, whitened=False),
        "max_smd": round(float(smd.max()), 3),
        "adversary_accuracy": (
            round(float(np.mean([r["site_accuracy"] for r in rows[-5:]])), 2)
            if adversarial
            else None
        ),
        "task_auc": round(float(M.roc_auc(test.targets.numpy(), score)), 3),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="JSON lines, one per run")
    p.add_argument("--signatures", nargs="+", choices=SIGNATURES, default=list(SIGNATURES))
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=30)
    args = p.parse_args()
    torch.set_num_threads(1)
    with args.out.open("w") as out:
        for signature in args.signatures:
            for variant in args.variants:
                for seed in args.seeds:
                    row = run(signature, variant, seed, args.epochs)
                    print(json.dumps(row), flush=True)
                    out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
