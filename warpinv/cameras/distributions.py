"""Camera pose distributions for self-generated (proxy) training data.

A :class:`PoseDistribution` draws yaw and pitch (radians, relative to the frontal LookAt pose of
:func:`warpinv.cameras.yaw_pitch_camera`) from a seeded ``torch.Generator`` and turns them into EG3D
labels (radius 2.7, look-at (0, 0, 0.2), focal 4.2647 unless set otherwise).

- ``gaussian`` (the default): independent normal yaw and pitch, truncated at ``clip`` standard
  deviations by redrawing. The default spreads, yaw 0.3 rad and pitch 0.15 rad, are the FFHQ camera
  distribution that StyleSDF trains with and E3DGE draws its proxy samples from (``camera_utils.py`` of
  ``NIRVANALAN/CVPR23-E3DGE``), i.e. the spread of near-frontal face photos. The 2-std clip is ours.
- ``uniform``: yaw in ``[-yaw_range, yaw_range]``, pitch in ``[-pitch_range, pitch_range]``.

Example:
    >>> d = PoseDistribution()
    >>> yaw, pitch = d.sample(1000, torch.Generator().manual_seed(0))
    >>> round(float(yaw.std()), 1), bool(yaw.abs().max() <= 0.3 * d.clip)
    (0.3, True)
    >>> d.cameras(2, torch.Generator().manual_seed(0)).shape
    torch.Size([2, 25])
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from warpinv.cameras.lookat import DEFAULT_RADIUS, FFHQ_FOCAL, yaw_pitch_camera
from warpinv.checks import check_choice, check_min

POSE_KINDS = ("gaussian", "uniform")


@dataclass
class PoseDistribution:
    """A distribution of camera yaw and pitch around the frontal pose."""

    kind: Literal["gaussian", "uniform"] = "gaussian"
    """``gaussian`` (truncated normal, the FFHQ spread by default) or ``uniform`` (a box)."""
    yaw_std: float = 0.3
    """Gaussian: yaw standard deviation in radians (0.3: StyleSDF's FFHQ, E3DGE's proxy samples)."""
    pitch_std: float = 0.15
    """Gaussian: pitch standard deviation in radians (0.15: StyleSDF's FFHQ, E3DGE's proxy samples)."""
    clip: float = 2.0
    """Gaussian: angles beyond ``clip`` standard deviations are redrawn."""
    yaw_range: float = 0.35
    """Uniform: yaw in ``[-yaw_range, yaw_range]`` radians (0.35: EG3D's video orbit)."""
    pitch_range: float = 0.25
    """Uniform: pitch in ``[-pitch_range, pitch_range]`` radians (0.25: EG3D's video orbit)."""
    radius: float = DEFAULT_RADIUS
    """Camera distance from the origin."""
    focal: float = FFHQ_FOCAL
    """Normalised focal length."""

    def __post_init__(self) -> None:
        check_choice(self.kind, POSE_KINDS, "kind")
        for name in ("yaw_std", "pitch_std", "yaw_range", "pitch_range"):
            check_min(getattr(self, name), 0.0, name)
        check_min(self.clip, 0.0, "clip", strict=True)
        check_min(self.radius, 0.0, "radius", strict=True)

    def sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``n`` draws: ``yaw (n,)``, ``pitch (n,)`` in radians (float32, CPU)."""
        if self.kind == "uniform":
            yaw = (torch.rand(n, generator=generator) * 2 - 1) * self.yaw_range
            pitch = (torch.rand(n, generator=generator) * 2 - 1) * self.pitch_range
            return yaw, pitch
        return (_truncated_normal(n, self.yaw_std, self.clip, generator),
                _truncated_normal(n, self.pitch_std, self.clip, generator))

    def cameras(self, n: int, generator: torch.Generator) -> Tensor:
        """``(n, 25)`` EG3D labels of ``n`` draws."""
        yaw, pitch = self.sample(n, generator)
        return yaw_pitch_camera(yaw, pitch, radius=self.radius, focal=self.focal)


def _truncated_normal(n: int, std: float, clip: float, generator: torch.Generator) -> Tensor:
    """``(n,)`` normal draws with standard deviation ``std``, redrawn until within ``clip * std``."""
    x = torch.randn(n, generator=generator)
    for _ in range(100):
        outside = x.abs() > clip
        if not outside.any():
            break
        x[outside] = torch.randn(int(outside.sum()), generator=generator)
    return x.clamp(-clip, clip) * std
