"""Unprojection, projection and depth-based backward warping between EG3D cameras.

These are the project's single warping mechanism (metrics, pseudo views, WarpGAN). Conventions:

- EG3D depth is the distance along the **unit** pixel ray from the camera centre (not planar z), so
  a pixel with depth ``d`` is the point ``origin + d * direction`` of
  :func:`warpinv.cameras.rays.generate_rays`.
- Pixel coordinates are in pixel units with pixel ``(row i, col j)`` centred at
  ``(x, y) = (j + 0.5, i + 0.5)``, i.e. the normalised image point times the image size, as in
  :func:`warpinv.cameras.rays.pixel_grid`. ``grid_sample(align_corners=False)`` uses the same
  convention: grid coordinate ``2 x / W - 1``.

Everything is batched over N and differentiable with respect to images, depths and cameras.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from warpinv.cameras.labels import CameraError, check_label_shape, unpack_label
from warpinv.cameras.rays import generate_rays
from warpinv.checks import check_batch, check_floating, check_shape


def unproject_depth(depth: Tensor, c: Tensor) -> Tensor:
    """World points of every pixel of an EG3D depth map.

    Args:
        depth: ``(N, 1, R, R)`` distances along the unit pixel rays.
        c: ``(N, 25)`` labels of the camera that rendered ``depth``.

    Returns:
        ``(N, R*R, 3)`` world points, row-major pixel order (index ``i * R + j``).

    Example:
        >>> from warpinv.cameras.lookat import yaw_pitch_camera
        >>> p = unproject_depth(torch.full((1, 1, 4, 4), 2.5), yaw_pitch_camera(0.0, 0.0))
        >>> p.shape, bool(torch.allclose((p - torch.tensor([0.0, 0.0, 2.7])).norm(dim=-1), torch.tensor(2.5)))
        (torch.Size([1, 16, 3]), True)
    """
    _check_depth(depth, "depth")
    check_label_shape(c)
    _check_batch(c, depth.shape[0], "depth")
    if depth.shape[-1] != depth.shape[-2]:
        raise CameraError(f"depth must be square (EG3D renders R x R), got {tuple(depth.shape[-2:])}")
    dtype = torch.promote_types(depth.dtype, c.dtype)
    cam2world, intrinsics = unpack_label(c.to(dtype))
    origins, directions = generate_rays(cam2world, intrinsics, depth.shape[-1])
    return origins + directions * depth.to(dtype).reshape(depth.shape[0], -1, 1)


def project_points(
    points: Tensor,
    c: Tensor,
    resolution: int | tuple[int, int],
    *,
    eps: float = 1e-8,
) -> tuple[Tensor, Tensor, Tensor]:
    """Project world points into EG3D cameras (pinhole with skew, normalised intrinsics).

    Args:
        points: ``(N, M, 3)`` world points.
        c: ``(N, 25)`` labels.
        resolution: image size ``R`` or ``(H, W)``; the normalised image point is scaled by ``W``
            horizontally and ``H`` vertically.
        eps: points with camera-space ``z <= eps`` are not in front of the camera.

    Returns:
        ``xy (N, M, 2)`` pixel coordinates (pixel ``(i, j)`` centred at ``(j + 0.5, i + 0.5)``),
        ``z (N, M)`` camera-space depth (planar, along the optical axis) and ``in_front (N, M)``
        bool. Points behind the camera still get finite coordinates; mask them with ``in_front``.

    Example:
        >>> from warpinv.cameras.lookat import yaw_pitch_camera
        >>> xy, z, ok = project_points(torch.tensor([[[0.0, 0.0, 0.2]]]), yaw_pitch_camera(0.0, 0.0), 128)
        >>> [round(v, 3) for v in xy[0, 0].tolist()], round(float(z), 3), bool(ok)
        ([64.0, 64.0], 2.5, True)
    """
    check_shape(points, "N M 3", "points", error=CameraError)
    check_label_shape(c)
    _check_batch(c, points.shape[0], "points")
    height, width = _size(resolution)
    dtype = torch.promote_types(points.dtype, c.dtype)
    cam2world, k = unpack_label(c.to(dtype))
    # General inverse (not Rᵀ) so that any cam2world accepted by generate_rays round-trips.
    inverse = torch.linalg.inv_ex(cam2world[:, :3, :3])[0]
    cam = (points.to(dtype) - cam2world[:, None, :3, 3]) @ inverse.transpose(1, 2)
    z = cam[..., 2]
    in_front = z > eps
    z_safe = torch.where(z.abs() > eps, z, torch.full_like(z, eps))
    x_over_z, y_over_z = cam[..., 0] / z_safe, cam[..., 1] / z_safe
    x_norm = k[:, None, 0, 0] * x_over_z + k[:, None, 0, 1] * y_over_z + k[:, None, 0, 2]
    y_norm = k[:, None, 1, 1] * y_over_z + k[:, None, 1, 2]
    return torch.stack([x_norm * width, y_norm * height], dim=-1), z, in_front


def pixels_to_grid(xy: Tensor, resolution: int | tuple[int, int]) -> Tensor:
    """Pixel coordinates to ``grid_sample(align_corners=False)`` coordinates in ``[-1, 1]``.

    Args:
        xy: ``(..., 2)`` pixel coordinates (pixel centres at ``j + 0.5``).
        resolution: image size ``R`` or ``(H, W)`` of the sampled image.

    Example:
        >>> pixels_to_grid(torch.tensor([0.0, 2.0]), 4).tolist()
        [-1.0, 0.0]
    """
    height, width = _size(resolution)
    scale = torch.tensor([2.0 / width, 2.0 / height], dtype=xy.dtype, device=xy.device)
    return xy * scale - 1.0


def backward_warp(
    src_image: Tensor,
    tgt_depth: Tensor,
    c_tgt: Tensor,
    c_src: Tensor,
    *,
    src_depth: Tensor | None = None,
    occlusion_tol: float = 0.01,
    mode: str = "bilinear",
    padding_mode: str = "border",
) -> tuple[Tensor, Tensor]:
    """Resample a source view into a target view through the target's depth.

    Each target pixel is unprojected with ``tgt_depth`` and ``c_tgt``, projected into the source
    camera ``c_src`` and ``src_image`` is sampled there (``grid_sample``, ``align_corners=False``).
    A pixel is valid where its depth is positive, the point is in front of the source camera and it
    projects inside the source image rectangle ``[0, W] x [0, H]``. With ``src_depth`` the point
    must also be visible from the source: its distance to the source centre may exceed the source
    depth (nearest sample) by at most ``occlusion_tol`` world units. Invalid pixels are set to 0.

    Args:
        src_image: ``(N, C, H, W)`` source images (any size: intrinsics are normalised).
        tgt_depth: ``(N, 1, R, R)`` target depth (distance along unit rays).
        c_tgt: ``(N, 25)`` target cameras.
        c_src: ``(N, 25)`` source cameras.
        src_depth: optional ``(N, 1, H', W')`` source depth for the occlusion test.
        occlusion_tol: tolerance of the occlusion test in world units.
        mode: ``grid_sample`` interpolation of the image.
        padding_mode: ``grid_sample`` padding (``border`` avoids darkening the half-pixel rim).

    Returns:
        ``warped (N, C, R, R)`` and ``valid (N, 1, R, R)`` bool.

    Example:
        >>> from warpinv.cameras.lookat import yaw_pitch_camera
        >>> c = yaw_pitch_camera(0.1, 0.0); img = torch.rand(1, 3, 8, 8)
        >>> out, ok = backward_warp(img, torch.full((1, 1, 8, 8), 2.6), c, c)
        >>> bool(ok.all()), bool(torch.allclose(out, img, atol=1e-4))
        (True, True)
    """
    check_shape(src_image, "N C H W", "src_image", error=CameraError)
    n, _, height, width = src_image.shape
    points = unproject_depth(tgt_depth, c_tgt)
    _check_batch(c_src, n, "src_image")
    _check_batch(c_tgt, n, "src_image")
    xy, _, in_front = project_points(points, c_src, (height, width))
    size = tgt_depth.shape[-1]
    grid = pixels_to_grid(xy, (height, width)).reshape(n, size, size, 2).to(src_image.dtype)
    warped = F.grid_sample(src_image, grid, mode=mode, padding_mode=padding_mode, align_corners=False)
    limit = torch.tensor([width, height], dtype=xy.dtype, device=xy.device)
    inside = ((xy >= 0) & (xy <= limit)).all(dim=-1)
    valid = in_front & inside & (tgt_depth.reshape(n, -1) > 0)
    if src_depth is not None:
        valid = valid & _visible_from_source(points, grid, c_src, src_depth, occlusion_tol)
    valid = valid.reshape(n, 1, size, size)
    return warped * valid.to(warped.dtype), valid


def _visible_from_source(points: Tensor, grid: Tensor, c_src: Tensor, src_depth: Tensor, tol: float) -> Tensor:
    """``(N, M)`` bool: the point is not farther than the source depth it projects onto (+ tol)."""
    _check_depth(src_depth, "src_depth")
    _check_batch(c_src, src_depth.shape[0], "src_depth")
    sampled = F.grid_sample(src_depth.to(grid.dtype), grid, mode="nearest", padding_mode="border", align_corners=False)
    centre = c_src[:, None, [3, 7, 11]].to(points.dtype)
    distance = (points - centre).norm(dim=-1)
    return distance <= sampled.reshape(distance.shape).to(distance.dtype) + tol


def _check_depth(depth: Tensor, name: str) -> None:
    check_shape(depth, "N 1 H W", name, error=CameraError)
    check_floating(depth, name, error=CameraError)


def _check_batch(c: Tensor, n: int, other: str) -> None:
    check_label_shape(c)
    check_batch(c, n, "camera", other, error=CameraError)


def _size(resolution: int | tuple[int, int]) -> tuple[int, int]:
    height, width = (resolution, resolution) if isinstance(resolution, int) else resolution
    if height <= 0 or width <= 0:
        raise CameraError(f"resolution must be positive, got {resolution}")
    return int(height), int(width)
