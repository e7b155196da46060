"""Digests of files: sha256 (and md5) in one pass, cached in a stamp so a large file is hashed once.

:func:`sha256_file` is the project's one file-hashing function. :func:`file_digests` adds a JSON
stamp (``<file>.sha256`` beside the file, or under ``$WARPINV_CACHE``/``~/.cache/warpinv/stamps``
when the folder is read-only or belongs to an installed package), keyed by path, size and mtime.
A stamp trusts that a file with unchanged size and mtime has unchanged content; delete it to force
a re-hash.

>>> import tempfile
>>> from pathlib import Path
>>> path = Path(tempfile.mkdtemp()) / "w.bin"
>>> _ = path.write_bytes(b"abc")
>>> sha256_file(path)
'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
>>> file_digests(path)["md5"], path.with_name("w.bin.sha256").is_file()
('900150983cd24fb0d6963f7d28e17f72', True)
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from warpinv.weights.atomic import atomic_path

__all__ = ["CACHE_ENV", "DIGEST_KINDS", "file_digests", "hash_file", "new_hashers", "sha256_file", "write_stamp"]

CACHE_ENV = "WARPINV_CACHE"
#: What :func:`file_digests` computes: every checksum kind a publisher gives is one of these.
DIGEST_KINDS: tuple[str, ...] = ("sha256", "md5")
_DIGEST_LENGTHS = {"sha256": 64, "md5": 32}
_CHUNK = 1 << 20


def new_hashers(kinds: Sequence[str] = DIGEST_KINDS) -> dict[str, Any]:
    """Fresh ``hashlib`` objects by kind, to feed the same bytes to all of them (one pass)."""
    return {kind: hashlib.new(kind, usedforsecurity=False) for kind in kinds}


def hash_file(path: str | os.PathLike[str], kinds: Sequence[str] = DIGEST_KINDS) -> dict[str, str]:
    """Hex digests of a file, read once in 1 MiB chunks (the expensive step that stamps avoid)."""
    hashers = new_hashers(kinds)
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            for h in hashers.values():
                h.update(chunk)
    return {kind: h.hexdigest() for kind, h in hashers.items()}


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (no stamp)."""
    return hash_file(path, ("sha256",))["sha256"]


def file_digests(path: str | os.PathLike[str]) -> dict[str, str]:
    """``{"sha256": ..., "md5": ...}`` of a file, from its stamp when size and mtime still match."""
    path = Path(path)
    digests = _read_stamp(path)
    if digests is None:
        digests = hash_file(path)
        write_stamp(path, digests)
    return digests


def write_stamp(path: Path, digests: Mapping[str, str]) -> None:
    """Record ``digests`` of ``path`` beside it, else in the stamp cache; give up silently if neither is writable."""
    text = json.dumps({**_stat_key(path), **digests}, indent=1) + "\n"
    for stamp in _stamp_paths(path):
        try:
            stamp.parent.mkdir(parents=True, exist_ok=True)
            _write_text_atomically(stamp, text)
            return
        except OSError:
            continue  # read-only folder: fall back to the cache; if both fail, hash again next time


def _write_text_atomically(target: Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def _read_stamp(path: Path) -> dict[str, str] | None:
    key = _stat_key(path)
    for stamp in _stamp_paths(path):
        try:
            data = json.loads(stamp.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and all(data.get(k) == v for k, v in key.items()) and _valid_digests(data):
            return {kind: data[kind] for kind in DIGEST_KINDS}
    return None


def _valid_digests(data: Mapping[str, Any]) -> bool:
    return all(isinstance(data.get(k), str) and len(data[k]) == _DIGEST_LENGTHS[k] for k in DIGEST_KINDS)


def _stat_key(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _stamp_paths(path: Path) -> list[Path]:
    """Where a file's stamp may live: beside it, then in the cache (keyed by the absolute path)."""
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]
    cached = _stamp_cache_dir() / f"{key}.sha256"
    if _inside_package(path):
        return [cached]  # never write into an installed wheel
    return [path.with_name(path.name + ".sha256"), cached]


def _stamp_cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser() / "stamps"
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "warpinv" / "stamps"


def _inside_package(path: Path) -> bool:
    return any(part in ("site-packages", "dist-packages") for part in path.resolve().parts)
