"""What produced a run: software versions and the code's git commit (``metrics.json["software"]``).

Recorded by the run itself, because the report and the checklists are written from the run
folder, possibly later and elsewhere, where the installed versions may differ.
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import deepradiomics

PACKAGES = (
    "torch",
    "numpy",
    "scipy",
    "pandas",
    "scikit-learn",
    "scikit-survival",
    "SimpleITK",
    "pydicom",
    "monai",
    "pyradiomics-bhklab",
)


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _git(args: list[str], where: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(where), *args], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def code_commit(where: Path | None = None) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the git checkout holding the package's source, or None (an
    installed wheel, or git absent)."""
    where = where or Path(deepradiomics.__file__).resolve().parent
    commit = _git(["rev-parse", "HEAD"], where)
    if not commit:
        return None
    status = _git(["status", "--porcelain", "--untracked-files=no"], where)
    return {"commit": commit, "dirty": bool(status)}


def software_versions() -> dict[str, Any]:
    """Python, platform, deepradiomics and its main dependencies, and the git commit."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "deepradiomics": deepradiomics.__version__,
        "packages": {p: v for p in PACKAGES if (v := _version(p)) is not None},
        "git": code_commit(),
    }
