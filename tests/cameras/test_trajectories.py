"""HFGI3D orbit, IBRNet source views and yaw sweeps."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from warpinv.cameras import (
    CameraError,
    cam2world_to_yaw_pitch,
    hfgi3d_orbit,
    ibrnet_views,
    lookat_pose,
    pack_label,
    unpack_label,
    validate_label,
    yaw_pitch_camera,
    yaw_sweep,
)


def _official_orbit_label(frame_idx: int, num_keyframes: int = 30) -> torch.Tensor:
    """The loop body of HFGI3D's SingleIDCoach.train (render_poses), restated with this package."""
    pitch_range, yaw_range = 0.25, 0.35
    h = 3.14 / 2 + yaw_range * np.sin(2 * 3.14 * frame_idx / num_keyframes)
    v = 3.14 / 2 - 0.05 + pitch_range * np.cos(2 * 3.14 * frame_idx / num_keyframes)
    pose = lookat_pose(float(h), float(v), torch.tensor([0.0, 0.0, 0.2]), radius=2.7)
    intrinsics = torch.tensor([[4.2647, 0, 0.5], [0, 4.2647, 0.5], [0, 0, 1]])
    return pack_label(pose, intrinsics)


def test_hfgi3d_orbit_matches_the_official_formula() -> None:
    orbit = hfgi3d_orbit()
    assert orbit.shape == (30, 25) and orbit.dtype == torch.float32
    expected = torch.cat([_official_orbit_label(k) for k in range(30)])
    torch.testing.assert_close(orbit, expected, atol=1e-6, rtol=0)
    validate_label(orbit)


def test_hfgi3d_orbit_geometry_and_order() -> None:
    orbit = hfgi3d_orbit(pi=math.pi, dtype=torch.float64)
    cam2world = unpack_label(orbit)[0]
    torch.testing.assert_close(cam2world[:, :3, 3].norm(dim=1), torch.full((30,), 2.7, dtype=torch.float64))
    yaw, pitch = cam2world_to_yaw_pitch(cam2world)
    k = torch.arange(30, dtype=torch.float64)
    torch.testing.assert_close(yaw, 0.35 * torch.sin(2 * math.pi * k / 30), atol=1e-12, rtol=0)
    torch.testing.assert_close(pitch, -0.05 + 0.25 * torch.cos(2 * math.pi * k / 30), atol=1e-12, rtol=0)
    assert int(yaw.argmax()) in (7, 8) and int(pitch.argmin()) == 15 and int(pitch.argmax()) == 0


def test_hfgi3d_orbit_keeps_the_code_literal_pi() -> None:
    yaw, pitch = cam2world_to_yaw_pitch(unpack_label(hfgi3d_orbit(dtype=torch.float64))[0])
    # 3.14/2 instead of pi/2 shifts the whole orbit by -0.0008 rad in yaw and pitch.
    assert float(yaw[0]) == pytest.approx(3.14 / 2 - math.pi / 2, abs=1e-9)
    assert float(pitch[0]) == pytest.approx(3.14 / 2 - 0.05 + 0.25 - math.pi / 2, abs=1e-9)


def test_ibrnet_views_order() -> None:
    views = ibrnet_views(dtype=torch.float64)
    assert views.shape == (5, 25)
    yaw, pitch = cam2world_to_yaw_pitch(unpack_label(views)[0])
    f64 = torch.float64
    torch.testing.assert_close(yaw, torch.tensor([0.0, 0.0, 0.35, 0.0, -0.35], dtype=f64), atol=1e-12, rtol=0)
    torch.testing.assert_close(pitch, torch.tensor([0.0, 0.2, -0.05, -0.3, -0.05], dtype=f64), atol=1e-12, rtol=0)
    torch.testing.assert_close(views[0], yaw_pitch_camera(0.0, 0.0, dtype=torch.float64)[0], atol=0, rtol=0)


def test_ibrnet_views_without_offset() -> None:
    yaw, pitch = cam2world_to_yaw_pitch(unpack_label(ibrnet_views(pitch_offset=0.0, dtype=torch.float64))[0])
    expected = torch.tensor([0.0, 0.25, 0.0, -0.25, 0.0], dtype=torch.float64)
    torch.testing.assert_close(pitch, expected, atol=1e-12, rtol=0)


def test_yaw_sweep() -> None:
    sweep = yaw_sweep(7, 0.6, pitch=0.1, dtype=torch.float64)
    yaw, pitch = cam2world_to_yaw_pitch(unpack_label(sweep)[0])
    torch.testing.assert_close(yaw, torch.linspace(-0.6, 0.6, 7, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(pitch, torch.full((7,), 0.1, dtype=torch.float64), atol=1e-12, rtol=0)
    assert yaw_sweep(1, 0.6).shape == (1, 25)
    torch.testing.assert_close(yaw_sweep(1, 0.6), yaw_pitch_camera(0.0, 0.0), atol=0, rtol=0)
    with pytest.raises(CameraError, match="n must be >= 1"):
        yaw_sweep(0, 0.6)
