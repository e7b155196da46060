"""Metrics of out-of-distribution (occluded) inputs: how well a method removes an occluder, and finds it.

For datasets that paste an occluder on the input view and keep the clean image and the occluder's mask
(``ood_mask``, 1 = occluder pixel). Both metrics have kind ``"ood"``; the benchmark scores them on the
``input`` row of the items that carry those extras (:mod:`warpinv.bench.evaluate`).

- ``clean_psnr``: :class:`CleanPSNR`, ``metric(removed, clean, ood_mask=None) -> {column: (N,)}``.
  PSNR (dB, per image, [0, 1] images, the ``psnr`` conventions, 256x256 by default) of the method's
  OOD-free render of the input view against the **clean** input. Columns: ``clean_psnr`` (whole
  image, equal to ``psnr(removed, clean)``) and, with a mask, ``clean_psnr_in`` (the occluder region)
  and ``clean_psnr_out`` (the rest).
- ``blend_iou``: :class:`BlendIoU`, ``metric(blend_map, ood_mask) -> {"blend_iou": (N,)}``. IoU of the
  method's blend map thresholded at 0.5 with the occluder mask, at the mask's resolution.

:func:`occluded_input_psnr` scores the occluded input itself the same way: the "do nothing" baseline.

Regions of ``clean_psnr`` at the scoring resolution: the mask is resized with the images (the same
antialiased bilinear filter); **inside** = every pixel the resized mask touches (value > 0), **outside**
= the pixels it does not (exactly 0). So no occluder pixel leaks into an outside pixel through the
resize, and the occluded input itself scores ``inf`` outside. A region without pixels gives NaN.

Example:
    >>> clean = torch.zeros(1, 3, 8, 8)
    >>> occluded = clean.clone(); occluded[..., :4, :] = 1.0
    >>> mask = torch.zeros(1, 1, 8, 8); mask[..., :4, :] = 1.0
    >>> scores = occluded_input_psnr(occluded, clean, mask, resolution=None)
    >>> {k: round(v.item(), 2) for k, v in scores.items()}
    {'clean_psnr': 9.03, 'clean_psnr_in': 6.02, 'clean_psnr_out': inf}
    >>> BlendIoU()(mask, mask)["blend_iou"].tolist()
    [1.0]
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from warpinv.checks import (
    check_batch,
    check_finite,
    check_floating,
    check_range,
    check_same_device,
    check_same_shape,
    check_shape,
    check_tensor,
)
from warpinv.metrics.base import (
    DEFAULT_RESOLUTION,
    RANGE_TOLERANCE,
    Metric,
    MetricInfo,
    check_images,
    masked_mean,
    register_metric,
    resize,
)

__all__ = ["BLEND_THRESHOLD", "CLEAN_COLUMNS", "BlendIoU", "CleanPSNR", "check_ood_mask", "occluded_input_psnr"]

#: Columns of ``clean_psnr``: whole image, inside the occluder mask, outside it.
CLEAN_COLUMNS = ("clean_psnr", "clean_psnr_in", "clean_psnr_out")
#: Blend maps and masks count a pixel as out-of-distribution from this value up.
BLEND_THRESHOLD = 0.5

_NO_PAPER = ("No seed paper reports it: In-N-Out shows OOD removal qualitatively (its Tab. 1 scores the "
             "reconstruction of the occluded input, i.e. the psnr column). warpinv diagnostic on synthetic "
             "occluders; compare only with numbers on the same occluder set.")
_CLEAN_PROTOCOL = (
    "PSNR 10 log10(1 / MSE) of [0, 1] images (x + 1) / 2, per image, of the method's OOD-free render of the "
    "input view (its without_ood render when the renderer separates an OOD part, e.g. In-N-Out's removal; its "
    "ordinary render otherwise) against the clean input (the image before the occluder was pasted); prediction "
    "clamped. Images and the occluder mask are resized to 256x256 with antialiased bilinear interpolation unless "
    "built with another resolution (resolution=None: input size).")
_REGIONS = (" Inside = pixels the resized occluder mask touches (> 0), outside = pixels it does not (exactly 0: no "
            "occluder pixel reaches them through the resize); NaN when the region is empty.")


def _clean_output(name: str, protocol: str) -> MetricInfo:
    return MetricInfo(name=name, higher_is_better=True, value_range=(0.0, float("inf")), resolution=DEFAULT_RESOLUTION,
                      input_range=(-1.0, 1.0), weights=(), protocol=protocol, comparable_to=_NO_PAPER, kind="ood",
                      unit="dB")


# ------------------------------------------------------------------------------------------ input checks


def check_ood_mask(mask: object, images: Tensor | None = None, name: str = "ood_mask") -> Tensor:
    """Check an occluder mask (for ``images (N, C, H, W)`` when given); return it as float ``(N, 1, H, W)``.

    Accepts ``(N, 1, H, W)`` (``(1, H, W)`` for a single image), bool or float in [0, 1], 1 = occluder
    (out-of-distribution) pixel. Unlike a validity mask it may be all zeros (no occluder).

    Example:
        >>> check_ood_mask(torch.ones(2, 1, 4, 4, dtype=torch.bool), torch.zeros(2, 3, 4, 4)).dtype
        torch.float32
        >>> check_ood_mask(torch.ones(2, 1, 4, 4), torch.zeros(2, 3, 8, 8))
        Traceback (most recent call last):
        ...
        ValueError: ood_mask must be a (N=2, 1, H=8, W=8) tensor matching the images, got (2, 1, 4, 4)
        >>> check_ood_mask(torch.full((2, 1, 4, 4), 2.0))
        Traceback (most recent call last):
        ...
        ValueError: ood_mask must lie in [0, 1], found values in [2, 2] (1 = occluder pixel)
    """
    check_tensor(mask, name)
    assert isinstance(mask, Tensor)
    if images is None:
        check_shape(mask, "N 1 H W", name, note=" (1 = occluder pixel)")
    else:
        if mask.ndim == 3 and images.shape[0] == 1:
            mask = mask.unsqueeze(0)
        n, _, height, width = images.shape
        check_shape(mask, "N 1 H W", name, sizes={"N": n, "H": height, "W": width}, note=" matching the images")
        check_same_device(mask, images, (name, "images"))
    _check_not_empty(mask, name)
    if mask.dtype == torch.bool:
        mask = mask.float()
    check_floating(mask, name, what=" (bool or float in [0, 1])")
    check_finite(mask, name)
    check_range(mask, name, (0.0, 1.0), hint=" (1 = occluder pixel)")
    return mask if images is None else mask.to(images.dtype)


def _check_blend_map(blend_map: object) -> Tensor:
    check_tensor(blend_map, "blend_map")
    assert isinstance(blend_map, Tensor)
    check_shape(blend_map, "N 1 h w", "blend_map", note=" (per-pixel OOD blend weight)")
    _check_not_empty(blend_map, "blend_map")
    check_floating(blend_map, "blend_map", what=" in [0, 1]")
    check_finite(blend_map, "blend_map")
    check_range(blend_map, "blend_map", (0.0, 1.0), tolerance=RANGE_TOLERANCE)
    return blend_map


def _check_not_empty(x: Tensor, name: str) -> None:
    if x.numel() == 0:
        raise ValueError(f"{name} is empty, shape {tuple(x.shape)}")


def _check_resolution(resolution: object) -> None:
    if resolution is not None and (isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1):
        raise ValueError(f"resolution must be a positive int or None, got {resolution!r}")


# ------------------------------------------------------------------------------------------ clean_psnr


def _region_psnr(squared_error: Tensor, region: Tensor | None) -> Tensor:
    """``(N,)`` PSNR of ``(N, C, S, S)`` squared errors on [0, 1] over a bool ``(N, 1, S, S)`` region (NaN: empty)."""
    if region is None:
        return -10 * torch.log10(masked_mean(squared_error, None))
    weights = region.to(squared_error.dtype)
    count = weights.flatten(1).sum(1) * squared_error.shape[1]
    total = (squared_error * weights).flatten(1).sum(1)
    mse = torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, float("nan")))
    return -10 * torch.log10(mse)


class CleanPSNR(Metric):
    """PSNR of an OOD-free render against the clean input; whole image, inside and outside the occluder.

    Args:
        resolution: side the images and the mask are resized to (antialiased bilinear, as every pair
            metric); ``None`` scores at the input size.

    Call: ``metric(removed, clean, ood_mask=None) -> {column: (N,) float32}``. ``removed`` and ``clean``
    are ``(N, 3, H, W)`` (or ``(3, H, W)``) in [-1, 1] (``clean`` checked, ``removed`` clamped, as
    ``pred``/``target`` of :func:`~warpinv.metrics.base.check_pair`); ``ood_mask (N, 1, H, W)`` in [0, 1]
    with 1 = occluder pixel (:func:`check_ood_mask`). Without a mask only ``clean_psnr`` is returned.
    """

    info = MetricInfo(
        name="clean_psnr",
        higher_is_better=True,
        value_range=(0.0, float("inf")),
        resolution=DEFAULT_RESOLUTION,
        input_range=(-1.0, 1.0),
        weights=(),
        protocol=_CLEAN_PROTOCOL + " Columns: clean_psnr (whole image), clean_psnr_in / clean_psnr_out (inside / "
                 "outside the occluder mask; only for items with a mask)." + _REGIONS,
        comparable_to=_NO_PAPER,
        kind="ood",
        unit="dB",
        outputs=(
            _clean_output("clean_psnr", "Whole image (equal to psnr(removed, clean)). " + _CLEAN_PROTOCOL),
            _clean_output("clean_psnr_in", "Inside the occluder mask: how well the hidden face is recovered. "
                          + _CLEAN_PROTOCOL + _REGIONS),
            _clean_output("clean_psnr_out", "Outside the occluder mask: what the removal keeps of the visible "
                          "face. " + _CLEAN_PROTOCOL + _REGIONS),
        ),
    )

    def __init__(self, resolution: int | None = DEFAULT_RESOLUTION) -> None:
        super().__init__()
        _check_resolution(resolution)
        self.resolution = resolution
        base = type(self).info
        self.info = replace(base, resolution=resolution,
                            outputs=tuple(replace(out, resolution=resolution) for out in base.outputs))

    @staticmethod
    def columns(with_mask: bool) -> tuple[str, ...]:
        """The columns a call returns: all three with a mask, ``clean_psnr`` alone without."""
        return CLEAN_COLUMNS if with_mask else CLEAN_COLUMNS[:1]

    @torch.no_grad()
    def forward(self, removed: Tensor, clean: Tensor, ood_mask: Tensor | None = None) -> dict[str, Tensor]:
        clean = check_images(clean, "clean")
        removed = check_images(removed, "removed", clamp=True)
        check_same_shape(removed, clean, ("removed", "clean"))
        check_same_device(removed, clean, ("removed", "clean"))
        clean = clean.to(removed.dtype)
        mask = None if ood_mask is None else check_ood_mask(ood_mask, removed)
        if self.resolution is not None:
            removed, clean = resize(removed, self.resolution), resize(clean, self.resolution)
            mask = None if mask is None else resize(mask, self.resolution)
        squared_error = ((removed.double() + 1) / 2 - (clean.double() + 1) / 2) ** 2  # as PSNR.score
        out = {"clean_psnr": _region_psnr(squared_error, None)}
        if mask is not None:
            inside = mask > 0
            out["clean_psnr_in"] = _region_psnr(squared_error, inside)
            out["clean_psnr_out"] = _region_psnr(squared_error, ~inside)
        return {k: v.float() for k, v in out.items()}


def occluded_input_psnr(occluded: Tensor, clean: Tensor, ood_mask: Tensor | None = None, *,
                        resolution: int | None = DEFAULT_RESOLUTION) -> dict[str, Tensor]:
    """``clean_psnr`` of the occluded input itself: the "do nothing" baseline of an occluded set.

    Same columns and conventions as :class:`CleanPSNR` (a table can show it as a baseline row); its
    ``clean_psnr_out`` is ``inf`` by construction (outside the mask the input is clean).

    Args:
        occluded: ``(N, 3, H, W)`` in [-1, 1], the input with its occluder.
        clean: ``(N, 3, H, W)`` in [-1, 1], the input without it.
        ood_mask: ``(N, 1, H, W)`` in [0, 1], 1 = occluder pixel, or ``None``.
        resolution: scoring resolution (``None``: input size).

    Returns:
        ``{column: (N,) float32}`` as :class:`CleanPSNR`.
    """
    return CleanPSNR(resolution)(occluded, clean, ood_mask)


# ------------------------------------------------------------------------------------------ blend_iou


def _above(x: Tensor) -> Tensor:
    return x >= BLEND_THRESHOLD


class BlendIoU(Metric):
    """IoU of a method's thresholded blend map with the occluder mask, at the mask's resolution.

    Call: ``metric(blend_map, ood_mask) -> {"blend_iou": (N,) float32}``. ``blend_map (N, 1, h, w)`` in
    [0, 1] (any size: thresholded at 0.5, then resized to the mask's ``H x W`` with ``nearest-exact``
    sampling); ``ood_mask (N, 1, H, W)`` in [0, 1], thresholded at 0.5. NaN for an image where both are
    empty (no occluder, none found).

    Example:
        >>> blend = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
        >>> mask = torch.zeros(1, 1, 4, 4); mask[..., :2, :] = 1
        >>> BlendIoU()(blend, mask)["blend_iou"].tolist()  # the blend's 2x2 block covers half the mask
        [0.5]
    """

    info = MetricInfo(
        name="blend_iou",
        higher_is_better=True,
        value_range=(0.0, 1.0),
        resolution=None,
        input_range=(0.0, 1.0),
        weights=(),
        protocol="Intersection over union of the method's per-pixel blend map at the input camera (the weight of "
                 "its OOD field, In-N-Out's b) thresholded at >= 0.5 with the occluder mask thresholded at >= 0.5, "
                 "per image. The blend map (rendered at the neural rendering resolution) is thresholded, then "
                 "resized to the mask's resolution with nearest-exact sampling; the mask is never resampled. NaN "
                 "when both are empty. Methods without an OOD part have no blend map: no value, with a note.",
        comparable_to=_NO_PAPER,
        kind="ood",
    )

    def __init__(self) -> None:
        super().__init__()

    @torch.no_grad()
    def forward(self, blend_map: Tensor, ood_mask: Tensor) -> dict[str, Tensor]:
        blend_map = _check_blend_map(blend_map)
        mask = check_ood_mask(ood_mask)
        check_batch(mask, blend_map.shape[0], "ood_mask", "blend_map")
        check_same_device(blend_map, mask, ("blend_map", "ood_mask"))
        found = F.interpolate(_above(blend_map).float(), size=mask.shape[-2:], mode="nearest-exact") > 0.5
        truth = _above(mask)
        intersection = (found & truth).flatten(1).sum(1).double()
        union = (found | truth).flatten(1).sum(1).double()
        iou = torch.where(union > 0, intersection / union.clamp_min(1), torch.full_like(union, float("nan")))
        return {"blend_iou": iou.float()}


def _clean_psnr_builder(allow_random: bool = False, seed: int = 0, **options: Any) -> CleanPSNR:
    del allow_random, seed  # no weights
    return CleanPSNR(**options)


def _blend_iou_builder(allow_random: bool = False, seed: int = 0, **options: Any) -> BlendIoU:
    del allow_random, seed
    return BlendIoU(**options)


register_metric(CleanPSNR.info, _clean_psnr_builder)
register_metric(BlendIoU.info, _blend_iou_builder)
