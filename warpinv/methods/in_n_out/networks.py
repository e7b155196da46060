"""In-N-Out's out-of-distribution (OOD) radiance field: a free tri-plane, a per-image code and a decoder.

The released code (``eg3d/outdomain/triplanes_split.py``, ``TriPlaneItem``; ``eg3d/training/triplane.py``,
``OSGDecoder.forward_extend``) and the paper (Sec. 3.2) agree on the parts:

- ``T^O``: one learnable tri-plane ``(1, 3, 32, 256, 256)``, standard-normal init;
- ``phi``: a per-image code ``(1, 32)``, standard-normal init;
- ``D^O``: ``FC(64 -> 64) -> Softplus -> FC(64 -> 34)`` on ``cat(plane feature, phi)``, giving a raw density,
  32 features (MipNeRF's widened sigmoid, as EG3D's decoder) and a blend weight ``b = sigmoid``.

They differ on how the three plane features are reduced: the code **averages** them (default
``plane_reduction="mean"``), the paper says "summed" (``"sum"``, paper, not in the released code).

Parameter names follow the released ``new_triplanes.*`` entries (``triplanes``, ``decoder.net.{0,2}.*``), so
a released ``triplanes.pt`` loads by stripping the prefix (see :mod:`warpinv.methods.in_n_out.released`).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import Tensor, nn

from warpinv.backbone.ops import TexelTable
from warpinv.backbone.renderer import RadianceField, mean_over_planes, sample_from_planes
from warpinv.backbone.stylegan2 import FullyConnectedLayer
from warpinv.checks import check_choice

PlaneReduction = Literal["mean", "sum"]
#: Feature channels of the OOD tri-plane and length of the code ``phi`` (released: 32 and 32).
OOD_CHANNELS = 32
#: Hidden width of the OOD decoder (released: 64).
OOD_HIDDEN = 64


class OODDecoder(nn.Module):
    """``D^O``: (plane features, ``phi``) -> raw ``sigma``, 32 features, blend ``b``.

    Example:
        >>> dec = OODDecoder()
        >>> out = dec(torch.zeros(1, 3, 5, 32), torch.zeros(1, 32))
        >>> [tuple(out[k].shape) for k in ("sigma", "rgb", "blend")]
        [(1, 5, 1), (1, 5, 32), (1, 5, 1)]
    """

    def __init__(self, n_features: int = OOD_CHANNELS, code_dim: int = OOD_CHANNELS, hidden_dim: int = OOD_HIDDEN,
                 plane_reduction: PlaneReduction = "mean") -> None:
        super().__init__()
        check_choice(plane_reduction, ("mean", "sum"), "plane_reduction")
        self.n_features, self.code_dim, self.plane_reduction = n_features, code_dim, plane_reduction
        self.net = nn.Sequential(
            FullyConnectedLayer(n_features + code_dim, hidden_dim),
            nn.Softplus(),
            FullyConnectedLayer(hidden_dim, 1 + n_features + 1),
        )

    def raw(self, sampled_features: Tensor, phi: Tensor) -> Tensor:
        """The 34 pre-activation outputs ``[sigma, 32 features, blend]``.

        Args:
            sampled_features: ``(N, 3, M, C)`` tri-plane features.
            phi: ``(N, code_dim)`` or ``(1, code_dim)`` (broadcast to every point of every batch entry).

        Returns:
            ``(N, M, 2 + C)``.
        """
        shape = tuple(sampled_features.shape)
        if len(shape) != 4 or shape[1] != 3 or shape[-1] != self.n_features:
            raise ValueError(f"sampled_features must be (N, 3, M, {self.n_features}), got {shape}")
        if phi.ndim != 2 or phi.shape[-1] != self.code_dim or phi.shape[0] not in (1, sampled_features.shape[0]):
            raise ValueError(f"phi must be (N or 1, {self.code_dim}), got {tuple(phi.shape)}")
        features = mean_over_planes(sampled_features)
        if self.plane_reduction == "sum":
            features = features * sampled_features.shape[1]
        n, m, _ = features.shape
        code = phi.to(features).unsqueeze(1).expand(n, m, -1)
        x = torch.cat([features, code], dim=-1)
        return self.net(x.reshape(n * m, -1)).reshape(n, m, -1)

    def forward(self, sampled_features: Tensor, phi: Tensor) -> dict[str, Tensor]:
        """``sigma (N, M, 1)`` raw (the marcher applies ``softplus(sigma - 1)``), ``rgb (N, M, C)``,
        ``blend (N, M, 1)`` in ``(0, 1)``."""
        x = self.raw(sampled_features, phi)
        rgb = torch.sigmoid(x[..., 1:-1]) * (1 + 2 * 0.001) - 0.001
        return {"sigma": x[..., :1], "rgb": rgb, "blend": torch.sigmoid(x[..., -1:])}


class OODField(nn.Module):
    """The OOD radiance field of one image: ``T^O`` and ``D^O`` (``phi`` is passed in, as it is per frame).

    ``code_dim`` (the width of ``phi``) defaults to ``channels``, as released (32 and 32).

    Attributes:
        triplanes: ``(1, 3, C, R, R)`` parameter.
        decoder: :class:`OODDecoder`.
    """

    def __init__(self, channels: int = OOD_CHANNELS, resolution: int = 256, plane_reduction: PlaneReduction = "mean",
                 generator: torch.Generator | None = None, code_dim: int | None = None,
                 hidden_dim: int = OOD_HIDDEN) -> None:
        super().__init__()
        self.triplanes = nn.Parameter(torch.randn(1, 3, channels, resolution, resolution, generator=generator))
        self.decoder = OODDecoder(channels, channels if code_dim is None else code_dim, hidden_dim,
                                  plane_reduction=plane_reduction)

    def evaluate(self, coordinates: Tensor, phi: Tensor, options: Mapping[str, Any],
                 texels: TexelTable | None = None) -> dict[str, Tensor]:
        """Decode at world points ``(N, P, 3)`` (the InD box ``options['box_warp']``); the planes are shared by
        the batch. Returns ``sigma (N, P, 1)``, ``rgb (N, P, C)``, ``blend (N, P, 1)``."""
        planes = self.triplanes.expand(coordinates.shape[0], -1, -1, -1, -1)
        features = sample_from_planes(planes, coordinates, options["box_warp"], texels)
        return self.decoder(features, phi)

    def field(self, phi: Tensor, options: Mapping[str, Any]) -> RadianceField:
        """A :data:`~warpinv.backbone.renderer.RadianceField` of this OOD field for code ``phi``; the
        lookups of one render share one texel table."""
        shared: list[TexelTable] = []

        def evaluate(coordinates: Tensor, directions: Tensor) -> dict[str, Tensor]:
            del directions  # the decoder ignores view directions, as the released one
            if not shared:
                planes = self.triplanes.expand(coordinates.shape[0], -1, -1, -1, -1)
                shared.append(TexelTable.for_lookups(planes, coordinates.shape[1]))
            return self.evaluate(coordinates, phi, options, texels=shared[0])

        return evaluate


__all__ = ["OOD_CHANNELS", "OOD_HIDDEN", "OODDecoder", "OODField", "PlaneReduction"]
