"""In-N-Out's OOD removal: render without the out-of-distribution object (``triplanes_split.py:216-228``).

The released ``ComposeTriplane.forward(..., remove_ood=True)``:

1. the OOD mask (1 = OOD pixel) is resized to the neural rendering resolution with nearest sampling;
2. dilated by a 5x5 max filter (``kornia.morphology.dilation`` with ``ones(5, 5)``; its default "geodesic"
   border: pixels outside the image never win) and clamped to ``[0, 1]``;
3. rays whose channel-0 value is **exactly** 1 are selected (antialiased mask values alone never are);
4. every blend is multiplied by 1.2 (not clamped: ``b`` reaches 1.2 and the InD weight ``1 - b`` turns
   negative), then set to 0 on the selected rays.

Masks here follow this project's convention, 1 = OOD pixel. The released dataset masks are 1 = keep
(in-distribution), and the released code inverts them first: pass ``1 - mask`` for such masks.
The paper describes the removal as ``b = 0`` (everywhere): :func:`remove_ood` with ``rays=None``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from warpinv.checks import check_min, check_shape, check_tensor

__all__ = ["dilate", "lowres_ood_mask", "ood_rays", "remove_ood"]


def _check_mask(mask: Tensor, name: str) -> None:
    check_tensor(mask, name)
    check_shape(mask, "N C H W", name, note=" mask (1 = OOD pixel)")
    if mask.shape[1] not in (1, 3):
        raise ValueError(f"{name} must have 1 or 3 channels, got shape {tuple(mask.shape)}")
    if not mask.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor in [0, 1], got {mask.dtype}")


def lowres_ood_mask(ood_mask: Tensor, resolution: int) -> Tensor:
    """Nearest resize of an OOD mask to the rendering resolution: ``(N, C, H, W)`` -> ``(N, C, R, R)``.

    Example:
        >>> lowres_ood_mask(torch.eye(4).reshape(1, 1, 4, 4), 2).squeeze()
        tensor([[1., 0.],
                [0., 1.]])
    """
    _check_mask(ood_mask, "ood_mask")
    check_min(resolution, 1, "resolution")
    return F.interpolate(ood_mask, size=resolution, mode="nearest")


def dilate(mask: Tensor, size: int = 5) -> Tensor:
    """Grey dilation by a flat ``size x size`` square (a max filter); outside pixels never win.

    Equals ``kornia.morphology.dilation(mask, torch.ones(size, size))`` with its default geodesic border,
    including kornia's placement of even squares (``size // 2`` before, the rest after the pixel).

    Args:
        mask: ``(N, C, H, W)``.

    Returns:
        ``(N, C, H, W)``.

    Example:
        >>> mask = torch.zeros(1, 1, 5, 5)
        >>> mask[0, 0, 0, 0] = 0.5
        >>> dilate(mask, 3)[0, 0, :3, :3]
        tensor([[0.5000, 0.5000, 0.0000],
                [0.5000, 0.5000, 0.0000],
                [0.0000, 0.0000, 0.0000]])
    """
    check_tensor(mask, "mask")
    check_shape(mask, "N C H W", "mask")
    check_min(size, 1, "size")
    before, after = size // 2, size - size // 2 - 1
    padded = F.pad(mask, (before, after, before, after), value=float("-inf"))
    return F.max_pool2d(padded, kernel_size=size, stride=1)


def ood_rays(ood_mask: Tensor, resolution: int, dilation_size: int = 5) -> Tensor:
    """The rays to clear: ``(N, R*R)`` bool, row-major over the ``R x R`` rendering grid.

    Args:
        ood_mask: ``(N, 1, H, W)`` or ``(N, 3, H, W)`` float, 1 = OOD pixel (only channel 0 decides).
        resolution: ``R``, the neural rendering resolution.
        dilation_size: side of the dilation square (released: 5).

    Example:
        >>> mask = torch.zeros(1, 1, 8, 8)
        >>> mask[..., 0, 0] = 1.0
        >>> ood_rays(mask, 4, dilation_size=3).reshape(4, 4).int()
        tensor([[1, 1, 0, 0],
                [1, 1, 0, 0],
                [0, 0, 0, 0],
                [0, 0, 0, 0]], dtype=torch.int32)
    """
    lowres = lowres_ood_mask(ood_mask, resolution)
    dilated = dilate(lowres[:, :1], dilation_size).clamp(0.0, 1.0)
    return dilated.flatten(1) == 1


def remove_ood(blend: Tensor, rays: Tensor | None, scale: float = 1.2, clamp: bool = False) -> Tensor:
    """Blends with the OOD object removed: ``b * scale`` everywhere, then 0 on ``rays`` (a new tensor).

    Args:
        blend: ``(N, M, S, 1)`` blend weights of the ``M`` rays.
        rays: ``(N, M)`` bool from :func:`ood_rays`, or ``None`` to clear every ray (the paper's ``b = 0``).
        scale: the released factor 1.2.
        clamp: clamp the scaled blends to ``[0, 1]`` (a correction: the released code lets ``b`` exceed 1,
            which gives the InD field a negative weight ``1 - b``).

    Returns:
        ``(N, M, S, 1)``; ``blend`` is not modified.

    Example:
        >>> blend = torch.full((1, 2, 1, 1), 0.9)
        >>> remove_ood(blend, torch.tensor([[True, False]])).flatten()
        tensor([0.0000, 1.0800])
        >>> remove_ood(blend, torch.tensor([[False, False]]), clamp=True).flatten()
        tensor([1., 1.])
    """
    check_tensor(blend, "blend")
    sizes = check_shape(blend, "N M S 1", "blend", note=" of blend weights")
    if rays is None:
        return torch.zeros_like(blend)
    check_tensor(rays, "rays")
    check_shape(rays, "N M", "rays", sizes={"N": sizes["N"], "M": sizes["M"]}, note=" bool ray selection")
    if rays.dtype != torch.bool:
        raise ValueError(f"rays must be a bool tensor, got {rays.dtype}")
    scaled = blend * scale
    if clamp:
        scaled = scaled.clamp(0.0, 1.0)
    return scaled.masked_fill(rays[:, :, None, None], 0.0)
