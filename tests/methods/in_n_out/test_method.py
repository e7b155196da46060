"""In-N-Out on the tiny generator: the composite render's limits, the three stages, removal, saving and loading.

The official pieces are checked against ``../shared/fixtures/in_n_out`` in the ``*_golden.py`` files here.
"""
from __future__ import annotations

import pytest
import torch

from warpinv.backbone import load_generator
from warpinv.cameras import yaw_pitch_camera
from warpinv.config import from_dict, load_yaml
from warpinv.methods import InversionItem, build_method
from warpinv.methods.base import Inversion
from warpinv.methods.in_n_out import InNOut, InNOutConfig, InNOutInversion
from warpinv.methods.in_n_out.composite import render_composite
from warpinv.methods.in_n_out.networks import OODField
from warpinv.methods.in_n_out.released import load_field, read_released
from warpinv.methods.in_n_out.views import CompositeViewRenderer

SMALL = {"allow_random_lpips": True, "plane_resolution": 16,
         "ind": {"steps": 2, "init_samples": 3, "init_metric": "mse", "lpips_weight": 0.0, "w_avg_samples": 50,
                 "deterministic_render": True},
         "ood": {"steps": 3, "raw_lpips_weight": 0.0, "deterministic_render": True},
         "sr": {"steps": 2, "lpips_weight": 0.0, "deterministic_render": True}}


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    return load_generator("tiny")


@pytest.fixture(scope="module")
def scene(generator) -> dict:
    """A tiny-generator face with a solid patch pasted on it, and the patch's mask."""
    camera = yaw_pitch_camera(0.1, 0.05)
    with torch.no_grad():
        ws = generator.mapping(torch.randn(1, generator.z_dim, generator=torch.Generator().manual_seed(1)), camera)
        clean = generator.synthesis(ws, camera, deterministic=True, noise_mode="const")["image"]
    size = clean.shape[-1]
    mask = torch.zeros(1, 1, size, size)
    mask[..., size // 4: size // 2, size // 3: 2 * size // 3] = 1
    occluded = torch.where(mask.bool(), torch.tensor([0.9, -0.9, 0.4]).view(1, 3, 1, 1), clean)
    return {"camera": camera, "clean": clean, "occluded": occluded, "mask": mask}


@pytest.fixture(scope="module")
def method(generator) -> InNOut:
    m = build_method("in_n_out", SMALL, generator)
    assert isinstance(m, InNOut)
    return m


@pytest.fixture(scope="module")
def inversion(method, scene) -> InNOutInversion:
    item = InversionItem("a.png", scene["occluded"], scene["camera"],
                         extras={"ood_mask": scene["mask"], "has_ood_mask": torch.tensor([True])})
    outcome = method.invert_item(item)
    assert outcome.ok, outcome.error
    assert isinstance(outcome.inversion, InNOutInversion)
    return outcome.inversion


def test_defaults_are_the_released_recipe() -> None:
    cfg = InNOutConfig()
    assert (cfg.ind.steps, cfg.ind.lr, cfg.ind.init_samples, cfg.ind.lpips_net, cfg.ind.delta_weight) == (
        500, 5e-3, 500, "vgg", 1e-3)
    assert (cfg.ind.noise_factor, cfg.ind.optimize_noise, cfg.ind.mse_weight) == (0.0, False, 1.0)
    assert (cfg.ood.steps, cfg.ood.lr, cfg.ood.ws_lr_scale, cfg.ood.entropy_skewness) == (10000, 5e-3, 0.01, 2.0)
    assert (cfg.ood.sparsity_weight, cfg.ood.depth_weight, cfg.ood.lpips_net) == (0.0, 0.0, "vgg")
    assert (cfg.sr.steps, cfg.sr.lr) == (100, 1e-3)
    assert (cfg.pairing, cfg.transmittance, cfg.plane_reduction, cfg.removal_scale, cfg.removal_clamp) == (
        "official", "product", "mean", 1.2, False)


def test_the_preset_yaml_is_the_config_default() -> None:
    from tests.helpers import PROJECT_ROOT

    loaded = from_dict(InNOutConfig, load_yaml(PROJECT_ROOT / "experiments" / "methods" / "in_n_out.yaml"))
    assert loaded == InNOutConfig()


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="pairing"):
        InNOutConfig(pairing="sorted")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="removal_dilation"):
        InNOutConfig(removal_dilation=4)
    with pytest.raises(ValueError, match="delta_norm"):
        from warpinv.methods.in_n_out import InDConfig
        InDConfig(delta_norm="l1")  # type: ignore[arg-type]


@pytest.mark.parametrize("pairing", ["official", "matched"])
def test_composite_with_zero_blend_and_an_empty_field_is_the_backbone_render(generator, scene, pairing) -> None:
    """Acceptance: b = 0 everywhere and an empty OOD field give EG3D's own render (to 1e-5)."""
    torch.manual_seed(3)
    field = OODField(resolution=8)
    with torch.no_grad():
        field.decoder.net[2].bias[0] = -100.0  # raw sigma -> softplus(-101): no density
        ws = generator.mapping(torch.randn(1, generator.z_dim), scene["camera"])
        own = generator.synthesis(ws, scene["camera"], deterministic=True, noise_mode="const")
        out = render_composite(generator, ws, field, torch.randn(1, 32), scene["camera"], pairing=pairing,
                               blend_edit=torch.zeros_like, deterministic=True,
                               sr_noise_mode=generator.rendering_kwargs["superresolution_noise_mode"])
    torch.testing.assert_close(out.image_raw, own["image_raw"].clamp(-1, 1), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.image_depth, own["image_depth"], atol=1e-5, rtol=0)
    # The released composite clamps the raw image before the SR (EG3D does not): the same SR of the clamped raw.
    with torch.no_grad():
        own_sr = generator.superresolve(own["image_raw"].clamp(-1, 1), own["feature_image"], ws, noise_mode="const")
    torch.testing.assert_close(out.image, own_sr.clamp(-1, 1), atol=1e-5, rtol=0)
    assert float(out.blend_map.abs().max()) == 0.0


def test_blend_one_renders_the_ood_field_alone(generator, scene) -> None:
    torch.manual_seed(4)
    field = OODField(resolution=8)
    with torch.no_grad():
        ws = generator.mapping(torch.randn(1, generator.z_dim), scene["camera"])
        out = render_composite(generator, ws, field, torch.randn(1, 32), scene["camera"], pairing="matched",
                               blend_edit=torch.ones_like, deterministic=True, superresolve=False)
    torch.testing.assert_close(out.image_raw, out.ood_raw, atol=1e-5, rtol=0)


def test_invert_fits_all_three_stages(method, inversion, scene) -> None:
    info = inversion.info
    assert (info["ind_steps"], info["ood_steps"], info["sr_steps"]) == (2, 3, 2)
    assert info["ood_mask_used"] is True and "ood_mse" in info["ood_last"]
    assert set(inversion.generator_delta) <= {n for n, _ in method.G.named_parameters() if n.startswith("superres")}
    assert inversion.generator_delta  # the SR stage moved the SR
    assert inversion.tensors["ood.triplanes"].shape == (1, 3, 32, 16, 16)
    assert inversion.tensors["phi"].shape == (1, 32)
    assert inversion.tensors["ood_mask"].shape == (1, 1, method.nrr, method.nrr)


def test_a_missing_mask_uses_the_mask_free_terms(method, scene) -> None:
    outcome = method.invert_item(InversionItem("b.png", scene["occluded"], scene["camera"]))
    assert outcome.ok, outcome.error
    last = outcome.inversion.info["ood_last"]
    assert {"w_avg", "delta"} <= set(last) and "ood_mse" not in last
    assert "ood_mask" not in outcome.inversion.tensors


def test_renderer_outputs_and_removal(method, inversion, scene) -> None:
    renderer = method.renderer(inversion)
    assert isinstance(renderer, CompositeViewRenderer)
    cameras = torch.cat([scene["camera"], yaw_pitch_camera(-0.3, 0.0)])
    out = renderer(cameras)
    assert out["image"].shape == (2, 3, 128, 128) and out["image_raw"].shape == (2, 3, 32, 32)
    blend = renderer.blend_map(cameras)
    assert blend.shape == (2, 1, 32, 32) and 0 <= float(blend.min()) and float(blend.max()) <= 1
    removed = renderer.without_ood(cameras)
    assert not torch.allclose(removed["image_raw"][:1], out["image_raw"][:1])
    # Away from the input view removal sets b = 0: the InD render of the latent with the tuned SR.
    with torch.no_grad():
        from warpinv.methods.rendering import substituted_tensors
        with substituted_tensors(method.G, inversion.generator_delta):
            own = method.G.synthesis(inversion.ws, cameras[1:], deterministic=True, noise_mode="const")
    torch.testing.assert_close(removed["image_raw"][1:], own["image_raw"].clamp(-1, 1), atol=1e-5, rtol=0)


def test_the_random_start_does_not_depend_on_its_batch(generator, scene) -> None:
    """``ind.init_batch`` only sets how many latents are rendered per call (the README's memory advice): the same
    latents are drawn and the same one is chosen."""
    from warpinv.methods.in_n_out.config import InDConfig
    from warpinv.methods.in_n_out.stages import random_start

    starts = [random_start(generator, scene["occluded"], scene["camera"],
                           InDConfig(init_samples=7, init_batch=batch, init_metric="mse"), None,
                           torch.Generator().manual_seed(3)) for batch in (7, 3, 1)]
    for start in starts[1:]:
        torch.testing.assert_close(start, starts[0], rtol=1e-5, atol=1e-5)


def test_the_method_never_changes_the_generator(generator) -> None:
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    method = build_method("in_n_out", SMALL, generator)
    camera = yaw_pitch_camera(0.0, 0.0)
    image = torch.rand(1, 3, generator.img_resolution, generator.img_resolution) * 2 - 1
    assert method.invert_item(InversionItem("c.png", image, camera)).ok
    after = generator.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_save_and_load_round_trip(method, inversion, scene, tmp_path) -> None:
    path = tmp_path / "a.safetensors"
    inversion.save(path)
    loaded = Inversion.load(path)
    assert isinstance(loaded, InNOutInversion)
    a = method.renderer(inversion)(scene["camera"])["image"]
    b = method.renderer(loaded)(scene["camera"])["image"]
    torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_released_layout_round_trip(method, inversion, scene, tmp_path) -> None:
    path = inversion.save_released(tmp_path / "triplanes.pt", method.G, method.config)
    released = read_released(path, frame=0)
    torch.testing.assert_close(released.ws, inversion.ws, atol=0, rtol=0)
    field = load_field(released)
    for key, value in field.state_dict().items():
        torch.testing.assert_close(value, inversion.tensors[f"ood.{key}"], atol=0, rtol=0)
    tuned = {k: v for k, v in released.generator_state.items() if k in inversion.generator_delta}
    assert tuned.keys() == inversion.generator_delta.keys()
    assert all(torch.equal(tuned[k], inversion.generator_delta[k]) for k in tuned)


def test_storage_estimate_covers_what_is_saved(method, inversion) -> None:
    estimate = InNOut.inversion_bytes(method.config, method.G)
    assert estimate >= inversion.storage_bytes() * 0.99


def test_a_released_checkpoint_loads_into_the_method(method, inversion, scene, tmp_path) -> None:
    path = inversion.save_released(tmp_path / "triplanes.pt", method.G, method.config)
    loaded = InNOutInversion.from_released(path, method.G, scene["camera"])
    assert set(loaded.generator_delta) == set(inversion.generator_delta)
    a = method.renderer(inversion)(scene["camera"])["image"]
    b = method.renderer(loaded)(scene["camera"])["image"]
    torch.testing.assert_close(a, b, atol=0, rtol=0)
