"""IBRNet: the pretrained image-based renderer behind the multi-view-consistency metric.

**What it is.** IBRNet (Wang et al., "IBRNet: Learning Multi-View Image-Based Rendering", CVPR 2021)
renders a novel view of a scene from a handful of posed source images, with no per-scene training.
A ResNet-34/U-Net feature network (``feature_net``) encodes every source image; for each sample on a
target ray, colours and features are gathered from the source views it projects into, pooled by a
small per-sample MLP, and a ray transformer along the ray predicts density. Colour is a learned
blend of the *raw source colours*. Two copies of the MLP exist: ``net_coarse`` (64 samples/ray) and
``net_fine`` (64 coarse + 64 importance samples).

**Provenance and licence.** Re-implemented for warpinv from googleinterns/IBRNet @ 41807b2
(Apache-2.0, Copyright 2020 Google LLC); no upstream code is copied. Module and parameter names
equal the released checkpoint ``model_255000.pth`` (from ``pretrained_model.zip``), so its three
network state dicts load with ``strict=True`` (:meth:`IBRNet.from_pretrained` unwraps the file).
The outputs reproduce golden fixtures produced by running the official code.

**How the benchmark uses it** (HFGI3D, after StyleNeRF's ``gen_ibrnet_metadata`` export): render
5 views of the inverted 3D face near the input pose (canonical + four extreme points of EG3D's
video trajectory), let IBRNet predict the *input* view from those 5 renders, and score the
prediction (PSNR etc.) against the input image or the method's own render there. A view-
inconsistent inversion cannot be re-rendered from its own side views, so the score drops. That
protocol lives in a wrapper on top of :meth:`IBRNet.render_rays`; this module is only the network.

**Conventions** (all as upstream):

- source images: ``(V, H, W, 3)`` RGB in [0, 1], no mean/std normalisation;
- cameras: 34 floats ``[H, W, K (4x4 row-major), cam2world (4x4 row-major)]``; K in pixels with
  integer pixel centres (ray through ``K^-1 [u, v, 1]``, no half-pixel offset); **OpenCV** axes
  (x right, y down, the camera looks along +z). EG3D's cam2world is already OpenCV; its
  normalised intrinsics convert as ``fx_px = fx * W``, ``cx_px = cx * W - 0.5``;
- rays: ``ray_o`` is the target camera centre and ``ray_d = R K^-1 [u, v, 1]`` is **not**
  normalised (camera-space z = 1), so depths are camera-space depths; see :func:`camera_rays`;
- ``depth_range``: camera-space ``[near, far]`` with ``0 < near < far``.

**Official render settings** (every released eval config; constructor defaults here):
``N_samples=64``, ``N_importance=64``, ``inv_uniform=True`` (coarse samples uniform in inverse
depth), ``white_bkgd=False`` (True only for DeepVoxels), ``chunk_size=4096``, ``det=True`` in
``eval.py`` (no stratified jitter, importance samples at ``linspace(0, 1, 64)``),
``coarse_feat_dim=fine_feat_dim=32``, ``anti_alias_pooling=1``, ``coarse_only=False``,
``num_source_views=10`` (training/eval default; the network accepts any number >= 2). Use the
**fine** output for the benchmark; coarse RGB of rays seen too little (``coarse_mask`` False) is
set to 1.0 as in upstream ``render_single_image``.

Example:
    >>> net = IBRNet.from_pretrained()                                      # doctest: +SKIP
    >>> feats = net.extract_features(src_rgbs)                              # doctest: +SKIP
    >>> ray_o, ray_d = camera_rays(tgt_camera, pixel_uv)                    # doctest: +SKIP
    >>> out = net.render_rays(ray_o, ray_d, src_rgbs, src_cameras, [2.25, 3.3], features=feats)  # doctest: +SKIP
    >>> out["fine_rgb"].shape                                               # doctest: +SKIP
    torch.Size([N, 3])
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from warpinv.checks import check_batch, check_min, check_range, check_shape
from warpinv.metrics.ibrnet_net import (
    IBRNetMLP,
    ResUNet,
    coarse_depths,
    fine_depths,
    gather_source_samples,
    volume_render,
)

__all__ = ["IBRNet", "IBRNetMLP", "ResUNet", "camera_rays", "unwrap_checkpoint", "CAMERA_DIM", "NETWORK_KEYS"]

#: Floats per camera vector: H, W, K (16), cam2world (16).
CAMERA_DIM = 34
#: Network entries of the released checkpoint (the rest is optimizer/scheduler state).
NETWORK_KEYS = ("net_coarse", "net_fine", "feature_net")

Features = tuple[Tensor, "Tensor | None"]


def camera_rays(camera: Tensor, pixel_uv: Tensor) -> tuple[Tensor, Tensor]:
    """IBRNet's rays through integer pixel positions of one camera (``RaySamplerSingleImage``).

    Args:
        camera: ``(34,)`` camera vector (OpenCV axes, K in pixels).
        pixel_uv: ``(N, 2)`` pixel (column, row) positions; integer pixels, no half-pixel offset.

    Returns:
        ``ray_o (N, 3)`` (the camera centre, repeated) and ``ray_d (N, 3)`` = ``R K^-1 [u, v, 1]``
        (not normalised; camera-space z = 1).
    """
    check_shape(camera, str(CAMERA_DIM), "camera", note=" = [H, W, K 4x4, cam2world 4x4]")
    check_shape(pixel_uv, "N 2", "pixel_uv", note=" of (column, row) positions")
    intrinsics = camera[2:18].reshape(4, 4)[:3, :3]
    cam2world = camera[18:34].reshape(4, 4)
    pixels = torch.cat([pixel_uv.to(camera.dtype), torch.ones_like(pixel_uv[:, :1], dtype=camera.dtype)], dim=1)
    ray_d = (cam2world[:3, :3] @ torch.inverse(intrinsics) @ pixels.t()).t()
    ray_o = cam2world[:3, 3].expand(pixel_uv.shape[0], 3).contiguous()
    return ray_o, ray_d


def unwrap_checkpoint(checkpoint: Mapping[str, Any]) -> dict[str, Tensor]:
    """Flat ``feature_net.* / net_coarse.* / net_fine.*`` state dict from a loaded checkpoint.

    Accepts the released layout (``{'optimizer', 'scheduler', 'net_coarse', 'feature_net',
    'net_fine'}``, each network a plain state dict; optimizer and scheduler are dropped) or an
    already flat state dict. A ``module.`` prefix (DataParallel) is stripped.
    """
    networks = [name for name in NETWORK_KEYS if isinstance(checkpoint.get(name), Mapping)]
    if {"net_coarse", "feature_net"} <= set(networks):  # net_fine is absent for coarse-only models
        flat = {f"{name}.{key}": value for name in networks for key, value in checkpoint[name].items()}
    elif any(str(key).startswith(f"{name}.") for key in checkpoint for name in NETWORK_KEYS):
        flat = dict(checkpoint)
    else:
        raise ValueError(
            f"not an IBRNet checkpoint: expected entries {NETWORK_KEYS} (released layout) or a flat state dict, "
            f"got keys {sorted(map(str, checkpoint))[:8]}"
        )
    return {key.replace(".module.", ".", 1) if ".module." in key else key: value for key, value in flat.items()}


class IBRNet(nn.Module):
    """IBRNet feature network + coarse and fine ray networks, with the official renderer.

    Args:
        coarse_feat_dim: feature channels for ``net_coarse`` (released: 32).
        fine_feat_dim: feature channels for ``net_fine`` (released: 32).
        n_samples: coarse samples per ray (``N_samples``, released 64). Fixed by the network: the
            coarse positional table has this length.
        n_importance: importance samples per ray (``N_importance``, released 64); ``net_fine``
            sees ``n_samples + n_importance``.
        anti_alias_pooling: view-pooling weights from ray-direction similarity (released: 1).
        coarse_only: no fine network (released: False).
        inv_uniform: coarse samples uniform in inverse depth (released eval configs: True).
        white_bkgd: composite on white (released: False except DeepVoxels).
        num_source_views: number of source views used in training/eval upstream (10). Recorded
            for reference only; the network accepts any ``V >= 2``.

    State dict: ``net_coarse.*``, ``net_fine.*``, ``feature_net.*`` exactly as in
    ``model_255000.pth`` (182 tensors for the released config).
    """

    def __init__(
        self,
        coarse_feat_dim: int = 32,
        fine_feat_dim: int = 32,
        n_samples: int = 64,
        n_importance: int = 64,
        anti_alias_pooling: bool = True,
        coarse_only: bool = False,
        inv_uniform: bool = True,
        white_bkgd: bool = False,
        num_source_views: int = 10,
    ) -> None:
        super().__init__()
        self.config = dict(
            coarse_feat_dim=coarse_feat_dim, fine_feat_dim=fine_feat_dim, n_samples=n_samples,
            n_importance=n_importance, anti_alias_pooling=bool(anti_alias_pooling), coarse_only=coarse_only,
            inv_uniform=inv_uniform, white_bkgd=white_bkgd, num_source_views=num_source_views,
        )
        self.n_samples = n_samples
        self.n_importance = 0 if coarse_only else n_importance
        self.inv_uniform = inv_uniform
        self.white_bkgd = white_bkgd
        self.num_source_views = num_source_views
        # Registration order = the manifest's key order (coarse, fine, feature).
        self.net_coarse = IBRNetMLP(coarse_feat_dim, n_samples, anti_alias_pooling)
        self.net_fine = None if coarse_only else IBRNetMLP(fine_feat_dim, n_samples + n_importance, anti_alias_pooling)
        self.feature_net = ResUNet(coarse_feat_dim, fine_feat_dim, coarse_only)

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str] | None = None, **config: Any) -> IBRNet:
        """The released model: ``model_255000.pth`` from ``path`` or ``warpinv.weights.resolve("ibrnet")``.

        Loaded with ``torch.load(map_location="cpu", weights_only=True)`` (never plain pickle), the
        three network entries unwrapped, ``strict=True``; returned in eval mode.
        """
        if path is None:
            from warpinv.weights import resolve

            path = resolve("ibrnet")
        checkpoint = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
        if not isinstance(checkpoint, Mapping):
            raise ValueError(f"{path}: expected a dict checkpoint, got {type(checkpoint).__name__}")
        net = cls(**config)
        net.load_state_dict(unwrap_checkpoint(checkpoint), strict=True)
        return net.eval()

    # ------------------------------------------------------------------ features

    def _reference(self) -> Tensor:
        return self.net_coarse.ray_dir_fc[0].weight

    def extract_features(self, src_rgbs: Tensor) -> Features:
        """Feature maps of the source images.

        Args:
            src_rgbs: ``(V, H, W, 3)`` RGB in [0, 1].

        Returns:
            ``(coarse (V, coarse_feat_dim, h, w), fine (V, fine_feat_dim, h, w))`` with ``h, w`` about ``H/4, W/4``
            ``fine`` is ``None`` for a coarse-only model.
        """
        src_rgbs = self._check_rgbs(src_rgbs)
        return self.feature_net(src_rgbs.permute(0, 3, 1, 2))

    # ------------------------------------------------------------------ rendering

    def render_rays(
        self,
        ray_o: Tensor,
        ray_d: Tensor,
        src_rgbs: Tensor,
        src_cameras: Tensor,
        depth_range: Tensor | Sequence[float],
        deterministic: bool = True,
        *,
        features: Features | None = None,
        chunk_size: int = 4096,
        generator: torch.Generator | None = None,
        fill_invalid_coarse: bool = True,
        return_intermediates: bool = False,
    ) -> dict[str, Tensor]:
        """Render target rays from the source views (upstream ``render_single_image`` on a ray list).

        Args:
            ray_o: ``(N, 3)`` ray origins; must be the target camera centre (used as the query
                viewpoint of the direction features).
            ray_d: ``(N, 3)`` directions ``R K^-1 [u, v, 1]`` (unnormalised; see :func:`camera_rays`).
            src_rgbs: ``(V, H, W, 3)`` source images in [0, 1], ``V >= 2``.
            src_cameras: ``(V, 34)`` source cameras (H, W must equal the images').
            depth_range: ``(2,)`` or ``(1, 2)`` camera-space ``[near, far]``, ``0 < near < far``.
            deterministic: ``True`` (the protocol, upstream ``det=True``): no jitter, importance
                samples at ``linspace(0, 1)``. ``False``: stratified jitter and random importance
                samples drawn from ``generator``.
            features: output of :meth:`extract_features` for these ``src_rgbs``, to skip recomputing.
            chunk_size: rays per chunk (upstream default 4096); results do not depend on it.
            generator: random source for ``deterministic=False``.
            fill_invalid_coarse: set ``coarse_rgb`` of rays whose ``coarse_mask`` is False to 1.0,
                as upstream ``render_single_image`` does (fine RGB is never filled).
            return_intermediates: also return ``{coarse,fine}_{raw,z_vals,weights,alpha}``.

        Returns:
            ``coarse_rgb (N, 3)``, ``coarse_depth (N,)``, ``coarse_mask (N,)`` bool and the same
            ``fine_*`` keys unless the model is coarse-only. A ray's mask is set when more than 8
            of its samples are seen by at least two source views.
        """
        ray_o, ray_d = self._check_rays(ray_o, ray_d)
        src_rgbs = self._check_rgbs(src_rgbs)
        src_cameras = self._check_cameras(src_cameras, src_rgbs)
        near, far = self._check_depth_range(depth_range)
        check_min(chunk_size, 1, "chunk_size")
        if features is None:
            features = self.feature_net(src_rgbs.permute(0, 3, 1, 2))
        features = self._check_features(features, src_rgbs.shape[0])
        src_nchw = src_rgbs.permute(0, 3, 1, 2)

        chunks = [
            self._render_chunk(ray_o[i : i + chunk_size], ray_d[i : i + chunk_size], src_nchw, src_cameras,
                               near, far, features, deterministic, generator, return_intermediates)
            for i in range(0, ray_o.shape[0], chunk_size)
        ]
        out = {key: torch.cat([chunk[key] for chunk in chunks], dim=0) for key in chunks[0]}
        if fill_invalid_coarse:
            out["coarse_rgb"] = out["coarse_rgb"].masked_fill(~out["coarse_mask"][:, None], 1.0)
        return out

    def _render_chunk(
        self,
        ray_o: Tensor,
        ray_d: Tensor,
        src_nchw: Tensor,
        src_cameras: Tensor,
        near: Tensor,
        far: Tensor,
        features: Features,
        deterministic: bool,
        generator: torch.Generator | None,
        intermediates: bool,
    ) -> dict[str, Tensor]:
        z_vals = coarse_depths(near, far, ray_o.shape[0], self.n_samples, self.inv_uniform, deterministic, generator)
        coarse = self._shade(self.net_coarse, ray_o, ray_d, z_vals, src_nchw, src_cameras, features[0])
        out = _prefixed("coarse", coarse, intermediates)
        if self.net_fine is not None:
            z_fine = fine_depths(z_vals, coarse["weights"], self.n_importance, self.inv_uniform, deterministic,
                                 generator)
            fine = self._shade(self.net_fine, ray_o, ray_d, z_fine, src_nchw, src_cameras, features[1])
            out.update(_prefixed("fine", fine, intermediates))
        return out

    def _shade(
        self,
        mlp: IBRNetMLP,
        ray_o: Tensor,
        ray_d: Tensor,
        z_vals: Tensor,
        src_nchw: Tensor,
        src_cameras: Tensor,
        featmaps: Tensor,
    ) -> dict[str, Tensor]:
        """Project, run one ray network and composite: ``z_vals (R, S)`` -> :func:`volume_render` dict + raw."""
        pts = z_vals.unsqueeze(2) * ray_d.unsqueeze(1) + ray_o.unsqueeze(1)
        rgb_feat, ray_diff, mask = gather_source_samples(pts, ray_o, src_nchw, src_cameras, featmaps)
        raw = mlp(rgb_feat, ray_diff, mask)
        result = volume_render(raw, z_vals, mask[..., 0].sum(dim=2) > 1, self.white_bkgd)
        result["raw"] = raw
        return result

    # ------------------------------------------------------------------ input checks

    def _as_model_tensor(self, x: Tensor | Sequence[float], name: str) -> Tensor:
        ref = self._reference()
        if not isinstance(x, Tensor):
            x = torch.as_tensor(x)
        if not (x.is_floating_point() or name == "depth_range"):
            raise ValueError(f"{name} must be a floating-point tensor, got {x.dtype}")
        return x.to(device=ref.device, dtype=ref.dtype)

    def _check_rays(self, ray_o: Tensor, ray_d: Tensor) -> tuple[Tensor, Tensor]:
        check_shape(ray_o, "N 3", "ray_o")
        check_shape(ray_d, "N 3", "ray_d")
        check_batch(ray_d, ray_o.shape[0], "ray_d", "ray_o")
        if ray_o.shape[0] == 0:
            raise ValueError("no rays given (N = 0)")
        return self._as_model_tensor(ray_o, "ray_o"), self._as_model_tensor(ray_d, "ray_d")

    def _check_rgbs(self, src_rgbs: Tensor) -> Tensor:
        check_shape(src_rgbs, "V H W 3", "src_rgbs", note=" of channels-last RGB")
        if src_rgbs.shape[0] < 2:
            raise ValueError(f"IBRNet needs at least 2 source views, got {src_rgbs.shape[0]}")
        src_rgbs = self._as_model_tensor(src_rgbs, "src_rgbs")
        check_range(src_rgbs, "src_rgbs", (0.0, 1.0))  # IBRNet uses no normalisation; NaN fails too
        return src_rgbs

    def _check_cameras(self, src_cameras: Tensor, src_rgbs: Tensor) -> Tensor:
        n_views, height, width = src_rgbs.shape[:3]
        check_shape(src_cameras, f"V {CAMERA_DIM}", "src_cameras", sizes={"V": n_views},
                    note=" = [H, W, K 4x4, cam2world 4x4] per view")
        src_cameras = self._as_model_tensor(src_cameras, "src_cameras")
        sizes = src_cameras[:, :2]
        if not bool(((sizes[:, 0] == height) & (sizes[:, 1] == width)).all()):
            raise ValueError(f"camera image sizes {sizes.tolist()} differ from src_rgbs' H={height}, W={width}")
        return src_cameras

    def _check_depth_range(self, depth_range: Tensor | Sequence[float]) -> tuple[Tensor, Tensor]:
        depth = self._as_model_tensor(depth_range, "depth_range")
        if depth.shape not in ((2,), (1, 2)):
            raise ValueError(f"depth_range must be (2,) or (1, 2) [near, far], got {tuple(depth.shape)}")
        near, far = depth.reshape(2)
        if not (0 < float(near) < float(far)):
            raise ValueError(f"depth_range needs 0 < near < far, got near={float(near)}, far={float(far)}")
        return near, far

    def _check_features(self, features: Features, n_views: int) -> Features:
        if not isinstance(features, (tuple, list)) or len(features) != 2:
            raise ValueError("features must be the (coarse, fine) pair returned by extract_features")
        coarse, fine = features
        expected = [("coarse", coarse, self.config["coarse_feat_dim"])]
        if self.net_fine is not None:
            expected.append(("fine", fine, self.config["fine_feat_dim"]))
        for name, fmap, channels in expected:
            if not isinstance(fmap, Tensor) or fmap.ndim != 4 or fmap.shape[:2] != (n_views, channels):
                shape = tuple(fmap.shape) if isinstance(fmap, Tensor) else type(fmap).__name__
                raise ValueError(f"{name} features must be (V={n_views}, {channels}, h, w), got {shape}")
        ref = self._reference()
        return tuple(f.to(device=ref.device, dtype=ref.dtype) if f is not None else None for f in features)


def _prefixed(prefix: str, result: dict[str, Tensor], intermediates: bool) -> dict[str, Tensor]:
    keys = ("rgb", "depth", "mask") + (("raw", "z_vals", "weights", "alpha") if intermediates else ())
    return {f"{prefix}_{key}": result[key] for key in keys}
