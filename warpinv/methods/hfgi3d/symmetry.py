"""HFGI3D's density-symmetry loss: raw density at grid points against density at their x-mirrors.

Official source: ``jiaxinxie97/HFGI3D`` @ 139d0c6, ``inversion/training/projectors/w_plus_projector.py``:

- ``:24-47`` ``create_samples``: EG3D's grid helper, ``N**3`` points in a cube of side ``box_warp``
  (``:123``, ``cube_length=G.rendering_kwargs['box_warp'] * 1``) centred on the origin;
- ``:122`` ``shape_res = 64`` (the grid size);
- ``:125-126`` the mirror: a copy of the grid with the first coordinate negated (x -> -x; EG3D's x is
  the face's left-right axis, y is up, z points to the frontal camera);
- ``:127-128`` ray directions ``(0, 0, -1)`` (ignored by EG3D's decoder);
- ``:149-150`` ``G.sample_mixed(points, directions, ws, noise_mode='const')['sigma']`` twice, with the
  step's noisy latent ``ws = w_opt + w_noise`` (``:142-143``): the raw density, before the marcher's
  ``softplus(sigma - 1)``;
- ``:151`` ``sigma_loss = (sigma/64 - sigma_mirror/64).square().sum() / 10000.``;
- ``:175`` ``loss = dist + reg_loss * regularize_noise_weight# +sigma_loss``: the term is **computed
  but not added in the released code; the paper's symmetric prior**. Had it been added, its weight
  would have been 1 (its scale is inside the formula: ``1/(64**2 * 1e4)``).

Grid quirk kept on purpose: ``create_samples`` divides the flat index by ``N`` in floating point
(``index.float() / N``), so for the flat index ``a*N**2 + b*N + c`` the three coordinates are
``(a + b/N + c/N**2, b + c/N, c) * voxel_size - L/2`` with ``voxel_size = L/(N-1)``: the first two axes
are slightly sheared and reach a little past ``L/2`` (points outside the box read zero features).
The loss compares each point with its own mirror, so the quirk does not break the symmetry test.

The official code builds the tri-planes twice (two ``sample_mixed`` calls); here they are built once.
With ``noise_mode='const'`` both builds are identical, so the value is the same.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from warpinv.backbone.generator import EG3DGenerator
from warpinv.backbone.renderer import run_model

#: ``shape_res`` (``w_plus_projector.py:122``).
OFFICIAL_GRID_SIZE = 64
#: The ``/10000.`` of ``w_plus_projector.py:151``.
OFFICIAL_SCALE = 1e-4
#: The weight the term would have had in ``loss = dist + reg_loss * 1e5 # +sigma_loss`` (``:175``).
OFFICIAL_WEIGHT = 1.0


def _check_grid_size(grid_size: int) -> None:
    if isinstance(grid_size, bool) or not isinstance(grid_size, int) or grid_size < 2:
        raise ValueError(f"grid_size must be an int >= 2, got {grid_size!r}")


def symmetry_grid(grid_size: int, cube_length: float, device: torch.device | str | None = None) -> Tensor:
    """The official sample points (EG3D's ``create_samples`` with its float-division quirk).

    Args:
        grid_size: ``N``, points per axis.
        cube_length: side of the cube centred on the origin (the official run passes ``box_warp``).
        device: where to build the points.

    Returns:
        ``(1, N**3, 3)`` float32 points; the last coordinate varies fastest.

    Example:
        >>> symmetry_grid(2, 1.0)[0, 1].tolist()   # index 1: (0 + 0/2 + 1/4, 0 + 1/2, 1) - 0.5
        [-0.25, 0.0, 0.5]
    """
    _check_grid_size(grid_size)
    if not cube_length > 0:
        raise ValueError(f"cube_length must be > 0, got {cube_length!r}")
    n = grid_size
    voxel_size = cube_length / (n - 1)
    origin = -cube_length / 2
    index = torch.arange(n**3, device=device)
    flat = index.float()
    cells = torch.stack([(flat / n / n) % n, (flat / n) % n, (index % n).float()], dim=-1)
    return (cells * voxel_size + origin).unsqueeze(0)


def mirror_x(coordinates: Tensor) -> Tensor:
    """``(..., 3)`` points -> their mirror images about the plane x = 0 (a new tensor)."""
    if coordinates.shape[-1] != 3:
        raise ValueError(f"coordinates must have a last dimension of 3, got shape {tuple(coordinates.shape)}")
    mirrored = coordinates.clone()
    mirrored[..., 0] = -mirrored[..., 0]
    return mirrored


def density_symmetry_loss_from_planes(
    planes: Tensor,
    decoder: nn.Module,
    rendering_kwargs: Mapping[str, Any],
    *,
    grid_size: int = OFFICIAL_GRID_SIZE,
    scale: float = OFFICIAL_SCALE,
) -> Tensor:
    """The density-symmetry loss of given tri-planes.

    ``scale * sum(((sigma(p) - sigma(mirror_x(p))) / grid_size) ** 2)`` over the official grid of
    :func:`symmetry_grid` in a cube of side ``rendering_kwargs['box_warp']``, summed over the batch
    too (the official batch is 1). ``sigma`` is the decoder's raw density.

    Args:
        planes: ``(N, 3, C, H, W)`` tri-planes.
        decoder: the generator's MLP (``G.decoder``).
        rendering_kwargs: ``G.rendering_kwargs`` (``box_warp`` is read).
        grid_size: points per axis (official 64).
        scale: the factor after the sum (official ``1e-4``).

    Returns:
        A scalar tensor, differentiable w.r.t. ``planes`` and the decoder.
    """
    _check_grid_size(grid_size)
    if planes.dim() != 5 or planes.shape[1] != 3:
        raise ValueError(f"planes must have shape (N, 3, C, H, W), got {tuple(planes.shape)}")
    if "box_warp" not in rendering_kwargs:
        raise ValueError("rendering_kwargs must contain 'box_warp' (the cube's side)")
    n = planes.shape[0]
    points = symmetry_grid(grid_size, float(rendering_kwargs["box_warp"]), planes.device).expand(n, -1, -1)
    directions = torch.zeros_like(points)
    directions[..., -1] = -1
    sigma = run_model(planes, decoder, points, directions, rendering_kwargs)["sigma"]
    sigma_mirror = run_model(planes, decoder, mirror_x(points), directions, rendering_kwargs)["sigma"]
    return (sigma / grid_size - sigma_mirror / grid_size).square().sum() * scale


def density_symmetry_loss(
    G: EG3DGenerator,
    ws: Tensor,
    *,
    grid_size: int = OFFICIAL_GRID_SIZE,
    noise_mode: str = "const",
    scale: float = OFFICIAL_SCALE,
) -> Tensor:
    """HFGI3D's density-symmetry loss of the generator at ``ws``.

    Computed but not added in the released code; the paper's symmetric prior
    (``w_plus_projector.py:122-128, 149-151, 175``; see the module docstring). Would-be weight
    :data:`OFFICIAL_WEIGHT`.

    Args:
        G: the generator.
        ws: ``(N, num_ws, w_dim)`` latents (officially the step's ``w_opt + w_noise``).
        grid_size: points per axis (official 64).
        noise_mode: the backbone's noise mode for the tri-planes (official ``'const'``).
        scale: the factor after the sum (official ``1e-4``).

    Returns:
        A scalar tensor, differentiable w.r.t. ``ws`` and the generator's parameters.
    """
    if not isinstance(G, EG3DGenerator):
        raise TypeError(f"G must be an EG3DGenerator, got {type(G).__name__}")
    if not isinstance(ws, Tensor) or ws.dim() != 3 or ws.shape[1:] != (G.num_ws, G.w_dim):
        shape = tuple(ws.shape) if isinstance(ws, Tensor) else type(ws).__name__
        raise ValueError(f"ws must be a tensor of shape (N, {G.num_ws}, {G.w_dim}), got {shape}")
    _check_grid_size(grid_size)
    planes = G.planes(ws, noise_mode=noise_mode)
    return density_symmetry_loss_from_planes(planes, G.decoder, G.rendering_kwargs, grid_size=grid_size,
                                             scale=scale)
