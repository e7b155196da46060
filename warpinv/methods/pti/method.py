"""``pti``: Pivotal Tuning Inversion (Roich et al., TOG 2022), faithful to ``danielroich/PTI``.

1. **Pivot**: :func:`~warpinv.methods.projector.project` in W (or W+ for the EG3D-port variant)
   with PTI's projector settings (``training/projectors/w_projector.py``); config ``pivot``.
2. **Tuning**: :func:`~warpinv.methods.tuning.tune_generator` on the input view: Adam on every
   parameter of a private copy of the generator, loss ``MSE + LPIPS(alex)`` on the SR image at the
   pivot, stopping as soon as LPIPS <= 0.06 (``training/coaches/single_id_coach.py``); optional
   locality regulariser (``criteria/localitly_regulizer.py``); config ``tuning``.

The base generator is never modified; the tuned tensors come back as ``Inversion.generator_delta``.
See ``README.md`` for the defaults, the EG3D conventions and every deviation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

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
from warpinv.methods.losses import PerceptualLoss, lpips_trunk_weights
from warpinv.methods.projector import LatentStats, ProjectorConfig, Space, StepCallback, project_item
from warpinv.methods.tuning import TuningConfig, TuningTarget, changed_parameters, tune_generator


@dataclass
class PivotConfig(ProjectorConfig):
    """PTI's pivot: the projector (:class:`~warpinv.methods.projector.ProjectorConfig`, PTI's
    ``w_projector`` defaults) with its latent space as a field."""

    space: Space = "w"
    """Latent space of the pivot: ``w`` (PTI's ``first_inv_type``) or ``w+`` (the EG3D ports)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.space not in ("w", "w+"):
            raise ValueError(f"space must be 'w' or 'w+', got {self.space!r}")


@dataclass
class PTIConfig(MethodConfig):
    """Pivotal tuning. Defaults: ``danielroich/PTI`` ``configs/hyperparameters.py`` and its projector.

    Overrides are dotted: ``pivot.steps=5``, ``tuning.lr=1e-3``.
    """

    pivot: PivotConfig = field(default_factory=PivotConfig)
    """Stage 1, the pivot: the projector's settings and ``space``."""
    tuning: TuningConfig = field(default_factory=TuningConfig)
    """Stage 2, tuning the generator at the pivot."""


@register_method
class PTI(InversionMethod):
    """Pivotal Tuning Inversion on EG3D."""

    name = "pti"
    Config = PTIConfig
    #: Config fields (dotted paths) that set the compute budget (the harness reports reductions of these).
    budget_fields: ClassVar[tuple[str, ...]] = ("pivot.steps", "tuning.steps")

    @classmethod
    def inversion_bytes(cls, config: MethodConfig, generator: torch.nn.Module,
                        precision: Precision = "float32") -> int:
        """The latent plus every generator parameter: tuning moves all of them, so all are saved."""
        tuned = sum(p.numel() for p in generator.parameters())
        return super().inversion_bytes(config, generator, precision) + tuned * PRECISION_BYTES[precision]

    def __init__(self, config: PTIConfig, generator: EG3DGenerator) -> None:
        super().__init__(config, generator)
        self.config: PTIConfig = config
        allow = config.allow_random_lpips
        # Built here so that missing weights fail before any image is touched; a stage without LPIPS builds none.
        self.pivot_perceptual: PerceptualLoss | None = config.pivot.perceptual(allow)
        self.tuning_perceptual: PerceptualLoss | None = config.tuning.perceptual(allow)
        #: Optional per-step hooks ``callback(step, terms)`` for the two stages (logging, tests).
        self.pivot_callback: StepCallback | None = None
        self.tuning_callback: StepCallback | None = None

    @classmethod
    def required_weights(cls, config: PTIConfig) -> list[str]:
        """Registry names of the weight files building this method resolves (read by the preflight)."""
        nets = [*config.pivot.lpips_nets(), *config.tuning.lpips_nets()]
        return lpips_trunk_weights(nets, config.allow_random_lpips)

    @property
    def random_lpips(self) -> bool:
        """Whether a seeded random LPIPS trunk entered any loss or decision of this method."""
        modules = (self.pivot_perceptual, self.tuning_perceptual if self.config.tuning.uses_lpips else None)
        return any(m.random_weights for m in modules if m is not None)

    def invert(self, item: InversionItem) -> Inversion:
        cfg = self.config
        fit = project_item(self.G, item, cfg.pivot, space=cfg.pivot.space, perceptual=self.pivot_perceptual,
                           neural_rendering_resolution=cfg.neural_rendering_resolution, callback=self.pivot_callback)
        pivot = fit.projection
        with torch.enable_grad():
            tuned, info = self.tune(pivot.ws, fit.target, fit.mask, fit.camera, fit.stats)
        delta = changed_parameters(self.G, tuned)
        info = {"pivot_space": cfg.pivot.space, "pivot_steps": pivot.steps,
                "pivot_last_loss": pivot.last.get("loss"), **info}
        if self.random_lpips:
            info["lpips_random_weights"] = True
        return Inversion(item.image_id, self.name, pivot.ws, item.camera, generator_delta=delta, info=info)

    def tune(self, ws: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None, camera: torch.Tensor,
             stats: LatentStats) -> tuple[EG3DGenerator, dict[str, Any]]:
        """Stage 2 on a private copy of the generator (:meth:`tunable_generator`), at the input view only.

        ``ws (1, num_ws, w_dim)``, ``target (1, 3, R, R)``, ``mask (1, 1, R, R)`` or ``None``,
        ``camera (1, 25)``. Returns the tuned copy and the facts for ``info``.
        """
        cfg = self.config
        return tune_generator(self.G, ws, [TuningTarget(target, camera, mask)], cfg.tuning,
                              generator=self.tunable_generator(), perceptual=self.tuning_perceptual,
                              conditioning=stats.conditioning,
                              neural_rendering_resolution=cfg.neural_rendering_resolution,
                              callback=self.tuning_callback)
