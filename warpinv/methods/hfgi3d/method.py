"""``hfgi3d``: pseudo-multi-view optimisation (Xie et al., CVPR 2023), faithful to ``jiaxinxie97/HFGI3D``.

The released pipeline (``inversion/scripts/run_pti.py`` and ``multi_views/generate_multi_views.py``):

1. **pivot**: W+ projection, 500 steps, PTI's schedule and losses (:mod:`~warpinv.methods.projector`);
2. **first tuning**: PTI on the input view (Adam 3e-4 on every parameter, MSE + LPIPS(alex), early
   stop at LPIPS <= 0.06; the released loop runs ``range(501)``), then the tuned generator renders
   the input view's depth and the 30 orbit views (``noise_mode='const'``);
3. **pseudo views** (:mod:`warpinv.geometry.pseudo_views`): the input image warped through that depth
   into the orbit cameras (their float16 ``triplane_pose_30.npy`` poses) and blended over the
   stage-2 renders;
4. **final tuning**: the stage-2 generator is discarded, the ORIGINAL generator is tuned from the
   fixed pivot for 1000 steps (Adam 3e-4, no early stop); each step fits the input view plus one
   pseudo view drawn at random (their float32 orbit cameras), each ``MSE + LPIPS(alex)``.

The ``Inversion`` holds the pivot and the tuned tensors and renders any camera like PTI's. Paper
variants ("paper, not in the released code") are config switches; see ``README.md``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from warpinv.backbone import EG3DGenerator
from warpinv.cameras import hfgi3d_orbit, pack_label, unpack_label
from warpinv.geometry.pseudo_views import PseudoViewConfig, PseudoViewError, PseudoViews, make_pseudo_views
from warpinv.methods.base import (
    PRECISION_BYTES,
    Inversion,
    InversionFailedError,
    InversionItem,
    InversionMethod,
    MethodConfig,
    Precision,
    register_method,
)
from warpinv.methods.hfgi3d.symmetry import OFFICIAL_GRID_SIZE, density_symmetry_loss
from warpinv.methods.losses import PerceptualLoss, lpips_trunk_weights
from warpinv.methods.projector import (
    ItemProjection,
    ProjectorConfig,
    Regularizer,
    StepCallback,
    project_item,
    synthesize,
    synthesize_views,
)
from warpinv.methods.tuning import (
    InputAndRandomView,
    TuningConfig,
    TuningTarget,
    changed_parameters,
    tune_generator,
)

logger = logging.getLogger(__name__)


@dataclass
class PivotConfig(ProjectorConfig):
    """Stage 1: the W+ projector (``training/projectors/w_plus_projector.py``), PTI's schedule."""

    steps: int = 500
    """W+ projection steps (released: 500; the paper's initial stage: 1000 at lr 5e-3)."""
    symmetry_weight: float = 0.0
    """Weight of the density-symmetry prior on the pivot (released: computed but not added, 0; paper: on, the
    released code's would-be weight is 1)."""
    symmetry_grid: int = OFFICIAL_GRID_SIZE
    """Side of the density grid the symmetry prior compares (released: 64)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.symmetry_weight < 0 or self.symmetry_grid < 2:
            raise ValueError(f"symmetry_weight must be >= 0 and symmetry_grid >= 2, got {self.symmetry_weight} and "
                             f"{self.symmetry_grid}")


@dataclass
class FirstTuningConfig(TuningConfig):
    """Stage 2: PTI on the input view (``SingleIDCoach`` with ``multi_views=False``)."""

    steps: int = 501
    """Maximum steps: the released loop runs ``range(501)`` and steps at each, early stop aside."""


@dataclass
class FinalTuningConfig(TuningConfig):
    """Stage 4: the original generator on the input view plus one random pseudo view per step."""

    steps: int = 1000
    """Steps (``max_pti_steps_multiviews``: 1000; paper: 3000)."""
    lpips_threshold: float | None = None
    """No early stop in the released final tuning."""


@dataclass
class HFGI3DConfig(MethodConfig):
    """HFGI3D. Defaults: the released code (``inversion/configs``, ``generate_multi_views.py``).

    Overrides are dotted: ``pivot.steps=5``, ``final_tuning.steps=100``, ``pseudo_views.mode=clean``.
    """

    pivot: PivotConfig = field(default_factory=PivotConfig)
    """Stage 1, the W+ pivot (kept fixed afterwards)."""
    first_tuning: FirstTuningConfig = field(default_factory=FirstTuningConfig)
    """Stage 2, PTI on the input view (released: up to 501 steps, early stop at LPIPS 0.06); it only serves
    the depth and the renders the pseudo views are blended over."""
    pseudo_views: PseudoViewConfig = field(default_factory=PseudoViewConfig)
    """Stage 3, the pseudo views (released: ``official`` mode, alpha blending)."""
    final_tuning: FinalTuningConfig = field(default_factory=FinalTuningConfig)
    """Stage 4, the ORIGINAL generator tuned on the input view plus one random pseudo view per step (released:
    1000 steps at 3e-4, no early stop; paper: 3000)."""
    num_views: int = 30
    """Pseudo views on HFGI3D's orbit (``triplane_pose_30.npy``)."""
    warp_poses: Literal["float16", "float32"] = "float16"
    """Precision of the orbit poses the warps use: the released ``.npy`` holds float16 (the renders and the
    final tuning use the float32 formula, as released)."""
    difference_threshold: float | None = None
    """Paper, not in the released code: input pixels whose colour differs from the pivot's render by more than
    this (RGB Euclidean distance in [0, 1] units) are not warped (out-of-distribution textures); ``null``: off."""
    save_pseudo_views: bool = False
    """Keep the pseudo views and their masks in the inversion (saved with it, shown in the HTML grid)."""

    def __post_init__(self) -> None:
        if self.num_views < 1:
            raise ValueError(f"num_views must be >= 1, got {self.num_views}")
        if self.warp_poses not in ("float16", "float32"):
            raise ValueError(f"warp_poses must be 'float16' or 'float32', got {self.warp_poses!r}")
        if self.difference_threshold is not None and not self.difference_threshold > 0:
            raise ValueError(f"difference_threshold must be > 0 or null, got {self.difference_threshold}")


class HFGI3DInversion(Inversion):
    """An HFGI3D inversion: the pivot and the tuned tensors, plus (``save_pseudo_views``) the pseudo
    views ``pseudo_views (V, 3, H, W)`` in ``[-1, 1]`` and ``pseudo_masks (V, 1, H, W)``."""

    kind: ClassVar[str] = "hfgi3d"
    #: Pseudo views shown in the HTML grid (of the 30 on the orbit: below, right, above, left).
    SHOWN: ClassVar[tuple[int, ...]] = (0, 7, 15, 22)

    def illustrations(self) -> list[tuple[str, Tensor, str]]:
        views, masks = self.tensors.get("pseudo_views"), self.tensors.get("pseudo_masks")
        if views is None or masks is None:
            return []
        shown = [v for v in self.SHOWN if v < views.shape[0]]
        return ([(f"pseudo-{v}", views[v].float(), f"pseudo view {v}") for v in shown]
                + [(f"pseudo-mask-{v}", masks[v].float().expand(3, -1, -1) * 2 - 1, f"mask {v}") for v in shown])


@register_method
class HFGI3D(InversionMethod):
    """HFGI3D: pseudo-multi-view optimisation on EG3D."""

    name = "hfgi3d"
    Config = HFGI3DConfig
    budget_fields: ClassVar[tuple[str, ...]] = ("pivot.steps", "first_tuning.steps", "final_tuning.steps",
                                                "pseudo_views.num_points")

    @classmethod
    def inversion_bytes(cls, config: MethodConfig, generator: torch.nn.Module,
                        precision: Precision = "float32") -> int:
        """The latent plus every generator parameter (the final tuning moves all), plus the pseudo
        views when they are kept."""
        assert isinstance(config, HFGI3DConfig)
        tuned = sum(p.numel() for p in generator.parameters())
        size = int(getattr(generator, "img_resolution", 512))
        views = config.num_views * 4 * size * size if config.save_pseudo_views else 0
        return super().inversion_bytes(config, generator, precision) + (tuned + views) * PRECISION_BYTES[precision]

    def __init__(self, config: HFGI3DConfig, generator: EG3DGenerator) -> None:
        super().__init__(config, generator)
        self.config: HFGI3DConfig = config
        allow = config.allow_random_lpips
        self.pivot_perceptual: PerceptualLoss | None = config.pivot.perceptual(allow)
        self.first_perceptual: PerceptualLoss | None = config.first_tuning.perceptual(allow)
        self.final_perceptual: PerceptualLoss | None = config.final_tuning.perceptual(allow)
        #: Optional per-step hooks ``callback(step, terms)`` of the three optimisation stages.
        self.pivot_callback: StepCallback | None = None
        self.first_callback: StepCallback | None = None
        self.final_callback: StepCallback | None = None

    @classmethod
    def required_weights(cls, config: HFGI3DConfig) -> list[str]:
        nets = [*config.pivot.lpips_nets(), *config.first_tuning.lpips_nets(), *config.final_tuning.lpips_nets()]
        return lpips_trunk_weights(nets, config.allow_random_lpips)

    @property
    def random_lpips(self) -> bool:
        """Whether a seeded random LPIPS trunk entered any loss or decision of this method."""
        return any(m.random_weights for m in (self.pivot_perceptual, self.first_perceptual, self.final_perceptual)
                   if m is not None)

    def invert(self, item: InversionItem) -> Inversion:
        cfg = self.config
        fit = project_item(self.G, item, cfg.pivot, space="w+", perceptual=self.pivot_perceptual,
                           neural_rendering_resolution=cfg.neural_rendering_resolution, callback=self.pivot_callback,
                           regularizer=self.symmetry_regularizer())
        ws = fit.projection.ws
        teachers = self.orbit(fit.camera, torch.float32)
        first, first_info = self.first_tuning(fit)
        depth, renders = self.stage_two_renders(first, ws, fit.camera, teachers)
        del first
        pseudo = self.pseudo_views(fit, depth, renders)
        targets = [TuningTarget(fit.target, fit.camera, fit.mask)]
        targets += [TuningTarget(view[None] * 2 - 1, cam[None]) for view, cam in zip(pseudo.images, teachers)]
        sampler = InputAndRandomView(len(targets), seed=int(torch.randint(0, 2**31 - 1, ())))
        with torch.enable_grad():
            final, final_info = tune_generator(self.G, ws, targets, cfg.final_tuning,
                                               generator=self.tunable_generator(), sampler=sampler,
                                               perceptual=self.final_perceptual,
                                               neural_rendering_resolution=cfg.neural_rendering_resolution,
                                               callback=self.final_callback)
        info: dict[str, Any] = {
            "pivot_steps": fit.projection.steps, "pivot_last_loss": fit.projection.last.get("loss"),
            "first_tuning_steps_run": first_info["tuning_steps_run"],
            "first_early_stopped": first_info["early_stopped"], "first_final_lpips": first_info["final_lpips"],
            "pseudo_view_mode": cfg.pseudo_views.mode, "pseudo_view_points": pseudo.num_points,
            "pseudo_view_visible": pseudo.num_visible, "pseudo_view_mask_mean": float(pseudo.masks.mean()),
            **final_info,
        }
        if self.random_lpips:
            info["lpips_random_weights"] = True
        tensors = {}
        if cfg.save_pseudo_views:
            tensors = {"pseudo_views": pseudo.images * 2 - 1, "pseudo_masks": pseudo.masks}
        return HFGI3DInversion(item.image_id, self.name, ws, item.camera,
                               generator_delta=changed_parameters(self.G, final), tensors=tensors, info=info)

    def symmetry_regularizer(self) -> Regularizer | None:
        """The pivot's density-symmetry term (``None`` when its weight is 0, as released)."""
        weight, grid = self.config.pivot.symmetry_weight, self.config.pivot.symmetry_grid
        if weight == 0:
            return None
        return lambda ws: weight * density_symmetry_loss(self.G, ws, grid_size=grid)

    def first_tuning(self, fit: ItemProjection) -> tuple[EG3DGenerator, dict[str, Any]]:
        """Stage 2 on a private copy of the generator at the input view."""
        with torch.enable_grad():
            return tune_generator(self.G, fit.projection.ws, [TuningTarget(fit.target, fit.camera, fit.mask)],
                                  self.config.first_tuning, generator=self.tunable_generator(),
                                  perceptual=self.first_perceptual,
                                  neural_rendering_resolution=self.config.neural_rendering_resolution,
                                  callback=self.first_callback)

    def orbit(self, camera: Tensor, dtype: torch.dtype) -> Tensor:
        """``(num_views, 25)`` HFGI3D's orbit with the input's intrinsics; ``float16`` rounds the poses as
        the released ``triplane_pose_30.npy`` stores them."""
        _, intrinsics = unpack_label(camera.detach().double())
        focal = float(intrinsics[0, 0, 0])
        labels = hfgi3d_orbit(self.config.num_views, focal=focal)
        if dtype == torch.float16:
            poses, K = unpack_label(labels)
            labels = pack_label(poses.half().float(), K)
        return labels.to(camera.device)

    @torch.no_grad()
    def stage_two_renders(self, G: EG3DGenerator, ws: Tensor, camera: Tensor,
                          cameras: Tensor) -> tuple[Tensor, Tensor]:
        """The stage-2 generator's depth at the input view ``(R, R)`` and its images at ``cameras``
        ``(V, 3, H, W)`` in ``[0, 1]``, as 8-bit PNG values (EG3D's ``x * 127.5 + 128``, truncated)."""
        render = dict(neural_rendering_resolution=self.config.neural_rendering_resolution, deterministic=True,
                      noise_mode="const")
        first, *others = synthesize_views(G, ws, [camera, *(cam[None] for cam in cameras)], **render)
        depth = first["image_depth"][0, 0]
        images = torch.cat([out["image"] for out in others])
        return depth, (images * 127.5 + 128).clamp(0, 255).floor() / 255.0

    def pseudo_views(self, fit: ItemProjection, depth: Tensor, renders: Tensor) -> PseudoViews:
        """Stage 3; a degenerate depth map fails the image with the reason."""
        cfg = self.config
        image = ((fit.target[0] + 1) / 2).clamp(0, 1)
        if cfg.pseudo_views.mode == "official":
            image = torch.round(image * 255) / 255  # the released script reads the input PNG
        warp_cameras = self.orbit(fit.camera, torch.float16 if cfg.warp_poses == "float16" else torch.float32)
        excluded = self.excluded_pixels(fit, image) if cfg.difference_threshold is not None else None
        generator = torch.Generator(device=depth.device).manual_seed(int(torch.randint(0, 2**31 - 1, ())))
        try:
            return make_pseudo_views(image, depth, fit.camera[0], warp_cameras, renders, cfg.pseudo_views, generator,
                                     excluded=excluded)
        except PseudoViewError as err:
            raise InversionFailedError(f"pseudo views: {err}") from err

    @torch.no_grad()
    def excluded_pixels(self, fit: ItemProjection, image: Tensor) -> Tensor:
        """The paper's binarised difference map: ``|x - G(w, p0)| > theta`` per pixel ``(H, W)`` bool,
        with the original generator at the pivot."""
        render = synthesize(self.G, fit.projection.ws, fit.camera, deterministic=True, noise_mode="const",
                            neural_rendering_resolution=self.config.neural_rendering_resolution)["image"]
        difference = (((render[0] + 1) / 2).clamp(0, 1) - image).norm(dim=0)
        assert self.config.difference_threshold is not None
        return difference > self.config.difference_threshold
