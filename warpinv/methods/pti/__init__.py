"""``pti``: Pivotal Tuning Inversion (pivot in W or W+, then tuning of the whole generator)."""
from __future__ import annotations

from warpinv.methods.pti.method import PTI, PTIConfig, changed_parameters

__all__ = ["PTI", "PTIConfig", "changed_parameters"]
