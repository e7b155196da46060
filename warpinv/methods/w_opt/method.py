"""``w_opt``: optimise one latent in W (broadcast to every layer) to reproduce the image.

With the defaults this is exactly PTI's pivot stage (the StyleGAN2-ADA projector as PTI runs it:
450 steps, ramped lr peaking at 0.01, latent noise ramp, LPIPS-VGG at 256, optimised and
regularised backbone noise that is then discarded). See ``README.md``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from warpinv.backbone import EG3DGenerator
from warpinv.methods.base import Inversion, InversionItem, InversionMethod, register_method
from warpinv.methods.losses import PerceptualLoss, build_lpips, lpips_trunk_weights
from warpinv.methods.projector import (
    LatentOptConfig,
    Projection,
    ProjectorSettings,
    Space,
    StepCallback,
    project_item,
)
from warpinv.metrics.lpips import Net


@dataclass
class WOptConfig(LatentOptConfig):
    """W optimisation. Defaults: PTI's projector (``danielroich/PTI`` ``w_projector.project``)."""


@register_method
class WOpt(InversionMethod):
    """Latent optimisation in W: one ``w`` for all layers, Adam, start at ``w_avg``."""

    name = "w_opt"
    Config = WOptConfig
    #: The latent space optimised.
    space: ClassVar[Space] = "w"
    #: Config fields that set the compute budget (the harness reports reductions of these).
    budget_fields: ClassVar[tuple[str, ...]] = ("steps",)

    def __init__(self, config: WOptConfig, generator: EG3DGenerator) -> None:
        super().__init__(config, generator)
        self.config: WOptConfig = config
        nets = self.lpips_nets(config)
        self.perceptual: PerceptualLoss | None = None
        if nets:  # built here so missing weights fail before any image
            self.perceptual = PerceptualLoss(build_lpips(nets[0], config.allow_random_lpips), config.lpips_resolution)
        #: Optional per-step hook ``callback(step, terms)`` (logging, tests).
        self.step_callback: StepCallback | None = None

    @staticmethod
    def lpips_nets(config: WOptConfig) -> list[Net]:
        """The LPIPS trunk the loss builds: ``[lpips_net]`` when ``lpips_weight > 0``, else none."""
        return [config.lpips_net] if config.lpips_weight > 0 else []

    @classmethod
    def required_weights(cls, config: WOptConfig) -> list[str]:
        """Registry names of the weight files building this method resolves (read by the preflight)."""
        return lpips_trunk_weights(cls.lpips_nets(config), config.allow_random_lpips)

    def projector_settings(self) -> ProjectorSettings:
        return self.config.projector_settings(self.space)

    def invert(self, item: InversionItem) -> Inversion:
        cfg = self.config
        proj = project_item(self.G, item, self.projector_settings(), w_avg_samples=cfg.w_avg_samples,
                            w_avg_seed=cfg.w_avg_seed, perceptual=self.perceptual,
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
