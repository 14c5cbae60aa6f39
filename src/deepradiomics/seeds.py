"""Every random stream of a run, derived from (run seed, stream name, keys).

Seeds used to come from ad-hoc arithmetic (``seed * 1000 + fold * 100 + member``,
``seed * 100_003 + epoch``, ...), and the streams collided: fold 1 member 0 drew the same
numbers as learning-curve repeat 0 at fraction 1.0, and with 10 folds seed ``s`` fold 10
was seed ``s + 1`` fold 0. Here a stream is hashed by ``numpy.random.SeedSequence`` from
the run seed, the stream's name and its integer keys, so distinct inputs give independent
seeds, and the same inputs always give the same seed.

Stream names in use (keys in brackets): ``outer_split`` (k-fold or holdout test set),
``validation_split`` [fold], ``member_resample`` [fold] (bootstrap members),
``member`` [fold, member] (a member's training seed), ``learning_curve_subset``
[repeat, fraction in ppm], ``learning_curve_model`` [repeat], ``bootstrap`` (confidence
intervals and paired comparisons), ``classical`` (inner CV and solvers), and from a model's
training seed ``init`` (weights) and ``epoch`` [epoch] (order and augmentation).
``tests/test_seeds.py`` enumerates them and checks that none coincide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

_WORD = 2**32


def _name_words(name: str) -> list[int]:
    """The stream name as 32-bit words (UTF-8 bytes, length-prefixed so no name is a prefix
    of another's encoding)."""
    data = name.encode()
    padded = data + b"\0" * (-len(data) % 4)
    return [len(data)] + [
        int.from_bytes(padded[i : i + 4], "little") for i in range(0, len(padded), 4)
    ]


def seed_sequence(seed: int, stream: str, *keys: int) -> np.random.SeedSequence:
    """The ``SeedSequence`` of one stream: entropy (seed, name), spawn key ``keys``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"a seed must be a non-negative integer, got {seed!r}")
    if not stream:
        raise ValueError("a random stream needs a name")
    bad = [k for k in keys if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0]
    if bad:
        raise ValueError(f"stream keys must be non-negative integers, got {bad[0]!r} in {stream!r}")
    words = [int(seed) % _WORD, int(seed) // _WORD, *_name_words(stream)]
    return np.random.SeedSequence(entropy=words, spawn_key=tuple(int(k) for k in keys))


def derive_seed(seed: int, stream: str, *keys: int) -> int:
    """A seed in ``[0, 2**32)`` for ``stream`` at ``keys`` of a run seeded ``seed``: usable as
    scikit-learn's ``random_state``, by ``numpy.random.default_rng`` and ``torch.manual_seed``.
    A pure function: the same inputs give the same seed."""
    return int(seed_sequence(seed, stream, *keys).generate_state(1, np.uint32)[0])


def numpy_rng(seed: int, stream: str, *keys: int) -> np.random.Generator:
    """A numpy ``Generator`` for the stream."""
    return np.random.default_rng(seed_sequence(seed, stream, *keys))


def torch_generator(
    seed: int, stream: str, *keys: int, device: torch.device | str = "cpu"
) -> torch.Generator:
    """A torch ``Generator`` on ``device`` seeded for the stream."""
    import torch  # not at module level: splitting and metrics need no torch

    return torch.Generator(device=device).manual_seed(derive_seed(seed, stream, *keys))


def fraction_key(fraction: float) -> int:
    """A training fraction (0, 1] as an integer key: parts per million."""
    return round(float(fraction) * 1_000_000)
