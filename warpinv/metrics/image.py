"""Pixel metrics: MSE, PSNR, SSIM (two border conventions) and MS-SSIM, per image.

All take images in [-1, 1] (:class:`~warpinv.metrics.base.PairMetric`) and, except MSE, score them on
[0, 1] (``(x + 1) / 2``), as the papers do: SSIM on [-1, 1] with data range 2 is *not* the same
number (metrics.md §3). Computed at 256x256 by default (antialiased bilinear resize, metrics.md §6);
``resolution=None`` scores at the input size. MSE and PSNR accumulate in float64; SSIM and MS-SSIM
run in the input dtype (float32 differs from float64 by ~3e-7 and is 6x faster on CPU).

- ``mse``: mean squared error on **[-1, 1]** (pSp ``calc_losses_on_images.py --mode l2``,
  TriPlaneNet ``Metrics.mse``); the [0, 1] value is a quarter of it.
- ``psnr``: ``10 log10(1 / MSE)`` on [0, 1] **per image**; average the per-image values (never
  pool the squared error over a dataset: pooled PSNR <= mean PSNR). ``inf`` for a perfect match.
- ``ssim``: torchmetrics 1.9 conventions (Gaussian 11x11, sigma 1.5, K1 0.01, K2 0.03, data range
  1, reflect-padded borders, mean over the full map).
- ``ssim_valid``: the same window over the **valid** region only (no padding), the convention of
  ``tf.image.ssim`` (IBRNet eval), ``pytorch_msssim`` and skimage with Wang et al. settings; about
  +0.007 higher than ``ssim`` on typical pairs (metrics.md §3).
- ``ms_ssim``: torchmetrics MS-SSIM, 5 scales, weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333),
  ``normalize="relu"`` (as ``pytorch_msssim``; agrees with it to ~4e-6). Needs a side > 160 px.

Masks: MSE and PSNR average the squared error over valid pixels; SSIM averages its map over valid
pixels; MS-SSIM (a multi-scale product with no per-pixel map) is computed on the prediction
composited onto the target outside the mask.

Example:
    >>> m = SSIM(resolution=None)
    >>> x = torch.rand(1, 3, 32, 32) * 2 - 1
    >>> round(m(x, x).item(), 6)
    1.0
"""
from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

from warpinv.checks import check_choice
from warpinv.metrics.base import DEFAULT_RESOLUTION, MetricInfo, PairMetric, composite, masked_mean, register_metric

__all__ = ["MSE", "PSNR", "SSIM", "MSSSIM", "SSIM_WINDOW", "SSIM_SIGMA"]

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
_CROP = (SSIM_WINDOW - 1) // 2

_RESIZE = ("Images are resized to 256x256 with antialiased bilinear interpolation unless the metric is built "
           "with another resolution (resolution=None: input size).")


def _unit(x: Tensor) -> Tensor:
    """[-1, 1] -> [0, 1]."""
    return (x + 1) / 2


class MSE(PairMetric):
    """Per-image mean squared error on [-1, 1] (pSp convention); masked mean over valid pixels."""

    info = MetricInfo(
        name="mse",
        higher_is_better=False,
        value_range=(0.0, 4.0),
        resolution=DEFAULT_RESOLUTION,
        input_range=(-1.0, 1.0),
        weights=(),
        protocol="Mean squared error over pixels and channels of images in [-1, 1], per image (mask: valid pixels "
                 "only). " + _RESIZE,
        comparable_to="pSp/e4e calc_losses_on_images.py --mode l2 and TriPlaneNet Metrics.mse (both [-1, 1] at 256; "
                      "code-verified). Divide by 4 for an MSE on [0, 1] (E3DGE 'L2' and In-N-Out Tab. 3 'L2' "
                      "scale unconfirmed).",
    )

    def __init__(self, resolution: int | None = DEFAULT_RESOLUTION) -> None:
        super().__init__(resolution)

    def score(self, pred: Tensor, target: Tensor, mask: Tensor | None) -> Tensor:
        return masked_mean((pred.double() - target.double()) ** 2, mask)


class PSNR(PairMetric):
    """Per-image PSNR in dB on [0, 1] images (data range 1); ``inf`` for identical images."""

    info = MetricInfo(
        name="psnr",
        higher_is_better=True,
        value_range=(0.0, float("inf")),
        resolution=DEFAULT_RESOLUTION,
        input_range=(-1.0, 1.0),
        weights=(),
        unit="dB",
        protocol="10 log10(1 / MSE) with the MSE of [0, 1] images (x + 1) / 2 over pixels and channels, per image "
                 "(mask: valid pixels only); prediction clamped. Average per-image values; never pool the error "
                 "over a dataset. " + _RESIZE,
        comparable_to="HFGI3D Tab. 1 and In-N-Out Tab. 1 PSNR (per-image convention as in IBRNet eval / E3DGE "
                      "kornia; their scoring resolution is unconfirmed), E3DGE PSNR (256, code-verified).",
    )

    def __init__(self, resolution: int | None = DEFAULT_RESOLUTION) -> None:
        super().__init__(resolution)

    def score(self, pred: Tensor, target: Tensor, mask: Tensor | None) -> Tensor:
        mse = masked_mean((_unit(pred.double()) - _unit(target.double())) ** 2, mask)
        return -10 * torch.log10(mse)


class SSIM(PairMetric):
    """Per-image SSIM on [0, 1] (Gaussian 11x11, sigma 1.5, data range 1).

    Args:
        variant: ``"same"`` (torchmetrics: reflect-padded borders, mean of the full map; registered as
            ``ssim``) or ``"valid"`` (no padding, mean of the valid map; TF / pytorch_msssim; registered
            as ``ssim_valid``).
        resolution: see :class:`~warpinv.metrics.base.PairMetric`.
    """

    info = MetricInfo(
        name="ssim",
        higher_is_better=True,
        value_range=(-1.0, 1.0),
        resolution=DEFAULT_RESOLUTION,
        input_range=(-1.0, 1.0),
        weights=(),
        protocol="torchmetrics 1.9 structural_similarity_index_measure on [0, 1] images: Gaussian window 11, "
                 "sigma 1.5, K1 0.01, K2 0.03, data_range 1, reflect padding by 5, mean of the full-size SSIM map "
                 "over channels and pixels (mask: valid pixels of the map), per image. " + _RESIZE,
        comparable_to="Papers scored with torchmetrics or kornia padding='same'. HFGI3D Tab. 1 / In-N-Out Tab. 1 SSIM "
                      "(library unconfirmed); IBRNet-eval and pytorch_msssim numbers are about +0.007 higher: use "
                      "ssim_valid for those. Not comparable to E3DGE's kornia-window-5 '1 - loss' SSIM.",
    )
    _VALID_INFO = MetricInfo(
        name="ssim_valid",
        higher_is_better=True,
        value_range=(-1.0, 1.0),
        resolution=DEFAULT_RESOLUTION,
        input_range=(-1.0, 1.0),
        weights=(),
        protocol="SSIM on [0, 1] images with a Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03, data range 1, "
                 "averaged over the valid region only (no padding; kornia.metrics.ssim padding='valid'), per image "
                 "(mask: valid pixels of the cropped map). " + _RESIZE,
        comparable_to="tf.image.ssim (IBRNet eval.py, HFGI3D Tab. 3 IBRNet SSIM if computed with IBRNet's code), "
                      "pytorch_msssim.ssim(data_range=1), skimage with gaussian_weights=True, sigma=1.5, "
                      "use_sample_covariance=False.",
    )

    def __init__(self, variant: Literal["same", "valid"] = "same", resolution: int | None = DEFAULT_RESOLUTION) -> None:
        check_choice(variant, {"same": "torchmetrics", "valid": "TF / pytorch_msssim"}, "SSIM variant")
        super().__init__(resolution, self._VALID_INFO if variant == "valid" else type(self).info)
        self.variant = variant

    def score(self, pred: Tensor, target: Tensor, mask: Tensor | None) -> Tensor:
        size = min(pred.shape[-2:])
        if size < SSIM_WINDOW + (1 if self.variant == "valid" else 0):
            raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW + 1} px, got {tuple(pred.shape[-2:])}")
        pred, target = _unit(pred), _unit(target)
        if self.variant == "same":
            from torchmetrics.functional.image.ssim import structural_similarity_index_measure

            _, ssim_map = structural_similarity_index_measure(
                pred, target, gaussian_kernel=True, sigma=SSIM_SIGMA, kernel_size=SSIM_WINDOW, data_range=1.0,
                k1=0.01, k2=0.03, reduction="none", return_full_image=True)
        else:
            import kornia

            ssim_map = kornia.metrics.ssim(pred, target, SSIM_WINDOW, max_val=1.0, padding="valid")
            mask = None if mask is None else mask[..., _CROP:-_CROP, _CROP:-_CROP]
            if mask is not None and bool((mask.flatten(1).sum(1) == 0).any()):
                raise ValueError("the mask has no valid pixel inside the SSIM valid region (5 px from the border)")
        return masked_mean(ssim_map, mask)


class MSSSIM(PairMetric):
    """Per-image MS-SSIM on [0, 1] (torchmetrics, 5 scales, ``normalize="relu"``)."""

    info = MetricInfo(
        name="ms_ssim",
        higher_is_better=True,
        value_range=(0.0, 1.0),
        resolution=DEFAULT_RESOLUTION,
        input_range=(-1.0, 1.0),
        weights=(),
        protocol="torchmetrics 1.9 multiscale_structural_similarity_index_measure on [0, 1] images: Gaussian window "
                 "11, sigma 1.5, data_range 1, 5 scales with betas (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), "
                 "normalize='relu', per image; needs a side > 160 px. Mask: prediction composited onto the target "
                 "outside the mask. " + _RESIZE,
        comparable_to="TriPlaneNet MS-SSIM (pytorch_msssim.MS_SSIM(data_range=1) at 256, code-verified; agrees to "
                      "~4e-6); PTI paper MS-SSIM (unconfirmed).",
    )

    def __init__(self, resolution: int | None = DEFAULT_RESOLUTION) -> None:
        super().__init__(resolution)

    def score(self, pred: Tensor, target: Tensor, mask: Tensor | None) -> Tensor:
        from torchmetrics.functional.image.ssim import multiscale_structural_similarity_index_measure

        if min(pred.shape[-2:]) <= 160:
            raise ValueError(f"MS-SSIM (5 scales, window 11) needs images larger than 160 px, got "
                             f"{tuple(pred.shape[-2:])}; score at resolution 256")
        pred, target = _unit(composite(pred, target, mask)), _unit(target)
        return multiscale_structural_similarity_index_measure(
            pred, target, gaussian_kernel=True, sigma=SSIM_SIGMA, kernel_size=SSIM_WINDOW, data_range=1.0,
            reduction="none", normalize="relu")


def _weight_free(cls: type[PairMetric], **fixed: Any):
    """Builder of a weight-free metric: ``allow_random`` and ``seed`` do not apply."""

    def build(allow_random: bool = False, seed: int = 0, **options: Any) -> PairMetric:
        del allow_random, seed
        return cls(**fixed, **options)

    return build


register_metric(MSE.info, _weight_free(MSE))
register_metric(PSNR.info, _weight_free(PSNR))
register_metric(SSIM.info, _weight_free(SSIM, variant="same"))
register_metric(SSIM._VALID_INFO, _weight_free(SSIM, variant="valid"))
register_metric(MSSSIM.info, _weight_free(MSSSIM))
