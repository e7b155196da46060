"""HFGI3D's pseudo views: the input image warped through its own depth into other cameras, blended
over renders of those cameras, in one call (:func:`make_pseudo_views`).

Per image (the released ``multi_views/generate_multi_views.py``):

1. **surface**: the depth map is resized to the mesh resolution, triangulated
   (:mod:`~warpinv.geometry.mesh`) and densified by area-weighted sampling
   (:mod:`~warpinv.geometry.sampling`);
2. **visibility** in the input view: a z-buffer keeps the points within a tolerance of the nearest
   one per pixel, which take their colour from the input image (:mod:`~warpinv.geometry.visibility`);
3. per target camera, **two splats** (:mod:`~warpinv.geometry.splat`): the visible points with
   their colours (the warp), and every in-view point with the features ``[visible, 1]`` (visibility
   and coverage), rasterised together (:func:`~warpinv.geometry.splat.rasterize_point_subset`);
4. **masks**: erode both, multiply, blur (:mod:`~warpinv.geometry.masks`); **blend**
   ``m * warp + (1 - m) * render``, or Poisson blending (:mod:`~warpinv.geometry.poisson`, the
   paper's alternative, not in the released code).

Two modes (:class:`PseudoViewConfig`):

- ``official``: the released pipeline and its quirks, kept on purpose: the depth goes through the
  uint16 millimetre PNG; EG3D's ray distance is used as planar z on an integer pixel grid (while the
  splat uses half-pixel centres); projections in numpy float32; colours half a pixel off; every
  render, mask and pseudo view goes through an 8-bit PNG (truncation), and the blurred mask is
  stretched to its own maximum (imageio 2.9); the warp is not normalised by its splat weights.
- ``clean``: the same steps without the file formats and with consistent geometry: float depth,
  points on the true pixel rays (:func:`~warpinv.cameras.warp.unproject_depth`), half-pixel centres
  throughout, the warp divided by its splat weight, float masks, and no colour on the mesh triangles
  across depth discontinuities (``max_depth_jump``): the released mesh joins a silhouette to the
  background behind it and the input "sees" the front of that sheet, so other views would take its
  colours where they look at background the input never saw. The sheet's points stay, as surface
  the input did not see (coverage without visibility), so narrow disocclusions are not filled by the
  splats of their two sides.

Both read the focal length and principal point of each camera from its label (the released script
hard-codes FFHQ's 4.2647 and the image centre, which FFHQ labels hold). Kernel sizes are the
released ones at 512 px and scale with the view size; the number of points scales with its pixels.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from warpinv.cameras import unpack_label
from warpinv.cameras.warp import project_points as project_to_pixels
from warpinv.cameras.warp import unproject_depth
from warpinv.geometry.masks import (
    MaskKernels,
    blend,
    pseudo_view_mask,
    soft_mask,
    to_uint8,
)
from warpinv.geometry.mesh import (
    DEPTH_PNG_SCALE,
    camera_to_world,
    depth_jump_faces,
    depth_to_mesh,
    grid_faces,
    pixel_intrinsics,
    quantize_depth_mm,
    resize_depth,
)
from warpinv.geometry.poisson import poisson_blend
from warpinv.geometry.sampling import sample_surface_faces
from warpinv.geometry.splat import (
    Fragments,
    alpha_composite,
    pixels_to_ndc,
    points_to_ndc,
    rasterize_point_subset,
    splat_alphas,
)
from warpinv.geometry.visibility import project_points, sample_colors, zbuffer_visibility

logger = logging.getLogger(__name__)

Mode = Literal["official", "clean"]
Blending = Literal["alpha", "poisson"]
#: The released script's view size, point count and mesh size.
OFFICIAL_SIZE = 512
OFFICIAL_POINTS = 1_000_000
OFFICIAL_MESH_SIZE = 1024
#: ``clean`` mode's default ``max_depth_jump``.
CLEAN_MAX_DEPTH_JUMP = 0.05


class PseudoViewError(ValueError):
    """The pseudo views of an image cannot be made (e.g. no surface point is visible in the input view)."""


@dataclass
class PseudoViewConfig:
    """How pseudo views are made. Defaults: the released ``generate_multi_views.py``.

    Example:
        >>> PseudoViewConfig().num_points_for(128), PseudoViewConfig().mesh_size_for(128)
        (62500, 256)
        >>> PseudoViewConfig(mode="exact")
        Traceback (most recent call last):
        ...
        ValueError: mode must be 'official' or 'clean', got 'exact'
    """

    mode: Mode = "official"
    """``official``: the released pipeline with its file-format and pixel-grid quirks; ``clean``: true ray
    depth, consistent pixel centres, no 8-bit round trips (see the module docstring)."""
    num_points: int | None = None
    """Surface points; ``null``: 1,000,000 for 512x512 views (released) and in proportion to the pixels otherwise."""
    mesh_size: int | None = None
    """Side of the depth map the mesh is built from; ``null``: twice the view size (released: 1024 for 512)."""
    point_radius: float = 2.0
    """Splat radius in pixels (released: 2)."""
    points_per_pixel: int = 16
    """Points kept per pixel by the splat (released: 16)."""
    max_depth_jump: float | None = None
    """Mesh triangles whose corner distances to the input camera span more than this fraction of the nearest one
    (the sheet the depth mesh stretches across silhouettes) keep their points but give them no colour: those points
    still hide what lies behind them in other views, as unseen surface; ``null``: 0.05 in ``clean`` mode, none in
    ``official`` (released); ``.inf``: none."""
    visibility_tolerance: float | None = None
    """A point is visible when at most this far (depth units) behind its pixel's nearest point; ``null``: 1/H."""
    kernels: MaskKernels = field(default_factory=MaskKernels)
    """Erosion and blur sizes at 512 px (released: 3, 51, 21 with OpenCV's sigma 3.5); scaled to the view size."""
    blending: Blending = "alpha"
    """``alpha`` (released) or ``poisson`` (paper, not in the released code): gradient-domain blending of the warp
    inside ``mask > 0.5``."""
    chunk_points: int = 1 << 17
    """Points per rasterisation chunk (bounds memory)."""

    def __post_init__(self) -> None:
        if self.mode not in ("official", "clean"):
            raise ValueError(f"mode must be 'official' or 'clean', got {self.mode!r}")
        if self.blending not in ("alpha", "poisson"):
            raise ValueError(f"blending must be 'alpha' or 'poisson', got {self.blending!r}")
        for name in ("num_points", "mesh_size", "points_per_pixel", "chunk_points"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if not self.point_radius > 0:
            raise ValueError(f"point_radius must be > 0, got {self.point_radius}")
        if self.max_depth_jump is not None and not self.max_depth_jump > 0:
            raise ValueError(f"max_depth_jump must be > 0 (.inf: none), got {self.max_depth_jump}")

    def num_points_for(self, size: int) -> int:
        """Surface points for ``size x size`` views."""
        if self.num_points is not None:
            return self.num_points
        return max(1, round(OFFICIAL_POINTS * size * size / OFFICIAL_SIZE ** 2))

    def depth_jump_limit(self) -> float:
        """The relative depth span above which mesh triangles give their points no colour (``inf``: none).

        Example:
            >>> PseudoViewConfig().depth_jump_limit(), PseudoViewConfig(mode="clean").depth_jump_limit()
            (inf, 0.05)
        """
        if self.max_depth_jump is not None:
            return self.max_depth_jump
        return CLEAN_MAX_DEPTH_JUMP if self.mode == "clean" else math.inf

    def mesh_size_for(self, size: int) -> int:
        """Mesh resolution for ``size x size`` views."""
        return self.mesh_size if self.mesh_size is not None else size * OFFICIAL_MESH_SIZE // OFFICIAL_SIZE


@dataclass
class PseudoViews:
    """Pseudo views of one image.

    Attributes:
        images: ``(V, 3, H, W)`` in ``[0, 1]``: the blended pseudo views.
        masks: ``(V, 1, H, W)`` in ``[0, 1]``: the weight of the warp in each.
        warps: ``(V, 3, H, W)`` in ``[0, 1]``: the splatted input colours.
        num_points: surface points sampled.
        num_visible: of those, visible in the input view.
    """

    images: Tensor
    masks: Tensor
    warps: Tensor
    num_points: int
    num_visible: int


@dataclass
class SeenSurface:
    """The surface points inside the input view and what it sees of them.

    Attributes:
        points: ``(M, 3)`` world points whose input pixel lies inside the image.
        visible: ``(M,)`` bool, seen by the input view.
        colors: ``(M_visible, 3)`` colours of the visible points, in ``[0, 1]``.
        num_points: all points sampled (inside the view or not).
    """

    points: Tensor
    visible: Tensor
    colors: Tensor
    num_points: int


def make_pseudo_views(image: Tensor, depth: Tensor, camera: Tensor, cameras: Tensor, renders: Tensor,
                      config: PseudoViewConfig, generator: torch.Generator, *,
                      excluded: Tensor | None = None) -> PseudoViews:
    """Warp ``image`` through ``depth`` into ``cameras`` and blend the warps over ``renders``.

    Args:
        image: ``(3, H, W)`` input image in ``[0, 1]`` (in ``official`` mode, 8-bit values ``k / 255``).
        depth: ``(R, R)`` EG3D depth (distance along the unit pixel rays) seen from ``camera``.
        camera: ``(25,)`` the input camera.
        cameras: ``(V, 25)`` the pseudo-view cameras.
        renders: ``(V, 3, H, W)`` in ``[0, 1]``, the images the warps are blended over (in ``official``
            mode, 8-bit values: the released script reads them from PNGs).
        config: the pipeline's settings.
        generator: the random stream of the surface sampling.
        excluded: ``(H, W)`` bool input pixels whose colours must not be warped (the paper's
            difference-map threshold); their points count as not visible.

    Raises:
        PseudoViewError: a non-finite or empty depth map, or no point visible in the input view.
    """
    _check_inputs(image, depth, camera, cameras, renders, excluded)
    seen = seen_surface(image, depth, camera, config, generator, excluded)
    size = image.shape[-1]
    kernels = config.kernels.scaled(size)
    images, masks, warps = [], [], []
    for view, render in zip(cameras, renders):
        blended, mask, warp = _pseudo_view(seen, view, render, config, kernels)
        images.append(blended)
        masks.append(mask)
        warps.append(warp)
    return PseudoViews(torch.stack(images), torch.stack(masks), torch.stack(warps), seen.num_points,
                       int(seen.visible.sum()))


def seen_surface(image: Tensor, depth: Tensor, camera: Tensor, config: PseudoViewConfig,
                 generator: torch.Generator, excluded: Tensor | None = None) -> SeenSurface:
    """Steps 1-2 of the module docstring: sample the depth's surface, then test and colour it in
    the input view (see :func:`make_pseudo_views` for the arguments)."""
    height, width = image.shape[-2:]
    vertices, faces = surface_mesh(depth, camera, config.mesh_size_for(width), config.mode)
    try:
        points, face = sample_surface_faces(vertices, faces, config.num_points_for(width), generator)
    except ValueError as err:
        raise PseudoViewError(f"the depth map gives no surface: {err}") from None
    xy, z = _input_projection(points, camera, height, width, config.mode)
    vis = zbuffer_visibility(xy, z, height, width, config.visibility_tolerance)
    visible = vis.visible if config.mode == "official" else vis.visible & (vis.z > 0)
    max_jump = config.depth_jump_limit()
    if math.isfinite(max_jump):
        distance = (vertices - camera[[3, 7, 11]].to(vertices)).norm(dim=1)
        sheet = depth_jump_faces(faces, distance, max_jump)[face]
        visible &= ~sheet[vis.in_bounds.to(sheet.device)].to(visible.device)
    if excluded is not None:
        visible &= ~excluded.to(visible.device)[vis.pixels[:, 1], vis.pixels[:, 0]]
    if not bool(visible.any()):
        raise PseudoViewError(f"no surface point is visible in the input view ({points.shape[0]} points, "
                              f"{int(vis.in_bounds.sum())} inside the image): degenerate depth map")
    sample_xy = xy[vis.in_bounds][visible] + (0.5 if config.mode == "clean" else 0.0)
    colors = sample_colors(image.cpu(), sample_xy.cpu()).to(points.device)
    logger.debug("pseudo views: %d points, %d in view, %d visible", points.shape[0], int(vis.in_bounds.sum()),
                 int(visible.sum()))
    return SeenSurface(points[vis.in_bounds.to(points.device)], visible.to(points.device), colors, points.shape[0])


def surface_mesh(depth: Tensor, camera: Tensor, mesh_size: int, mode: Mode) -> tuple[Tensor, Tensor]:
    """``depth (R, R)`` seen from ``camera (25,)`` -> world ``vertices (S*S, 3)`` and ``faces (F, 3)``
    of its mesh at ``mesh_size = S`` (float64)."""
    if mode == "official":
        metres = quantize_depth_mm(depth).double() / DEPTH_PNG_SCALE
        resized = resize_depth(metres, (mesh_size, mesh_size))
        focal = _official_focal(camera)
        vertices, faces = depth_to_mesh(resized, pixel_intrinsics(mesh_size, mesh_size, focal).to(depth.device))
        return camera_to_world(vertices, camera[:16].reshape(4, 4)), faces
    resized = resize_depth(depth, (mesh_size, mesh_size))
    vertices = unproject_depth(resized[None, None], camera[None].double())[0]
    return vertices, grid_faces(vertices, mesh_size, mesh_size, resized.reshape(-1) > 0)


def _input_projection(points: Tensor, camera: Tensor, height: int, width: int, mode: Mode) -> tuple[Tensor, Tensor]:
    """Pixel coordinates (integers at pixel centres, as the z-buffer rounds them) and camera depth."""
    if mode == "official":
        focal = _official_focal(camera)
        K = pixel_intrinsics(width, height, focal)
        xy, z = project_points(points, camera[:16].reshape(4, 4), K)
        return xy.to(points.device), z.to(points.device)
    xy, z, _ = project_to_pixels(points[None], camera[None].to(points.dtype), (height, width))
    return xy[0] - 0.5, z[0]


def _view_ndc(points: Tensor, camera: Tensor, height: int, width: int, mode: Mode) -> Tensor:
    """``(M, 3)`` NDC of the points in a pseudo-view camera (points behind it get ``z < 0``)."""
    if mode == "official":
        focal = _official_focal(camera)
        return points_to_ndc(points, camera[:16].reshape(4, 4), height, width, focal)
    xy, z, _ = project_to_pixels(points[None], camera[None].to(points.dtype), (height, width))
    return pixels_to_ndc(xy[0], z[0], height, width).float()


def _pseudo_view(seen: SeenSurface, camera: Tensor, render: Tensor, config: PseudoViewConfig,
                 kernels: MaskKernels) -> tuple[Tensor, Tensor, Tensor]:
    """One view: ``(blended (3, H, W), mask (1, H, W), warp (3, H, W))``, each in ``[0, 1]``."""
    height, width = render.shape[-2:]
    radius = config.point_radius / width * 2
    ndc = _view_ndc(seen.points, camera, height, width, config.mode)
    every, visible = rasterize_point_subset(ndc, seen.visible, height, width, radius, config.points_per_pixel,
                                            config.chunk_points)
    ones = torch.ones_like(seen.visible, dtype=torch.float32)[:, None]
    coverage = _composite(every, torch.cat([seen.visible.float()[:, None], ones], 1), radius)
    colour = _composite(visible, torch.cat([seen.colors.float(), ones[: seen.colors.shape[0]]], 1), radius)
    render = render.to(colour.device)
    if config.mode == "official":
        warp_png = to_uint8(colour[:3])
        _, mask_png = pseudo_view_mask(to_uint8(coverage[0]), to_uint8(coverage[1]), kernels)
        mask = mask_png.double() / 255.0
        warp = warp_png.double() / 255.0
    else:
        weight = colour[3:]
        warp = torch.where(weight > 0, colour[:3] / weight.clamp(min=1e-12), torch.zeros_like(colour[:3])).double()
        mask = soft_mask(coverage[0], coverage[1], kernels)
    if config.blending == "poisson":
        blended = poisson_blend(warp[None], render.double()[None], mask[None, None])[0].clamp(0, 1)
    elif config.mode == "official":
        blended = to_uint8(blend(mask_png, warp_png, torch.round(render.double() * 255))).double() / 255.0
    else:
        blended = mask * warp + (1 - mask) * render.double()
    return blended.float(), mask[None].float(), warp.float()


def _composite(fragments: Fragments, features: Tensor, radius: float) -> Tensor:
    """Alpha-composite ``features (M, C)`` of the rasterised points -> ``(C, H, W)``."""
    return alpha_composite(fragments.idx, splat_alphas(fragments.dists2, radius), features)


def _official_focal(camera: Tensor) -> float:
    """The label's normalised focal ``fx``; refused when the pixels are not square
    or the centre is off-centre, which the released pixel grid cannot express."""
    _, K = unpack_label(camera[None].double())
    fx, fy, cx, cy = (float(v) for v in (K[0, 0, 0], K[0, 1, 1], K[0, 0, 2], K[0, 1, 2]))
    if abs(fx - fy) > 1e-6 or abs(cx - 0.5) > 1e-6 or abs(cy - 0.5) > 1e-6:
        raise PseudoViewError(f"the official pseudo-view mode needs square pixels and a centred principal point "
                              f"(fx {fx}, fy {fy}, centre ({cx}, {cy})); use mode 'clean'")
    return fx


def _check_inputs(image: Tensor, depth: Tensor, camera: Tensor, cameras: Tensor, renders: Tensor,
                  excluded: Tensor | None) -> None:
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be (3, H, W), got {tuple(image.shape)}")
    if depth.ndim != 2:
        raise ValueError(f"depth must be (R, R), got {tuple(depth.shape)}")
    if camera.shape != (25,) or cameras.ndim != 2 or cameras.shape[1] != 25:
        raise ValueError(f"camera must be (25,) and cameras (V, 25), got {tuple(camera.shape)} and "
                         f"{tuple(cameras.shape)}")
    if renders.shape != (cameras.shape[0], *image.shape):
        raise ValueError(f"renders must be (V, 3, H, W) = {(cameras.shape[0], *image.shape)}, "
                         f"got {tuple(renders.shape)}")
    if excluded is not None and excluded.shape != image.shape[-2:]:
        raise ValueError(f"excluded must be (H, W) = {tuple(image.shape[-2:])}, got {tuple(excluded.shape)}")
    for name, t in (("image", image), ("depth", depth), ("camera", camera), ("cameras", cameras),
                    ("renders", renders)):
        if not bool(torch.isfinite(t).all()):
            raise PseudoViewError(f"{name} holds NaN or inf")
    if not bool((depth > 0).any()):
        raise PseudoViewError("the depth map is empty (no positive depth)")


__all__ = [
    "PseudoViewConfig",
    "PseudoViewError",
    "PseudoViews",
    "SeenSurface",
    "make_pseudo_views",
    "seen_surface",
    "surface_mesh",
]
