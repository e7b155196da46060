"""The E3DGE-style encoder method: trained with ``warpinv train`` on proxy samples, inverts by a forward pass.

- Global branch (:class:`~warpinv.methods.e3dge.networks.GlobalEncoder`): ``ws = w_avg + E0(image)``.
- Local branch (:class:`~warpinv.methods.e3dge.networks.LocalEncoder`): the global latent is rendered at the
  input camera; the residual ``image - render`` and the render's depth go through a U-Net into a feature map
  aligned with the input image, which the renderer adds to the tri-plane features of every ray sample that
  the input view sees (:mod:`warpinv.methods.e3dge.pixel_aligned`).
- Training (``training_step``), two stages as E3DGE: up to ``local_start_step`` the global branch learns from
  the latent loss and the input-view images; then it is frozen and the local branch learns from the input
  and the novel views of each proxy sample.

An inversion stores the latent, the feature map and the input view's depth (kind ``e3dge``); it renders
with :class:`E3DGERenderer`.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from warpinv.backbone import EG3DGenerator
from warpinv.methods.base import Inversion, InversionItem, InversionMethod, register_method
from warpinv.methods.e3dge.config import E3DGEConfig, LossConfig
from warpinv.methods.e3dge.networks import GlobalEncoder, LocalEncoder, resize_square
from warpinv.methods.e3dge.pixel_aligned import PixelAlignedFeatures, feature_hook
from warpinv.methods.losses import IdentityLoss, PerceptualLoss, build_lpips, lpips_trunk_weights
from warpinv.methods.rendering import Renders, concat_renders
from warpinv.metrics.image import PSNR

logger = logging.getLogger(__name__)

#: Channels of the local branch's input: the residual (3) and the depth (1).
LOCAL_INPUT_CHANNELS = 4
#: File name of the shipped encoder of the tiny generator (``make train-tiny``).
TINY_CHECKPOINT = "e3dge_tiny.safetensors"
#: Stage names (logged as ``train/stage``: 0 global, 1 local).
STAGES = ("global", "local")


class E3DGEInversion(Inversion):
    """An E3DGE inversion: ``ws``, and with the local branch the tensors ``local_features (1, C, S, S)`` and
    ``input_depth (1, 1, r, r)`` (the input view's global render depth, for the visibility test)."""

    kind = "e3dge"


class E3DGERenderer:
    """Renders an E3DGE inversion at any cameras: the latent's tri-planes (made once) plus the pixel-aligned
    features through the renderer's feature hook (none when ``local`` is ``None``).

    Calling it with ``cameras (V, 25)`` returns ``image``, ``image_raw``, ``image_depth``, ``weight_sum``.
    """

    def __init__(self, G: EG3DGenerator, ws: Tensor, local: PixelAlignedFeatures | None, batch: int = 16) -> None:
        self.G, self.ws, self.local, self.batch = G, ws, local, batch
        self._planes: Tensor | None = None

    @torch.no_grad()
    def __call__(self, cameras: Tensor) -> Renders:
        ws = self.ws.to(cameras.device)
        if self._planes is None:
            self._planes = self.G.planes(ws, noise_mode="const")
        chunks = []
        for chunk in cameras.split(self.batch):
            n = chunk.shape[0]
            hook = None if self.local is None else feature_hook(_to(self.local, chunk.device).expand(n))
            chunks.append(self.G.render_planes(self._planes.expand(n, -1, -1, -1, -1), ws.expand(n, -1, -1), chunk,
                                               deterministic=True, noise_mode="const", feature_hook=hook))
        return concat_renders(chunks)


def _to(local: PixelAlignedFeatures, device: torch.device) -> PixelAlignedFeatures:
    depth = None if local.depth is None else local.depth.to(device)
    return PixelAlignedFeatures(local.features.to(device), local.camera.to(device), depth, local.visibility,
                                local.margin, local.softness)


@register_method
class E3DGE(InversionMethod):
    """E3DGE-style encoder: a global W+ encoder plus pixel-aligned local features, trained on proxy samples."""

    name = "e3dge"
    Config = E3DGEConfig
    trainable = True
    requires_trained_weights = True

    def __init__(self, config: E3DGEConfig, generator: EG3DGenerator) -> None:
        super().__init__(config, generator)
        self.config: E3DGEConfig = config
        enc = config.encoder
        self.encoder = GlobalEncoder(generator.num_ws, generator.w_dim, [tuple(s) for s in enc.stages],
                                     enc.coarse_layers, enc.middle_layers, enc.input_size)
        loc = config.local
        self.local_encoder = (LocalEncoder(LOCAL_INPUT_CHANNELS, loc.channels, loc.base_channels, loc.depth,
                                           loc.input_size) if loc.enabled else None)
        if loc.enabled and loc.channels != generator.decoder.net[0].weight.shape[1]:
            raise ValueError(f"local.channels ({loc.channels}) must equal the tri-plane channels "
                             f"({generator.decoder.net[0].weight.shape[1]})")
        self._losses: dict[str, Any] = {}
        self._psnr = PSNR(resolution=None)

    # -- declared hooks -------------------------------------------------------------------------------

    @classmethod
    def training_weights(cls, config: E3DGEConfig) -> list[str]:
        """Registry names of the weight files training with ``config`` needs (LPIPS trunk, ArcFace)."""
        stages = (config.global_losses, config.local_losses)
        names = lpips_trunk_weights([config.lpips_net] if any(s.lpips > 0 for s in stages) else [],
                                    config.allow_random_lpips)
        if any(s.identity > 0 for s in stages) or config.encoder.arcface_init:
            names.append("arcface-ir-se50")
        return names

    @classmethod
    def checkpoint_howto(cls, config: E3DGEConfig) -> str:
        if config.checkpoint is None or Path(config.checkpoint).name == TINY_CHECKPOINT:
            return (f"`make train-tiny` trains the encoder of the tiny generator and writes "
                    f"checkpoints/{TINY_CHECKPOINT} (experiments/train/e3dge_tiny.yaml, about 12 min on 2 CPU cores); "
                    "for other generators, "
                    "`warpinv train experiments/train/<name>.yaml` and set `checkpoint:` to its export")
        return "train it with `warpinv train experiments/train/<name>.yaml` and set `checkpoint:` to its export"

    # -- encoding -------------------------------------------------------------------------------------

    def global_latent(self, images: Tensor) -> Tensor:
        """``images (N, 3, H, W)`` -> ``ws (N, num_ws, w_dim)``: ``w_avg`` plus the global branch's offsets
        (``w_avg`` alone when ``use_global`` is off)."""
        w_avg = self.G.w_avg.reshape(1, 1, -1).to(images.dtype)
        if not self.config.use_global:
            return w_avg.expand(images.shape[0], self.G.num_ws, -1).clone()
        return w_avg + self.encoder(images)

    def local_features(self, images: Tensor, cameras: Tensor, ws: Tensor, planes: Tensor) -> PixelAlignedFeatures:
        """The local branch for ``images (N, 3, H, W)`` at ``cameras (N, 25)`` given the global latent: renders it
        at the input view (no gradient), feeds the residual and the depth to the U-Net."""
        assert self.local_encoder is not None
        loc = self.config.local
        with torch.no_grad():
            render = self.G.render_planes(planes, ws, cameras, deterministic=True, noise_mode="const")
        size = loc.input_size
        residual = resize_square(images, size) - resize_square(render["image"], size)
        radius = cameras[:, [3, 7, 11]].norm(dim=-1).reshape(-1, 1, 1, 1)
        depth_in = resize_square(render["image_depth"], size) - radius
        features = self.local_encoder(torch.cat([residual, depth_in], dim=1))
        depth = render["image_depth"] if loc.visibility == "depth" else None
        return PixelAlignedFeatures(features, cameras, depth, loc.visibility, loc.depth_margin, loc.depth_softness)

    def encode(self, images: Tensor, cameras: Tensor) -> tuple[Tensor, PixelAlignedFeatures | None]:
        """The inversion of ``images`` at ``cameras``: ``ws`` and the local features (``None`` when the local
        branch is off or ``use_local`` is false)."""
        ws = self.global_latent(images)
        if self.local_encoder is None or not self.config.use_local:
            return ws, None
        planes = self.G.planes(ws, noise_mode="const")
        return ws, self.local_features(images, cameras, ws, planes)

    def invert_batch(self, items: list[InversionItem]) -> list[Inversion]:
        """One forward pass for the whole batch."""
        images = torch.cat([i.image for i in items]).to(self.device)
        cameras = torch.cat([i.camera for i in items]).to(self.device)
        ws, local = self.encode(images, cameras)
        out: list[Inversion] = []
        for k, item in enumerate(items):
            tensors = {}
            if local is not None:
                tensors["local_features"] = local.features[k: k + 1]
                if local.depth is not None:
                    tensors["input_depth"] = local.depth[k: k + 1]
            out.append(E3DGEInversion(item.image_id, self.name, ws[k: k + 1], item.camera, tensors=tensors,
                                      info={"local": local is not None, "global": self.config.use_global}))
        return out

    def invert(self, item: InversionItem) -> Inversion:
        return self.invert_batch([item])[0]

    def renderer(self, inversion: Inversion, batch: int = 16) -> E3DGERenderer:
        return E3DGERenderer(self.G, inversion.ws, self.stored_local(inversion), batch)

    def stored_local(self, inversion: Inversion) -> PixelAlignedFeatures | None:
        """The pixel-aligned features saved in ``inversion`` (``None`` without them)."""
        features = inversion.tensors.get("local_features")
        if features is None:
            return None
        loc = self.config.local
        depth = inversion.tensors.get("input_depth")
        visibility = loc.visibility if depth is not None else "in_image"
        return PixelAlignedFeatures(features, inversion.camera, depth, visibility, loc.depth_margin,
                                    loc.depth_softness)

    @classmethod
    def inversion_bytes(cls, config: E3DGEConfig, generator: torch.nn.Module, precision: str = "float32") -> int:
        base = super().inversion_bytes(config, generator, precision)
        if not (config.local.enabled and config.use_local):
            return base
        per = 2 if precision == "float16" else 4
        res = generator.neural_rendering_resolution
        return base + per * (config.local.channels * config.local.input_size ** 2 + res * res)

    # -- training -------------------------------------------------------------------------------------

    def stage(self, step: int | None = None) -> str:
        """``global`` before ``local_start_step`` (or without a local branch), else ``local``."""
        step = self.global_step if step is None else step
        return "local" if self.local_encoder is not None and step >= self.config.local_start_step else "global"

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        proxy = batch["proxy"]
        stage = self.stage()
        weights = self.config.local_losses if stage == "local" else self.config.global_losses
        losses = self.stage_losses(proxy, stage, weights)
        if "real" in batch:
            real = batch["real"]
            losses.update({f"real_{k}": v for k, v in self.view_losses(
                real["images"], real["cameras"], weights, stage, real.get("masks")).items()})
        total = sum(losses.values(), torch.zeros((), device=self.device))
        self.log_dict({f"train/{k}": v.detach() for k, v in losses.items()}, on_step=True, prog_bar=False)
        self.log("train/loss", total.detach(), on_step=True, prog_bar=True)
        self.log("train/stage", float(STAGES.index(stage)), on_step=True)
        return total

    def stage_latent(self, images: Tensor, stage: str) -> Tensor:
        """The global latent during training: trained in stage 1; frozen in stage 2 (no gradient, and BatchNorm
        in eval mode so that its running statistics stay those of stage 1)."""
        if stage == "global":
            return self.global_latent(images)
        was_training = self.encoder.training
        self.encoder.eval()
        try:
            with torch.no_grad():
                return self.global_latent(images)
        finally:
            self.encoder.train(was_training)

    def stage_losses(self, proxy: dict[str, Tensor], stage: str, weights: LossConfig) -> dict[str, Tensor]:
        """The weighted losses of one proxy batch (only the terms with a positive weight)."""
        images, cameras = proxy["images"], proxy["cameras"]
        ws = self.stage_latent(images, stage)
        losses: dict[str, Tensor] = {}
        if weights.latent > 0 and stage == "global":
            losses["latent"] = weights.latent * F.mse_loss(ws, proxy["ws"])
        views = []
        if weights.input_view > 0:
            views.append(("input", weights.input_view, cameras[:, None], images[:, None], proxy["images_raw"][:, None],
                          proxy["depth"][:, None]))
        if weights.novel_view > 0:
            views.append(("novel", weights.novel_view, proxy["novel_cameras"], proxy["novel_images"],
                          proxy["novel_raw"], proxy["novel_depth"]))
        if not views:
            return losses
        planes = self.G.planes(ws, noise_mode="const")
        local = self.local_features(images, cameras, ws.detach(), planes.detach()) if stage == "local" else None
        for name, weight, cams, targets, raws, depths in views:
            for term, value in self.render_losses(ws, planes, local, cams, targets, raws, depths, weights).items():
                losses[f"{name}_{term}"] = weight * value
        return losses

    def render_losses(self, ws: Tensor, planes: Tensor, local: PixelAlignedFeatures | None, cams: Tensor,
                      targets: Tensor, raws: Tensor, depths: Tensor, weights: LossConfig) -> dict[str, Tensor]:
        """Image and depth losses of renders at ``cams (N, K, 25)`` against ``targets (N, K, 3, H, W)``, raw targets
        ``(N, K, 3, r, r)`` and depths ``(N, K, 1, r, r)``."""
        n, k = cams.shape[:2]
        hook = None if local is None else feature_hook(local.repeat_interleave(k))
        out = self.G.render_planes(planes.repeat_interleave(k, 0), ws.repeat_interleave(k, 0), cams.reshape(n * k, -1),
                                   deterministic=True, noise_mode="const", feature_hook=hook,
                                   superresolve=self.config.loss_resolution == "sr")
        pred = out["image"] if self.config.loss_resolution == "sr" else out["image_raw"]
        target = (targets if self.config.loss_resolution == "sr" else raws).reshape(n * k, *pred.shape[1:])
        terms: dict[str, Tensor] = {}
        if weights.mse > 0:
            terms["mse"] = weights.mse * F.mse_loss(pred, target)
        if weights.lpips > 0:
            terms["lpips"] = weights.lpips * self.loss_module("lpips")(pred, target).mean()
        if weights.identity > 0:
            terms["identity"] = weights.identity * self.loss_module("identity")(pred, target).mean()
        if weights.depth > 0:
            terms["depth"] = weights.depth * F.l1_loss(out["image_depth"], depths.reshape(n * k, *depths.shape[2:]))
        return terms

    def view_losses(self, images: Tensor, cameras: Tensor, weights: LossConfig, stage: str,
                    masks: Tensor | None = None) -> dict[str, Tensor]:
        """Reconstruction losses of real images at their own cameras (the optional real-image branch)."""
        ws = self.stage_latent(images, stage)
        planes = self.G.planes(ws, noise_mode="const")
        local = self.local_features(images, cameras, ws.detach(), planes.detach()) if stage == "local" else None
        hook = None if local is None else feature_hook(local)
        out = self.G.render_planes(planes, ws, cameras, deterministic=True, noise_mode="const", feature_hook=hook)
        target = resize_square(images, out["image"].shape[-1])
        terms = {"mse": weights.mse * F.mse_loss(out["image"], target)}
        if weights.lpips > 0:
            terms["lpips"] = weights.lpips * self.loss_module("lpips")(out["image"], target).mean()
        return terms

    def loss_module(self, kind: str) -> torch.nn.Module:
        """The LPIPS or identity loss, built on first use (weights from the registry, or seeded random ones with
        ``allow_random_lpips``) and kept out of the checkpoints."""
        if kind not in self._losses:
            if kind == "lpips":
                module = PerceptualLoss(build_lpips(self.config.lpips_net, self.config.allow_random_lpips))
            else:
                module = IdentityLoss(allow_random=self.config.allow_random_lpips)
            self._losses[kind] = module.to(self.device).eval().requires_grad_(False)
        return self._losses[kind]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = list(self.encoder.parameters())
        if self.local_encoder is not None:
            params += list(self.local_encoder.parameters())
        return torch.optim.Adam(params, lr=self.config.lr)

    def on_fit_start(self) -> None:
        if self.config.encoder.arcface_init and self.global_step == 0:
            from warpinv.metrics.identity import load_irse50_state_dict
            from warpinv.weights import resolve

            loaded = self.encoder.load_arcface_trunk(load_irse50_state_dict(resolve("arcface-ir-se50")))
            logger.info("global encoder trunk initialised from ArcFace IR-SE50 (%d tensors)", len(loaded))

    # -- validation -----------------------------------------------------------------------------------

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """GT novel-view and input-view PSNR of fixed proxy samples, inverted as ``invert_batch`` does."""
        with torch.no_grad():
            ws, local = self.encode(batch["images"], batch["cameras"])
            n, k = batch["novel_cameras"].shape[:2]
            planes = self.G.planes(ws, noise_mode="const")
            cams = torch.cat([batch["cameras"][:, None], batch["novel_cameras"]], 1).reshape(n * (k + 1), -1)
            hook = None if local is None else feature_hook(local.repeat_interleave(k + 1))
            out = self.G.render_planes(planes.repeat_interleave(k + 1, 0), ws.repeat_interleave(k + 1, 0), cams,
                                       deterministic=True, noise_mode="const", feature_hook=hook)
            pred = out["image"].clamp(-1, 1).reshape(n, k + 1, *out["image"].shape[1:])
            novel = self._psnr(pred[:, 1:].flatten(0, 1), batch["novel_images"].flatten(0, 1))
            inp = self._psnr(pred[:, 0], batch["images"])
            latent = F.mse_loss(ws, batch["ws"])
        self.log("val/novel_psnr", novel.mean(), on_epoch=True, sync_dist=True, batch_size=n * k)
        self.log("val/input_psnr", inp.mean(), on_epoch=True, sync_dist=True, batch_size=n)
        self.log("val/latent_mse", latent, on_epoch=True, sync_dist=True, batch_size=n)

