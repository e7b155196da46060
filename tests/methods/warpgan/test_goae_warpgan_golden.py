"""GOAE's Swin-V2 W+ encoder (as WarpGAN builds it) against ``../shared/fixtures/warpgan`` (recorded by running
the official Huang-KT/WarpGAN code). Every shape, setting and tolerance comes from the files."""
from __future__ import annotations

import json
import math
import re
import zlib
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import require_fixture
from warpinv.methods.warpgan.goae import GOAECheckpointError, GOAEConfig, GOAEncoder, goae_input, load_goae_state
from warpinv.methods.warpgan.swin import reset_computed_buffers

pytestmark = pytest.mark.golden

FOLDER = "warpgan"
VARIANTS = ("small", "full")
#: io tensors with a tolerance that other modules produce (the dataset's flip_yaw camera mirror).
OTHER_MODULES = {"c_mirror"}
#: Encoders larger than this are materialised from the meta device (skipping the slow weight initialisation).
META_BUILD_PARAMS = 50_000_000


def read_json(name: str) -> dict[str, Any]:
    return json.loads(require_fixture(FOLDER, name).read_text())


def config_from(swin: dict[str, Any], **goae: Any) -> GOAEConfig:
    """Our config for the official swin config as the fixtures write it (yacs keys) plus GOAEncoder kwargs."""
    assert swin["USE_CHECKPOINT"] is False  # activation checkpointing is not ported
    return GOAEConfig(
        img_size=swin["DATA.IMG_SIZE"], patch_size=swin["PATCH_SIZE"], in_chans=swin["IN_CHANS"],
        embed_dim=swin["EMBED_DIM"], depths=swin["DEPTHS"], num_heads=swin["NUM_HEADS"],
        window_size=swin["WINDOW_SIZE"], pretrained_window_sizes=swin["PRETRAINED_WINDOW_SIZES"],
        mlp_ratio=swin["MLP_RATIO"], qkv_bias=swin["QKV_BIAS"], ape=swin["APE"], patch_norm=swin["PATCH_NORM"],
        drop_rate=swin["DROP_RATE"], drop_path_rate=swin["DROP_PATH_RATE"], **goae)


def manifest_config(manifest: dict[str, Any]) -> GOAEConfig:
    kwargs = manifest["constructor_kwargs"]
    return config_from(manifest["swin_config"], mlp_layer=kwargs["mlp_layer"], num_ws=kwargs["ws_dim"],
                       stage_list=tuple(kwargs["stage_list"]))


def rule_tensor(key: str, shape: list[int]) -> torch.Tensor:
    g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    return torch.randn(shape, generator=g, dtype=torch.float32).div_(math.sqrt(math.prod(shape[1:])))


def entries_of(module: torch.nn.Module) -> dict[str, tuple[list[int], str, str]]:
    """``name -> (shape, dtype, kind)`` of every state-dict entry."""
    kinds = {n: "parameter" for n, _ in module.named_parameters()}
    kinds.update({n: "buffer" for n, _ in module.named_buffers()})
    return {n: (list(t.shape), str(t.dtype).removeprefix("torch."), kinds[n]) for n, t in module.state_dict().items()}


def manifest_entries(state_dict_manifest: dict[str, Any]) -> dict[str, tuple[list[int], str, str]]:
    return {n: (e["shape"], e["dtype"], e["kind"]) for n, e in state_dict_manifest.items()}


def test_goae_encoder_manifest_is_the_default_config() -> None:
    manifest = read_json("goae_encoder_manifest.json")
    config = manifest_config(manifest)
    assert config == GOAEConfig()  # the defaults are the released build
    stage = re.search(r"GOAEncoder\.stage = (\d)", manifest["inference_stage"])
    assert stage is not None
    with torch.device("meta"):
        assert GOAEncoder(config).stage == int(stage.group(1))


def test_goae_encoder_manifest_names_shapes_and_counts() -> None:
    manifest = read_json("goae_encoder_manifest.json")
    with torch.device("meta"):
        encoder = GOAEncoder(manifest_config(manifest))
    expected = manifest_entries(manifest["state_dict"])
    got = entries_of(encoder)
    assert sorted(set(got) - set(expected)) == [] and sorted(set(expected) - set(got)) == []
    assert {n: got[n] for n in expected} == expected
    assert len(got) == manifest["num_state_dict_entries"]
    assert sum(p.numel() for p in encoder.parameters()) == manifest["num_parameters"]


def test_goae_encoder_manifest_loads_the_wrapped_checkpoint_layout() -> None:
    """``torch.load(gan_encoder.pt)['psp_state_dict']`` layout, strict, through :func:`load_goae_state`."""
    manifest = read_json("goae_encoder_manifest.json")
    with torch.device("meta"):
        encoder = GOAEncoder(manifest_config(manifest))
        state = {n: torch.empty(e["shape"], dtype=getattr(torch, e["dtype"]))
                 for n, e in manifest["state_dict"].items()}
    load_goae_state(encoder, {"psp_state_dict": state, "step": 0})
    name = next(iter(state))
    with pytest.raises(GOAECheckpointError, match=f"missing \\(1\\): {name}"):
        load_goae_state(encoder, {"psp_state_dict": {k: v for k, v in state.items() if k != name}})


@pytest.mark.parametrize("variant", VARIANTS)
def test_goae_state_dict_matches_the_config_manifest(variant: str) -> None:
    cfg = read_json(f"goae_{variant}_config.json")
    with torch.device("meta"):
        encoder = GOAEncoder(config_from(cfg["swin_config"]))
    assert entries_of(encoder) == manifest_entries(cfg["state_dict_manifest"])


def build_encoder(cfg: dict[str, Any]) -> GOAEncoder:
    """The fixture's encoder: rule weights, stored tensors, buffers computed by our code; strict load, eval."""
    config = config_from(cfg["swin_config"])
    with torch.device("meta"):
        size = sum(p.numel() for p in GOAEncoder(config).parameters())
    if size > META_BUILD_PARAMS:
        with torch.device("meta"):
            encoder = GOAEncoder(config)
        encoder.to_empty(device="cpu")
        reset_computed_buffers(encoder)
    else:
        encoder = GOAEncoder(config)
    stored = load_file(str(require_fixture(FOLDER, cfg["files"]["tensors"])))
    own = encoder.state_dict()
    state: dict[str, torch.Tensor] = {}
    for name, entry in cfg["state_dict_manifest"].items():
        if entry["source"] == "rule":
            state[name] = rule_tensor(name, entry["shape"])
        elif entry["source"] == "stored":
            state[name] = stored[name].clone()
        else:
            assert entry["source"] == "buffer_computed", entry
            state[name] = own[name].clone()
    load_goae_state(encoder, state)
    return encoder.eval()


@pytest.fixture(scope="module", params=VARIANTS)
def run(request: pytest.FixtureRequest) -> dict[str, Any]:
    """One variant: its config, io tensors, our outputs (or a skip reason for a foreign randn)."""
    cfg = read_json(f"goae_{request.param}_config.json")
    io = {k: v.clone() for k, v in load_file(str(require_fixture(FOLDER, cfg["files"]["io"]))).items()}
    for key in [k for k in io if k.startswith("rule_check_")]:
        name = key.removeprefix("rule_check_")
        shape = cfg["state_dict_manifest"][name]["shape"]
        if not torch.equal(rule_tensor(name, shape)[: io[key].shape[0]], io[key]):
            return {"skip": f"this platform's torch.randn does not reproduce the fixture's rule tensor {name}"}
    encoder = build_encoder(cfg)
    size = cfg["swin_config"]["DATA.IMG_SIZE"]
    source = io["image_uint8"] if "image_uint8" in io else io["x_256"]
    with torch.no_grad():
        feats = encoder.forward_features(io["x_256"])
    tokens = {k: io[k].shape[1] for k in ("x_coarse_head", "x_mid_head", "x_fine_head")}
    ours = {
        "x_256": goae_input(source, size),
        "x_base": feats.x_base, "x_query": feats.x_query,
        "x_coarse_head": feats.x_coarse[:, : tokens["x_coarse_head"]],
        "x_mid_head": feats.x_mid[:, : tokens["x_mid_head"]],
        "x_fine_head": feats.x_fine[:, : tokens["x_fine_head"]],
        "ws_base_1": feats.ws_base_1, "ws_coarse": feats.ws_coarse, "ws_mid": feats.ws_mid,
        "ws_fine": feats.ws_fine, "ws": feats.ws, "codes": feats.ws + io["latent_avg"],
    }
    return {"variant": request.param, "cfg": cfg, "io": io, "ours": ours}


def test_goae_outputs_match_the_official_encoder(run: dict[str, Any]) -> None:
    if "skip" in run:
        pytest.skip(run["skip"])
    io, ours = run["io"], run["ours"]
    per_tensor = run["cfg"]["tolerances"]["per_tensor"]
    unknown = set(per_tensor) - set(ours) - OTHER_MODULES
    assert not unknown, f"fixture tensors this test does not compare: {sorted(unknown)}"
    failures, report = [], []
    for name in sorted(set(per_tensor) & set(ours)):
        assert ours[name] is not None and ours[name].shape == io[name].shape, name
        diff = float((ours[name].double() - io[name].double()).abs().max())
        limit = per_tensor[name]["max_abs"]
        report.append(f"{name} {diff:.2e}/{limit:.0e}")
        if diff > limit:
            failures.append(name)
    assert not failures, f"{run['variant']}: over tolerance {failures}; " + ", ".join(report)

