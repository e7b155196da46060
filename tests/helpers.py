"""Helpers shared by tests: where the golden fixtures live."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def fixtures_dir() -> Path:
    """The golden fixtures: ``$WARPINV_FIXTURES`` or ``../shared/fixtures`` from the project root."""
    env = os.environ.get("WARPINV_FIXTURES")
    return Path(env) if env else PROJECT_ROOT.parent / "shared" / "fixtures"


def require_fixture(*parts: str) -> Path:
    """Path of one fixture file, or skip the test with a reason naming what is missing."""
    path = fixtures_dir().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"golden fixture {path} is absent (set WARPINV_FIXTURES or place ../shared/fixtures)")
    return path
