"""LPIPS metrics (``lpips_alex``, ``lpips_vgg``): the ``lpips`` package v0.1, per image, inputs in [-1, 1].

The network is :class:`warpinv.metrics.lpips.LPIPS`: ``lpips.LPIPS(version="0.1")`` with the linear
heads shipped in the ``lpips`` wheel and the ImageNet trunk loaded from the file the weights
registry resolves (``alexnet-owt-7be5be79.pth`` / ``vgg16-397923af.pth``); nothing downloads.

Protocol (pSp, e4e, TriPlaneNet, E3DGE, code-verified): images in [-1, 1] (``normalize=False``),
resized to 256x256 (antialiased bilinear, metrics.md §6), AlexNet trunk for reconstruction. IBRNet's
eval uses the VGG trunk at the render resolution (``lpips_vgg``, ``resolution=None``). With a mask, the
prediction is composited onto the target outside the mask (LPIPS has no per-pixel average to mask).

Example (a seeded random trunk, so the values are not perceptual distances; they show the interface):
    >>> import torch
    >>> m = LPIPSMetric("alex", allow_random=True, resolution=64)
    >>> x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    >>> d = m(x, x.flip(0))
    >>> d.shape, m.random_weights
    (torch.Size([2]), True)
    >>> m(x, x).abs().max().item() < 1e-6, bool((d > 0).all())
    (True, True)
"""
from __future__ import annotations

import os
from typing import Any

from torch import Tensor

from warpinv.checks import check_choice, check_weights_or_random
from warpinv.metrics.base import DEFAULT_RESOLUTION, MetricInfo, PairMetric, composite, register_metric
from warpinv.metrics.lpips import LPIPS, TRUNK_WEIGHTS, Net

__all__ = ["LPIPSMetric", "LPIPS_INFOS"]

_TRUNK_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}


def _info(net: Net, comparable_to: str) -> MetricInfo:
    return MetricInfo(
        name=f"lpips_{net}",
        higher_is_better=False,
        value_range=(0.0, float("inf")),
        resolution=DEFAULT_RESOLUTION,
        input_range=(-1.0, 1.0),
        weights=(_TRUNK_FILES[net], f"{net}.pth (LPIPS v0.1 head, in the lpips wheel)"),
        weight_names=(TRUNK_WEIGHTS[net], f"lpips-{net}-v0.1"),
        protocol=f"LPIPS v0.1 ({net} trunk, lpips package 0.1.4 linear heads), inputs in [-1, 1] (normalize=False), "
                 "per image; images resized to 256x256 with antialiased bilinear interpolation unless built with "
                 "another resolution. Mask: prediction composited onto the target outside the mask; prediction "
                 "clamped to [-1, 1].",
        comparable_to=comparable_to,
    )


#: The two registered LPIPS variants.
LPIPS_INFOS: dict[str, MetricInfo] = {
    "alex": _info("alex", "pSp/e4e, TriPlaneNet and E3DGE LPIPS (alex, [-1, 1], 256; code-verified); HFGI3D Tab. 1 and "
                          "In-N-Out Tab. 1 LPIPS (backbone and resolution unconfirmed, alex is the lineage default)."),
    "vgg": _info("vgg", "IBRNet eval.py LPIPS (vgg, at the render resolution) and hence the IBRNet LPIPS of HFGI3D "
                        "Tab. 3 if computed with IBRNet's code (unconfirmed). Not comparable to LPIPS-alex numbers."),
}


class LPIPSMetric(PairMetric):
    """Per-image LPIPS distance (lower is better, 0 for identical images).

    Args:
        net: ``"alex"`` (registered as ``lpips_alex``) or ``"vgg"`` (``lpips_vgg``).
        weights: path of the ImageNet trunk file; ``None`` resolves it with the weights registry
            (``MissingWeightsError`` when absent).
        allow_random: seeded random trunk instead (``random_weights`` becomes True).
        seed: seed of the random trunk.
        resolution: see :class:`~warpinv.metrics.base.PairMetric`.
    """

    def __init__(self, net: Net = "alex", weights: str | os.PathLike[str] | None = None, allow_random: bool = False,
                 seed: int = 0, resolution: int | None = DEFAULT_RESOLUTION) -> None:
        check_choice(net, tuple(LPIPS_INFOS), "LPIPS net")
        check_weights_or_random(weights, allow_random)
        super().__init__(resolution, LPIPS_INFOS[net])
        self.lpips = LPIPS(net, trunk=weights, allow_random=allow_random, seed=seed)
        self.random_weights = self.lpips.random_weights
        self.source = self.lpips.source
        if not self.random_weights:
            from warpinv.weights import resolve

            self.weight_files = {TRUNK_WEIGHTS[net]: self.lpips.source,
                                 f"lpips-{net}-v0.1": str(resolve(f"lpips-{net}-v0.1"))}

    def score(self, pred: Tensor, target: Tensor, mask: Tensor | None) -> Tensor:
        return self.lpips(composite(pred, target, mask), target)


def _builder(net: Net):
    def build(allow_random: bool = False, seed: int = 0, **options: Any) -> LPIPSMetric:
        return LPIPSMetric(net, allow_random=allow_random, seed=seed, **options)

    return build


register_metric(LPIPS_INFOS["alex"], _builder("alex"))
register_metric(LPIPS_INFOS["vgg"], _builder("vgg"))
