"""Pixel rays of EG3D's pinhole cameras (OpenCV axes, intrinsics normalised by image size).

This is the single ray generator of the project: the renderer, the project/unproject helpers and
the metrics all call it, so they share one convention.

Pixel ``(row i, col j)`` of an ``R x R`` image samples the normalised image point
``x = (j + 0.5) / R``, ``y = (i + 0.5) / R``; ray index ``i * R + j`` (row-major, row 0 on top).
"""
from __future__ import annotations

import torch
from torch import Tensor

from warpinv.checks import check_shape


def pixel_grid(resolution: int, device: torch.device | str | None = None) -> Tensor:
    """Normalised image coordinates of every pixel centre.

    Returns:
        ``(R*R, 2)`` float32 ``(x, y)`` in ``(0, 1)``, row-major.

    Example:
        >>> pixel_grid(2)
        tensor([[0.2500, 0.2500],
                [0.7500, 0.2500],
                [0.2500, 0.7500],
                [0.7500, 0.7500]])
    """
    # Same arithmetic as the official sampler: index * (1/R) + 0.5/R in float32.
    idx = torch.arange(resolution, dtype=torch.float32, device=device)
    rows, cols = torch.meshgrid(idx, idx, indexing="ij")
    uv = torch.stack([cols, rows]) * (1.0 / resolution) + (0.5 / resolution)
    return uv.reshape(2, -1).transpose(0, 1)


def lift_to_camera(xy: Tensor, intrinsics: Tensor) -> Tensor:
    """Lift normalised image points onto the camera's ``z = 1`` plane (skew supported).

    Args:
        xy: ``(N, M, 2)`` normalised image points.
        intrinsics: ``(N, 3, 3)`` normalised intrinsics.

    Returns:
        ``(N, M, 3)`` camera-frame points ``(x_lift, y_lift, 1)`` (OpenCV: +x right, +y down).
    """
    fx = intrinsics[:, 0, 0, None]
    fy = intrinsics[:, 1, 1, None]
    cx = intrinsics[:, 0, 2, None]
    cy = intrinsics[:, 1, 2, None]
    sk = intrinsics[:, 0, 1, None]
    x, y = xy[..., 0], xy[..., 1]
    x_lift = (x - cx + cy * sk / fy - sk * y / fy) / fx
    y_lift = (y - cy) / fy
    return torch.stack([x_lift, y_lift, torch.ones_like(x_lift)], dim=-1)


def generate_rays(cam2world: Tensor, intrinsics: Tensor, resolution: int) -> tuple[Tensor, Tensor]:
    """Origins and unit directions of every pixel ray, as EG3D's ``RaySampler`` computes them.

    Args:
        cam2world: ``(N, 4, 4)`` OpenCV camera-to-world matrices.
        intrinsics: ``(N, 3, 3)`` normalised intrinsics.
        resolution: image side ``R``.

    Returns:
        ``origins (N, R*R, 3)`` (the camera centre, repeated) and ``directions (N, R*R, 3)``
        (unit vectors).

    Example:
        >>> from warpinv.cameras.rays import generate_rays
        >>> c2w = torch.eye(4)[None]; K = torch.tensor([[[1.0, 0, 0.5], [0, 1.0, 0.5], [0, 0, 1]]])
        >>> o, d = generate_rays(c2w, K, 4)
        >>> o.shape, d.shape, bool(torch.allclose(d.norm(dim=-1), torch.ones(1, 16)))
        (torch.Size([1, 16, 3]), torch.Size([1, 16, 3]), True)
    """
    n = check_shape(cam2world, "N 4 4", "cam2world")["N"]
    check_shape(intrinsics, "N 3 3", "intrinsics", sizes={"N": n})
    xy = pixel_grid(resolution, cam2world.device).to(cam2world.dtype).unsqueeze(0).expand(n, -1, -1)
    cam_points = lift_to_camera(xy, intrinsics)
    homogeneous = torch.cat([cam_points, torch.ones_like(cam_points[..., :1])], dim=-1)
    world_points = torch.bmm(cam2world, homogeneous.transpose(1, 2)).transpose(1, 2)[..., :3]
    centres = cam2world[:, :3, 3]
    directions = torch.nn.functional.normalize(world_points - centres[:, None, :], dim=2)
    origins = centres.unsqueeze(1).expand(-1, directions.shape[1], -1).contiguous()
    return origins, directions
