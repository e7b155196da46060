"""The shared latent optimiser: PTI's schedules, w statistics, noise handling, generator safety."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from warpinv.backbone import build_tiny
from warpinv.cameras import yaw_pitch_camera
from warpinv.methods.base import InversionItem, NonFiniteLossError
from warpinv.methods.losses import PerceptualLoss, build_lpips
from warpinv.methods.projector import (
    ProjectorConfig,
    backbone_noise_names,
    frontal_camera,
    latent_noise_scale,
    latent_stats,
    prepare_target,
    project,
    ramp_lr,
    synthesize,
    synthesize_views,
)


@pytest.fixture(scope="module")
def G():
    return build_tiny()


@pytest.fixture(scope="module")
def target(G):
    c = yaw_pitch_camera(0.2, -0.1)
    with torch.no_grad():
        ws = G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(3)), c, truncation_psi=0.7)
        image = G.synthesis(ws, c, noise_mode="const", deterministic=True)["image"].clamp(-1, 1)
    return image, c


@pytest.fixture(scope="module")
def perceptual():
    return PerceptualLoss(build_lpips("vgg", allow_random=True), 256)


def official_lr(step: int, num_steps: int) -> float:
    """PTI's w_projector schedule with its defaults, as written there."""
    t = step / num_steps
    lr_ramp = min(1.0, (1.0 - t) / 0.25)
    lr_ramp = 0.5 - 0.5 * np.cos(lr_ramp * np.pi)
    lr_ramp = lr_ramp * min(1.0, t / 0.05)
    return 0.01 * lr_ramp


def test_lr_ramp_values() -> None:
    # 450 steps: linear ramp-up to step 22.5, flat peak 0.01, cosine ramp-down over the last 112.5 steps.
    assert ramp_lr(0, 450, 0.01) == 0.0
    assert ramp_lr(9, 450, 0.01) == pytest.approx(0.01 * 9 / 22.5)
    assert ramp_lr(23, 450, 0.01) == pytest.approx(0.01)
    assert ramp_lr(200, 450, 0.01) == pytest.approx(0.01)
    assert ramp_lr(395, 450, 0.01) == pytest.approx(0.01 * (0.5 - 0.5 * math.cos(55 / 112.5 * math.pi)))
    assert ramp_lr(449, 450, 0.01) == pytest.approx(0.01 * (0.5 - 0.5 * math.cos(1 / 112.5 * math.pi)))
    for step in range(0, 450, 7):
        assert ramp_lr(step, 450, 0.01) == pytest.approx(official_lr(step, 450), abs=1e-12)
    assert max(ramp_lr(s, 450, 0.01) for s in range(450)) == pytest.approx(0.01)  # the peak is 0.01, not 5e-3


def test_latent_noise_ramp() -> None:
    w_std = 7.0
    assert latent_noise_scale(0, 450, w_std) == pytest.approx(w_std * 0.05)
    assert latent_noise_scale(225, 450, w_std) == pytest.approx(w_std * 0.05 * (1 - 0.5 / 0.75) ** 2)
    assert latent_noise_scale(338, 450, w_std) == 0.0  # t = 0.751 > 0.75
    assert latent_noise_scale(449, 450, w_std) == 0.0


def test_frontal_camera_keeps_the_intrinsics(G) -> None:
    c = yaw_pitch_camera(0.4, 0.2, focal=5.0)
    front = frontal_camera(G, c)
    assert torch.allclose(front[:, :16], yaw_pitch_camera(0.0, 0.0, lookat=(0.0, 0.0, 0.2))[:, :16])
    assert torch.equal(front[:, 16:], c[:, 16:])


def test_latent_stats_follow_pti(G) -> None:
    c = yaw_pitch_camera(0.3, 0.0)
    stats = latent_stats(G, c, num_samples=600, seed=123)
    z = torch.from_numpy(np.random.RandomState(123).randn(600, G.z_dim)).float()
    with torch.no_grad():
        w = G.mapping(z, frontal_camera(G, c).repeat(600, 1))[:, :1]
    w_avg = w.mean(0, keepdim=True)
    assert stats.w_avg.shape == (1, 1, G.w_dim)
    assert torch.allclose(stats.w_avg, w_avg, atol=1e-5)
    assert stats.w_std == pytest.approx(float(((w - w_avg).square().sum() / 600).sqrt()), rel=1e-5)
    before = torch.random.get_rng_state()
    latent_stats(G, c)
    assert torch.equal(before, torch.random.get_rng_state())  # numpy RandomState only


def test_noise_buffers_are_swapped_in_and_restored(G) -> None:
    from warpinv.methods.rendering import substituted_tensors

    name = backbone_noise_names(G)[0]
    original = G.get_buffer(name)
    replacement = torch.zeros_like(original)
    with substituted_tensors(G, {name: replacement}):
        assert G.get_buffer(name) is replacement
    assert G.get_buffer(name) is original
    assert all(n.startswith("backbone.synthesis.") for n in backbone_noise_names(G))
    with pytest.raises(KeyError):
        with substituted_tensors(G, {"backbone.synthesis.b4.no_such_noise": replacement}):
            pass


def test_synthesize_leaves_the_render_resolution_alone(G) -> None:
    ws = G.w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1)
    before = G.neural_rendering_resolution
    with torch.no_grad():
        out = synthesize(G, ws, yaw_pitch_camera(0.0, 0.0), neural_rendering_resolution=32, deterministic=True)
    assert out["image_raw"].shape[-1] == 32 and G.neural_rendering_resolution == before


def test_views_of_one_latent_share_the_tri_planes_and_match_separate_calls(G) -> None:
    """``synthesize_views`` (HFGI3D's two-view steps): same images as one ``synthesize`` per camera, the same
    gradient to the generator up to float rounding, the render resolution untouched."""
    ws = G.w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1)
    cameras = [yaw_pitch_camera(0.0, 0.0), yaw_pitch_camera(0.3, -0.1)]
    before = G.neural_rendering_resolution
    kw = dict(neural_rendering_resolution=32, deterministic=True)
    grads = []
    for together in (True, False):
        G.requires_grad_(True)
        G.zero_grad(set_to_none=True)
        outs = synthesize_views(G, ws, cameras, **kw) if together else [synthesize(G, ws, c, **kw) for c in cameras]
        sum(o["image"].square().mean() for o in outs).backward()
        grads.append({n: p.grad.clone() for n, p in G.named_parameters() if p.grad is not None})
        if together:
            images = [o["image"].detach() for o in outs]
        else:
            for a, b in zip(images, outs):
                assert torch.equal(a, b["image"].detach())
    G.requires_grad_(False)
    G.zero_grad(set_to_none=True)
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 0
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-4, atol=1e-6)
    assert G.neural_rendering_resolution == before


def test_prepare_target_resizes_image_and_mask() -> None:
    mask = torch.ones(1, 1, 64, 64)
    mask[..., :16] = 0
    item = InversionItem("a.png", torch.rand(1, 3, 64, 64) * 2 - 1, yaw_pitch_camera(0.0, 0.0), mask)
    image, m = prepare_target(item, 128)
    assert image.shape == (1, 3, 128, 128) and m is not None and m.shape == (1, 1, 128, 128)
    assert set(m.unique().tolist()) == {0.0, 1.0} and m[..., :32].sum() == 0
    same, none = prepare_target(InversionItem("b.png", item.image, item.camera), 64)
    assert torch.equal(same, item.image) and none is None
    with pytest.raises(ValueError, match="expected a"):
        prepare_target(InversionItem("c.png", torch.rand(3, 64, 64), item.camera), 64)


def test_project_fits_without_touching_the_generator(G, target, perceptual) -> None:
    image, c = target
    state = {k: v.clone() for k, v in G.state_dict().items()}
    stats = latent_stats(G, c)
    records: list[tuple[int, dict[str, float]]] = []
    config = ProjectorConfig(steps=6, lr=0.05, mse_weight=1.0)
    torch.manual_seed(0)
    proj = project(G, image, c, config, stats, space="w", perceptual=perceptual,
                   callback=lambda step, terms: records.append((step, terms)))
    assert [s for s, _ in records] == list(range(6))
    assert [r["lr"] for _, r in records] == [ramp_lr(s, 6, 0.05) for s in range(6)]
    assert records[0][1]["noise_scale"] == pytest.approx(stats.w_std * 0.05)
    assert records[-1][1]["mse"] < records[0][1]["mse"]
    assert proj.ws.shape == (1, G.num_ws, G.w_dim) and torch.equal(proj.ws[:, 0], proj.ws[:, -1])
    assert sorted(proj.noise) == sorted(backbone_noise_names(G))
    for buf in proj.noise.values():  # renormalised after every step
        assert abs(float(buf.mean())) < 1e-4 and float(buf.square().mean()) == pytest.approx(1.0, rel=1e-4)
    assert all(torch.equal(v, state[k]) for k, v in G.state_dict().items())
    assert all(p.grad is None for p in G.parameters())  # no gradient flowed into the generator


def test_adam_init_lr_never_takes_effect_under_the_ramp(G, target, perceptual) -> None:
    image, c = target
    stats = latent_stats(G, c)
    results = []
    for init in (5e-3, 1.0):
        torch.manual_seed(0)
        config = ProjectorConfig(steps=3, adam_init_lr=init, optimize_noise=False)
        results.append(project(G, image, c, config, stats, space="w+", perceptual=perceptual).ws)
    assert torch.equal(results[0], results[1])
    torch.manual_seed(0)
    constant = ProjectorConfig(steps=3, lr=0.02, lr_schedule="constant", optimize_noise=False,
                               lpips_weight=0.0, mse_weight=1.0)
    records: list[dict[str, float]] = []
    proj = project(G, image, c, constant, stats, space="w+", callback=lambda s, r: records.append(r))
    assert [r["lr"] for r in records] == [0.02] * 3 and not proj.noise
    assert not torch.equal(proj.ws[:, 0], proj.ws[:, -1])  # W+: layers move independently


def test_project_raises_on_a_non_finite_loss(G, target, perceptual) -> None:
    image, c = target
    bad = image.clone()
    bad[..., 0, 0] = float("nan")
    config = ProjectorConfig(steps=2, lpips_weight=0.0, mse_weight=1.0, optimize_noise=False)
    with pytest.raises(NonFiniteLossError, match="at step 0"):
        project(G, bad, c, config, latent_stats(G, c), space="w")
    with pytest.raises(ValueError, match="perceptual"):
        project(G, image, c, ProjectorConfig(steps=1), latent_stats(G, c), space="w")
    with pytest.raises(ValueError, match="space"):
        project(G, image, c, config, latent_stats(G, c), space="z")  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "data", "match"), [
    ("w_opt", {"lr_rampup_length": 0.0}, "lr_rampup_length"),
    ("wplus_opt", {"noise_ramp_length": 0.0}, "noise_ramp_length"),
    ("pti", {"pivot": {"lr_rampdown_length": 0.0}}, "pivot: lr_rampdown_length must be > 0"),
])
def test_zero_ramp_lengths_are_refused_before_any_image(name: str, data: dict, match: str) -> None:
    """A zero ramp would divide by zero mid-run; the config refuses it with the field's name."""
    from warpinv.config import ConfigError, from_dict
    from warpinv.methods import METHODS

    with pytest.raises(ConfigError, match=match):
        from_dict(METHODS[name].Config, data)


def test_one_projector_config_for_every_method() -> None:
    """w_opt and wplus_opt take the projector's fields flat (inherited), PTI nests them as ``pivot``; the
    YAML round trip and ``describe`` keep the nesting."""
    import dataclasses

    import yaml

    from warpinv.config import describe, from_dict, to_dict
    from warpinv.methods import METHODS

    names = [f.name for f in dataclasses.fields(ProjectorConfig)]
    for method in ("w_opt", "wplus_opt"):
        cls = METHODS[method].Config
        assert issubclass(cls, ProjectorConfig) and "space" not in {f.name for f in dataclasses.fields(cls)}
        assert from_dict(cls, {"steps": 16}).steps == 16
    pti = METHODS["pti"].Config
    cfg = from_dict(pti, {"pivot": {"steps": 5, "space": "w+"}, "tuning": {"lr": 1e-3}})
    assert isinstance(cfg.pivot, ProjectorConfig)
    assert (cfg.pivot.steps, cfg.pivot.space, cfg.tuning.lr) == (5, "w+", 1e-3)
    assert from_dict(pti, yaml.safe_load(yaml.safe_dump(to_dict(cfg)))) == cfg
    keys = {key: help_ for key, _, help_ in describe(pti)}
    assert {f"pivot.{n}" for n in names} | {"pivot.space", "tuning.lr"} <= set(keys)
    assert all(keys[f"pivot.{n}"] for n in names) and not any(k.startswith("pivot_") for k in keys)


def test_w_avg_can_be_conditioned_on_the_input_pose(G) -> None:
    """Issue 11: the frontal conditioning (HFGI3D) and the input-pose one (EG3D W-projector ports)."""
    from warpinv.methods.projector import frontal_camera, latent_stats

    side = yaw_pitch_camera(0.6, 0.2, lookat=tuple(G.rendering_kwargs["avg_camera_pivot"]),
                            radius=G.rendering_kwargs["avg_camera_radius"])
    frontal = latent_stats(G, side, 50, conditioning="frontal")
    given = latent_stats(G, side, 50, conditioning="input")
    assert torch.equal(given.conditioning, side) and torch.equal(frontal.conditioning, frontal_camera(G, side))
    assert not torch.allclose(frontal.w_avg, given.w_avg)
    front = frontal_camera(G, side)
    assert torch.allclose(latent_stats(G, front, 50, conditioning="input").w_avg,
                          latent_stats(G, front, 50).w_avg, atol=1e-6)
