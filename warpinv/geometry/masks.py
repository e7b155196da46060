"""HFGI3D's pseudo-view masks and blending, with the released code's image-format round trips.

For each pseudo view the released ``generate_multi_views.py`` renders two splats of the input's
points: the visibility pass (visible points white, the others black) and the coverage ("contour")
pass (every point white). Then, on the 8-bit PNGs it wrote:

1. :func:`erode` the visibility PNG 3x3 and the coverage PNG (as ``/255`` floats) 51x51, OpenCV's
   default border (the image edge never erodes);
2. multiply them (float64, 0..255) and :func:`gaussian_blur` 21x21 with OpenCV's size-derived sigma
   (``0.3 ((21 - 1) / 2 - 1) + 0.8 = 3.5``) and its reflect-101 border;
3. write the blurred mask with imageio 2.9, whose :func:`imageio_to_uint8` stretches a float image
   outside ``[0, 1]`` to its own min..max: the saved mask is normalised by its own maximum, a quirk
   kept on purpose;
4. :func:`blend`: ``m * warp + (1 - m) * render`` on the ``/255`` PNGs, in that operation order.

Every PNG is :func:`to_uint8`: ``x * 255`` truncated, not rounded (official).

:func:`erode` and :func:`gaussian_blur` take batches ``(..., H, W)``; WarpGAN's hole masks
(:func:`warpinv.geometry.forward_warping.hole_mask`) reuse them in float32 with torchvision's random sigma.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

#: The kernel sizes of the released mask processing.
VISIBILITY_ERODE = 3
COVERAGE_ERODE = 51
BLUR_SIZE = 21
IMAGEIO_ROUNDING = 0.499999999


def to_uint8(image: Tensor) -> Tensor:
    """``np.array(x * 255, dtype=np.uint8)`` of the released code: scale, then truncate.

    Example:
        >>> to_uint8(torch.tensor([0.5, 0.999, 1.0])).tolist()
        [127, 254, 255]
    """
    return (image * 255).clamp(0, 255).to(torch.uint8)


def erode(image: Tensor, size: int) -> Tensor:
    """OpenCV ``erode`` with a ``size x size`` box of ones and the default border (pixels outside the
    image count as +inf, so the edge never erodes), of ``(..., H, W)`` images (every leading index is
    one image), in their dtype's values.

    The same operation is kornia's ``erosion`` with a flat kernel and its ``geodesic`` border (outside
    pixels ignored), which WarpGAN uses. A minimum is exact, so floating images are eroded in their
    own dtype; others (uint8, bool) go through float64.

    Example:
        >>> erode(torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0]]), 3).tolist()
        [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
        >>> erode(torch.ones(2, 1, 4, 4), 3).shape
        torch.Size([2, 1, 4, 4])
    """
    x = image if image.is_floating_point() else image.double()
    flat = -x.reshape(-1, 1, *x.shape[-2:])
    # A box minimum is a row minimum of column minima (exact); max_pool pads with -inf.
    flat = F.max_pool2d(flat, (1, size), stride=1, padding=(0, size // 2))
    out = -F.max_pool2d(flat, (size, 1), stride=1, padding=(size // 2, 0))
    return out.reshape(*x.shape[:-2], *out.shape[-2:]).to(image.dtype)


def gaussian_kernel(size: int, sigma: float | None = None) -> Tensor:
    """OpenCV's ``getGaussianKernel(size, sigma)`` in float64; ``sigma=None`` is OpenCV's sigma 0:
    ``0.3 ((size - 1) / 2 - 1) + 0.8`` (for sizes above 7, where OpenCV uses no fixed table).

    Example:
        >>> k = gaussian_kernel(21)
        >>> round(float(k.sum()), 12), k.argmax().item()
        (1.0, 10)
    """
    if sigma is None:
        if size <= 7:
            raise ValueError("sizes up to 7 use OpenCV's fixed kernels, which are not reproduced here: pass sigma")
        sigma = opencv_sigma(size)
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    if size == 1:
        return torch.ones(1, dtype=torch.float64)
    k = torch.exp(-(x * x) / (2 * sigma * sigma))
    return k / k.sum()


def gaussian_blur(image: Tensor, size: int = BLUR_SIZE, sigma: float | None = None, *,
                  dtype: torch.dtype | None = torch.float64) -> Tensor:
    """OpenCV ``GaussianBlur(image, (size, size), sigma)`` of ``(..., H, W)`` images (every leading
    index is one image) with its default ``BORDER_REFLECT_101`` (PyTorch's ``reflect`` padding).

    With an explicit ``sigma`` this is also torchvision's ``GaussianBlur`` (its kernel
    ``exp(-0.5 (t / sigma)^2)`` normalised, ``t = -(size // 2) .. size // 2``, reflect padding),
    computed separably. ``dtype`` is the computation and output dtype: float64 by default (exact
    OpenCV numbers, HFGI3D), ``None`` for the image's own floating dtype (torchvision computes in
    float32; WarpGAN). Images need ``H, W > size // 2``.

    Example:
        >>> out = gaussian_blur(torch.ones(2, 1, 16, 16), 21, 1.5, dtype=None)
        >>> out.shape, out.dtype, bool(torch.allclose(out, torch.ones(()), atol=1e-6))
        (torch.Size([2, 1, 16, 16]), torch.float32, True)
    """
    if dtype is None:
        dtype = image.dtype if image.is_floating_point() else torch.float64
    k = gaussian_kernel(size, sigma).to(image.device, dtype)
    pad = size // 2
    x = image.to(dtype).reshape(-1, 1, *image.shape[-2:])
    x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, size))
    x = F.conv2d(x, k.view(1, 1, size, 1))
    return x.reshape(image.shape)


def imageio_to_uint8(image: Tensor) -> Tensor:
    """imageio 2.9's ``image_as_uint`` for a float image: ``[0, 1]`` images are scaled by 255, any
    other range is stretched to its own min..max (the released mask quirk), constant images cast;
    ``+0.499999999`` then truncation."""
    x = image.double()
    lo, hi = float(x.min()), float(x.max())
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("the image holds NaN or inf")
    if lo == hi:
        return x.to(torch.uint8)
    if lo >= 0 and hi <= 1:
        return (x * 255 + IMAGEIO_ROUNDING).to(torch.uint8)
    return ((x - lo) / (hi - lo) * 255 + IMAGEIO_ROUNDING).to(torch.uint8)


@dataclass(frozen=True)
class MaskKernels:
    """Kernel sizes of the mask processing (the released ones by default, for 512 px views).

    Example:
        >>> MaskKernels().scaled(128)
        MaskKernels(visibility_erode=1, coverage_erode=13, blur_size=5, blur_sigma=0.875)
        >>> MaskKernels().scaled(512) == MaskKernels()
        True
    """

    visibility_erode: int = VISIBILITY_ERODE
    coverage_erode: int = COVERAGE_ERODE
    blur_size: int = BLUR_SIZE
    blur_sigma: float | None = None  # None: OpenCV's sigma for blur_size

    def scaled(self, size: int, reference: int = 512) -> MaskKernels:
        """The kernels for ``size`` px views, keeping their extent relative to ``reference`` px (odd
        sizes, at least 1; the blur keeps the sigma the reference size implies, scaled)."""
        if size == reference:
            return self
        s = size / reference
        sigma = self.blur_sigma if self.blur_sigma is not None else opencv_sigma(self.blur_size)
        return MaskKernels(_odd(self.visibility_erode * s), _odd(self.coverage_erode * s), _odd(self.blur_size * s),
                           sigma * s)


def _odd(size: float) -> int:
    return max(1, 2 * round((size - 1) / 2) + 1)


def opencv_sigma(size: int) -> float:
    """OpenCV's sigma for ``sigma = 0``: ``0.3 ((size - 1) / 2 - 1) + 0.8``.

    Example:
        >>> round(opencv_sigma(21), 12)
        3.5
    """
    return 0.3 * ((size - 1) * 0.5 - 1) + 0.8


def pseudo_view_mask(visibility_png: Tensor, coverage_png: Tensor,
                     kernels: MaskKernels = MaskKernels()) -> tuple[Tensor, Tensor]:
    """Steps 1-3 of the module docstring for one view: ``(H, W)`` uint8 visibility and coverage PNG
    channels -> the blurred float64 mask (0..255) and the uint8 PNG the released code saves."""
    visible = erode(visibility_png, kernels.visibility_erode).double()
    covered = erode(coverage_png.double() / 255.0, kernels.coverage_erode)
    blurred = gaussian_blur(visible * covered, kernels.blur_size, kernels.blur_sigma)
    return blurred, imageio_to_uint8(blurred)


def soft_mask(visibility: Tensor, coverage: Tensor, kernels: MaskKernels = MaskKernels()) -> Tensor:
    """The same processing without the file formats (the ``clean`` mode): ``(H, W)`` float
    visibility and coverage in ``[0, 1]`` -> eroded, multiplied, blurred mask in ``[0, 1]`` (float64)."""
    visible = erode(visibility.double(), kernels.visibility_erode)
    covered = erode(coverage.double(), kernels.coverage_erode)
    return gaussian_blur(visible * covered, kernels.blur_size, kernels.blur_sigma).clamp(0, 1)


def blend(mask_png: Tensor, warp_png: Tensor, render_png: Tensor) -> Tensor:
    """The released final blend on uint8 PNGs (any shape): ``m * warp + (1 - m) * render`` with each
    ``/255``, in that operation order, as float64 in ``[0, 1]`` (:func:`to_uint8` gives the saved PNG)."""
    m = mask_png.double() / 255.0
    return m * (warp_png.double() / 255.0) + (1 - m) * (render_png.double() / 255.0)
