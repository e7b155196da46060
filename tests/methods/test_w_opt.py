"""``w_opt``: fits a tiny render, respects masks, fails fast without LPIPS weights, strict config.

Also holds the small helpers the other method tests import (renders of the tiny generator, PSNR).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from warpinv.backbone import EG3DGenerator, build_tiny
from warpinv.cameras import yaw_pitch_camera
from warpinv.config import ConfigError, from_dict, load_yaml
from warpinv.methods import METHODS, Inversion, InversionItem, build_method
from warpinv.methods.projector import backbone_noise_names, latent_stats
from warpinv.methods.rendering import LatentRenderer, Renders
from warpinv.methods.w_opt import WOpt, WOptConfig
from warpinv.weights import MissingWeightsError

PRESETS = Path(__file__).resolve().parents[2] / "experiments" / "methods"
#: Small, fast settings shared by the method tests (a few steps; MSE added to the random-trunk LPIPS).
FAST: dict[str, Any] = {"allow_random_lpips": True, "mse_weight": 1.0, "lr": 0.05}


def tiny_render_item(G: EG3DGenerator, seed: int, yaw: float = 0.25, pitch: float = -0.1,
                     image_id: str | None = None) -> InversionItem:
    """A render of ``G`` like the synthetic benchmark set: truncation 0.7, deterministic, constant
    noise, clamped to [-1, 1] and quantised to 8 bits."""
    c = yaw_pitch_camera(yaw, pitch)
    with torch.no_grad():
        z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(seed))
        ws = G.mapping(z, c, truncation_psi=0.7)
        image = G.synthesis(ws, c, noise_mode="const", deterministic=True)["image"].clamp(-1, 1)
    image = torch.round((image + 1) * 127.5) / 127.5 - 1
    return InversionItem(image_id or f"tiny{seed}.png", image, c)


def render(G: EG3DGenerator, inversion: Inversion, cameras: torch.Tensor) -> Renders:
    """The evaluation's render of ``inversion`` (``G`` plus its tuned tensors, deterministic, constant
    noise) at ``cameras (V, 25)``."""
    return LatentRenderer(G, inversion)(cameras)


def psnr(G: EG3DGenerator, inversion: Inversion, item: InversionItem) -> float:
    """Input-view PSNR (dB) of a deterministic render, on [0, 1] with the prediction clamped."""
    image = render(G, inversion, item.camera)["image"].clamp(-1, 1)
    mse = float(((image - item.image) / 2).square().mean())
    return 10 * math.log10(1 / mse)


def start_psnr(G: EG3DGenerator, item: InversionItem) -> float:
    """PSNR of the common start of every method: ``w_avg`` (frontal conditioning) on every layer."""
    w_avg = latent_stats(G, item.camera).w_avg
    return psnr(G, Inversion(item.image_id, "start", w_avg.repeat(1, G.num_ws, 1), item.camera), item)


@pytest.fixture(scope="module")
def G() -> EG3DGenerator:
    return build_tiny()


@pytest.fixture(scope="module")
def item(G) -> InversionItem:
    return tiny_render_item(G, seed=11)


def test_registered_and_built_from_a_dict(G) -> None:
    assert METHODS["w_opt"] is WOpt
    m = build_method("w_opt", {"steps": 3, "allow_random_lpips": True}, G)
    assert isinstance(m.config, WOptConfig) and m.config.steps == 3
    assert m.trainer_arguments["inference_mode"] is False


def test_fits_a_tiny_render_better_than_its_start(G, item) -> None:
    m = build_method("w_opt", {**FAST, "steps": 12}, G)
    torch.manual_seed(0)
    inv = m.invert(item)
    assert inv.ws.shape == (1, G.num_ws, G.w_dim) and torch.equal(inv.ws[:, 0], inv.ws[:, -1])
    assert psnr(G, inv, item) > start_psnr(G, item) + 0.5
    assert inv.generator_delta == {} and inv.method == "w_opt" and torch.equal(inv.camera, item.camera)
    assert inv.info["lpips_random_weights"] is True and inv.info["steps"] == 12


def test_missing_lpips_weights_fail_when_the_method_is_built(G) -> None:
    with pytest.raises(MissingWeightsError):
        build_method("w_opt", {}, G)
    m = build_method("w_opt", {"lpips_weight": 0.0, "mse_weight": 1.0}, G)  # no LPIPS, no weights needed
    assert m.perceptual is None


def test_padded_pixels_do_not_matter(G, item) -> None:
    # Pixel losses ignore padding exactly. (LPIPS ignores the prediction there too, but its features near
    # the border see the target's padding as context, as the LPIPS metric does; see losses.py.)
    mask = torch.ones(1, 1, *item.image.shape[-2:])
    mask[..., :, :40] = 0
    other = item.image.clone()
    other[..., :, :40] = torch.rand_like(other[..., :, :40]) * 2 - 1
    m = build_method("w_opt", {**FAST, "steps": 3, "lpips_weight": 0.0}, G)
    results = []
    for image in (item.image, other):
        torch.manual_seed(0)
        results.append(m.invert(InversionItem(item.image_id, image, item.camera, mask)).ws)
    assert torch.equal(results[0], results[1])
    torch.manual_seed(0)
    assert not torch.equal(m.invert(InversionItem(item.image_id, other, item.camera)).ws, results[0])


def test_returned_noise_reproduces_the_optimised_render(G, item) -> None:
    m = build_method("w_opt", {**FAST, "steps": 2, "return_noise": True}, G)
    torch.manual_seed(0)
    inv = m.invert(item)
    assert sorted(inv.generator_delta) == sorted(backbone_noise_names(G)) and inv.info["noise_returned"]
    plain = render(G, Inversion(item.image_id, "w_opt", inv.ws, item.camera), item.camera)
    noisy = render(G, inv, item.camera)
    assert not torch.allclose(plain["image"], noisy["image"])


def test_runs_through_predict_step_with_the_image_seed(G, item) -> None:
    m = build_method("w_opt", {**FAST, "steps": 2}, G)
    batch = {"images": item.image, "cameras": item.camera, "image_ids": [item.image_id], "masks": None}
    with torch.no_grad():  # the harness predicts under no_grad; invert enables gradients itself
        first = m.predict_step(batch)
    second = m.predict_step(batch)
    assert first[0].ok and second[0].ok
    assert first[0].inversion.info["last_loss"] == second[0].inversion.info["last_loss"]


def test_config_is_strict_and_the_preset_matches_the_defaults() -> None:
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(WOptConfig, {"stepz": 3})
    with pytest.raises(ConfigError, match="steps must be > 0"):
        from_dict(WOptConfig, {"steps": 0})
    with pytest.raises(ConfigError):
        from_dict(WOptConfig, {"lpips_net": "squeeze"})
    assert from_dict(WOptConfig, load_yaml(PRESETS / "w_opt.yaml")) == WOptConfig()
