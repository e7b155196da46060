"""Pretrained weights: a catalogue of every file warpinv can use, offline lookup, verification, fetching.

Nothing is downloaded implicitly: :func:`resolve` only searches the disk (explicit path >
``$WARPINV_WEIGHTS`` > torch hub cache > installed package data) and raises
:class:`MissingWeightsError` with instructions; :func:`fetch` downloads only when called
(``warpinv weights fetch NAME``). See ``warpinv/weights/README.md`` for the modules and the table of
entries. Import public names from here, not from the modules:

- ``specs``: :class:`WeightSpec`, :class:`PublishedChecksum` (what a file is);
- ``catalogue``: :data:`REGISTRY` (every known file), :func:`get_spec`, :func:`register`, :func:`registered`;
- ``store``: offline lookup and verification (:func:`resolve`, :func:`locate`, :func:`check`, errors);
- ``digests``: :func:`sha256_file` and the stamp-cached :func:`file_digests`;
- ``download``: :func:`fetch`, the only code that touches the network;
- ``atomic``: write a file through a temporary file renamed into place;
- ``torch_checkpoint``: :func:`read_torch_checkpoint` (``torch.save`` files read without running code, foreign
  configuration objects as inert stubs), :func:`state_dict_from`, :class:`CheckpointReadError`,
  :class:`CheckpointRefusedError`; these names are imported on first use, so importing this package does not
  import torch.

The pickle reader and converter (``network_pickle``, ``generator_file``) are separate modules of this
package and are not imported here (they need torch at import time).
"""
from __future__ import annotations

import importlib
from typing import Any

from warpinv.weights.catalogue import REGISTRY, UnknownWeightError, get_spec, register, registered
from warpinv.weights.digests import CACHE_ENV, file_digests, sha256_file
from warpinv.weights.download import (
    OFFLINE_ENV,
    FetchError,
    ManualDownloadError,
    OfflineError,
    default_fetch_dir,
    fetch,
)
from warpinv.weights.specs import PublishedChecksum, WeightSpec
from warpinv.weights.store import (
    STATUS_MISMATCH,
    STATUS_MISSING,
    STATUS_UNREADABLE,
    STATUS_UNVERIFIED,
    STATUS_VERIFIED,
    WEIGHTS_ENV,
    ChecksumError,
    MissingWeightsError,
    SearchLocation,
    WeightStatus,
    check,
    locate,
    resolve,
    resolve_file,
    search_locations,
    verify_file,
)

# Imported from torch_checkpoint on first use (it needs torch).
_TORCH_CHECKPOINT_NAMES = (
    "DEFAULT_STUB_MODULES",
    "CheckpointReadError",
    "CheckpointRefusedError",
    "ForeignStub",
    "read_torch_checkpoint",
    "state_dict_from",
)

__all__ = [
    "CACHE_ENV",
    "DEFAULT_STUB_MODULES",
    "OFFLINE_ENV",
    "REGISTRY",
    "STATUS_MISMATCH",
    "STATUS_MISSING",
    "STATUS_UNREADABLE",
    "STATUS_UNVERIFIED",
    "STATUS_VERIFIED",
    "WEIGHTS_ENV",
    "CheckpointReadError",
    "CheckpointRefusedError",
    "ChecksumError",
    "FetchError",
    "ForeignStub",
    "ManualDownloadError",
    "MissingWeightsError",
    "OfflineError",
    "PublishedChecksum",
    "SearchLocation",
    "UnknownWeightError",
    "WeightSpec",
    "WeightStatus",
    "check",
    "default_fetch_dir",
    "fetch",
    "file_digests",
    "get_spec",
    "locate",
    "read_torch_checkpoint",
    "register",
    "registered",
    "resolve",
    "resolve_file",
    "search_locations",
    "sha256_file",
    "state_dict_from",
    "verify_file",
]


def __getattr__(name: str) -> Any:  # lazy: importing warpinv.weights stays free of torch
    if name in _TORCH_CHECKPOINT_NAMES:
        return getattr(importlib.import_module("warpinv.weights.torch_checkpoint"), name)
    raise AttributeError(f"module 'warpinv.weights' has no attribute {name!r}")
