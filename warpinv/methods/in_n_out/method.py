"""``in_n_out``: composite out-of-distribution tri-planes (Xu et al., CVPR 2024), faithful to ``Twizwei/in-n-out``.

The face is explained by the frozen EG3D (in-distribution, a W+ latent) plus a second radiance field for what
EG3D cannot produce (occluders, make-up), composited by a learned per-sample blend (:mod:`.composite`):

1. **InD** (``invert_multi_ws.py``): the best of 500 random W+ latents by LPIPS(alex), then 500 steps of W+
   projection (PTI's ramp to 5e-3, LPIPS(vgg) + MSE on the SR image, 1e-3 x layer-delta norms);
2. **OOD** (``train_outdomain.py``): a free tri-plane, a decoder and a code ``phi`` (and the latent at lr/100)
   fitted through the composite render for 10,000 steps (raw MSE + LPIPS, SR MSE, blend entropy and area, the
   OOD-mask term when the image has an OOD mask, else the mask-free latent terms);
3. **SR**: the super-resolution module alone, 100 steps at 1e-3 on the fixed composite.

The ``Inversion`` renders the composite at any camera; its renderer also renders without the OOD part (the
released removal) and the blend map (:mod:`.views`). Paper-only settings are switches; see ``README.md``.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from warpinv.backbone import EG3DGenerator
from warpinv.methods.base import (
    PRECISION_BYTES,
    Inversion,
    InversionItem,
    InversionMethod,
    MethodConfig,
    Precision,
    register_method,
)
from warpinv.methods.in_n_out.config import InNOutConfig
from warpinv.methods.in_n_out.networks import OOD_CHANNELS, OODField
from warpinv.methods.in_n_out.stages import (
    StepCallback,
    Targets,
    delta_regularizer,
    fit_ood,
    random_start,
    tune_superresolution,
)
from warpinv.methods.in_n_out.views import FIELD_PREFIX, CompositeViewRenderer, field_of
from warpinv.methods.losses import PerceptualLoss, build_lpips, lpips_trunk_weights
from warpinv.methods.projector import latent_stats, prepare_target, project
from warpinv.methods.rendering import ViewRenderer

logger = logging.getLogger(__name__)


class InNOutInversion(Inversion):
    """An In-N-Out inversion: ``ws``, the tuned SR tensors (``generator_delta``), and in ``tensors`` the OOD field
    (``ood.triplanes (1, 3, 32, R, R)``, ``ood.decoder.net.*``), ``phi (1, 32)`` and, when the image had one,
    ``ood_mask (1, 1, R, R)`` at raw resolution (1 = out of distribution)."""

    kind: ClassVar[str] = "in_n_out"
    #: Images shown in the HTML grid (``illustration/<name>`` tensors, made by ``save_illustrations``).
    SHOWN: ClassVar[tuple[tuple[str, str], ...]] = (("blend", "blend map (OOD share of each pixel)"),
                                                    ("ood_only", "OOD field alone"),
                                                    ("removed", "OOD removed"))

    def illustrations(self) -> list[tuple[str, Tensor, str]]:
        return [(f"in-n-out-{name}", self.tensors[f"illustration/{name}"][0].float(), caption)
                for name, caption in self.SHOWN if f"illustration/{name}" in self.tensors]

    def save_released(self, path: str | Path, G: EG3DGenerator, config: InNOutConfig) -> Path:
        """Write the released ``triplanes.pt`` layout (``G.*`` with the tuned SR, ``new_triplanes.*``, ``w_plus``,
        ``phi``) for the official ``test_outdomain.py``; ``G`` is the method's generator."""
        from warpinv.methods.in_n_out.released import write_released
        from warpinv.methods.rendering import substituted_tensors

        with substituted_tensors(G, self.generator_delta):
            return write_released(path, G, field_of(self, config), self.ws, self.tensors["phi"])

    @classmethod
    def from_released(cls, path: str | Path, G: EG3DGenerator, camera: Tensor, *, frame: int = 0,
                      image_id: str | None = None) -> InNOutInversion:
        """An inversion from a released ``triplanes.pt`` (read with ``torch.load(weights_only=True)`` only): frame
        ``frame``'s ``w_plus`` and ``phi``, the OOD field, and the generator tensors that differ from ``G`` (the
        tuned SR). The file holds no camera: ``camera (1, 25)`` is the frame's (its ``dataset.json`` label)."""
        from warpinv.methods.in_n_out.released import load_field, load_generator_into, read_released

        released = read_released(path, frame=frame)
        tuned, changed = load_generator_into(G, released)
        state = tuned.state_dict()
        field = load_field(released)
        tensors = {f"{FIELD_PREFIX}{k}": v for k, v in field.state_dict().items()}
        tensors["phi"] = released.phi
        return cls(image_id or Path(path).stem, InNOut.name, released.ws, camera,
                   generator_delta={k: state[k] for k in changed}, tensors=tensors,
                   info={"released_checkpoint": str(path), "frame": frame})


@register_method
class InNOut(InversionMethod):
    """In-N-Out: composite out-of-distribution tri-planes on EG3D, with OOD removal."""

    name = "in_n_out"
    Config = InNOutConfig
    budget_fields: ClassVar[tuple[str, ...]] = ("ind.steps", "ind.init_samples", "ood.steps", "sr.steps",
                                                "plane_resolution")

    def __init__(self, config: InNOutConfig, generator: EG3DGenerator) -> None:
        super().__init__(config, generator)
        self.config: InNOutConfig = config
        allow = config.allow_random_lpips
        self.ind_perceptual: PerceptualLoss | None = config.ind.perceptual(allow)
        nets = config.ind.init_nets()
        self.init_perceptual = PerceptualLoss(build_lpips(nets[0], allow), None) if nets else None
        self.ood_perceptual = self._perceptual(config.ood.lpips_nets(), allow)
        self.sr_perceptual = self._perceptual(config.sr.lpips_nets(), allow)
        #: Optional per-step hooks ``callback(step, terms)`` of the three stages.
        self.ind_callback: StepCallback | None = None
        self.ood_callback: StepCallback | None = None
        self.sr_callback: StepCallback | None = None

    @staticmethod
    def _perceptual(nets: list[Any], allow: bool) -> PerceptualLoss | None:
        return PerceptualLoss(build_lpips(nets[0], allow), None) if nets else None

    @classmethod
    def required_weights(cls, config: InNOutConfig) -> list[str]:
        nets = [*config.ind.lpips_nets(), *config.ind.init_nets(), *config.ood.lpips_nets(), *config.sr.lpips_nets()]
        return lpips_trunk_weights(nets, config.allow_random_lpips)

    @classmethod
    def inversion_bytes(cls, config: MethodConfig, generator: torch.nn.Module,
                        precision: Precision = "float32") -> int:
        """The latent, the OOD tri-plane and decoder, ``phi``, the raw-size OOD mask, the tuned SR parameters and the
        three illustrations."""
        assert isinstance(config, InNOutConfig)
        raw = config.neural_rendering_resolution or getattr(generator, "neural_rendering_resolution", 128)
        planes = 3 * OOD_CHANNELS * config.plane_resolution ** 2 + raw ** 2
        decoder = sum(p.numel() for p in OODField(resolution=1).decoder.parameters())
        sr = sum(p.numel() for p in generator.superresolution.parameters()) if config.sr.steps else 0
        size = int(getattr(generator, "img_resolution", 512))
        shown = len(InNOutInversion.SHOWN) * 3 * size * size if config.save_illustrations else 0
        return (super().inversion_bytes(config, generator, precision)
                + (planes + decoder + OOD_CHANNELS + sr + shown) * PRECISION_BYTES[precision])

    @property
    def random_lpips(self) -> bool:
        """Whether a seeded random LPIPS trunk entered any loss or decision of this method."""
        modules = (self.ind_perceptual, self.init_perceptual, self.ood_perceptual, self.sr_perceptual)
        return any(m.random_weights for m in modules if m is not None)

    def renderer(self, inversion: Inversion, batch: int = 16) -> ViewRenderer:
        """The composite renderer of :mod:`.views` (with ``without_ood`` and ``blend_map``)."""
        return CompositeViewRenderer(self.G, inversion, self.config, batch)

    # -- inversion -----------------------------------------------------------------------------------

    def targets(self, item: InversionItem) -> Targets:
        """The image at the generator's size and at raw size, its OOD mask and depth prior at raw size."""
        image, _ = prepare_target(item, self.G.img_resolution)
        res = self.nrr
        raw = F.interpolate(image, size=(res, res), mode="bilinear", align_corners=False)
        return Targets(image, raw, item.camera.to(image.device, torch.float32), ood_mask_of(item, res),
                       ood_mask_of(item, self.G.img_resolution), depth_prior_of(item, res))

    def invert(self, item: InversionItem) -> Inversion:
        cfg = self.config
        targets = self.targets(item)
        seed = int(torch.randint(0, 2**31 - 1, ()))
        generator = torch.Generator(device=targets.image.device).manual_seed(seed)
        with torch.enable_grad():
            stats = latent_stats(self.G, targets.camera, cfg.ind.w_avg_samples, cfg.ind.w_avg_seed,
                                 conditioning=cfg.ind.conditioning)
            start = (random_start(self.G, targets.image, targets.camera, cfg.ind, self.init_perceptual, generator)
                     if cfg.ind.init_samples > 0 else None)
            keep = (1 - targets.ood_mask_full if cfg.ind.use_ood_mask and targets.ood_mask_full is not None
                    else None)
            projection = project(self.G, targets.image, targets.camera, cfg.ind, stats, space="w+",
                                 perceptual=self.ind_perceptual, start=start, mask=keep,
                                 neural_rendering_resolution=self.nrr,
                                 callback=self.ind_callback, regularizer=delta_regularizer(cfg.ind))
            field = OODField(OOD_CHANNELS, cfg.plane_resolution, cfg.plane_reduction, generator=generator)
            field = field.to(targets.image.device)
            phi = torch.randn(1, OOD_CHANNELS, generator=generator, device=targets.image.device).requires_grad_(True)
            ws, ood_info = fit_ood(self.G, projection.ws, field, phi, targets, cfg, self.ood_perceptual,
                                   self.ood_callback)
            tuned_sr, sr_info = tune_superresolution(self.G, ws, field, phi, targets, cfg, self.sr_perceptual,
                                                     self.sr_callback)
        tensors = {f"{FIELD_PREFIX}{k}": v.detach() for k, v in field.state_dict().items()}
        tensors["phi"] = phi.detach()
        if targets.ood_mask is not None:
            tensors["ood_mask"] = targets.ood_mask
        if cfg.save_illustrations:
            tensors.update(self.illustration_tensors(InNOutInversion(item.image_id, self.name, ws, item.camera,
                                                                     generator_delta=tuned_sr, tensors=tensors)))
        info: dict[str, Any] = {"ind_steps": projection.steps, "ind_last_loss": projection.last.get("loss"),
                                "ind_init_samples": cfg.ind.init_samples, **ood_info, **sr_info}
        if self.random_lpips:
            info["lpips_random_weights"] = True
        return InNOutInversion(item.image_id, self.name, ws, item.camera, generator_delta=tuned_sr, tensors=tensors,
                               info=info)


    def illustration_tensors(self, inversion: Inversion) -> dict[str, Tensor]:
        """The blend map, the OOD field alone and the OOD-removed render at the input view, each
        ``(1, 3, H, W)`` in ``[-1, 1]`` at the output size, for the HTML grid."""
        renderer = CompositeViewRenderer(self.G, inversion, self.config)
        camera = inversion.camera.to(inversion.ws.device, torch.float32)
        removed = renderer.without_ood(camera)["image"]
        size = removed.shape[-2:]
        blend = F.interpolate(renderer.blend_map(camera), size=size, mode="nearest").expand(-1, 3, -1, -1) * 2 - 1
        return {"illustration/blend": blend, "illustration/ood_only": renderer.ood_only(camera),
                "illustration/removed": removed}


def ood_mask_of(item: InversionItem, resolution: int) -> Tensor | None:
    """The item's OOD mask ``(1, 1, R, R)`` at raw size (nearest, as released), ``None`` when it has none or it is
    empty. The dataset's ``ood_mask`` is 1 = out-of-distribution pixel."""
    mask = item.extras.get("ood_mask")
    supplied = item.extras.get("has_ood_mask")
    if mask is None or (supplied is not None and not bool(torch.as_tensor(supplied).any())):
        return None
    mask = mask.float().reshape(1, 1, *mask.shape[-2:])
    mask = (F.interpolate(mask, size=(resolution, resolution), mode="nearest") > 0.5).float()
    return mask if mask.any() else None


def depth_prior_of(item: InversionItem, resolution: int) -> Tensor | None:
    """The dataset's depth prior ``(1, 1, R, R)`` at raw size (bilinear), or ``None``."""
    depth = item.extras.get("depth")
    if depth is None:
        return None
    depth = depth.float().reshape(1, 1, *depth.shape[-2:])
    return F.interpolate(depth, size=(resolution, resolution), mode="bilinear", align_corners=False)


__all__ = ["InNOut", "InNOutInversion", "depth_prior_of", "ood_mask_of"]
