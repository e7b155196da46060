"""State-dict layout of every configuration, and the configuration-dependent behaviours."""
from __future__ import annotations

import copy
import json

import pytest
import torch

from tests.helpers import require_fixture
from warpinv.backbone import PRESETS, EG3DGenerator, build_random, build_tiny, get_preset
from warpinv.backbone.superresolution import SR_LAYOUTS
from warpinv.cameras import yaw_pitch_camera


def test_full_ffhq512_generator_has_exactly_the_manifest_state_dict() -> None:
    manifest = json.loads(require_fixture("eg3d", "ffhq512_manifest.json").read_text())
    G = EG3DGenerator(**manifest["init_kwargs"])
    sd = G.state_dict()
    got = [(k, list(v.shape), str(v.dtype).replace("torch.", "")) for k, v in sd.items()]
    want = [(e["name"], e["shape"], e["dtype"]) for e in manifest["state_dict"]]
    assert got == want
    assert sum(p.numel() for p in G.parameters()) == manifest["total_parameter_count"]
    assert sum(b.numel() for b in G.buffers()) == manifest["total_buffer_elements"]
    assert G.num_ws == manifest["num_ws"]


def test_ffhq_preset_kwargs_equal_the_manifest() -> None:
    manifest = json.loads(require_fixture("eg3d", "ffhq512_manifest.json").read_text())
    assert get_preset("ffhq512-128").init_kwargs == manifest["init_kwargs"]
    assert get_preset("ffhq512-128").neural_rendering_resolution == (
        manifest["non_init_attributes"]["neural_rendering_resolution"])


def test_small_generator_names_equal_the_fixture_weights() -> None:
    from safetensors import safe_open

    config = json.loads(require_fixture("eg3d", "small_config.json").read_text())
    with safe_open(require_fixture("eg3d", "small_G.safetensors"), "pt") as f:
        shapes = {k: list(f.get_slice(k).get_shape()) for k in f.keys()}
    G = EG3DGenerator(**config["init_kwargs"])
    assert {k: list(v.shape) for k, v in G.state_dict().items()} == shapes


@pytest.mark.parametrize("name", [n for n in PRESETS if n != "tiny"])
def test_every_released_preset_builds_with_its_sr_class(name: str) -> None:
    preset = get_preset(name)
    G = build_random(name)
    rk = preset.init_kwargs["rendering_kwargs"]
    layout = SR_LAYOUTS[rk["superresolution_module"].rsplit(".", 1)[-1]]
    assert G.superresolution.layout == layout
    assert G.img_resolution == layout.img_resolution
    assert G.neural_rendering_resolution == preset.neural_rendering_resolution
    assert G.num_ws == 14
    assert ("superresolution.resample_filter" in G.state_dict()) == layout.has_resample_filter


def _tiny_with(**rendering_changes: object) -> EG3DGenerator:
    preset = get_preset("tiny")
    kwargs = preset.kwargs()
    kwargs["rendering_kwargs"].update(rendering_changes)
    G = EG3DGenerator(**kwargs).eval()
    G.load_state_dict(build_tiny().state_dict())
    return G


def frontal_label(n: int = 1) -> torch.Tensor:
    return yaw_pitch_camera(0.0, 0.0).repeat(n, 1)


def test_camera_conditioning_switches() -> None:
    z = torch.randn(2, 512, generator=torch.Generator().manual_seed(0))
    c1, c2 = frontal_label(2), frontal_label(2)
    c2[:, 3] = 0.4  # move the camera
    G = _tiny_with()
    assert not torch.allclose(G.mapping(z, c1), G.mapping(z, c2))
    G = _tiny_with(c_gen_conditioning_zero=True)
    torch.testing.assert_close(G.mapping(z, c1), G.mapping(z, c2))
    torch.testing.assert_close(G.mapping(z, c1), G.backbone.mapping(z, torch.zeros(2, 25)))
    G = _tiny_with()
    del G.rendering_kwargs["c_scale"]  # official default when the key is missing: 0, i.e. c ignored
    torch.testing.assert_close(G.mapping(z, c1), G.mapping(z, c2))


def test_white_background_and_empty_scene() -> None:
    ws = torch.zeros(1, 14, 512)
    for white, expected in [(True, 1.0), (False, -1.0)]:
        G = _tiny_with(white_back=white)
        with torch.no_grad():
            G.decoder.net[2].bias[0] = -1e4  # no density anywhere
            out = G.synthesis(ws, frontal_label(), neural_rendering_resolution=16, noise_mode="const",
                              deterministic=True)
        torch.testing.assert_close(out["image_raw"], torch.full_like(out["image_raw"], expected), atol=1e-5, rtol=0)
        assert torch.all(out["weight_sum"] < 1e-5)


def test_box_warp_and_ray_range_are_honoured() -> None:
    """Cars-style ranges: a larger box reads plane texels closer to the centre; depths stay in range."""
    G = _tiny_with(box_warp=1.6, ray_start=0.1, ray_end=2.6, depth_resolution=16, depth_resolution_importance=16)
    ws = G.mapping(torch.randn(1, 512, generator=torch.Generator().manual_seed(0)), frontal_label())
    with torch.no_grad():
        out = G.synthesis(ws, frontal_label(), neural_rendering_resolution=16, noise_mode="const", deterministic=True)
    assert out["depths"].min() >= 0.1 - 1e-6 and out["depths"].max() <= 2.6 + 1e-6
    assert out["image_depth"].min() >= 0.1 - 1e-6 and out["image_depth"].max() <= 2.6 + 1e-6
    planes = G.planes(ws, noise_mode="const")
    point = torch.tensor([[[0.4, 0.0, 0.0]]])
    a = G.renderer.plane_field(planes, G.decoder, {"box_warp": 1.6})(point, point)["sigma"]
    b = G.renderer.plane_field(planes, G.decoder, {"box_warp": 1.0})(point * 1.0 / 1.6, point)["sigma"]
    torch.testing.assert_close(a, b)


def test_auto_ray_range_uses_the_box() -> None:
    G = _tiny_with(ray_start="auto", ray_end="auto")
    ws = G.mapping(torch.randn(1, 512, generator=torch.Generator().manual_seed(0)), frontal_label())
    with torch.no_grad():
        out = G.synthesis(ws, frontal_label(), neural_rendering_resolution=8, noise_mode="const", deterministic=True)
    # The frontal camera at z=2.7 sees the unit box between z=0.5 and z=-0.5 along the central rays.
    assert out["depths"].min() >= 2.2 - 1e-4 and out["depths"].max() <= 3.3


def test_sr_kwargs_widths_are_ignored_as_official() -> None:
    kwargs = get_preset("tiny").kwargs()
    kwargs["sr_kwargs"] = {**kwargs["sr_kwargs"], "channel_base": 1, "channel_max": 1}
    a = EG3DGenerator(**kwargs)
    b = EG3DGenerator(**get_preset("tiny").kwargs())
    assert [v.shape for v in a.superresolution.state_dict().values()] == [
        v.shape for v in b.superresolution.state_dict().values()]
    assert a.superresolution.block0.conv1.conv_clamp == 256  # sr_num_fp16_res > 0 implies clamp 256


def test_unknown_sr_module_is_refused() -> None:
    kwargs = copy.deepcopy(get_preset("tiny").init_kwargs)
    kwargs["rendering_kwargs"]["superresolution_module"] = "training.superresolution.Nope"
    with pytest.raises(ValueError, match="unknown super-resolution module"):
        EG3DGenerator(**kwargs)


def test_noup_sr_writes_its_skip_into_image_raw_as_official() -> None:
    """Official quirk: Hybrid2X/4X's first block adds toRGB in place into ``image_raw`` when no resize happens."""
    G = build_tiny()  # Hybrid2X, input resolution 64
    ws = G.mapping(torch.randn(1, 512, generator=torch.Generator().manual_seed(0)), frontal_label())
    planes = G.planes(ws, noise_mode="const")
    with torch.no_grad():
        for res, aliased in [(64, True), (32, False)]:
            plain = G.render_planes(planes, ws, frontal_label(), res, deterministic=True, superresolve=False)
            full = G.render_planes(planes, ws, frontal_label(), res, deterministic=True)
            if aliased:
                block0 = G.superresolution.block0
                _, skip = block0(plain["feature_image"], plain["image_raw"], ws[:, -1:].repeat(1, 3, 1),
                                 noise_mode="none")
                torch.testing.assert_close(full["image_raw"], skip)
                assert not torch.allclose(full["image_raw"], plain["image_raw"])
                torch.testing.assert_close(full["feature_image"][:, :3], skip)
            else:
                torch.testing.assert_close(full["image_raw"], plain["image_raw"])


# The official plane axes (rows: the plane's u, v and normal vectors) of WarpGAN's renderer
# ``generate_planes(fixed_planes)``; projection = coordinates @ inverse(axes), first two components.
_OFFICIAL_AXES = {
    False: [[[1, 0, 0], [0, 1, 0], [0, 0, 1]], [[1, 0, 0], [0, 0, 1], [0, 1, 0]], [[0, 0, 1], [1, 0, 0], [0, 1, 0]]],
    True: [[[1, 0, 0], [0, 1, 0], [0, 0, 1]], [[1, 0, 0], [0, 0, 1], [0, 1, 0]], [[0, 0, 1], [0, 1, 0], [1, 0, 0]]],
}


@pytest.mark.parametrize("fixed", [False, True])
def test_plane_projection_equals_the_official_matrix_form(fixed: bool) -> None:
    from warpinv.backbone.renderer import FIXED_PLANE_AXES, PLANE_AXES, project_onto_planes

    points = torch.randn(2, 7, 3, generator=torch.Generator().manual_seed(0))
    inverse = torch.linalg.inv(torch.tensor(_OFFICIAL_AXES[fixed], dtype=torch.float32))
    official = torch.stack([(points @ inverse[i])[..., :2] for i in range(3)], dim=1)
    ours = project_onto_planes(points, FIXED_PLANE_AXES if fixed else PLANE_AXES)
    torch.testing.assert_close(ours, official, atol=0, rtol=0)


def test_fixed_planes_changes_only_the_third_plane_and_is_recorded() -> None:
    kwargs = get_preset("tiny").kwargs()
    plain = EG3DGenerator(**kwargs).eval()
    fixed = EG3DGenerator(**kwargs, fixed_planes=True).eval()
    assert "fixed_planes" not in plain.init_kwargs  # off: the kwargs (and every hash of them) are unchanged
    assert fixed.init_kwargs["fixed_planes"] is True
    rebuilt = EG3DGenerator(**fixed.init_kwargs)
    assert rebuilt.renderer.plane_axes == fixed.renderer.plane_axes
    state = build_tiny().state_dict()
    plain.load_state_dict(state)
    fixed.load_state_dict(state)
    ws = plain.mapping(torch.randn(1, 512, generator=torch.Generator().manual_seed(1)), frontal_label())
    planes = plain.planes(ws, noise_mode="const").view(1, 3, 32, 256, 256)

    def render(G: EG3DGenerator, p: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return G.render_planes(p, ws, frontal_label(), neural_rendering_resolution=16,
                                   deterministic=True, superresolve=False)["image_raw"]

    assert not torch.allclose(render(plain, planes), render(fixed, planes), atol=1e-4)
    constant_third = planes.clone()
    constant_third[:, 2] = planes[:, 2].mean(dim=(-1, -2), keepdim=True)
    torch.testing.assert_close(render(plain, constant_third), render(fixed, constant_third), atol=1e-5, rtol=0)
