"""``wplus_opt``: latent optimisation in W+ (the EG3D PTI port's pivot stage on its own)."""
from __future__ import annotations

from warpinv.methods.wplus_opt.method import WPlusOpt, WPlusOptConfig

__all__ = ["WPlusOpt", "WPlusOptConfig"]
