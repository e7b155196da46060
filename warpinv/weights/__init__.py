"""Pretrained weights: a registry of every file warpinv can use, offline lookup, verification, fetching.

Nothing is downloaded implicitly: :func:`resolve` only searches the disk (explicit path >
``$WARPINV_WEIGHTS`` > torch hub cache > installed package data) and raises
:class:`MissingWeightsError` with instructions; :func:`fetch` downloads only when called
(``warpinv weights fetch NAME``). See ``warpinv/weights/README.md`` for the table of entries.

The pickle reader and converter (``network_pickle``, ``generator_file``) are separate modules of this
package and are not imported here.
"""
from __future__ import annotations

from warpinv.weights.registry import (
    REGISTRY,
    ChecksumError,
    FetchError,
    ManualDownloadError,
    MissingWeightsError,
    OfflineError,
    PublishedChecksum,
    UnknownWeightError,
    WeightSpec,
    WeightStatus,
    check,
    fetch,
    get_spec,
    registered,
    resolve,
)

__all__ = [
    "REGISTRY",
    "ChecksumError",
    "FetchError",
    "ManualDownloadError",
    "MissingWeightsError",
    "OfflineError",
    "PublishedChecksum",
    "UnknownWeightError",
    "WeightSpec",
    "WeightStatus",
    "check",
    "fetch",
    "get_spec",
    "registered",
    "resolve",
]
