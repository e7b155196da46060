"""Unit tests of the GOAE Swin-V2 W+ encoder port (small configurable encoders, CPU)."""
from __future__ import annotations

import io
import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from warpinv.methods.warpgan.goae import (
    TINY_GOAE,
    GOAECheckpointError,
    GOAEConfig,
    GOAEncoder,
    default_row_split,
    goae_input,
    load_goae_state,
)
from warpinv.methods.warpgan.swin import (
    LOGIT_SCALE_MAX,
    MASK_VALUE,
    PatchMerging,
    SwinTransformerBlock,
    WindowAttention,
    relative_coords_table,
    relative_position_index,
    reset_computed_buffers,
    shifted_window_mask,
    window_merge,
    window_partition,
)

#: TINY_GOAE without dropout / stochastic depth, so training steps are deterministic.
TINY = replace(TINY_GOAE, drop_path_rate=0.0, cross_attention_dropout=0.0)
#: Two blocks in the first stages, so shifted windows (and their masks) exist.
SHIFTED = replace(TINY, depths=(2, 2, 1, 1))


def images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


def encoder(config: GOAEConfig = TINY, seed: int = 0) -> GOAEncoder:
    torch.manual_seed(seed)
    return GOAEncoder(config)


def test_tiny_encoder_shapes_follow_the_config() -> None:
    enc = encoder().eval()
    with torch.no_grad():
        feats = enc.forward_features(images(2, TINY.img_size))
    L, C = TINY.stage_tokens, TINY.stage_dims
    assert feats.ws.shape == (2, TINY.num_ws, TINY.w_dim) and torch.isfinite(feats.ws).all()
    assert feats.x_base.shape == feats.x_query.shape == (2, C[3], L[3])
    assert feats.x_coarse.shape == (2, L[2], C[2])
    assert feats.x_mid.shape == (2, L[1], C[1])
    assert feats.x_fine.shape == (2, L[0], C[0])
    coarse, mid, fine = TINY.row_split
    assert feats.ws_base_1.shape == (2, 1, TINY.w_dim)
    assert feats.ws_coarse is not None and feats.ws_coarse.shape == (2, coarse, TINY.w_dim)
    assert feats.ws_mid is not None and feats.ws_mid.shape == (2, mid, TINY.w_dim)
    assert feats.ws_fine is not None and feats.ws_fine.shape == (2, fine, TINY.w_dim)
    assert torch.equal(feats.ws[:, :1], feats.ws_base_1)  # row 0 has no delta
    delta = torch.cat([feats.ws_coarse, feats.ws_mid, feats.ws_fine], dim=1)
    torch.testing.assert_close(feats.ws[:, 1:], feats.ws_base_1 + delta, rtol=0, atol=0)
    # derived (not hard-coded) mapper sizes: tokens L3 -> 1, channels C3 -> w_dim, token maps L2 -> L1 -> L0
    sd = enc.state_dict()
    assert sd["mapper_base_spatial.2.weight"].shape == (1, L[3])
    assert sd["mapper_base_channel.2.weight"].shape == (TINY.w_dim, C[3])
    assert sd["mapper_coarse_to_mid_spatial.2.weight"].shape == (L[1], 2 * L[2])
    assert sd["mapper_mid_to_fine_spatial.2.weight"].shape == (L[0], 2 * L[1])


def test_default_config_is_the_released_build() -> None:
    config = GOAEConfig()
    assert config.stage_tokens == (4096, 1024, 256, 64)
    assert config.stage_dims == (128, 256, 512, 1024)
    assert config.row_split == (3, 3, 7) and config.ffn_dim == 1024
    assert config.attn_dim == config.w_dim == 512


def test_attention_dim_narrows_the_attention_and_projects_the_deltas() -> None:
    narrow = encoder().eval()
    assert TINY.attn_dim == 64 and TINY.ffn_dim == 128
    sd = narrow.state_dict()
    assert sd["delta_projection.weight"].shape == (TINY.w_dim, 64)
    assert sd["cross_att_fine.linear1.weight"].shape == (128, 64)
    assert sd["mapper_query_channel_mid.2.weight"].shape == (64, TINY.stage_dims[3])
    assert sd["mapper_fine_channel.2.weight"].shape == (64, TINY.stage_dims[1])
    with torch.no_grad():
        feats = narrow.forward_features(images(2, TINY.img_size))
    assert feats.ws_fine is not None and feats.ws_fine.shape == (2, TINY.row_split[2], TINY.w_dim)
    # without it the released layout: no extra entry, attention at w_dim
    wide = GOAEncoder(replace(TINY, attention_dim=None)).state_dict()
    assert not any(k.startswith("delta_projection") for k in wide)
    assert wide["cross_att_fine.linear1.weight"].shape == (2 * TINY.w_dim, TINY.w_dim)
    assert set(sd) - set(wide) == {"delta_projection.weight", "delta_projection.bias"}


def test_attention_heads_must_divide_the_attention_width() -> None:
    with pytest.raises(ValueError, match="attention width 60"):
        replace(TINY, attention_dim=60, cross_attention_heads=8)
    with pytest.raises(ValueError, match="attn_dim"):
        replace(TINY, attention_dim=0)


@pytest.mark.parametrize("num_ws", [6, 10, 18])
def test_non_default_num_ws(num_ws: int) -> None:
    config = replace(TINY, num_ws=num_ws, w_dim=64)
    assert sum(config.row_split) == num_ws - 1
    with torch.no_grad():
        ws = encoder(config).eval()(images(1, config.img_size))
    assert ws.shape == (1, num_ws, 64)


def test_explicit_rows_and_row_split() -> None:
    assert default_row_split(14) == (3, 3, 7)
    config = replace(TINY, num_ws=8, rows=(1, 2, 4))
    with torch.no_grad():
        feats = encoder(config).eval().forward_features(images(1, config.img_size))
    assert [t.shape[1] for t in (feats.ws_coarse, feats.ws_mid, feats.ws_fine)] == [1, 2, 4]


def test_one_adam_step_lowers_the_loss() -> None:
    enc = encoder().train()
    x = images(2, TINY.img_size, seed=1)
    target = torch.randn(2, TINY.num_ws, TINY.w_dim, generator=torch.Generator().manual_seed(2))
    opt = torch.optim.Adam(enc.parameters(), lr=1e-4)
    before = F.mse_loss(enc(x), target)
    opt.zero_grad()
    before.backward()
    assert all(p.grad is not None for p in enc.parameters())
    opt.step()
    with torch.no_grad():
        after = F.mse_loss(enc(x), target)
    assert float(after) < float(before.detach())


def test_state_dict_round_trip_in_every_layout() -> None:
    source = encoder(SHIFTED, seed=3).eval()
    buffer = io.BytesIO()
    torch.save({"psp_state_dict": source.state_dict(), "step": 7}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    x = images(1, SHIFTED.img_size)
    with torch.no_grad():
        expected = source(x)
    for checkpoint in (saved, saved["psp_state_dict"],
                       {f"encoder.{k}": v for k, v in saved["psp_state_dict"].items()}):
        target = encoder(SHIFTED, seed=4).eval()
        load_goae_state(target, checkpoint)
        with torch.no_grad():
            assert torch.equal(target(x), expected)


def test_load_errors_name_the_keys() -> None:
    enc = encoder()
    state = enc.state_dict()
    with pytest.raises(GOAECheckpointError, match="missing \\(1\\): swin_model.norm.weight"):
        load_goae_state(enc, {k: v for k, v in state.items() if k != "swin_model.norm.weight"})
    with pytest.raises(GOAECheckpointError, match="unexpected \\(1\\): extra.weight"):
        load_goae_state(enc, {**state, "extra.weight": torch.zeros(1)})
    with pytest.raises(GOAECheckpointError, match="shape mismatch \\(1\\): swin_model.norm.bias"):
        load_goae_state(enc, {**state, "swin_model.norm.bias": torch.zeros(3)})
    with pytest.raises(TypeError, match="mapping"):
        load_goae_state(enc, [1, 2])  # type: ignore[arg-type]


def test_goae_input_of_uint8_512_is_a_2x2_average_pool() -> None:
    """Exact 2x bilinear shrinking (antialias=False) averages each 2x2 block; the two float64 sums round
    differently by ~1e-16, so the float32 results agree to float32 rounding of values near 0."""
    g = torch.Generator().manual_seed(5)
    image = torch.randint(0, 256, (2, 3, 512, 512), generator=g, dtype=torch.uint8)
    x = (image.double() / 255.0 - 0.5) / 0.5
    got = goae_input(image)
    assert got.dtype == torch.float32 and got.shape == (2, 3, 256, 256)
    torch.testing.assert_close(got, F.avg_pool2d(x, 2).float(), rtol=0, atol=1e-7)
    torch.testing.assert_close(goae_input(x.float(), 256), F.avg_pool2d(x.float().double(), 2).float(),
                               rtol=0, atol=1e-7)
    antialiased = F.interpolate(x, size=(256, 256), mode="bilinear", antialias=True).float()
    assert float((got - antialiased).abs().max()) > 1e-3  # torchvision >= 0.17's default is another image


def test_goae_input_keeps_an_image_of_the_right_size() -> None:
    x = images(1, 32)
    assert torch.equal(goae_input(x, 32), x)


@pytest.mark.parametrize("bad, error, match", [
    (torch.zeros(3, 64, 64), ValueError, "N, 3, H, W"),
    (torch.zeros(1, 1, 64, 64), ValueError, "N, 3, H, W"),
    (torch.full((1, 3, 64, 64), 255.0), ValueError, r"\[-1, 1\]"),
    (torch.zeros(1, 3, 64, 64, dtype=torch.int32), ValueError, "uint8 or floating"),
    ([0.0], TypeError, "torch.Tensor"),
])
def test_goae_input_rejects_bad_images(bad: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        goae_input(bad, 32)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad, match", [
    (torch.zeros(1, 3, 32, 32), "N, 3, 64, 64"),
    (torch.zeros(3, 64, 64), "N, 3, 64, 64"),
    (torch.zeros(1, 3, 64, 64, dtype=torch.uint8), "goae_input"),
])
def test_encoder_rejects_bad_inputs(bad: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        encoder()(bad)


@pytest.mark.parametrize("changes, match", [
    ({"depths": (1, 1, 1)}, "4 entries"),
    ({"num_heads": (3, 8, 16, 32)}, "not divisible by num_heads"),
    ({"num_ws": 3}, "num_ws must be >= 4"),
    ({"rows": (3, 3, 3)}, "sum to num_ws - 1"),
    ({"img_size": 60}, "divisible by 8"),
    ({"window_size": 3}, "cannot be tiled"),
    ({"stage_list": (3, 2, 1)}, "ascending"),
])
def test_config_validation(changes: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        replace(TINY, **changes)


def test_progressive_stages_gate_the_deltas() -> None:
    enc = encoder().eval()
    s1, s2, s3 = TINY.stage_list
    assert [enc.set_stage(s) for s in (0, s1 - 1, s1, s2, s3, s3 + 1)] == [0, 0, 1, 2, 2, 3]
    x = images(1, TINY.img_size)
    coarse, mid, _ = TINY.row_split
    with torch.no_grad():
        enc.stage = 0
        base = enc.forward_features(x)
        assert base.ws_coarse is None and torch.equal(base.ws, base.ws_base_1.expand_as(base.ws))
        enc.stage = 1
        one = enc.forward_features(x)
        assert one.ws_mid is None and torch.equal(one.ws[:, 1 + coarse:], base.ws[:, 1 + coarse:])
        enc.stage = 2
        two = enc.forward_features(x)
        assert two.ws_fine is None and torch.equal(two.ws[:, 1 + coarse + mid:], base.ws[:, 1 + coarse + mid:])
        enc.stage = 3
        assert torch.equal(two.ws[:, : 1 + coarse + mid], enc(x)[:, : 1 + coarse + mid])


def test_reset_computed_buffers_equals_the_constructor() -> None:
    built = encoder(SHIFTED)
    with torch.device("meta"):
        lazy = GOAEncoder(SHIFTED)
    lazy.to_empty(device="cpu")
    reset_computed_buffers(lazy)
    masks = [n for n, _ in built.named_buffers() if n.endswith("attn_mask")]
    assert masks  # the shifted blocks hold a mask, the others none
    for name, buf in built.named_buffers():
        assert torch.equal(dict(lazy.named_buffers())[name], buf), name


def test_swin_window_clipping_and_shift() -> None:
    big = SwinTransformerBlock(8, resolution=16, num_heads=2, window=4, shift=2)
    assert (big.window, big.shift) == (4, 2) and big.attn_mask.shape == (16, 16, 16)
    small = SwinTransformerBlock(8, resolution=4, num_heads=2, window=8, shift=4)
    assert (small.window, small.shift) == (4, 0) and small.attn_mask is None
    assert "attn_mask" not in small.state_dict()


def test_shifted_window_mask_values() -> None:
    mask = shifted_window_mask(8, 4, 2)
    assert mask.shape == (4, 16, 16) and set(mask.unique().tolist()) == {0.0, MASK_VALUE}
    assert bool((mask[0] == 0).all())  # the top-left window holds one region only
    assert bool((mask[-1] != 0).any())


def test_relative_position_tables() -> None:
    table = relative_coords_table(4, pretrained_window=6)
    assert table.shape == (1, 7, 7, 2)
    # offset 3 of a window pretrained at 6: 3 / 5 * 8 = 4.8 -> log2(5.8) / 3
    torch.testing.assert_close(table[0, 6, 3], torch.tensor([math.log2(5.8) / 3, 0.0]))
    # no pretrained window: normalised by window - 1, so the corner offset maps to -8 -> -log2(9) / 3
    torch.testing.assert_close(relative_coords_table(4, 0)[0, 0, 0], torch.full((2,), -math.log2(9) / 3))
    index = relative_position_index(3)
    assert index.shape == (9, 9) and index.dtype == torch.int64
    assert int(index[0, 0]) == 2 * 5 + 2 and int(index.max()) == 24 and int(index.min()) == 0
    with pytest.raises(ValueError, match="divides by"):
        relative_coords_table(1, 0)


def test_logit_scale_is_clamped() -> None:
    torch.manual_seed(0)
    attn = WindowAttention(8, window=2, num_heads=2).eval()
    x = torch.randn(3, 4, 8)
    with torch.no_grad():
        attn.logit_scale.fill_(50.0)
        high = attn(x)
        attn.logit_scale.fill_(LOGIT_SCALE_MAX)
        assert torch.equal(attn(x), high)


def test_patch_merging_order_and_window_round_trip() -> None:
    merge = PatchMerging(resolution=2, dim=1)
    seen: list[torch.Tensor] = []
    merge.reduction.register_forward_hook(lambda _m, args, _out: seen.append(args[0]))
    tokens = torch.tensor([0.0, 1.0, 2.0, 3.0]).view(1, 4, 1)  # row-major: (0,0) (0,1) (1,0) (1,1)
    assert merge(tokens).shape == (1, 1, 2)
    # x0 = [0::2, 0::2], x1 = [1::2, 0::2] (the next ROW first), x2 = [0::2, 1::2], x3 = [1::2, 1::2]
    assert seen[0].flatten().tolist() == [0.0, 2.0, 1.0, 3.0]
    x = torch.randn(2, 8, 8, 3)
    assert torch.equal(window_merge(window_partition(x, 4), 4, 8, 8), x)
