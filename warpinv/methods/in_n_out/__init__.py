"""In-N-Out: composite out-of-distribution tri-planes with OOD removal (see ``method.py`` and ``README.md``)."""
from warpinv.methods.in_n_out.config import InDConfig, InNOutConfig, OODConfig, SRConfig
from warpinv.methods.in_n_out.method import InNOut, InNOutInversion

__all__ = ["InDConfig", "InNOut", "InNOutConfig", "InNOutInversion", "OODConfig", "SRConfig"]
