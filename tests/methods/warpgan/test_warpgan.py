"""The WarpGAN method on the tiny generator: inversion, rendering, checkpoints, released files and training steps.

No official numbers here: the networks' and the warp's golden tests are ``test_*_warpgan_golden.py`` and
``tests/geometry/test_forward_warp_warpgan_golden.py``.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from warpinv.backbone import build_tiny
from warpinv.cameras import yaw_pitch_camera
from warpinv.config import load_yaml
from warpinv.methods import Inversion, InversionItem, build_method
from warpinv.methods.warpgan import WarpGAN, WarpGANInversion
from warpinv.methods.warpgan.method import sampled_latent_avg, view_seed

PRESET = Path(__file__).resolve().parents[3] / "experiments" / "methods" / "warpgan_tiny.yaml"


def tiny_config(**changes: Any) -> dict[str, Any]:
    """The shipped tiny architecture with untrained weights (no checkpoint), ``w_avg`` as the average latent."""
    cfg = load_yaml(PRESET)["config"]
    cfg.pop("checkpoint")
    cfg.update({"allow_untrained": True, "allow_random_lpips": True}, **changes)
    return cfg


@pytest.fixture(scope="module")
def G() -> torch.nn.Module:
    return build_tiny()


@pytest.fixture(scope="module")
def method(G: torch.nn.Module) -> WarpGAN:
    torch.manual_seed(0)
    return build_method("warpgan", tiny_config(), G).eval()


def item(seed: int = 0, yaw: float = 0.1) -> InversionItem:
    g = torch.Generator().manual_seed(seed)
    return InversionItem(f"img{seed}.png", torch.rand(1, 3, 128, 128, generator=g) * 2 - 1, yaw_pitch_camera(yaw, 0.0))


def test_inversion_stores_the_input_and_its_depth(method: WarpGAN) -> None:
    with torch.no_grad():
        inv = method.invert_batch([item(0), item(1)])[1]
    assert isinstance(inv, WarpGANInversion) and inv.kind == "warpgan"
    assert inv.ws.shape == (1, 14, 512)
    assert inv.tensors["image"].shape == (1, 3, 128, 128) and inv.tensors["depth"].shape == (1, 1, 32, 32)
    torch.testing.assert_close(inv.tensors["image"], item(1).image)


def test_inputs_are_resized_to_the_generator(method: WarpGAN) -> None:
    big = InversionItem("big.png", torch.zeros(1, 3, 256, 256), yaw_pitch_camera(0.0, 0.0))
    with torch.no_grad():
        inv = method.invert_batch([big])[0]
    assert inv.tensors["image"].shape == (1, 3, 128, 128)


def test_renders_inpaint_and_are_reproducible_per_camera(method: WarpGAN) -> None:
    with torch.no_grad():
        inv = method.invert_batch([item()])[0]
    cams = torch.cat([yaw_pitch_camera(0.1, 0.0), yaw_pitch_camera(-0.3, 0.1), yaw_pitch_camera(0.4, -0.1)])
    out = method.render(inv, cams)
    assert out["image"].shape == (3, 3, 128, 128) and out["image_depth"].shape == (3, 1, 32, 32)
    assert out["image"].min() >= -1 and out["image"].max() <= 1
    plain = method.G.synthesis(inv.ws.expand(3, -1, -1), cams, noise_mode="const", deterministic=True)
    assert not torch.allclose(out["image"], plain["image"], atol=1e-3)  # the image is SVINet's, not the render
    # the geometry is the generator's (planes made once vs per call: float rounding only)
    torch.testing.assert_close(out["image_depth"], plain["image_depth"], atol=1e-4, rtol=0)
    alone = method.render(inv, cams[1:2])  # the same camera in another batch: the same random blur
    torch.testing.assert_close(alone["image"], out["image"][1:2], atol=1e-5, rtol=0)


def test_view_sigmas_are_released_draws_or_fixed(method: WarpGAN) -> None:
    cams = torch.cat([yaw_pitch_camera(0.1, 0.0), yaw_pitch_camera(-0.3, 0.1)])
    sigmas = method.view_sigmas(5, cams)
    assert sigmas.shape == (2, 2) and bool(((sigmas >= 0.1) & (sigmas <= 2.0)).all())
    assert view_seed(5, cams[0]) != view_seed(5, cams[1])
    fixed = copy.deepcopy(method)
    fixed.config.blur_sigma = 1.5
    assert bool((fixed.view_sigmas(5, cams) == 1.5).all())


def test_encoder_only_renders_the_generator(G: torch.nn.Module) -> None:
    torch.manual_seed(0)
    m = build_method("warpgan", tiny_config(inpaint=False), G).eval()
    with torch.no_grad():
        inv = m.invert_batch([item()])[0]
    cams = yaw_pitch_camera(0.3, 0.0)
    plain = G.synthesis(inv.ws, cams, noise_mode="const", deterministic=True)
    torch.testing.assert_close(m.render(inv, cams)["image"], plain["image"], atol=1e-5, rtol=0)


def test_condition_off_never_warps_the_mirror(G: torch.nn.Module, monkeypatch: pytest.MonkeyPatch) -> None:
    import warpinv.methods.warpgan.method as module

    torch.manual_seed(0)
    m = build_method("warpgan", tiny_config(svinet={"ngf": 8, "n_blocks": 2, "use_condition": False}), G).eval()
    with torch.no_grad():
        inv = m.invert_batch([item()])[0]

    def refuse(*args: Any) -> None:
        raise AssertionError("the mirror branch ran")

    monkeypatch.setattr(module, "mirror_inputs", refuse)
    assert m.render(inv, yaw_pitch_camera(0.3, 0.0))["image"].shape == (1, 3, 128, 128)


def test_inversion_file_round_trip(method: WarpGAN, tmp_path: Path) -> None:
    with torch.no_grad():
        inv = method.invert_batch([item()])[0]
    inv.save(tmp_path / "inv.safetensors")
    back = Inversion.load(tmp_path / "inv.safetensors")
    assert isinstance(back, WarpGANInversion) and back.info["seed"] == inv.info["seed"]
    cams = yaw_pitch_camera(-0.2, 0.05)
    torch.testing.assert_close(method.render(back, cams)["image"], method.render(inv, cams)["image"])


def test_checkpoint_round_trip_excludes_the_discriminator(method: WarpGAN, G: torch.nn.Module,
                                                          tmp_path: Path) -> None:
    path = tmp_path / "warpgan.safetensors"
    method.save_checkpoint(path)
    state = method.method_state_dict()
    assert any(k.startswith("encoder.") for k in state) and any(k.startswith("svinet.") for k in state)
    assert "latent_avg" in state and not any(k.startswith("discriminator.") for k in state)
    torch.manual_seed(1)
    other = build_method("warpgan", tiny_config(checkpoint=str(path)), G)
    for k, v in other.method_state_dict().items():
        torch.testing.assert_close(v, state[k], atol=0, rtol=0)


def test_sampled_latent_avg_is_the_released_recipe(G: torch.nn.Module) -> None:
    z = torch.from_numpy(np.random.RandomState(123).randn(6, G.z_dim)).float()
    ws = G.mapping(z, yaw_pitch_camera(0.0, 0.0).expand(6, -1))
    torch.testing.assert_close(sampled_latent_avg(G, 6, chunk=4), ws[:, 0].mean(0, keepdim=True), atol=1e-6, rtol=0)


def test_released_files_load_without_running_code(G: torch.nn.Module, tmp_path: Path) -> None:
    torch.manual_seed(3)
    source = build_method("warpgan", tiny_config(), G)
    opts = {"lr": 1e-3, "nested": [1, 2]}
    torch.save({"psp_state_dict": source.encoder.state_dict(), "opts": opts, "step": 7}, tmp_path / "gan_encoder.pt")
    torch.save({"inpaintor_state_dict": source.svinet.state_dict(), "opts": opts,
                "discriminator_state_dict": source.discriminator.state_dict()}, tmp_path / "inpaintor.pt")
    torch.save(source.latent_avg.clone() + 1, tmp_path / "latent_avg.pt")
    torch.manual_seed(4)
    loaded = build_method("warpgan", tiny_config(encoder_checkpoint=str(tmp_path / "gan_encoder.pt"),
                                                 svinet_checkpoint=str(tmp_path / "inpaintor.pt"),
                                                 latent_avg=str(tmp_path / "latent_avg.pt")), G)
    for name in ("encoder", "svinet", "discriminator"):
        for (k, a), b in zip(getattr(source, name).state_dict().items(), getattr(loaded, name).state_dict().values()):
            torch.testing.assert_close(a, b, atol=0, rtol=0, msg=k)
    torch.testing.assert_close(loaded.latent_avg, source.latent_avg + 1)


def test_a_wrong_released_file_is_refused(G: torch.nn.Module, tmp_path: Path) -> None:
    torch.save({"psp_state_dict": {"nonsense": torch.zeros(2)}}, tmp_path / "bad.pt")
    with pytest.raises(Exception, match="nonsense|missing|unexpected"):
        build_method("warpgan", tiny_config(encoder_checkpoint=str(tmp_path / "bad.pt")), G)


def test_unknown_config_keys_are_errors(G: torch.nn.Module) -> None:
    with pytest.raises(Exception, match="no_such_key"):
        build_method("warpgan", tiny_config(no_such_key=1), G)
    with pytest.raises(ValueError, match="w_dim"):
        build_method("warpgan", tiny_config(svinet={"w_dim": 256}), G)
    with pytest.raises(ValueError, match="synthetic_branch or real_branch"):
        build_method("warpgan", tiny_config(synthetic_branch=False, real_branch=False), G)


# --- training -----------------------------------------------------------------------------------------------------


def proxy_batch(G: torch.nn.Module, n: int = 2) -> dict[str, Any]:
    from warpinv.training.proxy import ProxyConfig, draw_samples, render_proxy

    cfg = ProxyConfig(seed=0, novel_views=1, truncation_psi=0.7)
    draws = draw_samples(cfg, G.z_dim, list(range(n)))
    with torch.no_grad():
        rendered = render_proxy(G, draws["z"], draws["cameras"], draws["novel_cameras"], cfg.truncation_psi)
    return {"proxy": {**rendered, "cameras": draws["cameras"], "novel_cameras": draws["novel_cameras"]}}


class _Stepper:
    """Runs the method's stage losses and one optimiser step outside a Trainer (``global_step`` is 0 there)."""

    def __init__(self, m: WarpGAN) -> None:
        self.m = m
        self.opt = m.configure_optimizers()

    def encoder_loss(self, batch: dict[str, Any]) -> torch.Tensor:
        return sum(self.m.encoder_stage_losses(batch).values())

    def svinet_l1(self, batch: dict[str, Any]) -> torch.Tensor:
        torch.manual_seed(0)  # the same random blur sigmas before and after the step
        losses, _, _ = self.m.svinet_stage_losses(batch)
        return sum(v for k, v in losses.items() if k.endswith("_l1"))

    def step(self, loss: torch.Tensor) -> None:
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()


def test_one_encoder_step_lowers_its_loss(G: torch.nn.Module) -> None:
    torch.manual_seed(0)
    m = build_method("warpgan", tiny_config(svinet_start_step=10, encoder_lr=1e-4,
                                            encoder_losses={"latent": 1.0, "mse": 1.0, "lpips": 0.0,
                                                            "identity": 0.0}), G).eval()  # eval: no dropout noise
    batch, run = proxy_batch(G), _Stepper(m)
    assert m.stage(0) == "encoder" and m.stage(10) == "svinet"
    before = run.encoder_loss(batch)
    run.step(before)
    assert float(run.encoder_loss(batch)) < float(before)


def test_one_svinet_step_lowers_its_loss_and_leaves_the_encoder(G: torch.nn.Module) -> None:
    torch.manual_seed(0)
    m = build_method("warpgan", tiny_config(svinet_lr=1e-3, render_memo=8,
                                            svinet_losses={"perceptual": 0.0, "identity": 0.0}), G).train()
    batch, run = proxy_batch(G), _Stepper(m)
    encoder = {k: v.clone() for k, v in m.encoder.state_dict().items()}
    torch.manual_seed(0)
    losses, fakes, reals = m.svinet_stage_losses(batch)
    assert {"proxy_novel_l1", "proxy_back_l1", "proxy_novel_adversarial", "proxy_back_feature_matching",
            "proxy_novel_latent"} <= set(losses)
    before = run.svinet_l1(batch)
    total = sum(losses.values())
    run.opt.zero_grad(set_to_none=True)
    total.backward()
    for p in m.encoder.parameters():
        p.grad = None
    d = m.discriminator_losses(reals, fakes)
    assert set(d) == {"discriminator", "r1"} and all(torch.isfinite(v) for v in d.values())
    run.opt.step()
    assert float(run.svinet_l1(batch)) < float(before)
    for k, v in m.encoder.state_dict().items():
        torch.testing.assert_close(v, encoder[k], atol=0, rtol=0, msg=k)
    assert len(m._memo) == 2  # the two samples' frozen renders, reused by the second call


def test_render_memo_is_exact(G: torch.nn.Module) -> None:
    torch.manual_seed(0)
    m = build_method("warpgan", tiny_config(render_memo=4), G).train()
    batch = proxy_batch(G)["proxy"]
    c_novel = batch["novel_cameras"][:, 0]
    first = m.frozen_renders(batch["images"], batch["cameras"], c_novel)
    again = m.frozen_renders(batch["images"], batch["cameras"], c_novel)
    m.config.render_memo = 0
    m._memo.clear()
    fresh = m.frozen_renders(batch["images"], batch["cameras"], c_novel)
    m.config.render_memo = 1  # smaller than the batch: the oldest entry goes, the batch is still whole
    small = m.frozen_renders(batch["images"], batch["cameras"], c_novel)
    assert len(m._memo) == 1
    for a, b, c, d in zip(first, again, fresh, small):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
        torch.testing.assert_close(a, c, atol=0, rtol=0)
        torch.testing.assert_close(a, d, atol=0, rtol=0)


@pytest.mark.parametrize("from_encoder", [False, True])
def test_multi_view_pti_tunes_the_generator_on_warpgan_teachers(G: torch.nn.Module, from_encoder: bool) -> None:
    from warpinv.methods.rendering import LatentRenderer

    torch.manual_seed(0)
    cheap = {"lpips_weight": 0.0, "deterministic_render": True}
    m = build_method("warpgan", tiny_config(pti={
        "enabled": True, "pivot_from_encoder": from_encoder, "num_views": 3,
        "pivot": {"steps": 2, "noise_factor": 0.0, "optimize_noise": False, "mse_weight": 1.0, **cheap},
        "tuning": {"steps": 3, "lr": 1e-3, **cheap}}), G).eval()
    assert m.required_weights(m.config) == []  # no LPIPS in this budget
    with torch.no_grad():  # as the harness calls encoders; the stage enables gradients itself
        inv = m.invert_batch([item()])[0]
    assert isinstance(inv, WarpGANInversion) and inv.generator_delta and inv.info["multi_view_pti"]
    assert inv.info["tuning_steps_run"] == 3 and inv.info["teacher_views"] == 3
    assert inv.info["pivot"] == ("encoder" if from_encoder else "projected (w)")
    assert isinstance(m.renderer(inv), LatentRenderer)  # the tuned generator renders, as PTI's output
    again = m.invert_batch([item()])[0]  # seeded by the image: the same tuning
    for k, v in inv.generator_delta.items():
        torch.testing.assert_close(v, again.generator_delta[k], atol=0, rtol=0)
    assert any(not torch.equal(v, G.state_dict()[k]) for k, v in inv.generator_delta.items())
