"""E3DGE-style self-supervised geometry-aware encoder (see ``README.md`` in this folder)."""
from __future__ import annotations

from warpinv.methods.e3dge.config import E3DGEConfig, GlobalConfig, LocalConfig, LossConfig
from warpinv.methods.e3dge.method import E3DGE, E3DGEInversion, E3DGERenderer
from warpinv.methods.e3dge.pixel_aligned import PixelAlignedFeatures, feature_hook, sample_features

__all__ = ["E3DGE", "E3DGEConfig", "E3DGEInversion", "E3DGERenderer", "GlobalConfig", "LocalConfig", "LossConfig",
           "PixelAlignedFeatures", "feature_hook", "sample_features"]
