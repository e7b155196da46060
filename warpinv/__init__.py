"""warpinv: 3D GAN inversion methods side by side on one EG3D backbone."""
from __future__ import annotations

__version__ = "0.1.0.dev0"
