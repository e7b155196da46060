"""A fake weight file and spec for the weights tests, and small file-system helpers."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from warpinv.weights import WeightSpec, digests

PAYLOAD = bytes(range(256)) * 41  # 10,496 bytes of fake "weights"
NAME = "test-fake"


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_spec(**changes: Any) -> WeightSpec:
    """The fake entry (sha256 and size of :data:`PAYLOAD`, an unreachable URL), with ``changes``."""
    fields: dict[str, Any] = dict(name=NAME, filename="fake-weights.bin", sha256=sha256_of(PAYLOAD), size=len(PAYLOAD),
                                  urls=("https://example.invalid/fake-weights.bin",),
                                  licence="test licence", used_by=("tests",), description="fake weights")
    fields.update(changes)
    return WeightSpec(**fields)


def local_spec(source: Path, **changes: Any) -> WeightSpec:
    """The fake entry downloadable from the local file ``source`` (a ``file://`` URL)."""
    return make_spec(urls=(source.as_uri(),), **changes)


def put(folder: Path, name: str = "fake-weights.bin", data: bytes = PAYLOAD) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def hub_dir(tmp_path: Path) -> Path:
    """The torch hub checkpoints folder under the private ``TORCH_HOME`` of the ``offline`` fixture."""
    return tmp_path / "torch_home" / "hub" / "checkpoints"


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def count_hashes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Record every full hash of a file (what a stamp saves) from now on."""
    calls: list[Path] = []
    real = digests.hash_file

    def counting(path: Path) -> dict[str, str]:
        calls.append(Path(path))
        return real(path)

    monkeypatch.setattr(digests, "hash_file", counting)
    return calls
