"""One training step of the real loop, alone or under ``torchrun``: saves the gradients.

``python ddp_step.py OUT [NORM]`` (one process) or ``torchrun --nproc_per_node 2 ddp_step.py OUT
[NORM]`` (or two single-process nodes); NORM is the model's norm, ``instance`` by default
(``batch``: batch norm, synchronised across the processes by ``dist.wrap``).
The step runs ``train_one_epoch`` over exactly one global batch with augmentation off and a
zero learning rate, so after it every parameter still holds its initial value and ``.grad``
holds the gradient the optimiser would have used: under DDP the average of the processes'
gradients of their shares of the batch. Rank 0 writes ``OUT/grads.pt`` and ``OUT/loss.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from deepradiomics.augment import build_augmenter
from deepradiomics.config import AugmentConfig, TrainConfig
from deepradiomics.dataset.arrays import ArrayData
from deepradiomics.losses import get_loss
from deepradiomics.models import create_model
from deepradiomics.train import distributed as dist
from deepradiomics.train.loop import Setup, train_one_epoch

BATCH = 8


def batch() -> ArrayData:
    g = torch.Generator().manual_seed(0)
    images = torch.rand(BATCH, 1, 12, 12, 12, generator=g)
    targets = (torch.arange(BATCH) % 2).float()
    images[targets == 1, :, 3:8, 3:8, 3:8] += 1.0
    ids = tuple(f"c{i}" for i in range(BATCH))
    return ArrayData(images=images, targets=targets, case_ids=ids, patient_ids=ids)


def step_model(norm: str = "instance") -> torch.nn.Module:
    """The model every variant starts from: no dropout; instance norm couples no cases of a
    batch, batch norm couples them all."""
    torch.manual_seed(0)
    return create_model(
        "small3d", task="binary", in_channels=1, dropout=0.0, widths=[4, 8], norm=norm
    )


def main(out: Path, norm: str = "instance") -> None:
    dist.init_from_env()
    model = step_model(norm)
    model.to(memory_format=torch.channels_last_3d)  # as ``fit`` does
    net = dist.wrap(model, torch.device("cpu"))
    setup = Setup(
        task="binary",
        train=TrainConfig(batch_size=BATCH, class_weight="none", grad_clip=1e9, lr=1e-3),
        augment=AugmentConfig.off(),
    )
    optimiser = torch.optim.SGD(model.parameters(), lr=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: 1.0)
    loss, seen, _ = train_one_epoch(
        net,
        batch(),
        setup,
        0,
        optimiser,
        scheduler,
        get_loss(None, "binary"),
        build_augmenter(setup.augment, False),
        torch.device("cpu"),
        progress=False,
    )
    if dist.is_main():
        out.mkdir(parents=True, exist_ok=True)
        torch.save(
            {k: p.grad.detach().clone() for k, p in model.named_parameters()}, out / "grads.pt"
        )
        (out / "loss.json").write_text(
            json.dumps({"loss": loss, "cases_per_process": seen, "processes": dist.world_size()})
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]), *sys.argv[2:])
    if dist.launched():
        dist.end_process(0)
