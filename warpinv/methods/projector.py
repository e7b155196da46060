"""The one latent optimiser: W or W+ projection of one image into an EG3D generator.

Shared by ``w_opt``, ``wplus_opt`` and PTI's pivot stage, configured by one :class:`ProjectorConfig`
(``w_opt``/``wplus_opt`` inherit its fields, PTI nests it as ``pivot``). It follows the StyleGAN2-ADA projector
that PTI ships (``training/projectors/w_projector.py``) and the EG3D W+ port of HFGI3D
(``inversion/training/projectors/w_plus_projector.py``):

- start at ``w_avg`` of ``w_avg_samples`` (600 in PTI) mapped latents, z from
  ``np.random.RandomState(123)``, the mapping conditioned on the **frontal** camera with the image's
  intrinsics (EG3D ports); ``w_std = sqrt(sum |w - w_avg|^2 / N)``;
- learning rate ``lr * ramp(t)``, ``t = step / steps``, with a linear ramp-up over the first 5 % and
  a cosine ramp-down over the last 25 %. The value is written into the optimiser at **every** step,
  so the rate Adam was created with (PTI's ``first_inv_lr = 5e-3``) never takes effect: an official
  quirk kept on purpose (``adam_init_lr``). At step 0 the rate is 0;
- latent noise ``w_std * 0.05 * max(0, 1 - t / 0.75)^2`` added to the latent before synthesis;
- optionally the backbone's ``noise_const`` buffers are re-drawn, optimised with the latent,
  regularised (x 1e5, :func:`~warpinv.methods.losses.noise_regularization`) and renormalised after
  every step. They are substituted into the generator for the forward pass only: the generator's
  own buffers are never written;
- rendering from the item's camera with ``noise_mode='const'`` and ``force_fp32=True``; the loss is
  on the super-resolved ``image`` (the official projectors use ``image`` only, not ``image_raw``).
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from warpinv.backbone import EG3DGenerator
from warpinv.cameras import yaw_pitch_camera
from warpinv.checks import check_min
from warpinv.methods.base import InversionItem, check_finite
from warpinv.methods.losses import (
    PerceptualLoss,
    build_lpips,
    latent_distance,
    layer_spread,
    masked_mse,
    noise_regularization,
    normalize_noise_,
)
from warpinv.methods.rendering import substituted_tensors
from warpinv.metrics.lpips import Net

Space = Literal["w", "w+"]
StepCallback = Callable[[int, dict[str, float]], None]
#: ``regularizer(ws) -> scalar``: an extra projector loss term of the step's latent ``(1, num_ws, w_dim)``.
Regularizer = Callable[[Tensor], Tensor]
#: Adam betas of the StyleGAN2 projector (not a setting of any official config).
ADAM_BETAS: tuple[float, float] = (0.9, 0.999)


# ----------------------------------------------------------------------------------------------
# Schedules


def ramp_lr(step: int, num_steps: int, peak_lr: float, rampdown_length: float = 0.25,
            rampup_length: float = 0.05) -> float:
    """The StyleGAN2 projector's learning rate at ``step`` of ``num_steps``.

    Example:
        >>> [round(ramp_lr(s, 100, 0.01), 6) for s in (0, 1, 5, 50, 90)]
        [0.0, 0.002, 0.01, 0.01, 0.003455]
    """
    t = step / num_steps
    ramp = min(1.0, (1.0 - t) / rampdown_length)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    ramp = ramp * min(1.0, t / rampup_length)
    return peak_lr * ramp


def latent_noise_scale(step: int, num_steps: int, w_std: float, noise_factor: float = 0.05,
                       ramp_length: float = 0.75) -> float:
    """Std of the Gaussian noise added to the latent: ``w_std * factor * max(0, 1 - t/ramp)^2``.

    Example:
        >>> latent_noise_scale(0, 100, 10.0), latent_noise_scale(75, 100, 10.0)
        (0.5, 0.0)
    """
    t = step / num_steps
    return w_std * noise_factor * max(0.0, 1.0 - t / ramp_length) ** 2


# ----------------------------------------------------------------------------------------------
# Conventions shared by the methods


def frontal_camera(G: EG3DGenerator, camera: Tensor) -> Tensor:
    """The conditioning camera of the EG3D ports: frontal pose on the generator's average camera
    sphere (``avg_camera_radius``, looking at ``avg_camera_pivot``), with ``camera``'s intrinsics.

    ``camera``: ``(N, 25)`` -> ``(N, 25)``.
    """
    rk = G.rendering_kwargs
    front = yaw_pitch_camera(0.0, 0.0, radius=float(rk.get("avg_camera_radius", 2.7)),
                             lookat=tuple(float(x) for x in rk.get("avg_camera_pivot", (0.0, 0.0, 0.2))),
                             device=camera.device, dtype=camera.dtype)
    return torch.cat([front[:, :16].expand(camera.shape[0], -1), camera[:, 16:25]], dim=1)


@dataclass
class LatentStats:
    """``w_avg (1, 1, w_dim)``, the scalar ``w_std``, and the conditioning camera they used."""

    w_avg: Tensor
    w_std: float
    conditioning: Tensor


@torch.no_grad()
def latent_stats(G: EG3DGenerator, camera: Tensor, num_samples: int = 600, seed: int = 123,
                 truncation_psi: float = 1.0, conditioning: str = "frontal") -> LatentStats:
    """Mean and spread of mapped latents, as the PTI projector computes them.

    z comes from ``np.random.RandomState(seed)`` (no torch RNG is consumed); the mapping is
    conditioned on :func:`frontal_camera` of ``camera`` (``(1, 25)``), or on ``camera`` itself with
    ``conditioning="input"``.
    """
    cond = frontal_camera(G, camera[:1]) if conditioning == "frontal" else camera[:1]
    z = torch.from_numpy(np.random.RandomState(seed).randn(num_samples, G.z_dim)).to(camera.device, torch.float32)
    w = G.mapping(z, cond.expand(num_samples, -1), truncation_psi=truncation_psi)[:, :1, :]
    w_avg = w.mean(dim=0, keepdim=True)
    w_std = float(((w - w_avg).square().sum() / num_samples).sqrt())
    return LatentStats(w_avg, w_std, cond)


def backbone_noise_names(G: EG3DGenerator) -> list[str]:
    """State-dict names of the tri-plane backbone's ``noise_const`` buffers (``G.backbone.synthesis``,
    the buffers the EG3D port optimises; the SR module's are left alone)."""
    return [f"backbone.synthesis.{name}" for name, _ in G.backbone.synthesis.named_buffers()
            if name.endswith("noise_const")]


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """No gradients for ``module``'s parameters inside the block (their flags are restored after)."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    try:
        module.requires_grad_(False)
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


@contextlib.contextmanager
def render_resolution_kept(G: EG3DGenerator) -> Iterator[None]:
    """Undo the official side effect of a ``neural_rendering_resolution`` argument on the generator's attribute."""
    saved = G.neural_rendering_resolution
    try:
        yield
    finally:
        G.neural_rendering_resolution = saved


def synthesize(G: EG3DGenerator, ws: Tensor, camera: Tensor, *, neural_rendering_resolution: int | None = None,
               deterministic: bool = False, noise_mode: str = "const") -> dict[str, Tensor]:
    """``G.synthesis`` as the official inversion code calls it (``force_fp32=True``), without the
    official side effect of a ``neural_rendering_resolution`` argument on the generator's attribute."""
    with render_resolution_kept(G):
        return G.synthesis(ws, camera, neural_rendering_resolution=neural_rendering_resolution,
                           deterministic=deterministic, noise_mode=noise_mode, force_fp32=True)


def synthesize_views(G: EG3DGenerator, ws: Tensor, cameras: Sequence[Tensor], *,
                     neural_rendering_resolution: int | None = None, deterministic: bool = False,
                     noise_mode: str = "const") -> list[dict[str, Tensor]]:
    """:func:`synthesize` of one latent ``ws (1, num_ws, w_dim)`` at each camera ``(1, 25)``, the tri-planes
    computed once: the backbone does not see the camera, so with fixed noise (``const``/``none``) every
    per-camera call would compute the same planes (and gradients flow into them from every view).
    ``random`` noise draws new noise per call, as the per-camera calls do."""
    if noise_mode == "random":
        return [synthesize(G, ws, c, neural_rendering_resolution=neural_rendering_resolution,
                           deterministic=deterministic, noise_mode=noise_mode) for c in cameras]
    with render_resolution_kept(G):
        planes = G.planes(ws, noise_mode=noise_mode, force_fp32=True)
        return [G.render_planes(planes, ws, c, neural_rendering_resolution, deterministic=deterministic,
                                noise_mode=noise_mode, force_fp32=True) for c in cameras]


def prepare_target(item: InversionItem, resolution: int) -> tuple[Tensor, Tensor | None]:
    """The item's image and mask at the generator's output resolution.

    Images of another size are resized (bilinear, antialiased; masks nearest). Returns
    ``image (1, 3, R, R)`` and ``mask (1, 1, R, R)`` or ``None``.
    """
    image, mask = item.image.float(), item.mask
    if image.ndim != 4 or image.shape[:2] != (1, 3):
        raise ValueError(f"{item.image_id}: expected a (1, 3, H, W) image, got {tuple(image.shape)}")
    if image.shape[-2:] != (resolution, resolution):
        image = F.interpolate(image, size=(resolution, resolution), mode="bilinear", align_corners=False,
                              antialias=True)
    if mask is not None:
        mask = mask.float()
        if mask.shape[-2:] != (resolution, resolution):
            mask = F.interpolate(mask, size=(resolution, resolution), mode="nearest")
        mask = (mask > 0.5).float()
    return image, mask


# ----------------------------------------------------------------------------------------------
# The projector's config


@dataclass
class ProjectorConfig:
    """Settings of :func:`project`, each field once. Defaults: PTI's projector (StyleGAN2-ADA
    ``project`` as PTI calls it).

    Method configs take these fields by inheritance (``w_opt``, ``wplus_opt``: flat keys such as
    ``steps``) or nest them (PTI: ``pivot.steps``). The latent space is not a field here: it is the
    method's (``w_opt``: W, ``wplus_opt``: W+) or a field of the method's config where it may vary
    (PTI's ``pivot.space``), and :func:`project` takes it as an argument.

    Example:
        >>> cfg = ProjectorConfig(steps=7, deterministic_render=True)
        >>> cfg.steps, cfg.lr, cfg.lpips_nets()
        (7, 0.01, ['vgg'])
        >>> ProjectorConfig(lr_rampup_length=0.0)
        Traceback (most recent call last):
        ...
        ValueError: lr_rampup_length must be > 0, got 0.0
    """

    steps: int = 450
    """Optimisation steps (PTI's ``first_inv_steps``: 450; the EG3D ports: 500)."""
    lr: float = 0.01
    """Peak learning rate (the projector's ``initial_learning_rate``): the effective rate."""
    lr_schedule: Literal["ramp", "constant"] = "ramp"
    """``ramp``: linear ramp-up and cosine ramp-down around ``lr`` (official); ``constant``: ``lr`` throughout."""
    adam_init_lr: float = 5e-3
    """Rate Adam is created with (PTI's ``first_inv_lr``). Under the ramp it is overwritten at every step and never
    takes effect (official quirk, kept)."""
    lr_rampdown_length: float = 0.25
    """Fraction of the steps over which the cosine ramp-down runs."""
    lr_rampup_length: float = 0.05
    """Fraction of the steps over which the linear ramp-up runs."""
    noise_factor: float = 0.05
    """Latent noise at step 0, as a multiple of ``w_std``."""
    noise_ramp_length: float = 0.75
    """Fraction of the steps after which the latent noise is 0 (quadratic decay)."""
    optimize_noise: bool = True
    """Re-draw and optimise the backbone's noise buffers with the latent (official). PTI and the methods discard them
    afterwards unless told otherwise."""
    noise_reg_weight: float = 1e5
    """Weight of the noise regulariser (official 1e5)."""
    lpips_net: Literal["vgg", "alex"] = "vgg"
    """LPIPS trunk of the perceptual loss (official: NVIDIA's VGG16 LPIPS; we use the ``lpips`` package's VGG)."""
    lpips_weight: float = 1.0
    """Weight of the LPIPS loss."""
    lpips_resolution: int | None = 256
    """Area-downsample images larger than this before LPIPS (official 256); ``null``: never."""
    mse_weight: float = 0.0
    """Weight of the pixel MSE on the SR image (the official projector has none)."""
    w_avg_reg_weight: float = 0.0
    """Weight of the squared distance of the latent from ``w_avg``."""
    w_avg_samples: int = 600
    """Mapped samples for ``w_avg`` and ``w_std`` (PTI passes 600)."""
    w_avg_seed: int = 123
    """Seed of the ``np.random.RandomState`` drawing those samples (official 123)."""
    conditioning: Literal["frontal", "input"] = "frontal"
    """Camera the mapping is conditioned on for ``w_avg`` and ``w_std``: ``frontal`` (the frontal pose
    with the image's intrinsics: HFGI3D's EG3D projector, GOAE's ``c_front``) or ``input`` (the
    image's own camera, as EG3D's W projector ports condition)."""
    deterministic_render: bool = False
    """Render without the renderer's random depth jitter while optimising (the official code jitters)."""

    def __post_init__(self) -> None:
        check_positive(steps=self.steps, w_avg_samples=self.w_avg_samples, lr_rampup_length=self.lr_rampup_length,
                       lr_rampdown_length=self.lr_rampdown_length, noise_ramp_length=self.noise_ramp_length)
        check_non_negative(lr=self.lr, lpips_weight=self.lpips_weight, mse_weight=self.mse_weight,
                           noise_reg_weight=self.noise_reg_weight, w_avg_reg_weight=self.w_avg_reg_weight)
        parent = getattr(super(), "__post_init__", None)  # cooperative: method configs inherit other bases
        if parent is not None:
            parent()

    def lpips_nets(self) -> list[Net]:
        """The LPIPS trunk the loss needs: ``[lpips_net]`` when ``lpips_weight > 0``, else none."""
        return [self.lpips_net] if self.lpips_weight > 0 else []

    def perceptual(self, allow_random: bool = False) -> PerceptualLoss | None:
        """The LPIPS loss module of this config, or ``None`` without LPIPS (a missing trunk raises
        ``MissingWeightsError`` here, before any image, unless ``allow_random``)."""
        nets = self.lpips_nets()
        return PerceptualLoss(build_lpips(nets[0], allow_random), self.lpips_resolution) if nets else None


def check_positive(**values: float) -> None:
    """Raise ``ValueError`` naming the first value that is not > 0 (:func:`warpinv.checks.check_min`)."""
    for name, value in values.items():
        check_min(value, 0, name, strict=True)


def check_non_negative(**values: float) -> None:
    """Raise ``ValueError`` naming the first value that is < 0 or NaN (:func:`warpinv.checks.check_min`)."""
    for name, value in values.items():
        check_min(value, 0, name)


# ----------------------------------------------------------------------------------------------
# The optimiser


@dataclass
class Projection:
    """Result of :func:`project`.

    Attributes:
        ws: ``(1, num_ws, w_dim)`` the fitted latent, broadcast to every layer in W.
        latent: the optimised variable, ``(1, 1, w_dim)`` in W or ``(1, num_ws, w_dim)`` in W+.
        noise: optimised noise buffers by state-dict name (empty unless ``optimize_noise``).
        steps: steps run.
        last: the last step's loss terms (``loss``, ``lpips``, ``mse``, ``noise_reg``, ``lr``, ...).
    """

    ws: Tensor
    latent: Tensor
    noise: dict[str, Tensor] = field(default_factory=dict)
    steps: int = 0
    last: dict[str, float] = field(default_factory=dict)


def loss_weights(config: ProjectorConfig, layer_spread_weight: float = 0.0) -> dict[str, float]:
    """The weight of each loss term of :func:`loss_terms`, by term name."""
    return {"lpips": config.lpips_weight, "mse": config.mse_weight, "noise_reg": config.noise_reg_weight,
            "w_avg_reg": config.w_avg_reg_weight, "layer_spread": layer_spread_weight}


def loss_terms(weights: dict[str, float], space: Space, image: Tensor, target: Tensor, mask: Tensor | None,
               latent: Tensor, noise: dict[str, Tensor], stats: LatentStats,
               perceptual: PerceptualLoss | None) -> dict[str, Tensor]:
    """The unweighted loss terms with a non-zero weight in ``weights`` (:func:`loss_weights`)."""
    terms: dict[str, Tensor] = {}
    if weights["lpips"] > 0:
        assert perceptual is not None
        terms["lpips"] = perceptual(image, target, mask).sum()  # official: the squared feature distance, summed
    if weights["mse"] > 0:
        terms["mse"] = masked_mse(image, target, mask)
    if noise and weights["noise_reg"] > 0:
        terms["noise_reg"] = noise_regularization(noise.values())
    if weights["w_avg_reg"] > 0:
        terms["w_avg_reg"] = latent_distance(latent, stats.w_avg.to(latent.device))
    if weights["layer_spread"] > 0 and space == "w+":
        terms["layer_spread"] = layer_spread(latent)
    return terms


def project(
    G: EG3DGenerator,
    target: Tensor,
    camera: Tensor,
    config: ProjectorConfig,
    stats: LatentStats,
    *,
    space: Space,
    perceptual: PerceptualLoss | None = None,
    mask: Tensor | None = None,
    start: Tensor | None = None,
    layer_spread_weight: float = 0.0,
    neural_rendering_resolution: int | None = None,
    callback: StepCallback | None = None,
    regularizer: Regularizer | None = None,
) -> Projection:
    """Fit a latent so that ``G`` renders ``target`` from ``camera``.

    Args:
        G: the generator (not modified; no gradient flows into its parameters).
        target: ``(1, 3, R, R)`` in ``[-1, 1]`` at the generator's resolution.
        camera: ``(1, 25)`` the camera to render from.
        config: schedule, losses and rendering options.
        stats: ``w_avg`` (the default start) and ``w_std`` (the latent noise scale).
        space: ``"w"`` (one latent broadcast to every layer) or ``"w+"`` (one per layer).
        perceptual: the LPIPS loss (needed when ``config.lpips_weight > 0``).
        mask: ``(1, 1, R, R)`` valid pixels, or ``None``.
        start: ``(1, 1, w_dim)`` or ``(1, num_ws, w_dim)`` start latent instead of ``w_avg``.
        layer_spread_weight: weight of the spread of the W+ layers around their mean (W+ only).
        neural_rendering_resolution: raw render size; ``None`` keeps the generator's.
        callback: called after every step with the step index and that step's loss terms.
        regularizer: an extra loss term ``regularizer(ws)`` of the step's (noised) ``ws
            (1, num_ws, w_dim)``, added with weight 1 (its value is the term ``regularizer``).

    Raises:
        NonFiniteLossError: the loss became NaN or infinite (the image gets a failed row).
    """
    s = config
    if s.lpips_weight > 0 and perceptual is None:
        raise ValueError("lpips_weight > 0 needs a perceptual loss module")
    if space not in ("w", "w+"):
        raise ValueError(f"space must be 'w' or 'w+', got {space!r}")
    weights = loss_weights(s, layer_spread_weight)
    device = target.device
    num_ws = G.num_ws
    start = (stats.w_avg if start is None else start).detach().to(device, torch.float32)
    if space == "w":
        start = start[:, :1]
    elif start.shape[1] == 1:
        start = start.repeat(1, num_ws, 1)
    latent = start.clone().requires_grad_(True)

    noise: dict[str, Tensor] = {}
    if s.optimize_noise:
        state = G.state_dict()
        noise = {name: torch.randn_like(state[name]).requires_grad_(True) for name in backbone_noise_names(G)}
    params = [latent, *noise.values()]
    constant = s.lr_schedule == "constant"
    optimizer = torch.optim.Adam(params, betas=ADAM_BETAS, lr=s.lr if constant else s.adam_init_lr)

    last: dict[str, float] = {}
    with frozen(G):
        for step in range(s.steps):
            lr = s.lr if constant else ramp_lr(step, s.steps, s.lr, s.lr_rampdown_length, s.lr_rampup_length)
            for group in optimizer.param_groups:
                group["lr"] = lr
            scale = latent_noise_scale(step, s.steps, stats.w_std, s.noise_factor, s.noise_ramp_length)
            w = latent + torch.randn_like(latent) * scale
            ws = w.expand(-1, num_ws, -1) if space == "w" else w
            with substituted_tensors(G, noise):
                image = synthesize(G, ws, camera, neural_rendering_resolution=neural_rendering_resolution,
                                   deterministic=s.deterministic_render)["image"]

            terms = loss_terms(weights, space, image, target, mask, latent, noise, stats, perceptual)
            loss = sum((weights[k] * v for k, v in terms.items()), torch.zeros((), device=device))
            if regularizer is not None:
                terms["regularizer"] = regularizer(ws)
                loss = loss + terms["regularizer"]
            check_finite(loss, step)

            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if noise:
                normalize_noise_(noise.values())

            last = {"loss": float(loss.detach()), "lr": lr, "noise_scale": scale,
                    **{k: float(v.detach()) for k, v in terms.items()}}
            if callback is not None:
                callback(step, last)

    final = latent.detach()
    ws = final.expand(-1, num_ws, -1).clone() if space == "w" else final.clone()
    return Projection(ws=ws, latent=final.clone(), noise={k: v.detach() for k, v in noise.items()},
                      steps=s.steps, last=last)


@dataclass
class ItemProjection:
    """What :func:`project_item` prepared and fitted for one item (the later stages reuse it).

    Attributes:
        target: ``(1, 3, R, R)`` the image at the generator's resolution; ``mask`` ``(1, 1, R, R)`` or ``None``.
        camera: ``(1, 25)`` float32 on the image's device.
        stats: ``w_avg``/``w_std`` of the frontal conditioning.
        projection: the fitted latent.
    """

    target: Tensor
    mask: Tensor | None
    camera: Tensor
    stats: LatentStats
    projection: Projection


def project_item(G: EG3DGenerator, item: InversionItem, config: ProjectorConfig, *, space: Space,
                 perceptual: PerceptualLoss | None = None, layer_spread_weight: float = 0.0,
                 neural_rendering_resolution: int | None = None,
                 callback: StepCallback | None = None, regularizer: Regularizer | None = None) -> ItemProjection:
    """Fit a latent to one dataset item: resize its image and mask to the generator's resolution,
    compute the latent statistics (``config.w_avg_samples``, ``config.w_avg_seed``) with the item's
    intrinsics, then :func:`project` (gradients on)."""
    with torch.enable_grad():
        target, mask = prepare_target(item, G.img_resolution)
        camera = item.camera.to(target.device, torch.float32)
        stats = latent_stats(G, camera, config.w_avg_samples, config.w_avg_seed,
                             conditioning=config.conditioning)
        projection = project(G, target, camera, config, stats, space=space, perceptual=perceptual, mask=mask,
                             layer_spread_weight=layer_spread_weight,
                             neural_rendering_resolution=neural_rendering_resolution, callback=callback,
                             regularizer=regularizer)
    return ItemProjection(target, mask, camera, stats, projection)


__all__ = [
    "ADAM_BETAS",
    "ItemProjection",
    "LatentStats",
    "Projection",
    "ProjectorConfig",
    "Regularizer",
    "Space",
    "StepCallback",
    "backbone_noise_names",
    "check_non_negative",
    "check_positive",
    "frontal_camera",
    "latent_noise_scale",
    "latent_stats",
    "prepare_target",
    "project",
    "project_item",
    "ramp_lr",
    "synthesize",
]
