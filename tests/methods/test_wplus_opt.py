"""``wplus_opt``: a per-layer latent that fits better than W for the same budget."""
from __future__ import annotations

import pytest
import torch

from tests.methods.test_w_opt import FAST, PRESETS, psnr, start_psnr, tiny_render_item
from warpinv.backbone import EG3DGenerator, build_tiny
from warpinv.config import ConfigError, from_dict, load_yaml
from warpinv.methods import METHODS, build_method
from warpinv.methods.w_opt import WOptConfig
from warpinv.methods.wplus_opt import WPlusOpt, WPlusOptConfig


@pytest.fixture(scope="module")
def G() -> EG3DGenerator:
    return build_tiny()


def test_registered_with_the_hfgi3d_defaults() -> None:
    assert METHODS["wplus_opt"] is WPlusOpt
    cfg = WPlusOptConfig()
    assert cfg.steps == 500 and cfg.lr == 0.01 and cfg.lpips_net == "vgg" and cfg.layer_spread_weight == 0.0


def test_wplus_fits_better_than_w_for_the_same_budget(G) -> None:
    """The default suite's reduced setting (pixel MSE, no LPIPS, official schedule and noise): W+ gains dB over W."""
    item = tiny_render_item(G, seed=22, yaw=-0.25)
    budget = {"allow_random_lpips": True, "mse_weight": 1.0, "lpips_weight": 0.0, "steps": 20, "w_avg_samples": 200}
    w_opt, wplus_opt = build_method("w_opt", budget, G), build_method("wplus_opt", budget, G)
    torch.manual_seed(0)
    w = psnr(G, w_opt.invert(item), item)
    torch.manual_seed(0)
    inv = wplus_opt.invert(item)
    wp = psnr(G, inv, item)
    assert wp > start_psnr(G, item) + 0.5
    assert not torch.equal(inv.ws[:, 0], inv.ws[:, -1]) and inv.info["space"] == "w+"
    assert wp > w + 1.0, (w, wp)


def test_layer_spread_regulariser_enters_the_loss(G) -> None:
    item = tiny_render_item(G, seed=23)
    records: dict[float, list[dict[str, float]]] = {}
    for weight in (0.0, 10.0):
        m = build_method("wplus_opt", {**FAST, "steps": 3, "layer_spread_weight": weight, "optimize_noise": False}, G)
        m.step_callback = lambda step, terms, w=weight: records.setdefault(w, []).append(terms)
        torch.manual_seed(0)
        m.invert(item)
    assert "layer_spread" not in records[0.0][-1]
    spread = records[10.0][-1]["layer_spread"]
    # The first update has lr 0 and the spread's gradient is 0 while the layers agree, so both runs reach
    # the last step with the same latent: their losses differ by exactly the weighted spread.
    assert spread > 0
    assert records[10.0][-1]["loss"] - records[0.0][-1]["loss"] == pytest.approx(10.0 * spread, rel=1e-3)


def test_preset_inherits_w_opt_and_matches_the_defaults() -> None:
    cfg = from_dict(WPlusOptConfig, load_yaml(PRESETS / "wplus_opt.yaml"))
    assert cfg == WPlusOptConfig()
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(WOptConfig, {"layer_spread_weight": 1.0})  # a W+ field only
    with pytest.raises(ConfigError, match="layer_spread_weight"):
        from_dict(WPlusOptConfig, {"layer_spread_weight": -1.0})
