"""Proxy samples: seeded per sample, per step and per rank; rendered consistently; cached safely."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from warpinv.backbone import build_tiny, state_dict_sha256
from warpinv.training.proxy import (
    TRAIN_STREAM,
    VAL_STREAM,
    ProxyCache,
    ProxyConfig,
    ProxyStream,
    as_saved,
    cache_entries,
    draw_samples,
    render_proxy,
)


@pytest.fixture(scope="module")
def G():
    return build_tiny()


def _take(stream: ProxyStream, n: int) -> list[dict[str, torch.Tensor]]:
    it = iter(stream)
    return [next(it) for _ in range(n)]


def test_the_stream_is_reproducible_and_ranks_see_different_samples() -> None:
    cfg = ProxyConfig(seed=3)
    a = _take(ProxyStream(cfg, 16, 2, rank=0, world_size=2), 3)
    b = _take(ProxyStream(cfg, 16, 2, rank=0, world_size=2), 3)
    other = _take(ProxyStream(cfg, 16, 2, rank=1, world_size=2), 3)
    for x, y, z in zip(a, b, other):
        assert torch.equal(x["z"], y["z"]) and torch.equal(x["novel_cameras"], y["novel_cameras"])
        assert not torch.equal(x["z"], z["z"])
    seen = {int(i) for batch in a + other for i in batch["index"]}
    assert seen == set(range(12))  # 3 steps x 2 ranks x batch 2: every index once
    assert not torch.equal(_take(ProxyStream(ProxyConfig(seed=4), 16, 2), 1)[0]["z"], a[0]["z"])


def test_a_stream_started_at_a_step_continues_the_uninterrupted_one() -> None:
    cfg = ProxyConfig()
    whole = _take(ProxyStream(cfg, 16, 3), 5)
    resumed = _take(ProxyStream(cfg, 16, 3, start_step=2), 3)
    for x, y in zip(whole[2:], resumed):
        assert torch.equal(x["index"], y["index"]) and torch.equal(x["z"], y["z"])


def test_a_sample_depends_only_on_its_seed_stream_and_index() -> None:
    cfg = ProxyConfig(seed=1)
    both = draw_samples(cfg, 8, [5, 9])
    alone = draw_samples(cfg, 8, [9])
    assert torch.equal(both["z"][1], alone["z"][0]) and torch.equal(both["cameras"][1], alone["cameras"][0])
    val = draw_samples(cfg, 8, [5], VAL_STREAM)
    assert not torch.equal(val["z"][0], draw_samples(cfg, 8, [5], TRAIN_STREAM)["z"][0])


def test_cache_passes_visit_every_entry_once_in_a_new_order() -> None:
    first, second = cache_entries(list(range(6)), 6, 0), cache_entries(list(range(6, 12)), 6, 0)
    assert sorted(first) == sorted(second) == list(range(6)) and first != second


def test_render_proxy_gives_consistent_views(G) -> None:
    cfg = ProxyConfig(novel_views=2)
    d = draw_samples(cfg, G.z_dim, [0, 1])
    out = render_proxy(G, d["z"], d["cameras"], d["novel_cameras"], 0.7)
    res, raw = G.img_resolution, G.neural_rendering_resolution
    assert out["images"].shape == (2, 3, res, res) and out["novel_images"].shape == (2, 2, 3, res, res)
    assert out["depth"].shape == (2, 1, raw, raw) and out["novel_depth"].shape == (2, 2, 1, raw, raw)
    assert out["images"].abs().max() <= 1 and torch.equal(as_saved(out["images"]), out["images"])
    # the input view of a sample equals its render at that camera as a novel view
    same = render_proxy(G, d["z"][:1], d["cameras"][:1], d["cameras"][:1, None], 0.7)
    torch.testing.assert_close(same["novel_images"][:, 0], out["images"][:1], atol=1 / 127.5, rtol=0)
    torch.testing.assert_close(out["ws"], G.mapping(d["z"], same_frontal(2), truncation_psi=0.7))


def same_frontal(n: int) -> torch.Tensor:
    from warpinv.cameras import yaw_pitch_camera

    return yaw_pitch_camera(0.0, 0.0).expand(n, -1)


def test_the_cache_is_rebuilt_when_torn_or_made_for_other_settings(G, tmp_path: Path, caplog) -> None:
    cfg = ProxyConfig(cache=str(tmp_path / "c.safetensors"), cache_size=3, render_batch=2)
    key = state_dict_sha256(G)
    tensors = ProxyCache(cfg.cache, cfg, key).ensure(G)
    assert tensors["images"].shape[0] == 3 and tensors["images"].dtype == torch.float16
    expected = draw_samples(cfg, G.z_dim, [2])
    assert torch.equal(tensors["cameras"][2], expected["cameras"][0])
    stamp = Path(cfg.cache).stat().st_mtime_ns
    assert torch.equal(ProxyCache(cfg.cache, cfg, key).ensure(G)["ws"], tensors["ws"])  # read, not rebuilt
    assert Path(cfg.cache).stat().st_mtime_ns == stamp
    data = Path(cfg.cache).read_bytes()
    Path(cfg.cache).write_bytes(data[: len(data) // 2])  # a torn file
    with caplog.at_level("WARNING"):
        again = ProxyCache(cfg.cache, cfg, key).ensure(G)
    assert "unreadable" in caplog.text and torch.equal(again["ws"], tensors["ws"])
    other = ProxyConfig(cache=cfg.cache, cache_size=3, truncation_psi=0.5, render_batch=2)
    caplog.clear()
    with caplog.at_level("WARNING"):
        ProxyCache(other.cache, other, key).ensure(G)
    assert "other settings" in caplog.text
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("kwargs", [{"novel_views": 0}, {"cache_size": 0}, {"val_size": 0}])
def test_bad_proxy_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        ProxyConfig(**kwargs)
