"""In-N-Out's parts against the released code's outputs (``../shared/fixtures/in_n_out``).

Covers the composite marcher (``composite_io``), the OOD decoder and its tri-plane lookup (``ood_decoder_io``),
the losses (``losses_io``) and the OOD removal (``ood_removal_io``). Every shape and setting comes from the files
(the same tests run on variants with other sizes, seeds and batches); settings that only the fixture README states
(``box_warp``, the W+ residual weight) are read from the README. Tolerances are the README's.
"""
from __future__ import annotations

import ast
import json
import math
import re
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from torch import Tensor

from tests.helpers import require_fixture
from warpinv.backbone.renderer import march, march_composite, sample_from_planes
from warpinv.methods.in_n_out import losses
from warpinv.methods.in_n_out.networks import OODDecoder, OODField
from warpinv.methods.in_n_out.removal import dilate, lowres_ood_mask, ood_rays, remove_ood

pytestmark = pytest.mark.golden

ATOL = {"rgb": 2e-6, "depth": 3e-6, "weights": 1e-6, "internal": 1e-6, "decoder_A": 1e-6, "decoder_B": 2e-6,
        "loss": 1e-6}
DELTA_RTOL = 1e-6
PREFIX = "new_triplanes."


def close(ours: Tensor, theirs: Tensor, atol: float, name: str, rtol: float = 0.0) -> None:
    torch.testing.assert_close(ours, theirs, atol=atol, rtol=rtol, msg=lambda m: f"{name}: {m}")


def readme_number(pattern: str) -> float:
    """A setting the fixture README states in prose (``pattern`` has one group around the number)."""
    found = re.findall(pattern, require_fixture("in_n_out", "README.md").read_text())
    assert len(set(found)) == 1, f"README should state {pattern!r} exactly once, found {found}"
    return float(found[0])


# --- composite marcher -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def composite_io() -> dict[str, Tensor]:
    return load_file(require_fixture("in_n_out", "composite_io.safetensors"))


@pytest.fixture(scope="module")
def composite_cases() -> dict[str, tuple[str, dict[str, Any]]]:
    """Case name -> (blend source, marcher options), parsed from the config's description of each call."""
    config = json.loads(require_fixture("in_n_out", "composite_config.json").read_text())
    cases = {}
    for name, text in config["cases"].items():
        blend = re.search(r"BLEND=(\w+)", text)
        options = re.search(r"OPTS=(\{[^}]*\})", text)
        assert blend is not None, f"case {name}: no BLEND in {text!r}"
        cases[name] = (blend.group(1), ast.literal_eval(options.group(1)) if options else {"clamp_mode": "softplus"})
    return cases


def _fields(io: dict[str, Tensor], blend: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    inner = {"rgb": io["in_colors_ind"], "sigma": io["in_densities_ind"]}
    outer = {"rgb": io["in_colors_ood"], "sigma": io["in_densities_ood"], "blend": blend}
    return inner, outer


def _blend(io: dict[str, Tensor], source: str) -> Tensor:
    like = io["in_blend"]
    return {"zeros": torch.zeros_like(like), "ones": torch.ones_like(like)}.get(source, io.get(source))


def test_in_n_out_composite_config_lists_the_five_cases(composite_cases: dict) -> None:
    assert set(composite_cases) == {"main", "b0", "b1", "b_x1p2", "white_back"}


@pytest.mark.parametrize("case", ["main", "b0", "b1", "b_x1p2", "white_back"])
def test_in_n_out_composite_case(composite_io: dict, composite_cases: dict, case: str) -> None:
    source, options = composite_cases[case]
    blend = _blend(composite_io, source)
    assert blend is not None, f"unknown blend source {source!r}"
    out = march_composite(*_fields(composite_io, blend), composite_io["in_depths"], options)
    close(out.rgb, composite_io[f"out_{case}_rgb"], ATOL["rgb"], f"{case} rgb")
    close(out.depth, composite_io[f"out_{case}_depth"], ATOL["depth"], f"{case} depth")
    close(out.weights, composite_io[f"out_{case}_weights"], ATOL["weights"], f"{case} weights")


def test_in_n_out_composite_sorted_inputs_are_the_gathered_halves(composite_io: dict) -> None:
    """The sorted samples the cases use are the coarse and fine sets gathered by the stored sort indices."""
    io = composite_io
    index = io["in_sort_indices"]
    for key in ("depths", "blend", "densities_ind", "densities_ood"):
        both = torch.cat([io[f"in_{key}_coarse"], io[f"in_{key}_fine"]], dim=-2)
        assert torch.equal(torch.gather(both, -2, index), io[f"in_{key}"]), key


@pytest.mark.parametrize("field", ["ind", "ood"])
def test_in_n_out_plain_march(composite_io: dict, field: str) -> None:
    io = composite_io
    out = march(io[f"in_colors_{field}"], io[f"in_densities_{field}"], io["in_depths"], {"clamp_mode": "softplus"})
    close(out.rgb, io[f"plain_{field}_rgb"], ATOL["rgb"], f"plain {field} rgb")
    close(out.depth, io[f"plain_{field}_depth"], ATOL["depth"], f"plain {field} depth")
    close(out.weights, io[f"plain_{field}_weights"], ATOL["weights"], f"plain {field} weights")


@pytest.mark.parametrize(("value", "field"), [(0.0, "ind"), (1.0, "ood")])
def test_in_n_out_constant_blend_reproduces_one_field(composite_io: dict, value: float, field: str) -> None:
    """Port-internal: b = 0 renders the InD field alone, b = 1 the OOD field alone."""
    io = composite_io
    options = {"clamp_mode": "softplus"}
    blended = march_composite(*_fields(io, torch.full_like(io["in_blend"], value)), io["in_depths"], options)
    plain = march(io[f"in_colors_{field}"], io[f"in_densities_{field}"], io["in_depths"], options)
    for key in ("rgb", "depth", "weights"):
        close(getattr(blended, key), getattr(plain, key), ATOL["internal"], f"b={value} {key}")


def test_in_n_out_composite_empty_ray_depth_is_the_global_max(composite_io: dict) -> None:
    """The all-empty ray ``[0, 0]`` gets the largest depth of the whole call (README fact 1)."""
    io = composite_io
    out = march_composite(*_fields(io, io["in_blend"]), io["in_depths"], {"clamp_mode": "softplus"})
    assert out.depth[0, 0, 0] == io["in_depths"].max()


# --- OOD decoder -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def decoder_io() -> dict[str, Tensor]:
    return load_file(require_fixture("in_n_out", "ood_decoder_io.safetensors"))


@pytest.fixture(scope="module")
def decoder_weights() -> dict[str, Tensor]:
    weights = load_file(require_fixture("in_n_out", "ood_decoder_weights.safetensors"))
    assert all(k.startswith(PREFIX) for k in weights), sorted(weights)
    return {k.removeprefix(PREFIX): v for k, v in weights.items()}


def _decoder(weights: dict[str, Tensor], features: Tensor, phi: Tensor) -> OODDecoder:
    decoder = OODDecoder(n_features=features.shape[-1], code_dim=phi.shape[-1],
                         hidden_dim=weights["decoder.net.0.weight"].shape[0])
    decoder.load_state_dict({k.removeprefix("decoder."): v for k, v in weights.items()}, strict=True)
    return decoder.eval()


def test_in_n_out_decoder_case_a(decoder_io: dict, decoder_weights: dict) -> None:
    io, atol = decoder_io, ATOL["decoder_A"]
    features, phi = io["A_in_sampled_features"], io["A_in_phi"]
    decoder = _decoder(decoder_weights, features, phi)
    with torch.no_grad():
        raw, out = decoder.raw(features, phi), decoder(features, phi)
    close(raw, io["A_out_raw"], atol, "A raw")
    close(out["sigma"], io["A_out_sigma"], atol, "A sigma")
    close(out["rgb"], io["A_out_rgb"], atol, "A rgb")
    close(out["blend"], io["A_out_blending"], atol, "A blend")


def test_in_n_out_decoder_case_b_with_plane_lookup(decoder_io: dict, decoder_weights: dict) -> None:
    io, atol = decoder_io, ATOL["decoder_B"]
    planes, points, phi = io["B_in_planes"], io["B_in_coordinates"], io["B_in_phi"]
    box_warp = readme_number(r"box_warp (\d+(?:\.\d+)?)")
    features = sample_from_planes(planes, points, box_warp)
    close(features, io["B_sampled_features"], atol, "B sampled features")
    field = OODField(channels=planes.shape[2], resolution=planes.shape[-1])
    parts = []
    for i in range(planes.shape[0]):  # one OOD tri-plane per field: a batch of planes is a batch of fields
        field.load_state_dict({"triplanes": planes[i:i + 1], **decoder_weights}, strict=True)
        with torch.no_grad():
            parts.append(field.evaluate(points[i:i + 1], phi[i:i + 1] if phi.shape[0] > 1 else phi,
                                        {"box_warp": box_warp}))
    out = {key: torch.cat([part[key] for part in parts]) for key in parts[0]}
    close(out["sigma"], io["B_out_sigma"], atol, "B sigma")
    close(out["rgb"], io["B_out_rgb"], atol, "B rgb")
    close(out["blend"], io["B_out_blending"], atol, "B blend")


# --- losses ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def losses_io() -> dict[str, Tensor]:
    return load_file(require_fixture("in_n_out", "losses_io.safetensors"))


@pytest.mark.parametrize(("key", "skewness", "variant"), [
    ("entropy_skew2_elem", 2.0, "entropy"), ("entropy_skew1_elem", 1.0, "entropy"), ("lap_skew2_elem", 2.0, "lap"),
])
def test_in_n_out_blend_regulariser_elements(losses_io: dict, key: str, skewness: float, variant: str) -> None:
    io = losses_io
    loss = losses.blend_entropy if variant == "entropy" else losses.blend_laplace
    ours = loss(io["in_blendw_coarse"], io["in_blendw_fine"], skewness=skewness)
    close(ours, io[key], ATOL["loss"], key)


def test_in_n_out_blend_entropy_mean(losses_io: dict) -> None:
    io = losses_io
    ours = losses.blend_entropy(io["in_blendw_coarse"], io["in_blendw_fine"]).mean()
    close(ours, io["entropy_skew2_mean"], ATOL["loss"], "entropy mean")


def test_in_n_out_blend_area_and_sparsity(losses_io: dict) -> None:
    io = losses_io
    close(losses.blend_area(io["in_blendw_coarse"], io["in_blendw_fine"]), io["area"], ATOL["loss"], "area")
    ours = losses.blend_sparsity(io["in_blendw_coarse"], io["in_blendw_fine"], io["in_sparse_mask"])
    close(ours, io["sparse"], ATOL["loss"], "sparse")


def test_in_n_out_wplus_composition_and_delta_regulariser(losses_io: dict) -> None:
    io = losses_io
    weight = readme_number(r"ws_plus_cano_opt \+ (\d+(?:\.\d+)?)\*residual")
    ws = losses.compose_wplus(io["in_ws_plus_cano"], io["in_ws_plus_residual"], weight)
    close(ws, io["w_plus_composed"], ATOL["loss"], "w+ composition")
    delta = losses.layer_delta_norms(ws)
    close(delta, io["delta_reg_unweighted"], 0.0, "delta regulariser", rtol=DELTA_RTOL)
    weighted = [k for k in io if k.startswith("delta_reg_weighted_")]
    assert weighted, "no weighted delta regulariser in the file"
    for key in weighted:
        close(float(key.removeprefix("delta_reg_weighted_")) * delta, io[key], 0.0, key, rtol=DELTA_RTOL)


def _mse_terms(io: dict[str, Tensor]) -> dict[str, Tensor]:
    """The six recorded MSE terms from the file's inputs (README fact 12; the masks are 1 = keep)."""
    raw_target, raw_keep = io["in_target_downsampled"], io["in_mask_downsampled"]
    target, keep = io["in_target_images"], io["in_masks_tensor"]
    full = torch.ones_like(keep)
    return {
        "mse_l2_raw_full": losses.region_mse(io["in_thumb_rgb_full"], raw_target, torch.ones_like(raw_keep)),
        "mse_l2_raw_o": losses.region_mse(io["in_thumb_rgb_o"], raw_target, 1 - raw_keep),
        "mse_l2_sr_full": losses.region_mse(io["in_synth_images_full"], target, full),
        "mse_l2_sr_o": losses.region_mse(io["in_synth_images_o"], target, 1 - keep),
        "mse_inv_l2_nomask": torch.nn.functional.mse_loss(io["in_synth_images_full"], target),
        "mse_inv_l2_mask": losses.region_mse(io["in_synth_images_full"], target, keep),
    }


def test_in_n_out_mse_terms(losses_io: dict) -> None:
    ours = _mse_terms(losses_io)
    assert set(ours) == {k for k in losses_io if k.startswith("mse_")}
    for key, value in ours.items():
        close(value, losses_io[key], ATOL["loss"], key)


def test_in_n_out_masked_mse_counts_every_mask_channel(losses_io: dict) -> None:
    """The official denominator is the sum of the 3-channel mask; a 1-channel region broadcast to 3 channels
    gives the same value when the channels agree."""
    io = losses_io
    keep = io["in_masks_tensor"]
    if not torch.equal(keep, keep[:, :1].expand_as(keep)):
        pytest.skip("mask channels differ in this variant")
    ours = losses.region_mse(io["in_synth_images_o"], io["in_target_images"], 1 - keep[:, :1])
    close(ours, io["mse_l2_sr_o"], ATOL["loss"], "mse_l2_sr_o from a 1-channel region")


# --- OOD removal -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def removal_io() -> dict[str, Tensor]:
    return load_file(require_fixture("in_n_out", "ood_removal_io.safetensors"))


def _resolution(io: dict[str, Tensor]) -> int:
    resolution = io["ood_masks_lowres"].shape[-1]
    assert resolution == math.isqrt(io["in_blendings"].shape[1]) and resolution ** 2 == io["in_blendings"].shape[1]
    return resolution


def test_in_n_out_removal_masks(removal_io: dict) -> None:
    io = removal_io
    ood = 1 - io["in_masks"]  # the dataset mask is 1 = keep; ours is 1 = OOD
    lowres = lowres_ood_mask(ood, _resolution(io))
    assert torch.equal(lowres, io["ood_masks_lowres"])
    dilated = dilate(lowres).clamp(0, 1)[:, 0].flatten(1)
    assert torch.equal(dilated, io["ood_masks_dilated_flat"])


def test_in_n_out_removal_rays_and_blends(removal_io: dict) -> None:
    io = removal_io
    rays = ood_rays(1 - io["in_masks"], _resolution(io))
    assert torch.equal(rays, io["ood_pixel_ind"].bool())
    summary = json.loads(require_fixture("in_n_out", "run_summary.json").read_text())
    assert int(rays.sum()) == summary["removal"]["n_removed_rays"]
    before = io["in_blendings"].clone()
    out = remove_ood(io["in_blendings"], rays)
    assert torch.equal(out, io["out_blendings"])
    assert torch.equal(io["in_blendings"], before)
