"""IBRNet port vs the golden fixtures made by running googleinterns/IBRNet @ 41807b2 (CPU).

Weights: ``feature_net.*`` tensors of ndim >= 2 come from the seeded rule in
``../shared/fixtures/README.md``; all others from ``small_tensors.safetensors``. Tolerances from the
README: feature maps 1e-4, coarse rgb 2e-5 (where the coarse mask is set), fine rgb 1e-3, fine depth
2e-2. Tensors the README gives no bound for use bounds a few times the official code's own float32 vs
float64 difference (recorded in config.json or measured with the float64 fixtures).
"""
from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import pytest
import torch
from torch import Tensor

from tests.helpers import require_fixture
from warpinv.metrics import ibrnet_net
from warpinv.metrics.ibrnet import IBRNet, camera_rays, unwrap_checkpoint

safetensors_torch = pytest.importorskip("safetensors.torch")

README_TOL = {"featmap": 1e-4, "coarse_rgb": 2e-5, "fine_rgb": 1e-3, "fine_depth": 2e-2}
# Bounds for the remaining tensors (official f32-vs-f64 difference in brackets).
EXTRA_TOL = {
    "coarse_z_vals": 1e-6,  # [4.4e-7]
    "coarse_raw": 5e-5,  # [7.8e-6]
    "coarse_weights": 5e-5,  # [4.9e-6]
    "coarse_alpha": 5e-5,  # [6.4e-6]
    "coarse_depth": 5e-5,  # [8.8e-6]
    "fine_z_vals": 2e-2,  # [5.8e-3]: inverse-CDF switch at denom < 1e-5
    "fine_raw": 5e-2,  # [1.5e-2]
    "fine_weights": 5e-2,  # [8.4e-3]
    "pos_encoding": 1e-7,
    "pts": 1e-5,
    "ray_diff": 1e-5,
    "rays": 1e-6,
}
F64_TOL = 1e-8  # the float64 port reproduces the official float64 run to rounding
N_RAYS, N_FIRST = 256, 16


def _max_err(a: Tensor, b: Tensor) -> float:
    return (a.double() - b.double().reshape(a.shape)).abs().max().item()


def _assert_close(name: str, actual: Tensor, expected: Tensor, atol: float) -> None:
    err = _max_err(actual, expected)
    assert err <= atol, f"{name}: max abs error {err:.3e} > {atol:.1e}"


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads(require_fixture("ibrnet", "manifest.json").read_text())


@pytest.fixture(scope="module")
def config() -> dict:
    return json.loads(require_fixture("ibrnet", "config.json").read_text())


@pytest.fixture(scope="module")
def io() -> dict[str, Tensor]:
    return safetensors_torch.load_file(str(require_fixture("ibrnet", "io.safetensors")))


def _rule_tensor(key: str, shape: list[int]) -> Tensor:
    g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    return torch.randn(shape, generator=g, dtype=torch.float32) / math.sqrt(math.prod(shape[1:]))


@pytest.fixture(scope="module")
def state_dict(manifest: dict) -> dict[str, Tensor]:
    small = safetensors_torch.load_file(str(require_fixture("ibrnet", "small_tensors.safetensors")))
    sd = {}
    for key, entry in manifest["state_dict"].items():
        sd[key] = _rule_tensor(key, entry["shape"]) if entry["source"] == "rule" else small[key]
    return sd


@pytest.fixture(scope="module")
def net(state_dict: dict[str, Tensor]) -> IBRNet:
    model = IBRNet()
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


@pytest.fixture(scope="module")
def features(net: IBRNet, io: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    with torch.no_grad():
        return net.extract_features(io["src_rgbs"])


@pytest.fixture(scope="module")
def rendered(net: IBRNet, io: dict[str, Tensor], features: tuple[Tensor, Tensor]) -> dict[str, Tensor]:
    with torch.no_grad():
        return net.render_rays(io["ray_o"], io["ray_d"], io["src_rgbs"], io["src_cameras"], io["depth_range"],
                               deterministic=True, features=features, return_intermediates=True)


# ---------------------------------------------------------------------------------------------
# structure and weights
# ---------------------------------------------------------------------------------------------


def test_state_dict_matches_manifest(manifest: dict, config: dict) -> None:
    sd = IBRNet().state_dict()
    expected = manifest["state_dict"]
    assert list(sd) == list(expected), "state_dict keys (or their order) differ from model_255000.pth"
    for key, tensor in sd.items():
        assert list(tensor.shape) == expected[key]["shape"], key
        assert str(tensor.dtype).removeprefix("torch.") == expected[key]["dtype"], key
    for name, count in config["n_params"].items():
        assert sum(t.numel() for k, t in sd.items() if k.startswith(name + ".")) == count, name


def test_positional_tables_are_not_state(net: IBRNet, io: dict[str, Tensor]) -> None:
    for level, mlp in (("coarse", net.net_coarse), ("fine", net.net_fine)):
        _assert_close(f"pos_encoding_{level}", mlp.pos_encoding, io[f"pos_encoding_{level}"], EXTRA_TOL["pos_encoding"])
    assert not any("pos_encoding" in key for key in net.state_dict())


def test_variants_change_the_state_dict() -> None:
    keys = set(IBRNet(anti_alias_pooling=False).state_dict())
    assert "net_coarse.s" not in keys and "net_fine.s" not in keys
    coarse_only = IBRNet(coarse_only=True)
    assert coarse_only.net_fine is None
    assert coarse_only.state_dict()["feature_net.out_conv.weight"].shape == (32, 32, 1, 1)


# ---------------------------------------------------------------------------------------------
# golden outputs (float32)
# ---------------------------------------------------------------------------------------------


def test_feature_maps(features: tuple[Tensor, Tensor], io: dict[str, Tensor]) -> None:
    _assert_close("featmap_coarse", features[0], io["featmap_coarse"], README_TOL["featmap"])
    _assert_close("featmap_fine", features[1], io["featmap_fine"], README_TOL["featmap"])


def test_camera_rays(io: dict[str, Tensor]) -> None:
    ray_o, ray_d = camera_rays(io["tgt_camera"], io["pixel_uv"])
    _assert_close("ray_o", ray_o, io["ray_o"], EXTRA_TOL["rays"])
    _assert_close("ray_d", ray_d, io["ray_d"], EXTRA_TOL["rays"])


def test_projector_first_rays(features: tuple[Tensor, Tensor], io: dict[str, Tensor]) -> None:
    ray_o, ray_d = io["ray_o"][:N_FIRST], io["ray_d"][:N_FIRST]
    src = io["src_rgbs"].permute(0, 3, 1, 2)
    for level, fmap in (("coarse", features[0]), ("fine", features[1])):
        z_vals = io[f"{level}_z_vals"].reshape(N_RAYS, -1)[:N_FIRST]
        pts = z_vals.unsqueeze(2) * ray_d.unsqueeze(1) + ray_o.unsqueeze(1)
        if level == "coarse":
            _assert_close("coarse_pts_first_rays", pts, io["coarse_pts_first_rays"], EXTRA_TOL["pts"])
        rgb_feat, ray_diff, mask = ibrnet_net.gather_source_samples(pts, ray_o, src, io["src_cameras"], fmap)
        _assert_close(f"{level}_rgb_feat", rgb_feat, io[f"{level}_rgb_feat_first_rays"], README_TOL["featmap"])
        _assert_close(f"{level}_ray_diff", ray_diff, io[f"{level}_ray_diff_first_rays"], EXTRA_TOL["ray_diff"])
        assert torch.equal(mask, io[f"{level}_mask_first_rays"]), f"{level} projector mask differs"


def test_coarse_outputs(rendered: dict[str, Tensor], io: dict[str, Tensor]) -> None:
    mask = io["coarse_mask"].reshape(-1).bool()
    assert torch.equal(rendered["coarse_mask"], mask)
    _assert_close("coarse_rgb[mask]", rendered["coarse_rgb"][mask], io["coarse_rgb"].reshape(-1, 3)[mask],
                  README_TOL["coarse_rgb"])
    for key in ("coarse_z_vals", "coarse_raw", "coarse_weights", "coarse_alpha", "coarse_depth"):
        _assert_close(key, rendered[key], io[key], EXTRA_TOL[key])


def test_fine_outputs(rendered: dict[str, Tensor], io: dict[str, Tensor]) -> None:
    assert torch.equal(rendered["fine_mask"], io["fine_mask"].reshape(-1).bool())
    _assert_close("fine_rgb", rendered["fine_rgb"], io["fine_rgb"], README_TOL["fine_rgb"])
    _assert_close("fine_depth", rendered["fine_depth"], io["fine_depth"], README_TOL["fine_depth"])
    for key in ("fine_z_vals", "fine_raw", "fine_weights"):
        _assert_close(key, rendered[key], io[key], EXTRA_TOL[key])


def test_corner_patch_fills_invalid_coarse_rgb(
    net: IBRNet, features: tuple[Tensor, Tensor], io: dict[str, Tensor]
) -> None:
    ray_o, ray_d = camera_rays(io["tgt_camera"], io["corner_pixel_uv"])
    with torch.no_grad():
        out = net.render_rays(ray_o, ray_d, io["src_rgbs"], io["src_cameras"], io["depth_range"], features=features)
    coarse_mask = io["corner_coarse_mask"].reshape(-1).bool()
    assert not coarse_mask.all(), "the corner patch is meant to contain a masked pixel"
    assert torch.equal(out["coarse_mask"], coarse_mask)
    assert torch.equal(out["fine_mask"], io["corner_fine_mask"].reshape(-1).bool())
    assert torch.equal(out["coarse_rgb"][~coarse_mask], torch.ones_like(out["coarse_rgb"][~coarse_mask]))
    _assert_close("corner_coarse_rgb", out["coarse_rgb"], io["corner_coarse_rgb"], README_TOL["coarse_rgb"])
    _assert_close("corner_coarse_depth", out["coarse_depth"], io["corner_coarse_depth"], EXTRA_TOL["coarse_depth"])
    _assert_close("corner_fine_rgb", out["fine_rgb"], io["corner_fine_rgb"], README_TOL["fine_rgb"])
    _assert_close("corner_fine_depth", out["fine_depth"], io["corner_fine_depth"], README_TOL["fine_depth"])


def test_float64_matches_official_float64(state_dict: dict[str, Tensor], io: dict[str, Tensor], config: dict) -> None:
    model = IBRNet()
    model.load_state_dict(state_dict, strict=True)
    model = model.double()
    # The float64 reference traced its rays from the camera and used the config's depth range in float64.
    ray_o, ray_d = camera_rays(io["tgt_camera"].double(), io["pixel_uv"])
    depth_range = torch.tensor(config["render_config"]["depth_range"], dtype=torch.float64)
    with torch.no_grad():
        feats = model.extract_features(io["src_rgbs"].double())
        out = model.render_rays(ray_o, ray_d, io["src_rgbs"].double(), io["src_cameras"].double(), depth_range,
                                features=feats, return_intermediates=True)
    assert out["fine_rgb"].dtype == torch.float64
    _assert_close("featmap_coarse_f64", feats[0], io["featmap_coarse_f64"], F64_TOL)
    _assert_close("featmap_fine_f64", feats[1], io["featmap_fine_f64"], F64_TOL)
    for key in ("coarse_rgb", "coarse_depth", "fine_rgb", "fine_depth", "fine_z_vals"):
        _assert_close(f"{key}_f64", out[key], io[f"{key}_f64"], F64_TOL)


# ---------------------------------------------------------------------------------------------
# API behaviour
# ---------------------------------------------------------------------------------------------


def test_chunking_and_feature_reuse_do_not_change_results(
    net: IBRNet, rendered: dict[str, Tensor], io: dict[str, Tensor]
) -> None:
    n = 40
    with torch.no_grad():
        out = net.render_rays(io["ray_o"][:n], io["ray_d"][:n], io["src_rgbs"], io["src_cameras"],
                              io["depth_range"].reshape(1, 2), chunk_size=7)
    for key in ("coarse_rgb", "coarse_depth", "fine_rgb", "fine_depth"):
        assert torch.allclose(out[key], rendered[key][:n], atol=1e-6, rtol=0), key
    assert "fine_raw" not in out


def test_stochastic_mode_is_seeded(net: IBRNet, features: tuple[Tensor, Tensor], io: dict[str, Tensor]) -> None:
    args = (io["ray_o"][:8], io["ray_d"][:8], io["src_rgbs"], io["src_cameras"], [2.25, 3.3])

    def run(seed: int) -> dict[str, Tensor]:
        with torch.no_grad():
            return net.render_rays(*args, deterministic=False, features=features,
                                   generator=torch.Generator().manual_seed(seed), return_intermediates=True)

    a, b, c = run(0), run(0), run(1)
    assert torch.equal(a["fine_rgb"], b["fine_rgb"]) and torch.equal(a["fine_z_vals"], b["fine_z_vals"])
    assert not torch.equal(a["coarse_z_vals"], c["coarse_z_vals"])
    z = a["coarse_z_vals"]
    assert bool((z >= 2.25 - 1e-6).all() and (z <= 3.3 + 1e-6).all() and (z.diff(dim=1) >= 0).all())
    assert torch.isfinite(a["fine_rgb"]).all()


def test_coarse_only_model_renders(io: dict[str, Tensor]) -> None:
    model = IBRNet(coarse_only=True).eval()
    with torch.no_grad():
        coarse, fine = model.extract_features(io["src_rgbs"])
        out = model.render_rays(io["ray_o"][:4], io["ray_d"][:4], io["src_rgbs"], io["src_cameras"], [2.25, 3.3])
    assert fine is None and coarse.shape == (5, 32, 16, 16)
    assert set(out) == {"coarse_rgb", "coarse_depth", "coarse_mask"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.update(src_cameras=a["src_cameras"][:, :33]), "34"),
        (lambda a: a.update(src_cameras=a["src_cameras"][:4]), "34"),
        (lambda a: a.update(src_rgbs=a["src_rgbs"] * 2 - 1), r"\[0, 1\]"),
        (lambda a: a.update(src_rgbs=a["src_rgbs"].permute(0, 3, 1, 2)), r"\(V, H, W, 3\)"),
        (lambda a: a.update(src_rgbs=a["src_rgbs"][:1], src_cameras=a["src_cameras"][:1]), "at least 2"),
        (lambda a: a.update(src_rgbs=a["src_rgbs"][:, :32]), "differ"),
        (lambda a: a.update(ray_o=a["ray_o"][:, :2]), r"ray_o must be a \(N, 3\) tensor"),
        (lambda a: a.update(ray_d=a["ray_d"][:3]), "ray_d batch 3 does not match ray_o batch 4"),
        (lambda a: a.update(depth_range=torch.tensor([3.3, 2.25])), "near < far"),
        (lambda a: a.update(depth_range=torch.tensor([0.0, 2.25])), "near < far"),
        (lambda a: a.update(depth_range=torch.tensor([1.0, 2.0, 3.0])), r"\(2,\) or \(1, 2\)"),
        (lambda a: a.update(features=(torch.zeros(5, 16, 16, 16), torch.zeros(5, 32, 16, 16))), "coarse features"),
        (lambda a: a.update(features=torch.zeros(5, 64, 16, 16)), "pair"),
    ],
)
def test_input_checks_raise_value_errors(net: IBRNet, io: dict[str, Tensor], change, message: str) -> None:
    args = dict(ray_o=io["ray_o"][:4], ray_d=io["ray_d"][:4], src_rgbs=io["src_rgbs"], src_cameras=io["src_cameras"],
                depth_range=io["depth_range"])
    change(args)
    with pytest.raises(ValueError, match=message):
        net.render_rays(**args)


def test_extract_features_and_camera_rays_check_inputs(net: IBRNet, io: dict[str, Tensor]) -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        net.extract_features(io["src_rgbs"] * 255)
    with pytest.raises(ValueError, match="34"):
        camera_rays(io["tgt_camera"][:33], io["pixel_uv"])


# ---------------------------------------------------------------------------------------------
# checkpoint loading
# ---------------------------------------------------------------------------------------------


def _official_layout_checkpoint(model: IBRNet, path: Path, legacy: bool) -> None:
    """Save like upstream ``IBRNetModel.save_model``: optimizer, scheduler and three state dicts.

    ``legacy`` writes the pre-1.6 (non-zip) format the released file (PyTorch 1.5 era) probably uses.
    """
    optimizer = torch.optim.Adam([{"params": model.net_coarse.parameters()}, {"params": model.net_fine.parameters()},
                                  {"params": model.feature_net.parameters(), "lr": 1e-3}], lr=5e-4)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=50000, gamma=0.5)
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "net_coarse": model.net_coarse.state_dict(), "feature_net": model.feature_net.state_dict(),
                "net_fine": model.net_fine.state_dict()}, path, _use_new_zipfile_serialization=not legacy)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_from_pretrained_unwraps_official_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, legacy: bool) -> None:
    torch.manual_seed(0)
    source = IBRNet()
    path = tmp_path / "model_255000.pth"
    _official_layout_checkpoint(source, path, legacy)

    loaded = IBRNet.from_pretrained(path)
    assert not loaded.training
    for key, tensor in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], tensor), key

    import warpinv.weights

    monkeypatch.setattr(warpinv.weights, "resolve", lambda name: path if name == "ibrnet" else None, raising=False)
    via_registry = IBRNet.from_pretrained()
    assert torch.equal(via_registry.net_fine.s, source.net_fine.s)


def test_unwrap_checkpoint_accepts_flat_and_rejects_foreign() -> None:
    flat = {"feature_net.conv1.weight": torch.zeros(1), "net_coarse.s": torch.zeros(())}
    assert unwrap_checkpoint(flat) == flat
    with pytest.raises(ValueError, match="not an IBRNet checkpoint"):
        unwrap_checkpoint({"state_dict": {}, "epoch": 3})
