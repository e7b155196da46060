"""Unit tests of the SVINet port and the pix2pixHD discriminator on tiny configurations (no fixtures; the golden
tests against the official outputs are in test_svinet_warpgan_golden.py)."""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from warpinv.methods.warpgan.discriminator import NLayerDiscriminator
from warpinv.methods.warpgan.ffc import concat_pair, from_spectrum, split_channels, to_spectrum
from warpinv.methods.warpgan.svinet import (
    CHECKPOINT_KEY,
    RELEASED_GENERATOR_KWARGS,
    SVINet,
    SVINetConfig,
    load_svinet_state,
)

SIZE = 32
BATCH = 2
NUM_WS = 14
TINY = SVINetConfig(ngf=4, n_blocks=1)


def make_inputs(batch: int = BATCH, num_ws: int = NUM_WS, seed: int = 0) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    inp = torch.rand(batch, 2 * TINY.branch_channels, SIZE, SIZE, generator=g)
    ws = torch.randn(batch, num_ws, TINY.w_dim, generator=g)
    return inp, ws


def tiny_net(seed: int = 0, **overrides: object) -> SVINet:
    torch.manual_seed(seed)
    return SVINet(dataclasses.replace(TINY, **overrides)).eval()


def test_forward_shape_and_range() -> None:
    inp, ws = make_inputs()
    with torch.no_grad():
        out = tiny_net()(inp, ws)
    assert out.shape == (BATCH, TINY.output_nc, SIZE, SIZE)
    assert torch.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 1


def test_features_agree_with_forward() -> None:
    net, (inp, ws) = tiny_net(), make_inputs()
    with torch.no_grad():
        out, feats = net.forward_with_features(inp, ws)
        plain = net(inp, ws)
    torch.testing.assert_close(out, plain, atol=0, rtol=0)
    torch.testing.assert_close(torch.sigmoid(feats["out_logits"]), out)
    local, glob = split_channels(TINY.bottleneck_channels, TINY.resnet_ratios[1])
    assert feats["after_cond_l"].shape[1] == local and feats["after_cond_g"].shape[1] == glob
    for i in range(TINY.n_downsampling):
        assert feats[f"up{i}_img"].shape[-1] == feats[f"after_up{i}"].shape[-1]
    torch.testing.assert_close(feats["after_concat"], concat_pair((feats["after_res_all_l"], feats["after_res_all_g"])))


def test_condition_branch_uses_the_mirror_half() -> None:
    net, (inp, ws) = tiny_net(), make_inputs()
    other = inp.clone()
    other[:, TINY.branch_channels:] = torch.rand_like(other[:, TINY.branch_channels:])
    with torch.no_grad():
        assert not torch.allclose(net(inp, ws), net(other, ws))


def test_use_condition_false_ignores_the_mirror_half() -> None:
    net, (inp, ws) = tiny_net(use_condition=False), make_inputs()
    c = TINY.branch_channels
    other = inp.clone()
    other[:, c:] = torch.rand_like(other[:, c:])
    with torch.no_grad():
        out, feats = net.forward_with_features(inp, ws)
        torch.testing.assert_close(net(other, ws), out, atol=0, rtol=0)
        torch.testing.assert_close(net(inp[:, :c], ws), out, atol=0, rtol=0)
    assert "after_cond_l" not in feats and "down_mirror_l" not in feats
    # the condition encoder's weights stay, so the official state-dict layout is kept
    assert set(net.state_dict()) == set(tiny_net().state_dict())


@pytest.mark.parametrize("num_ws", [14, 10, 5])
def test_only_the_last_five_w_rows_are_read(num_ws: int) -> None:
    net = tiny_net()
    inp, ws14 = make_inputs(num_ws=14)
    with torch.no_grad():
        ref = net(inp, ws14)
        torch.testing.assert_close(net(inp, ws14[:, 14 - num_ws:]), ref, atol=0, rtol=0)


def test_w_rows_drive_the_documented_layers() -> None:
    """Row -5 drives the resnet blocks; rows -4.. only the decoder (``ws_up = ws[-5:] + ws[-1] x 2``)."""
    net, (inp, ws) = tiny_net(), make_inputs()
    with torch.no_grad():
        _, ref = net.forward_with_features(inp, ws)
        moved = ws.clone()
        moved[:, -5] += 1
        _, f5 = net.forward_with_features(inp, moved)
        moved = ws.clone()
        moved[:, -4] += 1
        _, f4 = net.forward_with_features(inp, moved)
    assert not torch.allclose(f5["after_res0_l"], ref["after_res0_l"])
    torch.testing.assert_close(f4["after_res_all_g"], ref["after_res_all_g"], atol=0, rtol=0)
    assert not torch.allclose(f4["after_up0"], ref["after_up0"])


def test_gradient_reaches_ws() -> None:
    net, (inp, ws) = tiny_net(), make_inputs()
    ws.requires_grad_(True)
    net(inp, ws).mean().backward()
    assert ws.grad is not None
    assert ws.grad[:, -5:].abs().sum(dim=-1).gt(0).all()
    assert ws.grad[:, :-5].eq(0).all()


def test_adam_step_lowers_l1() -> None:
    net, (inp, ws) = tiny_net().train(), make_inputs()
    target = torch.rand(BATCH, TINY.output_nc, SIZE, SIZE, generator=torch.Generator().manual_seed(5))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    before = F.l1_loss(net(inp, ws), target)
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = F.l1_loss(net(inp, ws), target)
    assert after < before


def hinge(real: Tensor, fake: Tensor) -> Tensor:
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def bce(real: Tensor, fake: Tensor) -> Tensor:
    return F.softplus(-real).mean() + F.softplus(fake).mean()


@pytest.mark.parametrize("loss", [hinge, bce], ids=["hinge", "bce"])
def test_discriminator_adam_step_lowers_loss(loss) -> None:
    torch.manual_seed(0)
    disc = NLayerDiscriminator(input_nc=3, ndf=8, n_layers=3)
    g = torch.Generator().manual_seed(1)
    real = torch.rand(BATCH, 3, SIZE, SIZE, generator=g) * 2 - 1
    fake = torch.rand(BATCH, 3, SIZE, SIZE, generator=g) * 0.5
    opt = torch.optim.Adam(disc.parameters(), lr=1e-4)
    before = loss(disc(real)[0], disc(fake)[0])
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = loss(disc(real)[0], disc(fake)[0])
    assert after < before


def test_discriminator_returns_intermediate_activations() -> None:
    disc = NLayerDiscriminator(input_nc=3, ndf=8, n_layers=3).eval()
    x = torch.randn(1, 3, SIZE, SIZE)
    logits, feats = disc(x)
    assert logits.shape[:2] == (1, 1)
    assert len(feats) == disc.n_layers + 1
    assert [f.shape[1] for f in feats] == [8, 16, 32, 64]
    with torch.no_grad():
        torch.testing.assert_close(disc.stages()[-1](feats[-1]), logits)


def test_spectrum_round_trip() -> None:
    x = torch.randn(2, 3, 8, 6)
    spec = to_spectrum(x)
    assert spec.shape == (2, 6, 8, 4)
    torch.testing.assert_close(spec[:, 1::2, 0, 0], torch.zeros(2, 3), atol=1e-6, rtol=0)  # Im of the DC term
    torch.testing.assert_close(from_spectrum(spec, (8, 6)), x, atol=1e-5, rtol=0)


def test_config_from_official_kwargs() -> None:
    assert SVINetConfig.from_official(RELEASED_GENERATOR_KWARGS) == SVINetConfig()
    small = SVINetConfig.from_official({**RELEASED_GENERATOR_KWARGS, "ngf": 8, "n_blocks": 2}, use_condition=False)
    assert (small.ngf, small.n_blocks, small.use_condition) == (8, 2, False)
    with pytest.raises(ValueError, match="unknown.*'bogus'"):
        SVINetConfig.from_official({**RELEASED_GENERATOR_KWARGS, "bogus": 1})
    with pytest.raises(ValueError, match="unknown keys.*'dilation'"):
        SVINetConfig.from_official({**RELEASED_GENERATOR_KWARGS,
                                    "resnet_conv_kwargs": {"ratio_gin": 0.75, "ratio_gout": 0.75, "dilation": 2}})
    with pytest.raises(ValueError, match="refine"):
        SVINetConfig.from_official({**RELEASED_GENERATOR_KWARGS, "refine": True})
    with pytest.raises(ValueError, match="input_mirror"):
        SVINetConfig.from_official({**RELEASED_GENERATOR_KWARGS, "input_mirror": "cat"})
    with pytest.raises(ValueError, match="enable_lfu"):
        SVINetConfig.from_official({**RELEASED_GENERATOR_KWARGS, "init_conv_kwargs": {"ratio_gin": 0, "ratio_gout": 0}})


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="n_downsampling"):
        SVINetConfig(n_downsampling=4)
    with pytest.raises(ValueError, match="resnet_ratios"):
        SVINetConfig(resnet_ratios=(1.0, 1.0))


def test_input_validation() -> None:
    net, (inp, ws) = tiny_net(), make_inputs()
    with pytest.raises(ValueError, match="num_ws"):
        net(inp, ws[:, :4])
    with pytest.raises(ValueError, match="inp must be"):
        net(inp[:, :TINY.branch_channels], ws)


def test_load_svinet_state_raw_and_wrapped() -> None:
    src, dst = tiny_net(seed=1), tiny_net(seed=2)
    state = src.state_dict()
    load_svinet_state(dst, {CHECKPOINT_KEY: state})
    for key, value in dst.state_dict().items():
        torch.testing.assert_close(value, state[key], atol=0, rtol=0)
    load_svinet_state(dst, state)
    with pytest.raises(KeyError, match="model_out.1.bias"):
        load_svinet_state(dst, {k: v for k, v in state.items() if k != "model_out.1.bias"})
