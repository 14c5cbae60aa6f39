"""A trained toy for the explanation tests: small3d learns "is the bright object a cube?".

Every image holds 27 bright voxels in noise: a solid 3^3 cube at a random place (positive) or
scattered at random (negative). Both classes have the same intensity histogram, so the
network must find the cube where it is: a map that explains this model has to peak there. Trained once per test session (seconds, 1 thread).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from deepradiomics.models import create_model

SIZE = 16


@dataclass
class Toy:
    model: torch.nn.Module
    images: torch.Tensor  # [N, 1, S, S, S]
    labels: torch.Tensor  # [N]
    centres: np.ndarray  # [N, 3] cube centre (z, y, x) voxels (positives)


def blob_cohort(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """``n`` images ``[1, S, S, S]``, labels (odd indices positive), object centres (z, y, x)."""
    rng = np.random.default_rng(seed)
    images = rng.normal(0.0, 0.5, (n, 1, SIZE, SIZE, SIZE)).astype(np.float32)
    labels = np.arange(n) % 2
    centres = rng.integers(2, SIZE - 2, (n, 3))
    for i, (z, y, x) in enumerate(centres):
        if labels[i]:
            images[i, 0, z - 1 : z + 2, y - 1 : y + 2, x - 1 : x + 2] += 2.0
        else:  # the same 27 bright voxels, scattered
            flat = images[i, 0].reshape(-1)
            flat[rng.choice(flat.size, 27, replace=False)] += 2.0
    return torch.from_numpy(images), torch.from_numpy(labels).float(), centres


def train_toy(seed: int = 0, steps: int = 100) -> Toy:
    torch.manual_seed(seed)
    model = create_model("small3d", task="binary", widths=(8, 8), convs_per_stage=1)
    images, labels, centres = blob_cohort(64, seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        idx = torch.randperm(len(images), generator=gen)[:16]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            model(images[idx])["out"], labels[idx]
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    test_images, test_labels, test_centres = blob_cohort(16, seed + 1)
    return Toy(model, test_images, test_labels, test_centres)


@pytest.fixture(scope="session")
def toy() -> Toy:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_toy()
    finally:
        torch.set_num_threads(before)
