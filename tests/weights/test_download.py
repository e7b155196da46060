"""The explicit download, ``fetch``.

Everything runs offline: the ``offline`` fixture makes any non-``file://`` URL fail the test, and the
only "downloads" are ``file://`` URLs of temporary files.
"""
from __future__ import annotations

import importlib.util
import io
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.weights.fakes import NAME, PAYLOAD, files_in, hub_dir, local_spec, make_spec, put, sha256_of
from warpinv.weights import (
    REGISTRY,
    STATUS_UNVERIFIED,
    ChecksumError,
    FetchError,
    ManualDownloadError,
    OfflineError,
    WeightSpec,
    WeightStatus,
    check,
    fetch,
    registered,
    resolve,
)

pytestmark = pytest.mark.usefixtures("offline")


def test_fetch_offline_refuses_without_network_and_leaves_nothing(fake: WeightSpec, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    with pytest.raises(OfflineError, match="WARPINV_OFFLINE"):
        fetch(NAME, dest_dir=dest, progress=False)
    assert files_in(dest) == [] and files_in(tmp_path / "torch_home") == []


def test_fetch_network_failure_is_clean(fake: WeightSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WARPINV_OFFLINE")

    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    dest = tmp_path / "dest"
    with pytest.raises(FetchError, match="network is unreachable") as info:
        fetch(NAME, dest_dir=dest, progress=False)
    assert "no partial file" in str(info.value)
    assert files_in(dest) == []


def test_fetch_interrupted_midway_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WARPINV_OFFLINE")

    class Broken(io.BytesIO):
        headers = {"Content-Length": str(len(PAYLOAD))}

        def read(self, size: int = -1) -> bytes:
            if self.tell() > 0:
                raise ConnectionResetError("connection reset by peer")
            return super().read(1000)

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Broken(PAYLOAD))
    dest = tmp_path / "dest"
    with registered(make_spec()), pytest.raises(FetchError, match="connection reset"):
        fetch(NAME, dest_dir=dest, progress=False)
    assert files_in(dest) == []


def test_fetch_a_file_url_verifies_and_installs_atomically(tmp_path: Path) -> None:
    source = put(tmp_path / "mirror")
    dest = tmp_path / "dest"
    with registered(local_spec(source)):
        path = fetch(NAME, dest_dir=dest, progress=False)  # file:// is local, so offline mode allows it
        assert path == dest / "fake-weights.bin" and path.read_bytes() == PAYLOAD
        assert files_in(dest) == ["fake-weights.bin", "fake-weights.bin.sha256"]
        assert resolve(NAME, path=dest) == path


def test_fetch_defaults_to_env_then_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = put(tmp_path / "mirror")
    with registered(local_spec(source)):
        assert fetch(NAME, progress=True) == hub_dir(tmp_path) / "fake-weights.bin"
        monkeypatch.setenv("WARPINV_WEIGHTS", str(tmp_path / "weights"))
        assert fetch(NAME, progress=False) == tmp_path / "weights" / "fake-weights.bin"
        assert resolve(NAME) == tmp_path / "weights" / "fake-weights.bin"


def test_fetch_with_a_wrong_checksum_leaves_no_file(tmp_path: Path) -> None:
    source = put(tmp_path / "mirror", data=PAYLOAD[::-1])
    dest = tmp_path / "dest"
    with registered(local_spec(source)), pytest.raises(ChecksumError) as info:
        fetch(NAME, dest_dir=dest, progress=False)
    assert source.as_uri() in str(info.value)
    assert files_in(dest) == []


def test_fetch_replaces_a_corrupt_copy_only_with_a_verified_one(tmp_path: Path) -> None:
    source = put(tmp_path / "mirror")
    dest = tmp_path / "dest"
    put(dest, data=PAYLOAD[::-1])
    with registered(local_spec(source)):
        path = fetch(NAME, dest_dir=dest, progress=False)
    assert path.read_bytes() == PAYLOAD


def test_fetch_without_a_published_checksum_still_installs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    source = put(tmp_path / "mirror")
    monkeypatch.setenv("WARPINV_WEIGHTS", str(tmp_path / "dest"))
    with registered(local_spec(source, sha256=None, size=None)):
        path = fetch(NAME, progress=False)
        assert check(NAME)[0] == WeightStatus(NAME, STATUS_UNVERIFIED, path)
    assert sha256_of(PAYLOAD) in caplog.text  # logged (a warning), since nothing can verify it


def test_fetch_manual_entries_explain_how(tmp_path: Path) -> None:
    for name in ("ibrnet", "arcface-ir-se50", "goae-encoder-ffhq", "triplanenet-v2"):
        with pytest.raises(ManualDownloadError) as info:
            fetch(name, dest_dir=tmp_path, progress=False)
        assert REGISTRY[name].manual_instructions in str(info.value)
    assert files_in(tmp_path) == []


def test_fetch_of_a_packaged_entry_returns_the_installed_file() -> None:
    if importlib.util.find_spec("lpips") is None:
        pytest.skip("lpips is not installed")
    assert fetch("lpips-alex-v0.1", progress=False).name == "alex.pth"
