"""Fixtures of the weights tests: offline mode with private caches, and a registered fake entry."""
from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.weights.fakes import make_spec
from warpinv.weights import WeightSpec, registered


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline mode, a private torch home and stamp cache, and no network whatever the code does."""
    monkeypatch.setenv("WARPINV_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("WARPINV_CACHE", str(tmp_path / "warpinv_cache"))
    monkeypatch.delenv("WARPINV_WEIGHTS", raising=False)
    real_urlopen = urllib.request.urlopen

    def guarded(url: Any, *args: Any, **kwargs: Any) -> Any:
        full = url.full_url if isinstance(url, urllib.request.Request) else str(url)
        if not full.startswith("file:"):
            pytest.fail(f"a test tried to reach the network: {full}")
        return real_urlopen(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", guarded)


@pytest.fixture
def fake() -> Iterator[WeightSpec]:
    """The fake entry of ``tests.weights.fakes``, registered for the test."""
    spec = make_spec()
    with registered(spec):
        yield spec
