"""Shared test fixtures: the real data in ../shared/data (skipped with a reason when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_path(*parts: str) -> Path:
    """Path inside ../shared/data; skips the calling test when it is not on this machine."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"real test data not present: {path} (../shared/data exists only on team machines and CI)"
        )
    return path


@pytest.fixture
def shared_data() -> Path:
    return shared_path()
