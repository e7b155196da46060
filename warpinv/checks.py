"""Input checks whose messages name the argument, what was expected and what was given (kornia-style).

One implementation of every argument check the library repeats: shapes written as dimension
specs (``check_shape(x, "N 3 H W", "image")``), dtypes, finiteness, value ranges, images in a
range, validity masks, matching shapes, batches and devices, EG3D camera labels, and the scalar
and choice arguments of configs. Each check returns nothing (or the normalised input) and raises
on the first fault; ``error`` picks the exception class (e.g. :class:`warpinv.cameras.CameraError`)
so that a package keeps its own error type while sharing the check.

Tensors and NumPy arrays are accepted wherever only the shape or the values are inspected.

Example:
    >>> import torch
    >>> check_shape(torch.zeros(2, 3, 8, 8), "N 3 H W", "image")
    {'N': 2, 'H': 8, 'W': 8}
    >>> check_shape(torch.zeros(2, 4, 8, 8), "N 3 H W", "image")
    Traceback (most recent call last):
    ...
    ValueError: image must be a (N, 3, H, W) tensor, got (2, 4, 8, 8)
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "LABEL_DIM",
    "check_batch",
    "check_camera_labels",
    "check_choice",
    "check_finite",
    "check_floating",
    "check_image",
    "check_mask",
    "check_min",
    "check_range",
    "check_same_device",
    "check_same_shape",
    "check_shape",
    "check_tensor",
    "check_weights_or_random",
    "describe",
]

#: Entries of an EG3D camera label: 16 cam2world + 9 normalised intrinsics.
LABEL_DIM = 25

ErrorType = type[Exception]


def describe(x: object) -> str:
    """How an argument is shown in messages: its shape for tensors and arrays, else its type name.

    Example:
        >>> describe(torch.zeros(2, 3)), describe([1, 2])
        ('(2, 3)', 'list')
    """
    return str(tuple(x.shape)) if isinstance(x, (Tensor, np.ndarray)) else type(x).__name__


def check_tensor(x: object, name: str, *, error: ErrorType = TypeError) -> None:
    """Raise unless ``x`` is a ``torch.Tensor``.

    Example:
        >>> check_tensor([0.0], "pred")
        Traceback (most recent call last):
        ...
        TypeError: pred must be a torch.Tensor, got list
    """
    if not isinstance(x, Tensor):
        raise error(f"{name} must be a torch.Tensor, got {type(x).__name__}")


def check_shape(x: object, spec: str, name: str, *, sizes: Mapping[str, int] | None = None, note: str = "",
                error: ErrorType = ValueError) -> dict[str, int]:
    """Check ``x.shape`` against a dimension spec and return the sizes bound to the spec's names.

    Args:
        x: a tensor or a NumPy array (anything else fails with its type name; messages say "array" for arrays).
        spec: space-separated dimensions: integers must match exactly, names (``N``, ``H``) match any
            size but the same name must have the same size everywhere.
        name: the argument's name in the message.
        sizes: sizes some names must have (``{"N": 4}``); the message shows them as ``N=4``.
        note: text appended after the expected shape (what the dimensions mean).
        error: exception class to raise.

    Example:
        >>> check_shape(torch.zeros(4, 3), "N 3", "ray_o")
        {'N': 4}
        >>> check_shape(torch.zeros(3, 8, 9), "3 H H", "image", note=" (square)")
        Traceback (most recent call last):
        ...
        ValueError: image must be a (3, H, H) tensor (square), got (3, 8, 9)
        >>> check_shape(torch.zeros(3, 3), "N 3", "ray_d", sizes={"N": 4})
        Traceback (most recent call last):
        ...
        ValueError: ray_d must be a (N=4, 3) tensor, got (3, 3)
    """
    dims = spec.split()
    bound: dict[str, int] = dict(sizes or {})
    shown = ", ".join(f"{d}={bound[d]}" if d in bound else d for d in dims)
    noun = "array" if isinstance(x, np.ndarray) else "tensor"
    fail = error(f"{name} must be a ({shown}{',' if len(dims) == 1 else ''}) {noun}{note}, got {describe(x)}")
    if not isinstance(x, (Tensor, np.ndarray)) or len(x.shape) != len(dims):
        raise fail
    for dim, size in zip(dims, x.shape):
        if dim.lstrip("-").isdigit():
            if int(dim) != size:
                raise fail
        elif bound.setdefault(dim, int(size)) != size:
            raise fail
    return {d: bound[d] for d in dims if not d.lstrip("-").isdigit()}


def check_floating(x: Tensor, name: str, *, what: str = "", hint: str = "", error: ErrorType = ValueError) -> None:
    """Raise unless ``x`` has a floating-point dtype (``what`` and ``hint`` extend the message).

    Example:
        >>> check_floating(torch.zeros(2, dtype=torch.uint8), "target", what=" in [-1, 1]")
        Traceback (most recent call last):
        ...
        ValueError: target must be a floating-point tensor in [-1, 1], got torch.uint8
    """
    if not x.is_floating_point():
        raise error(f"{name} must be a floating-point tensor{what}, got {x.dtype}{hint}")


def _all_finite(x: Tensor | np.ndarray) -> bool:
    return bool(torch.isfinite(x).all()) if isinstance(x, Tensor) else bool(np.isfinite(x).all())


def check_finite(x: Tensor | np.ndarray, name: str, *, error: ErrorType = ValueError) -> None:
    """Raise when ``x`` holds NaN or Inf values.

    Example:
        >>> check_finite(torch.tensor([0.0, float("nan")]), "landmarks")
        Traceback (most recent call last):
        ...
        ValueError: landmarks contains NaN or Inf values
    """
    if not _all_finite(x):
        raise error(f"{name} contains NaN or Inf values")


def _fmt(value: float) -> str:
    return f"{value:g}"


def _range_hint(value_range: tuple[float, float], high: float) -> str:
    if value_range == (-1.0, 1.0):
        return " ([0, 255] images: x / 127.5 - 1)" if high > 2 else " ([0, 1] images: x * 2 - 1)"
    if value_range == (0.0, 1.0):
        return " ([0, 255] images: x / 255)" if high > 2 else " ([-1, 1] images: (x + 1) / 2)"
    return ""


def check_range(x: Tensor, name: str, value_range: tuple[float, float], *, tolerance: float = 0.0,
                hint: str | None = None, error: ErrorType = ValueError) -> None:
    """Raise unless every value of ``x`` lies in ``value_range`` (widened by ``tolerance``); NaN fails.

    ``hint`` (default: how to convert the usual image ranges) is appended to the message.

    Example:
        >>> check_range(torch.tensor([0.0, 255.0]), "src_rgbs", (0.0, 1.0))
        Traceback (most recent call last):
        ...
        ValueError: src_rgbs must lie in [0, 1], found values in [0, 255] ([0, 255] images: x / 255)
    """
    low, high = float(x.detach().min()), float(x.detach().max())
    lo, hi = value_range
    if not (low >= lo - tolerance and high <= hi + tolerance):  # written so that NaN fails
        hint = _range_hint(value_range, high) if hint is None else hint
        raise error(f"{name} must lie in [{_fmt(lo)}, {_fmt(hi)}], found values in [{low:.4g}, {high:.4g}]{hint}")


def check_image(x: object, name: str, *, value_range: tuple[float, float] = (-1.0, 1.0), tolerance: float = 0.0,
                clamp_within: tuple[float, float] | None = None) -> Tensor:
    """Check an RGB image batch and return it as ``(N, 3, H, W)`` (one ``(3, H, W)`` image gets N = 1).

    Args:
        x: ``(N, 3, H, W)`` or ``(3, H, W)`` floating tensor.
        name: the argument's name in messages (``pred``, ``target``).
        value_range: the range the values must lie in.
        tolerance: slack allowed outside ``value_range`` (rounding of conversions such as ``x / 127.5 - 1``).
        clamp_within: accept values in this wider range and clamp them to ``value_range`` (generator
            outputs overshoot); values beyond it are still refused (a mis-scaled image).

    Raises:
        TypeError: not a tensor.
        ValueError: wrong dimensions or channels, empty, not floating point, NaN/Inf, out of range.

    Example:
        >>> check_image(torch.zeros(3, 8, 8), "target").shape
        torch.Size([1, 3, 8, 8])
        >>> check_image(torch.full((1, 3, 8, 8), 1.5), "pred", clamp_within=(-10, 10)).max().item()
        1.0
        >>> check_image(torch.full((1, 3, 8, 8), 255.0), "target")
        Traceback (most recent call last):
        ...
        ValueError: target must lie in [-1, 1], found values in [255, 255] ([0, 255] images: x / 127.5 - 1)
    """
    check_tensor(x, name)
    assert isinstance(x, Tensor)
    images = x.unsqueeze(0) if x.ndim == 3 else x
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"{name} must be (N, 3, H, W) or (3, H, W) RGB, got shape {tuple(x.shape)}")
    if images.numel() == 0:
        raise ValueError(f"{name} is empty, shape {tuple(x.shape)}")
    low, high = value_range
    check_floating(images, name, what=f" in [{_fmt(low)}, {_fmt(high)}]",
                   hint=" (convert uint8 with x.float() / 127.5 - 1)" if value_range == (-1.0, 1.0) else "")
    check_finite(images, name)
    if clamp_within is None:
        check_range(images, name, value_range, tolerance=tolerance)
        return images
    wide_low, wide_high = clamp_within
    found_low, found_high = float(images.min()), float(images.max())
    if found_low < wide_low or found_high > wide_high:
        raise ValueError(f"{name} must lie in [{_fmt(low)}, {_fmt(high)}], found values in "
                         f"[{found_low:.4g}, {found_high:.4g}]{_range_hint(value_range, found_high)}")
    return images.clamp(low, high)


def check_mask(mask: object, images: Tensor, name: str = "mask") -> Tensor | None:
    """Check a validity mask for ``images (N, C, H, W)``; return it as float ``(N, 1, H, W)`` or ``None``.

    Accepts ``(N, 1, H, W)``, and ``(1, H, W)`` for a single image; bool or float in [0, 1]
    (1 = valid pixel; fractional values act as weights). Every image needs a valid pixel.

    Example:
        >>> images = torch.zeros(2, 3, 4, 4)
        >>> check_mask(torch.ones(2, 1, 4, 4, dtype=torch.bool), images).dtype
        torch.float32
        >>> check_mask(torch.ones(2, 1, 3, 3), images)
        Traceback (most recent call last):
        ...
        ValueError: mask must be (N, 1, H, W) = (2, 1, 4, 4) to match the images, got (2, 1, 3, 3)
    """
    if mask is None:
        return None
    check_tensor(mask, name)
    assert isinstance(mask, Tensor)
    if mask.ndim == 3 and images.shape[0] == 1:
        mask = mask.unsqueeze(0)
    n, _, height, width = images.shape
    if mask.shape != (n, 1, height, width):
        raise ValueError(f"{name} must be (N, 1, H, W) = {(n, 1, height, width)} to match the images, "
                         f"got {tuple(mask.shape)}")
    mask = mask.to(images.dtype) if mask.dtype == torch.bool else mask
    if not mask.is_floating_point():
        raise ValueError(f"{name} must be bool or float in [0, 1], got dtype {mask.dtype}")
    if not (_all_finite(mask) and mask.min().item() >= 0 and mask.max().item() <= 1):
        raise ValueError(f"{name} values must be finite and in [0, 1] (1 = valid pixel)")
    empty = (mask.flatten(1).sum(1) == 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"{name} has no valid pixel for image(s) {empty}")
    return mask.to(images.dtype)


def check_same_shape(a: Tensor, b: Tensor, names: tuple[str, str] = ("pred", "target"), *,
                     error: ErrorType = ValueError) -> None:
    """Raise unless ``a`` and ``b`` have the same shape.

    Example:
        >>> check_same_shape(torch.zeros(2, 3), torch.zeros(1, 3))
        Traceback (most recent call last):
        ...
        ValueError: pred and target must have the same shape, got (2, 3) and (1, 3)
    """
    if a.shape != b.shape:
        raise error(f"{names[0]} and {names[1]} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


def check_same_device(a: Tensor, b: Tensor, names: tuple[str, str] = ("pred", "target"), *, hint: str = "",
                      error: ErrorType = ValueError) -> None:
    """Raise unless ``a`` and ``b`` are on the same device.

    Example:
        >>> check_same_device(torch.zeros(1), torch.zeros(1, device="meta"))
        Traceback (most recent call last):
        ...
        ValueError: pred is on cpu but target is on meta
    """
    if a.device != b.device:
        raise error(f"{names[0]} is on {a.device} but {names[1]} is on {b.device}{hint}")


def check_batch(x: Tensor | np.ndarray, n: int, name: str, other: str, *, error: ErrorType = ValueError) -> None:
    """Raise unless ``x``'s first dimension is ``n``, the batch of the argument called ``other``.

    Example:
        >>> check_batch(torch.zeros(1, 25), 2, "camera", "depth")
        Traceback (most recent call last):
        ...
        ValueError: camera batch 1 does not match depth batch 2
    """
    if x.shape[0] != n:
        raise error(f"{name} batch {x.shape[0]} does not match {other} batch {n}")


def check_camera_labels(c: object, name: str = "c", *, finite: bool = False, error: ErrorType = ValueError) -> None:
    """Raise unless ``c`` is a floating ``(N, 25)`` tensor of EG3D camera labels (and, with ``finite``, finite).

    The finiteness message names the first bad sample and entry, as ``{name} sample n, entry k (...)``.

    Example:
        >>> check_camera_labels(torch.zeros(25), "cameras")
        Traceback (most recent call last):
        ...
        ValueError: cameras must have shape (N, 25), got (25,) (a single label needs a batch dimension: c[None])
        >>> c = torch.zeros(2, 25); c[1, 7] = float("inf")
        >>> check_camera_labels(c, "camera label", finite=True)
        Traceback (most recent call last):
        ...
        ValueError: camera label sample 1, entry 7 (cam2world[1,3]) is inf (1 non-finite entries in total)
    """
    check_tensor(c, name, error=error)
    assert isinstance(c, Tensor)
    check_floating(c, name, error=error)
    if c.ndim != 2 or c.shape[1] != LABEL_DIM:
        hint = ""
        if c.ndim == 1 and c.shape[0] == LABEL_DIM:
            hint = " (a single label needs a batch dimension: c[None])"
        elif c.ndim >= 1 and c.shape[-1] != LABEL_DIM:
            hint = f" ({c.shape[-1]} entries per label; EG3D labels have 16 cam2world + 9 intrinsics = 25)"
        raise error(f"{name} must have shape (N, {LABEL_DIM}), got {tuple(c.shape)}{hint}")
    if finite:
        bad = (~torch.isfinite(c.detach())).nonzero()
        if len(bad):
            from warpinv.cameras.labels import entry_name  # lazy: warpinv.cameras imports this module

            n, k = int(bad[0, 0]), int(bad[0, 1])
            raise error(f"{name} sample {n}, entry {k} ({entry_name(k)}) is {float(c[n, k])} "
                        f"({len(bad)} non-finite entries in total)")


def _quoted(choices: Sequence[Any] | Mapping[Any, str]) -> str:
    items = [f"{c!r} ({choices[c]})" if isinstance(choices, Mapping) else repr(c) for c in choices]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def check_choice(value: object, choices: Sequence[Any] | Mapping[Any, str], name: str, *,
                 error: ErrorType = ValueError) -> None:
    """Raise unless ``value`` is one of ``choices`` (a mapping adds a description to each choice).

    Example:
        >>> check_choice("tf", ("same", "valid"), "SSIM variant")
        Traceback (most recent call last):
        ...
        ValueError: SSIM variant must be 'same' or 'valid', got 'tf'
        >>> check_choice("x", {"input": "the input image", "render": "the method's render"}, "reference")
        Traceback (most recent call last):
        ...
        ValueError: reference must be 'input' (the input image) or 'render' (the method's render), got 'x'
    """
    if value not in choices:
        raise error(f"{name} must be {_quoted(choices)}, got {value!r}")


def check_weights_or_random(weights: object, allow_random: bool) -> None:
    """Raise when a network is given both a weight file and ``allow_random=True`` (they exclude each other).

    Example:
        >>> check_weights_or_random("model.pth", allow_random=True)
        Traceback (most recent call last):
        ...
        ValueError: pass either weights=PATH or allow_random=True, not both
    """
    if weights is not None and allow_random:
        raise ValueError("pass either weights=PATH or allow_random=True, not both")


def check_min(value: float, minimum: float, name: str, *, strict: bool = False,
              error: ErrorType = ValueError) -> None:
    """Raise unless ``value >= minimum`` (``> minimum`` when ``strict``); NaN fails.

    Example:
        >>> check_min(0, 1, "chunk_size")
        Traceback (most recent call last):
        ...
        ValueError: chunk_size must be >= 1, got 0
        >>> check_min(float("nan"), 0, "radius", strict=True)
        Traceback (most recent call last):
        ...
        ValueError: radius must be > 0, got nan
    """
    if not (value > minimum if strict else value >= minimum):  # NaN compares False either way
        raise error(f"{name} must be {'>' if strict else '>='} {_fmt(minimum)}, got {value}")
