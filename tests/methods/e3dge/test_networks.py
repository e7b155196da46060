"""E3DGE networks: shapes, zero initialisation, gradient flow, ArcFace trunk loading, input checks."""
from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from warpinv.methods.e3dge.networks import (
    IRSE50_STAGES,
    TINY_INPUT_SIZE,
    TINY_STAGES,
    GlobalEncoder,
    LocalEncoder,
    StyleHead,
    count_parameters,
)
from warpinv.metrics.irse50 import IRSE50


def _tiny_global(**kwargs: object) -> GlobalEncoder:
    torch.manual_seed(0)
    return GlobalEncoder(num_ws=14, w_dim=512, stages=TINY_STAGES, input_size=TINY_INPUT_SIZE, **kwargs)


def _tiny_local(**kwargs: object) -> LocalEncoder:
    torch.manual_seed(0)
    return LocalEncoder(6, 32, base_channels=16, depth=3, input_size=TINY_INPUT_SIZE, **kwargs)


def _randomize_zero_layers(module: nn.Module) -> None:
    """Give the zero-initialised output layers random values so that gradients flow upstream."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, StyleHead):
                layers = [sub.linear]
            elif isinstance(sub, LocalEncoder):
                layers = [sub.out]
            else:
                continue
            for layer in layers:
                for p in layer.parameters():
                    p.copy_(torch.randn(p.shape, generator=generator) * 0.1)


# --------------------------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("size", [64, 96, 32, 128])
def test_tiny_global_shapes_and_zero_deltas(size: int) -> None:
    encoder = _tiny_global()
    deltas = encoder(torch.rand(3, 3, size, size) * 2 - 1)
    assert deltas.shape == (3, 14, 512)
    assert torch.equal(deltas, torch.zeros_like(deltas))


def test_full_size_global_shape_and_zero_deltas() -> None:
    torch.manual_seed(0)
    encoder = GlobalEncoder(num_ws=14, w_dim=512).eval()
    with torch.no_grad():
        deltas = encoder(torch.rand(1, 3, 256, 256) * 2 - 1)
    assert deltas.shape == (1, 14, 512)
    assert torch.equal(deltas, torch.zeros_like(deltas))


def test_global_head_layout() -> None:
    encoder = _tiny_global()  # c3 4x4, p2 8x8, p1 16x16
    convs = [sum(isinstance(m, nn.Conv2d) for m in head.convs) for head in encoder.styles]
    assert convs == [2] * 3 + [3] * 4 + [4] * 7
    odd = GlobalEncoder(num_ws=5, w_dim=8, stages=TINY_STAGES, coarse_layers=1, middle_layers=0, input_size=16)
    assert odd(torch.zeros(2, 3, 16, 16)).shape == (2, 5, 8)  # c3 is 1x1: heads without convolutions


@pytest.mark.parametrize("size", [64, 48, 128])
def test_tiny_local_shapes_and_zero_features(size: int) -> None:
    local = _tiny_local()
    features = local(torch.randn(2, 6, size, size))
    assert features.shape == (2, 32, TINY_INPUT_SIZE, TINY_INPUT_SIZE)
    assert torch.equal(features, torch.zeros_like(features))


def test_full_size_local_shape() -> None:
    local = LocalEncoder()
    features = local(torch.randn(1, 6, 256, 256))
    assert features.shape == (1, 32, 256, 256)
    assert torch.equal(features, torch.zeros_like(features))


@pytest.mark.parametrize("depth", [1, 4])
def test_local_depths_and_no_norm(depth: int) -> None:
    local = LocalEncoder(3, 8, base_channels=8, depth=depth, input_size=32, norm=False)
    assert not any(isinstance(m, nn.GroupNorm) for m in local.modules())
    assert local(torch.randn(1, 3, 32, 32)).shape == (1, 8, 32, 32)


# ---------------------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("build", [_tiny_global, _tiny_local], ids=["global", "local"])
def test_gradients_reach_every_parameter(build) -> None:
    module = build()
    _randomize_zero_layers(module)
    channels = 3 if isinstance(module, GlobalEncoder) else 6
    out = module(torch.rand(2, channels, 64, 64) * 2 - 1)
    assert out.abs().sum() > 0
    out.square().sum().backward()
    names = [name for name, p in module.named_parameters() if p.grad is None]
    assert names == []
    zero = [name for name, p in module.named_parameters() if not p.grad.abs().sum() > 0]
    assert zero == []


def test_untrained_encoders_give_gradients_to_output_layers() -> None:
    encoder = _tiny_global()
    encoder(torch.rand(1, 3, 64, 64)).sum().backward()
    assert all(head.linear.weight.grad.abs().sum() > 0 for head in encoder.styles)


# ------------------------------------------------------------------------------------- ArcFace trunk


def test_load_arcface_trunk_copies_irse50() -> None:
    arcface = IRSE50().randomize_(0)
    state = arcface.state_dict()
    torch.manual_seed(0)
    encoder = GlobalEncoder(num_ws=14, w_dim=512)
    loaded = encoder.load_arcface_trunk(state)
    trunk = [k for k in state if not k.startswith("output_layer.")]
    assert len(loaded) == len(trunk) == 385
    assert sorted(loaded) == sorted(trunk)
    mine = encoder.state_dict()
    for key in ("input_layer.0.weight", "body.0.res_layer.1.weight", "body.3.shortcut_layer.0.weight",
                "body.20.res_layer.5.fc1.weight", "body.23.res_layer.4.running_var"):
        assert torch.equal(mine[key], state[key]), key
    assert not any(k.startswith(("styles.", "latlayer")) for k in loaded)


def test_load_arcface_trunk_skips_missing_entries(caplog) -> None:
    state = IRSE50().randomize_(0).state_dict()
    del state["body.5.res_layer.1.weight"]
    loaded = GlobalEncoder(num_ws=14, w_dim=512, input_size=64).load_arcface_trunk(state)
    assert len(loaded) == 384 and "body.5.res_layer.1.weight" not in loaded
    assert "1 trunk tensors missing" in caplog.text


def test_load_arcface_trunk_refuses_other_stages() -> None:
    with pytest.raises(ValueError, match="needs the IR-SE50 stages"):
        _tiny_global().load_arcface_trunk(IRSE50().state_dict())


def test_irse50_stage_names_match() -> None:
    encoder = GlobalEncoder(num_ws=14, w_dim=512, input_size=64)
    assert encoder.stages == IRSE50_STAGES
    trunk = {k for k in encoder.state_dict() if k.startswith(("input_layer.", "body."))}
    assert trunk == {k for k in IRSE50().state_dict() if not k.startswith("output_layer.")}


# -------------------------------------------------------------------------------------- input checks


@pytest.mark.parametrize("shape", [(3, 64, 64), (1, 4, 64, 64), (1, 1, 3, 64, 64)])
def test_global_rejects_wrong_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"GlobalEncoder images must be a \(N, 3, H, W\) tensor, got"):
        _tiny_global()(torch.zeros(shape))


def test_local_rejects_wrong_shapes_and_dtypes() -> None:
    local = _tiny_local()
    with pytest.raises(ValueError, match=r"LocalEncoder input must be a \(N, 6, H, W\) tensor, got \(1, 3, 64, 64\)"):
        local(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="floating-point"):
        local(torch.zeros(1, 6, 64, 64, dtype=torch.uint8))
    with pytest.raises(ValueError, match="empty"):
        local(torch.zeros(0, 6, 64, 64))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"stages": ((8, 1), (32, 1), (64, 1), (128, 1))}, "channels >= 16"),
    ({"stages": ((16, 1), (32, 1), (64, 1))}, "4 \\(channels, units\\) pairs"),
    ({"coarse_layers": 10, "middle_layers": 5}, "coarse_layers \\+ middle_layers must be <= num_ws"),
    ({"input_size": 8}, "input_size must be >= 16"),
])
def test_global_rejects_bad_config(kwargs: dict, message: str) -> None:
    config = {"num_ws": 14, "w_dim": 512, "stages": TINY_STAGES, "input_size": 64, **kwargs}
    with pytest.raises(ValueError, match=message):
        GlobalEncoder(**config)


def test_local_rejects_bad_config() -> None:
    with pytest.raises(ValueError, match="input_size must be >= 2\\*\\*depth"):
        LocalEncoder(depth=5, input_size=16)
    with pytest.raises(ValueError, match="base_channels must be >= 1"):
        LocalEncoder(base_channels=0)


# ---------------------------------------------------------------------------------------------- sizes


def test_parameter_counts_are_stable() -> None:
    counts = (count_parameters(_tiny_global()), count_parameters(_tiny_local()))
    assert all(c > 0 for c in counts)
    frozen = _tiny_local()
    frozen.out.requires_grad_(False)
    assert count_parameters(frozen, trainable_only=True) == counts[1] - count_parameters(frozen.out)


def test_tiny_forward_is_fast() -> None:
    encoder, local = _tiny_global().eval(), _tiny_local().eval()
    start = time.perf_counter()
    with torch.no_grad():
        encoder(torch.zeros(8, 3, 64, 64))
        local(torch.zeros(8, 6, 64, 64))
    assert time.perf_counter() - start < 10.0
