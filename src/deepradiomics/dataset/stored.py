"""Case arrays on disk, read a few rows at a time: ``StoredArray`` and ``write_stacked``.

When a cohort's stacked arrays exceed ``train.memory_budget_mb``, ``dataset.manifest``
streams the cached cases, one at a time, into one ``.npy`` file per array (``write_stacked``)
and the training loop indexes a ``StoredArray`` instead of a tensor: each read maps the
file, copies the rows asked for and unmaps it, so resident memory holds a batch, not the
cohort, and a subset (a fold, a bootstrap member) is a list of row numbers, not a copy.
Pickling one is pickling a path and row numbers (process pools, Ray tasks).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepradiomics.files import atomic_write


def write_stacked(
    path: str | Path, rows: Iterable[np.ndarray], n: int, row_shape: tuple, dtype: Any
) -> Path:
    """Write ``n`` arrays of ``row_shape`` from ``rows`` (consumed one by one) as one
    ``[n, *row_shape]`` ``.npy`` file, atomically; memory holds one row at a time."""
    dtype = np.dtype(dtype)
    header = {
        "descr": np.lib.format.dtype_to_descr(dtype),
        "fortran_order": False,
        "shape": (n, *row_shape),
    }

    def write(f) -> None:
        np.lib.format.write_array_header_2_0(f, header)
        count = 0
        for row in rows:
            row = np.ascontiguousarray(row, dtype=dtype)
            if row.shape != tuple(row_shape):
                raise ValueError(f"row {count} has shape {row.shape}, expected {row_shape}")
            f.write(row.tobytes())
            count += 1
        if count != n:
            raise ValueError(f"{count} rows written, {n} announced")

    atomic_write(path, write)
    return Path(path)


class StoredArray:
    """Rows of an ``[N, ...]`` ``.npy`` file, indexed like the tensor it stands for (an int,
    a slice, an index array or tensor, optionally followed by indices of the other axes);
    every read returns a new tensor."""

    def __init__(self, path: str | Path, rows: np.ndarray | None = None) -> None:
        self.path = Path(path)
        stored = self._open()
        self._row_shape = tuple(stored.shape[1:])
        self.dtype = torch.from_numpy(np.empty(0, dtype=stored.dtype)).dtype
        self.rows = np.arange(len(stored)) if rows is None else np.asarray(rows, dtype=np.int64)
        del stored

    def _open(self) -> np.ndarray:
        return np.load(self.path, mmap_mode="r")

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.rows), *self._row_shape))

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, index: Any) -> StoredArray:
        """The rows ``index`` (positions in this array) without reading them."""
        return StoredArray(self.path, self.rows[_as_index(index)])

    def __getitem__(self, key: Any) -> torch.Tensor:
        rest: tuple = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        rows = self.rows[_as_index(key)]
        stored = self._open()
        if np.ndim(rows) == 0:
            out = np.array(stored[int(rows)][rest] if rest else stored[int(rows)])
        else:
            # read in file order (sequential on disk), then put back in the order asked
            order = np.argsort(rows, kind="stable")
            picked = np.empty((len(rows), *self._row_shape), dtype=stored.dtype)
            picked[order] = stored[rows[order]]
            out = picked[(slice(None), *rest)] if rest else picked
        del stored  # unmapped: the pages read leave this process's resident memory
        return torch.from_numpy(np.ascontiguousarray(out))

    def numpy(self) -> np.ndarray:
        """Every row in memory (analyses that need the whole cohort at once)."""
        return self[:].numpy()

    def __repr__(self) -> str:
        return f"StoredArray({self.path.name}, shape={tuple(self.shape)}, dtype={self.dtype})"


def _as_index(key: Any) -> Any:
    if isinstance(key, torch.Tensor):
        return key.cpu().numpy()
    if isinstance(key, list):
        return np.asarray(key, dtype=np.int64)
    return key
