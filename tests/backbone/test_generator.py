"""Behaviour methods rely on: gradients, composability, the tiny model, modes."""
from __future__ import annotations

import pytest
import torch

from tests.backbone.test_structure import frontal_label
from warpinv.backbone import EG3DGenerator, build_tiny, load_generator, sample_from_planes
from warpinv.backbone.renderer import run_model


@pytest.fixture(scope="module")
def G() -> EG3DGenerator:
    return build_tiny()


def test_gradients_reach_ws_planes_and_every_parameter(G: EG3DGenerator) -> None:
    G = build_tiny()
    z = torch.randn(2, 512, generator=torch.Generator().manual_seed(0))
    c = frontal_label(2)
    ws = G.mapping(z, c)
    ws.retain_grad()
    planes = G.planes(ws, noise_mode="const")
    planes.retain_grad()
    out = G.render_planes(planes, ws, c, neural_rendering_resolution=16, deterministic=True)
    (out["image"].square().mean() + out["image_raw"].mean() + out["image_depth"].mean()).backward()
    assert ws.grad is not None and ws.grad.abs().sum() > 0
    assert planes.grad is not None and planes.grad.abs().sum() > 0
    # The SR's noise strengths are unused (superresolution_noise_mode='none'), as in the official model.
    unused = {n for n, _ in G.named_parameters() if n.startswith("superresolution") and n.endswith("noise_strength")}
    missing = [n for n, p in G.named_parameters() if n not in unused and (p.grad is None or p.grad.abs().sum() == 0)]
    assert missing == []


def test_train_mode_non_fused_equals_eval_fused(G: EG3DGenerator) -> None:
    ws = G.mapping(torch.randn(2, 512, generator=torch.Generator().manual_seed(1)), frontal_label(2))
    with torch.no_grad():
        a = G.eval().synthesis(ws, frontal_label(2), neural_rendering_resolution=16, noise_mode="const",
                               deterministic=True)
        b = G.train().synthesis(ws, frontal_label(2), neural_rendering_resolution=16, noise_mode="const",
                                deterministic=True)
    G.eval()
    torch.testing.assert_close(a["image"], b["image"], atol=1e-4, rtol=1e-4)


def test_tiny_is_deterministic_and_leaves_global_rng_alone() -> None:
    state = torch.random.get_rng_state()
    a, b = build_tiny(), build_tiny()
    assert torch.equal(torch.random.get_rng_state(), state)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    assert load_generator("tiny").source.startswith("tiny (seeded random weights")


def test_tiny_does_not_depend_on_the_thread_count() -> None:
    """The same weights (sha256) in a 1-thread and a 2-thread process: the harness builds the generator in
    the main process and in every CPU rank, and the provenance names one sha."""
    import subprocess
    import sys

    code = ("import sys, torch; torch.set_num_threads(int(sys.argv[1])); from warpinv.backbone import build_tiny; "
            "from warpinv.backbone.loading import state_dict_sha256; print(state_dict_sha256(build_tiny()))")
    shas = {subprocess.run([sys.executable, "-c", code, str(n)], capture_output=True, text=True, check=True
                           ).stdout.strip() for n in (1, 2)}
    assert len(shas) == 1, shas


def test_tiny_renders_view_dependent_scenes(G: EG3DGenerator) -> None:
    """Different latents give different scenes, and a camera move changes the image (3D structure)."""
    z = torch.randn(2, 512, generator=torch.Generator().manual_seed(2))
    c = frontal_label(2)
    moved = c.clone()
    moved[:, 3] = 0.5
    with torch.no_grad():
        ws = G.mapping(z, c)
        a = G.synthesis(ws, c, noise_mode="const", deterministic=True)
        b = G.synthesis(ws, moved, noise_mode="const", deterministic=True)
    assert (a["image"][0] - a["image"][1]).abs().mean() > 0.1
    assert (a["image"] - b["image"]).abs().mean() > 0.05
    assert a["weight_sum"].mean() > 0.3  # opaque surfaces, not an empty volume


def test_cached_backbone(G: EG3DGenerator) -> None:
    ws = G.mapping(torch.randn(1, 512, generator=torch.Generator().manual_seed(3)), frontal_label())
    with torch.no_grad():
        a = G.synthesis(ws, frontal_label(), cache_backbone=True, noise_mode="const", deterministic=True)
        b = G.synthesis(torch.zeros_like(ws), frontal_label(), use_cached_backbone=True, noise_mode="const",
                        deterministic=True)
    torch.testing.assert_close(a["image_raw"], b["image_raw"])
    G._last_planes = None


def test_composite_rendering_blend_extremes(G: EG3DGenerator) -> None:
    """An extra field with blend 0 leaves the render unchanged; blend 1 shows only the extra field."""
    ws = G.mapping(torch.randn(1, 512, generator=torch.Generator().manual_seed(4)), frontal_label())
    planes = G.planes(ws, noise_mode="const")
    other = G.planes(G.mapping(torch.randn(1, 512, generator=torch.Generator().manual_seed(5)), frontal_label()),
                     noise_mode="const")
    other_field = G.renderer.plane_field(other, G.decoder, G.rendering_kwargs)

    def with_blend(value: float):
        def field(coords: torch.Tensor, dirs: torch.Tensor) -> dict[str, torch.Tensor]:
            out = other_field(coords, dirs)
            return {**out, "blend": torch.full_like(out["sigma"], value)}
        return field

    origins, dirs = G.rays(frontal_label(), 16)
    opts = G.rendering_kwargs
    with torch.no_grad():
        plain = G.renderer(planes, G.decoder, origins, dirs, opts, deterministic=True)
        b0 = G.renderer(planes, G.decoder, origins, dirs, opts, deterministic=True, extra_field=with_blend(0.0))
        b1 = G.renderer(planes, G.decoder, origins, dirs, opts, deterministic=True, extra_field=with_blend(1.0))
        inner_only = G.renderer.evaluate(other_field, origins, dirs, plain.depths)
        from warpinv.backbone.renderer import march
        expected_b1 = march(inner_only["rgb"], inner_only["sigma"], plain.depths, opts)
    torch.testing.assert_close(b0.features, plain.features, atol=1e-5, rtol=0)
    torch.testing.assert_close(b1.features, expected_b1.rgb, atol=1e-5, rtol=0)


def test_feature_hook_edits_the_features_the_decoder_reads(G: EG3DGenerator) -> None:
    """An identity hook renders the plain render (to float rounding: without a hook the decoder reads the fused
    plane mean); the decoder reads what a hook returns."""
    ws = G.mapping(torch.randn(1, 512, generator=torch.Generator().manual_seed(6)), frontal_label())
    c = frontal_label()
    seen: list[tuple[int, ...]] = []

    def identity(coords: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        seen.append((tuple(coords.shape), tuple(features.shape)))
        return features

    def shift(coords: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return features + 0.3

    with torch.no_grad():
        planes = G.planes(ws, noise_mode="const")
        plain = G.render_planes(planes, ws, c, 16, deterministic=True, noise_mode="const")
        same = G.render_planes(planes, ws, c, 16, deterministic=True, noise_mode="const", feature_hook=identity)
        shifted = G.render_planes(planes, ws, c, 16, deterministic=True, noise_mode="const", feature_hook=shift)
        points = torch.rand(1, 50, 3, generator=torch.Generator().manual_seed(7)) - 0.5
        hooked = run_model(planes, G.decoder, points, points, G.rendering_kwargs, feature_hook=shift)
        direct = G.decoder(sample_from_planes(planes, points, G.rendering_kwargs["box_warp"]) + 0.3, points)
    torch.testing.assert_close(same["image"], plain["image"], rtol=0, atol=1e-5)
    torch.testing.assert_close(same["image_depth"], plain["image_depth"], rtol=0, atol=1e-5)
    # coarse and fine pass: (N, P, 3) points and (N, 3, P, C) features
    assert len(seen) == 2 and all(cs[0] == 1 and cs[2] == 3 and fs[:3] == (1, 3, cs[1]) for cs, fs in seen)
    assert torch.equal(hooked["rgb"], direct["rgb"]) and torch.equal(hooked["sigma"], direct["sigma"])
    assert not torch.allclose(shifted["image_raw"], plain["image_raw"], atol=1e-3)


def test_input_checks(G: EG3DGenerator) -> None:
    with pytest.raises(ValueError, match=r"must have shape \(N, 25\)"):
        G.synthesis(torch.zeros(1, 14, 512), torch.zeros(1, 16))
    with pytest.raises(ValueError, match="noise_mode"):
        G.planes(torch.zeros(1, 14, 512), noise_mode="loud")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fp16_super_resolution_on_cuda_is_close_to_fp32() -> None:
    G = build_tiny().cuda()
    ws = G.mapping(torch.randn(1, 512, device="cuda"), frontal_label().cuda())
    with torch.no_grad():
        half = G.synthesis(ws, frontal_label().cuda(), noise_mode="const", deterministic=True)
        full = G.synthesis(ws, frontal_label().cuda(), noise_mode="const", deterministic=True, force_fp32=True)
    assert half["image"].dtype == torch.float32
    assert (half["image"] - full["image"]).abs().max() < 0.05
