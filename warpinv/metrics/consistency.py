"""Multi-view consistency of one inversion: the IBRNet protocol and a weight-free reprojection score.

Both metrics look at renders of the inverted 3D face, which they get from a :class:`RenderCache`
(one per image), so views shared by several metrics (and by the harness) are rendered once::

    renders = RenderCache.from_inversion(G, inversion)      # deterministic, noise_mode="const"
    ibr = build_metric("ibrnet_consistency")               # or allow_random=True
    ibr(renders, item.camera, item.image, item.mask)       # {"ibrnet_psnr": ..., "ibrnet_ssim": ..., ...}
    build_metric("reprojection_consistency")(renders, item.camera)   # {"reproj_psnr": ..., "reproj_covisible": ...}

**IBRNet consistency** (``ibrnet_consistency``; HFGI3D Tab. 3, after StyleNeRF's
``gen_ibrnet_metadata``; metrics.md §9):

1. render the 5 source views :func:`warpinv.cameras.ibrnet_views` (canonical yaw 0 / pitch 0, and
   the four extreme points of EG3D's video orbit: yaw +-0.35, pitch -0.05 +- 0.25) at the render
   resolution (the generator's ``image``), clamp to [-1, 1] and map to [0, 1] (IBRNet's input);
2. convert their EG3D labels with :func:`warpinv.cameras.to_ibrnet_camera` (cam2world is already
   OpenCV; ``fx_px = fx W``, ``cx_px = cx W - 0.5``: IBRNet puts pixel centres on integers);
3. predict the input camera's view with the released IBRNet (``model_255000.pth``, official render
   settings, ``det=True``): rays from :func:`warpinv.cameras.generate_rays` (pixel centres, as
   EG3D) rescaled to camera-space z = 1 as IBRNet's own rays, so its depths are camera-space depths;
   depth range = the generator's ``[ray_start, ray_end]`` (FFHQ: [2.25, 3.3]; along unit rays in
   EG3D, within 1.4 % of camera-space depth over EG3D's field of view); fine output;
4. score the prediction against the **input image** (default, the literal HFGI3D reading) or the
   method's own render at the input camera (``reference="render"``: pure 3D consistency, the
   metrics.md §9.1 recommendation) with PSNR, SSIM (valid region, ``tf.image.ssim`` as IBRNet's
   eval) and LPIPS-VGG (IBRNet's eval), at the render resolution unless ``resolution`` is given.
   ``ibrnet_coverage`` is the fraction of target rays IBRNet marks as seen (> 8 samples seen by
   >= 2 source views).

Cost: IBRNet evaluates 192 samples x 5 views per ray; on 2 CPU cores about 13 ms per ray, i.e.
~3.5 min at 128x128 and ~1 h at 512x512 (minutes on a GPU). Rays are rendered in chunks
(``chunk_size``; 2048 rays need about 3 GB), so any resolution fits in memory.

**Reprojection consistency** (``reprojection_consistency``, no weights): render the views (default:
the same 5) with depth, warp each back into the input camera with
:func:`warpinv.cameras.backward_warp` through the input view's rendered depth, keeping pixels that
land inside the view, in front of it and not occluded in it (the point's distance may exceed the
view's own depth by at most ``occlusion_tol``), and compare with the input-view render. Reports the
PSNR over all co-visible pixels of all views together (``reproj_psnr``; NaN when none) and the mean
co-visible fraction (``reproj_covisible``). Scored on the neural renders (``image_raw``, at the
depth's resolution) by default; ``image="image"`` scores the super-resolved output with the depth
upsampled bilinearly.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from warpinv.cameras import (
    backward_warp,
    check_label_shape,
    generate_rays,
    ibrnet_views,
    to_ibrnet_camera,
    unpack_label,
)
from warpinv.checks import check_choice, check_min, check_shape, check_weights_or_random
from warpinv.metrics.base import Metric, MetricInfo, check_images, check_mask, register_metric, resize
from warpinv.metrics.ibrnet import IBRNet
from warpinv.metrics.image import PSNR, SSIM
from warpinv.metrics.perceptual import LPIPSMetric

__all__ = [
    "DEFAULT_DEPTH_RANGE",
    "IBRNetConsistency",
    "RenderCache",
    "ReprojectionConsistency",
    "ibrnet_target_rays",
]

#: EG3D FFHQ ``[ray_start, ray_end]``, used when neither the metric nor the render cache names one.
DEFAULT_DEPTH_RANGE = (2.25, 3.3)
#: Smallest IBRNet prediction LPIPS-VGG (four 2x poolings) and the valid-region SSIM can score.
MIN_RESOLUTION = 16
#: Render outputs a cache keeps (the planes and per-sample weights are dropped).
CACHED_KEYS = ("image", "image_raw", "image_depth", "weight_sum")

Render = Callable[[Tensor], Mapping[str, Tensor]]


class RenderCache:
    """Renders of one inversion, computed once per set of cameras.

    Args:
        render: ``cameras (V, 25) -> {"image": (V, 3, H, W), "image_raw": (V, 3, r, r),
            "image_depth": (V, 1, r, r), ...}`` (EG3D synthesis outputs); called without gradients.
        ray_range: the generator's ``(ray_start, ray_end)``; the IBRNet depth range by default.

    Calling the cache with cameras returns the stored outputs (``CACHED_KEYS``) when the same
    cameras (same values, shape and dtype) were rendered before. :meth:`add` stores renders made
    elsewhere (e.g. the harness's input-view render).
    """

    def __init__(self, render: Render, *, ray_range: tuple[float, float] | None = None) -> None:
        self._render = render
        self.ray_range = ray_range
        self._store: dict[tuple[Any, ...], dict[str, Tensor]] = {}

    @classmethod
    def from_inversion(cls, G: torch.nn.Module, inversion: Any,
                       neural_rendering_resolution: int | None = None) -> RenderCache:
        """A cache rendering a plain latent inversion (``ws`` plus its ``generator_delta``) with
        :class:`~warpinv.methods.rendering.LatentRenderer`: deterministic, ``noise_mode="const"``;
        ``ray_range`` from ``G.rendering_kwargs``.

        A method that renders its inversions its own way is cached with
        ``RenderCache(method.renderer(inversion), ray_range=...)`` instead, as the harness does.
        Note that passing ``neural_rendering_resolution`` sets ``G.neural_rendering_resolution`` (an
        official side effect of EG3D's synthesis).
        """
        from warpinv.methods.rendering import LatentRenderer  # lazy: methods build on metrics

        rendering = getattr(G, "rendering_kwargs", {})
        ray_range = (float(rendering["ray_start"]), float(rendering["ray_end"])) if "ray_start" in rendering else None
        return cls(LatentRenderer(G, inversion, neural_rendering_resolution=neural_rendering_resolution),
                   ray_range=ray_range)

    @staticmethod
    def _key(cameras: Tensor) -> tuple[Any, ...]:
        return tuple(cameras.shape), str(cameras.dtype), cameras.detach().cpu().numpy().tobytes()

    def __call__(self, cameras: Tensor) -> dict[str, Tensor]:
        check_label_shape(cameras, "cameras")
        key = self._key(cameras)
        if key not in self._store:
            with torch.no_grad():
                self.add(cameras, self._render(cameras))
        return self._store[key]

    def add(self, cameras: Tensor, outputs: Mapping[str, Tensor]) -> None:
        """Store renders of ``cameras`` (needs ``image`` and ``image_depth``)."""
        check_label_shape(cameras, "cameras")
        missing = [k for k in ("image", "image_depth") if k not in outputs]
        if missing:
            raise ValueError(f"renders lack {missing}; expected EG3D synthesis outputs {CACHED_KEYS}")
        for name in CACHED_KEYS:
            if name in outputs and outputs[name].shape[0] != cameras.shape[0]:
                raise ValueError(f"render output {name!r} has {outputs[name].shape[0]} views for "
                                 f"{cameras.shape[0]} cameras")
        self._store[self._key(cameras)] = {k: outputs[k].detach() for k in CACHED_KEYS if k in outputs}


def _check_camera(camera: Tensor) -> Tensor:
    """The input view's label as ``(1, 25)`` (a bare ``(25,)`` label is accepted)."""
    if isinstance(camera, Tensor) and camera.shape == (25,):
        camera = camera[None]
    check_shape(camera, "1 25", "camera", note=" (the input view's EG3D label)")
    return camera


def _views(views: Tensor | None) -> Tensor:
    views = ibrnet_views() if views is None else views
    check_label_shape(views, "views")
    return views


def ibrnet_target_rays(camera: Tensor, resolution: int) -> tuple[Tensor, Tensor]:
    """IBRNet rays of every pixel of an EG3D camera at ``resolution x resolution``.

    :func:`warpinv.cameras.generate_rays` (EG3D's pixel centres, row-major) with the unit directions
    rescaled so their camera-space z is 1, IBRNet's convention; equal to
    ``camera_rays(to_ibrnet_camera(c, R, R)[0], integer pixel uv)``.

    Returns:
        ``ray_o (R*R, 3)``, ``ray_d (R*R, 3)``.
    """
    cam2world, intrinsics = unpack_label(_check_camera(camera))
    origins, directions = generate_rays(cam2world, intrinsics, resolution)
    axis = cam2world[:, None, :3, 2]  # the optical axis (OpenCV +z) in world coordinates
    directions = directions / (directions * axis).sum(-1, keepdim=True)
    return origins[0], directions[0]


def _output(name: str, higher: bool, value_range: tuple[float, float], protocol: str, comparable_to: str,
            unit: str = "", weights: tuple[str, ...] = (), weight_names: tuple[str, ...] = ()) -> MetricInfo:
    return MetricInfo(name=name, higher_is_better=higher, value_range=value_range, resolution=None,
                      input_range=(-1.0, 1.0), weights=weights, protocol=protocol, comparable_to=comparable_to,
                      weight_names=weight_names, kind="multiview", unit=unit)


_IBR_WEIGHTS = ("model_255000.pth", "vgg16-397923af.pth", "vgg.pth (LPIPS v0.1 head, in the lpips wheel)")
_IBR_WEIGHT_NAMES = ("ibrnet", "torchvision-vgg16", "lpips-vgg-v0.1")
_IBR_PROTOCOL = (
    "IBRNet (model_255000.pth, official settings: 64 + 64 samples, inverse-depth coarse sampling, det=True, fine "
    "output) predicts the input camera's view from 5 renders of the inversion (canonical + EG3D orbit extremes yaw "
    "+-0.35, pitch -0.05+-0.25; EG3D cameras as IBRNet's: OpenCV cam2world unchanged, fx*W, cx*W-0.5; depth range "
    "[ray_start, ray_end]); scored against the input image (default) or the method's input-view render "
    "(reference='render') at the render resolution unless another is set."
)
_IBR_COMPARABLE = ("HFGI3D Tab. 3 IBRNet PSNR/SSIM/LPIPS and the '3D consistency' column of HFGI3D Tab. 1 (protocol "
                   "reconstructed from the paper text: HFGI3D publishes no eval code; scoring resolution and "
                   "reference unconfirmed).")


class IBRNetConsistency(Metric):
    """HFGI3D's IBRNet multi-view-consistency metric for one inversion.

    Args:
        weights: path of ``model_255000.pth``; ``None`` resolves ``ibrnet`` with the weights registry.
        allow_random: seeded random IBRNet and LPIPS trunk (numbers meaningless; ``random_weights``).
        seed: seed of the random weights.
        reference: ``"input"`` (score against the input image) or ``"render"`` (against the method's
            own render at the input camera).
        resolution: side of the predicted input view; ``None`` = the render resolution.
        views: ``(V, 25)`` source cameras; default :func:`warpinv.cameras.ibrnet_views`.
        depth_range: IBRNet ``[near, far]``; default the render cache's ``ray_range``, else
            ``DEFAULT_DEPTH_RANGE``.
        chunk_size: rays per IBRNet chunk (memory ~1.5 GB per 1024 rays; results do not depend on it).
        lpips_weights: path of the VGG16 trunk for LPIPS-VGG (default: the registry).

    Call: ``metric(renders, camera, target=None, mask=None)`` with a :class:`RenderCache`, the input
    camera ``(1, 25)``, the input image ``(1, 3, H, W)`` in [-1, 1] (required for
    ``reference="input"``) and its mask -> ``{"ibrnet_psnr", "ibrnet_ssim", "ibrnet_lpips",
    "ibrnet_coverage"}`` floats. :meth:`predict` returns the IBRNet image itself and :meth:`score`
    scores such a prediction (predict once when the image is kept too).
    """

    info = MetricInfo(
        name="ibrnet_consistency",
        higher_is_better=True,
        value_range=(0.0, float("inf")),
        resolution=None,
        input_range=(-1.0, 1.0),
        weights=_IBR_WEIGHTS,
        weight_names=_IBR_WEIGHT_NAMES,
        protocol=_IBR_PROTOCOL,
        comparable_to=_IBR_COMPARABLE,
        kind="multiview",
        outputs=(
            _output("ibrnet_psnr", True, (0.0, float("inf")), "PSNR (dB, [0, 1] images, per image) of the IBRNet "
                    "prediction. " + _IBR_PROTOCOL, _IBR_COMPARABLE, "dB", _IBR_WEIGHTS[:1], _IBR_WEIGHT_NAMES[:1]),
            _output("ibrnet_ssim", True, (-1.0, 1.0), "SSIM, valid region (tf.image.ssim as IBRNet eval.py), of the "
                    "IBRNet prediction. " + _IBR_PROTOCOL, _IBR_COMPARABLE, "", _IBR_WEIGHTS[:1],
                    _IBR_WEIGHT_NAMES[:1]),
            _output("ibrnet_lpips", False, (0.0, float("inf")), "LPIPS-VGG v0.1 (IBRNet eval.py) of the IBRNet "
                    "prediction, [-1, 1] inputs. " + _IBR_PROTOCOL, _IBR_COMPARABLE, "", _IBR_WEIGHTS,
                    _IBR_WEIGHT_NAMES),
            _output("ibrnet_coverage", True, (0.0, 1.0), "Fraction of predicted rays with IBRNet's fine mask set "
                    "(more than 8 samples seen by >= 2 source views); a diagnostic. " + _IBR_PROTOCOL,
                    "warpinv diagnostic, no paper reports it.", "", _IBR_WEIGHTS[:1], _IBR_WEIGHT_NAMES[:1]),
        ),
    )

    def __init__(self, weights: str | os.PathLike[str] | None = None, allow_random: bool = False, seed: int = 0, *,
                 reference: Literal["input", "render"] = "input", resolution: int | None = None,
                 views: Tensor | None = None, depth_range: tuple[float, float] | None = None,
                 chunk_size: int = 2048, lpips_weights: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        check_choice(reference, {"input": "the input image", "render": "the method's render"}, "reference")
        if resolution is not None and (not isinstance(resolution, int) or resolution < MIN_RESOLUTION):
            raise ValueError(f"resolution must be None (render resolution) or an int >= {MIN_RESOLUTION}, "
                             f"got {resolution!r}")
        check_min(chunk_size, 1, "chunk_size")
        check_weights_or_random(weights, allow_random)
        if depth_range is not None and not 0 < depth_range[0] < depth_range[1]:
            raise ValueError(f"depth_range must be (near, far) with 0 < near < far, got {depth_range}")
        self.reference, self.resolution, self.chunk_size = reference, resolution, chunk_size
        self.depth_range = depth_range
        self.views = _views(views)
        self.info = replace(type(self).info, resolution=resolution)
        if allow_random:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                self.net = IBRNet()
            self.source = f"random weights (seed {seed})"
        else:
            from warpinv.weights import resolve

            path = resolve("ibrnet", path=weights)
            self.net = IBRNet.from_pretrained(path)
            self.source = str(path)
            self.weight_files = {"ibrnet": str(path)}
        self.net.eval().requires_grad_(False)
        self.psnr = PSNR(resolution=None)
        self.ssim = SSIM("valid", resolution=None)
        self.lpips = LPIPSMetric("vgg", weights=lpips_weights, allow_random=allow_random, seed=seed, resolution=None)
        self.random_weights = allow_random
        self.weight_files.update(self.lpips.weight_files)

    @torch.no_grad()
    def predict(self, renders: RenderCache, camera: Tensor) -> dict[str, Tensor]:
        """IBRNet's prediction of the input view from the source renders.

        Returns:
            ``image (1, 3, r, r)`` in [-1, 1], ``depth (1, 1, r, r)`` (camera-space), ``mask (1, 1, r, r)``
            bool (IBRNet's fine mask) and ``coverage`` (its mean).
        """
        camera = _check_camera(camera)
        device = self.net.net_coarse.ray_dir_fc[0].weight.device
        views = self.views.to(device=camera.device, dtype=camera.dtype)
        images = check_images(renders(views)["image"], "source renders", clamp=True)
        height, width = images.shape[-2:]
        size = self.resolution or height
        rgbs = ((images + 1) / 2).permute(0, 2, 3, 1).to(device)
        cameras = to_ibrnet_camera(views, height, width).to(device)
        ray_o, ray_d = ibrnet_target_rays(camera, size)
        depth_range = self.depth_range or renders.ray_range or DEFAULT_DEPTH_RANGE
        out = self.net.render_rays(ray_o.to(device), ray_d.to(device), rgbs, cameras, list(depth_range),
                                   deterministic=True, chunk_size=self.chunk_size)
        image = out["fine_rgb"].clamp(0, 1).reshape(size, size, 3).permute(2, 0, 1)[None] * 2 - 1
        mask = out["fine_mask"].reshape(1, 1, size, size)
        return {"image": image, "depth": out["fine_depth"].reshape(1, 1, size, size), "mask": mask,
                "coverage": mask.float().mean()}

    def forward(self, renders: RenderCache, camera: Tensor, target: Tensor | None = None,
                mask: Tensor | None = None) -> dict[str, float]:
        if self.reference == "input":
            self._check_target(target, mask)  # before the expensive prediction
        return self.score(self.predict(renders, camera), renders, camera, target, mask)

    def _check_target(self, target: Tensor | None, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
        if target is None:
            raise ValueError("reference='input' needs the input image (target); or build with reference='render'")
        target = check_images(target, "target")
        check_shape(target, "1 3 H W", "target", note=" (one image)")
        return target, check_mask(mask, target)

    @torch.no_grad()
    def score(self, prediction: Mapping[str, Tensor], renders: RenderCache, camera: Tensor,
              target: Tensor | None = None, mask: Tensor | None = None) -> dict[str, float]:
        """The result columns of a :meth:`predict` output (so a caller that keeps the image predicts once)."""
        pred = prediction["image"]
        size = pred.shape[-1]
        if self.reference == "render":
            reference, mask = renders(_check_camera(camera))["image"].clamp(-1, 1), None
        else:
            reference, mask = self._check_target(target, mask)
        reference = resize(reference.to(pred), size)
        mask = None if mask is None else resize(mask.to(pred), size).clamp(0, 1)
        return {
            "ibrnet_psnr": self.psnr(pred, reference, mask).item(),
            "ibrnet_ssim": self.ssim(pred, reference, mask).item(),
            "ibrnet_lpips": self.lpips(pred, reference, mask).item(),
            "ibrnet_coverage": prediction["coverage"].item(),
        }

    def extra_repr(self) -> str:
        return f"reference={self.reference!r}, resolution={self.resolution}, source={self.source!r}"


class ReprojectionConsistency(Metric):
    """Weight-free multi-view consistency: novel views warped back into the input view.

    Args:
        allow_random, seed: accepted for a uniform registry interface; no weights are used.
        views: ``(V, 25)`` cameras of the novel views; default :func:`warpinv.cameras.ibrnet_views`.
        image: ``"image_raw"`` (neural render, at the depth's resolution; default) or ``"image"``
            (super-resolved output, input depth upsampled bilinearly).
        occlusion_tol: world units a warped point may lie behind the novel view's own depth.

    Call: ``metric(renders, camera, target=None, mask=None)`` -> ``{"reproj_psnr", "reproj_covisible"}``
    (the input image and mask are not used). :meth:`per_view` gives the values of each view.
    """

    info = MetricInfo(
        name="reprojection_consistency",
        higher_is_better=True,
        value_range=(0.0, float("inf")),
        resolution=None,
        input_range=(-1.0, 1.0),
        weights=(),
        protocol="Novel-view renders warped into the input camera through the input view's rendered depth "
                 "(warpinv.cameras.backward_warp, occlusion test with the novel view's depth), compared with the "
                 "input-view render over co-visible pixels; neural renders at the depth resolution by default.",
        comparable_to="warpinv diagnostic, no paper reports it; compare only with other reprojection numbers made with "
                      "the same views and generator.",
        kind="multiview",
        outputs=(
            _output("reproj_psnr", True, (0.0, float("inf")), "PSNR (dB, [0, 1] values) over the co-visible pixels "
                    "of all novel views together (NaN when none); renders clamped to [-1, 1].",
                    "warpinv diagnostic, no paper reports it.", "dB"),
            _output("reproj_covisible", True, (0.0, 1.0), "Mean over novel views of the fraction of input-view pixels "
                    "that are co-visible (inside, in front, not occluded within occlusion_tol).",
                    "warpinv diagnostic, no paper reports it."),
        ),
    )

    def __init__(self, allow_random: bool = False, seed: int = 0, *, views: Tensor | None = None,
                 image: Literal["image_raw", "image"] = "image_raw", occlusion_tol: float = 0.03) -> None:
        super().__init__()
        del allow_random, seed
        check_choice(image, ("image_raw", "image"), "image")
        check_min(occlusion_tol, 0, "occlusion_tol")
        self.views = _views(views)
        self.image, self.occlusion_tol = image, occlusion_tol

    @torch.no_grad()
    def per_view(self, renders: RenderCache, camera: Tensor) -> dict[str, Tensor]:
        """Per novel view: ``psnr (V,)``, ``covisible (V,)``, ``sq_error (V,)`` (summed over co-visible
        pixels and channels, [0, 1] units) and ``count (V,)`` (co-visible pixels x channels)."""
        camera = _check_camera(camera)
        views = self.views.to(device=camera.device, dtype=camera.dtype)
        target_render, novel = renders(camera), renders(views)
        if self.image not in target_render or self.image not in novel:
            raise ValueError(f"the renders have no {self.image!r} output")
        target = target_render[self.image].clamp(-1, 1)
        sources = novel[self.image].clamp(-1, 1)
        depth = target_render["image_depth"]
        if depth.shape[-1] != target.shape[-1]:
            depth = F.interpolate(depth, size=target.shape[-2:], mode="bilinear", align_corners=False)
        n = views.shape[0]
        warped, valid = backward_warp(sources, depth.expand(n, -1, -1, -1), camera.expand(n, -1), views,
                                      src_depth=novel["image_depth"], occlusion_tol=self.occlusion_tol)
        weights = valid.to(warped.dtype)
        sq_error = (((warped - target) / 2) ** 2 * weights).flatten(1).sum(1).double()
        count = weights.flatten(1).sum(1).double() * warped.shape[1]
        return {"psnr": -10 * torch.log10(sq_error / count), "covisible": weights.flatten(1).mean(1).double(),
                "sq_error": sq_error, "count": count}

    def forward(self, renders: RenderCache, camera: Tensor, target: Tensor | None = None,
                mask: Tensor | None = None) -> dict[str, float]:
        del target, mask
        views = self.per_view(renders, camera)
        total = views["count"].sum()
        psnr = -10 * torch.log10(views["sq_error"].sum() / total) if total > 0 else torch.tensor(float("nan"))
        return {"reproj_psnr": psnr.item(), "reproj_covisible": views["covisible"].mean().item()}


def _build_ibrnet(allow_random: bool = False, seed: int = 0, **options: Any) -> IBRNetConsistency:
    return IBRNetConsistency(allow_random=allow_random, seed=seed, **options)


def _build_reprojection(allow_random: bool = False, seed: int = 0, **options: Any) -> ReprojectionConsistency:
    return ReprojectionConsistency(allow_random=allow_random, seed=seed, **options)


register_metric(IBRNetConsistency.info, _build_ibrnet)
register_metric(ReprojectionConsistency.info, _build_reprojection)
