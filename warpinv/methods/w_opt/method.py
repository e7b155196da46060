"""``w_opt``: optimise one latent in W (broadcast to every layer) to reproduce the image.

With the defaults this is exactly PTI's pivot stage (the StyleGAN2-ADA projector as PTI runs it:
450 steps, ramped lr peaking at 0.01, latent noise ramp, LPIPS-VGG at 256, optimised and
regularised backbone noise that is then discarded). See ``README.md``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from warpinv.backbone import EG3DGenerator
from warpinv.methods.base import Inversion, InversionItem, InversionMethod, MethodConfig, register_method
from warpinv.methods.losses import PerceptualLoss, lpips_trunk_weights
from warpinv.methods.projector import Projection, ProjectorConfig, Space, StepCallback, project_item


@dataclass
class WOptConfig(ProjectorConfig, MethodConfig):
    """W optimisation. Defaults: PTI's projector (``danielroich/PTI`` ``w_projector.project``).

    The projector's fields (:class:`~warpinv.methods.projector.ProjectorConfig`) are this config's
    own, flat: ``methods.w_opt.steps=16``.
    """

    return_noise: bool = False
    """Put the optimised noise buffers into the inversion (``generator_delta``). Off: like PTI's pivot, the result is
    the latent alone, rendered with the generator's own noise."""


@register_method
class WOpt(InversionMethod):
    """Latent optimisation in W: one ``w`` for all layers, Adam, start at ``w_avg``."""

    name = "w_opt"
    Config = WOptConfig
    #: The latent space optimised.
    space: ClassVar[Space] = "w"
    #: Config fields (dotted paths) that set the compute budget (the harness reports reductions of these).
    budget_fields: ClassVar[tuple[str, ...]] = ("steps",)

    def __init__(self, config: WOptConfig, generator: EG3DGenerator) -> None:
        super().__init__(config, generator)
        self.config: WOptConfig = config
        # Built here so that missing weights fail before any image is touched.
        self.perceptual: PerceptualLoss | None = config.perceptual(config.allow_random_lpips)
        #: Optional per-step hook ``callback(step, terms)`` (logging, tests).
        self.step_callback: StepCallback | None = None

    @classmethod
    def required_weights(cls, config: WOptConfig) -> list[str]:
        """Registry names of the weight files building this method resolves (read by the preflight)."""
        return lpips_trunk_weights(config.lpips_nets(), config.allow_random_lpips)

    @property
    def layer_spread_weight(self) -> float:
        """Weight of the W+ layer-spread regulariser (none in W)."""
        return 0.0

    def invert(self, item: InversionItem) -> Inversion:
        cfg = self.config
        proj = project_item(self.G, item, cfg, space=self.space, perceptual=self.perceptual,
                            layer_spread_weight=self.layer_spread_weight,
                            neural_rendering_resolution=cfg.neural_rendering_resolution,
                            callback=self.step_callback).projection
        delta = proj.noise if cfg.return_noise else {}
        return Inversion(item.image_id, self.name, proj.ws, item.camera, generator_delta=delta,
                         info=self.summary(proj, bool(delta)))

    def summary(self, proj: Projection, noise_returned: bool) -> dict[str, Any]:
        info: dict[str, Any] = {"space": self.space, "steps": proj.steps, "noise_returned": noise_returned}
        info.update({f"last_{k}": v for k, v in proj.last.items() if k in ("loss", "lpips", "mse")})
        if self.perceptual is not None and self.perceptual.random_weights:
            info["lpips_random_weights"] = True
        return info
