"""Inversion methods, one sub-package each, behind one interface (``warpinv.methods.base``).

Importing this package registers every built-in method in ``METHODS``. Methods of other packages
register themselves the same way (``@register_method``) when their module is imported; a suite
names such modules under ``plugins``.
"""
from __future__ import annotations

from warpinv.methods.base import (
    METHODS,
    Inversion,
    InversionFailedError,
    InversionItem,
    InversionMethod,
    InversionOutcome,
    MethodConfig,
    NonFiniteLossError,
    build_method,
    check_finite,
    image_seed,
    outcomes_of,
    register_method,
    split_batch,
)
from warpinv.methods.rendering import LatentRenderer, substituted_tensors

# Built-in methods: importing a sub-package registers its method(s) in METHODS.
from warpinv.methods import e3dge, hfgi3d, in_n_out, pti, w_opt, warpgan, wplus_opt  # noqa: E402,F401  # isort: skip  (registration side effect)

__all__ = [
    "METHODS",
    "Inversion",
    "InversionItem",
    "InversionMethod",
    "InversionOutcome",
    "LatentRenderer",
    "MethodConfig",
    "InversionFailedError",
    "NonFiniteLossError",
    "build_method",
    "check_finite",
    "image_seed",
    "outcomes_of",
    "register_method",
    "split_batch",
    "substituted_tensors",
]
