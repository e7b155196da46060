"""Unprojection, projection and backward warping."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import require_fixture
from warpinv.cameras import (
    CameraError,
    backward_warp,
    generate_rays,
    pixel_grid,
    pixels_to_grid,
    project_points,
    unpack_label,
    unproject_depth,
    yaw_pitch_camera,
)

PLANE_Z = 0.1


@pytest.fixture(scope="module")
def cameras() -> torch.Tensor:
    """Fixture cameras cam1, cam2 (off-centre, anisotropic) and cam2 with a skewed K."""
    io = load_file(str(require_fixture("eg3d", "small_io.safetensors")))
    skewed = io["c_cam2_offcenter"].clone()
    skewed[:, 16:] = io["rays_skew_intrinsics"].reshape(1, 9)
    return torch.cat([io["c_cam1_yaw0p4_pitchm0p2"], io["c_cam2_offcenter"], skewed])


def _random_depth(n: int, res: int, dtype: torch.dtype) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return (2.25 + 1.05 * torch.rand(n, 1, res, res, generator=gen, dtype=torch.float64)).to(dtype)


def _texture(points: torch.Tensor) -> torch.Tensor:
    x, y = points[..., 0], points[..., 1]
    return torch.stack(
        [
            0.5 + 0.3 * torch.sin(4 * x + 1) * torch.cos(3 * y),
            0.5 + 0.3 * torch.cos(5 * x - 2 * y),
            0.5 + 0.2 * torch.sin(3 * x + 4 * y),
        ],
        dim=-1,
    )


def _render_plane(c: torch.Tensor, res: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Analytic image and EG3D depth of the textured plane z = PLANE_Z."""
    origins, dirs = generate_rays(*unpack_label(c), res)
    t = (PLANE_Z - origins[..., 2]) / dirs[..., 2]
    image = _texture(origins + t[..., None] * dirs)
    n = c.shape[0]
    return image.transpose(1, 2).reshape(n, 3, res, res), t.reshape(n, 1, res, res)


@pytest.mark.parametrize("res", [16, 128])
def test_project_unproject_returns_pixel_centres_float64(cameras: torch.Tensor, res: int) -> None:
    c = cameras.double()
    points = unproject_depth(_random_depth(3, res, torch.float64), c)
    xy, z, in_front = project_points(points, c, res)
    centres = pixel_grid(res).double() * res
    assert (xy - centres).abs().max() < 1e-6  # far below the required 1e-4 px
    assert in_front.all() and (z > 2.0).all()


def test_project_unproject_float32(cameras: torch.Tensor) -> None:
    points = unproject_depth(_random_depth(3, 128, torch.float32), cameras)
    xy, _, _ = project_points(points, cameras, 128)
    # float32 world points (|p| ~ 2.7, ulp 2.4e-7) limit the round trip to ~1e-4 px at R = 128.
    assert (xy - pixel_grid(128) * 128).abs().max() < 3e-4


def test_depth_is_distance_along_unit_rays(cameras: torch.Tensor) -> None:
    depth = _random_depth(3, 8, torch.float64)
    c = cameras.double()
    points = unproject_depth(depth, c)
    centre = c[:, None, [3, 7, 11]]
    torch.testing.assert_close((points - centre).norm(dim=-1), depth.reshape(3, -1), atol=1e-12, rtol=0)
    _, z, _ = project_points(points, c, 8)
    assert (z < depth.reshape(3, -1)).all()  # planar z is shorter than the ray distance off-axis


def test_project_points_behind_camera_is_masked() -> None:
    c = yaw_pitch_camera(0.0, 0.0)
    xy, z, in_front = project_points(torch.tensor([[[0.0, 0.0, 3.5], [0.0, 0.0, 2.7]]]), c, 64)
    assert in_front.tolist() == [[False, False]] and torch.isfinite(xy).all() and float(z[0, 0]) < 0


def test_pixels_to_grid_matches_grid_sample_convention() -> None:
    image = torch.arange(16.0).reshape(1, 1, 4, 4)
    centres = pixel_grid(4) * 4
    grid = pixels_to_grid(centres, 4).reshape(1, 4, 4, 2)
    sampled = torch.nn.functional.grid_sample(image, grid, align_corners=False)
    assert torch.equal(sampled, image)


def test_backward_warp_onto_itself_is_identity(cameras: torch.Tensor) -> None:
    image = torch.rand(3, 4, 32, 32, generator=torch.Generator().manual_seed(1))
    warped, valid = backward_warp(image, _random_depth(3, 32, torch.float32), cameras, cameras)
    assert valid.shape == (3, 1, 32, 32) and valid.dtype == torch.bool and valid.all()
    torch.testing.assert_close(warped, image, atol=1e-4, rtol=0)  # float32: ~1e-5 px grid error


def test_plane_scene_warps_consistently() -> None:
    c_tgt = yaw_pitch_camera(torch.tensor([0.25, -0.1]), torch.tensor([-0.1, 0.2]))
    c_src = yaw_pitch_camera(torch.tensor([-0.2, 0.3]), torch.tensor([0.15, -0.05]))
    img_tgt, depth_tgt = _render_plane(c_tgt, 64)
    img_src, depth_src = _render_plane(c_src, 64)
    warped, valid = backward_warp(img_src, depth_tgt, c_tgt, c_src)
    fraction = valid.float().mean(dim=(1, 2, 3))
    assert (fraction > 0.5).all() and (fraction < 1.0).all()  # the views overlap only partly
    assert (warped[~valid.expand_as(warped)] == 0).all()
    xy, _, _ = project_points(unproject_depth(depth_tgt, c_tgt), c_src, 64)
    error = ((warped - img_tgt).abs() * valid).amax(dim=1).reshape(2, -1)
    # Bilinear interpolation of the smooth texture is accurate between source pixel centres; on the
    # half-pixel rim outside them, border padding repeats the edge pixel.
    rim = ((xy < 0.5) | (xy > 63.5)).any(dim=-1)
    assert error[~rim].max() < 5e-4 and error[rim].max() < 1e-2
    # Independent check of the mask: invalid pixels really fall outside the source image.
    outside = ((xy < 0) | (xy > 64)).any(dim=-1).reshape(2, 1, 64, 64)
    assert torch.equal(outside, ~valid)
    # The source may have any resolution: normalised intrinsics make the warp size-independent.
    img_src_hi, _ = _render_plane(c_src, 128)
    warped_hi, valid_hi = backward_warp(img_src_hi, depth_tgt, c_tgt, c_src)
    assert torch.equal(valid_hi, valid) and ((warped_hi - img_tgt).abs() * valid).max() < 1e-2
    # No occluder: the source depth agrees with the warped geometry and changes nothing.
    _, valid_vis = backward_warp(img_src, depth_tgt, c_tgt, c_src, src_depth=depth_src)
    assert (valid_vis == valid).float().mean() > 0.99 and not (valid_vis & ~valid).any()


def test_backward_warp_occlusion_test() -> None:
    c_tgt, c_src = yaw_pitch_camera(0.2, 0.0), yaw_pitch_camera(-0.2, 0.0)
    _, depth_tgt = _render_plane(c_tgt, 64)
    img_src, depth_src = _render_plane(c_src, 64)
    occluded = depth_src.clone()
    occluded[..., :32] -= 0.5  # an occluder in front of the left half of the source view
    _, valid = backward_warp(img_src, depth_tgt, c_tgt, c_src)
    _, valid_occ = backward_warp(img_src, depth_tgt, c_tgt, c_src, src_depth=occluded)
    xy, _, _ = project_points(unproject_depth(depth_tgt, c_tgt), c_src, 64)
    left = (xy[..., 0] < 32).reshape(1, 1, 64, 64)
    assert torch.equal(valid_occ, valid & ~left)
    assert (valid & left).any() and (valid & ~left).any()


def test_backward_warp_is_batched_and_differentiable(cameras: torch.Tensor) -> None:
    c = cameras.double()
    c_src = c.clone().requires_grad_(True)
    image = torch.rand(3, 2, 16, 16, dtype=torch.float64, requires_grad=True)
    depth = _random_depth(3, 16, torch.float64).requires_grad_(True)
    c_tgt = c[[1, 2, 0]]
    warped, valid = backward_warp(image, depth, c_tgt, c_src)
    for i in range(3):
        single, single_valid = backward_warp(image[i : i + 1], depth[i : i + 1], c_tgt[i : i + 1], c_src[i : i + 1])
        torch.testing.assert_close(single, warped[i : i + 1], atol=1e-12, rtol=0)
        assert torch.equal(single_valid, valid[i : i + 1])
    (warped * torch.rand_like(warped)).sum().backward()
    for t in (image, depth, c_src):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


def test_project_points_gradcheck(cameras: torch.Tensor) -> None:
    points = torch.tensor([[[0.1, 0.0, 0.2], [-0.2, 0.1, 0.0]]], dtype=torch.float64, requires_grad=True)
    c = cameras[1:2].double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p, cam: project_points(p, cam, 32)[0], (points, c))


def test_input_checks() -> None:
    c = yaw_pitch_camera(0.0, 0.0)
    with pytest.raises(CameraError, match=r"depth must be a \(N, 1, H, W\) tensor, got \(1, 8, 8\)"):
        unproject_depth(torch.ones(1, 8, 8), c)
    with pytest.raises(CameraError, match="depth must be square"):
        unproject_depth(torch.ones(1, 1, 8, 4), c)
    with pytest.raises(CameraError, match="camera batch 1 does not match depth batch 2"):
        unproject_depth(torch.ones(2, 1, 8, 8), c)
    with pytest.raises(CameraError, match=r"points must be a \(N, M, 3\) tensor"):
        project_points(torch.ones(1, 3), c, 8)
    with pytest.raises(CameraError, match=r"src_image must be a \(N, C, H, W\) tensor"):
        backward_warp(torch.ones(3, 8, 8), torch.ones(1, 1, 8, 8), c, c)
