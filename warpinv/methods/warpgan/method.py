"""WarpGAN: an encoder inverts, the EG3D depth warps the input to the novel view, SVINet inpaints the rest.

- Encoding: ``ws = latent_avg + E(image)`` with GOAE's Swin-V2 W+ encoder (:mod:`warpinv.methods.warpgan.goae`).
- Rendering a camera: the generator renders ``ws`` there; the input image (and its mirror, with the ``flip_yaw``
  camera and the flipped depth) is forward-warped there with the input view's EG3D depth
  (:mod:`warpinv.geometry.forward_warping`); the hole masks are eroded and blurred, the holes pre-filled with the
  render, and SVINet (:mod:`warpinv.methods.warpgan.svinet`) inpaints from both branches, modulated by ``ws``.
  Every camera goes through this path, the input view included (its warp is the identity).
- Training (``training_step``), two stages as the released code's two runs: the encoder, then SVINet with the
  encoder frozen, on proxy pairs with ground-truth novel views (synthetic branch) and with the warp-there-and-back
  loss on unlabelled images (real branch), adversarially against a pix2pixHD discriminator.

An inversion stores the latent, the input image at the generator's resolution and the input view's depth (kind
``warpgan``); it renders with :class:`WarpGANRenderer`.
"""
from __future__ import annotations

import hashlib
import logging
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from warpinv.backbone import EG3DGenerator
from warpinv.cameras import hfgi3d_orbit, unpack_label, yaw_pitch_camera
from warpinv.geometry import draw_blur_sigma, forward_warp, hole_mask, inpaint_input, mirror_inputs
from warpinv.methods.base import Inversion, InversionItem, InversionMethod, image_seed, register_method
from warpinv.methods.losses import IdentityLoss, PerceptualLoss, build_lpips, lpips_trunk_weights
from warpinv.methods.projector import project_item
from warpinv.methods.rendering import LatentRenderer, Renders, ViewRenderer, concat_renders
from warpinv.methods.tuning import InputAndRandomView, TuningTarget, changed_parameters, tune_generator
from warpinv.methods.warpgan.config import WarpGANConfig
from warpinv.methods.warpgan.discriminator import NLayerDiscriminator
from warpinv.methods.warpgan.goae import GOAEncoder, goae_input, load_goae_state
from warpinv.methods.warpgan.svinet import SVINet, load_svinet_state
from warpinv.metrics.image import PSNR

logger = logging.getLogger(__name__)

#: File name of the shipped WarpGAN networks of the tiny generator (``make train-tiny``).
TINY_CHECKPOINT = "warpgan_tiny.safetensors"
#: Stage names (logged as ``train/stage``: 0 encoder, 1 SVINet).
STAGES = ("encoder", "svinet")
#: State-dict prefix of the discriminator (trained, but not part of exported checkpoints).
DISCRIMINATOR_PREFIX = "discriminator."
#: The released ``scripts/avg_latent.py`` draws its z from this ``numpy.random.RandomState`` seed.
LATENT_AVG_SEED = 123


class WarpGANInversion(Inversion):
    """A WarpGAN inversion: ``ws`` and the tensors ``image (1, 3, H, W)`` (the input in [-1, 1] at the generator's
    resolution) and ``depth (1, 1, r, r)`` (the input view's EG3D depth); ``info['seed']`` seeds the hole-mask blur."""

    kind = "warpgan"


def view_seed(seed: int, camera: Tensor) -> int:
    """Seed of the random hole-mask blur of one view: the image's seed and the camera's float32 bytes, so the same
    camera always renders the same way whatever the batch.

    Example:
        >>> c = torch.zeros(25)
        >>> view_seed(7, c) == view_seed(7, c.clone()) != view_seed(8, c)
        True
    """
    return zlib.crc32(camera.detach().float().cpu().numpy().tobytes(), seed & 0xFFFFFFFF)


class WarpGANRenderer:
    """Renders a WarpGAN inversion at any cameras (``cameras (V, 25)`` -> ``image``, ``image_raw``, ``image_depth``,
    ``weight_sum``): the generator's render of ``ws``, whose ``image`` is replaced by SVINet's inpainting of the
    warped input (unless the method's ``inpaint`` is off). The tri-planes are made once."""

    def __init__(self, method: WarpGAN, inversion: Inversion, batch: int = 16) -> None:
        self.method, self.inversion, self.batch = method, inversion, batch
        self._planes: Tensor | None = None

    @torch.no_grad()
    def __call__(self, cameras: Tensor) -> Renders:
        G, inv = self.method.G, self.inversion
        ws = inv.ws.to(cameras.device)
        if self._planes is None:
            self._planes = G.planes(ws, noise_mode="const")
        chunks = []
        for chunk in cameras.split(self.batch):
            n = chunk.shape[0]
            out = G.render_planes(self._planes.expand(n, -1, -1, -1, -1), ws.expand(n, -1, -1), chunk,
                                  deterministic=True, noise_mode="const")
            if self.method.config.inpaint:
                image = inv.tensors["image"].to(chunk.device).expand(n, -1, -1, -1)
                depth = inv.tensors["depth"].to(chunk.device).expand(n, -1, -1, -1)
                source = inv.camera.reshape(1, 25).to(chunk.device).expand(n, -1)
                sigmas = self.method.view_sigmas(int(inv.info.get("seed", 0)), chunk)
                pred = self.method.inpaint((image + 1) / 2, depth, source, chunk, out["image"], ws.expand(n, -1, -1),
                                           sigmas)
                out = {**out, "image": pred * 2 - 1}
            chunks.append(out)
        return concat_renders(chunks)


@register_method
class WarpGAN(InversionMethod):
    """WarpGAN: GOAE-Swin W+ encoder, depth warp of the input and its mirror, SVINet inpainting (symmetry prior)."""

    name = "warpgan"
    Config = WarpGANConfig
    trainable = True
    requires_trained_weights = True

    def __init__(self, config: WarpGANConfig, generator: EG3DGenerator) -> None:
        super().__init__(config, generator)
        self.config: WarpGANConfig = config
        self.encoder = GOAEncoder(config.encoder)
        self.svinet = SVINet(config.svinet)
        self.discriminator = NLayerDiscriminator(3, config.discriminator.ndf, config.discriminator.n_layers)
        self._check_sizes(generator)
        self.register_buffer("latent_avg", self.initial_latent_avg())
        self.automatic_optimization = False
        self._losses: dict[str, torch.nn.Module] = {}
        self._psnr = PSNR(resolution=None)
        self._memo: dict[bytes, tuple[Tensor, ...]] = {}
        self._sigma_rng: torch.Generator | None = None
        self.load_released()

    def _check_sizes(self, G: EG3DGenerator) -> None:
        enc, svi = self.config.encoder, self.config.svinet
        if (enc.num_ws, enc.w_dim) != (G.num_ws, G.w_dim):
            raise ValueError(f"encoder W+ is {enc.num_ws} x {enc.w_dim}, the generator's {G.num_ws} x {G.w_dim}")
        if svi.w_dim != G.w_dim:
            raise ValueError(f"svinet.w_dim ({svi.w_dim}) must equal the generator's w_dim ({G.w_dim})")

    # -- declared hooks -------------------------------------------------------------------------------

    @classmethod
    def required_weights(cls, config: WarpGANConfig) -> list[str]:
        """Registry names among the released files the config names (paths are checked when loaded)."""
        from warpinv.weights import REGISTRY

        names = [config.encoder_checkpoint, config.svinet_checkpoint, config.latent_avg]
        found = [n for n in names if n is not None and n in REGISTRY]
        if config.pti.enabled:
            nets = [*config.pti.tuning.lpips_nets(), *([] if config.pti.pivot_from_encoder
                                                       else config.pti.pivot.lpips_nets())]
            found += lpips_trunk_weights(nets, config.allow_random_lpips)
        return found

    @classmethod
    def training_weights(cls, config: WarpGANConfig) -> list[str]:
        """Registry names of the weight files training with ``config`` needs (LPIPS trunks, ArcFace)."""
        nets = []
        if config.encoder_losses.lpips > 0 and config.svinet_start_step > 0:
            nets.append(config.lpips_net)
        if config.svinet_losses.perceptual > 0:
            nets.append(config.perceptual_net)
        names = lpips_trunk_weights(nets, config.allow_random_lpips)
        if (config.encoder_losses.identity > 0 and config.svinet_start_step > 0) or config.svinet_losses.identity > 0:
            names.append("arcface-ir-se50")
        return names

    @classmethod
    def checkpoint_howto(cls, config: WarpGANConfig) -> str:
        if config.checkpoint is None or Path(config.checkpoint).name == TINY_CHECKPOINT:
            return (f"`make train-tiny` trains WarpGAN's networks for the tiny generator and writes "
                    f"checkpoints/{TINY_CHECKPOINT}; for the released model set `encoder_checkpoint: warpgan-encoder` "
                    "and `svinet_checkpoint: warpgan-svinet` (experiments/methods/warpgan_released.yaml)")
        return "train it with `warpinv train experiments/train/<name>.yaml` and set `checkpoint:` to its export"

    @classmethod
    def inversion_bytes(cls, config: WarpGANConfig, generator: torch.nn.Module, precision: str = "float32") -> int:
        res, nrr = generator.img_resolution, generator.neural_rendering_resolution
        return super().inversion_bytes(config, generator, precision) + 4 * (3 * res * res + nrr * nrr)

    # -- weights --------------------------------------------------------------------------------------

    def initial_latent_avg(self) -> Tensor:
        """``(1, w_dim)``: the mapping's ``w_avg``, or the released ``avg_latent.py`` estimate (``sampled``), or the
        released tensor file."""
        source = self.config.latent_avg
        if source == "w_avg":
            return self.G.w_avg.detach().reshape(1, -1).float().clone()
        if source == "sampled":
            return sampled_latent_avg(self.G, self.config.latent_avg_samples)
        from warpinv.weights import read_torch_checkpoint, resolve_file

        value = read_torch_checkpoint(resolve_file(source))
        if not isinstance(value, Tensor) or value.numel() != self.G.w_dim:
            raise ValueError(f"latent_avg file {source} holds {type(value).__name__}, "
                             f"not a tensor of {self.G.w_dim} values")
        return value.detach().float().reshape(1, -1).clone()

    def load_released(self) -> None:
        """Load the released encoder / SVINet files the config names (strictly, without running pickled code)."""
        from warpinv.weights import read_torch_checkpoint, resolve_file

        if self.config.encoder_checkpoint is not None:
            load_goae_state(self.encoder, read_torch_checkpoint(resolve_file(self.config.encoder_checkpoint)))
            logger.info("WarpGAN encoder loaded from %s", self.config.encoder_checkpoint)
        if self.config.svinet_checkpoint is not None:
            checkpoint = read_torch_checkpoint(resolve_file(self.config.svinet_checkpoint))
            load_svinet_state(self.svinet, checkpoint)
            if isinstance(checkpoint, dict) and "discriminator_state_dict" in checkpoint:
                self.discriminator.load_state_dict(checkpoint["discriminator_state_dict"])
            logger.info("WarpGAN SVINet loaded from %s", self.config.svinet_checkpoint)

    def method_state_dict(self) -> dict[str, Tensor]:
        """What inversion needs: encoder, SVINet and ``latent_avg`` (the discriminator stays in training
        checkpoints)."""
        return {k: v for k, v in super().method_state_dict().items() if not k.startswith(DISCRIMINATOR_PREFIX)}

    # -- encoding and inpainting ----------------------------------------------------------------------

    def encode(self, images: Tensor) -> Tensor:
        """``images (N, 3, H, W)`` in [-1, 1] -> ``ws (N, num_ws, w_dim)`` = ``latent_avg`` + the encoder's W+."""
        size = self.config.encoder_input_size or self.config.encoder.img_size
        return self.encoder(goae_input(images, size)) + self.latent_avg.to(images.dtype)[:, None]

    def view_sigmas(self, seed: int, cameras: Tensor) -> Tensor:
        """``(V, 2)`` blur sigmas (original, mirror branch) of the views ``cameras (V, 25)`` of one image."""
        if self.config.blur_sigma is not None:
            return torch.full((cameras.shape[0], 2), float(self.config.blur_sigma))
        rows = []
        for camera in cameras:
            g = torch.Generator().manual_seed(view_seed(seed, camera))
            rows.append([draw_blur_sigma(g), draw_blur_sigma(g)])
        return torch.tensor(rows, dtype=torch.float64)

    def random_sigmas(self, n: int) -> Tensor:
        """``(n, 2)`` sigmas for training: fixed, or drawn from U(0.1, 2.0) as the released code does, from a
        generator seeded by the step (so that a resumed run draws what the uninterrupted one did; the global RNG
        outside a training or validation step)."""
        if self.config.blur_sigma is not None:
            return torch.full((n, 2), float(self.config.blur_sigma))
        g = self._sigma_rng
        return torch.tensor([[draw_blur_sigma(g), draw_blur_sigma(g)] for _ in range(n)], dtype=torch.float64)

    def seed_sigmas(self, stream: str, index: int) -> None:
        """Seed the training draws of the blur sigmas for one step (``stream`` ``train`` or ``val``)."""
        key = f"{stream}:{self.config.seed}:{index}".encode()
        self._sigma_rng = torch.Generator().manual_seed(zlib.crc32(key))

    def warp_input(self, source01: Tensor, depth: Tensor, c_src: Tensor, c_dst: Tensor, render01: Tensor,
                   sigmas: Tensor) -> tuple[Tensor, Tensor]:
        """SVINet's input for warping ``source01 (N, 3, H, W)`` (in [0, 1]) with its view's ``depth (N, 1, r, r)``
        from ``c_src`` to ``c_dst (N, 25)``, holes pre-filled with ``render01``.

        Returns:
            ``(N, 14, H, W)`` (the original and the mirror branch, 7 channels each; the mirror half is zeros when
            ``use_condition`` is off, since SVINet then ignores it) and the warped image ``(N, 3, H, W)`` in [0, 1]
            (holes 0).
        """
        warp = forward_warp(source01, depth, c_src, c_dst, self.config.warp)
        warped = warp.warped.clamp(0, 1)
        branch = inpaint_input(warped, render01, _hole_masks(warp.visible, sigmas[:, 0]))
        if not self.config.svinet.use_condition:
            return torch.cat([branch, torch.zeros_like(branch)], 1), warped
        image_m, depth_m, c_m = mirror_inputs(source01, depth, c_src)
        warp_m = forward_warp(image_m, depth_m, c_m, c_dst, self.config.warp)
        mirror = inpaint_input(warp_m.warped.clamp(0, 1), render01, _hole_masks(warp_m.visible, sigmas[:, 1]))
        return torch.cat([branch, mirror], 1), warped

    def inpaint(self, source01: Tensor, depth: Tensor, c_src: Tensor, c_dst: Tensor, render: Tensor, ws: Tensor,
                sigmas: Tensor) -> Tensor:
        """SVINet's view at ``c_dst (N, 25)`` in [0, 1] (``(N, 3, H, W)``) from the warp of ``source01`` (see
        :meth:`warp_input`) and the generator's ``render (N, 3, H, W)`` in [-1, 1] there, modulated by ``ws``."""
        render01 = ((render + 1) / 2).clamp(0, 1)
        inp, _ = self.warp_input(source01, depth, c_src, c_dst, render01, sigmas)
        return self.svinet(inp, ws)

    def generator_resolution(self, images: Tensor) -> Tensor:
        """``images`` resized to the generator's output side (area filter when shrinking)."""
        res = self.G.img_resolution
        if images.shape[-1] == res and images.shape[-2] == res:
            return images
        mode = "area" if images.shape[-1] > res else "bilinear"
        return F.interpolate(images, size=(res, res), mode=mode, **({"align_corners": False} if mode != "area" else {}))

    def invert_batch(self, items: list[InversionItem]) -> list[Inversion]:
        """One encoder pass and one render of the input views for the whole batch."""
        images = self.generator_resolution(torch.cat([i.image for i in items]).to(self.device).float())
        cameras = torch.cat([i.camera for i in items]).to(self.device).float()
        ws = self.encode(images)
        out = self.G.render_planes(self.G.planes(ws, noise_mode="const"), ws, cameras, deterministic=True,
                                   noise_mode="const", superresolve=False)
        inversions: list[Inversion] = []
        for k, item in enumerate(items):
            tensors = {"image": images[k: k + 1], "depth": out["image_depth"][k: k + 1]}
            info = {"seed": image_seed(item.image_id, self.config.seed), "inpaint": self.config.inpaint,
                    "condition": self.config.svinet.use_condition}
            inversion = WarpGANInversion(item.image_id, self.name, ws[k: k + 1], item.camera, tensors=tensors,
                                         info=info)
            inversions.append(self.multi_view_pti(item, inversion) if self.config.pti.enabled else inversion)
        return inversions

    def multi_view_pti(self, item: InversionItem, inversion: WarpGANInversion) -> Inversion:
        """The optional PTI stage: WarpGAN renders the orbit's teacher views from the encoder's latent, a pivot is
        projected (or taken from the encoder), and a copy of the generator is tuned on the input view plus one random
        teacher per step (the HFGI3D final-tuning loop). Returns an inversion holding the tuned tensors."""
        cfg = self.config.pti
        seed = int(inversion.info["seed"])
        camera = item.camera.to(self.device).float().reshape(1, 25)
        _, intrinsics = unpack_label(camera.detach().double())
        teachers = hfgi3d_orbit(cfg.num_views, focal=float(intrinsics[0, 0, 0])).to(self.device)
        with torch.no_grad():
            renders = WarpGANRenderer(self, inversion, self.config.render_batch)(teachers)["image"].clamp(-1, 1)
        allow = self.config.allow_random_lpips
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            torch.manual_seed(seed)
            if cfg.pivot_from_encoder:
                ws, target = inversion.ws.detach(), inversion.tensors["image"]
                pivot_info: dict[str, Any] = {"pivot": "encoder"}
            else:
                fit = project_item(self.G, item, cfg.pivot, space=cfg.pivot.space,
                                   perceptual=cfg.pivot.perceptual(allow),
                                   neural_rendering_resolution=self.config.neural_rendering_resolution)
                ws, target = fit.projection.ws, fit.target
                pivot_info = {"pivot": f"projected ({cfg.pivot.space})", "pivot_steps": fit.projection.steps}
            targets = [TuningTarget(target, camera)]
            targets += [TuningTarget(view[None], cam[None]) for view, cam in zip(renders, teachers)]
            tuned, info = tune_generator(self.G, ws, targets, cfg.tuning, generator=self.tunable_generator(),
                                         sampler=InputAndRandomView(len(targets), seed=seed),
                                         perceptual=cfg.tuning.perceptual(allow),
                                         neural_rendering_resolution=self.config.neural_rendering_resolution)
        return WarpGANInversion(item.image_id, self.name, ws.detach(), item.camera,
                                generator_delta=changed_parameters(self.G, tuned), tensors=dict(inversion.tensors),
                                info={**inversion.info, "multi_view_pti": True, "teacher_views": cfg.num_views,
                                      **pivot_info, **info})

    def invert(self, item: InversionItem) -> Inversion:
        return self.invert_batch([item])[0]

    def renderer(self, inversion: Inversion, batch: int = 16) -> ViewRenderer:
        """WarpGAN's warp-and-inpaint renderer; after the PTI stage (tuned generator tensors), the tuned generator's
        render, as the released PTI output is used."""
        if inversion.generator_delta:
            return LatentRenderer(self.G, inversion, batch)
        return WarpGANRenderer(self, inversion, min(batch, self.config.render_batch))

    # -- training -------------------------------------------------------------------------------------

    def stage(self, step: int | None = None) -> str:
        """``encoder`` before ``svinet_start_step``, else ``svinet``."""
        step = self.global_step if step is None else step
        return "encoder" if step < self.config.svinet_start_step else "svinet"

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # One Adam over three parameter groups, so that each training step is one optimiser step (Lightning counts
        # every optimiser's steps); parameters without a gradient are skipped, as separate optimisers would be.
        cfg = self.config
        return torch.optim.Adam([
            {"params": list(self.encoder.parameters()), "lr": cfg.encoder_lr},
            {"params": list(self.svinet.parameters()), "lr": cfg.svinet_lr},
            {"params": list(self.discriminator.parameters()), "lr": cfg.discriminator_lr},
        ])

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        optimizer = self.optimizers()
        stage = self.stage()
        self.seed_sigmas("train", self.global_step)
        optimizer.zero_grad(set_to_none=True)
        if stage == "encoder":
            losses = self.encoder_stage_losses(batch)
            total = sum(losses.values(), torch.zeros((), device=self.device))
            self.manual_backward(total)
        else:
            losses, fakes, reals = self.svinet_stage_losses(batch)
            total = sum(losses.values(), torch.zeros((), device=self.device))
            self.manual_backward(total)
            _drop_gradients(self.encoder, self.discriminator)
            if self.config.svinet_losses.adversarial > 0:
                d_losses = self.discriminator_losses(reals, fakes)
                self.manual_backward(sum(d_losses.values()))
                losses.update(d_losses)
        optimizer.step()
        self.log_dict({f"train/{k}": v.detach() for k, v in losses.items()}, on_step=True, prog_bar=False)
        self.log("train/loss", total.detach(), on_step=True, prog_bar=True)
        self.log("train/stage", float(STAGES.index(stage)), on_step=True)
        return total.detach()

    def encoder_stage_losses(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Stage 1: the encoder's losses on the proxy images (and the real images, without the latent term)."""
        weights = self.config.encoder_losses
        proxy = batch["proxy"]
        ws = self.encode(proxy["images"])
        losses = self.encoder_image_losses(ws, proxy["images"], proxy["cameras"])
        if weights.latent > 0:
            losses["latent"] = weights.latent * F.mse_loss(ws, proxy["ws"])
        if "real" in batch:
            real = batch["real"]
            real_ws = self.encode(real["images"])
            losses.update({f"real_{k}": v for k, v in self.encoder_image_losses(
                real_ws, self.generator_resolution(real["images"]), real["cameras"]).items()})
        return losses

    def encoder_image_losses(self, ws: Tensor, images: Tensor, cameras: Tensor) -> dict[str, Tensor]:
        """The released encoder losses: L2, LPIPS and identity of the render at the input camera, W-delta."""
        weights = self.config.encoder_losses
        losses: dict[str, Tensor] = {}
        if weights.w_delta > 0:
            losses["w_delta"] = weights.w_delta * (ws - ws[:, :1]).flatten(1).norm(dim=1).mean()
        if max(weights.mse, weights.lpips, weights.identity) <= 0:
            return losses
        pred = self.G.synthesis(ws, cameras, noise_mode="const", deterministic=True)["image"]
        if weights.mse > 0:
            losses["mse"] = weights.mse * F.mse_loss(pred, images)
        if weights.lpips > 0:
            losses["lpips"] = weights.lpips * self.loss_module("lpips")(pred, images).mean()
        if weights.identity > 0:
            losses["identity"] = weights.identity * self.loss_module("identity")(pred, images).mean()
        return losses

    def frozen_encode(self, images: Tensor) -> Tensor:
        """The encoder in stage 2: eval mode, no gradient."""
        was_training = self.encoder.training
        self.encoder.eval()
        try:
            with torch.no_grad():
                return self.encode(images)
        finally:
            self.encoder.train(was_training)

    def svinet_stage_losses(self, batch: dict[str, Any]) -> tuple[dict[str, Tensor], list[Tensor], list[Tensor]]:
        """Stage 2: SVINet's losses on the synthetic branch (proxy pairs: the novel view against its ground truth)
        and the real branch (warp there, warp the warped image back, inpaint, compare with the input).

        Returns:
            the weighted losses, and the predictions and their targets (``[0, 1]``) for the discriminator.
        """
        cfg = self.config
        proxy = batch["proxy"]
        losses: dict[str, Tensor] = {}
        fakes: list[Tensor] = []
        reals: list[Tensor] = []
        k = proxy["novel_cameras"].shape[1]
        view = self.global_step % k if cfg.proxy_view is None else min(cfg.proxy_view, k - 1)
        novel_cams = proxy["novel_cameras"][:, view]
        sources = [("proxy", proxy["images"], proxy["cameras"], proxy["novel_images"][:, view])]
        if "real" in batch:
            real = batch["real"]
            sources.append(("real", self.generator_resolution(real["images"]), real["cameras"], None))
        for name, images, cameras, target_novel in sources:
            n = images.shape[0]
            c_novel = novel_cams.repeat((n + novel_cams.shape[0] - 1) // novel_cams.shape[0], 1)[:n]
            views = self.branch_views(images, cameras, c_novel)
            if cfg.synthetic_branch and target_novel is not None:
                target = (target_novel + 1) / 2
                losses.update(self.prediction_losses(f"{name}_novel", views["pred_novel"], target, views["ws"]))
                fakes.append(views["pred_novel"])
                reals.append(target)
            if cfg.real_branch:
                source = (images + 1) / 2
                losses.update(self.prediction_losses(f"{name}_back", views["pred_back"], source, views["ws"]))
                if cfg.svinet_losses.latent > 0 and not (cfg.synthetic_branch and target_novel is not None):
                    losses[f"{name}_novel_latent"] = self.latent_loss(views["pred_novel"], views["ws"])
                fakes.append(views["pred_back"])
                reals.append(source)
        return losses, fakes, reals

    def branch_views(self, images: Tensor, cameras: Tensor, c_novel: Tensor) -> dict[str, Tensor]:
        """The two SVINet passes of one batch ``images (N, 3, H, W)`` in [-1, 1]: ``pred_novel`` (the input warped to
        ``c_novel``, inpainted) and, with the real branch, ``pred_back`` (that warp warped back to ``cameras`` with
        the novel view's depth, inpainted); both ``(N, 3, H, W)`` in [0, 1]. Also ``ws``."""
        ws, render_in, depth_in, render_novel, depth_novel = self.frozen_renders(images, cameras, c_novel)
        n = images.shape[0]
        source = (images + 1) / 2
        inp, warped = self.warp_input(source, depth_in, cameras, c_novel, ((render_novel + 1) / 2).clamp(0, 1),
                                      self.random_sigmas(n))
        out = {"ws": ws, "pred_novel": self.svinet(inp, ws)}
        if self.config.real_branch:
            back, _ = self.warp_input(warped, depth_novel, c_novel, cameras, ((render_in + 1) / 2).clamp(0, 1),
                                      self.random_sigmas(n))
            out["pred_back"] = self.svinet(back, ws)
        return out

    def frozen_renders(self, images: Tensor, cameras: Tensor, c_novel: Tensor) -> tuple[Tensor, ...]:
        """Stage 2's encoder output and generator renders, none trained: ``ws``, the render and depth at ``cameras``
        and at ``c_novel``. Remembered per sample up to ``render_memo`` samples (exact: stage 2 changes neither the
        encoder nor the generator)."""
        keys = [_sample_key(images[i], cameras[i], c_novel[i]) for i in range(images.shape[0])]
        missing = [i for i, k in enumerate(keys) if k not in self._memo]
        fresh: dict[bytes, tuple[Tensor, ...]] = {}
        if missing:
            idx = torch.tensor(missing, device=images.device)
            ws = self.frozen_encode(images[idx])
            with torch.no_grad():
                planes = self.G.planes(ws, noise_mode="const")
                m = len(missing)
                out = self.G.render_planes(planes.repeat(2, 1, 1, 1, 1), ws.repeat(2, 1, 1),
                                           torch.cat([cameras[idx], c_novel[idx]]), deterministic=True,
                                           noise_mode="const")
            fresh = {keys[i]: (ws[j], out["image"][j], out["image_depth"][j], out["image"][m + j],
                               out["image_depth"][m + j]) for j, i in enumerate(missing)}
        samples = [fresh[k] if k in fresh else self._memo[k] for k in keys]
        for key, value in fresh.items():
            if self.config.render_memo <= 0:
                break
            if len(self._memo) >= self.config.render_memo:
                self._memo.pop(next(iter(self._memo)))  # the oldest
            self._memo[key] = value
        return tuple(torch.stack(parts) for parts in zip(*samples))

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self.stage() != "svinet" and self._memo:
            self._memo.clear()

    def prediction_losses(self, name: str, pred: Tensor, target: Tensor, ws: Tensor) -> dict[str, Tensor]:
        """SVINet's generator losses of ``pred`` against ``target`` (both ``(N, 3, H, W)`` in [0, 1])."""
        w = self.config.svinet_losses
        losses = {f"{name}_l1": w.l1 * (pred - target).abs().mean()}
        if w.perceptual > 0:
            losses[f"{name}_perceptual"] = w.perceptual * self.loss_module("perceptual")(
                pred * 2 - 1, target * 2 - 1).mean()
        if w.identity > 0:
            losses[f"{name}_identity"] = w.identity * self.loss_module("identity")(pred * 2 - 1, target * 2 - 1).mean()
        if w.adversarial > 0 or w.feature_matching > 0:
            fake_logits, fake_features = self.discriminator(pred)
            with torch.no_grad():
                _, real_features = self.discriminator(target)
            if w.adversarial > 0:
                losses[f"{name}_adversarial"] = w.adversarial * F.softplus(-fake_logits).mean()
            if w.feature_matching > 0:
                fm = torch.stack([F.mse_loss(f, r) for f, r in zip(fake_features, real_features)]).mean()
                losses[f"{name}_feature_matching"] = w.feature_matching * fm
        if w.latent > 0:
            losses[f"{name}_latent"] = self.latent_loss(pred, ws)
        return losses

    def latent_loss(self, pred01: Tensor, ws: Tensor) -> Tensor:
        """Latent consistency: the frozen encoder's W+ of a prediction against the input's (gradient to SVINet)."""
        was_training = self.encoder.training
        self.encoder.eval()
        try:
            return self.config.svinet_losses.latent * F.mse_loss(self.encode(pred01 * 2 - 1), ws)
        finally:
            self.encoder.train(was_training)

    def discriminator_losses(self, reals: list[Tensor], fakes: list[Tensor]) -> dict[str, Tensor]:
        """Non-saturating discriminator loss with the R1 penalty on the real images (LaMa's ``r1`` kind)."""
        real = torch.cat(reals).detach().requires_grad_(True)
        fake = torch.cat(fakes).detach()
        real_logits, _ = self.discriminator(real)
        fake_logits, _ = self.discriminator(fake)
        losses = {"discriminator": self.config.svinet_losses.adversarial
                  * (F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean())}
        if self.config.svinet_losses.r1 > 0:
            (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
            losses["r1"] = self.config.svinet_losses.r1 * grad.flatten(1).square().sum(1).mean()
        return losses

    def loss_module(self, kind: str) -> torch.nn.Module:
        """LPIPS, the perceptual stand-in or the identity loss, built on first use and kept out of checkpoints."""
        if kind not in self._losses:
            cfg = self.config
            if kind in ("lpips", "perceptual"):
                net = cfg.lpips_net if kind == "lpips" else cfg.perceptual_net
                module: torch.nn.Module = PerceptualLoss(build_lpips(net, cfg.allow_random_lpips))
            else:
                module = IdentityLoss(allow_random=cfg.allow_random_lpips)
            self._losses[kind] = module.to(self.device).eval().requires_grad_(False)
        return self._losses[kind]

    # -- validation -----------------------------------------------------------------------------------

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """GT novel-view PSNR of the whole pipeline and of the encoder's render alone, on fixed proxy samples."""
        self.seed_sigmas("val", batch_idx)
        with torch.no_grad():
            images, cameras = batch["images"], batch["cameras"]
            ws = self.encode(images)
            n, k = batch["novel_cameras"].shape[:2]
            planes = self.G.planes(ws, noise_mode="const")
            cams = torch.cat([cameras, batch["novel_cameras"].flatten(0, 1)])
            reps = torch.cat([torch.arange(n), torch.arange(n).repeat_interleave(k)]).to(images.device)
            out = self.G.render_planes(planes[reps], ws[reps], cams, deterministic=True, noise_mode="const")
            depth = out["image_depth"][:n]
            novel_render = out["image"][n:]
            pred = self.inpaint((images[reps[n:]] + 1) / 2, depth[reps[n:]], cameras[reps[n:]], cams[n:],
                                novel_render, ws[reps[n:]], self.random_sigmas(n * k)) * 2 - 1
            truth = batch["novel_images"].flatten(0, 1)
            psnr = self._psnr(pred.clamp(-1, 1), truth)
            encoder_psnr = self._psnr(novel_render.clamp(-1, 1), truth)
            latent = F.mse_loss(ws, batch["ws"])
        self.log("val/novel_psnr", psnr.mean(), on_epoch=True, sync_dist=True, batch_size=n * k)
        self.log("val/encoder_novel_psnr", encoder_psnr.mean(), on_epoch=True, sync_dist=True, batch_size=n * k)
        self.log("val/latent_mse", latent, on_epoch=True, sync_dist=True, batch_size=n)


def _hole_masks(visible: Tensor, sigmas: Tensor) -> Tensor:
    """Soft hole masks ``(N, 1, H, W)`` of ``visible (N, 1, H, W)``, one blur sigma per sample ``sigmas (N,)``."""
    return torch.cat([hole_mask(visible[i: i + 1], float(s)) for i, s in enumerate(sigmas.tolist())])


def _sample_key(image: Tensor, camera: Tensor, novel_camera: Tensor) -> bytes:
    """Identity of one stage-2 sample: a digest of its image and cameras."""
    digest = hashlib.blake2b(digest_size=16)
    for t in (image, camera, novel_camera):
        digest.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.digest()


def _drop_gradients(*modules: torch.nn.Module) -> None:
    """Forget the gradients the generator losses left on modules that this step must not update."""
    for module in modules:
        for p in module.parameters():
            p.grad = None


def sampled_latent_avg(G: EG3DGenerator, samples: int, chunk: int = 2000) -> Tensor:
    """``(1, w_dim)``: the released ``scripts/avg_latent.py`` average: mean first-row ``w`` of ``samples`` z drawn
    from ``numpy.random.RandomState(123)`` (float64, cast by the mapping), mapped at the frontal camera (lookat
    ``(0, 0, 0.2)``, radius 2.7) with psi 1."""
    z = torch.from_numpy(np.random.RandomState(LATENT_AVG_SEED).randn(samples, G.z_dim)).float()
    device = G.w_avg.device
    c = yaw_pitch_camera(0.0, 0.0).to(device)
    total = torch.zeros(G.w_dim, dtype=torch.float64, device=device)
    with torch.no_grad():
        for part in z.split(chunk):
            ws = G.mapping(part.to(device), c.expand(part.shape[0], -1), truncation_psi=1.0)
            total += ws[:, 0].double().sum(0)
    return (total / samples).float().reshape(1, -1)
