"""Label packing, validation, mirroring, radius normalisation and the IBRNet export."""
from __future__ import annotations

import doctest
import math

import pytest
import torch
from safetensors.torch import load_file

import warpinv.cameras.labels
import warpinv.cameras.lookat
import warpinv.cameras.trajectories
import warpinv.cameras.warp
from tests.helpers import require_fixture
from warpinv.cameras import (
    CameraError,
    cam2world_to_yaw_pitch,
    entry_name,
    flip_yaw,
    lookat_pose,
    normalize_camera,
    pack_label,
    project_points,
    to_ibrnet_camera,
    unpack_label,
    validate_label,
    yaw_pitch_camera,
)


@pytest.fixture(scope="module")
def io() -> dict[str, torch.Tensor]:
    return load_file(str(require_fixture("eg3d", "small_io.safetensors")))


def _cameras() -> torch.Tensor:
    return yaw_pitch_camera(torch.tensor([0.0, 0.4, -0.3]), torch.tensor([0.0, -0.2, 0.15]))


def test_pack_unpack_round_trip(io: dict[str, torch.Tensor]) -> None:
    c = torch.cat([io["c_A"], io["c_B"]])
    cam2world, k = unpack_label(c)
    assert cam2world.shape == (4, 4, 4) and k.shape == (4, 3, 3)
    assert torch.equal(pack_label(cam2world, k), c)
    assert torch.equal(cam2world[2], c[2, :16].view(4, 4))  # row-major, as the generator views it
    shared = pack_label(cam2world, k[0])
    assert torch.equal(shared[:, 16:], k[0].reshape(1, 9).expand(4, 9))


def test_pack_label_checks_shapes() -> None:
    with pytest.raises(CameraError, match=r"cam2world must be a \(N, 4, 4\) tensor, got \(4, 4\)"):
        pack_label(torch.eye(4), torch.eye(3))
    with pytest.raises(CameraError, match="intrinsics batch 3 does not match cam2world batch 2"):
        pack_label(torch.eye(4).repeat(2, 1, 1), torch.eye(3).repeat(3, 1, 1))


def test_entry_names() -> None:
    assert [entry_name(k) for k in (0, 7, 11, 15, 16, 20, 22)] == [
        "cam2world[0,0]", "cam2world[1,3]", "cam2world[2,3]", "cam2world[3,3]",
        "intrinsics[0,0]", "intrinsics[1,1]", "intrinsics[2,0]",
    ]


def test_validate_accepts_good_labels() -> None:
    validate_label(_cameras())
    validate_label(_cameras().double())


def test_validate_refuses_nan_naming_the_entry() -> None:
    c = _cameras()
    c[1, 7] = float("nan")
    with pytest.raises(CameraError, match=r"sample 1, entry 7 \(cam2world\[1,3\]\) is nan"):
        validate_label(c)
    c = _cameras()
    c[2, 20] = float("inf")
    with pytest.raises(CameraError, match=r"sample 2, entry 20 \(intrinsics\[1,1\]\) is inf"):
        validate_label(c)


def test_validate_refuses_wrong_shapes() -> None:
    with pytest.raises(CameraError, match=r"shape \(N, 25\), got \(2, 24\).*16 cam2world \+ 9 intrinsics"):
        validate_label(torch.zeros(2, 24))
    with pytest.raises(CameraError, match=r"got \(25,\).*c\[None\]"):
        validate_label(torch.zeros(25))
    with pytest.raises(CameraError, match="floating-point"):
        validate_label(torch.zeros(1, 25, dtype=torch.int64))
    with pytest.raises(CameraError, match="torch.Tensor"):
        validate_label([0.0] * 25)  # type: ignore[arg-type]


def test_validate_refuses_non_rotations() -> None:
    c = _cameras()
    c[1, 0] *= 1.5  # stretch column 0
    with pytest.raises(CameraError, match=r"sample 1: .*column 0 \(entries 0,4,8\) has squared norm"):
        validate_label(c)
    c = _cameras()
    c[2, 1] += 0.3  # shear: columns 0 and 1 no longer orthogonal
    with pytest.raises(CameraError, match=r"sample 2: .*not a rotation"):
        validate_label(c)
    c = _cameras()
    c[0, [0, 4, 8]] *= -1  # a reflection: orthonormal, det -1
    with pytest.raises(CameraError, match=r"sample 0: .*determinant -1.*reflection"):
        validate_label(c)


def test_validate_refuses_bad_rows_and_focal() -> None:
    c = _cameras()
    c[0, 14] = 0.5
    with pytest.raises(CameraError, match=r"sample 0, entry 14 \(cam2world\[3,2\]\) must be 0, got 0.5"):
        validate_label(c)
    c = _cameras()
    c[1, 24] = 2.0
    with pytest.raises(CameraError, match=r"sample 1, entry 24 \(intrinsics\[2,2\]\) must be 1, got 2"):
        validate_label(c)
    c = _cameras()
    c[2, 16] = -4.0
    with pytest.raises(CameraError, match=r"sample 2, entry 16 \(intrinsics\[0,0\], focal length\) must be > 0"):
        validate_label(c)


def test_flip_yaw_is_an_involution_and_mirrors_yaw(io: dict[str, torch.Tensor]) -> None:
    c = torch.cat([io["c_A"], io["c_B"]])
    assert torch.equal(flip_yaw(flip_yaw(c)), c)
    mirrored = flip_yaw(yaw_pitch_camera(torch.tensor([0.4, -0.25]), torch.tensor([-0.2, 0.1])))
    expected = yaw_pitch_camera(torch.tensor([-0.4, 0.25]), torch.tensor([-0.2, 0.1]))
    torch.testing.assert_close(mirrored, expected, atol=1e-6, rtol=0)
    yaw, pitch = cam2world_to_yaw_pitch(unpack_label(mirrored)[0])
    torch.testing.assert_close(yaw, torch.tensor([-0.4, 0.25]), atol=1e-6, rtol=0)
    validate_label(flip_yaw(c))  # still a proper rotation


def test_flip_yaw_negates_exactly_the_official_entries(io: dict[str, torch.Tensor]) -> None:
    c = io["c_cam1_yaw0p4_pitchm0p2"]
    flipped = flip_yaw(c)
    changed = sorted(k for k in range(25) if float(flipped[0, k]) != float(c[0, k]))
    assert changed == [1, 2, 3, 8]  # entry 4 ([1,0]) is 0 for a roll-free LookAt camera
    pose = c[0, :16].view(4, 4).clone()
    for i, j in ((0, 1), (0, 2), (1, 0), (2, 0), (0, 3)):
        pose[i, j] *= -1
    assert torch.equal(flipped[0, :16], pose.flatten()) and torch.equal(flipped[0, 16:], c[0, 16:])


def test_mirrored_camera_sees_the_mirrored_image() -> None:
    c = yaw_pitch_camera(0.3, -0.1)
    point = torch.tensor([[[0.1, 0.05, 0.3]]])
    xy, _, _ = project_points(point, c, 64)
    xy_m, _, _ = project_points(point * torch.tensor([-1.0, 1.0, 1.0]), flip_yaw(c), 64)
    torch.testing.assert_close(xy_m[..., 0], 64 - xy[..., 0], atol=1e-4, rtol=0)
    torch.testing.assert_close(xy_m[..., 1], xy[..., 1], atol=1e-4, rtol=0)


def test_normalize_camera_official_orig_mode() -> None:
    c = _cameras().double()
    scale = torch.tensor([1.1, 0.9, 1.0], dtype=torch.float64)
    far = c.clone()
    far[:, [3, 7, 11]] *= scale[:, None]
    out, report = normalize_camera(far)
    t = far[:, [3, 7, 11]]
    torch.testing.assert_close(out[:, [3, 7, 11]], t / t.norm(dim=1, keepdim=True) * 2.7, atol=0, rtol=0)
    torch.testing.assert_close(out, c, atol=1e-6, rtol=0)  # c itself is float32-accurate only
    torch.testing.assert_close(report.error, 2.7 * scale - 2.7, atol=1e-6, rtol=0)
    assert report.max_abs_error == pytest.approx(0.27)


def test_normalize_camera_cor_mode() -> None:
    c = _cameras().double()
    cor = torch.tensor([0.0, 0.0, 0.175], dtype=torch.float64)
    out, report = normalize_camera(c, 2.7, pivot=cor)
    assert torch.allclose((out[:, [3, 7, 11]] - cor).norm(dim=1), torch.tensor(2.7, dtype=torch.float64))
    torch.testing.assert_close(report.distance, (c[:, [3, 7, 11]] - cor).norm(dim=1), atol=0, rtol=0)
    assert torch.equal(out[:, :3], c[:, :3]) and torch.equal(out[:, 16:], c[:, 16:])
    with pytest.raises(CameraError, match="coincides with the pivot"):
        normalize_camera(c, pivot=tuple(c[0, [3, 7, 11]].tolist()))


def test_to_ibrnet_camera_layout() -> None:
    c = yaw_pitch_camera(0.2, 0.1)
    cam = to_ibrnet_camera(c, 256, 512)
    assert cam.shape == (1, 34)
    assert cam[0, :2].tolist() == [256.0, 512.0]
    k = cam[0, 2:18].view(4, 4)
    expected = torch.tensor(
        [[4.2647 * 512, 0, 0.5 * 512 - 0.5, 0], [0, 4.2647 * 256, 0.5 * 256 - 0.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    )
    torch.testing.assert_close(k, expected, atol=1e-3, rtol=0)
    assert torch.equal(cam[0, 18:], c[0, :16])


def test_to_ibrnet_projection_agrees_with_project_points(io: dict[str, torch.Tensor]) -> None:
    c = torch.cat([io["c_cam2_offcenter"], io["c_cam1_yaw0p4_pitchm0p2"]]).double()
    c[0, 17] = 0.07  # skew
    height, width = 48, 80
    cam = to_ibrnet_camera(c, height, width)
    points = torch.tensor([[0.1, -0.05, 0.2], [-0.2, 0.15, 0.0], [0.0, 0.0, 0.3]], dtype=torch.float64)
    points = points.expand(2, 3, 3)
    k, c2w = cam[:, 2:18].view(2, 4, 4), cam[:, 18:].view(2, 4, 4)
    homog = torch.cat([points, torch.ones(2, 3, 1, dtype=torch.float64)], dim=-1)
    pix = (k @ torch.linalg.inv(c2w) @ homog.transpose(1, 2)).transpose(1, 2)
    uv = pix[..., :2] / pix[..., 2:3]  # IBRNet: integer pixel centres
    xy, _, _ = project_points(points, c, (height, width))
    torch.testing.assert_close(uv, xy - 0.5, atol=1e-9, rtol=0)


def test_lookat_with_tensor_lookat_batch() -> None:
    lookat = torch.tensor([[0.0, 0.0, 0.2], [0.1, 0.0, 0.0]])
    pose = lookat_pose(math.pi / 2, math.pi / 2, lookat, 2.7)
    assert pose.shape == (2, 4, 4)


@pytest.mark.parametrize(
    "module",
    [warpinv.cameras.labels, warpinv.cameras.lookat, warpinv.cameras.trajectories, warpinv.cameras.warp],
    ids=lambda m: m.__name__,
)
def test_docstring_examples_run(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
