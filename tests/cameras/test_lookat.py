"""LookAt poses and intrinsics against the official fixtures and EG3D's documented conventions."""
from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import require_fixture
from warpinv.cameras import (
    DEFAULT_LOOKAT,
    DEFAULT_RADIUS,
    FFHQ_FOCAL,
    CameraError,
    cam2world_to_yaw_pitch,
    create_cam2world,
    fov_to_intrinsics,
    lookat_pose,
    pack_label,
    unpack_label,
    validate_label,
    yaw_pitch_camera,
)

ATOL = 1e-6


@pytest.fixture(scope="module")
def io() -> dict[str, torch.Tensor]:
    return load_file(str(require_fixture("eg3d", "small_io.safetensors")))


def test_fov_intrinsics_match_fixture(io: dict[str, torch.Tensor]) -> None:
    k = fov_to_intrinsics(18.837)
    torch.testing.assert_close(k, io["intrinsics_fov18p837"], atol=ATOL, rtol=0)
    assert float(k[0, 0]) == pytest.approx(4.263391, abs=5e-7)


def test_fov_constants_are_the_official_ones() -> None:
    focal = float(fov_to_intrinsics(18.837, dtype=torch.float64)[0, 0])
    assert focal == 1 / (math.tan(18.837 * 3.14159 / 360) * 1.414)
    assert abs(focal - FFHQ_FOCAL) > 1e-3  # 18.837 deg is not the dataset focal 4.2647
    # gen_samples.py's click int turns the default into 18 degrees:
    assert float(fov_to_intrinsics(18)[0, 0]) == pytest.approx(4.4652, abs=1e-4)


def test_frontal_label_matches_fixture(io: dict[str, torch.Tensor]) -> None:
    pose = lookat_pose(math.pi / 2, math.pi / 2, (0.0, 0.0, 0.2), 2.7)
    c = pack_label(pose, fov_to_intrinsics(18.837))
    torch.testing.assert_close(c, io["c_cam0_front"], atol=ATOL, rtol=0)


def test_yaw_pitch_label_matches_fixture(io: dict[str, torch.Tensor]) -> None:
    pose = lookat_pose(math.pi / 2 + 0.4, math.pi / 2 - 0.2, (0.0, 0.0, 0.2), 2.7)
    c = pack_label(pose, fov_to_intrinsics(18.837))
    torch.testing.assert_close(c, io["c_cam1_yaw0p4_pitchm0p2"], atol=ATOL, rtol=0)
    focal = float(fov_to_intrinsics(18.837)[0, 0])
    cam1 = yaw_pitch_camera(0.4, -0.2, focal=focal)
    torch.testing.assert_close(cam1, io["c_cam1_yaw0p4_pitchm0p2"], atol=ATOL, rtol=0)
    torch.testing.assert_close(yaw_pitch_camera(0.0, 0.0, focal=focal), io["c_cam0_front"], atol=ATOL, rtol=0)


def test_offcenter_label_matches_fixture(io: dict[str, torch.Tensor]) -> None:
    pose = lookat_pose(math.pi / 2 - 0.35, math.pi / 2 + 0.12, (0.03, -0.02, 0.15), 2.85)
    k = torch.tensor([[4.05, 0, 0.53], [0, 4.45, 0.46], [0, 0, 1]])
    torch.testing.assert_close(pack_label(pose, k), io["c_cam2_offcenter"], atol=ATOL, rtol=0)


def test_fixture_labels_are_valid(io: dict[str, torch.Tensor]) -> None:
    for key in ("c_cam0_front", "c_cam1_yaw0p4_pitchm0p2", "c_cam2_offcenter", "c_A", "c_B"):
        validate_label(io[key])


def test_frontal_camera_geometry() -> None:
    cam2world, k = unpack_label(yaw_pitch_camera(0.0, 0.0))
    rot, centre = cam2world[0, :3, :3], cam2world[0, :3, 3]
    torch.testing.assert_close(centre, torch.tensor([0.0, 0.0, 2.7]), atol=ATOL, rtol=0)
    torch.testing.assert_close(rot[:, 2], torch.tensor([0.0, 0.0, -1.0]), atol=ATOL, rtol=0)  # looks along -z
    torch.testing.assert_close(rot[:, 0], torch.tensor([1.0, 0.0, 0.0]), atol=ATOL, rtol=0)  # image right = +x
    torch.testing.assert_close(rot[:, 1], torch.tensor([0.0, -1.0, 0.0]), atol=ATOL, rtol=0)  # image down = -y
    torch.testing.assert_close(k[0], torch.tensor([[FFHQ_FOCAL, 0, 0.5], [0, FFHQ_FOCAL, 0.5], [0, 0, 1]]))


def test_yaw_and_pitch_directions() -> None:
    right = unpack_label(yaw_pitch_camera(0.3, 0.0))[0][0, :3, 3]
    below = unpack_label(yaw_pitch_camera(0.0, 0.2))[0][0, :3, 3]
    assert right[0] > 0.5 and below[1] < -0.2


def test_camera_sphere_is_centred_at_origin_not_lookat() -> None:
    centres = unpack_label(yaw_pitch_camera(torch.linspace(-0.6, 0.6, 7), torch.linspace(0.4, -0.4, 7)))[0][:, :3, 3]
    torch.testing.assert_close(centres.norm(dim=1), torch.full((7,), DEFAULT_RADIUS), atol=1e-6, rtol=0)


def test_every_camera_looks_at_the_pivot() -> None:
    cam2world = unpack_label(yaw_pitch_camera(torch.tensor([0.5, -0.2]), torch.tensor([-0.3, 0.1])))[0]
    to_pivot = torch.tensor(DEFAULT_LOOKAT) - cam2world[:, :3, 3]
    torch.testing.assert_close(cam2world[:, :3, 2], to_pivot / to_pivot.norm(dim=1, keepdim=True), atol=1e-6, rtol=0)


def test_v_is_mapped_through_arccos_and_clamped() -> None:
    centre = lookat_pose(math.pi / 2, math.pi / 4, radius=1.0)[0, :3, 3]
    assert float(centre[1]) == pytest.approx(math.cos(math.acos(1 - 2 * 0.25)), abs=1e-6)  # = 0.5, not cos(pi/4)
    top = lookat_pose(0.0, -1.0, (0.0, 0.0, 0.2), radius=1.0)
    assert torch.isfinite(top).all()  # v clamped to 1e-5: not exactly on the up axis


def test_noise_never_touches_the_global_rng() -> None:
    torch.manual_seed(123)
    state = torch.get_rng_state()
    lookat_pose(1.0, 1.2, batch_size=4)
    assert torch.equal(state, torch.get_rng_state())
    a = lookat_pose(1.0, 1.2, h_std=0.1, v_std=0.1, batch_size=4, generator=torch.Generator().manual_seed(7))
    b = lookat_pose(1.0, 1.2, h_std=0.1, v_std=0.1, batch_size=4, generator=torch.Generator().manual_seed(7))
    assert torch.equal(state, torch.get_rng_state())
    assert torch.equal(a, b) and not torch.allclose(a[0], a[1])


def test_noise_order_matches_official_h_then_v() -> None:
    gen = torch.Generator().manual_seed(3)
    pose = lookat_pose(1.4, 1.6, h_std=0.2, v_std=0.1, batch_size=2, generator=gen)
    gen = torch.Generator().manual_seed(3)
    h = torch.randn((2, 1), generator=gen) * 0.2 + 1.4
    v = torch.randn((2, 1), generator=gen) * 0.1 + 1.6
    torch.testing.assert_close(pose, lookat_pose(h[:, 0], v[:, 0]), atol=0, rtol=0)


def test_batched_inputs_and_gradients() -> None:
    yaw = torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64, requires_grad=True)
    c = yaw_pitch_camera(yaw, torch.zeros(3, dtype=torch.float64), dtype=torch.float64)
    assert c.shape == (3, 25) and c.dtype == torch.float64
    c[:, 3].sum().backward()
    assert yaw.grad is not None and torch.isfinite(yaw.grad).all() and (yaw.grad.abs() > 0).all()
    with pytest.raises(CameraError, match="inconsistent batch sizes"):
        lookat_pose(torch.zeros(2), torch.zeros(3))


def test_yaw_pitch_inverse_round_trip() -> None:
    yaw = torch.tensor([0.0, 0.4, -0.35, 1.2, -2.0], dtype=torch.float64)
    pitch = torch.tensor([0.0, -0.2, 0.25, 0.6, -1.0], dtype=torch.float64)
    cam2world = unpack_label(yaw_pitch_camera(yaw, pitch, dtype=torch.float64))[0]
    got_yaw, got_pitch = cam2world_to_yaw_pitch(cam2world)
    torch.testing.assert_close(got_yaw, yaw, atol=1e-9, rtol=0)
    torch.testing.assert_close(got_pitch, pitch, atol=1e-9, rtol=0)


def test_create_cam2world_rejects_degenerate_forward() -> None:
    with pytest.raises(CameraError, match="parallel to the world up axis"):
        create_cam2world(torch.tensor([[0.0, 2.0, 0.0]]), torch.zeros(1, 3))
    with pytest.raises(CameraError, match=r"forward must be a \(N, 3\) tensor"):
        create_cam2world(torch.zeros(3), torch.zeros(1, 3))


def test_fov_out_of_range() -> None:
    with pytest.raises(CameraError, match="fov_deg"):
        fov_to_intrinsics(0.0)
