"""The E3DGE-style encoder method: encoding, the pixel-aligned branch, training steps, checkpoints, rendering."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from warpinv.backbone import build_tiny
from warpinv.cameras import yaw_pitch_camera
from warpinv.methods import Inversion, InversionItem, build_method
from warpinv.methods.e3dge import E3DGE, PixelAlignedFeatures, sample_features
from warpinv.methods.rendering import LatentRenderer
from warpinv.training.proxy import ProxyConfig, draw_samples, render_proxy

#: Small networks so that every test runs in seconds on a CPU.
SMALL = {"encoder": {"stages": [[16, 1], [16, 1], [16, 1], [16, 1]], "input_size": 32},
         "local": {"base_channels": 8, "depth": 2, "input_size": 32}, "allow_random_lpips": True,
         "loss_resolution": "raw", "lr": 1e-3,
         "global_losses": {"lpips": 0.0, "identity": 0.0}, "local_losses": {"lpips": 0.0, "identity": 0.0}}


@pytest.fixture(scope="module")
def G():
    return build_tiny()


@pytest.fixture(scope="module")
def proxy(G) -> dict[str, torch.Tensor]:
    d = draw_samples(ProxyConfig(), G.z_dim, [0, 1])
    return {**d, **render_proxy(G, d["z"], d["cameras"], d["novel_cameras"], 0.7)}


def small(G, **changes) -> E3DGE:
    cfg = {**SMALL, **changes}
    torch.manual_seed(0)
    method = build_method("e3dge", cfg, G)
    assert isinstance(method, E3DGE)
    return method


def randomize_outputs(method: E3DGE) -> None:
    """Give the zero-initialised output layers random weights (a 'trained' encoder)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in method.named_parameters():
            if not name.startswith("G.") and p.abs().sum() == 0:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)


def items_of(proxy: dict[str, torch.Tensor]) -> list[InversionItem]:
    return [InversionItem(f"p{i}", proxy["images"][i: i + 1], proxy["cameras"][i: i + 1]) for i in range(2)]


def test_an_untrained_encoder_inverts_to_w_avg_without_local_detail(G, proxy) -> None:
    method = small(G).eval()
    with torch.no_grad():
        ws, local = method.encode(proxy["images"], proxy["cameras"])
    torch.testing.assert_close(ws, G.w_avg.reshape(1, 1, -1).expand(2, G.num_ws, -1))
    assert local is not None and torch.count_nonzero(local.features) == 0


def test_zero_local_features_render_the_global_only_render(G, proxy) -> None:
    """To float rounding: the hooked render reads the per-plane features, the plain one the fused plane mean."""
    method = small(G).eval()
    randomize_outputs(method)
    with torch.no_grad():
        [inv] = method.invert_batch(items_of(proxy)[:1])
    inv.tensors["local_features"] = torch.zeros_like(inv.tensors["local_features"])
    cams = proxy["novel_cameras"][0]
    with torch.no_grad():
        ours = method.renderer(inv)(cams)
        plain = LatentRenderer(G, Inversion("p0", "e3dge", inv.ws, inv.camera))(cams)
    for key in ("image", "image_raw", "image_depth"):
        torch.testing.assert_close(ours[key], plain[key], rtol=0, atol=1e-5, msg=key)


def test_local_features_change_the_render_only_where_the_input_view_sees(G, proxy) -> None:
    method = small(G).eval()
    randomize_outputs(method)
    with torch.no_grad():
        [inv] = method.invert_batch(items_of(proxy)[:1])
        local = method.stored_local(inv)
        front = method.renderer(inv)(proxy["cameras"][:1])
        plain = LatentRenderer(G, Inversion("p0", "e3dge", inv.ws, inv.camera))(proxy["cameras"][:1])
    assert local is not None and local.visibility == "depth"
    assert (front["image_raw"] - plain["image_raw"]).abs().max() > 1e-3
    # behind the visible surface (the back of the head) the gate closes
    origin = inv.camera[0, [3, 7, 11]]
    centre = torch.tensor([0.0, 0.0, 0.2])
    ray = (centre - origin) / (centre - origin).norm()
    depth_at_centre = float(local.depth[0, 0, local.depth.shape[-1] // 2, local.depth.shape[-1] // 2])
    points = torch.stack([origin + ray * (depth_at_centre - 0.05), origin + ray * (depth_at_centre + 0.3)])[None]
    features = sample_features(local, points)
    assert features[0, 1].abs().max() < 1e-3 * max(features[0, 0].abs().max(), 1e-3) + 1e-6


def test_sample_features_reads_the_map_at_the_projection() -> None:
    feats = torch.arange(16.0).reshape(1, 1, 4, 4)
    cam = yaw_pitch_camera(0.0, 0.0)
    local = PixelAlignedFeatures(feats, cam, visibility="in_image")
    # the look-at point projects to the image centre: the mean of the 4 central texels
    value = sample_features(local, torch.tensor([[[0.0, 0.0, 0.2]]]))
    assert value.item() == pytest.approx(float(feats[0, 0, 1:3, 1:3].mean()))
    with pytest.raises(ValueError, match="depth"):
        PixelAlignedFeatures(feats, cam, visibility="depth")


@pytest.mark.parametrize("stage", ["global", "local"])
def test_one_training_step_lowers_the_loss_on_a_fixed_batch(G, proxy, stage: str) -> None:
    method = small(G, local_start_step=0 if stage == "local" else 10**6)
    if stage == "local":
        randomize_outputs(method)  # a trained global branch (and a non-zero local head) to start from
    method.train()
    weights = method.config.local_losses if stage == "local" else method.config.global_losses
    opt = method.configure_optimizers()
    before = {k: v.clone() for k, v in method.method_state_dict().items()}
    first = sum(method.stage_losses(proxy, stage, weights).values())
    opt.zero_grad()
    first.backward()
    opt.step()
    after = sum(method.stage_losses(proxy, stage, weights).values())
    assert float(after.detach()) < float(first.detach())
    changed = {k.split(".")[0] for k, v in method.method_state_dict().items() if not torch.equal(v, before[k])}
    assert changed == ({"local_encoder"} if stage == "local" else {"encoder"})  # stage 2 freezes the global branch


def test_checkpoints_round_trip_and_the_ablation_switches_reuse_them(G, proxy, tmp_path: Path) -> None:
    method = small(G).eval()
    randomize_outputs(method)
    path = tmp_path / "enc.safetensors"
    method.save_checkpoint(path)
    loaded = build_method("e3dge", {**SMALL, "checkpoint": str(path)}, G).eval()
    glob = build_method("e3dge", {**SMALL, "checkpoint": str(path), "use_local": False}, G).eval()
    base = build_method("e3dge", {**SMALL, "checkpoint": str(path), "use_global": False, "use_local": False}, G).eval()
    with torch.no_grad():
        a, b = method.invert_batch(items_of(proxy)), loaded.invert_batch(items_of(proxy))
        g, w = glob.invert_batch(items_of(proxy)), base.invert_batch(items_of(proxy))
    for x, y in zip(a, b):
        assert torch.equal(x.ws, y.ws) and torch.equal(x.tensors["local_features"], y.tensors["local_features"])
    assert torch.equal(g[0].ws, a[0].ws) and not g[0].tensors
    torch.testing.assert_close(w[0].ws, G.w_avg.reshape(1, 1, -1).expand(1, G.num_ws, -1))
    with pytest.raises(ValueError, match="does not match"):
        build_method("e3dge", {**SMALL, "checkpoint": str(path), "local": {**SMALL["local"], "enabled": False}}, G)


def test_a_saved_inversion_renders_the_same(G, proxy, tmp_path: Path) -> None:
    method = small(G).eval()
    randomize_outputs(method)
    with torch.no_grad():
        [inv] = method.invert_batch(items_of(proxy)[:1])
        inv.save(tmp_path / "inv.safetensors")
        again = Inversion.load(tmp_path / "inv.safetensors")
        cams = proxy["novel_cameras"][0]
        assert again.kind == "e3dge"
        assert torch.equal(method.renderer(inv)(cams)["image"], method.renderer(again)(cams)["image"])
    assert method.inversion_bytes(method.config, G) >= inv.storage_bytes() - 4 * 25


def test_the_bench_refuses_an_untrained_encoder_and_names_make_train_tiny(G) -> None:
    from warpinv.bench.preflight import PreflightReport, check_checkpoint
    from warpinv.bench.suite import ResolvedMethod

    def missing(config: dict) -> list[str]:
        cfg = E3DGE.Config(**{k: v for k, v in config.items() if k in ("checkpoint", "allow_untrained")})
        report = PreflightReport()
        check_checkpoint(ResolvedMethod("e3dge", "e3dge", cfg, "h", None, {}, [], "tiny"), E3DGE, report)
        return [item.line() for item in report.missing]

    [line] = missing({})
    assert "make train-tiny" in line and "checkpoint" in line
    [line] = missing({"checkpoint": "checkpoints/e3dge_tiny.safetensors.gone"})
    assert "does not exist" in line
    assert missing({"allow_untrained": True}) == []
