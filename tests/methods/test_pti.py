"""``pti``: pivot + tuning on the tiny generator, early stop, generator safety, delta, locality, presets;
the tuning stage on its own (:func:`~warpinv.methods.tuning.tune_generator`, several views)."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

from tests.methods.test_w_opt import PRESETS, psnr, render, start_psnr, tiny_render_item
from warpinv.backbone import EG3DGenerator, build_tiny
from warpinv.config import ConfigError, deep_merge, from_dict, load_yaml
from warpinv.methods import METHODS, Inversion, InversionItem, build_method
from warpinv.methods.projector import latent_stats, prepare_target, synthesize
from warpinv.methods.pti import PTI, PivotConfig, PTIConfig, changed_parameters
from warpinv.methods.tuning import InputAndRandomView, TuningConfig, TuningTarget, input_view, tune_generator
from warpinv.weights import MissingWeightsError

#: A small budget: a short pivot with MSE, a few tuning steps at a raised lr, no early stop.
FAST: dict[str, Any] = {"allow_random_lpips": True, "pivot": {"steps": 4, "mse_weight": 1.0},
                        "tuning": {"steps": 10, "lr": 1e-3, "lpips_threshold": None}}


def fast(**changes: Any) -> dict[str, Any]:
    """:data:`FAST` with nested changes merged in (``fast(pivot={"steps": 1})``)."""
    return deep_merge(FAST, changes)


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
    pivot, tuning = cfg.pivot, cfg.tuning
    assert (pivot.space, pivot.steps, pivot.lr, pivot.adam_init_lr, pivot.lr_schedule) == ("w", 450, 0.01, 5e-3, "ramp")
    assert (pivot.w_avg_samples, pivot.w_avg_seed, pivot.lpips_net, pivot.noise_reg_weight) == (600, 123, "vgg", 1e5)
    assert (tuning.steps, tuning.lr, tuning.lpips_net, tuning.lpips_threshold) == (350, 3e-4, "alex", 0.06)
    assert (tuning.locality_regularization, tuning.locality_alpha, tuning.locality_psi) == (False, 30.0, 0.5)
    assert PTI.budget_fields == ("pivot.steps", "tuning.steps")
    assert PTI.required_weights(cfg) == ["torchvision-vgg16", "torchvision-alexnet"]  # pivot VGG, tuning AlexNet
    assert PTI.required_weights(from_dict(PTIConfig, {"allow_random_lpips": True})) == []
    no_tuning_lpips = from_dict(PTIConfig, {"tuning": {"lpips_weight": 0.0, "lpips_threshold": None}})
    assert PTI.required_weights(no_tuning_lpips) == ["torchvision-vgg16"]


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
    m = build_method("pti", fast(tuning={"steps": 3}), G)
    target, mask = prepare_target(item, G.img_resolution)
    stats = latent_stats(G, item.camera)
    ws = stats.w_avg.repeat(1, G.num_ws, 1)
    torch.manual_seed(0)
    tuned, info = m.tune(ws, target, mask, item.camera, stats)
    assert info["tuning_steps_run"] == 3
    inv = Inversion(item.image_id, "pti", ws, item.camera, generator_delta=changed_parameters(G, tuned))
    with torch.no_grad():
        direct = synthesize(tuned, ws, item.camera, deterministic=True)
        via_delta = render(G, inv, item.camera)
        base = render(G, Inversion(item.image_id, "x", ws, item.camera), item.camera)
    for key in ("image", "image_raw", "image_depth"):
        assert torch.allclose(direct[key], via_delta[key], atol=1e-5)
    assert not torch.allclose(direct["image"], base["image"], atol=1e-3)


def test_early_stop_is_checked_before_the_backward_pass(G, item) -> None:
    m = build_method("pti", fast(pivot={"steps": 1}, tuning={"steps": 10, "lpips_threshold": 0.06}), G)
    m.tuning_perceptual = ScriptedLPIPS([0.5, 0.2, 0.06, 0.01])
    torch.manual_seed(0)
    inv = m.invert(item)
    assert inv.info["early_stopped"] is True and inv.info["tuning_steps_run"] == 2
    assert inv.info["final_lpips"] == pytest.approx(0.06) and m.tuning_perceptual.calls == 3
    never = build_method("pti", fast(pivot={"steps": 1}, tuning={"steps": 3}), G)  # lpips_threshold: null
    never.tuning_perceptual = ScriptedLPIPS([0.0] * 4)
    info = never.invert(item).info
    assert info["early_stopped"] is False and info["tuning_steps_run"] == 3 and never.tuning_perceptual.calls == 4


def test_early_stop_at_once_when_the_target_is_the_pivot_render(G, item) -> None:
    # One pivot step runs at lr 0 (the ramp starts at 0), so the pivot is w_avg exactly.
    stats = latent_stats(G, item.camera)
    with torch.no_grad():
        image = synthesize(G, stats.w_avg.repeat(1, G.num_ws, 1), item.camera, deterministic=True)["image"]
    m = build_method("pti", fast(pivot={"steps": 1, "deterministic_render": True},
                                 tuning={"lpips_threshold": 0.06, "deterministic_render": True}), G)
    torch.manual_seed(0)
    inv = m.invert(InversionItem("pivot.png", image, item.camera))
    assert torch.equal(inv.ws, stats.w_avg.repeat(1, G.num_ws, 1))
    assert inv.info["early_stopped"] is True and inv.info["tuning_steps_run"] == 0
    assert inv.info["final_lpips"] < 1e-6 and inv.generator_delta == {}


def test_locality_regulariser_adds_to_the_loss_when_on(G, item) -> None:
    records: dict[bool, list[dict[str, float]]] = {}
    for on in (False, True):
        cfg = fast(pivot={"steps": 1, "deterministic_render": True},
                   tuning={"steps": 2, "deterministic_render": True, "locality_regularization": on})
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
    with pytest.raises(ConfigError, match="unknown key.*pivot_steps"):
        from_dict(PTIConfig, {"pivot_steps": 3})  # the flat keys of before: now pivot.steps
    with pytest.raises(ConfigError, match="unknown key.*pivot.stepz"):
        from_dict(PTIConfig, {"pivot": {"stepz": 3}})
    with pytest.raises(ConfigError, match="pivot.space"):
        from_dict(PTIConfig, {"pivot": {"space": "z"}})
    with pytest.raises(ConfigError, match="tuning: lr must be >= 0"):
        from_dict(PTIConfig, {"tuning": {"lr": -1.0}})
    with pytest.raises(ValueError, match="space"):
        PivotConfig(space="z")  # type: ignore[arg-type]
    assert from_dict(PTIConfig, load_yaml(PRESETS / "pti.yaml")) == PTIConfig()
    eg3d = from_dict(PTIConfig, load_yaml(PRESETS / "pti_eg3d.yaml"))
    assert eg3d == PTIConfig(pivot=PivotConfig(space="w+", steps=500), tuning=TuningConfig(steps=500))


def test_an_unused_tuning_lpips_is_neither_computed_nor_reported(G, item) -> None:
    """Weight 0, no early stop, no locality: the trunk never runs and the outputs do not claim it was used."""
    cfg = fast(pivot={"steps": 1, "lpips_weight": 0.0}, tuning={"steps": 2, "lpips_weight": 0.0})
    m = build_method("pti", cfg, G)
    m.tuning_perceptual = ScriptedLPIPS([])  # any call would raise StopIteration
    torch.manual_seed(0)
    info = m.invert(item).info
    assert m.tuning_perceptual.calls == 0 and info["tuning_steps_run"] == 2
    assert info["final_lpips"] is None and "lpips_random_weights" not in info


def test_tune_generator_fits_the_input_view_and_one_random_view_per_step(G, item) -> None:
    """HFGI3D's second tuning: per step the input view plus one other view drawn by a seeded sampler,
    each weighted ``MSE + LPIPS``, no early stop; the base generator is untouched."""
    other = tiny_render_item(G, seed=32, yaw=0.3, pitch=0.0)
    third = tiny_render_item(G, seed=33, yaw=-0.4, pitch=0.1)
    targets = [TuningTarget(item.image, item.camera), TuningTarget(other.image, other.camera, weight=0.5),
               TuningTarget(third.image, third.camera, weight=0.5)]
    ws = latent_stats(G, item.camera).w_avg.repeat(1, G.num_ws, 1)
    config = TuningConfig(steps=4, lr=1e-3, lpips_weight=0.0, lpips_threshold=None, deterministic_render=True)
    before = {k: v.clone() for k, v in G.state_dict().items()}
    records: list[dict[str, float]] = []
    sampler = InputAndRandomView(len(targets), seed=5)
    replay = InputAndRandomView(len(targets), seed=5)  # the same seed draws the same views
    picks = [replay(step) for step in range(4)]
    tuned, info = tune_generator(G, ws, targets, config, sampler=sampler,
                                 callback=lambda step, terms: records.append(terms))
    assert all(p[0] == 0 and p[1] in (1, 2) for p in picks)
    assert info["tuning_steps_run"] == 4 and info["early_stopped"] is False and info["final_lpips"] is None
    assert tuned is not G and all(torch.equal(v, before[k]) for k, v in G.state_dict().items())
    assert not any(p.requires_grad for p in tuned.parameters())
    with torch.no_grad():  # the first step's loss is the weighted sum over the two views it picked
        first = [synthesize(G, ws, targets[i].camera, deterministic=True)["image"] for i in picks[0]]
        mses = [float((image - targets[i].image).square().mean()) for image, i in zip(first, picks[0])]
    expected = mses[0] + 0.5 * mses[1]
    assert records[0]["loss"] == pytest.approx(expected, rel=1e-5)
    assert records[0]["mse"] == pytest.approx(sum(mses) / 2, rel=1e-5)
    assert info["final_mse"] < mses[0]  # measured on the input view after the last step


def test_tune_generator_tunes_a_given_generator_in_place(G, item) -> None:
    """A later stage continues from an earlier tuning: the generator handed in is the one tuned."""
    ws = latent_stats(G, item.camera).w_avg.repeat(1, G.num_ws, 1)
    config = TuningConfig(steps=1, lr=1e-3, lpips_weight=0.0, lpips_threshold=None, deterministic_render=True)
    target = [TuningTarget(item.image, item.camera)]
    first, _ = tune_generator(G, ws, target, config)
    snapshot = {k: v.clone() for k, v in first.state_dict().items()}
    second, info = tune_generator(G, ws, target, config, generator=first, sampler=input_view)
    assert second is first and info["tuning_steps_run"] == 1
    assert changed_parameters(G, second)
    assert not all(torch.equal(v, snapshot[k]) for k, v in second.state_dict().items())
    with pytest.raises(ValueError, match="perceptual"):
        tune_generator(G, ws, target, TuningConfig(steps=1))
    with pytest.raises(ValueError, match="conditioning"):
        tune_generator(G, ws, target, TuningConfig(steps=1, lpips_weight=0.0, lpips_threshold=None,
                                                   locality_regularization=True, locality_lpips_weight=0.0))
