"""``pti``: pivot + tuning on the tiny generator, early stop, generator safety, delta, locality, presets."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

from tests.methods.test_w_opt import PRESETS, psnr, start_psnr, tiny_render_item
from warpinv.backbone import EG3DGenerator, build_tiny
from warpinv.config import ConfigError, from_dict, load_yaml
from warpinv.methods import METHODS, Inversion, InversionItem, build_method
from warpinv.methods.projector import latent_stats, prepare_target, synthesize
from warpinv.methods.pti import PTI, PTIConfig, changed_parameters
from warpinv.weights import MissingWeightsError

#: A small budget: a short pivot with MSE, a few tuning steps at a raised lr, no early stop.
FAST: dict[str, Any] = {"allow_random_lpips": True, "pivot_steps": 4, "pivot_mse_weight": 1.0,
                        "tuning_steps": 10, "tuning_lr": 1e-3, "lpips_threshold": None}


class ScriptedLPIPS(nn.Module):
    """Stands in for the tuning LPIPS: returns the next scripted value (with a gradient path)."""

    random_weights = True

    def __init__(self, values: list[float]) -> None:
        super().__init__()
        self.values: Iterator[float] = iter(values)
        self.calls = 0

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        self.calls += 1
        return pred.mean().reshape(1) * 0 + next(self.values)


@pytest.fixture(scope="module")
def G() -> EG3DGenerator:
    return build_tiny()


@pytest.fixture(scope="module")
def item(G) -> InversionItem:
    return tiny_render_item(G, seed=31, yaw=-0.2, pitch=0.05)


@pytest.fixture(scope="module")
def fitted(G, item) -> dict[str, Any]:
    """One PTI run, with the base generator's state before it."""
    before = {k: v.clone() for k, v in G.state_dict().items()}
    m = build_method("pti", FAST, G)
    tuning: list[dict[str, float]] = []
    m.tuning_callback = lambda step, terms: tuning.append(terms)
    torch.manual_seed(0)
    inv = m.invert(item)
    return {"method": m, "inversion": inv, "before": before, "tuning": tuning}


def test_registered_with_the_official_defaults() -> None:
    assert METHODS["pti"] is PTI
    cfg = PTIConfig()
    assert (cfg.pivot_space, cfg.pivot_steps, cfg.pivot_lr, cfg.pivot_adam_init_lr) == ("w", 450, 0.01, 5e-3)
    assert (cfg.w_avg_samples, cfg.w_avg_seed, cfg.pivot_lpips_net, cfg.pivot_noise_reg_weight) == (600, 123, "vgg", 1e5)
    assert (cfg.tuning_steps, cfg.tuning_lr, cfg.tuning_lpips_net, cfg.lpips_threshold) == (350, 3e-4, "alex", 0.06)
    assert (cfg.locality_regularization, cfg.locality_alpha, cfg.locality_psi) == (False, 30.0, 0.5)


def test_tuning_improves_on_the_pivot_and_the_start(G, item, fitted) -> None:
    inv: Inversion = fitted["inversion"]
    pivot_only = Inversion(item.image_id, "pivot", inv.ws, item.camera)
    tuned, pivot = psnr(G, inv, item), psnr(G, pivot_only, item)
    assert pivot > start_psnr(G, item)
    assert tuned > pivot + 2.0
    info = inv.info
    assert info["pivot_steps"] == 4 and info["tuning_steps_run"] == 10 and info["early_stopped"] is False
    assert info["lpips_random_weights"] is True and info["final_mse"] < fitted["tuning"][0]["mse"]
    assert fitted["tuning"][-1]["mse"] < fitted["tuning"][0]["mse"]


def test_base_generator_is_unchanged_and_the_delta_holds_parameters_only(G, fitted) -> None:
    before = fitted["before"]
    assert all(torch.equal(v, before[k]) for k, v in G.state_dict().items())
    delta = fitted["inversion"].generator_delta
    params = dict(G.named_parameters())
    assert delta and set(delta) <= set(params)
    assert any(k.startswith("backbone.synthesis.") for k in delta) and any(k.startswith("decoder.") for k in delta)
    assert not any(k.startswith("backbone.mapping.") for k in delta)  # no gradient reaches the mapping


def test_the_delta_reproduces_the_tuned_generator(G, item) -> None:
    m = build_method("pti", {**FAST, "tuning_steps": 3}, G)
    target, mask = prepare_target(item, G.img_resolution)
    stats = latent_stats(G, item.camera)
    ws = stats.w_avg.repeat(1, G.num_ws, 1)
    torch.manual_seed(0)
    tuned, info = m.tune(ws, target, mask, item.camera, stats)
    assert info["tuning_steps_run"] == 3
    inv = Inversion(item.image_id, "pti", ws, item.camera, generator_delta=changed_parameters(G, tuned))
    with torch.no_grad():
        direct = synthesize(tuned, ws, item.camera, deterministic=True)
        via_delta = inv.render(G, item.camera, deterministic=True)
        base = Inversion(item.image_id, "x", ws, item.camera).render(G, item.camera, deterministic=True)
    for key in ("image", "image_raw", "image_depth"):
        assert torch.allclose(direct[key], via_delta[key], atol=1e-5)
    assert not torch.allclose(direct["image"], base["image"], atol=1e-3)


def test_early_stop_is_checked_before_the_backward_pass(G, item) -> None:
    m = build_method("pti", {**FAST, "pivot_steps": 1, "tuning_steps": 10, "lpips_threshold": 0.06}, G)
    m.tuning_perceptual = ScriptedLPIPS([0.5, 0.2, 0.06, 0.01])
    torch.manual_seed(0)
    inv = m.invert(item)
    assert inv.info["early_stopped"] is True and inv.info["tuning_steps_run"] == 2
    assert inv.info["final_lpips"] == pytest.approx(0.06) and m.tuning_perceptual.calls == 3
    never = build_method("pti", {**FAST, "pivot_steps": 1, "tuning_steps": 3}, G)  # lpips_threshold: null
    never.tuning_perceptual = ScriptedLPIPS([0.0] * 4)
    info = never.invert(item).info
    assert info["early_stopped"] is False and info["tuning_steps_run"] == 3 and never.tuning_perceptual.calls == 4


def test_early_stop_at_once_when_the_target_is_the_pivot_render(G, item) -> None:
    # One pivot step runs at lr 0 (the ramp starts at 0), so the pivot is w_avg exactly.
    stats = latent_stats(G, item.camera)
    with torch.no_grad():
        image = synthesize(G, stats.w_avg.repeat(1, G.num_ws, 1), item.camera, deterministic=True)["image"]
    m = build_method("pti", {**FAST, "pivot_steps": 1, "lpips_threshold": 0.06, "deterministic_render": True}, G)
    torch.manual_seed(0)
    inv = m.invert(InversionItem("pivot.png", image, item.camera))
    assert torch.equal(inv.ws, stats.w_avg.repeat(1, G.num_ws, 1))
    assert inv.info["early_stopped"] is True and inv.info["tuning_steps_run"] == 0
    assert inv.info["final_lpips"] < 1e-6 and inv.generator_delta == {}


def test_locality_regulariser_adds_to_the_loss_when_on(G, item) -> None:
    records: dict[bool, list[dict[str, float]]] = {}
    for on in (False, True):
        cfg = {**FAST, "pivot_steps": 1, "tuning_steps": 2, "deterministic_render": True,
               "locality_regularization": on}
        m = build_method("pti", cfg, G)
        m.tuning_callback = lambda step, terms, on=on: records.setdefault(on, []).append(terms)
        torch.manual_seed(0)
        m.invert(item)
    off, on_ = records[False], records[True]
    assert "locality" not in off[0] and on_[0]["locality"] == pytest.approx(0.0, abs=1e-6)  # G not tuned yet
    assert on_[1]["mse"] == pytest.approx(off[1]["mse"], rel=1e-5)  # the first step is the same
    assert on_[1]["locality"] > 0 and on_[1]["loss"] == pytest.approx(off[1]["loss"] + on_[1]["locality"], rel=1e-5)


def test_missing_lpips_weights_fail_when_the_method_is_built(G) -> None:
    with pytest.raises(MissingWeightsError):
        build_method("pti", {}, G)


def test_config_is_strict_and_the_presets_load() -> None:
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(PTIConfig, {"max_pti_steps": 3})
    with pytest.raises(ConfigError, match="pivot_space"):
        from_dict(PTIConfig, {"pivot_space": "z"})
    with pytest.raises(ConfigError, match="tuning_lr"):
        from_dict(PTIConfig, {"tuning_lr": -1.0})
    assert from_dict(PTIConfig, load_yaml(PRESETS / "pti.yaml")) == PTIConfig()
    eg3d = from_dict(PTIConfig, load_yaml(PRESETS / "pti_eg3d.yaml"))
    assert eg3d == PTIConfig(pivot_space="w+", pivot_steps=500, tuning_steps=500)


def test_an_unused_tuning_lpips_is_neither_computed_nor_reported(G, item) -> None:
    """Weight 0, no early stop, no locality: the trunk never runs and the outputs do not claim it was used."""
    cfg = {**FAST, "pivot_steps": 1, "tuning_steps": 2, "pivot_lpips_weight": 0.0, "tuning_lpips_weight": 0.0}
    m = build_method("pti", cfg, G)
    m.tuning_perceptual = ScriptedLPIPS([])  # any call would raise StopIteration
    torch.manual_seed(0)
    info = m.invert(item).info
    assert m.tuning_perceptual.calls == 0 and info["tuning_steps_run"] == 2
    assert info["final_lpips"] is None and "lpips_random_weights" not in info
