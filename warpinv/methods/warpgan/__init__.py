"""WarpGAN (Huang et al., NeurIPS 2025): encoder, depth warp and SVINet inpainting with a symmetry prior.

Importing this package registers the method ``warpgan`` (see ``README.md``).
"""
from __future__ import annotations

from warpinv.methods.warpgan.config import WarpGANConfig
from warpinv.methods.warpgan.method import WarpGAN, WarpGANInversion, WarpGANRenderer

__all__ = ["WarpGAN", "WarpGANConfig", "WarpGANInversion", "WarpGANRenderer"]
