"""Shared test configuration: an offline environment and empty weight caches."""
from __future__ import annotations

import os

import pytest

# Nothing in a test may reach the network or a user's caches.
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _isolated_weight_caches(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point every weight cache at an empty temporary folder, so no test sees or fills a real cache."""
    home = tmp_path_factory.getbasetemp() / "torch_home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.delenv("WARPINV_WEIGHTS", raising=False)
