"""Losses shared by the inversion methods. Each loss exists once, here.

- :func:`masked_mse`: PTI's ``l2_loss`` (``MSELoss(reduction='mean')``), averaged over valid pixels.
- :func:`build_lpips` / :class:`PerceptualLoss`: LPIPS as a loss, with weights from the registry
  (``MissingWeightsError`` when absent) or, on explicit request, a seeded random trunk.
- :func:`noise_regularization` / :func:`normalize_noise_`: the StyleGAN2 projector's noise
  regulariser (squared autocorrelation over a pyramid) and the per-step renormalisation.
- :class:`IdentityLoss`: pSp's ID loss, ``1 - cos`` of ArcFace IR-SE50 embeddings, with gradients.
- :func:`latent_distance` / :func:`layer_spread`: latent regularisers (distance to a reference
  latent; spread of W+ layers around their mean).

Masks: ``(N, 1, H, W)`` with 1 = valid pixel. The prediction's padded pixels never contribute: MSE
averages over valid pixels only, and perceptual losses see the prediction composited onto the target
outside the mask, before any resize (zero difference and no gradient there; as in the LPIPS metric,
features near the border still see the target's padding as context).
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from warpinv.metrics.base import composite
from warpinv.metrics.lpips import LPIPS, TRUNK_WEIGHTS, Net


def masked_mse(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean squared error over valid pixels and all channels (a scalar).

    Without a mask this is ``torch.nn.functional.mse_loss(pred, target)`` (PTI's ``l2_loss``).
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    if mask is None:
        return F.mse_loss(pred, target)
    m = mask.to(pred.dtype).expand_as(pred)
    return ((pred - target).square() * m).sum() / m.sum().clamp_min(1.0)


def downsample_to(x: Tensor, resolution: int | None) -> Tensor:
    """Area-downsample ``x`` to ``resolution`` when it is larger (the PTI projector's rule for VGG).

    Images at or below ``resolution`` (and ``resolution=None``) are returned unchanged.
    """
    if resolution is None or x.shape[-1] <= resolution and x.shape[-2] <= resolution:
        return x
    return F.interpolate(x, size=(resolution, resolution), mode="area")


def build_lpips(net: Net, allow_random: bool = False, seed: int = 0) -> LPIPS:
    """An LPIPS loss module.

    Args:
        net: ``"alex"`` or ``"vgg"``.
        allow_random: use a seeded random ImageNet trunk when true (tests, the weightless default
            benchmark). Otherwise the trunk comes from the weights registry and a missing file
            raises ``MissingWeightsError`` right here, so a harness fails before any image.
        seed: seed of the random trunk.
    """
    return LPIPS(net, allow_random=allow_random, seed=seed)


def lpips_trunk_weights(nets: Iterable[Net], allow_random: bool = False) -> list[str]:
    """Registry names of the ImageNet trunks that :func:`build_lpips` resolves for ``nets``, once
    each (none with ``allow_random``: a random trunk needs no file). Methods declare these as their
    ``required_weights`` so a preflight lists every missing trunk, not only the first one built."""
    return [] if allow_random else list(dict.fromkeys(TRUNK_WEIGHTS[net] for net in nets))


class PerceptualLoss(nn.Module):
    """LPIPS between a prediction and a target, with the mask and resize rules of this module.

    Args:
        lpips: the LPIPS module (:func:`build_lpips`).
        resolution: area-downsample both images to this size first when they are larger
            (PTI's pivot: 256); ``None`` keeps the generator's resolution (PTI's tuning stage).

    Call: ``loss(pred, target, mask=None)`` -> ``(N,)`` distances.
    """

    def __init__(self, lpips: LPIPS, resolution: int | None = None) -> None:
        super().__init__()
        self.lpips = lpips
        self.resolution = resolution

    @property
    def random_weights(self) -> bool:
        return self.lpips.random_weights

    def forward(self, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        pred = composite(pred, target, mask)
        return self.lpips(downsample_to(pred, self.resolution), downsample_to(target, self.resolution))


class IdentityLoss(nn.Module):
    """pSp's ``IDLoss``: ``1 - cos`` between the ArcFace IR-SE50 embeddings of prediction and target, with
    gradients to the prediction (the crop and resize of :class:`warpinv.metrics.identity.ArcFaceIdentity`).

    Args:
        allow_random: seeded random IR-SE50 weights instead of ``model_ir_se50.pth`` (tests, weightless runs).

    Call: ``loss(pred (N, 3, H, W), target (N, 3, H, W))`` -> ``(N,)``.
    """

    def __init__(self, allow_random: bool = False, seed: int = 0) -> None:
        super().__init__()
        from warpinv.metrics.identity import ArcFaceIdentity

        self.arcface = ArcFaceIdentity(allow_random=allow_random, seed=seed)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        emb_pred = self.arcface.embed_with_grad(pred)
        with torch.no_grad():
            emb_target = self.arcface.embed_with_grad(target)
        return 1 - (emb_pred * emb_target).sum(dim=1)


def noise_regularization(noise_buffers: Iterable[Tensor]) -> Tensor:
    """StyleGAN2 projector noise regulariser.

    For each ``(H, W)`` buffer: squared mean autocorrelation at a 1-pixel shift along x and y
    (circular), summed over a 2x average-pool pyramid down to 8 pixels (a buffer of 8 or less
    contributes once). Returns a scalar; 0 for no buffers.
    """
    reg: Tensor | float = 0.0
    for buf in noise_buffers:
        noise = buf[None, None]
        while True:
            reg = reg + (noise * torch.roll(noise, shifts=1, dims=3)).mean() ** 2
            reg = reg + (noise * torch.roll(noise, shifts=1, dims=2)).mean() ** 2
            if noise.shape[2] <= 8:
                break
            noise = F.avg_pool2d(noise, kernel_size=2)
    return reg if isinstance(reg, Tensor) else torch.tensor(reg)


@torch.no_grad()
def normalize_noise_(noise_buffers: Iterable[Tensor]) -> None:
    """In place: zero mean and unit variance per buffer (after each projector step)."""
    for buf in noise_buffers:
        buf -= buf.mean()
        buf *= buf.square().mean().rsqrt()


def latent_distance(ws: Tensor, reference: Tensor) -> Tensor:
    """Mean squared distance of a latent from a reference (e.g. ``w_avg``), broadcast over layers."""
    return (ws - reference).square().mean()


def layer_spread(ws: Tensor) -> Tensor:
    """Mean squared deviation of the W+ layers from their mean (0 for a latent in W)."""
    return (ws - ws.mean(dim=1, keepdim=True)).square().mean()


__all__ = [
    "PerceptualLoss",
    "build_lpips",
    "composite",
    "downsample_to",
    "latent_distance",
    "layer_spread",
    "lpips_trunk_weights",
    "masked_mse",
    "noise_regularization",
    "normalize_noise_",
]
