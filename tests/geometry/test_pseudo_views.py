"""The pseudo-view pipeline (:mod:`warpinv.geometry.pseudo_views`) is right as geometry, not only
close to the fixtures: warping a render through its own depth reproduces the generator's own renders
of the other views where the mask says the warp is used, and the mask follows what the input sees.

The scene: the embedded ``tiny`` generator's colours (its tri-planes low-passed, read at the point
clamped into the tri-plane box) on an opaque sphere in front of an opaque wall (inside the rays'
depth range), rendered at 64 px with 48 + 48 samples per ray. The clamp matters: outside the box the
zero-padded planes drop the features to zero within a texel, and the rendered surface is not
infinitely thin (the density ramps up over about 0.02 behind the wall), so each view averages that
jump over a different stretch of its ray: a colour no warp can reproduce (measured once with a script:
17.5 dB on such wall pixels of the ``deep`` scene without the clamp, 47-48 dB with it). The random tiny generator itself
has no surface (its density is noise throughout the box, marched with 8 + 8 samples), so no warp can
reproduce its other views: even the ideal backward warp with the true target depth measures 25.5 dB
there. With a surface, what remains is the warp's own error. PSNR is measured inside the mask and
away from the target's silhouettes, where every point splat grows the nearer side by its radius.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import pytest
import torch
from torch import Tensor

from warpinv.backbone import load_generator
from warpinv.backbone.renderer import run_model
from warpinv.cameras import hfgi3d_orbit, yaw_pitch_camera
from warpinv.cameras.warp import pixels_to_grid, project_points, unproject_depth
from warpinv.geometry.masks import erode
from warpinv.geometry.pseudo_views import PseudoViewConfig, PseudoViewError, make_pseudo_views

RESOLUTION = 64
SHARPNESS = 5000.0


@dataclass(frozen=True)
class Geometry:
    """An opaque sphere on the z axis in front of an opaque wall ``z < wall_z`` (nearer than the rays' end,
    3.3, from every orbit camera), seen by the input camera at ``input_yaw``.

    ``touching``: the sphere touches the wall and the input looks from near the front, so the orbit shows
    only thin disoccluded slivers of the wall (89 clearly hidden pixels over 30 views). ``deep``: a smaller
    sphere 0.3 in front of the wall, seen from the side, so that the views on the other side look at a wide
    band of wall the input never saw (4014 clearly hidden pixels). There the released mesh leaks: it joins the
    sphere's silhouette to the wall with a sheet of triangles whose front the input "sees", and the far-side
    views take its colours where the hidden wall should be. ``clean`` mode keeps those triangles uncoloured
    (``PseudoViewConfig.max_depth_jump``); ``official`` keeps the leak, and its floor on ``deep`` is the
    measurement less a margin (a regression guard, not a claim that it is good; figures in
    ``warpinv/methods/hfgi3d/README.md``)."""

    name: str
    centre_z: float
    radius: float
    wall_z: float
    input_yaw: float
    min_hidden: int
    """Clearly hidden pixels the 30 views must show (the test's check that it tests something)."""
    min_empty_official: float
    """``official`` mode's floor of the fraction of clearly hidden pixels whose mask is below 0.1, in every view
    (``clean``: 0.99 on both scenes)."""


GEOMETRIES = (Geometry("touching", 0.0, 0.3, -0.3, 0.15, 50, 0.99),
              Geometry("deep", 0.2, 0.2, -0.3, 0.3, 3000, 0.97))
MIN_PSNR = 30.0
MIN_FULL = 0.95
MIN_EMPTY = 0.99


def sphere_field(geometry: Geometry):
    """A renderer ``plane_field``: the generator's features, with the scene's density."""

    def plane_field(planes: Tensor, decoder: torch.nn.Module, options: dict, feature_hook=None):
        def field(coordinates: Tensor, directions: Tensor) -> dict[str, Tensor]:
            inside = coordinates.clamp(-0.49, 0.49)
            out = run_model(planes, decoder, inside, directions, options, feature_hook=feature_hook)
            centre = coordinates.new_tensor([0.0, 0.0, geometry.centre_z])
            sphere = geometry.radius - (coordinates - centre).norm(dim=-1, keepdim=True)
            out["sigma"] = SHARPNESS * torch.maximum(sphere, geometry.wall_z - coordinates[..., 2:])
            return out

        return field

    return plane_field


def smooth(planes: Tensor, factor: int = 16) -> Tensor:
    """Tri-planes low-passed by ``factor`` (average, then bilinear back to their size)."""
    n, k, c, h, w = planes.shape
    flat = planes.reshape(n * k, c, h, w)
    low = torch.nn.functional.avg_pool2d(flat, factor)
    return torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear", align_corners=False).reshape(planes.shape)


@cache
def build_scene(geometry: Geometry) -> dict:
    torch.manual_seed(0)
    G = load_generator("tiny")
    G.rendering_kwargs = {**G.rendering_kwargs, "depth_resolution": 48, "depth_resolution_importance": 48}
    G.renderer.plane_field = sphere_field(geometry)
    ws = G.mapping(torch.randn(1, G.z_dim), yaw_pitch_camera(0.0, 0.0), truncation_psi=0.7)
    camera = yaw_pitch_camera(geometry.input_yaw, 0.05)
    views = hfgi3d_orbit()
    kw = dict(deterministic=True, noise_mode="const", neural_rendering_resolution=RESOLUTION, superresolve=False)
    with torch.no_grad():
        planes = smooth(G.planes(ws, noise_mode="const"))
        source = G.render_planes(planes, ws, camera, **kw)
        targets = [G.render_planes(planes, ws, v[None], **kw) for v in views]
    return {
        "geometry": geometry,
        "image": (source["image_raw"][0].clamp(-1, 1) + 1) / 2,
        "depth": source["image_depth"][0, 0],
        "camera": camera[0],
        "views": views,
        "truth": torch.cat([(t["image_raw"].clamp(-1, 1) + 1) / 2 for t in targets]),
        "truth_depth": torch.cat([t["image_depth"] for t in targets]),
        "source_depth": source["image_depth"],
    }


@pytest.fixture(scope="module")
def scene() -> dict:
    """The ``touching`` scene (the pipeline's other tests)."""
    return build_scene(GEOMETRIES[0])


@pytest.fixture(scope="module", params=GEOMETRIES, ids=lambda g: g.name)
def any_scene(request) -> dict:
    return build_scene(request.param)


def masked_psnr(a: Tensor, b: Tensor, weight: Tensor) -> float:
    mse = ((a - b) ** 2 * weight).sum() / (a.shape[0] * weight.sum())
    return -10 * math.log10(float(mse))


def dilate(mask: Tensor, radius: int) -> Tensor:
    """``(H, W)`` bool grown by a square of ``radius``."""
    return ~erode(~mask, 2 * radius + 1)


def depth_edges(depth: Tensor, step: float = 0.05) -> Tensor:
    """``(H, W)`` bool: a 4-neighbour's depth differs by more than ``step`` (silhouettes)."""
    edge = torch.zeros_like(depth, dtype=torch.bool)
    dy, dx = (depth[1:] - depth[:-1]).abs() > step, (depth[:, 1:] - depth[:, :-1]).abs() > step
    edge[1:] |= dy
    edge[:-1] |= dy
    edge[:, 1:] |= dx
    edge[:, :-1] |= dx
    return edge


@pytest.fixture(scope="module", params=["clean", "official"])
def warped(request, any_scene: dict) -> tuple[str, object]:
    scene = any_scene
    config = PseudoViewConfig(mode=request.param)
    pv = make_pseudo_views(scene["image"], scene["depth"], scene["camera"], scene["views"],
                           torch.zeros_like(scene["truth"]), config, torch.Generator().manual_seed(0))
    return request.param, pv


def away_from_silhouettes(scene: dict, view: int, radius: float) -> Tensor:
    """Target pixels more than the splat radius (+1) from a depth discontinuity: a splat grows the
    nearer side of a silhouette by its radius, which no mask of the released pipeline removes."""
    return ~dilate(depth_edges(scene["truth_depth"][view, 0]), int(math.ceil(radius)) + 1)


def test_warps_match_the_generators_own_views_inside_the_mask(any_scene: dict, warped) -> None:
    """Acceptance 2: above 30 dB in every one of the 30 orbit views, both modes, both scenes (figures in
    ``warpinv/methods/hfgi3d/README.md``)."""
    scene = any_scene
    mode, pv = warped
    radius = PseudoViewConfig().point_radius
    psnrs = [masked_psnr(pv.warps[i], scene["truth"][i], pv.masks[i] * away_from_silhouettes(scene, i, radius))
             for i in range(len(scene["views"]))]
    assert min(psnrs) > MIN_PSNR, (mode, [round(p, 1) for p in psnrs])


def occlusion_gap(scene: dict, view: int) -> Tensor:
    """``(R, R)``: how far behind the input's own surface each target pixel's point lies (world
    units; <= 0 where the input sees it; +inf outside the input image)."""
    points = unproject_depth(scene["truth_depth"][view: view + 1], scene["views"][view: view + 1])
    xy, _, in_front = project_points(points, scene["camera"][None], RESOLUTION)
    grid = pixels_to_grid(xy, RESOLUTION)[:, :, None]
    source = torch.nn.functional.grid_sample(scene["source_depth"], grid, mode="nearest", align_corners=False)
    distance = (points - scene["camera"][[3, 7, 11]]).norm(dim=-1)
    inside = in_front & ((xy >= 0) & (xy <= RESOLUTION)).all(-1)
    gap = torch.where(inside, distance - source.reshape(distance.shape), torch.full_like(distance, math.inf))
    return gap.reshape(RESOLUTION, RESOLUTION)


def test_masks_are_full_where_the_input_sees_and_empty_where_it_cannot(any_scene: dict, warped) -> None:
    """Reference visibility from the target's own depth: a target pixel is seen by the input when its
    point is not behind the input's surface (gap <= 0.01), hidden when it lies clearly behind it (gap >
    0.05: the wall disoccluded by the sphere) or outside the input image. Away from silhouettes and from
    the other class by the mask kernels' reach, the mask must be above 0.9 on at least 95 % of the seen
    pixels and below 0.1 on at least 99 % of the hidden ones, in every view (``official`` on ``deep``: 97 %,
    see :class:`Geometry`)."""
    scene = any_scene
    mode, pv = warped
    assert hidden_pixels(scene) > scene["geometry"].min_hidden, "the orbit must show wall the input cannot see"
    full, empty = mask_agreement(scene, pv)
    assert min(full) > MIN_FULL, (mode, [round(f, 3) for f in full])
    assert min(empty) > min_empty(scene["geometry"], mode), (mode, [round(f, 3) for f in empty])


def min_empty(geometry: Geometry, mode: str) -> float:
    """The floor of the hidden pixels' fraction under 0.1 in every view: 99 % in ``clean`` mode, the scene's own
    in ``official`` mode."""
    return MIN_EMPTY if mode == "clean" else geometry.min_empty_official


def test_the_sheet_across_silhouettes_is_what_leaks() -> None:
    """Without ``max_depth_jump`` (the released mesh), ``clean`` mode leaks into the ``deep`` scene's hidden
    wall: the mechanism the setting removes, shown on the scene where it matters (the ``touching`` scene's
    slivers are too narrow)."""
    scene = build_scene(GEOMETRIES[1])
    pv = make_pseudo_views(scene["image"], scene["depth"], scene["camera"], scene["views"],
                           torch.zeros_like(scene["truth"]), PseudoViewConfig(mode="clean", max_depth_jump=math.inf),
                           torch.Generator().manual_seed(0))
    _, empty = mask_agreement(scene, pv)
    assert min(empty) < MIN_EMPTY


def mask_agreement(scene: dict, pv) -> tuple[list[float], list[float]]:
    """Per view: the fraction of surely seen pixels whose mask is above 0.9, and (views with any) of surely
    hidden pixels whose mask is below 0.1 (see the test above)."""
    full, empty = [], []
    for i in range(len(scene["views"])):
        sure_seen, sure_hidden, _ = reference_visibility(scene, i)
        mask = pv.masks[i, 0]
        full.append(float((mask[sure_seen] > 0.9).float().mean()))
        if sure_hidden.any():
            empty.append(float((mask[sure_hidden] < 0.1).float().mean()))
    return full, empty


def reference_visibility(scene: dict, view: int) -> tuple[Tensor, Tensor, Tensor]:
    """``(R, R)`` bool each: target pixels surely seen and surely hidden by the input, away from silhouettes
    and from each other by the mask kernels' reach; and the pixels whose point lies inside the input image."""
    kernels = PseudoViewConfig().kernels.scaled(RESOLUTION)
    reach = kernels.coverage_erode // 2 + kernels.blur_size // 2 + 2
    gap = occlusion_gap(scene, view)
    clear = ~dilate(depth_edges(scene["truth_depth"][view, 0]), reach)
    return erode(gap <= 0.01, 2 * reach + 1) & clear, erode(gap > 0.05, 2 * reach + 1), torch.isfinite(gap)


def hidden_pixels(scene: dict) -> int:
    """Surely hidden target pixels inside the input image, over all views."""
    total = 0
    for i in range(len(scene["views"])):
        _, hidden, inside = reference_visibility(scene, i)
        total += int((hidden & inside).sum())
    return total


def test_a_depth_map_with_no_surface_fails_clearly(scene: dict) -> None:
    with pytest.raises(PseudoViewError, match="empty"):
        make_pseudo_views(scene["image"], torch.zeros_like(scene["depth"]), scene["camera"], scene["views"][:1],
                          scene["truth"][:1], PseudoViewConfig(), torch.Generator().manual_seed(0))
    with pytest.raises(PseudoViewError, match="NaN"):
        make_pseudo_views(scene["image"], torch.full_like(scene["depth"], math.nan), scene["camera"],
                          scene["views"][:1], scene["truth"][:1], PseudoViewConfig(), torch.Generator())


def test_excluded_pixels_are_not_warped(scene: dict) -> None:
    """The paper's difference-map threshold: excluded input pixels contribute no colour, so their
    part of each pseudo view falls back to the render (mask 0)."""
    excluded = torch.zeros(RESOLUTION, RESOLUTION, dtype=torch.bool)
    excluded[:, : RESOLUTION // 2] = True
    config = PseudoViewConfig(mode="clean")
    full = make_pseudo_views(scene["image"], scene["depth"], scene["camera"], scene["camera"][None],
                             scene["image"][None], config, torch.Generator().manual_seed(0))
    half = make_pseudo_views(scene["image"], scene["depth"], scene["camera"], scene["camera"][None],
                             scene["image"][None], config, torch.Generator().manual_seed(0), excluded=excluded)
    assert half.num_visible < full.num_visible
    assert float(half.masks[0, 0, :, : RESOLUTION // 2 - 4].max()) < 0.05
    assert float(full.masks[0, 0, :, : RESOLUTION // 2 - 4].mean()) > 0.5
    right = slice(RESOLUTION // 2 + 4, None)
    torch.testing.assert_close(half.masks[..., right], full.masks[..., right])


def test_bad_inputs_are_refused(scene: dict) -> None:
    args = (scene["image"], scene["depth"], scene["camera"], scene["views"][:2], scene["truth"][:2])
    with pytest.raises(ValueError, match="renders"):
        make_pseudo_views(*args[:4], scene["truth"][:1], PseudoViewConfig(), torch.Generator())
    with pytest.raises(ValueError, match="image"):
        make_pseudo_views(scene["image"][0], *args[1:], PseudoViewConfig(), torch.Generator())
    with pytest.raises(ValueError, match="mode"):
        PseudoViewConfig(mode="exact")  # type: ignore[arg-type]


def test_poisson_blending_keeps_the_render_outside_the_warped_region(scene: dict) -> None:
    """The paper's Poisson variant: where the mask is 0 the pseudo view is the render itself."""
    renders = torch.full_like(scene["truth"][:2], 0.25)
    args = (scene["image"], scene["depth"], scene["camera"], scene["views"][:2], renders)
    alpha = make_pseudo_views(*args, PseudoViewConfig(mode="clean"), torch.Generator().manual_seed(0))
    poisson = make_pseudo_views(*args, PseudoViewConfig(mode="clean", blending="poisson"),
                                torch.Generator().manual_seed(0))
    outside = alpha.masks[:, 0] == 0
    assert outside.any() and torch.equal(poisson.masks, alpha.masks)
    torch.testing.assert_close(poisson.images.permute(1, 0, 2, 3)[:, outside], renders.permute(1, 0, 2, 3)[:, outside])
    assert not torch.allclose(poisson.images, alpha.images)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("mode", ["clean", "official"])
def test_cuda_meets_the_same_acceptance(mode: str) -> None:
    """On a GPU (the surface points come from a CUDA random stream, so not the CPU's points): the same floors on the
    ``deep`` scene, and the outputs stay on the device."""
    scene = build_scene(GEOMETRIES[1])
    cuda = torch.device("cuda")
    pv = make_pseudo_views(scene["image"].to(cuda), scene["depth"].to(cuda), scene["camera"].to(cuda),
                           scene["views"].to(cuda), torch.zeros_like(scene["truth"]).to(cuda),
                           PseudoViewConfig(mode=mode), torch.Generator(device=cuda).manual_seed(0))
    assert pv.images.device.type == "cuda" and pv.masks.device.type == "cuda"
    pv.warps, pv.masks = pv.warps.cpu(), pv.masks.cpu()
    psnrs = [masked_psnr(pv.warps[i], scene["truth"][i], pv.masks[i] * away_from_silhouettes(scene, i, 2.0))
             for i in range(len(scene["views"]))]
    full, empty = mask_agreement(scene, pv)
    assert min(psnrs) > MIN_PSNR and min(full) > MIN_FULL
    assert min(empty) > min_empty(GEOMETRIES[1], mode)
