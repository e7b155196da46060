"""In-N-Out's composite render: EG3D's field (in-distribution, InD) and the OOD field marched together.

Both fields are evaluated at the InD renderer's samples (:meth:`ImportanceRenderer.sample_rays`: coarse
stratified, then importance samples from the InD weights) and marched by the backbone's
:func:`~warpinv.backbone.renderer.march_composite` (no second marcher here). What this module adds is how the two
sample sets are paired, the OOD-only render, the raw per-sample blends the losses need, and the super-resolution
of the composite.

``pairing="official"`` keeps a quirk of the released ``TriPlaneItem`` (``triplanes_split.py:303-321``): the OOD
field draws its own importance depths from its own coarse weights and sorts its outputs (computed at the InD
points) by them, while the InD outputs are sorted by the InD depths; ``blend_forward`` then pairs the k-th
samples of both, which can belong to different points. ``pairing="matched"`` pairs each point with itself.
The OOD-only render uses the OOD depths in official mode (as released) and the InD depths when matched.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from warpinv.backbone import EG3DGenerator
from warpinv.backbone.renderer import (
    ImportanceRenderer,
    RaySamples,
    interval_weights,
    march,
    march_composite,
    unify_samples,
)
from warpinv.methods.in_n_out.networks import OODField

Pairing = Literal["official", "matched"]
Transmittance = Literal["product", "density_sum"]
DepthClamp = Literal["batch", "ray"]
#: ``edit(blend (N, M, S, 1)) -> blend``: applied to the sorted OOD blends before marching (OOD removal).
BlendEdit = Callable[[Tensor], Tensor]
#: ``field(coordinates (N, P, 3)) -> {"rgb", "sigma", "blend"}`` at world points.
PointField = Callable[[Tensor], dict[str, Tensor]]


@dataclass
class FieldRender:
    """Per-ray outputs of :func:`render_fields` (``M`` rays, ``S`` samples per ray after merging).

    Attributes:
        features: ``(N, M, C)`` composite features in ``2c - 1`` (first 3: RGB, not clamped).
        depth: ``(N, M, 1)`` composite depth; ``weight_sum``: ``(N, M, 1)`` opacity.
        ood_opacity: ``(N, M, 1)`` the part of the composite weights that comes from the OOD field.
        ood_features, ood_depth: the OOD field marched alone, ``(N, M, C)`` and ``(N, M, 1)``.
        blend_coarse, blend_fine: ``(N, M, D, 1)``, ``(N, M, I, 1)`` raw, unsorted, unedited blends (the losses'
            input, released ``blendw_coarse``/``blendw_fine``).
        ind_sigma, ood_sigma: ``(N, M, S, 1)`` the sorted raw densities as paired for marching.
    """

    features: Tensor
    depth: Tensor
    weight_sum: Tensor
    ood_opacity: Tensor
    ood_features: Tensor
    ood_depth: Tensor
    blend_coarse: Tensor
    blend_fine: Tensor | None
    ind_sigma: Tensor
    ood_sigma: Tensor


def _at_depths(field: PointField, origins: Tensor, directions: Tensor, depths: Tensor) -> dict[str, Tensor]:
    return ImportanceRenderer.evaluate(lambda x, _d: field(x), origins, directions, depths)


def _ood_own_fine_depths(ood_coarse: dict[str, Tensor], rays: RaySamples, deterministic: bool,
                         generator: torch.Generator | None) -> Tensor:
    """The importance depths the released OOD field draws from its own coarse weights (``pairing='official'``)."""
    assert rays.fine_depths is not None
    weights = interval_weights(ood_coarse["sigma"], rays.coarse_depths)
    return ImportanceRenderer.sample_importance(rays.coarse_depths, weights, rays.fine_depths.shape[-2],
                                                deterministic, generator)


def render_fields(rays: RaySamples, ood_field: PointField, origins: Tensor, directions: Tensor,
                  options: Mapping[str, Any], *, pairing: Pairing = "official",
                  transmittance: Transmittance = "product", blend_edit: BlendEdit | None = None,
                  depth_clamp: DepthClamp = "batch", deterministic: bool = False,
                  generator: torch.Generator | None = None) -> FieldRender:
    """Composite the OOD field with the InD samples ``rays`` of one render.

    Args:
        rays: the InD samples (:meth:`ImportanceRenderer.sample_rays`).
        ood_field: the OOD field at world points.
        origins, directions: ``(N, M, 3)`` the rays.
        options: EG3D ``rendering_kwargs``.
        pairing: ``official`` (released sample pairing, see the module docstring) or ``matched``.
        transmittance: ``product`` (released) or ``density_sum`` (paper), see
            :data:`~warpinv.backbone.renderer.TRANSMITTANCE_MODES`.
        blend_edit: applied to the paired, sorted OOD blends before marching (OOD removal).
        depth_clamp: ``batch`` (released: the composite depth is clamped to the range of all depths of the call) or
            ``ray`` (each ray's own range), see :data:`~warpinv.backbone.renderer.DEPTH_CLAMP_MODES`.
        deterministic, generator: the OOD importance draw of ``pairing='official'``.
    """
    if pairing not in ("official", "matched"):
        raise ValueError(f"pairing must be 'official' or 'matched', got {pairing!r}")
    ood_coarse = _at_depths(ood_field, origins, directions, rays.coarse_depths)
    if rays.fine is None:
        depths, ind, ood, ood_depths, blend_fine = rays.coarse_depths, rays.coarse, ood_coarse, rays.coarse_depths, None
    else:
        ood_fine = _at_depths(ood_field, origins, directions, rays.fine_depths)
        depths, ind = unify_samples(rays.coarse_depths, rays.coarse, rays.fine_depths, rays.fine)
        own = (_ood_own_fine_depths(ood_coarse, rays, deterministic, generator) if pairing == "official"
               else rays.fine_depths)
        ood_depths, ood = unify_samples(rays.coarse_depths, ood_coarse, own, ood_fine)
        blend_fine = ood_fine["blend"]
    alone = march(ood["rgb"], ood["sigma"], ood_depths, options)
    if blend_edit is not None:
        ood = {**ood, "blend": blend_edit(ood["blend"])}
    result = march_composite(ind, ood, depths, options, transmittance=transmittance, depth_clamp=depth_clamp)
    assert result.outer_opacity is not None
    return FieldRender(result.rgb, result.depth, result.weights.sum(2), result.outer_opacity, alone.rgb, alone.depth,
                       ood_coarse["blend"], blend_fine, ind["sigma"], ood["sigma"])


@dataclass
class CompositeRender:
    """Images of one composite render at raw resolution ``R`` (and the SR output size).

    Attributes:
        image: ``(N, 3, H, W)`` super-resolved composite, clamped to ``[-1, 1]`` (``None`` without SR).
        image_raw: ``(N, 3, R, R)`` raw composite, clamped to ``[-1, 1]`` (released, unlike EG3D's ``image_raw``).
        feature_image: ``(N, C, R, R)`` raw composite features (not clamped).
        image_depth: ``(N, 1, R, R)``.
        blend_map: ``(N, 1, R, R)`` clamped to ``[0, 1]``: the part of each pixel's light that comes from the OOD
            field (``sum_k T_k b_k alpha_O,k``, after any blend edit).
        ood_raw, ood_depth: the OOD field alone, ``(N, 3, R, R)`` clamped and ``(N, 1, R, R)``.
        ood_image: ``(N, 3, H, W)`` the OOD-only render super-resolved (only when asked).
        fields: the per-ray outputs (blends for the losses).
    """

    image: Tensor | None
    image_raw: Tensor
    feature_image: Tensor
    image_depth: Tensor
    blend_map: Tensor
    ood_raw: Tensor
    ood_depth: Tensor
    ood_image: Tensor | None
    fields: FieldRender


def _as_image(values: Tensor, n: int, resolution: int) -> Tensor:
    """``(N, R*R, C)`` -> ``(N, C, R, R)``."""
    return values.permute(0, 2, 1).reshape(n, values.shape[-1], resolution, resolution).contiguous()


def composite_sr(G: EG3DGenerator, image_raw: Tensor, feature_image: Tensor, ws: Tensor,
                 noise_mode: str = "const") -> Tensor:
    """The SR of a composite, clamped to ``[-1, 1]`` (``triplanes_split.py:252``): ``(N, 3, H, W)``."""
    return G.superresolution(image_raw, feature_image, ws, noise_mode=noise_mode).clamp(-1.0, 1.0)


def render_composite(G: EG3DGenerator, ws: Tensor, ood: OODField, phi: Tensor, camera: Tensor, *,
                     resolution: int | None = None, pairing: Pairing = "official",
                     transmittance: Transmittance = "product", blend_edit: BlendEdit | None = None,
                     depth_clamp: DepthClamp = "batch", superresolve: bool = True, ood_superresolve: bool = False,
                     sr_noise_mode: str = "const",
                     deterministic: bool = False, generator: torch.Generator | None = None,
                     planes: Tensor | None = None) -> CompositeRender:
    """Render ``G``'s tri-planes of ``ws`` composited with ``ood`` from ``camera``.

    Args:
        G: the frozen generator (its SR may be a tuned copy's).
        ws: ``(N, num_ws, w_dim)``; camera: ``(N, 25)``; phi: ``(1 or N, 32)``.
        resolution: raw render size ``R`` (``None``: ``G.neural_rendering_resolution``; the attribute is not changed).
        sr_noise_mode: the SR's noise mode (the released composite passes ``'const'``).
        planes: ``G.planes(ws, noise_mode='const')`` when the caller already has them (a fixed latent).
        Others: see :func:`render_fields`.
    """
    res = int(resolution or G.neural_rendering_resolution)
    n = ws.shape[0]
    options = G.rendering_kwargs
    if planes is None:
        planes = G.planes(ws, noise_mode="const")
    elif planes.shape[0] != n:
        planes = planes.expand(n, *planes.shape[1:])
    origins, directions = G.rays(camera, res)
    rays = G.renderer.sample_rays(planes, G.decoder, origins, directions, options, deterministic, generator)
    fields = render_fields(rays, lambda x: ood.evaluate(x, phi, options), origins, directions, options,
                           pairing=pairing, transmittance=transmittance, blend_edit=blend_edit,
                           depth_clamp=depth_clamp, deterministic=deterministic, generator=generator)
    feature_image = _as_image(fields.features, n, res)
    image_raw = feature_image[:, :3].clamp(-1.0, 1.0)
    ood_features = _as_image(fields.ood_features, n, res)
    ood_raw = ood_features[:, :3].clamp(-1.0, 1.0)
    image = ood_image = None
    if superresolve:
        image = composite_sr(G, image_raw, feature_image, ws, sr_noise_mode)
    if ood_superresolve:
        ood_image = composite_sr(G, ood_raw, ood_features, ws, sr_noise_mode)
    return CompositeRender(image, image_raw, feature_image, _as_image(fields.depth, n, res),
                           _as_image(fields.ood_opacity, n, res).clamp(0.0, 1.0), ood_raw,
                           _as_image(fields.ood_depth, n, res), ood_image, fields)


__all__ = ["BlendEdit", "CompositeRender", "DepthClamp", "FieldRender", "Pairing", "PointField", "Transmittance",
           "render_composite", "composite_sr", "render_fields"]
