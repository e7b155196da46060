"""Point splatting into any camera, as HFGI3D renders its pseudo views, in pure PyTorch.

The released code uses PyTorch3D's ``rasterize_points`` and ``alpha_composite``; this module
reproduces their semantics (no PyTorch3D, no compiled extension):

- points go to NDC as the released code computes them (float32): ``[u, v, z] = K (R x + t)``,
  ``x_ndc = -(u / W * 2 - 1)``, ``y_ndc = -(v / H * 2 - 1)``, ``z`` the camera depth
  (:func:`points_to_ndc`);
- pixel ``(row r, column c)`` has its centre at ``x = 1 - (2c + 1) / W``, ``y = 1 - (2r + 1) / H``
  (PyTorch3D's flipped NDC, computed as ``-1 + (2 i + 1) / S`` with ``i = S - 1 - c``);
- a point covers a pixel when its ``z >= 0`` and its squared NDC distance to the centre is strictly
  below ``radius^2``; each pixel keeps the ``K`` covering points with the smallest ``(z, index)`` in
  that order (PyTorch3D's per-pixel max-heap on ``(z, index, dist)`` gives exactly this order);
  empty slots hold index ``-1`` and distance ``-1`` (:func:`rasterize_points`);
- ``alpha = 1 - sqrt(clamp(0.1 d^2 / r^2, 1e-3, 1))`` (:func:`splat_alphas`) and
  ``out = sum_k f[idx_k] alpha_k prod_{j<k, idx_j >= 0} (1 - alpha_j)``, skipping empty slots, no
  background term (:func:`alpha_composite`).

Memory is bounded on a CPU: points are processed in chunks, and each chunk's candidates are merged
into the per-pixel top-``K`` lists kept so far, so the cost grows linearly with points and views.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

EMPTY = -1


def points_to_ndc(points: Tensor, cam2world: Tensor, height: int, width: int, focal: float = 4.2647) -> Tensor:
    """``points (N, 3)`` in world coordinates -> ``(N, 3)`` PyTorch3D NDC ``(x, y, z)`` in float32, as the
    released code computes them (``world2cam`` from numpy's float32 inverse, then float32 torch)."""
    world2cam = torch.from_numpy(np.linalg.inv(cam2world.detach().cpu().numpy().astype(np.float32))).to(points.device)
    K = torch.tensor([[focal * width, 0, 0.5 * width], [0, focal * height, 0.5 * height], [0, 0, 1]],
                     dtype=torch.float32, device=points.device)
    proj = points.float() @ world2cam[:3, :3].T + world2cam[:3, 3]
    proj = proj @ K.T
    return pixels_to_ndc(proj[:, :2] / proj[:, 2:], proj[:, 2], height, width)


def pixels_to_ndc(xy: Tensor, z: Tensor, height: int, width: int) -> Tensor:
    """Pixel coordinates ``xy (N, 2)`` (column ``c`` centred at ``x = c + 0.5``) and camera depth ``z (N,)``
    -> ``(N, 3)`` PyTorch3D NDC (``x_ndc = -(x / W * 2 - 1)``, ``y_ndc = -(y / H * 2 - 1)``, ``z``).

    Example:
        >>> pixels_to_ndc(torch.tensor([[0.5, 1.0]]), torch.tensor([2.5]), 4, 4).tolist()
        [[0.75, 0.5, 2.5]]
    """
    x = -(xy[:, 0] / width * 2 - 1.0)
    y = -(xy[:, 1] / height * 2 - 1.0)
    return torch.stack([x, y, z.to(x.dtype)], 1)


@dataclass
class Fragments:
    """Per pixel, the ``K`` points covering it nearest first.

    Attributes:
        idx: ``(H, W, K)`` int64 point indices, ``-1`` where empty.
        dists2: ``(H, W, K)`` float32 squared NDC distances, ``-1`` where empty.
        zbuf: ``(H, W, K)`` float32 point depths, ``-1`` where empty.
    """

    idx: Tensor
    dists2: Tensor
    zbuf: Tensor


def pixel_centres(size: int, device: torch.device | None = None) -> Tensor:
    """NDC centre of each pixel column (or row) ``0 .. size-1`` (float32, PyTorch3D's flipped axis).

    Example:
        >>> pixel_centres(4).tolist()
        [0.75, 0.25, -0.25, -0.75]
    """
    flipped = torch.arange(size - 1, -1, -1, dtype=torch.float32, device=device)
    return -1.0 + (2.0 * flipped + 1.0) / size


def rasterize_points(ndc: Tensor, height: int, width: int, radius: float, points_per_pixel: int,
                     chunk_size: int = 1 << 17) -> Fragments:
    """PyTorch3D's ``rasterize_points`` for one point cloud (see the module docstring).

    Args:
        ndc: ``(N, 3)`` points in NDC (:func:`points_to_ndc`).
        radius: the point radius in NDC units (``radius_px / size * 2``).
        points_per_pixel: ``K``.
        chunk_size: points per chunk (bounds memory).
    """
    device = ndc.device
    xs, ys = pixel_centres(width, device), pixel_centres(height, device)
    r2 = torch.tensor(radius, dtype=torch.float32) ** 2
    # A pixel k columns from a point's nearest centre is at least |k| - 1/2 pixels away.
    reach = int(np.ceil(radius * max(width, height) / 2 + 0.5 + 1e-4)) - 1
    best: tuple[Tensor, Tensor, Tensor, Tensor] | None = None
    for start in range(0, ndc.shape[0], chunk_size):
        found = _candidates(ndc[start:start + chunk_size].float(), start, xs, ys, r2, reach)
        if best is not None:
            found = tuple(torch.cat([b, f]) for b, f in zip(best, found))  # type: ignore[assignment]
        best = _top_k(*found, points_per_pixel)
    return _fragments(best, height, width, points_per_pixel, device)


def _candidates(ndc: Tensor, offset: int, xs: Tensor, ys: Tensor, r2: Tensor,
                reach: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(pixel id, z, point index, dist2)`` of every (point, pixel) pair within the radius."""
    height, width = ys.shape[0], xs.shape[0]
    # nearest column/row of each point (the centres are spaced 2/S apart, decreasing)
    col = torch.round((1.0 - ndc[:, 0]) * width / 2 - 0.5).long()
    row = torch.round((1.0 - ndc[:, 1]) * height / 2 - 0.5).long()
    steps = torch.arange(-reach, reach + 1, device=ndc.device)
    cols = (col[:, None, None] + steps[None, None, :]).expand(-1, steps.numel(), -1)
    rows = (row[:, None, None] + steps[None, :, None]).expand(-1, -1, steps.numel())
    inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height) & (ndc[:, 2] >= 0)[:, None, None]
    point = torch.arange(ndc.shape[0], device=ndc.device)[:, None, None].expand_as(cols)[inside]
    c, r = cols[inside], rows[inside]
    dx = xs[c] - ndc[point, 0]
    dy = ys[r] - ndc[point, 1]
    dist2 = dx * dx + dy * dy
    hit = dist2 < r2
    return (r * width + c)[hit], ndc[point[hit], 2], point[hit] + offset, dist2[hit]


def _top_k(pixel: Tensor, z: Tensor, index: Tensor, dist2: Tensor,
           k: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The ``k`` entries of each pixel with the smallest ``(z, index)``.

    Entries of equal pixel and ``z`` must come in increasing ``index`` (true of :func:`_candidates`,
    point-major, and of the previous top-``k`` lists followed by a later chunk), so two stable sorts
    give the ``(pixel, z, index)`` order.
    """
    order = torch.argsort(z, stable=True)
    order = order[torch.argsort(pixel[order], stable=True)]
    pixel, z, index, dist2 = pixel[order], z[order], index[order], dist2[order]
    rank = _rank_in_group(pixel)
    keep = rank < k
    return pixel[keep], z[keep], index[keep], dist2[keep]


def _rank_in_group(sorted_keys: Tensor) -> Tensor:
    """Position of each entry within its run of equal keys (``sorted_keys`` sorted)."""
    n = sorted_keys.numel()
    if n == 0:
        return sorted_keys.new_zeros(0)
    starts = torch.ones(n, dtype=torch.bool, device=sorted_keys.device)
    starts[1:] = sorted_keys[1:] != sorted_keys[:-1]
    positions = torch.arange(n, device=sorted_keys.device)
    run_start = torch.cummax(torch.where(starts, positions, torch.zeros_like(positions)), 0).values
    return positions - run_start


def _fragments(best: tuple[Tensor, Tensor, Tensor, Tensor] | None, height: int, width: int, k: int,
               device: torch.device) -> Fragments:
    idx = torch.full((height * width, k), EMPTY, dtype=torch.int64, device=device)
    dists2 = torch.full((height * width, k), float(EMPTY), dtype=torch.float32, device=device)
    zbuf = torch.full((height * width, k), float(EMPTY), dtype=torch.float32, device=device)
    if best is not None and best[0].numel():
        pixel, z, index, dist2 = best
        slot = _rank_in_group(pixel)
        idx[pixel, slot], dists2[pixel, slot], zbuf[pixel, slot] = index, dist2, z
    shape = (height, width, k)
    return Fragments(idx.view(shape), dists2.view(shape), zbuf.view(shape))


def splat_alphas(dists2: Tensor, radius: float) -> Tensor:
    """The released alphas ``1 - sqrt(clamp(0.1 d^2 / r^2, 1e-3, 1))`` (float32, empty slots included)."""
    d = 0.1 * dists2 / radius ** 2
    return 1 - d.clamp(min=1e-3, max=1).sqrt()


def alpha_composite(idx: Tensor, alphas: Tensor, features: Tensor) -> Tensor:
    """PyTorch3D's ``alpha_composite``: ``idx (H, W, K)``, ``alphas (H, W, K)``, ``features (N, C)`` ->
    ``(C, H, W)``; empty slots (``idx < 0``) are skipped and do not attenuate later ones."""
    valid = idx >= 0
    a = torch.where(valid, alphas, torch.zeros_like(alphas))
    transmittance = torch.cumprod(torch.cat([torch.ones_like(a[..., :1]), 1 - a[..., :-1]], -1), -1)
    weights = a * transmittance
    gathered = features[idx.clamp(min=0)]  # (H, W, K, C)
    return (weights[..., None] * gathered).sum(2).permute(2, 0, 1)
