"""Pose distributions of the proxy training data."""
from __future__ import annotations

import pytest
import torch

from warpinv.cameras import PoseDistribution, unpack_label, yaw_pitch_camera


def test_gaussian_draws_are_seeded_truncated_and_have_the_configured_spread() -> None:
    d = PoseDistribution(yaw_std=0.3, pitch_std=0.15, clip=2.0)
    yaw, pitch = d.sample(20000, torch.Generator().manual_seed(1))
    again, _ = d.sample(20000, torch.Generator().manual_seed(1))
    assert torch.equal(yaw, again)
    assert yaw.abs().max() <= 0.6 + 1e-6 and pitch.abs().max() <= 0.3 + 1e-6
    # a normal truncated at 2 std has std 0.88 of the untruncated one
    assert yaw.std().item() == pytest.approx(0.3 * 0.88, rel=0.03)
    assert pitch.std().item() == pytest.approx(0.15 * 0.88, rel=0.03)


def test_uniform_draws_cover_the_box() -> None:
    d = PoseDistribution(kind="uniform", yaw_range=0.5, pitch_range=0.25)
    yaw, pitch = d.sample(5000, torch.Generator().manual_seed(0))
    assert yaw.abs().max() <= 0.5 and pitch.abs().max() <= 0.25
    assert yaw.max() > 0.49 and yaw.min() < -0.49


def test_cameras_are_the_lookat_cameras_of_the_drawn_angles() -> None:
    d = PoseDistribution()
    cams = d.cameras(4, torch.Generator().manual_seed(3))
    yaw, pitch = d.sample(4, torch.Generator().manual_seed(3))
    torch.testing.assert_close(cams, yaw_pitch_camera(yaw, pitch))
    assert torch.allclose(unpack_label(cams)[0][:, :3, 3].norm(dim=-1), torch.tensor(d.radius))


@pytest.mark.parametrize("kwargs", [{"kind": "normal"}, {"yaw_std": -0.1}, {"clip": 0.0}, {"radius": 0.0}])
def test_bad_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        PoseDistribution(**kwargs)
