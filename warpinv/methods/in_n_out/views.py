"""Rendering an In-N-Out inversion at any cameras: the composite, the composite without its OOD part, and the blend
map (the ``SeparatesOOD`` renderer protocol of :mod:`warpinv.methods.rendering`).

OOD removal follows the released ``remove_ood`` (every blend x ``removal_scale``, then 0 on the rays of the
dilated OOD mask) at the input camera of an image that has a mask. The mask lives in the input view, so at any
other camera, and for images without a mask, removal sets ``b = 0`` everywhere (the paper's "set b = 0").
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from warpinv.checks import check_min
from warpinv.methods.in_n_out.composite import BlendEdit, CompositeRender, render_composite
from warpinv.methods.in_n_out.networks import OODField
from warpinv.methods.in_n_out.removal import ood_rays, remove_ood
from warpinv.methods.rendering import Renders, concat_renders, substituted_tensors

if TYPE_CHECKING:
    from warpinv.backbone import EG3DGenerator
    from warpinv.methods.base import Inversion
    from warpinv.methods.in_n_out.config import InNOutConfig

#: ``factory(cameras (n, 25)) -> BlendEdit`` for one chunk of views.
BlendEditFactory = Callable[[Tensor], BlendEdit]
#: Inversion tensor names: the OOD field's state dict under this prefix, ``phi`` and the optional ``ood_mask``.
FIELD_PREFIX = "ood."


def field_of(inversion: Inversion, config: InNOutConfig) -> OODField:
    """The OOD field stored in ``inversion.tensors`` (strict load)."""
    state = {k[len(FIELD_PREFIX):]: v for k, v in inversion.tensors.items() if k.startswith(FIELD_PREFIX)}
    if "triplanes" not in state:
        raise ValueError(f"inversion {inversion.image_id!r} holds no OOD field ({FIELD_PREFIX}triplanes)")
    planes = state["triplanes"]
    with torch.random.fork_rng(devices=[]):
        field = OODField(planes.shape[2], planes.shape[-1], plane_reduction=config.plane_reduction)
    field.load_state_dict(state, strict=True)
    return field.eval().requires_grad_(False)


class CompositeViewRenderer:
    """Renders one In-N-Out inversion (evaluation renders: deterministic sampling, constant noise).

    Args:
        G: the method's generator (its SR replaced by the inversion's tuned tensors while rendering).
        inversion: ``ws``, ``camera``, the tuned SR tensors and the OOD field, ``phi`` and ``ood_mask``.
        config: the method's settings (pairing, transmittance, removal).
        batch: at most this many views per call.
    """

    def __init__(self, G: EG3DGenerator, inversion: Inversion, config: InNOutConfig, batch: int = 16) -> None:
        check_min(batch, 1, "batch")
        self.G, self.inversion, self.config, self.batch = G, inversion, config, batch
        self.field = field_of(inversion, config)
        self.phi = inversion.tensors["phi"].float()
        self.ood_mask = inversion.tensors.get("ood_mask")
        self.resolution = int(config.neural_rendering_resolution or G.neural_rendering_resolution)

    def _render(self, cameras: Tensor, edit_for: BlendEditFactory | None, ood_superresolve: bool = False
                ) -> list[CompositeRender]:
        device = cameras.device
        ws = self.inversion.ws.to(device)
        field, phi = self.field.to(device), self.phi.to(device)
        cfg = self.config
        out = []
        with torch.no_grad(), substituted_tensors(self.G, {k: v.to(device)
                                                           for k, v in self.inversion.generator_delta.items()}):
            for chunk in cameras.split(self.batch):
                n = chunk.shape[0]
                out.append(render_composite(self.G, ws.expand(n, -1, -1), field, phi, chunk, resolution=self.resolution,
                                            pairing=cfg.pairing,
                                            transmittance=cfg.transmittance, depth_clamp=cfg.depth_clamp,
                                            sr_noise_mode=cfg.sr_noise_mode,
                                            blend_edit=None if edit_for is None else edit_for(chunk),
                                            ood_superresolve=ood_superresolve, deterministic=True))
        return out

    @staticmethod
    def _renders(chunks: list[CompositeRender]) -> Renders:
        return concat_renders([{"image": c.image, "image_raw": c.image_raw, "image_depth": c.image_depth,
                                "weight_sum": c.fields.weight_sum.permute(0, 2, 1).reshape(c.image_depth.shape)}
                               for c in chunks])

    def __call__(self, cameras: Tensor) -> Renders:
        """The composite at ``cameras (V, 25)``: ``image``, ``image_raw``, ``image_depth``, ``weight_sum``."""
        return self._renders(self._render(cameras, None))

    def without_ood(self, cameras: Tensor) -> Renders:
        """The composite with the OOD part removed (module docstring), same outputs as :meth:`__call__`."""
        return self._renders(self._render(cameras, self.removal_edit))

    def blend_map(self, cameras: Tensor) -> Tensor:
        """``(V, 1, R, R)`` in ``[0, 1]``: the part of each pixel's light that comes from the OOD field."""
        return torch.cat([c.blend_map for c in self._render(cameras, None)]).float()

    def ood_only(self, cameras: Tensor) -> Tensor:
        """``(V, 3, H, W)`` the OOD field rendered alone and super-resolved (for the HTML grid)."""
        return torch.cat([c.ood_image for c in self._render(cameras, None, ood_superresolve=True)
                          if c.ood_image is not None]).float()

    def removal_edit(self, cameras: Tensor) -> BlendEdit:
        """The blend edit of OOD removal for one chunk of cameras ``(n, 25)``."""
        cfg = self.config
        rays = None
        if self.ood_mask is not None:
            at_input = torch.isclose(cameras, self.inversion.camera.to(cameras), atol=1e-6).all(dim=1)
            mask = self.ood_mask.to(cameras.device).float().expand(cameras.shape[0], -1, -1, -1)
            rays = ood_rays(mask, self.resolution, dilation_size=cfg.removal_dilation)
            rays = rays | ~at_input[:, None]  # away from the input view: every ray
        return lambda blend: remove_ood(blend, rays, scale=cfg.removal_scale, clamp=cfg.removal_clamp)


__all__ = ["FIELD_PREFIX", "CompositeViewRenderer", "field_of"]
