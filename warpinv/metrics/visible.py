"""``psnr_visible``: PSNR of a ground-truth novel view over its covisible pixels, the region the input view sees.

A dataset with ground truth for novel views can say, per view, which pixels show a surface point that
the input view also sees, by the ground-truth geometry (the synthetic set's covisibility masks,
``novel_visible (V, 1, R, R)``, :mod:`warpinv.data.synthetic`). Inside that region a method can copy
what the input image shows (WarpGAN warps it there); outside it every method has to invent the
content. ``psnr_visible`` is :class:`~warpinv.metrics.image.PSNR` with that mask: the same [0, 1]
scale, float64 accumulation, 256x256 default resolution and mask handling (the mask is resized with
the images by the same antialiased bilinear filter and its values weight the squared error, so pixels
on the region's edge count by the fraction of them inside it; at the input size, ``resolution=None``,
it is the PSNR of exactly the masked pixels). The mask is a property of the data, the same for every
method's row, so the column compares methods on the same pixels.

The mask is required: without one the metric raises ``ValueError`` (after checking the images as
every pair metric does), since the whole-image value is ``psnr``. A view whose mask is empty (the input
view sees none of it) scores NaN instead of failing the other views of the batch. The benchmark gives
it the ground-truth views' masks and leaves the input row, and sets without masks, at ``None`` with a
note (:mod:`warpinv.bench.evaluate`).

Example:
    >>> truth = torch.zeros(2, 3, 8, 8)
    >>> render = truth.clone(); render[..., 4:] += 0.2   # the right half is off by 0.1 in [0, 1] units
    >>> visible = torch.zeros(2, 1, 8, 8); visible[..., :6] = 1; visible[1] = 0
    >>> [round(v, 2) for v in VisiblePSNR(resolution=None)(render, truth, visible).tolist()]  # 2 of 6 columns off
    [24.77, nan]
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from warpinv.checks import check_tensor
from warpinv.metrics.base import DEFAULT_RESOLUTION, MetricInfo, check_pair, register_metric
from warpinv.metrics.image import _RESIZE, PSNR

__all__ = ["VISIBLE_MASK_KEY", "VisiblePSNR"]

#: The item extra (``(1, V, 1, H, W)``, one mask per ground-truth novel view) the benchmark scores it with.
VISIBLE_MASK_KEY = "novel_visible"


class VisiblePSNR(PSNR):
    """Per-image PSNR in dB on [0, 1] images over the pixels of a required covisibility mask.

    Call: ``metric(pred, target, mask) -> (N,)`` float32, as every pair metric; ``mask (N, 1, H, W)``
    (bool or float in [0, 1], 1 = covisible pixel) is required. NaN for an image whose mask is empty.
    """

    info = MetricInfo(
        name="psnr_visible",
        higher_is_better=True,
        value_range=(0.0, float("inf")),
        resolution=DEFAULT_RESOLUTION,
        input_range=(-1.0, 1.0),
        weights=(),
        unit="dB",
        protocol="PSNR over the covisible pixels of a GT novel view: the region the input view sees, by the "
                 "ground-truth geometry (the dataset's covisibility mask of the view, novel_visible). "
                 "10 log10(1 / MSE) with the MSE of [0, 1] images (x + 1) / 2 over the channels and the mask's "
                 "pixels, per image (the psnr conventions; the mask, resized with the images, weights the squared "
                 "error); prediction clamped; NaN when the mask is empty. Only ground-truth novel views have a "
                 "mask: the input row and sets without masks have no value. " + _RESIZE,
        comparable_to="No seed paper reports it. WarpGAN's argument (warping the input image to the novel view "
                      "recovers what the input sees; the rest is inpainted) scored on the synthetic set's exact "
                      "geometry: compare only with numbers on the same set.",
    )
    #: Where the benchmark finds the mask (an item extra, one mask per ground-truth novel view).
    mask_key: ClassVar[str] = VISIBLE_MASK_KEY

    def __init__(self, resolution: int | None = DEFAULT_RESOLUTION) -> None:
        super().__init__(resolution)

    @torch.no_grad()
    def forward(self, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        if mask is None:
            check_pair(pred, target)  # image problems first, as every pair metric reports them
            raise ValueError("psnr_visible needs the view's covisibility mask (mask (N, 1, H, W), 1 = pixel the input "
                             "view sees); without one use psnr")
        check_tensor(mask, "mask")
        empty = ~(mask.reshape(mask.shape[0] if mask.ndim == 4 else 1, -1) != 0).any(dim=1)
        if bool(empty.any()):
            # An empty mask is refused by check_pair; score the others and leave NaN for it.
            mask = mask.clone()
            mask[empty] = 1
        values = super().forward(pred, target, mask)
        return torch.where(empty.to(values.device), torch.full_like(values, float("nan")), values)


def _build(allow_random: bool = False, seed: int = 0, **options: Any) -> VisiblePSNR:
    del allow_random, seed  # no weights
    return VisiblePSNR(**options)


register_metric(VisiblePSNR.info, _build)
