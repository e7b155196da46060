"""LPIPS v0.1 from the ``lpips`` package, with weights that never download implicitly.

``lpips.LPIPS(pretrained=True)`` would ask torchvision to download the ImageNet trunk. We build it
with ``pnet_rand=True`` (no download), which still loads the v0.1 linear heads shipped inside the
``lpips`` wheel, then load the trunk from the file the weights registry resolves
(``alexnet-owt-7be5be79.pth`` / ``vgg16-397923af.pth``). A missing trunk raises
``MissingWeightsError`` naming the file and how to get it.

Protocol (pSp, e4e, PTI, HFGI3D, TriPlaneNet, E3DGE): inputs in ``[-1, 1]``, AlexNet trunk for
evaluation, images resized to 256x256 by the metric wrapper; lower is better, 0 for identical images.
The module is differentiable, so optimisation methods use it as a loss.
"""
from __future__ import annotations

import os
from typing import Literal

import torch
from torch import Tensor, nn

from warpinv.checks import check_choice, check_same_shape, check_shape

Net = Literal["alex", "vgg"]
TRUNK_WEIGHTS = {"alex": "torchvision-alexnet", "vgg": "torchvision-vgg16"}


class LPIPS(nn.Module):
    """LPIPS v0.1 distance.

    Args:
        net: ``"alex"`` (evaluation default) or ``"vgg"``.
        trunk: path of the ImageNet trunk file; ``None`` resolves it through the weights registry.
        allow_random: use a seeded random trunk instead (tests, or an explicit user request); then
            ``random_weights`` is True and any reported number must say so.
        seed: seed of the random trunk.

    Call: ``lpips(a, b)`` with ``(N, 3, H, W)`` tensors in ``[-1, 1]`` returns ``(N,)`` distances.

    Example:
        >>> m = LPIPS("alex", allow_random=True)
        >>> x = torch.rand(2, 3, 64, 64) * 2 - 1
        >>> m(x, x).abs().max().item() < 1e-6
        True
    """

    def __init__(self, net: Net = "alex", trunk: str | os.PathLike[str] | None = None,
                 allow_random: bool = False, seed: int = 0) -> None:
        super().__init__()
        check_choice(net, tuple(TRUNK_WEIGHTS), "LPIPS net")
        import lpips  # imported here: the package is only needed once a metric or loss is built

        self.net_name = net
        trunk_path = None if allow_random and trunk is None else _resolve_trunk(net, trunk)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = lpips.LPIPS(net=net, version="0.1", pretrained=True, pnet_rand=True, verbose=False)
        self.random_weights = trunk_path is None
        self.source = f"random {net} trunk (seed {seed})" if self.random_weights else str(trunk_path)
        if trunk_path is not None:
            load_trunk(self.model.net, torch.load(trunk_path, map_location="cpu", weights_only=True))
        self.model.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> LPIPS:
        super().train(mode)
        self.model.eval()  # dropout stays off: LPIPS is a fixed metric
        return self

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        """``a``, ``b``: ``(N, 3, H, W)`` in ``[-1, 1]`` -> ``(N,)``."""
        check_shape(a, "N 3 H W", "a")
        check_same_shape(a, b, ("a", "b"))
        return self.model(a, b, normalize=False).reshape(-1)


def _resolve_trunk(net: Net, trunk: str | os.PathLike[str] | None):
    from warpinv.weights import resolve

    return resolve(TRUNK_WEIGHTS[net], path=trunk)


def load_trunk(features: nn.Module, state: dict[str, Tensor]) -> None:
    """Copy torchvision ``features.{i}.*`` tensors into lpips' sliced trunk (``slice{k}.{i}.*``).

    Every trunk tensor lpips uses must be present; the classifier entries are ignored.
    """
    own = features.state_dict()
    mapped = {}
    for name in own:
        _, index, param = name.split(".", 2)
        key = f"features.{index}.{param}"
        if key not in state:
            raise KeyError(f"trunk checkpoint lacks {key!r} (needed for LPIPS {name!r})")
        mapped[name] = state[key]
    features.load_state_dict(mapped, strict=True)
