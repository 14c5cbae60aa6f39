"""Weights files read without running pickled code: ``torch.load(..., weights_only=True)``.

One reader for every file a user hands over (a bundle's member weights, published
pretrained trunks): a file that holds more than tensors and built-in types is refused, an
unreadable one is named; both as ``UserError``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from deepradiomics.errors import UserError


def read_weights(path: str | Path) -> Any:
    """The file's contents (tensors on the CPU); ``UserError`` naming the file otherwise."""
    try:
        return torch.load(Path(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(
            f"{path}: refused: the file holds more than weights (loading it "
            f"would run pickled code; {first})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise UserError(f"{path}: not a readable weights file ({err})") from None
