"""Atomic file writes: the one way this package publishes a file.

Every writer goes through a temporary file in the target's folder (``.NAME.PID.RANDOM.tmp``)
and ``os.replace``, so a reader, or a run resumed after a kill, sees the old file or the
new one, never half of one. Left-over ``.tmp`` files are never read.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

TEMP_SUFFIX = ".tmp"


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write`` on a temporary binary file in ``path``'s folder, then rename it over
    ``path`` (creating the folder); the temporary file is removed when ``write`` fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}{TEMP_SUFFIX}")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """``text`` (UTF-8) to ``path`` atomically."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def write_json(path: str | Path, data: Any, indent: int = 2) -> None:
    """``data`` as JSON to ``path`` atomically; NumPy scalars and arrays and paths become
    plain JSON values."""
    atomic_write_text(path, json.dumps(data, indent=indent, default=_json_default))


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def safe_name(case_id: str) -> str:
    """A file name made from the case ID only (anything but letters, digits, ``._-`` -> _)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", str(case_id)).strip(".") or "case"
