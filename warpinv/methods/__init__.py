"""Inversion methods, one sub-package each, behind one interface (``warpinv.methods.base``).

Importing this package registers every built-in method in ``METHODS``.
"""
from __future__ import annotations

from warpinv.methods.base import (
    METHODS,
    Evaluator,
    Inversion,
    InversionItem,
    InversionMethod,
    MethodConfig,
    NonFiniteLossError,
    build_method,
    check_finite,
    image_seed,
    register_method,
    split_batch,
    swapped_tensors,
)

# Built-in methods: importing a sub-package registers its method(s) in METHODS.
from warpinv.methods import pti, w_opt, wplus_opt  # noqa: E402,F401  (registration side effect)

__all__ = [
    "METHODS",
    "Evaluator",
    "Inversion",
    "InversionItem",
    "InversionMethod",
    "MethodConfig",
    "NonFiniteLossError",
    "build_method",
    "check_finite",
    "image_seed",
    "register_method",
    "split_batch",
    "swapped_tensors",
]
