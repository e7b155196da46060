"""``w_opt``: latent optimisation in W (PTI's pivot stage on its own)."""
from __future__ import annotations

from warpinv.methods.w_opt.method import WOpt, WOptConfig

__all__ = ["WOpt", "WOptConfig"]
