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

Memory is bounded on a CPU: points are processed in chunks, and the chunks' candidates are merged
into the per-pixel top-``K`` lists kept so far once they could fill every pixel's ``K`` slots (so a
merge sorts a few times the slots at most), and the cost grows linearly with points and views.
HFGI3D splats every point and, separately, the visible ones into each view:
:func:`rasterize_point_subset` gives both from one candidate search and one sort, exactly as two
calls would.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

EMPTY = -1


def points_to_ndc(points: Tensor, cam2world: Tensor, height: int, width: int, focal: float = 4.2647) -> Tensor:
    """``points (N, 3)`` in world coordinates -> ``(N, 3)`` PyTorch3D NDC ``(x, y, z)`` in float32, as the
    released code computes them (``world2cam`` from numpy's float32 inverse, then float32 torch).

    The two 3x3 products are written out term by term, ``(x m0 + y m1) + z m2 (+ t)``: a float32 matrix
    product rounds differently with the CPU's vector width (up to 12 ulp on AVX-512), and this order
    reproduces the released values bit for bit on every CPU."""
    world2cam = torch.from_numpy(np.linalg.inv(cam2world.detach().cpu().numpy().astype(np.float32))).to(points.device)
    K = torch.tensor([[focal * width, 0, 0.5 * width], [0, focal * height, 0.5 * height], [0, 0, 1]],
                     dtype=torch.float32, device=points.device)
    proj = _affine_rows(K, _affine_rows(world2cam[:3, :3], points.float(), world2cam[:3, 3]))
    return pixels_to_ndc(proj[:, :2] / proj[:, 2:], proj[:, 2], height, width)


def _affine_rows(matrix: Tensor, vectors: Tensor, offset: Tensor | None = None) -> Tensor:
    """``vectors (N, 3) @ matrix (3, 3).T (+ offset (3,))``, summed left to right in the vectors' dtype."""
    rows = [vectors[:, 0] * m[0] + vectors[:, 1] * m[1] + vectors[:, 2] * m[2] for m in matrix]
    if offset is not None:
        rows = [row + t for row, t in zip(rows, offset)]
    return torch.stack(rows, 1)


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
    return _rasterize(ndc, None, height, width, radius, points_per_pixel, chunk_size)[0]


def rasterize_point_subset(ndc: Tensor, subset: Tensor, height: int, width: int, radius: float,
                           points_per_pixel: int, chunk_size: int = 1 << 17) -> tuple[Fragments, Fragments]:
    """``rasterize_points(ndc)`` and ``rasterize_points(ndc[subset])`` from one candidate search and one
    sort per chunk (HFGI3D splats every point and, separately, the visible ones into each view).

    The second result indexes ``ndc[subset]`` (its ``i``-th ``True`` point is ``i``), exactly as the
    separate call would: a subset point's rank among the subset's covering points ignores the others.

    Args:
        subset: ``(N,)`` bool.
    """
    if subset.shape != ndc.shape[:1] or subset.dtype != torch.bool:
        raise ValueError(f"subset must be a ({ndc.shape[0]},) bool tensor, got {tuple(subset.shape)} {subset.dtype}")
    every, part = _rasterize(ndc, subset, height, width, radius, points_per_pixel, chunk_size)
    assert part is not None
    return every, part


def _rasterize(ndc: Tensor, subset: Tensor | None, height: int, width: int, radius: float, k: int,
               chunk_size: int) -> tuple[Fragments, Fragments | None]:
    """Fragments of every point and (``subset`` given) of the subset; the chunks' candidates are merged
    into the entries kept so far (see the module docstring) and only those in either top-``k`` survive."""
    device = ndc.device
    xs, ys = pixel_centres(width, device), pixel_centres(height, device)
    r2 = torch.tensor(radius, dtype=torch.float32) ** 2
    # A pixel k columns from a point's nearest centre is at least |k| - 1/2 pixels away.
    reach = int(np.ceil(radius * max(width, height) / 2 + 0.5 + 1e-4)) - 1
    kept, ranks = _Candidates.empty(device), _Ranks.empty(device, subset is not None)
    pending: list[_Candidates] = []
    for start in range(0, ndc.shape[0], chunk_size):
        pending.append(_candidates(ndc[start:start + chunk_size].float(), start, xs, ys, r2, reach))
        last = start + chunk_size >= ndc.shape[0]
        # Merging sorts everything kept so far: do it once the new candidates could fill every slot.
        if last or sum(c.pixel.numel() for c in pending) >= height * width * k:
            kept, ranks = _Candidates.cat([kept, *pending]).sorted().top_k(k, subset, height * width)
            pending = []
    every = _fragments(kept, ranks.every, kept.index, height, width, k)
    if subset is None or ranks.subset is None or ranks.in_subset is None:
        return every, None
    compact = torch.cumsum(subset.to(device).long(), 0) - 1
    part = kept.select(ranks.in_subset)
    return every, _fragments(part, ranks.subset[ranks.in_subset], compact[part.index], height, width, k)


class _Ranks(NamedTuple):
    """Of each kept entry: its rank among its pixel's entries, and (with a subset) whether it is a subset
    point and its rank among the pixel's subset points. Ranks of ``k`` and above only mark an entry
    kept for the other list: the entries ranked before it are all kept, so the rank stays ``>= k``."""

    every: Tensor
    in_subset: Tensor | None
    subset: Tensor | None

    @classmethod
    def empty(cls, device: torch.device, with_subset: bool) -> _Ranks:
        none = torch.zeros(0, dtype=torch.int64, device=device)
        return cls(none, none.bool() if with_subset else None, none if with_subset else None)


@dataclass
class _Candidates:
    """(point, pixel) pairs within the radius: pixel id, point depth, point index, squared distance."""

    pixel: Tensor
    z: Tensor
    index: Tensor
    dist2: Tensor

    @classmethod
    def empty(cls, device: torch.device) -> _Candidates:
        long = torch.zeros(0, dtype=torch.int64, device=device)
        real = torch.zeros(0, dtype=torch.float32, device=device)
        return cls(long, real, long, real)

    @classmethod
    def cat(cls, parts: list[_Candidates]) -> _Candidates:
        parts = [p for p in parts if p.pixel.numel()] or parts[:1]
        if len(parts) == 1:
            return parts[0]
        return cls(*(torch.cat(list(fields)) for fields in zip(*(p.fields() for p in parts))))

    def fields(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return self.pixel, self.z, self.index, self.dist2

    def sorted(self) -> _Candidates:
        """In ``(pixel, z, index)`` order, by one stable sort on ``pixel`` and the bits of ``z``.

        A non-negative float32's bit pattern orders like its value (``+ 0.0`` turns ``-0.0`` into
        ``0.0``), and equal ``(pixel, z)`` entries already come in increasing ``index`` (point-major
        candidates, appended after the entries kept from earlier chunks).
        """
        z_bits = (self.z + 0.0).view(torch.int32).long()
        keys, order = torch.sort(self.pixel * (1 << 31) + z_bits, stable=True)
        z = (keys & ((1 << 31) - 1)).int().view(torch.float32)
        return _Candidates(keys >> 31, z, self.index[order], self.dist2[order])

    def select(self, mask: Tensor) -> _Candidates:
        return _Candidates(*(t[mask] for t in self.fields()))

    def top_k(self, k: int, subset: Tensor | None, num_pixels: int) -> tuple[_Candidates, _Ranks]:
        """The sorted entries within the first ``k`` of their pixel, or of their pixel's ``subset`` points,
        and their ranks (see :class:`_Ranks`)."""
        first = _first_of_pixel(self.pixel, num_pixels)
        every = torch.arange(self.pixel.numel(), device=self.pixel.device) - first
        keep = every < k
        if subset is None:
            return self.select(keep), _Ranks(every[keep], None, None)
        in_subset = subset.to(self.index.device)[self.index]
        before = torch.cumsum(in_subset.long(), 0) - in_subset.long()  # subset entries before each entry
        among_subset = before - before[first] if before.numel() else before
        keep |= in_subset & (among_subset < k)
        return self.select(keep), _Ranks(every[keep], in_subset[keep], among_subset[keep])


def _candidates(ndc: Tensor, offset: int, xs: Tensor, ys: Tensor, r2: Tensor, reach: int) -> _Candidates:
    """Every (point, pixel) pair within the radius, point-major (then row, then column); points behind
    the camera have none. Distances are PyTorch3D's float32 ``dx * dx + dy * dy`` to the pixel centre."""
    height, width = ys.shape[0], xs.shape[0]
    steps = torch.arange(-reach, reach + 1, device=ndc.device)
    # nearest column/row of each point (the centres are spaced 2/S apart, decreasing), then its neighbours
    cols = torch.round((1.0 - ndc[:, 0]) * width / 2 - 0.5).long()[:, None] + steps  # (N, S)
    rows = torch.round((1.0 - ndc[:, 1]) * height / 2 - 0.5).long()[:, None] + steps
    col_ok, row_ok = (cols >= 0) & (cols < width), (rows >= 0) & (rows < height)
    dx = xs[cols.clamp(0, width - 1)] - ndc[:, :1]
    dy = ys[rows.clamp(0, height - 1)] - ndc[:, 1:2]
    dist2 = dx[:, None, :] * dx[:, None, :] + (dy * dy)[:, :, None]  # (N, S rows, S columns)
    hit = (dist2 < r2) & col_ok[:, None, :] & row_ok[:, :, None] & (ndc[:, 2] >= 0)[:, None, None]
    flat = hit.view(-1).nonzero().squeeze(1)
    side = steps.numel()
    point, cell = flat // (side * side), flat % (side * side)
    row, col = rows[point, cell // side], cols[point, cell % side]
    return _Candidates(row * width + col, ndc[point, 2], point + offset, dist2.view(-1)[flat])


def _first_of_pixel(sorted_pixels: Tensor, num_pixels: int) -> Tensor:
    """Position of the first entry of each entry's pixel (``sorted_pixels`` sorted, values below
    ``num_pixels``)."""
    counts = torch.bincount(sorted_pixels, minlength=num_pixels)
    return (torch.cumsum(counts, 0) - counts)[sorted_pixels]


def _fragments(kept: _Candidates, slot: Tensor, index: Tensor, height: int, width: int, k: int) -> Fragments:
    """``Fragments`` of the sorted entries whose ``slot`` (rank in their pixel) is below ``k``."""
    device = kept.pixel.device
    idx = torch.full((height * width, k), EMPTY, dtype=torch.int64, device=device)
    dists2 = torch.full((height * width, k), float(EMPTY), dtype=torch.float32, device=device)
    zbuf = torch.full((height * width, k), float(EMPTY), dtype=torch.float32, device=device)
    used = slot < k
    pixel, slot = kept.pixel[used], slot[used]
    idx[pixel, slot], dists2[pixel, slot], zbuf[pixel, slot] = index[used], kept.dist2[used], kept.z[used]
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
