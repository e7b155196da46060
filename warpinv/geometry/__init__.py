"""Shared geometry of the warp-based methods (HFGI3D's pseudo views, WarpGAN's warp): depth maps to
surfaces and what a camera sees of them, in one place. Today: the depth map's file-format round trip
and its triangulation (:mod:`warpinv.geometry.mesh`), projection, the z-buffer visibility test and
colour sampling (:mod:`warpinv.geometry.visibility`), the pseudo-view masks and blend
(:mod:`warpinv.geometry.masks`), and point splatting with PyTorch3D's semantics in pure PyTorch
(:mod:`warpinv.geometry.splat`), area-weighted surface sampling (:mod:`warpinv.geometry.sampling`),
Poisson blending (:mod:`warpinv.geometry.poisson`), HFGI3D's whole pseudo-view pipeline in its
``official`` and ``clean`` modes (:mod:`warpinv.geometry.pseudo_views`), and WarpGAN's forward warp
(summation splatting), hole-mask processing, inpainting input and mirrored branch, also in ``official``
and ``clean`` modes (:mod:`warpinv.geometry.forward_warping`)."""
from __future__ import annotations

from warpinv.geometry.forward_warping import (
    ForwardWarp,
    ForwardWarpConfig,
    draw_blur_sigma,
    forward_warp,
    hole_mask,
    hybrid_fill,
    inpaint_input,
    mirror_inputs,
    splat_summation,
)
from warpinv.geometry.masks import (
    MaskKernels,
    blend,
    erode,
    gaussian_blur,
    imageio_to_uint8,
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
from warpinv.geometry.pseudo_views import PseudoViewConfig, PseudoViewError, PseudoViews, make_pseudo_views
from warpinv.geometry.sampling import face_areas, sample_surface, sample_surface_faces
from warpinv.geometry.splat import (
    Fragments,
    alpha_composite,
    points_to_ndc,
    rasterize_point_subset,
    rasterize_points,
    splat_alphas,
)
from warpinv.geometry.visibility import Visibility, project_points, sample_colors, zbuffer_visibility

__all__ = [
    "DEPTH_PNG_SCALE",
    "ForwardWarp",
    "ForwardWarpConfig",
    "Fragments",
    "MaskKernels",
    "PseudoViewConfig",
    "PseudoViewError",
    "PseudoViews",
    "Visibility",
    "alpha_composite",
    "blend",
    "camera_to_world",
    "depth_jump_faces",
    "depth_to_mesh",
    "draw_blur_sigma",
    "erode",
    "face_areas",
    "forward_warp",
    "gaussian_blur",
    "grid_faces",
    "hole_mask",
    "hybrid_fill",
    "imageio_to_uint8",
    "inpaint_input",
    "make_pseudo_views",
    "mirror_inputs",
    "pixel_intrinsics",
    "points_to_ndc",
    "poisson_blend",
    "project_points",
    "pseudo_view_mask",
    "quantize_depth_mm",
    "rasterize_point_subset",
    "rasterize_points",
    "resize_depth",
    "sample_colors",
    "sample_surface",
    "sample_surface_faces",
    "soft_mask",
    "splat_alphas",
    "splat_summation",
    "to_uint8",
    "zbuffer_visibility",
]
