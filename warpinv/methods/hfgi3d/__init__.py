"""HFGI3D: pseudo-multi-view optimisation (see ``method.py`` and ``README.md``)."""
from warpinv.methods.hfgi3d.method import HFGI3D, HFGI3DConfig, HFGI3DInversion, PivotConfig

__all__ = ["HFGI3D", "HFGI3DConfig", "HFGI3DInversion", "PivotConfig"]
