"""The depth-to-mesh step of HFGI3D's pseudo views against ``../shared/fixtures/hfgi3d`` (recorded by
running the official ``generate_multi_views.py``). Every size and setting comes from the files."""
from __future__ import annotations

import pytest
import torch

from tests.helpers import require_fixture
from warpinv.geometry import camera_to_world, depth_to_mesh, pixel_intrinsics, quantize_depth_mm, resize_depth

pytestmark = pytest.mark.golden


def load_io(name: str) -> dict:
    """One fixture file of ``hfgi3d/``: its tensors and, under ``meta``, its metadata."""
    from safetensors import safe_open

    with safe_open(str(require_fixture("hfgi3d", name)), "pt") as f:
        return {"meta": f.metadata(), **{k: f.get_tensor(k) for k in f.keys()}}


@pytest.fixture(scope="module")
def depth2mesh_io() -> dict:
    return load_io("depth2mesh_io.safetensors")


def test_hfgi3d_depth_png_round_trip_and_resize(depth2mesh_io: dict) -> None:
    io = depth2mesh_io
    size = (int(io["meta"]["H"]), int(io["meta"]["W"]))
    metres = io["in_depth_uint16_mm"].double() / 1000.0
    assert torch.equal(quantize_depth_mm(metres + 0.0004), io["depth_png_read_back"])  # truncation, not rounding
    resized = resize_depth(io["depth_png_read_back"].double() / 1000.0, size)
    torch.testing.assert_close(resized, io["depth_resized"], atol=1e-9, rtol=0)


def test_hfgi3d_depth2mesh_vertices_and_faces(depth2mesh_io: dict) -> None:
    io = depth2mesh_io
    H, W = io["depth_resized"].shape
    K = pixel_intrinsics(W, H)
    torch.testing.assert_close(K, io["K_pixels"], atol=1e-9, rtol=0)
    vertices, faces = depth_to_mesh(io["depth_resized"], K)
    torch.testing.assert_close(vertices, io["vertices_cam"], atol=1e-9, rtol=0)
    assert torch.equal(faces, io["faces"])
    cam2world = io["camera_25"][:16].reshape(4, 4)
    assert torch.equal(cam2world, io["cam2world"])
    torch.testing.assert_close(camera_to_world(vertices, cam2world), io["vertices_world"], atol=1e-9, rtol=0)


def test_float32_depth_gives_the_same_faces(depth2mesh_io: dict) -> None:
    """The fixture's float32-port tolerance: vertices within 1e-5, faces unchanged."""
    io = depth2mesh_io
    H, W = io["depth_resized"].shape
    vertices, faces = depth_to_mesh(io["depth_resized"].float(), pixel_intrinsics(W, H))
    torch.testing.assert_close(vertices, io["vertices_cam"], atol=1e-5, rtol=0)
    assert torch.equal(faces, io["faces"])


def test_hfgi3d_orbit_poses_equal_the_official_ones() -> None:
    """The 30 pseudo-view cameras: our HFGI3D orbit (3.14 for pi) against the official LookAtPoseSampler
    recomputation and the released ``triplane_pose_30.npy`` (stored in float16)."""
    from warpinv.cameras import hfgi3d_orbit, unpack_label

    io = load_io("orbit_poses.safetensors")
    meta = io.pop("meta")
    labels = hfgi3d_orbit(io["triplane_pose_30_npy"].shape[0])
    torch.testing.assert_close(labels, io["render_poses_c25"], atol=1e-6, rtol=0)
    poses, _ = unpack_label(labels)
    torch.testing.assert_close(poses, io["lookat_3p14"], atol=1e-6, rtol=0)
    assert torch.equal(poses.half().float(), io["lookat_3p14_fp16"])
    npy_gap = float(meta["npy_vs_fp16(lookat_3p14)"])
    assert float((poses.half().float() - io["triplane_pose_30_npy"]).abs().max()) <= npy_gap + 1e-12


@pytest.fixture(scope="module")
def visibility_io() -> dict:
    return load_io("visibility_io.safetensors")


def test_hfgi3d_visibility_zbuffer_and_colours(visibility_io: dict) -> None:
    from warpinv.geometry.visibility import project_points, sample_colors, zbuffer_visibility

    io = visibility_io
    height, width = io["in_image_uint8"].shape[:2]
    assert height == int(io["meta"]["H"])
    xy, z = project_points(io["in_points"], io["in_cam2world"], pixel_intrinsics(width, height))
    torch.testing.assert_close(xy, io["xy_float_all"], atol=1e-6, rtol=0)
    vis = zbuffer_visibility(xy, z, height, width)
    assert torch.equal(vis.in_bounds, io["in_bounds"].bool())
    assert torch.equal(vis.pixels, io["xy_round_kept"].long())
    torch.testing.assert_close(vis.z, io["z_kept"][:, 0], atol=1e-6, rtol=0)
    ours = sorted(zip(vis.pixels[vis.winner, 1].tolist(), vis.pixels[vis.winner, 0].tolist(),
                      torch.nonzero(vis.winner).flatten().tolist()))
    official = sorted(zip(io["zbuf_hit_yx"][:, 0].tolist(), io["zbuf_hit_yx"][:, 1].tolist(),
                          io["zbuf_hit_index"].tolist()))
    assert ours == official
    assert torch.equal(vis.visible, io["visible"].bool())
    image = (io["in_image_uint8"].double() / 255.0).float().permute(2, 0, 1)
    kept_xy = xy[vis.in_bounds][vis.visible]
    colors = sample_colors(image, kept_xy)
    torch.testing.assert_close((kept_xy.float() / height * 2 - 1)[None, None], io["grid_xy_visible"], atol=1e-6,
                               rtol=0)
    torch.testing.assert_close(colors, io["colors_visible"], atol=1e-6, rtol=0)


@pytest.fixture(scope="module")
def masks_io() -> dict:
    return load_io("masks_io.safetensors")


def test_hfgi3d_mask_erosion_blur_and_imageio_stretch(masks_io: dict) -> None:
    from warpinv.geometry.masks import COVERAGE_ERODE, erode, gaussian_blur, pseudo_view_mask

    io = masks_io
    eroded = erode(io["png_render_mask_c0"], 3)
    assert torch.equal(eroded, io["mask_eroded_c0"])
    covered = erode(io["png_render_contour_c0"].double() / 255.0, COVERAGE_ERODE)
    assert torch.equal((covered * 255).round().to(torch.uint8), io["contour_eroded_x255_c0"])
    blurred = gaussian_blur(io["mask_eroded_c0"].double() * (io["contour_eroded_x255_c0"].double() / 255.0))
    y0 = x0 = int(io["meta"]["crop_origin"])
    size = io["mask_blurred_crop_f64"].shape[0]
    torch.testing.assert_close(blurred[y0:y0 + size, x0:x0 + size], io["mask_blurred_crop_f64"], atol=1e-9, rtol=0)
    torch.testing.assert_close(blurred.float(), io["mask_blurred_c0_f32"], atol=2e-5, rtol=0)
    full, png = pseudo_view_mask(io["png_render_mask_c0"], io["png_render_contour_c0"])
    assert torch.equal(full, blurred)
    diff = (png.int() - io["png_eroded_mask_c0"].int()).abs()
    fragile = torch.zeros_like(diff, dtype=torch.bool)
    fragile[io["png_eroded_fragile_yx"][:, 0].long(), io["png_eroded_fragile_yx"][:, 1].long()] = True
    assert int(diff[~fragile].max()) == 0 and int(diff[fragile].max()) <= 1


def test_hfgi3d_png_truncation_and_final_blend(masks_io: dict) -> None:
    from warpinv.geometry.masks import blend, to_uint8

    io = masks_io
    assert torch.equal(to_uint8(io["alpha_vis_crop"]), io["png_mask_crop"])
    final = blend(io["blend_crop_png_eroded_mask"], io["blend_crop_png_render_color"], io["blend_crop_stage_b_render"])
    torch.testing.assert_close(final, io["blend_crop_final_image_f64"], atol=1e-12, rtol=0)
    assert torch.equal(to_uint8(final), io["blend_crop_png_final"])


@pytest.fixture(scope="module")
def p3d_io() -> dict:
    return load_io("p3d_io.safetensors")


@pytest.mark.parametrize("chunk_size", [1 << 17, 777])
def test_hfgi3d_point_splatting_matches_pytorch3d(p3d_io: dict, chunk_size: int) -> None:
    import json

    from warpinv.geometry.splat import (
        alpha_composite,
        points_to_ndc,
        rasterize_point_subset,
        rasterize_points,
        splat_alphas,
    )

    io = p3d_io
    size, k = int(io["meta"]["image_size"]), int(io["meta"]["points_per_pixel"])
    radius = float(io["meta"]["radius_px"]) / size * 2.0
    for view in json.loads(io["meta"]["views"]):
        cam2world = io["triplane_poses"][view] if view < io["triplane_poses"].shape[0] else io["cam2world_input"]
        ndc = points_to_ndc(io["in_points_world"], cam2world, size, size)
        assert torch.equal(ndc, io[f"v{view}_proj_ndc"])  # the released float32 arithmetic, bit for bit
        frags = rasterize_points(ndc, size, size, radius, k, chunk_size=chunk_size)
        assert torch.equal(frags.idx, io[f"v{view}_idx"][0].long()), view
        torch.testing.assert_close(frags.dists2, io[f"v{view}_dists2"][0], atol=1e-7, rtol=0)
        image = alpha_composite(frags.idx, splat_alphas(frags.dists2, radius), io["in_colors"])
        torch.testing.assert_close(image, io[f"v{view}_composite"][0], atol=1e-6, rtol=0)
        # the shared pass of the pseudo views (every point, and the visible ones) gives the same fragments
        subset = torch.rand(ndc.shape[0], generator=torch.Generator().manual_seed(view)) < 0.5
        every, part = rasterize_point_subset(ndc, subset, size, size, radius, k, chunk_size=chunk_size)
        assert torch.equal(every.idx, frags.idx) and torch.equal(every.dists2, frags.dists2)
        assert torch.equal(part.idx, rasterize_points(ndc[subset], size, size, radius, k, chunk_size=chunk_size).idx)
