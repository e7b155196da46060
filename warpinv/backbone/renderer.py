"""EG3D's tri-plane volume renderer: plane sampling, the OSG decoder, ray marching, importance sampling.

Official quirks kept on purpose (see ``../shared/reference/eg3d.md`` section (b)):

- the third plane is sampled at ``(z, x)``, not ``(y, z)``;
- densities are averaged between samples, then ``softplus(sigma - 1)``;
- the composite depth is clamped to the min/max of *all* sample depths of the call (batch-wide);
- the marcher maps all feature channels to ``2c - 1``, not only RGB;
- importance sampling never uses the last midpoint interval.

``deterministic=True`` removes every random draw: coarse depths are exactly
``linspace(ray_start, ray_end, D)`` and importance samples use ``u = linspace(0, 1, N)``.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from warpinv.backbone.ops import TexelTable, plane_grid_sample, plane_mean_sample
from warpinv.backbone.stylegan2 import FullyConnectedLayer

#: For each plane, which point coordinates become the grid's (u, v) = (width, height) axes.
#: Plane 2 reads (z, x): the official projection's quirk.
PLANE_AXES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (2, 0))
#: The axes with the third plane corrected to (z, y), as generators built with the official-kwarg-compatible
#: ``fixed_planes=True`` read them (WarpGAN's LPFF EG3D, ``generate_planes(fixed_planes)`` of its renderer).
FIXED_PLANE_AXES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (2, 1))
PlaneAxes = tuple[tuple[int, int], ...]

#: A radiance field evaluated at points: (coordinates (N,P,3), directions (N,P,3)) -> dict with
#: ``rgb`` (N,P,C) and ``sigma`` (N,P,1) (raw, before the marcher's softplus), optionally ``blend``.
RadianceField = Callable[[Tensor, Tensor], dict[str, Tensor]]
#: Edits the tri-plane features of points before the decoder reads them: (coordinates (N,P,3) world
#: points, features (N,3,P,C) per plane, as :func:`sample_from_planes` returns them) -> features of
#: the same shape. E3DGE-style encoders add pixel-aligned features here (the field hook).
FeatureHook = Callable[[Tensor, Tensor], Tensor]


def project_onto_planes(coordinates: Tensor, plane_axes: PlaneAxes = PLANE_AXES) -> Tensor:
    """Grid coordinates of points on the three planes.

    Args:
        coordinates: ``(N, M, 3)`` points, already scaled to the ``[-1, 1]`` box.
        plane_axes: :data:`PLANE_AXES` (EG3D) or :data:`FIXED_PLANE_AXES`.

    Returns:
        ``(N, 3, M, 2)`` ``(u, v)`` per plane.
    """
    return torch.stack([coordinates[..., list(axes)] for axes in plane_axes], dim=1)


def sample_from_planes(planes: Tensor, coordinates: Tensor, box_warp: float,
                       texels: TexelTable | None = None, plane_axes: PlaneAxes = PLANE_AXES) -> Tensor:
    """Bilinear features of points from tri-planes; points outside the box read zeros.

    Args:
        planes: ``(N, 3, C, H, W)``.
        coordinates: ``(N, M, 3)`` world points; the box ``[-box_warp/2, box_warp/2]^3`` maps to
            ``[-1, 1]^3``.
        texels: ``TexelTable(planes)`` when several lookups share one conversion of the planes.
        plane_axes: see :func:`project_onto_planes`.

    Returns:
        ``(N, 3, M, C)`` features per plane.
    """
    n, n_planes, c, h, w = planes.shape
    m = coordinates.shape[1]
    grid = project_onto_planes((2.0 / box_warp) * coordinates, plane_axes).reshape(n * n_planes, 1, m, 2)
    out = plane_grid_sample(texels or TexelTable.for_lookups(planes, m), grid.float())
    return out.reshape(n, n_planes, c, m).transpose(2, 3)


def sample_plane_mean(planes: Tensor, coordinates: Tensor, box_warp: float, texels: TexelTable | None = None,
                      plane_axes: PlaneAxes = PLANE_AXES) -> Tensor:
    """``mean_over_planes(sample_from_planes(...))`` in one lookup: ``(N, 3, C, H, W)``, ``(N, M, 3)`` ->
    ``(N, M, C)`` (equal to float rounding; EG3D's decoder input without the per-plane features).

    Coordinates that need a gradient take the two-step path (``grid_sample`` gives them theirs).
    """
    m = coordinates.shape[1]
    if coordinates.requires_grad:
        return mean_over_planes(sample_from_planes(planes, coordinates, box_warp, texels, plane_axes))
    grid = torch.stack([coordinates[..., list(axes)] for axes in plane_axes], dim=2) * (2.0 / box_warp)
    return plane_mean_sample(texels or TexelTable.for_lookups(planes, m), grid.float())


def mean_over_planes(features: Tensor) -> Tensor:
    """``(N, 3, M, C)`` -> ``(N, M, C)``, reducing in the features' memory order.

    :func:`sample_from_planes` returns channel-last features from the texel table but a transposed view of
    ``(N, 3, C, M)`` from ``grid_sample`` (a grid that needs a gradient). Averaging against the memory order is a
    strided reduction 5-10x slower on a CPU (same values, same order), so each layout is reduced in its own.
    """
    if features.stride(-1) == 1:
        return features.mean(1)
    return features.transpose(2, 3).mean(1).transpose(1, 2)


class OSGDecoder(nn.Module):
    """EG3D's tiny MLP: mean plane feature -> (raw sigma, sigmoid-clamped features).

    ``FC(C -> 64) -> Softplus -> FC(64 -> 1 + out)``; ray directions are ignored, as in the official
    decoder. Parameter names ``net.0.*`` and ``net.2.*`` match the official state dict.
    """

    def __init__(self, n_features: int = 32, hidden_dim: int = 64, output_dim: int = 32, lr_multiplier: float = 1.0):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.net = nn.Sequential(
            FullyConnectedLayer(n_features, hidden_dim, lr_multiplier=lr_multiplier),
            nn.Softplus(),
            FullyConnectedLayer(hidden_dim, 1 + output_dim, lr_multiplier=lr_multiplier),
        )

    def forward(self, sampled_features: Tensor, ray_directions: Tensor | None = None) -> dict[str, Tensor]:
        """``sampled_features``: ``(N, 3, M, C)`` -> ``rgb (N, M, out)``, ``sigma (N, M, 1)``."""
        del ray_directions
        return self.decode_mean(mean_over_planes(sampled_features))

    def decode_mean(self, x: Tensor) -> dict[str, Tensor]:
        """The decoder after the plane mean: ``(N, M, C)`` -> ``rgb (N, M, out)``, ``sigma (N, M, 1)``."""
        n, m, c = x.shape
        x = self.net(x.reshape(n * m, c)).reshape(n, m, -1)
        # MipNeRF's widened sigmoid, so 0 and 1 are reachable.
        rgb = torch.sigmoid(x[..., 1:]) * (1 + 2 * 0.001) - 0.001
        return {"rgb": rgb, "sigma": x[..., 0:1]}


@dataclass
class MarchResult:
    """Composited ray quantities.

    Attributes:
        rgb: ``(N, M, C)`` features mapped to ``2c - 1``.
        depth: ``(N, M, 1)`` expected distance along the unit ray.
        weights: ``(N, M, S-1, 1)`` per-interval weights.
        depths: ``(N, M, S, 1)`` the sorted sample depths they belong to.
        outer_opacity: ``(N, M, 1)`` the part of the weights that belongs to the second field of
            :func:`march_composite` (``None`` for :func:`march`).
    """

    rgb: Tensor
    depth: Tensor
    weights: Tensor
    depths: Tensor
    outer_opacity: Tensor | None = None


def _midpoints(x: Tensor) -> Tensor:
    return (x[:, :, :-1] + x[:, :, 1:]) / 2


def _alpha(sigma: Tensor, deltas: Tensor) -> Tensor:
    """Opacity of each interval from raw densities at its two ends: ``softplus(mean - 1)``."""
    return 1 - torch.exp(-F.softplus(_midpoints(sigma) - 1) * deltas)


def _transmittance(survive: Tensor) -> Tensor:
    """Exclusive cumulative product along samples, with the official ``+1e-10`` on each factor."""
    shifted = torch.cat([torch.ones_like(survive[:, :, :1]), survive + 1e-10], dim=-2)
    return torch.cumprod(shifted, dim=-2)[:, :, :-1]


def _finish(rgb: Tensor, weights: Tensor, depths: Tensor, options: Mapping[str, Any],
            depth_clamp: str = "batch") -> MarchResult:
    total = weights.sum(2)
    depth = torch.sum(weights * _midpoints(depths), -2) / total
    depth = torch.nan_to_num(depth, float("inf"))
    if depth_clamp == "batch":
        # Official quirk: clamp to the extreme depths of the whole call, not of each ray.
        depth = torch.clamp(depth, torch.min(depths), torch.max(depths))
    else:
        depth = torch.minimum(torch.maximum(depth, depths.amin(dim=-2)), depths.amax(dim=-2))
    if options.get("white_back", False):
        rgb = rgb + 1 - total
    return MarchResult(rgb * 2 - 1, depth, weights, depths)


def _check_clamp_mode(options: Mapping[str, Any]) -> None:
    if options.get("clamp_mode", "softplus") != "softplus":
        raise ValueError(f"only clamp_mode='softplus' is supported (as in EG3D), got {options.get('clamp_mode')!r}")


def interval_weights(densities: Tensor, depths: Tensor) -> Tensor:
    """Per-interval compositing weights ``alpha_i * T_i``: ``(N, M, S, 1)`` -> ``(N, M, S-1, 1)``."""
    alpha = _alpha(densities, depths[:, :, 1:] - depths[:, :, :-1])
    return alpha * _transmittance(1 - alpha)


def sample_weights(weights: Tensor) -> Tensor:
    """Spread interval weights onto samples: ``sum_i w_i (c_i + c_{i+1}) / 2 == sum_k v_k c_k``.

    ``(N, M, S-1, 1)`` -> ``(N, M, S, 1)``. Compositing with ``v`` never builds the midpoint colours
    (a tensor the size of all samples' features).
    """
    return 0.5 * (F.pad(weights, (0, 0, 1, 0)) + F.pad(weights, (0, 0, 0, 1)))


def composite(per_sample: Tensor, colors: Tensor) -> Tensor:
    """``sum_k v_k c_k`` over samples: ``(N, M, S, 1)``, ``(N, M, S, C)`` -> ``(N, M, C)``."""
    return torch.matmul(per_sample.transpose(-1, -2), colors).squeeze(-2)


def march(colors: Tensor, densities: Tensor, depths: Tensor, options: Mapping[str, Any]) -> MarchResult:
    """EG3D's ``MipRayMarcher2``: alpha compositing of interval midpoints.

    Args:
        colors: ``(N, M, S, C)``; densities: ``(N, M, S, 1)`` raw; depths: ``(N, M, S, 1)`` sorted.
    """
    _check_clamp_mode(options)
    weights = interval_weights(densities, depths)
    return _finish(composite(sample_weights(weights), colors), weights, depths, options)


#: Where :func:`march_composite` clamps the expected depth: ``batch`` = to the extreme sample depths of the whole
#: call (EG3D's and In-N-Out's released marchers), ``ray`` = to each ray's own sample range.
DEPTH_CLAMP_MODES = ("batch", "ray")
#: How :func:`march_composite` attenuates light: ``product`` = ``prod (1 - b*a_out)(1 - (1-b)*a_in)``
#: (In-N-Out's released ``blend_forward``), ``density_sum`` = ``exp(-sum (sigma_out + sigma_in) delta)``
#: (the In-N-Out paper's ``T^C``, not in the released code).
TRANSMITTANCE_MODES = ("product", "density_sum")


def march_composite(inner: dict[str, Tensor], outer: dict[str, Tensor], depths: Tensor,
                    options: Mapping[str, Any], transmittance: str = "product",
                    depth_clamp: str = "batch") -> MarchResult:
    """Composite two fields with a per-sample blend ``b`` (In-N-Out's ``blend_forward``).

    Colour is ``sum T (b*a_out*c_out + (1-b)*a_in*c_in)`` with ``T`` from ``transmittance``
    (:data:`TRANSMITTANCE_MODES`); the depth is clamped by ``depth_clamp`` (:data:`DEPTH_CLAMP_MODES`). ``b = 0``
    reproduces :func:`march` of ``inner``, ``b = 1`` that of
    ``outer`` (``product`` mode). ``b`` is not clamped: In-N-Out's OOD removal scales it past 1.

    Args:
        inner, outer: dicts with ``rgb (N, M, S, C)``, ``sigma (N, M, S, 1)``; ``outer`` also holds
            ``blend (N, M, S, 1)``.
        depths: ``(N, M, S, 1)``.
    """
    _check_clamp_mode(options)
    if transmittance not in TRANSMITTANCE_MODES:
        raise ValueError(f"transmittance must be one of {TRANSMITTANCE_MODES}, got {transmittance!r}")
    if depth_clamp not in DEPTH_CLAMP_MODES:
        raise ValueError(f"depth_clamp must be one of {DEPTH_CLAMP_MODES}, got {depth_clamp!r}")
    deltas = depths[:, :, 1:] - depths[:, :, :-1]
    blend = _midpoints(outer["blend"])
    alpha_out, alpha_in = _alpha(outer["sigma"], deltas), _alpha(inner["sigma"], deltas)
    a_out, a_in = alpha_out * blend, alpha_in * (1 - blend)
    survive = (1 - a_out) * (1 - a_in) if transmittance == "product" else (1 - alpha_out) * (1 - alpha_in)
    trans = _transmittance(survive)
    rgb = torch.sum(trans * (a_out * _midpoints(outer["rgb"]) + a_in * _midpoints(inner["rgb"])), -2)
    result = _finish(rgb, trans * (a_out + a_in), depths, options, depth_clamp)
    result.outer_opacity = torch.sum(trans * a_out, -2)
    return result


def ray_box_limits(origins: Tensor, directions: Tensor, box_side: float) -> tuple[Tensor, Tensor]:
    """Entry/exit distances of rays through the centred cube of side ``box_side`` (slab method).

    Returns ``(start, end)`` each ``(N, M, 1)``; rays that miss get ``start = -1, end = -2`` (the
    official convention, so ``end > start`` marks valid rays).
    """
    half = box_side / 2
    inv = 1.0 / directions.detach()
    t0 = (-half - origins.detach()) * inv
    t1 = (half - origins.detach()) * inv
    start = torch.minimum(t0, t1).amax(dim=-1, keepdim=True)
    end = torch.maximum(t0, t1).amin(dim=-1, keepdim=True)
    valid = end >= start
    return torch.where(valid, start, torch.full_like(start, -1.0)), torch.where(valid, end, torch.full_like(end, -2.0))


@dataclass
class RaySamples:
    """The samples of one render, before marching.

    Attributes:
        coarse_depths: ``(N, M, D, 1)`` stratified depths; ``coarse``: the field there (``rgb (N, M, D, C)``,
            ``sigma (N, M, D, 1)``).
        fine_depths: ``(N, M, I, 1)`` importance depths and ``fine`` the field there, or ``None`` without an
            importance pass.
    """

    coarse_depths: Tensor
    coarse: dict[str, Tensor]
    fine_depths: Tensor | None = None
    fine: dict[str, Tensor] | None = None


class ImportanceRenderer(nn.Module):
    """Two-pass volume renderer over tri-planes (coarse stratified pass, then importance pass).

    ``forward`` returns the official triple through :class:`RenderOutput`; ``extra_field`` composites
    a second radiance field (evaluated at the same samples) with its blend, as In-N-Out does.

    Args:
        fixed_planes: read the third plane as (z, y) (:data:`FIXED_PLANE_AXES`), as the official
            ``ImportanceRenderer(fixed_planes)`` of WarpGAN's EG3D does; EG3D's own (z, x) by default.
    """

    def __init__(self, fixed_planes: bool = False) -> None:
        super().__init__()
        self.ray_marcher = MipRayMarcher()
        self.plane_axes: PlaneAxes = FIXED_PLANE_AXES if fixed_planes else PLANE_AXES

    def forward(
        self,
        planes: Tensor,
        decoder: nn.Module,
        ray_origins: Tensor,
        ray_directions: Tensor,
        options: Mapping[str, Any],
        deterministic: bool = False,
        generator: torch.Generator | None = None,
        extra_field: RadianceField | None = None,
        feature_hook: FeatureHook | None = None,
    ) -> RenderOutput:
        """Render rays.

        Args:
            planes: ``(N, 3, C, H, W)``; ray_origins, ray_directions: ``(N, M, 3)`` (unit directions).
            options: EG3D ``rendering_kwargs``.
            generator: RNG for the stochastic mode (the global RNG when ``None``).
            extra_field: optional second field, composited with its ``blend``.
            feature_hook: optional edit of the plane features of every sample before the decoder
                (both passes; the importance draw then follows the edited densities).
        """
        _check_clamp_mode(options)
        rays = self.sample_rays(planes, decoder, ray_origins, ray_directions, options, deterministic, generator,
                                feature_hook)
        if rays.fine is None:
            depths, samples = rays.coarse_depths, rays.coarse
        elif extra_field is None:
            result = march_two_sets(rays.coarse_depths, rays.coarse, rays.fine_depths, rays.fine, options)
            return RenderOutput(result.rgb, result.depth, result.weights.sum(2), result.weights, result.depths)
        else:
            depths, samples = unify_samples(rays.coarse_depths, rays.coarse, rays.fine_depths, rays.fine)
        if extra_field is None:
            result = march(samples["rgb"], samples["sigma"], depths, options)
        else:
            result = march_composite(samples, self.evaluate(extra_field, ray_origins, ray_directions, depths),
                                     depths, options)
        return RenderOutput(result.rgb, result.depth, result.weights.sum(2), result.weights, result.depths)

    def sample_rays(self, planes: Tensor, decoder: nn.Module, ray_origins: Tensor, ray_directions: Tensor,
                    options: Mapping[str, Any], deterministic: bool = False,
                    generator: torch.Generator | None = None, feature_hook: FeatureHook | None = None) -> RaySamples:
        """The two sampling passes of :meth:`forward`, before any marching: stratified coarse depths and the
        field there, then (with ``depth_resolution_importance > 0``) importance depths and the field there.

        Methods that composite their own second field at these samples (In-N-Out) start from here.
        """
        field = self.plane_field(planes, decoder, options, feature_hook)
        depths = self.coarse_depths(ray_origins, ray_directions, options, deterministic, generator)
        samples = self.evaluate(field, ray_origins, ray_directions, depths)
        n_importance = options["depth_resolution_importance"]
        if n_importance <= 0:
            return RaySamples(depths, samples)
        weights = interval_weights(samples["sigma"], depths)
        fine_depths = self.sample_importance(depths, weights, n_importance, deterministic, generator)
        return RaySamples(depths, samples, fine_depths, self.evaluate(field, ray_origins, ray_directions, fine_depths))

    def plane_field(self, planes: Tensor, decoder: nn.Module, options: Mapping[str, Any],
                    feature_hook: FeatureHook | None = None) -> RadianceField:
        """The radiance field of tri-planes + decoder, with EG3D's optional ``density_noise`` and an optional
        :data:`FeatureHook` between the plane lookup and the decoder.

        Its lookups (the coarse and the fine pass) share one texel table, made on the first call.
        """
        shared: list[TexelTable] = []

        def field(coordinates: Tensor, directions: Tensor) -> dict[str, Tensor]:
            if not shared:
                shared.append(TexelTable.for_lookups(planes, coordinates.shape[1]))
            return run_model(planes, decoder, coordinates, directions, options, texels=shared[0],
                             feature_hook=feature_hook, plane_axes=self.plane_axes)

        return field

    @staticmethod
    def evaluate(field: RadianceField, origins: Tensor, directions: Tensor, depths: Tensor) -> dict[str, Tensor]:
        """Evaluate ``field`` at ``origin + depth * direction``; depths ``(N, M, S, 1)`` -> ``(N, M, S, C)``."""
        n, m, s, _ = depths.shape
        coords = (origins.unsqueeze(-2) + depths * directions.unsqueeze(-2)).reshape(n, -1, 3)
        dirs = directions.unsqueeze(-2).expand(-1, -1, s, -1).reshape(n, -1, 3)
        out = field(coords, dirs)
        return {k: v.reshape(n, m, s, v.shape[-1]) for k, v in out.items()}

    @staticmethod
    def coarse_depths(origins: Tensor, directions: Tensor, options: Mapping[str, Any], deterministic: bool,
                      generator: torch.Generator | None) -> Tensor:
        """Stratified depths ``(N, M, D, 1)``: linspace bin starts plus uniform jitter of one bin."""
        d = options["depth_resolution"]
        start, end = options["ray_start"], options["ray_end"]
        if start == "auto" and end == "auto":
            start, end = ray_box_limits(origins, directions, options["box_warp"])
            valid = end > start
            if torch.any(valid):
                # Official quirk kept: invalid rays get [min start, max start] of the valid rays.
                start = torch.where(valid, start, start[valid].min())
                end = torch.where(valid, end, start[valid].max())
        n, m, _ = origins.shape
        steps = torch.linspace(0, 1, d, device=origins.device)
        if options.get("disparity_space_sampling", False):
            t = steps.reshape(1, 1, d, 1).repeat(n, m, 1, 1)
            if not deterministic:
                t = t + _uniform(t, generator) / (d - 1)
            return 1.0 / (1.0 / start * (1.0 - t) + 1.0 / end * t)
        if isinstance(start, Tensor):
            depths = (start.unsqueeze(-2) + steps.reshape(1, 1, d, 1) * (end - start).unsqueeze(-2))
            delta = ((end - start) / (d - 1)).unsqueeze(-2)
        else:
            depths = torch.linspace(start, end, d, device=origins.device).reshape(1, 1, d, 1).repeat(n, m, 1, 1)
            delta = (end - start) / (d - 1)
        if deterministic:
            return depths
        return depths + _uniform(depths, generator) * delta

    @staticmethod
    def sample_importance(depths: Tensor, weights: Tensor, n_importance: int, deterministic: bool,
                          generator: torch.Generator | None) -> Tensor:
        """Inverse-CDF samples ``(N, M, n_importance, 1)`` from smoothed coarse weights (no gradient)."""
        with torch.no_grad():
            n, m, s, _ = depths.shape
            z = depths.reshape(n * m, s)
            w = weights.reshape(n * m, 1, -1).float()
            w = F.avg_pool1d(F.max_pool1d(w, 2, 1, padding=1), 2, 1).reshape(n * m, -1) + 0.01
            bins = 0.5 * (z[:, :-1] + z[:, 1:])
            fine = sample_pdf(bins, w[:, 1:-1], n_importance, deterministic, generator)
        return fine.detach().reshape(n, m, n_importance, 1)


class MipRayMarcher(nn.Module):
    """Module wrapper of :func:`march` (the official ``renderer.ray_marcher`` attribute)."""

    def forward(self, colors: Tensor, densities: Tensor, depths: Tensor, options: Mapping[str, Any]) -> MarchResult:
        return march(colors, densities, depths, options)


@dataclass
class RenderOutput:
    """What the renderer returns.

    Attributes:
        features: ``(N, M, C)`` composited features in ``[-1, 1]`` (first 3 are RGB).
        depth: ``(N, M, 1)``.
        weight_sum: ``(N, M, 1)`` opacity.
        weights: ``(N, M, S-1, 1)`` per-interval weights of the final pass.
        depths: ``(N, M, S, 1)`` sorted sample depths of the final pass.
    """

    features: Tensor
    depth: Tensor
    weight_sum: Tensor
    weights: Tensor
    depths: Tensor

    def __iter__(self):
        """Unpacks as the official triple ``(features, depth, weight_sum)``."""
        return iter((self.features, self.depth, self.weight_sum))


def run_model(planes: Tensor, decoder: nn.Module, coordinates: Tensor, directions: Tensor,
              options: Mapping[str, Any], texels: TexelTable | None = None,
              feature_hook: FeatureHook | None = None, plane_axes: PlaneAxes = PLANE_AXES) -> dict[str, Tensor]:
    """Decode tri-plane features at points: ``(N, P, 3)`` -> ``rgb (N, P, C)``, ``sigma (N, P, 1)``.

    ``feature_hook`` (see :data:`FeatureHook`) edits the sampled features before the decoder;
    ``plane_axes`` as in :func:`project_onto_planes`. Without a hook, EG3D's :class:`OSGDecoder` reads the plane
    mean of one fused lookup (:func:`sample_plane_mean`).
    """
    if feature_hook is None and isinstance(decoder, OSGDecoder):
        out = decoder.decode_mean(sample_plane_mean(planes, coordinates, options["box_warp"], texels, plane_axes))
    else:
        features = sample_from_planes(planes, coordinates, options["box_warp"], texels, plane_axes)
        if feature_hook is not None:
            features = feature_hook(coordinates, features)
        out = decoder(features, directions)
    noise = options.get("density_noise", 0)
    if noise > 0:
        out["sigma"] = out["sigma"] + torch.randn_like(out["sigma"]) * noise
    return out


def unify_samples(depths1: Tensor, samples1: dict[str, Tensor], depths2: Tensor,
                  samples2: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    """Merge two sample sets along the ray and sort by depth. Depths ``(N, M, S, 1)``."""
    depths = torch.cat([depths1, depths2], dim=-2)
    _, order = torch.sort(depths, dim=-2)
    merged = {}
    for key in samples1:
        values = torch.cat([samples1[key], samples2[key]], dim=-2)
        merged[key] = torch.gather(values, -2, order.expand(-1, -1, -1, values.shape[-1]))
    return torch.gather(depths, -2, order), merged


def march_two_sets(depths1: Tensor, samples1: dict[str, Tensor], depths2: Tensor, samples2: dict[str, Tensor],
                   options: Mapping[str, Any]) -> MarchResult:
    """:func:`march` of the union of two sample sets, equal to marching :func:`unify_samples`' output.

    Only depths and densities are merged and sorted; each set's colours are composited with its own
    per-sample weights, so the (large) colour tensors are never concatenated or gathered.
    """
    depths = torch.cat([depths1, depths2], dim=-2)
    depths, order = torch.sort(depths, dim=-2)
    sigma = torch.gather(torch.cat([samples1["sigma"], samples2["sigma"]], dim=-2), -2, order)
    weights = interval_weights(sigma, depths)
    per_sample = torch.zeros_like(depths).scatter(-2, order, sample_weights(weights))
    s1 = depths1.shape[-2]
    rgb = composite(per_sample[:, :, :s1], samples1["rgb"]) + composite(per_sample[:, :, s1:], samples2["rgb"])
    return _finish(rgb, weights, depths, options)


def sample_pdf(bins: Tensor, weights: Tensor, n_samples: int, deterministic: bool,
               generator: torch.Generator | None = None, eps: float = 1e-5) -> Tensor:
    """Inverse-transform sampling of piecewise-constant weights.

    Args:
        bins: ``(R, B)`` bin edges; weights: ``(R, B - 2)``. The official code passes one weight fewer
            than it has intervals, so the last interval is never sampled; we keep that.

    Returns:
        ``(R, n_samples)`` depths.
    """
    rays, n_w = weights.shape
    weights = weights + eps
    pdf = weights / torch.sum(weights, -1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, -1)], -1)
    if deterministic:
        u = torch.linspace(0, 1, n_samples, device=bins.device).expand(rays, n_samples)
    else:
        u = torch.rand(rays, n_samples, device=bins.device, generator=generator)
    u = u.contiguous()
    idx = torch.searchsorted(cdf, u, right=True)
    below = torch.clamp_min(idx - 1, 0)
    above = torch.clamp_max(idx, n_w)
    pairs = torch.stack([below, above], -1).reshape(rays, 2 * n_samples)
    cdf_g = torch.gather(cdf, 1, pairs).reshape(rays, n_samples, 2)
    bins_g = torch.gather(bins, 1, pairs).reshape(rays, n_samples, 2)
    denom = cdf_g[..., 1] - cdf_g[..., 0]
    denom = torch.where(denom < eps, torch.ones_like(denom), denom)
    return bins_g[..., 0] + (u - cdf_g[..., 0]) / denom * (bins_g[..., 1] - bins_g[..., 0])


def _uniform(like: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.rand(like.shape, device=like.device, dtype=like.dtype, generator=generator)
