"""What a pretrained file is: :class:`WeightSpec` (one file's facts) and :class:`PublishedChecksum`.

A spec records where a file comes from, its licence, what needs it and how to verify it; it never
touches the disk. The table of every known file is :mod:`warpinv.weights.catalogue`.

>>> spec = WeightSpec(name="demo", filename="demo.bin", licence="MIT", used_by=["tests"],
...                   checksum=PublishedChecksum("sha256-prefix", "0123abcd", "its file name"))
>>> spec.used_by, spec.source_kind, spec.has_checksum
(('tests',), 'none', True)
>>> spec.checksum.matches({"sha256": "0123abcd" + "0" * 56, "md5": "0" * 32})
True
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = ["ChecksumKind", "PublishedChecksum", "WeightSpec"]

ChecksumKind = Literal["md5", "sha256", "sha256-prefix"]
_HEX_LENGTHS: dict[str, tuple[int, int]] = {"md5": (32, 32), "sha256": (64, 64), "sha256-prefix": (8, 63)}


@dataclass(frozen=True)
class PublishedChecksum:
    """A checksum exactly as its publisher gave it.

    Attributes:
        kind: ``"md5"``, ``"sha256"`` or ``"sha256-prefix"`` (the leading hex digits of the sha256,
            as torch hub file names carry them).
        value: lowercase hex.
        source: where it was published.
    """

    kind: ChecksumKind
    value: str
    source: str

    def __post_init__(self) -> None:
        if self.kind not in _HEX_LENGTHS:
            raise ValueError(f"unknown checksum kind {self.kind!r}; use one of {sorted(_HEX_LENGTHS)}")
        low, high = _HEX_LENGTHS[self.kind]
        if not (low <= len(self.value) <= high and _is_hex(self.value)):
            raise ValueError(f"{self.kind} checksum {self.value!r} is not {low}-{high} lowercase hex digits")

    def matches(self, digests: Mapping[str, str]) -> bool:
        """Whether computed ``digests`` (``{"sha256": ..., "md5": ...}``) agree with this checksum."""
        return self.actual(digests) == self.value

    def actual(self, digests: Mapping[str, str]) -> str:
        """The computed value comparable with :attr:`value`."""
        if self.kind == "sha256-prefix":
            return digests["sha256"][: len(self.value)]
        return digests[self.kind]


@dataclass(frozen=True)
class WeightSpec:
    """One pretrained file.

    Attributes:
        name: registry key (``eg3d-ffhq512-128``, ``arcface-ir-se50``, ...).
        filename: the file's name on disk.
        licence: licence of the file (or what is known about it).
        used_by: the parts of warpinv (or of the reproduced methods) that need it.
        urls: published download URLs, best first (may be empty).
        checksum: the checksum as published, or ``None`` where nobody published one.
        sha256: the full sha256, where known; ``None`` otherwise.
        size: size in bytes, where known.
        manual_instructions: how to obtain the file when it has no direct URL (Google Drive, archives,
            registration). Entries with instructions are never downloaded by
            :func:`~warpinv.weights.fetch`.
        hub_filename: the name the torch hub cache uses, when it differs or matters.
        packaged_in: ``(python package, path inside it)`` for files that ship inside a wheel.
        cache: ``"hub"`` (``torch.hub.get_dir()/checkpoints``) or ``"torch_home"`` (also search
            ``$TORCH_HOME/checkpoints``, where facenet-pytorch caches, and fetch there).
        description: one line on what the file is.
        provenance: where the URL / checksum / size facts come from.
    """

    name: str
    filename: str
    licence: str
    used_by: tuple[str, ...]
    urls: tuple[str, ...] = ()
    checksum: PublishedChecksum | None = None
    sha256: str | None = None
    size: int | None = None
    manual_instructions: str | None = None
    hub_filename: str | None = None
    packaged_in: tuple[str, str] | None = None
    cache: Literal["hub", "torch_home"] = "hub"
    description: str = ""
    provenance: str = ""

    def __post_init__(self) -> None:
        # Accept lists for convenience but store tuples, so specs stay hashable and immutable.
        object.__setattr__(self, "used_by", tuple(self.used_by))
        object.__setattr__(self, "urls", tuple(self.urls))
        if self.packaged_in is not None:
            object.__setattr__(self, "packaged_in", tuple(self.packaged_in))
        self._validate()

    def _validate(self) -> None:
        if not self.name or not self.filename or os.sep in self.filename:
            raise ValueError(f"weight spec needs a name and a bare file name, got {self.name!r}, {self.filename!r}")
        if not self.licence.strip() or not self.used_by:
            raise ValueError(f"weight spec {self.name!r} needs a licence and at least one used_by entry")
        if self.sha256 is not None and not (len(self.sha256) == 64 and _is_hex(self.sha256)):
            raise ValueError(f"weight spec {self.name!r}: sha256 must be 64 lowercase hex digits")
        if self.packaged_in is not None and len(self.packaged_in) != 2:
            raise ValueError(f"weight spec {self.name!r}: packaged_in is (package, relative path)")
        if self.cache not in ("hub", "torch_home"):
            raise ValueError(f"weight spec {self.name!r}: cache must be 'hub' or 'torch_home'")

    @property
    def cache_filename(self) -> str:
        """The file name inside the torch hub cache."""
        return self.hub_filename or self.filename

    @property
    def source_kind(self) -> Literal["packaged", "manual", "direct", "none"]:
        """How the file is obtained: inside a wheel, by hand, by :func:`~warpinv.weights.fetch`, or not at all."""
        if self.packaged_in is not None:
            return "packaged"
        if self.manual_instructions:
            return "manual"
        return "direct" if self.urls else "none"

    @property
    def has_checksum(self) -> bool:
        """Whether the file can be verified at all."""
        return self.sha256 is not None or self.checksum is not None or self.size is not None


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)
