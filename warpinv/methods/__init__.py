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
