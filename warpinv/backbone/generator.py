"""``EG3DGenerator``: EG3D's ``TriPlaneGenerator`` in pure PyTorch.

Same constructor keyword arguments, the same state-dict names and order, and the same outputs as the
official class. Methods reuse its pieces rather than copying them:

- :meth:`EG3DGenerator.planes` (ws -> tri-planes),
- :attr:`renderer` (accepts an extra radiance field for composite rendering),
- :attr:`decoder` (the MLP), :attr:`superresolution`, and :meth:`rays` (the ray sampler).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from warpinv.backbone.renderer import (
    FeatureHook,
    ImportanceRenderer,
    OSGDecoder,
    RadianceField,
    RenderOutput,
    run_model,
)
from warpinv.backbone.stylegan2 import StyleGAN2Backbone
from warpinv.backbone.superresolution import build_superresolution
from warpinv.cameras.labels import unpack_label
from warpinv.cameras.rays import generate_rays

PLANE_CHANNELS = 32
PLANE_RESOLUTION = 256


class RaySampler(nn.Module):
    """Module wrapper of :func:`warpinv.cameras.rays.generate_rays` (the official ``ray_sampler``)."""

    def forward(self, cam2world: Tensor, intrinsics: Tensor, resolution: int) -> tuple[Tensor, Tensor]:
        return generate_rays(cam2world, intrinsics, resolution)


class EG3DGenerator(nn.Module):
    """EG3D tri-plane generator.

    Args:
        z_dim, c_dim, w_dim, img_resolution, img_channels, sr_num_fp16_res, mapping_kwargs,
        rendering_kwargs, sr_kwargs, **synthesis_kwargs: exactly the official ``TriPlaneGenerator``
        constructor arguments (see ``warpinv.backbone.presets`` for the released configurations).
        fixed_planes: the keyword WarpGAN's ``TriPlaneGenerator`` adds (its LPFF EG3D is built with it on):
            the third tri-plane is read as (z, y) instead of EG3D's (z, x). Off by default; recorded in
            ``init_kwargs`` (hence in converted files) only when on.

    Attributes:
        neural_rendering_resolution: side of the raw render. The constructor sets 64 (as the
            official one); checkpoints carry the trained value, and ``synthesis(...,
            neural_rendering_resolution=r)`` overwrites it, as the official code does.
    """

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        sr_num_fp16_res: int = 0,
        mapping_kwargs: dict[str, Any] | None = None,
        rendering_kwargs: dict[str, Any] | None = None,
        sr_kwargs: dict[str, Any] | None = None,
        fixed_planes: bool = False,
        **synthesis_kwargs: Any,
    ) -> None:
        super().__init__()
        rendering_kwargs = dict(rendering_kwargs or {})
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.init_kwargs: dict[str, Any] = dict(
            z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
            sr_num_fp16_res=sr_num_fp16_res, mapping_kwargs=dict(mapping_kwargs or {}),
            rendering_kwargs=rendering_kwargs, sr_kwargs=dict(sr_kwargs or {}), **synthesis_kwargs)
        if fixed_planes:
            # Recorded only when on, so the kwargs (and hashes) of every EG3D generator stay as before.
            self.init_kwargs["fixed_planes"] = True
        self.renderer = ImportanceRenderer(fixed_planes=fixed_planes)
        self.ray_sampler = RaySampler()
        self.backbone = StyleGAN2Backbone(z_dim, c_dim, w_dim, img_resolution=PLANE_RESOLUTION,
                                          img_channels=PLANE_CHANNELS * 3, mapping_kwargs=mapping_kwargs,
                                          **synthesis_kwargs)
        self.superresolution = build_superresolution(
            rendering_kwargs["superresolution_module"], channels=PLANE_CHANNELS, img_resolution=img_resolution,
            sr_num_fp16_res=sr_num_fp16_res, sr_antialias=rendering_kwargs["sr_antialias"], **dict(sr_kwargs or {}))
        self.decoder = OSGDecoder(PLANE_CHANNELS, output_dim=PLANE_CHANNELS,
                                  lr_multiplier=rendering_kwargs.get("decoder_lr_mul", 1))
        self.neural_rendering_resolution = 64
        self.rendering_kwargs = rendering_kwargs
        self._last_planes: Tensor | None = None
        #: Where the weights came from (a file, a preset, or 'tiny'); set by the loaders.
        self.source = "constructed (initial weights)"

    @property
    def num_ws(self) -> int:
        return self.backbone.num_ws

    @property
    def w_avg(self) -> Tensor:
        """``(w_dim,)`` the tracked mean w."""
        return self.backbone.mapping.w_avg

    def mapping(self, z: Tensor, c: Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                update_emas: bool = False) -> Tensor:
        """``z (N, z_dim)``, ``c (N, 25)`` -> ``ws (N, num_ws, w_dim)``.

        The camera is zeroed when ``c_gen_conditioning_zero`` and scaled by ``c_scale``, whose default
        is **0** when the key is missing (official behaviour).
        """
        if self.rendering_kwargs.get("c_gen_conditioning_zero", False):
            c = torch.zeros_like(c)
        return self.backbone.mapping(z, c * self.rendering_kwargs.get("c_scale", 0),
                                     truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                                     update_emas=update_emas)

    def planes(self, ws: Tensor, **synthesis_kwargs: Any) -> Tensor:
        """``ws (N, num_ws, w_dim)`` -> tri-planes ``(N, 3, 32, 256, 256)``."""
        planes = self.backbone.synthesis(ws, **synthesis_kwargs)
        return planes.view(len(planes), 3, PLANE_CHANNELS, planes.shape[-2], planes.shape[-1])

    def rays(self, c: Tensor, resolution: int) -> tuple[Tensor, Tensor]:
        """Origins and unit directions ``(N, R*R, 3)`` of the label's camera."""
        cam2world, intrinsics = unpack_label(c)
        return self.ray_sampler(cam2world, intrinsics, resolution)

    def render_planes(
        self,
        planes: Tensor,
        ws: Tensor,
        c: Tensor,
        neural_rendering_resolution: int | None = None,
        deterministic: bool = False,
        generator: torch.Generator | None = None,
        extra_field: RadianceField | None = None,
        superresolve: bool = True,
        feature_hook: FeatureHook | None = None,
        **synthesis_kwargs: Any,
    ) -> dict[str, Tensor]:
        """Render given tri-planes from camera ``c`` (the second half of :meth:`synthesis`).

        ``feature_hook`` edits the plane features of every ray sample before the decoder (see
        :data:`~warpinv.backbone.renderer.FeatureHook`); ``None`` renders the planes as they are.

        Returns:
            ``image (N, 3, R_img, R_img)`` (when ``superresolve``), ``image_raw (N, 3, R, R)``,
            ``image_depth (N, 1, R, R)``, ``feature_image (N, 32, R, R)``, ``weight_sum (N, 1, R, R)``
            (opacity), ``planes``, and the per-ray ``weights (N, R*R, S-1, 1)`` and sample
            ``depths (N, R*R, S, 1)``.
        """
        if neural_rendering_resolution is None:
            neural_rendering_resolution = self.neural_rendering_resolution
        else:
            self.neural_rendering_resolution = neural_rendering_resolution  # official side effect
        res = self.neural_rendering_resolution
        origins, directions = self.rays(c, res)
        out: RenderOutput = self.renderer(planes, self.decoder, origins, directions, self.rendering_kwargs,
                                          deterministic=deterministic, generator=generator, extra_field=extra_field,
                                          feature_hook=feature_hook)
        n = planes.shape[0]
        feature_image = out.features.permute(0, 2, 1).reshape(n, out.features.shape[-1], res, res).contiguous()
        result = {
            "image_raw": feature_image[:, :3],
            "image_depth": out.depth.permute(0, 2, 1).reshape(n, 1, res, res),
            "feature_image": feature_image,
            "weight_sum": out.weight_sum.permute(0, 2, 1).reshape(n, 1, res, res),
            "planes": planes,
            "weights": out.weights,
            "depths": out.depths,
        }
        if superresolve:
            image, raw = self.superresolve_with_raw(result["image_raw"], feature_image, ws, **synthesis_kwargs)
            result["image"] = image
            if raw is not result["image_raw"]:  # the official in-place quirk of the 2X/4X SR modules
                result["image_raw"] = raw
                result["feature_image"] = torch.cat([raw, feature_image[:, 3:]], dim=1)
        return result

    def superresolve(self, image_raw: Tensor, feature_image: Tensor, ws: Tensor, **synthesis_kwargs: Any) -> Tensor:
        """The SR module with EG3D's noise rule: its noise mode comes from ``rendering_kwargs``."""
        return self.superresolve_with_raw(image_raw, feature_image, ws, **synthesis_kwargs)[0]

    def superresolve_with_raw(self, image_raw: Tensor, feature_image: Tensor, ws: Tensor,
                              **synthesis_kwargs: Any) -> tuple[Tensor, Tensor]:
        """SR image and the raw image as the official code returns it (see ``forward_with_raw``)."""
        kwargs = {k: v for k, v in synthesis_kwargs.items() if k != "noise_mode"}
        return self.superresolution.forward_with_raw(image_raw, feature_image, ws,
                                                     noise_mode=self.rendering_kwargs["superresolution_noise_mode"],
                                                     **kwargs)

    def synthesis(
        self,
        ws: Tensor,
        c: Tensor,
        neural_rendering_resolution: int | None = None,
        update_emas: bool = False,
        cache_backbone: bool = False,
        use_cached_backbone: bool = False,
        deterministic: bool = False,
        generator: torch.Generator | None = None,
        **synthesis_kwargs: Any,
    ) -> dict[str, Tensor]:
        """``ws (N, num_ws, w_dim)`` and camera ``c (N, 25)`` -> images (see :meth:`render_planes`).

        ``noise_mode`` (``'random'`` by default, ``'const'``, ``'none'``) applies to the backbone; the
        SR uses ``rendering_kwargs['superresolution_noise_mode']``. ``deterministic=True`` removes
        the renderer's random depth jitter and importance draws.
        """
        del update_emas
        if use_cached_backbone and self._last_planes is not None:
            planes = self._last_planes
        else:
            planes = self.planes(ws, **synthesis_kwargs)
        if cache_backbone:
            self._last_planes = planes
        return self.render_planes(planes, ws, c, neural_rendering_resolution, deterministic=deterministic,
                                  generator=generator, **synthesis_kwargs)

    def sample(self, coordinates: Tensor, directions: Tensor, z: Tensor, c: Tensor, truncation_psi: float = 1.0,
               truncation_cutoff: int | None = None, update_emas: bool = False,
               **synthesis_kwargs: Any) -> dict[str, Tensor]:
        """Raw ``sigma (N, P, 1)`` and ``rgb (N, P, 32)`` at points ``(N, P, 3)`` for latents z."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        return self.sample_mixed(coordinates, directions, ws, **synthesis_kwargs)

    def sample_mixed(self, coordinates: Tensor, directions: Tensor, ws: Tensor, truncation_psi: float = 1.0,
                     truncation_cutoff: int | None = None, update_emas: bool = False,
                     **synthesis_kwargs: Any) -> dict[str, Tensor]:
        """Raw ``sigma`` and ``rgb`` at points for given ``ws`` (truncation args ignored, as official)."""
        del truncation_psi, truncation_cutoff, update_emas
        planes = self.planes(ws, **synthesis_kwargs)
        return run_model(planes, self.decoder, coordinates, directions, self.rendering_kwargs,
                         plane_axes=self.renderer.plane_axes)

    def forward(self, z: Tensor, c: Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                neural_rendering_resolution: int | None = None, update_emas: bool = False,
                cache_backbone: bool = False, use_cached_backbone: bool = False,
                **synthesis_kwargs: Any) -> dict[str, Tensor]:
        """Mapping (conditioned on ``c``) followed by synthesis from ``c``."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        return self.synthesis(ws, c, neural_rendering_resolution=neural_rendering_resolution,
                              cache_backbone=cache_backbone, use_cached_backbone=use_cached_backbone,
                              **synthesis_kwargs)
