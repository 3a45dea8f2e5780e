"""Shared test fixtures. Real data comes from EMER_DATA (default ../shared/data).

Under CI (CI=true) a test that needs the data fails when it is missing instead of skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    return Path(os.environ.get("EMER_DATA", REPO_ROOT.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def emer_data() -> Path:
    root = data_root()
    if not (root / "README.md").exists():
        message = f"EMER_DATA not found at {root} (set EMER_DATA to the shared data folder)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return root
