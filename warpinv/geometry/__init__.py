"""Shared geometry of the warp-based methods (HFGI3D's pseudo views, WarpGAN's warp): depth maps to
surfaces and what a camera sees of them, in one place. Today: the depth map's file-format round trip
and its triangulation (:mod:`warpinv.geometry.mesh`), projection, the z-buffer visibility test and
colour sampling (:mod:`warpinv.geometry.visibility`), the pseudo-view masks and blend
(:mod:`warpinv.geometry.masks`), and point splatting with PyTorch3D's semantics in pure PyTorch
(:mod:`warpinv.geometry.splat`); surface sampling and the pseudo-view pipeline follow (issue 12)."""
from __future__ import annotations

from warpinv.geometry.masks import blend, erode, gaussian_blur, imageio_to_uint8, pseudo_view_mask, to_uint8
from warpinv.geometry.mesh import (
    DEPTH_PNG_SCALE,
    camera_to_world,
    depth_to_mesh,
    pixel_intrinsics,
    quantize_depth_mm,
    resize_depth,
)
from warpinv.geometry.splat import Fragments, alpha_composite, points_to_ndc, rasterize_points, splat_alphas
from warpinv.geometry.visibility import Visibility, project_points, sample_colors, zbuffer_visibility

__all__ = [
    "DEPTH_PNG_SCALE",
    "Fragments",
    "Visibility",
    "alpha_composite",
    "blend",
    "camera_to_world",
    "depth_to_mesh",
    "erode",
    "gaussian_blur",
    "imageio_to_uint8",
    "pixel_intrinsics",
    "points_to_ndc",
    "project_points",
    "pseudo_view_mask",
    "quantize_depth_mm",
    "rasterize_points",
    "resize_depth",
    "sample_colors",
    "splat_alphas",
    "to_uint8",
    "zbuffer_visibility",
]
