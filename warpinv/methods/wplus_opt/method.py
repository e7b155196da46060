"""``wplus_opt``: optimise one latent per layer (W+) to reproduce the image.

With the defaults this is the pivot stage of the EG3D PTI port in HFGI3D
(``inversion/training/projectors/w_plus_projector.py``: 500 steps, the same schedule and losses as
PTI's projector, ``w_avg`` repeated to every layer). See ``README.md``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from warpinv.methods.base import register_method
from warpinv.methods.projector import Space
from warpinv.methods.w_opt.method import WOpt, WOptConfig


@dataclass
class WPlusOptConfig(WOptConfig):
    """W+ optimisation. Defaults: HFGI3D's EG3D W+ projector."""

    steps: int = 500
    """Optimisation steps (HFGI3D's ``first_inv_steps``: 500)."""
    layer_spread_weight: float = 0.0
    """Weight of the spread of the per-layer latents around their mean (0: unconstrained W+, official)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.layer_spread_weight >= 0:
            raise ValueError(f"layer_spread_weight must be >= 0, got {self.layer_spread_weight}")


@register_method
class WPlusOpt(WOpt):
    """Latent optimisation in W+: a ``(num_ws, w_dim)`` latent, Adam, start at ``w_avg`` on every layer."""

    name = "wplus_opt"
    Config = WPlusOptConfig
    space: ClassVar[Space] = "w+"

    @property
    def layer_spread_weight(self) -> float:
        cfg = self.config
        assert isinstance(cfg, WPlusOptConfig)
        return cfg.layer_spread_weight
