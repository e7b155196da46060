"""Dense points on a triangle mesh: area-weighted, seeded surface sampling.

The released HFGI3D code densifies its depth mesh with PyTorch3D's ``sample_points_from_meshes``
(1,000,000 points). :func:`sample_surface` draws points the same way, in pure PyTorch and from its
own ``torch.Generator`` (the global RNG is not touched):

- a face is drawn with probability proportional to its area (``torch.multinomial`` with
  replacement over the face areas);
- a point inside it has barycentric weights ``(1 - sqrt(u), sqrt(u) (1 - v), sqrt(u) v)`` with
  ``u, v`` uniform in ``[0, 1)``, which is uniform over the triangle's area.

PyTorch3D draws from the global RNG in its own order, so the points are the same distribution, not
the same numbers; the fixtures store their point sets as inputs for this reason.
"""
from __future__ import annotations

import torch
from torch import Tensor


def face_areas(vertices: Tensor, faces: Tensor) -> Tensor:
    """``(F,)`` areas of the triangles ``faces (F, 3)`` of ``vertices (V, 3)``.

    Example:
        >>> face_areas(torch.tensor([[0., 0, 0], [2, 0, 0], [0, 1, 0]]), torch.tensor([[0, 1, 2]])).tolist()
        [1.0]
    """
    v = vertices[faces]  # (F, 3, 3)
    return 0.5 * torch.linalg.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]).norm(dim=-1)


def sample_surface(vertices: Tensor, faces: Tensor, num_points: int, generator: torch.Generator) -> Tensor:
    """``num_points`` points uniformly distributed over the area of the mesh (see the module docstring).

    Args:
        vertices: ``(V, 3)`` float vertices.
        faces: ``(F, 3)`` int vertex indices.
        num_points: how many points to draw.
        generator: the random stream (on the vertices' device).

    Returns:
        ``(num_points, 3)`` points, in the vertices' dtype.

    Raises:
        ValueError: no face, or every face has zero area (nothing to sample from).

    Example:
        >>> square = torch.tensor([[0., 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]])
        >>> pts = sample_surface(square, torch.tensor([[0, 1, 2], [2, 3, 0]]), 1000, torch.Generator().manual_seed(0))
        >>> pts.shape, bool((pts[:, :2] >= 0).all() and (pts[:, :2] <= 1).all()), round(float(pts[:, 0].mean()), 1)
        (torch.Size([1000, 3]), True, 0.5)
    """
    return sample_surface_faces(vertices, faces, num_points, generator)[0]


def sample_surface_faces(vertices: Tensor, faces: Tensor, num_points: int,
                         generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """:func:`sample_surface`, also returning the face each point lies on: ``(points (N, 3), face (N,))``.

    Example:
        >>> tri = torch.tensor([[0., 0, 0], [1, 0, 0], [0, 1, 0], [5, 5, 0]])
        >>> faces = torch.tensor([[0, 1, 2], [1, 3, 2]])
        >>> pts, face = sample_surface_faces(tri, faces, 500, torch.Generator().manual_seed(0))
        >>> bool((pts[face == 0].sum(1) <= 1).all() and (pts[face == 1].sum(1) >= 1).all())
        True
    """
    if vertices.ndim != 2 or vertices.shape[1] != 3 or not vertices.is_floating_point():
        raise ValueError(f"vertices must be a float (V, 3) tensor, got {tuple(vertices.shape)} {vertices.dtype}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must be (F, 3), got {tuple(faces.shape)}")
    if num_points < 1:
        raise ValueError(f"num_points must be >= 1, got {num_points}")
    areas = face_areas(vertices, faces) if faces.shape[0] else vertices.new_zeros(0)
    if not bool(torch.isfinite(areas).all()) or float(areas.sum()) <= 0:
        raise ValueError(f"the mesh has no face of positive, finite area ({faces.shape[0]} faces): nothing to sample")
    chosen = torch.multinomial(areas.float(), num_points, replacement=True, generator=generator)
    u = torch.rand(num_points, generator=generator, device=vertices.device, dtype=vertices.dtype).sqrt()
    v = torch.rand(num_points, generator=generator, device=vertices.device, dtype=vertices.dtype)
    weights = torch.stack([1 - u, u * (1 - v), u * v], 1)  # (N, 3)
    corners = vertices[faces[chosen]]  # (N, 3, 3)
    return (weights[:, :, None] * corners).sum(1), chosen
