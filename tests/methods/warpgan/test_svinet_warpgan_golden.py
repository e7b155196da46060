"""SVINet and its discriminator against the official WarpGAN code (``../shared/fixtures/warpgan``).

Variants ``svinet_small_*`` (reduced ngf / n_blocks) and ``svinet_full64_*`` (the released build on a small image)
are rebuilt from their ``constructor_kwargs`` with the README's weights (rule tensors, stored tensors, computed
resample filters), run on the stored 14-channel input and W+ codes, and compared tensor by tensor with the
tolerances of each config. The full-size manifests (``svinet_manifest.json``, its ``discriminator`` key) are
checked on the ``meta`` device. Every shape, size and setting is read from the files.
"""
from __future__ import annotations

import json
import math
import re
import zlib
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from torch import Tensor, nn

from tests.helpers import require_fixture
from warpinv.methods.warpgan.discriminator import NLayerDiscriminator
from warpinv.methods.warpgan.svinet import CHECKPOINT_KEY, SVINet, SVINetConfig, load_svinet_state

pytestmark = pytest.mark.golden

FIXTURE = "warpgan"
VARIANTS = ("small", "full64")
#: io tensors the network itself produces (the rest are pipeline inputs / mask processing, not ours).
NETWORK_TENSOR = re.compile(r"^(down_|cond_|after_|up\d+_img$|out_logits$|net_out$)")
RULE_CHECK_PREFIX = "rule_check_"


def read_json(name: str) -> dict[str, Any]:
    return json.loads(require_fixture(FIXTURE, name).read_text())


def rule_tensor(key: str, shape: list[int]) -> Tensor:
    """The README's weight rule: crc32-seeded randn scaled by ``1 / sqrt(prod(shape[1:]))``."""
    g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    return torch.randn(shape, generator=g, dtype=torch.float32) / math.sqrt(math.prod(shape[1:]))


def resample_filter(shape: list[int]) -> Tensor:
    """``outer(f, f) / sum`` with ``f = [1, 3, 3, 1]`` (the README's ``buffer_computed``)."""
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    out = torch.outer(f, f) / 64
    assert list(out.shape) == shape
    return out


def load_io(name: str) -> dict[str, Tensor]:
    # clone(): safetensors may hand out unaligned storage, which changes CPU matmul rounding (README).
    return {k: v.clone() for k, v in load_file(str(require_fixture(FIXTURE, name))).items()}


def state_layout(module: nn.Module) -> dict[str, tuple[list[int], str, str]]:
    """name -> (shape, dtype, 'parameter' | 'buffer') of every state-dict entry, in order."""
    params = {name for name, _ in module.named_parameters()}
    return {name: (list(t.shape), str(t.dtype).removeprefix("torch."), "parameter" if name in params else "buffer")
            for name, t in module.state_dict().items()}


def manifest_layout(manifest: dict[str, dict[str, Any]]) -> dict[str, tuple[list[int], str, str]]:
    return {name: (e["shape"], e["dtype"], e["kind"]) for name, e in manifest.items()}


def assert_layout_equal(module: nn.Module, manifest: dict[str, dict[str, Any]]) -> None:
    ours, theirs = state_layout(module), manifest_layout(manifest)
    missing, unexpected = sorted(set(theirs) - set(ours)), sorted(set(ours) - set(theirs))
    assert not missing and not unexpected, f"missing {missing[:10]}, unexpected {unexpected[:10]}"
    wrong = [(k, ours[k], theirs[k]) for k in theirs if ours[k] != theirs[k]]
    assert not wrong, f"shape/dtype/kind differ: {wrong[:10]}"
    assert list(ours) == list(theirs), "state-dict order differs from the official one"


# --- small / full64: rule + stored weights, io comparison ---------------------------------------------------------


class Variant:
    """One fixture variant: config, io, the port with the fixture's weights and its outputs."""

    def __init__(self, name: str) -> None:
        self.config = read_json(f"svinet_{name}_config.json")
        self.io = load_io(self.config["files"]["io"])
        self.manifest: dict[str, dict[str, Any]] = self.config["state_dict_manifest"]
        self.net = SVINet(SVINetConfig.from_official(self.config["constructor_kwargs"]))
        self.rule_matches = self._rule_check()

    def _rule_check(self) -> bool:
        checks = {k.removeprefix(RULE_CHECK_PREFIX): v for k, v in self.io.items() if k.startswith(RULE_CHECK_PREFIX)}
        assert checks, "the io file carries no rule_check_* tensor"
        return all(
            torch.equal(rule_tensor(key, self.manifest[key]["shape"])[: len(ref)], ref) for key, ref in checks.items()
        )

    def state_dict(self) -> dict[str, Tensor]:
        stored = load_file(str(require_fixture(FIXTURE, self.config["files"]["tensors"])))
        sd = {}
        for key, entry in self.manifest.items():
            source = entry["source"]
            if source == "rule":
                sd[key] = rule_tensor(key, entry["shape"])
            elif source == "stored":
                sd[key] = stored[key].clone()
            elif source == "buffer_computed":
                sd[key] = resample_filter(entry["shape"])
            else:
                raise AssertionError(f"unknown weight source {source!r} for {key}")
        return sd


@pytest.fixture(scope="module", params=VARIANTS)
def variant(request: pytest.FixtureRequest) -> Variant:
    return Variant(request.param)


@pytest.fixture(scope="module")
def loaded(variant: Variant) -> tuple[Variant, Tensor, dict[str, Tensor]]:
    """The variant's network with the fixture weights (eval), its output and intermediates on the stored input."""
    if not variant.rule_matches:
        pytest.skip("this platform's torch.randn does not reproduce the fixture's rule_check tensor: "
                    "the rule weights cannot be regenerated here")
    load_svinet_state(variant.net, variant.state_dict())
    variant.net.eval()
    with torch.no_grad():
        out, feats = variant.net.forward_with_features(variant.io["net_inp"], variant.io["ws"])
    return variant, out, feats


def test_rule_check_reproduced(variant: Variant) -> None:
    if not variant.rule_matches:
        pytest.skip("this platform's torch.randn differs from the fixture generator's (rule_check mismatch)")


def test_state_dict_layout_matches_manifest(variant: Variant) -> None:
    assert_layout_equal(variant.net, variant.manifest)


def test_computed_buffers_equal_the_official_filter(variant: Variant) -> None:
    ours = variant.net.state_dict()
    computed = [k for k, e in variant.manifest.items() if e["source"] == "buffer_computed"]
    assert computed
    for key in computed:
        torch.testing.assert_close(ours[key], resample_filter(variant.manifest[key]["shape"]), atol=0, rtol=0)


def test_derived_channels(variant: Variant) -> None:
    derived, cfg = variant.config["derived"], variant.net.config
    assert cfg.branch_channels == derived["input_nc_per_branch"]
    assert cfg.encoder_channels == derived["encoder_channels"]
    assert cfg.bottleneck_channels == derived["bottleneck_channels"]
    assert cfg.decoder_channels == derived["decoder_channels"]
    assert list(variant.io["down_ori_l"].shape[1:2]) + list(variant.io["down_ori_g"].shape[1:2]) == \
        derived["bottleneck_local_global"]


def test_output_and_intermediates_match(loaded: tuple[Variant, Tensor, dict[str, Tensor]]) -> None:
    variant, out, feats = loaded
    tolerances = variant.config["tolerances"]["per_tensor"]
    ours = {**feats, "net_out": out}
    expected = {k for k in variant.io if NETWORK_TENSOR.match(k)}
    assert expected <= set(ours), f"intermediates not produced by the port: {sorted(expected - set(ours))}"
    failures, report = [], []
    for name in sorted(expected):
        ref, tol = variant.io[name], tolerances[name]["max_abs"]
        assert ours[name].shape == ref.shape, f"{name}: shape {tuple(ours[name].shape)} vs {tuple(ref.shape)}"
        diff = (ours[name] - ref).abs().max().item()
        report.append(f"{name}={diff:.2e}/{tol:.0e}")
        if not diff <= tol:
            failures.append(f"{name}: max abs diff {diff:.3e} > {tol:.0e}")
    assert not failures, "; ".join(failures) + "\nall: " + ", ".join(report)


def test_pipeline_prediction_is_output_rescaled(loaded: tuple[Variant, Tensor, dict[str, Tensor]]) -> None:
    """Inference returns ``net_out * 2 - 1`` (outside the network)."""
    variant, out, _ = loaded
    tol = variant.config["tolerances"]["per_tensor"]["pipeline_pred"]["max_abs"]
    torch.testing.assert_close(out * 2 - 1, variant.io["pipeline_pred"], atol=tol, rtol=0)


def test_stored_input_channel_order(variant: Variant) -> None:
    """The stored 14-channel input is [hybrid, inversion01, mask, mirror hybrid, inversion01, mirror mask].

    Only stored tensors are compared (mask processing and hybrid fill are ported elsewhere).
    """
    io, c = variant.io, variant.net.config.branch_channels
    inversion01 = ((io["pipeline_inversion"] + 1) / 2).clamp(0, 1)
    tol = variant.config["tolerances"]["per_tensor"]["net_inp"]["max_abs"]
    branches = {0: ("masked_img_hybrid", "mask_processed"), c: ("masked_img_mirror_hybrid", "mask_mirror_processed")}
    for start, (img_key, mask_key) in branches.items():
        torch.testing.assert_close(io["net_inp"][:, start: start + 3], io[img_key], atol=0, rtol=0)
        torch.testing.assert_close(io["net_inp"][:, start + 3: start + 6], inversion01, atol=tol, rtol=0)
        torch.testing.assert_close(io["net_inp"][:, start + 6: start + 7], io[mask_key], atol=0, rtol=0)


# --- full-size manifests on the meta device -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def full_manifest() -> dict[str, Any]:
    return read_json("svinet_manifest.json")


@pytest.fixture(scope="module")
def meta_svinet(full_manifest: dict[str, Any]) -> SVINet:
    with torch.device("meta"):
        return SVINet(SVINetConfig.from_official(full_manifest["constructor_kwargs"]))


def test_full_svinet_manifest(full_manifest: dict[str, Any], meta_svinet: SVINet) -> None:
    assert meta_svinet.config.branch_channels == full_manifest["effective_input_nc"]
    assert_layout_equal(meta_svinet, full_manifest["state_dict"])
    assert len(meta_svinet.state_dict()) == full_manifest["num_state_dict_entries"]
    assert sum(p.numel() for p in meta_svinet.parameters()) == full_manifest["num_parameters"]


def meta_state(manifest: dict[str, dict[str, Any]]) -> dict[str, Tensor]:
    return {k: torch.empty(e["shape"], dtype=getattr(torch, e["dtype"]), device="meta") for k, e in manifest.items()}


def test_full_svinet_checkpoint_loads_strictly(full_manifest: dict[str, Any], meta_svinet: SVINet) -> None:
    state = meta_state(full_manifest["state_dict"])
    load_svinet_state(meta_svinet, {CHECKPOINT_KEY: state})
    load_svinet_state(meta_svinet, state)
    first = next(iter(state))
    broken = {k: v for k, v in state.items() if k != first} | {"model_res.0.conv1.extra": state[first]}
    with pytest.raises(KeyError, match=re.escape(first)) as err:
        load_svinet_state(meta_svinet, {CHECKPOINT_KEY: broken})
    assert "model_res.0.conv1.extra" in str(err.value)


def test_full_discriminator_manifest(full_manifest: dict[str, Any]) -> None:
    spec = full_manifest["discriminator"]
    with torch.device("meta"):
        disc = NLayerDiscriminator(**spec["constructor_kwargs"])
    assert_layout_equal(disc, spec["state_dict"])
    assert sum(p.numel() for p in disc.parameters()) == spec["num_parameters"]
    disc.load_state_dict(meta_state(spec["state_dict"]), strict=True)
