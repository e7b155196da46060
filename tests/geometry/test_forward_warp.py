"""WarpGAN's forward warp (:mod:`warpinv.geometry.forward_warping`): the summation splat, the warp's
geometry on an analytic scene and on tiny-generator renders, the mirrored branch on a symmetric
scene, the hole-mask processing and the argument checks."""
from __future__ import annotations

import importlib
import logging
import math

import numpy as np
import pytest
import torch

from warpinv.backbone import EG3DGenerator, build_tiny
from warpinv.cameras import CameraError, flip_yaw, generate_rays, unpack_label, unproject_depth
from warpinv.cameras.lookat import yaw_pitch_camera
from warpinv.geometry import erode, gaussian_blur
from warpinv.geometry.forward_warping import (
    ForwardWarpConfig,
    draw_blur_sigma,
    forward_warp,
    hole_mask,
    hybrid_fill,
    inpaint_input,
    mirror_inputs,
    ray_points,
    splat_summation,
    splat_weights,
)

logger = logging.getLogger(__name__)
MODES = ("official", "clean")


def splat_reference(values: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """The summation kernel written as its loop, pixel by pixel (float64, NumPy)."""
    vals, fl = values.double().numpy(), flow.double().numpy()
    n, c, h, w = vals.shape
    out = np.zeros((n, c, h, w))
    for b in range(n):
        for y in range(h):
            for x in range(w):
                tx, ty = x + fl[b, 0, y, x], y + fl[b, 1, y, x]
                x0, y0 = math.floor(tx), math.floor(ty)
                for cx, cy, weight in ((x0, y0, (x0 + 1 - tx) * (y0 + 1 - ty)), (x0 + 1, y0, (tx - x0) * (y0 + 1 - ty)),
                                       (x0, y0 + 1, (x0 + 1 - tx) * (ty - y0)),
                                       (x0 + 1, y0 + 1, (tx - x0) * (ty - y0))):
                    if 0 <= cx < w and 0 <= cy < h:
                        out[b, :, cy, cx] += weight * vals[b, :, y, x]
    return torch.from_numpy(out)


# --- splat_summation -------------------------------------------------------------------------------------------


def test_splat_matches_the_kernel_loop_including_partly_outside_targets() -> None:
    g = torch.Generator().manual_seed(0)
    values = torch.rand(2, 3, 5, 6, generator=g, dtype=torch.float64)
    flow = torch.randn(2, 2, 5, 6, generator=g, dtype=torch.float64) * 3  # many targets cross the border
    torch.testing.assert_close(splat_summation(values, flow), splat_reference(values, flow), atol=1e-12, rtol=0)


def test_splat_conserves_mass_of_in_bounds_sources() -> None:
    g = torch.Generator().manual_seed(1)
    n, h, w = 2, 9, 11
    rows = torch.arange(h, dtype=torch.float64)[:, None].expand(h, w)
    cols = torch.arange(w, dtype=torch.float64)[None, :].expand(h, w)
    # Targets uniformly inside [0, W-1) x [0, H-1) (all four neighbours in the image) or far outside.
    tx = torch.rand(n, h, w, generator=g, dtype=torch.float64) * (w - 1)
    ty = torch.rand(n, h, w, generator=g, dtype=torch.float64) * (h - 1)
    gone = torch.rand(n, h, w, generator=g) < 0.3
    tx = torch.where(gone, tx + 3 * w, tx)
    flow = torch.stack([tx - cols, ty - rows], dim=1)
    out = splat_summation(torch.ones(n, 1, h, w, dtype=torch.float64), flow)
    torch.testing.assert_close(out.sum((1, 2, 3)), (~gone).sum((1, 2)).double(), atol=1e-9, rtol=0)


def test_integer_flow_is_an_exact_shift() -> None:
    values = torch.rand(2, 3, 7, 8, generator=torch.Generator().manual_seed(2))
    flow = torch.zeros(2, 2, 7, 8)
    flow[:, 0], flow[:, 1] = 2.0, -1.0
    expected = torch.zeros_like(values)
    expected[:, :, :-1, 2:] = values[:, :, 1:, :-2]
    assert torch.equal(splat_summation(values, flow), expected)


def test_splat_gradients_reach_values_and_flow() -> None:
    g = torch.Generator().manual_seed(3)
    values = torch.rand(1, 2, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    # Fractional parts away from 0 and 1 so that the finite differences never cross a floor.
    flow = (torch.randint(-1, 2, (1, 2, 4, 5), generator=g) + 0.2
            + 0.6 * torch.rand(1, 2, 4, 5, generator=g)).double().requires_grad_()
    assert torch.autograd.gradcheck(splat_summation, (values, flow))


def test_splat_drops_non_finite_positions_and_checks_shapes() -> None:
    values = torch.ones(1, 1, 3, 3)
    flow = torch.zeros(1, 2, 3, 3)
    flow[0, 0, 1, 1] = float("nan")
    out = splat_summation(values, flow)
    assert torch.isfinite(out).all() and float(out.sum()) == 8.0
    with pytest.raises(ValueError, match=r"flow must be a \(N=1, 2, H=3, W=3\) tensor"):
        splat_summation(values, torch.zeros(1, 2, 3, 4))
    with pytest.raises(ValueError, match="values must be a"):
        splat_summation(torch.ones(3, 3), flow)


# --- forward_warp: geometry ------------------------------------------------------------------------------------


def sphere_scene(c: torch.Tensor, res: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ray-cast an opaque textured sphere in front of a plane: ``image (N, 3, R, R)`` in ``[0, 1]`` and
    ``depth (N, 1, R, R)`` (distance along the unit rays), exact to float rounding."""
    cam2world, k = unpack_label(c.double())
    origins, dirs = generate_rays(cam2world, k, res)
    centre = torch.tensor([0.0, 0.0, 0.2], dtype=torch.float64)
    oc = origins - centre
    b = (oc * dirs).sum(-1)
    disc = b * b - ((oc * oc).sum(-1) - 0.5 ** 2)
    t_plane = (-0.6 - origins[..., 2]) / dirs[..., 2]
    t = torch.where(disc > 0, -b - disc.clamp(min=0).sqrt(), t_plane)
    x = origins + t[..., None] * dirs
    colour = torch.stack([0.5 + 0.4 * torch.sin(6 * x[..., 0] + 1), 0.5 + 0.4 * torch.sin(5 * x[..., 1]),
                          0.5 + 0.4 * torch.cos(7 * x[..., 2] + x[..., 0])], dim=1)
    n = c.shape[0]
    return colour.reshape(n, 3, res, res).float(), t.reshape(n, 1, res, res).float()


def interior(mask: torch.Tensor, margin: int = 2) -> torch.Tensor:
    out = mask.bool().clone()
    out[..., :margin, :] = False
    out[..., -margin:, :] = False
    out[..., :, :margin] = False
    out[..., :, -margin:] = False
    return out


def median_error(warped: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> float:
    return float((warped - target).abs().mean(1, keepdim=True)[mask].median())


@pytest.mark.parametrize("focal", [4.2647, 3.0])
def test_clean_warp_is_exact_on_an_analytic_scene(focal: float) -> None:
    """The clean warp of a ray-cast scene reproduces the target view up to interpolation; the official
    one is off by its pixel grid and ray-depth-as-z (slightly) and by its fixed focal (much, at 3.0)."""
    res = 48
    c_src, c_dst = yaw_pitch_camera(-0.1, 0.05, focal=focal), yaw_pitch_camera(0.15, -0.05, focal=focal)
    src, depth = sphere_scene(c_src, res)
    dst, _ = sphere_scene(c_dst, res)
    out = {mode: forward_warp(src, depth, c_src, c_dst, ForwardWarpConfig(mode=mode)) for mode in MODES}
    mask = interior(out["official"].visible * out["clean"].visible)
    assert mask.float().mean() > 0.5  # the rest: the border the source does not see, and the margin
    errors = {mode: median_error(o.warped, dst, mask) for mode, o in out.items()}
    baseline = median_error(src, dst, mask)
    logger.info("analytic scene, focal %s: median error %s, no warp %.4f", focal, errors, baseline)
    assert errors["clean"] < 2e-3 and errors["clean"] < 0.02 * baseline
    assert errors["official"] < 0.5 * baseline
    assert errors["official"] > (1.5 if focal == 4.2647 else 10) * errors["clean"]


def test_ray_points_equal_unproject_depth() -> None:
    c = yaw_pitch_camera(torch.tensor([0.2, -0.3]), torch.tensor([0.0, 0.1]))
    depth = 2.2 + torch.rand(2, 1, 6, 6, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(ray_points(depth, c), unproject_depth(depth, c), atol=1e-5, rtol=0)


def test_same_camera_clean_warp_is_the_identity_and_non_square_images_work() -> None:
    c = yaw_pitch_camera(0.2, -0.1)
    image = torch.rand(1, 3, 12, 20, generator=torch.Generator().manual_seed(5))
    out = forward_warp(image, torch.full((1, 1, 6, 10), 2.6), c, c, ForwardWarpConfig(mode="clean"))
    assert out.depth_up.shape == (1, 1, 12, 20) and out.flow.shape == (1, 2, 12, 20)
    assert out.flow.abs().max() < 1e-3 and bool(out.visible.all())
    torch.testing.assert_close(out.warped, image, atol=1e-3, rtol=0)
    official = forward_warp(image, torch.full((1, 1, 6, 10), 2.6), c, c)
    assert official.warped.shape == image.shape and official.flow.abs().max() < 1e-3


def test_forward_warp_is_differentiable_in_image_and_depth() -> None:
    c_src, c_dst = yaw_pitch_camera(0.0, 0.0), yaw_pitch_camera(0.2, 0.0)
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(6), requires_grad=True)
    depth = (2.4 + 0.3 * torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(7))).requires_grad_()
    for mode in MODES:
        out = forward_warp(image, depth, c_src, c_dst, ForwardWarpConfig(mode=mode))
        grad_image, grad_depth = torch.autograd.grad(out.warped.square().sum(), (image, depth))
        assert torch.isfinite(grad_image).all() and grad_image.abs().sum() > 0
        assert torch.isfinite(grad_depth).all() and grad_depth.abs().sum() > 0


def test_splat_weights_prefer_near_points_and_drop_the_ones_behind() -> None:
    z = torch.tensor([2.0, 2.5, 3.0, 0.0, -1.0]).view(1, 1, 1, 5).requires_grad_()
    official = splat_weights(z[..., :3], 10.0)
    torch.testing.assert_close(official[0, 0, 0, [0, 2]], torch.tensor([1.0, torch.e ** -10]), atol=1e-5, rtol=1e-4)
    assert bool((official.diff(dim=-1) < 0).all())
    kept = splat_weights(z, 10.0, z > 0)
    torch.testing.assert_close(kept[..., :3], official)
    assert kept[..., 3:].eq(0).all()
    grad = torch.autograd.grad(kept.sum(), z)[0]
    assert torch.isfinite(grad).all() and grad[..., 3:].eq(0).all()
    nothing = torch.full((1, 1, 2, 2), -1.0, requires_grad=True)
    assert splat_weights(nothing, 10.0, nothing > 0).eq(0).all()


def test_holes_official_black_pixels_and_disocclusions() -> None:
    """Official: a pixel is a hole when all channels are exactly 0, so the inside of a black patch that
    did land is one (the [0, 1] input range matters); clean: a hole is where nothing landed."""
    c = yaw_pitch_camera(0.1, 0.0)
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(8)) * 0.9 + 0.1
    image[..., 4:10, 4:10] = 0.0
    depth = torch.full((1, 1, 16, 16), 2.6)
    official = forward_warp(image, depth, c, c)
    clean = forward_warp(image, depth, c, c, ForwardWarpConfig(mode="clean"))
    assert not official.visible[..., 5:9, 5:9].any() and official.visible[..., :3, :].all()
    assert clean.visible.all()
    # A camera move leaves the far side of the image uncovered in both modes.
    moved = yaw_pitch_camera(0.35, 0.0)
    for mode in MODES:
        out = forward_warp(torch.rand(1, 3, 16, 16) * 0.9 + 0.1, depth, c, moved, ForwardWarpConfig(mode=mode))
        holes = out.visible == 0
        assert holes.any() and set(out.visible.unique().tolist()) <= {0.0, 1.0}
        assert torch.equal(holes, out.denominator == 0) if mode == "clean" else bool((out.warped[holes.expand_as(
            out.warped)] == 0).all())


def test_official_mode_warns_once_about_ignored_intrinsics(caplog: pytest.LogCaptureFixture,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    fw = importlib.import_module("warpinv.geometry.forward_warping")
    monkeypatch.setattr(fw, "_warned_intrinsics", False)
    c = yaw_pitch_camera(0.0, 0.0, focal=3.0)
    with caplog.at_level(logging.WARNING, logger=fw.__name__):
        forward_warp(torch.rand(1, 3, 8, 8), torch.full((1, 1, 8, 8), 2.5), c, c)
        forward_warp(torch.rand(1, 3, 8, 8), torch.full((1, 1, 8, 8), 2.5), c, c)
    assert sum("ignores the cameras' intrinsics" in r.message for r in caplog.records) == 1


def test_bad_arguments_raise_clear_errors() -> None:
    c = yaw_pitch_camera(0.0, 0.0)
    image, depth = torch.rand(1, 3, 8, 8), torch.full((1, 1, 4, 4), 2.5)
    with pytest.raises(CameraError, match=r"image must be a \(N, C, H, W\) tensor"):
        forward_warp(image[0], depth, c, c)
    with pytest.raises(CameraError, match=r"depth must be a \(N=1, 1, h, w\) tensor"):
        forward_warp(image, torch.ones(1, 2, 4, 4), c, c)
    with pytest.raises(CameraError, match="depth must be a floating-point tensor"):
        forward_warp(image, torch.ones(1, 1, 4, 4, dtype=torch.long), c, c)
    with pytest.raises(CameraError, match=r"c_src must have shape \(N, 25\)"):
        forward_warp(image, depth, c[:, :24], c)
    with pytest.raises(CameraError, match="c_dst batch 2 does not match image batch 1"):
        forward_warp(image, depth, c, c.repeat(2, 1))
    bad = c.clone()
    bad[0, 7] = float("nan")
    with pytest.raises(CameraError, match=r"c_dst sample 0, entry 7 \(cam2world\[1,3\]\) is nan"):
        forward_warp(image, depth, c, bad)
    with pytest.raises(ValueError, match="forward warp mode must be 'official' or 'clean'"):
        ForwardWarpConfig(mode="softmax")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="weight_scale must be >= 0"):
        ForwardWarpConfig(weight_scale=-1.0)


# --- tiny-generator renders ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny() -> tuple[EG3DGenerator, torch.Tensor, torch.Tensor]:
    G = build_tiny().eval()
    with torch.no_grad():
        z = torch.randn(1, 512, generator=torch.Generator().manual_seed(0))
        ws = G.mapping(z, yaw_pitch_camera(0.0, 0.0))
        planes = G.planes(ws, noise_mode="const")
    return G, ws, planes


def render(G: EG3DGenerator, planes: torch.Tensor, ws: torch.Tensor, c: torch.Tensor,
           res: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw render in ``[0, 1]`` and its depth (ray distance)."""
    with torch.no_grad():
        out = G.render_planes(planes, ws, c, neural_rendering_resolution=res, deterministic=True, superresolve=False)
    return (out["image_raw"] + 1) / 2, out["image_depth"]


def test_tiny_render_warped_to_a_nearby_camera_matches_its_render(tiny) -> None:
    """The tiny generator's scenes are semi-transparent volumes, so their depth is an expected depth, not a
    surface: the warp cannot be exact, but both modes must beat the un-warped source clearly."""
    G, ws, planes = tiny
    res = G.neural_rendering_resolution
    c_src, c_dst = yaw_pitch_camera(-0.1, 0.05), yaw_pitch_camera(0.1, -0.05)
    src, depth = render(G, planes, ws, c_src, res)
    dst, _ = render(G, planes, ws, c_dst, res)
    out = {mode: forward_warp(src, depth, c_src, c_dst, ForwardWarpConfig(mode=mode)) for mode in MODES}
    mask = interior(out["official"].visible * out["clean"].visible)
    assert mask.float().mean() > 0.5

    def mean_error(x: torch.Tensor) -> float:
        return float((x - dst).abs().mean(1, keepdim=True)[mask].mean())

    errors = {mode: mean_error(o.warped) for mode, o in out.items()}
    baseline = mean_error(src)
    logger.info("tiny render warp: mean abs error %s, no warp %.4f", errors, baseline)
    assert errors["clean"] < 0.6 * baseline and errors["official"] < 0.6 * baseline


def symmetric_planes(G: EG3DGenerator, planes: torch.Tensor) -> torch.Tensor:
    """Tri-planes symmetric under world ``x -> -x``: each plane averaged with its flip along the grid axis
    that reads world x (``u`` = width for axis 0 first, ``v`` = height for axis 0 second)."""
    out = []
    for p, (u_axis, v_axis) in enumerate(G.renderer.plane_axes):
        dims = [d for d, axis in ((-1, u_axis), (-2, v_axis)) if axis == 0]
        plane = planes[:, p]
        out.append((plane + plane.flip(dims)) / 2 if dims else plane)
    return torch.stack(out, dim=1)


def test_flip_yaw_is_an_involution() -> None:
    c = yaw_pitch_camera(torch.tensor([0.3, -0.2]), torch.tensor([0.1, 0.0]))
    assert torch.equal(flip_yaw(flip_yaw(c)), c)
    torch.testing.assert_close(flip_yaw(c), yaw_pitch_camera(torch.tensor([-0.3, 0.2]), torch.tensor([0.1, 0.0])),
                               atol=1e-6, rtol=0)


def test_mirrored_render_of_a_symmetric_scene_is_the_flipped_render(tiny) -> None:
    G, ws, planes = tiny
    sym = symmetric_planes(G, planes)
    res = G.neural_rendering_resolution
    c = yaw_pitch_camera(0.25, 0.1)
    image, depth = render(G, sym, ws, c, res)
    image_m, depth_m = render(G, sym, ws, flip_yaw(c), res)
    assert (image - image.flip(-1)).abs().max() > 1e-2  # the view itself is not symmetric
    torch.testing.assert_close(image_m, image.flip(-1), atol=1e-5, rtol=0)
    torch.testing.assert_close(depth_m, depth.flip(-1), atol=1e-5, rtol=0)
    # Hence the mirrored branch's inputs are the render from the mirrored camera, and warp like it.
    flipped, depth_flipped, c_mirror = mirror_inputs(image, depth, c)
    c_novel = yaw_pitch_camera(-0.05, 0.0)
    for mode in MODES:
        config = ForwardWarpConfig(mode=mode)
        a = forward_warp(flipped, depth_flipped, c_mirror, c_novel, config)
        b = forward_warp(image_m, depth_m, flip_yaw(c), c_novel, config)
        torch.testing.assert_close(a.warped, b.warped, atol=1e-3, rtol=0)


# --- mask processing -------------------------------------------------------------------------------------------


def test_blur_sigma_draws_follow_the_global_seed_or_a_generator() -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        first = [draw_blur_sigma() for _ in range(3)]
        torch.manual_seed(3)
        again = [float(torch.empty(1).uniform_(0.1, 2.0)) for _ in range(3)]
    assert first == again and all(0.1 <= s <= 2.0 for s in first)
    assert draw_blur_sigma(torch.Generator().manual_seed(9)) == draw_blur_sigma(torch.Generator().manual_seed(9))


def test_batched_erode_and_blur_equal_the_per_image_ones() -> None:
    masks = (torch.rand(2, 3, 17, 23, generator=torch.Generator().manual_seed(10)) > 0.3).float()
    eroded = erode(masks, 3)
    assert torch.equal(eroded, torch.stack([torch.stack([erode(m, 3) for m in b]) for b in masks]))
    for dtype, atol in ((torch.float64, 1e-14), (None, 1e-6)):  # the convolution's summation order may differ
        batched = gaussian_blur(eroded, 21, 1.3, dtype=dtype)
        single = torch.stack([torch.stack([gaussian_blur(m, 21, 1.3, dtype=dtype) for m in b]) for b in eroded])
        torch.testing.assert_close(batched, single, atol=atol, rtol=0)
    assert gaussian_blur(masks, 21, 1.3).dtype == torch.float64
    assert gaussian_blur(masks, 21, 1.3, dtype=None).dtype == torch.float32


def test_hole_mask_equals_kornia_erosion_and_torchvision_blur() -> None:
    kornia = pytest.importorskip("kornia")
    transforms = pytest.importorskip("torchvision.transforms.functional")
    visible = (torch.rand(2, 1, 24, 30, generator=torch.Generator().manual_seed(11)) > 0.2).float()
    for sigma in (0.1, 0.73, 2.0):
        eroded = kornia.morphology.erosion(visible, torch.ones(3, 3))
        expected = 1 - transforms.gaussian_blur(eroded, [21, 21], [sigma, sigma])
        assert torch.equal(erode(visible, 3), eroded)
        torch.testing.assert_close(hole_mask(visible, sigma), expected, atol=1e-6, rtol=0)


def test_hybrid_fill_and_inpaint_input() -> None:
    g = torch.Generator().manual_seed(12)
    warped, rendered = torch.rand(2, 3, 8, 8, generator=g), torch.rand(2, 3, 8, 8, generator=g)
    hole = torch.rand(2, 1, 8, 8, generator=g)
    inp = inpaint_input(warped, rendered, hole)
    assert inp.shape == (2, 7, 8, 8)
    assert torch.equal(inp[:, :3], hybrid_fill(warped, rendered, hole))
    assert torch.equal(inp[:, 3:6], rendered) and torch.equal(inp[:, 6:], hole)
    assert torch.equal(hybrid_fill(warped, rendered, torch.zeros(2, 1, 8, 8)), warped)
    assert torch.equal(hybrid_fill(warped, rendered, torch.ones(2, 1, 8, 8)), rendered)
    with pytest.raises(ValueError, match=r"hole must be a \(N=2, 1, H=8, W=8\) tensor"):
        inpaint_input(warped, rendered, hole[:, :, :4])
