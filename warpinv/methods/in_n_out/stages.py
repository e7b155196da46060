"""The three optimisation stages of In-N-Out for one image.

1. :func:`random_start` + the projector (:func:`~warpinv.methods.projector.project`): the W+ latent of the frozen
   generator (``invert_multi_ws.py``);
2. :func:`fit_ood`: the OOD tri-plane, its decoder and ``phi`` (and the latent at a hundredth of the rate) through the
   composite render (``train_outdomain.py``, raw stage);
3. :func:`tune_superresolution`: the generator's SR module alone on the fixed composite (``train_outdomain.py``,
   ``train_sr``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from warpinv.backbone import EG3DGenerator
from warpinv.methods.base import check_finite
from warpinv.methods.in_n_out.composite import CompositeRender, composite_sr, render_composite
from warpinv.methods.in_n_out.config import InDConfig, InNOutConfig, OODConfig, SRConfig
from warpinv.methods.in_n_out.losses import (
    blend_area,
    blend_entropy,
    blend_sparsity,
    depth_prior_loss,
    layer_delta_norms,
    region_mse,
)
from warpinv.methods.in_n_out.networks import OODField
from warpinv.methods.losses import PerceptualLoss
from warpinv.methods.projector import ADAM_BETAS, frontal_camera, frozen, synthesize
from warpinv.methods.rendering import substituted_tensors

#: ``callback(step, terms)`` after every step of a stage.
StepCallback = Callable[[int, dict[str, float]], None]


@dataclass
class Targets:
    """What one image is fitted to.

    Attributes:
        image: ``(1, 3, H, W)`` in ``[-1, 1]`` at the generator's output size; ``raw``: the same bilinearly resized
            to the raw render size ``(1, 3, R, R)`` (released: ``F.interpolate(..., mode='bilinear')``).
        camera: ``(1, 25)``.
        ood_mask: ``(1, 1, R, R)`` in ``{0, 1}`` at raw size (1 = out of distribution), ``None`` without a mask;
            ``ood_mask_full``: the same at the image's size.
        depth: ``(1, 1, R, R)`` a depth prior at raw size, or ``None``.
    """

    image: Tensor
    raw: Tensor
    camera: Tensor
    ood_mask: Tensor | None = None
    ood_mask_full: Tensor | None = None
    depth: Tensor | None = None


@torch.no_grad()
def random_start(G: EG3DGenerator, target: Tensor, camera: Tensor, cfg: InDConfig,
                 perceptual: PerceptualLoss | None, generator: torch.Generator) -> Tensor:
    """The released initialisation: the best of ``cfg.init_samples`` random W+ latents at the image's camera.

    z is standard normal (drawn from ``generator``), mapped without truncation with the frontal conditioning camera,
    rendered at ``camera`` and scored against ``target`` ``(1, 3, H, W)`` by LPIPS (``perceptual``) or MSE.
    Returns ``(1, num_ws, w_dim)``.
    """
    conditioning = frontal_camera(G, camera)
    best, best_score = None, float("inf")
    remaining = cfg.init_samples
    while remaining > 0:
        n = min(cfg.init_batch, remaining)
        remaining -= n
        z = torch.randn(n, G.z_dim, generator=generator, device=camera.device)
        ws = G.mapping(z, conditioning.expand(n, -1), truncation_psi=1.0)
        images = synthesize(G, ws, camera.expand(n, -1), deterministic=True)["image"]
        if cfg.init_metric == "lpips":
            assert perceptual is not None
            scores = perceptual(images, target.expand_as(images)).reshape(n)
        else:
            scores = (images - target).square().flatten(1).mean(1)
        i = int(torch.argmin(scores))
        if float(scores[i]) < best_score:
            best, best_score = ws[i: i + 1].clone(), float(scores[i])
    assert best is not None
    return best


def delta_regularizer(cfg: InDConfig) -> Callable[[Tensor], Tensor] | None:
    """The stage-1 layer-delta term ``delta_weight * sum ||w_l - w_0||`` (or squared), ``None`` at weight 0."""
    if cfg.delta_weight == 0:
        return None
    if cfg.delta_norm == "squared":
        return lambda ws: cfg.delta_weight * (ws[:, 1:] - ws[:, :1]).square().sum(dim=(1, 2)).mean()
    return lambda ws: cfg.delta_weight * layer_delta_norms(ws)


def _composite(G: EG3DGenerator, ws: Tensor, field: OODField, phi: Tensor, targets: Targets, config: InNOutConfig,
               deterministic: bool, superresolve: bool, planes: Tensor | None = None) -> CompositeRender:
    return render_composite(G, ws, field, phi, targets.camera, resolution=targets.raw.shape[-1],
                            pairing=config.pairing, transmittance=config.transmittance,
                            depth_clamp=config.depth_clamp, superresolve=superresolve,
                            sr_noise_mode=config.sr_noise_mode, deterministic=deterministic, planes=planes)


def fixed_planes(G: EG3DGenerator, ws: Tensor) -> Tensor:
    """The tri-planes of a latent that no longer changes (computed once, no gradient)."""
    with torch.no_grad():
        return G.planes(ws, noise_mode="const")


def ood_loss_terms(G: EG3DGenerator, out: CompositeRender, ws: Tensor, targets: Targets, cfg: OODConfig,
                   perceptual: PerceptualLoss | None) -> dict[str, Tensor]:
    """The unweighted stage-2 terms with a non-zero weight in ``cfg`` (released ``train_outdomain.py``)."""
    terms: dict[str, Tensor] = {}
    if cfg.raw_mse_weight > 0:
        terms["raw_mse"] = F.mse_loss(out.image_raw, targets.raw)
    if cfg.raw_lpips_weight > 0:
        assert perceptual is not None
        terms["raw_lpips"] = perceptual(out.image_raw, targets.raw).mean()
    if cfg.sr_mse_weight > 0:
        assert out.image is not None
        terms["sr_mse"] = F.mse_loss(out.image, targets.image)
    fields = out.fields
    if cfg.entropy_weight > 0:
        terms["entropy"] = blend_entropy(fields.blend_coarse, fields.blend_fine, skewness=cfg.entropy_skewness).mean()
    if cfg.area_weight > 0:
        terms["area"] = blend_area(fields.blend_coarse, fields.blend_fine)
    mask = targets.ood_mask
    if mask is not None:
        if cfg.ood_mse_weight > 0:
            terms["ood_mse"] = region_mse(out.ood_raw, targets.raw, mask.expand_as(out.ood_raw))
        if cfg.sparsity_weight > 0:
            keep = (1 - mask).flatten(2).transpose(1, 2)  # (1, R*R, 1): 1 = in-distribution ray
            terms["sparsity"] = blend_sparsity(fields.blend_coarse, fields.blend_fine, keep)
    else:
        if cfg.maskless_w_avg_weight > 0:
            terms["w_avg"] = torch.linalg.vector_norm(ws - G.w_avg.to(ws))
        if cfg.maskless_delta_weight > 0:
            terms["delta"] = layer_delta_norms(ws)
    if cfg.depth_weight > 0 and targets.depth is not None:
        terms["depth"] = depth_prior_loss(out.image_depth, targets.depth)
    return terms


def ood_weights(cfg: OODConfig) -> dict[str, float]:
    """The weight of each term of :func:`ood_loss_terms`."""
    return {"raw_mse": cfg.raw_mse_weight, "raw_lpips": cfg.raw_lpips_weight, "sr_mse": cfg.sr_mse_weight,
            "entropy": cfg.entropy_weight, "area": cfg.area_weight, "ood_mse": cfg.ood_mse_weight,
            "sparsity": cfg.sparsity_weight, "w_avg": cfg.maskless_w_avg_weight,
            "delta": cfg.maskless_delta_weight, "depth": cfg.depth_weight}


def fit_ood(G: EG3DGenerator, ws: Tensor, field: OODField, phi: Tensor, targets: Targets, config: InNOutConfig,
            perceptual: PerceptualLoss | None, callback: StepCallback | None = None) -> tuple[Tensor, dict[str, Any]]:
    """Stage 2: Adam on the OOD field and ``phi`` at ``lr``, on the latent at ``lr * ws_lr_scale``; ``G`` frozen.

    ``field`` and ``phi`` ``(1, 32)`` (a leaf tensor) are updated in place; returns the refined latent and facts.
    """
    cfg = config.ood
    latent = ws.detach().clone().requires_grad_(cfg.ws_lr_scale > 0)
    groups: list[dict[str, Any]] = [{"params": [*field.parameters(), phi], "lr": cfg.lr}]
    if cfg.ws_lr_scale > 0:
        groups.append({"params": [latent], "lr": cfg.lr * cfg.ws_lr_scale})
    optimizer = torch.optim.Adam(groups, betas=ADAM_BETAS)
    weights = ood_weights(cfg)
    planes = None if latent.requires_grad else fixed_planes(G, latent)
    last: dict[str, float] = {}
    with frozen(G):
        for step in range(cfg.steps):
            out = _composite(G, latent, field, phi, targets, config, cfg.deterministic_render,
                             superresolve=cfg.sr_mse_weight > 0, planes=planes)
            terms = ood_loss_terms(G, out, latent, targets, cfg, perceptual)
            loss = sum((weights[k] * v for k, v in terms.items()), torch.zeros((), device=ws.device))
            check_finite(loss, step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            last = {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in terms.items()}}
            if callback is not None:
                callback(step, last)
    return latent.detach(), {"ood_steps": cfg.steps, "ood_last": last, "ood_mask_used": targets.ood_mask is not None}


def superresolution_names(G: EG3DGenerator) -> list[str]:
    """State-dict names of the SR module's parameters."""
    return [f"superresolution.{name}" for name, _ in G.superresolution.named_parameters()]


def tune_superresolution(G: EG3DGenerator, ws: Tensor, field: OODField, phi: Tensor, targets: Targets,
                         config: InNOutConfig, perceptual: PerceptualLoss | None,
                         callback: StepCallback | None = None) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Stage 3: Adam on copies of the SR parameters only, ``MSE + LPIPS`` of the SR composite at full resolution.

    The latent and the OOD field are fixed here, so the tri-planes are computed once; with ``deterministic_render``
    the whole raw composite is (the released code re-renders it with depth jitter at every step).

    Returns the tuned SR tensors by the generator's state-dict names (empty with 0 steps) and facts.
    """
    cfg: SRConfig = config.sr
    if cfg.steps == 0:
        return {}, {"sr_steps": 0}
    state = G.state_dict()
    tuned = {name: state[name].detach().clone().requires_grad_(True) for name in superresolution_names(G)}
    optimizer = torch.optim.Adam(list(tuned.values()), lr=cfg.lr, betas=ADAM_BETAS)
    field.requires_grad_(False)
    planes = fixed_planes(G, ws)
    cached = None
    last: dict[str, float] = {}
    try:
        with frozen(G), substituted_tensors(G, tuned):
            for step in range(cfg.steps):
                if cached is None or not cfg.deterministic_render:
                    with torch.no_grad():
                        cached = _composite(G, ws, field, phi.detach(), targets, config, cfg.deterministic_render,
                                            superresolve=False, planes=planes)
                image = composite_sr(G, cached.image_raw, cached.feature_image, ws, config.sr_noise_mode)
                terms: dict[str, Tensor] = {}
                if cfg.mse_weight > 0:
                    terms["sr_mse"] = F.mse_loss(image, targets.image)
                if cfg.lpips_weight > 0:
                    assert perceptual is not None
                    terms["sr_lpips"] = perceptual(image, targets.image).mean()
                loss = cfg.mse_weight * terms.get("sr_mse", 0.0) + cfg.lpips_weight * terms.get("sr_lpips", 0.0)
                assert isinstance(loss, Tensor)
                check_finite(loss, step)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                last = {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in terms.items()}}
                if callback is not None:
                    callback(step, last)
    finally:
        field.requires_grad_(True)
    return {k: v.detach() for k, v in tuned.items()}, {"sr_steps": cfg.steps, "sr_last": last}


__all__ = ["StepCallback", "Targets", "delta_regularizer", "fit_ood", "fixed_planes", "ood_loss_terms", "ood_weights",
           "random_start", "superresolution_names", "tune_superresolution"]
