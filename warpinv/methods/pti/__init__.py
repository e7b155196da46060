"""``pti``: Pivotal Tuning Inversion (pivot in W or W+, then tuning of the whole generator)."""
from __future__ import annotations

from warpinv.methods.pti.method import PTI, PivotConfig, PTIConfig
from warpinv.methods.tuning import changed_parameters

__all__ = ["PTI", "PTIConfig", "PivotConfig", "changed_parameters"]
