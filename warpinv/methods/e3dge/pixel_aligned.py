"""Pixel-aligned local features: sampled at the projection of every ray sample onto the input view and
added to the tri-plane features before the decoder, through the renderer's feature hook
(:data:`warpinv.backbone.renderer.FeatureHook`; one renderer, no second field).

For a ray sample ``x`` (world point) and the input camera ``c``:

1. ``x`` is projected into ``c`` (:func:`warpinv.cameras.project_points`, pixel centres at ``j + 0.5``) and the
   feature map is read there with ``grid_sample(bilinear, zeros padding, align_corners=False)``, as E3DGE reads
   its hourglass features;
2. occlusion: the feature only counts where the input view sees ``x``. ``in_image`` (E3DGE's released test):
   ``x`` is in front of the camera and projects inside the image. ``depth`` (ours, the default): additionally a
   soft depth test, ``sigmoid((d_surface + margin - |x - o|) / softness)``, where ``d_surface`` is the input
   view's rendered depth (distance along the unit ray, EG3D's convention) read at the projection; points
   hidden behind the visible surface (the back of the head, the far side of the nose) get no input-view
   detail;
3. the gated feature ``(C,)`` is added to each plane's feature, so the decoder's mean over the planes gains
   exactly that feature.

With an all-zero feature map the hook returns the plane features unchanged (bit for bit, same memory
layout), so the render equals the global-only render.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from warpinv.backbone.renderer import FeatureHook
from warpinv.cameras import pixels_to_grid, project_points
from warpinv.checks import check_choice, check_shape


@dataclass
class PixelAlignedFeatures:
    """The local branch's output for ``N`` inversions.

    Attributes:
        features: ``(N, C, S, S)`` feature map aligned with the input image.
        camera: ``(N, 25)`` the input view's EG3D label.
        depth: ``(N, 1, r, r)`` the input view's rendered depth (``visibility="depth"``), else ``None``.
        visibility: ``depth`` or ``in_image`` (module docstring).
        margin: depth test tolerance (world units).
        softness: depth test ramp width (world units).
    """

    features: Tensor
    camera: Tensor
    depth: Tensor | None = None
    visibility: str = "depth"
    margin: float = 0.02
    softness: float = 0.01

    def __post_init__(self) -> None:
        check_choice(self.visibility, ("depth", "in_image"), "visibility")
        check_shape(self.features, "N C S S", "features")
        check_shape(self.camera, f"{self.features.shape[0]} 25", "camera")
        if self.visibility == "depth":
            if self.depth is None:
                raise ValueError("visibility='depth' needs the input view's depth")
            check_shape(self.depth, f"{self.features.shape[0]} 1 R R", "depth")

    def expand(self, n: int) -> PixelAlignedFeatures:
        """The same features for ``n`` views of one inversion (``N`` must be 1)."""
        if self.features.shape[0] != 1:
            raise ValueError(f"expand needs one inversion, got {self.features.shape[0]}")
        depth = None if self.depth is None else self.depth.expand(n, -1, -1, -1)
        return PixelAlignedFeatures(self.features.expand(n, -1, -1, -1), self.camera.expand(n, -1), depth,
                                    self.visibility, self.margin, self.softness)

    def repeat_interleave(self, k: int) -> PixelAlignedFeatures:
        """Each inversion's features for ``k`` consecutive views (``N -> N k``)."""
        depth = None if self.depth is None else self.depth.repeat_interleave(k, 0)
        return PixelAlignedFeatures(self.features.repeat_interleave(k, 0), self.camera.repeat_interleave(k, 0),
                                    depth, self.visibility, self.margin, self.softness)


def sample_features(local: PixelAlignedFeatures, points: Tensor) -> Tensor:
    """Gated pixel-aligned features of world points.

    Args:
        local: the feature maps, cameras and depths of ``N`` views.
        points: ``(N, P, 3)`` world points.

    Returns:
        ``(N, P, C)``: the feature at each point's projection times its visibility (module docstring).

    Example:
        >>> from warpinv.cameras import yaw_pitch_camera
        >>> local = PixelAlignedFeatures(torch.ones(1, 2, 8, 8), yaw_pitch_camera(0.0, 0.0), visibility="in_image")
        >>> sample_features(local, torch.tensor([[[0.0, 0.0, 0.2], [5.0, 0.0, 0.2]]])).tolist()
        [[[1.0, 1.0], [0.0, 0.0]]]
    """
    size = local.features.shape[-1]
    xy, _, in_front = project_points(points, local.camera, size)
    grid = pixels_to_grid(xy, size).to(local.features.dtype)
    sampled = F.grid_sample(local.features, grid[:, None], mode="bilinear", padding_mode="zeros",
                            align_corners=False)[:, :, 0].transpose(1, 2)
    limit = torch.tensor([size, size], dtype=xy.dtype, device=xy.device)
    seen = (in_front & ((xy >= 0) & (xy <= limit)).all(dim=-1)).to(sampled.dtype)
    if local.visibility == "depth":
        assert local.depth is not None
        surface = F.grid_sample(local.depth.to(grid.dtype), grid[:, None], mode="bilinear", padding_mode="border",
                                align_corners=False)[:, 0, 0]
        distance = (points - local.camera[:, None, [3, 7, 11]].to(points.dtype)).norm(dim=-1)
        seen = seen * torch.sigmoid((surface + local.margin - distance) / local.softness).to(sampled.dtype)
    return sampled * seen[..., None]


def feature_hook(local: PixelAlignedFeatures) -> FeatureHook:
    """A renderer feature hook adding ``local``'s gated features to every plane's features.

    The sum is formed in the memory layout of :func:`warpinv.backbone.renderer.sample_from_planes`' output, so
    the decoder reduces it exactly as it reduces plain plane features.
    """

    def hook(coordinates: Tensor, features: Tensor) -> Tensor:
        add = sample_features(local, coordinates).to(features.dtype)  # (N, P, C)
        return (features.transpose(2, 3) + add.transpose(1, 2)[:, None]).transpose(2, 3)

    return hook
