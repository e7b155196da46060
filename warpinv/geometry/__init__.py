"""Shared geometry of the warp-based methods (HFGI3D's pseudo views, WarpGAN's warp): depth maps to
surfaces, in one place. Today: the depth map's file-format round trip and its triangulation
(:mod:`warpinv.geometry.mesh`); point sampling, visibility and splatting follow (issue 12)."""
from __future__ import annotations

from warpinv.geometry.mesh import (
    DEPTH_PNG_SCALE,
    camera_to_world,
    depth_to_mesh,
    pixel_intrinsics,
    quantize_depth_mm,
    resize_depth,
)

__all__ = ["DEPTH_PNG_SCALE", "camera_to_world", "depth_to_mesh", "pixel_intrinsics", "quantize_depth_mm",
           "resize_depth"]
