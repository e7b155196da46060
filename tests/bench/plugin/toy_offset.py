"""A method written outside warpinv (acceptance test of the method interface, issue 10).

``toy_offset`` is an encoder (``trainable``) with one trained tensor, a colour offset. Its own
``Inversion`` kind carries the offset, and its renderer adds it to every rendered image: a method
whose views are not a plain generator render. The test copies this file into a temporary folder and
names it under ``plugins`` in a suite; nothing under ``warpinv/bench`` knows of it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from warpinv.methods import (
    METHODS,
    Inversion,
    InversionItem,
    InversionMethod,
    LatentRenderer,
    MethodConfig,
    register_method,
)


class OffsetInversion(Inversion):
    """A latent plus a colour offset ``tensors["offset"] (1, 3, 1, 1)`` added to every render."""

    kind = "toy_offset"


@dataclass
class ToyOffsetConfig(MethodConfig):
    """Config of the plugin method (its ``checkpoint`` holds the trained offset)."""

    scale: float = 1.0
    """Multiplies the trained offset at render time."""


class OffsetRenderer:
    """The latent's render plus the inversion's colour offset."""

    def __init__(self, base: LatentRenderer, offset: Tensor) -> None:
        self.base = base
        self.offset = offset

    def __call__(self, cameras: Tensor) -> dict[str, Tensor]:
        out = self.base(cameras)
        return {**out, "image": out["image"] + self.offset.to(out["image"])}


class ToyOffset(InversionMethod):
    """Plugin test method: w_avg plus a trained colour offset on every render."""

    name = "toy_offset"
    Config = ToyOffsetConfig
    trainable = True

    def __init__(self, config: ToyOffsetConfig, generator: nn.Module) -> None:
        super().__init__(config, generator)
        self.offset = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def invert_batch(self, items: list[InversionItem]) -> list[Inversion]:
        ws = self.G.w_avg.reshape(1, 1, -1).repeat(1, self.G.num_ws, 1)
        offset = self.config.scale * self.offset.detach()
        return [OffsetInversion(i.image_id, self.name, ws, i.camera, tensors={"offset": offset}) for i in items]

    def renderer(self, inversion: Inversion, batch: int = 16) -> OffsetRenderer:
        return OffsetRenderer(LatentRenderer(self.G, inversion, batch), inversion.tensors["offset"])


if ToyOffset.name not in METHODS:
    register_method(ToyOffset)
