"""Seeded synthetic occluders (out-of-distribution objects) pasted on an image, with their binary mask.

The occluded synthetic set (``SyntheticSpec.occluders``, :mod:`warpinv.data.synthetic`) pastes these
on every input view to test methods that explain occluders with a second field (In-N-Out). Kinds
(:data:`OCCLUDER_KINDS`):

- ``patch``: a solid-colour axis-aligned rectangle (aspect 1:2 to 2:1) centred in the middle 60 %;
- ``stripes``: 2-4 parallel solid bars at a random angle;
- ``glasses``: two elliptic rings joined by a bridge on the eye band (centre 36-46 % down the image,
  the upper middle of a face crop); a large share of the area gives solid lenses (sunglasses);
- ``sticker``: a disc or a wobbly blob filled with a seeded checkerboard or colour noise.

Shapes are drawn on the pixel centres in units of the image's width and height, without
anti-aliasing, so the mask is exactly the set of pasted pixels: outside it the image is unchanged
(inside it a pixel may keep its value where the occluder's colour happens to equal it).
:func:`occlude` draws ``count`` of them with a total target area uniform in the middle of
``coverage`` (8-20 % for the default 5-25 %) and redraws until the union covers ``coverage``.
Measured at 128 px over 400 seeded draws for each count (1, 2, 3, 4, 8) with all kinds and with each
kind alone: accepted coverage 5.2-20.4 % (medians 8-15 %; with glasses alone 8-14 %, as overlapping
frames cover less), and at most 3 in 400 draws were redrawn.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from warpinv.checks import check_min

__all__ = ["COVERAGE", "MAX_OCCLUDERS", "OCCLUDER_KINDS", "Occlusion", "check_occluder_kinds", "occlude"]

#: The occluder kinds :func:`occlude` draws.
OCCLUDER_KINDS: tuple[str, ...] = ("patch", "stripes", "glasses", "sticker")
#: Fraction of the image the union of an input's occluders covers (inclusive bounds).
COVERAGE: tuple[float, float] = (0.05, 0.25)
#: More occluders per image than this would each be a few pixels wide within ``COVERAGE``.
MAX_OCCLUDERS = 8
#: Thinnest bar, ring or side drawn, in pixels: thinner ones would miss whole rows of pixel centres.
_MIN_PIXELS = 1.5
_MAX_DRAWS = 200


@dataclass
class Occlusion:
    """An occluded image: ``image (H, W, 3)`` uint8, ``mask (H, W)`` bool (True = occluder pixel),
    and the kinds pasted, in order."""

    image: np.ndarray
    mask: np.ndarray
    kinds: list[str]

    @property
    def coverage(self) -> float:
        """Fraction of the pixels under an occluder."""
        return float(self.mask.mean())


def check_occluder_kinds(kinds: Sequence[str], name: str = "occluder_kinds") -> list[str]:
    """``kinds`` as a list, checked: a non-empty sequence of distinct names from :data:`OCCLUDER_KINDS`.

    Example:
        >>> check_occluder_kinds(("glasses", "patch"))
        ['glasses', 'patch']
        >>> check_occluder_kinds(["hat"])
        Traceback (most recent call last):
        ...
        ValueError: occluder_kinds must name kinds among patch, stripes, glasses, sticker; got unknown ['hat']
    """
    if isinstance(kinds, str) or not isinstance(kinds, Sequence):
        raise TypeError(f"{name} must be a list of kind names ({', '.join(OCCLUDER_KINDS)}), got {kinds!r}")
    kinds = list(kinds)
    if not kinds:
        raise ValueError(f"{name} must name at least one kind ({', '.join(OCCLUDER_KINDS)})")
    unknown = [k for k in kinds if k not in OCCLUDER_KINDS]
    if unknown:
        raise ValueError(f"{name} must name kinds among {', '.join(OCCLUDER_KINDS)}; got unknown {unknown}")
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"{name} must not repeat a kind, got {kinds}")
    return kinds


def occlude(image: np.ndarray, count: int, kinds: Sequence[str], rng: np.random.Generator, *,
            coverage: tuple[float, float] = COVERAGE) -> Occlusion:
    """Paste ``count`` occluders of kinds drawn uniformly from ``kinds`` on ``image (H, W, 3)`` uint8.

    The result is a new image; the input is not modified. Everything is drawn from ``rng``, so the
    same generator state gives the same occlusion.

    Raises:
        ValueError: a bad argument, or no draw in 200 covered ``coverage`` (an image too small for
            ``count`` occluders: every bar is at least 1.5 pixels wide).

    Example:
        >>> occ = occlude(np.zeros((64, 64, 3), np.uint8), 2, OCCLUDER_KINDS, np.random.default_rng(0))
        >>> 0.05 <= occ.coverage <= 0.25, len(occ.kinds)
        (True, 2)
    """
    _check_image(image)
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)):
        raise TypeError(f"count must be an int (occluders per image), got {count!r}")
    check_min(int(count), 1, "count")
    if count > MAX_OCCLUDERS:
        raise ValueError(f"count must be at most {MAX_OCCLUDERS} occluders per image, got {count}")
    kinds = check_occluder_kinds(kinds, "kinds")
    lo, hi = coverage
    if not 0 < lo < hi <= 1:
        raise ValueError(f"coverage must be (low, high) with 0 < low < high <= 1, got {coverage}")
    for _ in range(_MAX_DRAWS):
        occ = _draw(image, int(count), kinds, rng, lo + 0.15 * (hi - lo), lo + 0.75 * (hi - lo))
        if lo <= occ.coverage <= hi:
            return occ
    raise ValueError(f"could not place {count} occluder(s) of kinds {kinds} covering {lo:.0%}-{hi:.0%} of a "
                     f"{image.shape[1]}x{image.shape[0]} image in {_MAX_DRAWS} draws; use fewer occluders "
                     "or a larger image")


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"image must be an (H, W, 3) uint8 array, got {got}")
    if min(image.shape[:2]) < 8:
        raise ValueError(f"image must be at least 8x8 pixels to hold occluders, got {image.shape[1]}x{image.shape[0]}")


def _draw(image: np.ndarray, count: int, kinds: list[str], rng: np.random.Generator, low: float,
          high: float) -> Occlusion:
    """One draw: ``count`` occluders whose target areas add up to a total uniform in ``[low, high]``."""
    chosen = [str(k) for k in rng.choice(kinds, size=count)]
    weights = rng.uniform(0.5, 1.5, size=count)
    areas = weights / weights.sum() * rng.uniform(low, high)
    grid = _Grid(*image.shape[:2])
    out, union = image.copy(), np.zeros(image.shape[:2], dtype=bool)
    for kind, area in zip(chosen, areas):
        mask, colour = _SHAPES[kind](grid, float(area), rng)
        out[mask] = colour[mask]
        union |= mask
    return Occlusion(out, union, chosen)


class _Grid:
    """Pixel centres of an ``(h, w)`` image in units of its width (``x``) and height (``y``), each ``(h, w)``."""

    def __init__(self, h: int, w: int) -> None:
        self.h, self.w = h, w
        self.y, self.x = ((np.mgrid[0:h, 0:w] + 0.5) / np.array([h, w])[:, None, None])
        self.min_width = _MIN_PIXELS / min(h, w)

    def solid(self, colour: np.ndarray) -> np.ndarray:
        """``(h, w, 3)`` uint8 filled with ``colour (3,)``."""
        return np.broadcast_to(colour.astype(np.uint8), (self.h, self.w, 3))


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=3)


def _patch(g: _Grid, area: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A solid rectangle of about ``area`` (fraction of the image), aspect 1:2 to 2:1."""
    aspect = math.exp(rng.uniform(-math.log(2), math.log(2)))
    w = min(max(math.sqrt(area * aspect), g.min_width), 0.9)
    h = min(max(area / w, g.min_width), 0.9)
    cx, cy = rng.uniform(0.2, 0.8, size=2)
    mask = (np.abs(g.x - cx) <= w / 2) & (np.abs(g.y - cy) <= h / 2)
    return mask, g.solid(_colour(rng))


def _stripes(g: _Grid, area: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """2-4 parallel solid bars of together about ``area``, at an angle uniform in ``[0, pi)``; the set
    spans at most 0.8 across, so every bar's midpoint is inside the image."""
    n = int(rng.integers(2, 5))
    angle = rng.uniform(0.0, math.pi)
    spacing = rng.uniform(2.0, 3.0)  # period / width
    length = rng.uniform(0.45, 0.75)
    width = max(min(area / (n * length), 0.8 / (n * spacing)), g.min_width)
    length = min(max(area / (n * width), length), 0.9)
    period = width * spacing
    cx, cy = rng.uniform(0.35, 0.65, size=2)
    across = (g.x - cx) * math.cos(angle) + (g.y - cy) * math.sin(angle)
    along = -(g.x - cx) * math.sin(angle) + (g.y - cy) * math.cos(angle)
    offsets = (np.arange(n) - (n - 1) / 2) * period
    bars = np.abs(across[..., None] - offsets).min(axis=-1) <= width / 2
    return bars & (np.abs(along) <= length / 2), g.solid(_colour(rng))


def _glasses(g: _Grid, area: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two elliptic rings and a bridge on the eye band; the ring thickness is solved for ``area``,
    and when solid lenses are not enough the whole frame is enlarged (up to 96 % of the width)."""
    rx = rng.uniform(0.09, 0.13)
    ry = rx * rng.uniform(0.65, 0.9)
    bridge = rng.uniform(0.03, 0.07)
    cx, cy = rng.uniform(0.46, 0.54), rng.uniform(0.36, 0.46)
    thickness = _ring_thickness(area, rx, ry, bridge)
    if thickness is None:  # solid lenses are too small: scale the frame up
        scale = min(math.sqrt(area / (2 * math.pi * rx * ry + bridge * 0.3 * ry)), 0.96 / (4 * rx + bridge))
        rx, ry, bridge, thickness = rx * scale, ry * scale, bridge * scale, ry * scale
    thickness = max(thickness, g.min_width)
    mask = np.zeros((g.h, g.w), dtype=bool)
    for side in (-1, 1):
        ex = cx + side * (rx + bridge / 2)
        mask |= _ring(g, ex, cy, rx, ry, thickness)
    bar = max(min(thickness, 0.3 * ry), g.min_width)
    reach = bridge / 2 + thickness  # into the rings, so that the bridge meets them
    mask |= (np.abs(g.x - cx) <= reach) & (np.abs(g.y - cy) <= bar / 2)
    return mask, g.solid(rng.integers(0, 96, size=3))  # dark frames


def _ring_thickness(area: float, rx: float, ry: float, bridge: float) -> float | None:
    """Thickness ``t`` of two rings of radii ``rx, ry`` plus a ``bridge x t`` bar that together cover
    ``area``: the smaller root of ``2 pi t^2 - (2 pi (rx + ry) + bridge) t + area = 0``; ``None`` when
    even solid lenses (``t = ry``, ``ry < rx``) do not reach it.

    Example:
        >>> t = _ring_thickness(0.02, 0.1, 0.08, 0.05)
        >>> round(2 * math.pi * (t * 0.18 - t * t) + 0.05 * t, 6)
        0.02
    """
    b = 2 * math.pi * (rx + ry) + bridge
    disc = b * b - 8 * math.pi * area
    if disc < 0:
        return None
    t = (b - math.sqrt(disc)) / (4 * math.pi)
    return t if t <= ry else None


def _ring(g: _Grid, ex: float, ey: float, rx: float, ry: float, thickness: float) -> np.ndarray:
    """Pixels inside the ellipse of radii ``(rx, ry)`` at ``(ex, ey)`` and outside the one ``thickness`` smaller."""
    outer = ((g.x - ex) / rx) ** 2 + ((g.y - ey) / ry) ** 2 <= 1
    irx, iry = rx - thickness, ry - thickness
    if irx <= 0 or iry <= 0:
        return outer
    return outer & (((g.x - ex) / irx) ** 2 + ((g.y - ey) / iry) ** 2 > 1)


def _sticker(g: _Grid, area: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A disc or a blob (radius modulated by harmonics 2-4) of about ``area``, textured with a
    checkerboard of two seeded colours or with seeded colour noise."""
    r0 = max(math.sqrt(area / math.pi), g.min_width)
    cx, cy = rng.uniform(max(0.25, r0), min(0.75, 1 - r0), size=2) if r0 < 0.5 else (0.5, 0.5)
    dx, dy = g.x - cx, g.y - cy
    radius = np.full_like(dx, r0)
    if rng.random() < 0.5:
        phi = np.arctan2(dy, dx)
        for k, amp, phase in zip((2, 3, 4), rng.uniform(0.0, 0.12, size=3), rng.uniform(0, 2 * math.pi, size=3)):
            radius = radius * (1 + amp * np.cos(k * phi + phase))
    mask = dx ** 2 + dy ** 2 <= radius ** 2
    if rng.random() < 0.5:
        cell = max(r0 * rng.uniform(0.2, 0.5), g.min_width)
        checker = ((np.floor(dx / cell) + np.floor(dy / cell)) % 2).astype(bool)
        colour = np.where(checker[..., None], _colour(rng), _colour(rng)).astype(np.uint8)
    else:
        colour = rng.integers(0, 256, size=(g.h, g.w, 3), dtype=np.uint8)
    return mask, colour


_SHAPES = {"patch": _patch, "stripes": _stripes, "glasses": _glasses, "sticker": _sticker}
