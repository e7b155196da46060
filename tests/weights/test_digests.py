"""File digests: the one sha256 function, stamps that avoid re-hashing, atomic writes."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.weights.fakes import NAME, PAYLOAD, count_hashes, files_in, put
from warpinv.weights import ChecksumError, WeightSpec, digests, file_digests, resolve, sha256_file
from warpinv.weights.atomic import atomic_path

pytestmark = pytest.mark.usefixtures("offline")


def test_stamp_avoids_rehashing_until_the_file_changes(fake: WeightSpec, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_hashes(monkeypatch)
    path = put(tmp_path / "w")
    for _ in range(3):
        resolve(NAME, path=path)
    assert len(calls) == 1
    assert path.with_name(path.name + ".sha256").is_file()

    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    resolve(NAME, path=path)
    assert len(calls) == 2

    corrupted = bytearray(PAYLOAD)
    corrupted[0] ^= 0xFF
    path.write_bytes(bytes(corrupted))  # same size, new mtime: the stamp no longer applies
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000_000))
    with pytest.raises(ChecksumError):
        resolve(NAME, path=path)
    assert len(calls) == 3


def test_stamp_goes_to_the_cache_when_the_folder_is_read_only(fake: WeightSpec, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = put(tmp_path / "readonly")
    real_write = digests._write_text_atomically

    def refuse_beside(target: Path, text: str) -> None:
        if target.parent == path.parent:
            raise PermissionError(f"read-only: {target}")  # root ignores chmod, so simulate it
        real_write(target, text)

    monkeypatch.setattr(digests, "_write_text_atomically", refuse_beside)
    calls = count_hashes(monkeypatch)
    resolve(NAME, path=path)
    resolve(NAME, path=path)
    assert len(calls) == 1
    assert files_in(path.parent) == ["fake-weights.bin"]
    assert len(list((tmp_path / "warpinv_cache" / "stamps").glob("*.sha256"))) == 1


def test_sha256_file_is_the_one_hash_and_file_digests_adds_md5(tmp_path: Path) -> None:
    from warpinv.weights import network_pickle

    path = put(tmp_path / "w")
    assert sha256_file(path) == hashlib.sha256(PAYLOAD).hexdigest()
    assert file_digests(path) == {"sha256": sha256_file(path), "md5": hashlib.md5(PAYLOAD).hexdigest()}
    assert network_pickle.sha256_file is sha256_file  # other packages import it from there


def test_atomic_path_replaces_on_success_and_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = put(tmp_path, "out.bin", b"old")
    with pytest.raises(RuntimeError, match="half-way"), atomic_path(target, suffix=".part") as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("half-way")
    assert files_in(tmp_path) == ["out.bin"] and target.read_bytes() == b"old"
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"new")
    assert files_in(tmp_path) == ["out.bin"] and target.read_bytes() == b"new"
