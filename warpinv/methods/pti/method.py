"""``pti``: Pivotal Tuning Inversion (Roich et al., TOG 2022), faithful to ``danielroich/PTI``.

1. **Pivot**: :func:`~warpinv.methods.projector.project` in W (or W+ for the EG3D-port variant)
   with PTI's projector settings (``training/projectors/w_projector.py``).
2. **Tuning**: Adam on every parameter of a private copy of the generator, loss
   ``MSE + LPIPS(alex)`` on the SR image at the pivot, stopping as soon as LPIPS <= 0.06
   (``training/coaches/single_id_coach.py``); optional locality regulariser
   (``criteria/localitly_regulizer.py``).

The base generator is never modified; the tuned tensors come back as ``Inversion.generator_delta``.
See ``README.md`` for the defaults, the EG3D conventions and every deviation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch

from warpinv.backbone import EG3DGenerator
from warpinv.methods.base import Inversion, InversionItem, InversionMethod, MethodConfig, check_finite, register_method
from warpinv.methods.losses import PerceptualLoss, build_lpips, lpips_trunk_weights, masked_mse
from warpinv.methods.projector import (
    LatentStats,
    ProjectorSettings,
    StepCallback,
    check_non_negative,
    check_positive,
    project_item,
    settings_from_config,
    synthesize,
)
from warpinv.metrics.lpips import Net


@dataclass
class PTIConfig(MethodConfig):
    """Pivotal tuning. Defaults: ``danielroich/PTI`` ``configs/hyperparameters.py`` and its projector."""

    # --- pivot (stage 1) ---
    pivot_space: Literal["w", "w+"] = "w"
    """Latent space of the pivot: ``w`` (PTI's ``first_inv_type``) or ``w+`` (the EG3D ports)."""
    pivot_steps: int = 450
    """Projector steps (``first_inv_steps``: 450; the EG3D ports: 500)."""
    pivot_lr: float = 0.01
    """Peak of the projector's lr ramp (``initial_learning_rate``); the effective pivot learning rate."""
    pivot_adam_init_lr: float = 5e-3
    """``first_inv_lr``: the rate Adam is created with. Overwritten by the ramp at every step, so it never takes effect (official quirk, kept)."""
    pivot_lr_rampdown_length: float = 0.25
    """Fraction of the pivot steps with the cosine ramp-down."""
    pivot_lr_rampup_length: float = 0.05
    """Fraction of the pivot steps with the linear ramp-up."""
    pivot_noise_factor: float = 0.05
    """Latent noise at step 0 as a multiple of ``w_std``."""
    pivot_noise_ramp_length: float = 0.75
    """Fraction of the pivot steps after which the latent noise is 0."""
    pivot_optimize_noise: bool = True
    """Re-draw, optimise and renormalise the backbone noise buffers during the pivot (official). They are discarded afterwards, as in PTI."""
    pivot_noise_reg_weight: float = 1e5
    """Weight of the noise regulariser (official 1e5)."""
    pivot_lpips_net: Literal["vgg", "alex"] = "vgg"
    """LPIPS trunk of the pivot loss (official: NVIDIA's VGG16 LPIPS; we use the ``lpips`` package's VGG)."""
    pivot_lpips_weight: float = 1.0
    """Weight of the pivot's LPIPS distance."""
    pivot_lpips_resolution: int | None = 256
    """Area-downsample images larger than this before the pivot LPIPS (official 256)."""
    pivot_mse_weight: float = 0.0
    """Weight of a pixel MSE in the pivot loss (official: none)."""
    w_avg_samples: int = 600
    """Mapped samples for ``w_avg``/``w_std`` (PTI passes ``w_avg_samples=600``)."""
    w_avg_seed: int = 123
    """Seed of the ``np.random.RandomState`` drawing them (official 123)."""
    # --- tuning (stage 2) ---
    tuning_steps: int = 350
    """Maximum tuning steps (``max_pti_steps``: 350; the EG3D ports: 500)."""
    tuning_lr: float = 3e-4
    """Adam learning rate on all generator parameters (``pti_learning_rate``)."""
    tuning_mse_weight: float = 1.0
    """Weight of the MSE on the SR image (``pt_l2_lambda``)."""
    tuning_lpips_weight: float = 1.0
    """Weight of the LPIPS loss (``pt_lpips_lambda``)."""
    tuning_lpips_net: Literal["alex", "vgg"] = "alex"
    """LPIPS trunk of the tuning loss, the early stop and the locality regulariser (``lpips_type``)."""
    tuning_lpips_resolution: int | None = None
    """Area-downsample larger images to this before the tuning LPIPS; ``null``: full generator resolution (official)."""
    lpips_threshold: float | None = 0.06
    """Stop tuning as soon as the LPIPS, measured before the backward pass, is <= this (``LPIPS_value_threshold``); ``null``: never."""
    # --- locality regulariser (off by default, as in PTI) ---
    locality_regularization: bool = False
    """Enable the locality regulariser (``use_locality_regularization``)."""
    locality_alpha: float = 30.0
    """Radius: ``w_r = w_p + alpha (w_z - w_p) / |w_z - w_p|`` (``regulizer_alpha``, a distance, not an interpolation weight)."""
    locality_psi: float = 0.5
    """Truncation of the sampled ``w_z``."""
    locality_samples: int = 1
    """Latents sampled per regularised step (``latent_ball_num_of_samples``)."""
    locality_interval: int = 1
    """Regularise every this many steps (``locality_regularization_interval``)."""
    locality_mse_weight: float = 0.1
    """Weight of the MSE between the original and the tuned generator at ``w_r`` (``regulizer_l2_lambda``)."""
    locality_lpips_weight: float = 0.1
    """Weight of their LPIPS (``regulizer_lpips_lambda``)."""
    # --- shared ---
    deterministic_render: bool = False
    """Render without the renderer's random depth jitter while optimising (the official code jitters)."""
    allow_random_lpips: bool = False
    """Use seeded random LPIPS trunks instead of the ImageNet ones, present or not (tests, weightless runs); outputs then say ``lpips_random_weights``."""

    def __post_init__(self) -> None:
        check_positive(pivot_steps=self.pivot_steps, w_avg_samples=self.w_avg_samples,
                       pivot_lr_rampup_length=self.pivot_lr_rampup_length,
                       pivot_lr_rampdown_length=self.pivot_lr_rampdown_length,
                       pivot_noise_ramp_length=self.pivot_noise_ramp_length,
                       locality_samples=self.locality_samples, locality_interval=self.locality_interval)
        check_non_negative(tuning_steps=self.tuning_steps, pivot_lr=self.pivot_lr, tuning_lr=self.tuning_lr,
                           pivot_lpips_weight=self.pivot_lpips_weight, pivot_mse_weight=self.pivot_mse_weight,
                           pivot_noise_reg_weight=self.pivot_noise_reg_weight,
                           tuning_mse_weight=self.tuning_mse_weight, tuning_lpips_weight=self.tuning_lpips_weight,
                           locality_alpha=self.locality_alpha, locality_mse_weight=self.locality_mse_weight,
                           locality_lpips_weight=self.locality_lpips_weight)

    def pivot_settings(self) -> ProjectorSettings:
        """The projector settings of the pivot stage (the ``pivot_*`` fields, PTI's ramp schedule)."""
        return settings_from_config(self, "pivot_", lr_schedule="ramp")


@register_method
class PTI(InversionMethod):
    """Pivotal Tuning Inversion on EG3D."""

    name = "pti"
    Config = PTIConfig
    #: Config fields that set the compute budget (the harness reports reductions of these).
    budget_fields: ClassVar[tuple[str, ...]] = ("pivot_steps", "tuning_steps")

    def __init__(self, config: PTIConfig, generator: EG3DGenerator) -> None:
        super().__init__(config, generator)
        self.config: PTIConfig = config
        allow = config.allow_random_lpips
        nets = self.lpips_nets(config)
        # Built here so that missing weights fail before any image is touched.
        self.pivot_perceptual: PerceptualLoss | None = None
        if "pivot" in nets:
            self.pivot_perceptual = PerceptualLoss(build_lpips(nets["pivot"], allow), config.pivot_lpips_resolution)
        self.tuning_perceptual: PerceptualLoss | None = None
        if "tuning" in nets:
            self.tuning_perceptual = PerceptualLoss(build_lpips(nets["tuning"], allow), config.tuning_lpips_resolution)
        #: Optional per-step hooks ``callback(step, terms)`` for the two stages (logging, tests).
        self.pivot_callback: StepCallback | None = None
        self.tuning_callback: StepCallback | None = None

    @staticmethod
    def lpips_nets(config: PTIConfig) -> dict[str, Net]:
        """The LPIPS trunk of each stage that computes LPIPS: ``pivot`` (its loss) and ``tuning`` (its
        loss, the early stop or the locality term); a stage without LPIPS is absent."""
        nets: dict[str, Net] = {}
        if config.pivot_lpips_weight > 0:
            nets["pivot"] = config.pivot_lpips_net
        if (config.tuning_lpips_weight > 0 or config.lpips_threshold is not None
                or (config.locality_regularization and config.locality_lpips_weight > 0)):
            nets["tuning"] = config.tuning_lpips_net
        return nets

    @classmethod
    def required_weights(cls, config: PTIConfig) -> list[str]:
        """Registry names of the weight files building this method resolves (read by the preflight)."""
        return lpips_trunk_weights(cls.lpips_nets(config).values(), config.allow_random_lpips)

    @property
    def tuning_uses_lpips(self) -> bool:
        """Whether the tuning stage computes LPIPS (its loss, the early stop or the locality term)."""
        return "tuning" in self.lpips_nets(self.config)

    @property
    def random_lpips(self) -> bool:
        """Whether a seeded random LPIPS trunk entered any loss or decision of this method."""
        modules = (self.pivot_perceptual, self.tuning_perceptual if self.tuning_uses_lpips else None)
        return any(m.random_weights for m in modules if m is not None)

    def invert(self, item: InversionItem) -> Inversion:
        cfg = self.config
        fit = project_item(self.G, item, cfg.pivot_settings(), w_avg_samples=cfg.w_avg_samples,
                           w_avg_seed=cfg.w_avg_seed, perceptual=self.pivot_perceptual, callback=self.pivot_callback)
        pivot = fit.projection
        with torch.enable_grad():
            tuned, info = self.tune(pivot.ws, fit.target, fit.mask, fit.camera, fit.stats)
        delta = changed_parameters(self.G, tuned)
        info = {"pivot_space": cfg.pivot_space, "pivot_steps": pivot.steps,
                "pivot_last_loss": pivot.last.get("loss"), **info}
        if self.random_lpips:
            info["lpips_random_weights"] = True
        return Inversion(item.image_id, self.name, pivot.ws, item.camera, generator_delta=delta, info=info)

    def tune(self, ws: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None, camera: torch.Tensor,
             stats: LatentStats) -> tuple[EG3DGenerator, dict[str, Any]]:
        """Stage 2 on a private copy of the generator. Returns the tuned copy and the facts for ``info``."""
        cfg = self.config
        G = self.tunable_generator().requires_grad_(True)
        optimizer = torch.optim.Adam(G.parameters(), lr=cfg.tuning_lr)
        ws = ws.detach()
        render = dict(neural_rendering_resolution=cfg.neural_rendering_resolution,
                      deterministic=cfg.deterministic_render)
        steps_run, early_stopped, lpips_value, mse_value = 0, False, float("nan"), float("nan")
        for step in range(cfg.tuning_steps):
            image = synthesize(G, ws, camera, **render)["image"]
            mse = masked_mse(image, target, mask)
            loss = cfg.tuning_mse_weight * mse
            if cfg.tuning_lpips_weight > 0 or cfg.lpips_threshold is not None:
                assert self.tuning_perceptual is not None
                lpips = self.tuning_perceptual(image, target, mask).mean()
                lpips_value = float(lpips.detach())
                loss = loss + cfg.tuning_lpips_weight * lpips
            mse_value = float(mse.detach())
            optimizer.zero_grad(set_to_none=True)
            if cfg.lpips_threshold is not None and lpips_value <= cfg.lpips_threshold:
                early_stopped = True  # official: checked on this forward, before any backward
                break
            terms = {"mse": mse_value, "lpips": lpips_value}  # lpips: nan when the stage does not compute it
            if cfg.locality_regularization and step % cfg.locality_interval == 0:
                locality = self.locality_loss(G, ws, camera, stats)
                loss = loss + locality
                terms["locality"] = float(locality.detach())
            check_finite(loss, step)
            loss.backward()
            optimizer.step()
            steps_run += 1
            if self.tuning_callback is not None:
                self.tuning_callback(step, {"loss": float(loss.detach()), **terms})
        if not early_stopped:  # measure the returned generator, not the one before the last step
            with torch.no_grad():
                image = synthesize(G, ws, camera, **render)["image"]
                if self.tuning_perceptual is not None and self.tuning_uses_lpips:
                    lpips_value = float(self.tuning_perceptual(image, target, mask).mean())
                mse_value = float(masked_mse(image, target, mask))
        G.requires_grad_(False)
        final_lpips = lpips_value if self.tuning_uses_lpips else None  # not computed: no LPIPS in the stage
        info = {"tuning_steps_run": steps_run, "early_stopped": early_stopped, "final_lpips": final_lpips,
                "final_mse": mse_value, "lpips_threshold": cfg.lpips_threshold,
                "locality_regularization": cfg.locality_regularization}
        return G, info

    def locality_loss(self, G: EG3DGenerator, ws_pivot: torch.Tensor, camera: torch.Tensor,
                      stats: LatentStats) -> torch.Tensor:
        """PTI's locality regulariser between the original generator and the tuned ``G``.

        ``locality_samples`` latents ``w_z`` (truncation ``locality_psi``, mapping conditioned on the
        frontal camera as for ``w_avg``) give ``w_r = w_p + alpha (w_z - w_p) / |w_z - w_p|`` (the norm
        over the whole ``(num_ws, w_dim)`` tensor, as official); both generators render ``w_r`` from
        the item's camera with ``noise_mode='none'``; the loss is ``0.1 MSE + 0.1 LPIPS``, averaged
        over the samples.
        """
        cfg = self.config
        n = cfg.locality_samples
        with torch.no_grad():
            z = torch.randn(n, self.G.z_dim, device=ws_pivot.device)
            w_z = self.G.mapping(z, stats.conditioning.expand(n, -1), truncation_psi=cfg.locality_psi)
        render = dict(neural_rendering_resolution=cfg.neural_rendering_resolution,
                      deterministic=cfg.deterministic_render, noise_mode="none")
        total = torch.zeros((), device=ws_pivot.device)
        for i in range(n):
            direction = w_z[i: i + 1] - ws_pivot
            w_r = ws_pivot + cfg.locality_alpha * direction / direction.norm(p=2)
            new = synthesize(G, w_r, camera, **render)["image"]
            with torch.no_grad():
                old = synthesize(self.G, w_r, camera, **render)["image"]
            if cfg.locality_mse_weight > 0:
                total = total + cfg.locality_mse_weight * masked_mse(new, old)
            if cfg.locality_lpips_weight > 0:
                assert self.tuning_perceptual is not None
                total = total + cfg.locality_lpips_weight * self.tuning_perceptual(old, new).mean()
        return total / n


def changed_parameters(base: torch.nn.Module, tuned: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Parameters of ``tuned`` that differ from ``base``'s, by state-dict name (detached copies)."""
    reference = dict(base.named_parameters())
    return {name: p.detach().clone() for name, p in tuned.named_parameters()
            if not torch.equal(p.detach(), reference[name].detach())}
