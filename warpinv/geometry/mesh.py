"""Depth map -> triangle mesh, as HFGI3D's pseudo-view generation builds it (``depth2mesh``).

The released pipeline (``multi_views/generate_multi_views.py``) and its quirks, kept in the
``official`` path on purpose:

- the EG3D depth is written as a uint16 PNG in millimetres (``int(depth * 1000)``, truncation) and
  read back before use (:func:`quantize_depth_mm`), then resized with a bilinear, half-pixel-centre
  resize (:func:`resize_depth`, OpenCV's ``INTER_LINEAR`` for upsampling);
- EG3D's depth is a distance along unit rays, but it is used as planar z on an integer pixel grid
  (no +0.5): a vertex is ``K^-1 [x, y, 1]^T * D`` with ``K = [[f W, 0, W/2], [0, f H, H/2], [0, 0, 1]]``
  (:func:`pixel_intrinsics`, ``f = 4.2647``);
- every 2x2 block of pixels is a quad ``(y, x), (y+1, x), (y+1, x+1), (y, x+1)``; a vertex is valid when
  its z is above ``1e-6``; a quad with three valid vertices gives the triangle of those three, a quad
  with four is split along the diagonal whose two triangles have the smaller largest cosine (of their
  corner and split angles), and triangles whose largest cosine is not below 1 are dropped. Faces come
  in the official order: the 3-vertex quads' triangles, then the first triangles of quads split along
  0-2, then their second triangles, then the quads split along 1-3 likewise.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

#: Millimetres per metre in the depth PNG the released code writes and reads back.
DEPTH_PNG_SCALE = 1000.0
#: EG3D's normalised focal length (FFHQ cameras).
EG3D_FOCAL = 4.2647
VALID_Z = 1e-6


def quantize_depth_mm(depth: Tensor) -> Tensor:
    """The released uint16-millimetre PNG round trip: ``(H, W)`` depth in metres -> the integers the
    PNG holds (``uint16(depth * 1000)``, truncating), as int32.

    Example:
        >>> quantize_depth_mm(torch.tensor([[2.9549, 0.0]])).tolist()
        [[2954, 0]]
    """
    return (depth.double() * DEPTH_PNG_SCALE).clamp(0, 65535).floor().to(torch.int32)


def resize_depth(depth: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize with half-pixel centres (OpenCV ``INTER_LINEAR`` when upsampling) of an
    ``(H, W)`` depth to ``size = (H', W')``, in float64."""
    out = F.interpolate(depth.double()[None, None], size=size, mode="bilinear", align_corners=False)
    return out[0, 0]


def pixel_intrinsics(width: int, height: int, focal: float = EG3D_FOCAL) -> Tensor:
    """``K (3, 3)`` in pixels of the released code: focal ``focal * W`` / ``focal * H``, centre ``W/2, H/2``.

    Example:
        >>> [round(v, 6) for v in pixel_intrinsics(40, 40)[0].tolist()]
        [170.588, 0.0, 20.0]
    """
    return torch.tensor([[focal * width, 0.0, 0.5 * width], [0.0, focal * height, 0.5 * height],
                         [0.0, 0.0, 1.0]], dtype=torch.float64)


def depth_to_mesh(depth: Tensor, K: Tensor) -> tuple[Tensor, Tensor]:
    """Triangulate a depth map (see the module docstring).

    Args:
        depth: ``(H, W)`` planar depth per pixel (0 = no surface).
        K: ``(3, 3)`` pixel intrinsics.

    Returns:
        ``vertices (H*W, 3)`` in camera coordinates (float64, one per pixel, row-major) and
        ``faces (F, 3)`` (int64 vertex indices).
    """
    depth = depth.double()
    H, W = depth.shape
    y, x = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij")
    pixels = torch.stack([x.reshape(-1), y.reshape(-1), torch.ones(H * W, dtype=torch.float64)], 1)
    vertices = pixels @ torch.linalg.inv(K.double()).T * depth.reshape(-1, 1)
    return vertices, grid_faces(vertices, H, W, vertices[:, 2] > VALID_Z)


def grid_faces(vertices: Tensor, height: int, width: int, valid: Tensor | None = None) -> Tensor:
    """The official triangulation of a vertex grid (see the module docstring).

    Args:
        vertices: ``(H*W, 3)`` one vertex per pixel, row-major, in any Euclidean frame (the split
            rule compares angles, which rigid motions keep).
        valid: ``(H*W,)`` bool, vertices that may be used; default all.

    Returns:
        ``faces (F, 3)`` int64 vertex indices.

    Example:
        >>> v = torch.tensor([[0., 0, 1], [1, 0, 1], [0, 1, 1], [1, 1, 1]])
        >>> grid_faces(v, 2, 2).tolist()
        [[0, 2, 3], [3, 1, 0]]
    """
    if vertices.shape != (height * width, 3):
        raise ValueError(f"vertices must be ({height * width}, 3) for a {height}x{width} grid, got "
                         f"{tuple(vertices.shape)}")
    if valid is None:
        valid = torch.ones(height * width, dtype=torch.bool, device=vertices.device)
    quads = _quads(height, width).to(vertices.device)
    return _faces(quads, _triangle_cosines(vertices.double(), quads), valid)


def _quads(H: int, W: int) -> Tensor:
    """``(Q, 4)`` vertex indices of each 2x2 pixel block, corners ``(y,x), (y+1,x), (y+1,x+1), (y,x+1)``."""
    y, x = torch.meshgrid(torch.arange(H - 1), torch.arange(W - 1), indexing="ij")
    top_left = (y * W + x).reshape(-1)
    return torch.stack([top_left, top_left + W, top_left + W + 1, top_left + 1], 1)


def _triangle_cosines(vertices: Tensor, quads: Tensor) -> Tensor:
    """``(Q, 4)``: for triangle ``k`` of a quad (corners ``k, k+1, k+2``), the largest cosine among
    its corner angle at ``k+1`` and the angles its edges make with the quad's diagonals."""
    nxt = [1, 2, 3, 0]
    v = vertices[quads]  # (Q, 4, 3)
    edges = v[:, nxt] - v  # e_k = v_{k+1} - v_k
    diag = v[:, [2, 3]] - v[:, [0, 1]]
    diag = torch.cat([diag, -diag], 1)  # d_k: v2-v0, v3-v1, v0-v2, v1-v3
    edge_len, diag_len = edges.norm(dim=-1), diag.norm(dim=-1)
    eps = 1e-6
    corner = -(edges * edges[:, nxt]).sum(-1) / (edge_len * edge_len[:, nxt]).clamp(min=eps)
    split_a = (edges * diag).sum(-1) / (edge_len * diag_len).clamp(min=eps)
    split_b = -(edges * diag[:, nxt]).sum(-1) / (edge_len * diag_len[:, nxt]).clamp(min=eps)
    return torch.stack([split_a, corner, split_b[:, nxt]], -1).amax(-1)


def _faces(quads: Tensor, tri_cos: Tensor, valid: Tensor) -> Tensor:
    """The triangles of the quads in the official order (see the module docstring)."""
    n_valid = valid[quads].sum(1)
    keep = tri_cos < 1.0
    three = torch.nonzero(n_valid == 3).flatten()
    missing = (~valid[quads[three]]).int().argmax(1)  # the one invalid corner of each 3-vertex quad
    corners = (missing[:, None] + torch.arange(1, 4, device=quads.device)[None]) % 4
    ok = keep[three, corners[:, 0]]
    tri1 = torch.gather(quads[three], 1, corners)[ok]
    even = tri_cos[:, 0::2].amax(1) <= tri_cos[:, 1::2].amax(1)
    split02 = torch.nonzero((n_valid == 4) & even).flatten()
    split13 = torch.nonzero((n_valid == 4) & ~even).flatten()
    parts = [tri1]
    for group, (first, second) in ((split02, (0, 2)), (split13, (1, 3))):
        for start in (first, second):
            ids = group[keep[group, start]]
            parts.append(quads[ids][:, [start, (start + 1) % 4, (start + 2) % 4]])
    return torch.cat(parts).long()


def depth_jump_faces(faces: Tensor, depth: Tensor, max_jump: float) -> Tensor:
    """Which faces span a depth discontinuity: corner depths more than ``max_jump`` times the nearest
    corner's depth apart.

    ``depth_to_mesh`` connects every pair of neighbouring pixels, so at a silhouette it stretches a sheet
    of triangles from the near surface to whatever lies behind it: these are those triangles.

    Args:
        faces: ``(F, 3)`` vertex indices.
        depth: ``(V,)`` distance of each vertex from the camera.
        max_jump: the largest relative depth span of a face that is kept as surface.

    Returns:
        ``(F,)`` bool, True for the faces across a discontinuity.

    Example:
        >>> faces = torch.tensor([[0, 1, 2], [1, 2, 3]])
        >>> depth_jump_faces(faces, torch.tensor([1.0, 1.01, 1.02, 1.5]), 0.05).tolist()
        [False, True]
    """
    if not max_jump > 0:
        raise ValueError(f"max_jump must be > 0, got {max_jump}")
    corners = depth[faces]
    near, far = corners.amin(1), corners.amax(1)
    return far - near > max_jump * near


def camera_to_world(vertices: Tensor, cam2world: Tensor) -> Tensor:
    """``vertices (N, 3)`` in camera coordinates -> world, with ``cam2world (4, 4)`` (float64)."""
    c2w = cam2world.double()
    return vertices.double() @ c2w[:3, :3].T + c2w[:3, 3]
