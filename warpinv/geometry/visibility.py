"""Which surface points the input view sees, and their colours (HFGI3D's pseudo-view generation).

The released code (``multi_views/generate_multi_views.py``) and the precision it computes in, kept:

- projection: camera coordinates ``R x + t`` in float32 (``world2cam = inv(cam2world)`` in float32),
  then ``K`` in float64, computed with numpy as the released code does; a point's pixel is
  ``round(u), round(v)`` (half to even) and it is kept when ``0 <= u, v <= W-1, H-1``;
- z-buffer in point order: the first point claims a pixel and a later one replaces it only when
  strictly nearer, so among the nearest points of a pixel the earliest wins;
- a kept point is visible when ``z - zbuffer(pixel) <= 1/H`` (a threshold in depth units, not pixels);
- colours: bilinear ``grid_sample`` of the image at ``xy / size * 2 - 1`` (float32, zeros padding,
  ``align_corners=False``), which samples at ``(u - 0.5, v - 0.5)``: half a pixel off the z-buffer's
  rounding, an official quirk.

Everything is vectorised (a stable sort instead of the official per-point loop), so it scales
linearly (up to the sort) with the number of points.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def project_points(points: Tensor, cam2world: Tensor, K: Tensor) -> tuple[Tensor, Tensor]:
    """``points (N, 3)`` in world coordinates -> pixel coordinates ``xy (N, 2)`` and camera depth
    ``z (N,)`` (float64, on the CPU).

    Computed with numpy exactly as the released code does (a float32 inverse and product, then the
    float64 ``K``): torch's float32 inverse and matmul round differently, and far points then land
    up to 0.05 px elsewhere, which moves their rounded pixels.
    """
    rt = np.linalg.inv(cam2world.detach().cpu().numpy().astype(np.float32))[:3, :4]
    cam = np.dot(points.detach().cpu().numpy().astype(np.float32), rt[:, :3].T) + rt[:, 3:].T
    uvz = np.dot(cam, K.detach().cpu().numpy().astype(np.float64).T)
    return torch.from_numpy(uvz[:, :2] / uvz[:, 2:]), torch.from_numpy(np.ascontiguousarray(uvz[:, 2]))


@dataclass
class Visibility:
    """What the input view sees of a point set.

    Attributes:
        in_bounds: ``(N,)`` bool, the point's rounded pixel lies inside the image.
        pixels: ``(M, 2)`` int64 ``(x, y)`` rounded pixels of the kept (in-bounds) points.
        z: ``(M,)`` float64 camera depth of the kept points.
        winner: ``(M,)`` bool, the kept point holds its pixel's z-buffer entry.
        visible: ``(M,)`` bool, within ``1/H`` of its pixel's z-buffer depth.
    """

    in_bounds: Tensor
    pixels: Tensor
    z: Tensor
    winner: Tensor
    visible: Tensor


def zbuffer_visibility(xy: Tensor, z: Tensor, height: int, width: int, tolerance: float | None = None) -> Visibility:
    """The official point-order z-buffer and the ``1/H`` visibility test (see the module docstring).

    ``xy (N, 2)`` are pixel coordinates with pixel ``(x, y)`` centred on integers (round to index);
    ``tolerance`` replaces the official ``1/H`` when given."""
    rounded = torch.round(xy).long()
    in_bounds = ((rounded[:, 0] >= 0) & (rounded[:, 0] <= width - 1)
                 & (rounded[:, 1] >= 0) & (rounded[:, 1] <= height - 1))
    pixels, depth = rounded[in_bounds], z[in_bounds]
    pixel_id = pixels[:, 1] * width + pixels[:, 0]
    by_depth = torch.argsort(depth, stable=True)  # ties keep point order: the earliest nearest wins
    order = by_depth[torch.argsort(pixel_id[by_depth], stable=True)]
    first = torch.ones_like(order, dtype=torch.bool)
    first[1:] = pixel_id[order[1:]] != pixel_id[order[:-1]]
    winner = torch.zeros_like(pixel_id, dtype=torch.bool)
    winner[order[first]] = True
    zbuffer = torch.zeros(height * width, dtype=depth.dtype, device=depth.device)
    zbuffer[pixel_id[winner]] = depth[winner]
    visible = depth - zbuffer[pixel_id] <= (1.0 / height if tolerance is None else tolerance)
    return Visibility(in_bounds, pixels, depth, winner, visible)


def sample_colors(image: Tensor, xy: Tensor) -> Tensor:
    """Colours of ``image (3, H, W)`` (float, ``[0, 1]``) at pixel coordinates ``xy (N, 2)``: the
    official bilinear ``grid_sample`` (float32, zeros padding, ``align_corners=False``) -> ``(N, 3)``."""
    height, width = image.shape[-2:]
    size = torch.tensor([width, height], dtype=torch.float32)
    grid = (xy.float() / size * 2.0 - 1.0)[None, None]
    return F.grid_sample(image.float()[None], grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)[0, :, 0].T
