"""Camera from 5 landmarks: recovers known EG3D cameras from exact and noisy template projections."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from warpinv.cameras import FFHQ_FOCAL, validate_label, yaw_pitch_camera
from warpinv.data.prepare.pose import (
    estimate_pose,
    pose_error_table,
    project_points,
    random_cameras,
    template_world,
)


def test_project_points_matches_the_label_convention() -> None:
    c = yaw_pitch_camera(0.0, 0.0, dtype=torch.float64)[0].numpy()
    # The look-at point (0, 0, 0.2) projects to the image centre (pixel index 255.5).
    assert np.allclose(project_points(np.array([[0.0, 0.0, 0.2]]), c, 512), [[255.5, 255.5]])
    lm = project_points(template_world(), c, 512)
    assert lm[0, 0] < lm[1, 0]  # image-left eye first
    assert lm[0, 1] < lm[2, 1] < lm[3, 1]  # eyes above the nose above the mouth (y down)


def test_recovers_known_cameras_from_exact_projections() -> None:
    """Acceptance 1: median error well under 1 degree in yaw and pitch (exactly 0 for PnP)."""
    table = pose_error_table(noise_px=(0.0,), n=200, seed=0, methods=("pnp", "pos"))
    pnp, pos = table[("pnp", 0.0)], table[("pos", 0.0)]
    assert pnp["yaw_median"] < 0.01 and pnp["pitch_median"] < 0.01  # degrees
    assert pnp["yaw_max"] < 0.05 and pnp["pitch_max"] < 0.05
    # POS (scaled orthographic) carries the weak-perspective bias; still about a degree.
    assert pos["yaw_median"] < 1.5 and pos["pitch_median"] < 1.5


def test_stable_under_one_pixel_landmark_noise() -> None:
    """Acceptance 1: 1 px Gaussian noise on every landmark coordinate of the 512 crop."""
    table = pose_error_table(noise_px=(1.0, 2.0), n=200, seed=1, methods=("pnp",))
    one, two = table[("pnp", 1.0)], table[("pnp", 2.0)]
    assert one["yaw_median"] < 1.0 and one["pitch_median"] < 1.0
    assert one["yaw_p90"] < 2.5 and one["pitch_p90"] < 3.0
    assert two["yaw_median"] < 2 * one["yaw_median"] + 0.3  # error grows about linearly with the noise


def test_roll_is_recovered_or_dropped() -> None:
    c = yaw_pitch_camera(0.2, -0.1, dtype=torch.float64)[0].numpy().copy()
    m = c[:16].reshape(4, 4)
    roll = 0.15
    rz = np.array([[math.cos(roll), -math.sin(roll), 0], [math.sin(roll), math.cos(roll), 0], [0, 0, 1]])
    m[:3, :3] = m[:3, :3] @ rz
    c[:16] = m.reshape(16)
    lm = project_points(template_world(), c, 512)
    est = estimate_pose(lm, 512)
    assert abs(est.roll - roll) < 1e-6 and abs(est.yaw - 0.2) < 1e-6 and abs(est.pitch + 0.1) < 1e-6
    assert np.allclose(est.label, c, atol=1e-6)
    flat = estimate_pose(lm, 512, keep_roll=False)
    assert flat.roll == 0.0
    assert np.allclose(flat.label, yaw_pitch_camera(0.2, -0.1, dtype=torch.float64)[0].numpy(), atol=1e-6)


@pytest.mark.parametrize("method", ["pnp", "pos"])
def test_labels_follow_the_eg3d_convention(method: str) -> None:
    rng = np.random.default_rng(3)
    for label in random_cameras(5, rng):
        lm = project_points(template_world(), label, 512) + rng.normal(0, 1.0, (5, 2))
        est = estimate_pose(lm, 512, method=method)  # type: ignore[arg-type]
        c = torch.from_numpy(est.label)[None]
        validate_label(c, atol=1e-6)
        centre, forward = est.label[[3, 7, 11]], est.label[[2, 6, 10]]
        assert abs(np.linalg.norm(centre) - 2.7) < 1e-9  # on the radius-2.7 sphere about the origin
        to_pivot = np.array([0.0, 0.0, 0.2]) - centre
        assert np.linalg.norm(np.cross(forward, to_pivot / np.linalg.norm(to_pivot))) < 1e-9  # looks at it
        assert est.label[16] == pytest.approx(FFHQ_FOCAL) and est.label[18] == 0.5 and est.label[21] == 0.5
        assert est.method == method and est.residual_px < 5


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="unknown pose method"):
        estimate_pose(np.zeros((5, 2)), method="dlt")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"landmarks must be a \(5, 2\) array, got"):
        estimate_pose(np.zeros((4, 2)))
