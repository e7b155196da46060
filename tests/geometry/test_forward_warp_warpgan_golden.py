"""WarpGAN's forward warp and mask processing against ``../shared/fixtures/warpgan/warp_*`` (recorded by
running the official ``Warper.forward_warp`` on the ``pesser/splatting`` CPU kernel and ``scripts/infer.py``'s
mask processing). Sizes, cameras, seeds and tolerances come from the files."""
from __future__ import annotations

import json
import re

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import require_fixture
from warpinv.cameras import flip_yaw
from warpinv.geometry import erode
from warpinv.geometry.forward_warping import (
    WARPGAN_ERODE,
    ForwardWarp,
    ForwardWarpConfig,
    draw_blur_sigma,
    forward_warp,
    hole_mask,
    hybrid_fill,
    inpaint_input,
    mirror_inputs,
)

pytestmark = pytest.mark.golden


@pytest.fixture(scope="module")
def config() -> dict:
    return json.loads(require_fixture("warpgan", "warp_config.json").read_text())


@pytest.fixture(scope="module")
def io(config: dict) -> dict[str, torch.Tensor]:
    path = require_fixture("warpgan", config["files"]["io"])
    return {k: v.clone() for k, v in load_file(str(path)).items()}  # clone: aligned storage


def check(config: dict, name: str, ours: torch.Tensor, expected: torch.Tensor, *, tolerance: float | None = None
          ) -> float:
    """Assert ``max |ours - expected| <= max_abs`` of the tensor (or ``tolerance``); return the difference."""
    max_abs = config["tolerances"]["per_tensor"][name]["max_abs"] if tolerance is None else tolerance
    assert ours.shape == expected.shape, f"{name}: shape {tuple(ours.shape)} vs {tuple(expected.shape)}"
    diff = float((ours.double() - expected.double()).abs().max())
    assert diff <= max_abs, f"{name}: max abs diff {diff:.3g} > tolerance {max_abs:g}"
    return diff


def to01(x: torch.Tensor) -> torch.Tensor:
    """``[-1, 1] -> [0, 1]`` as ``scripts/infer.py`` (``(x + 1) / 2``, clamped where it clamps)."""
    return ((x + 1) / 2).clamp(0, 1)


@pytest.fixture(scope="module")
def warps(io: dict[str, torch.Tensor]) -> dict[str, ForwardWarp]:
    """The original and mirrored branches, as ``forward_single`` calls the warp (official mode)."""
    x_mirror, depth_mirror, c_mirror = mirror_inputs(io["x"], io["depth"], io["c"])
    return {
        "": forward_warp((io["x"] + 1) / 2, io["depth"], io["c"], io["c_novel"], ForwardWarpConfig()),
        "_mirror": forward_warp((x_mirror + 1) / 2, depth_mirror, c_mirror, io["c_novel"], ForwardWarpConfig()),
    }


def test_fixture_shapes_follow_the_config(config: dict, io: dict[str, torch.Tensor]) -> None:
    n, (h, w), (dh, dw) = config["batch"], config["image_hw"], config["depth_lowres_hw"]
    assert io["x"].shape[0] == n and io["x"].shape[-2:] == (h, w)
    assert io["depth"].shape == (n, 1, dh, dw)
    assert io["c"].shape == io["c_novel"].shape == io["c_mirror"].shape == (n, 25)


def test_mirror_inputs(config: dict, io: dict[str, torch.Tensor]) -> None:
    x_mirror, depth_mirror, c_mirror = mirror_inputs(io["x"], io["depth"], io["c"])
    check(config, "x_mirror", x_mirror, io["x_mirror"])
    check(config, "depth_mirror", depth_mirror, io["depth_mirror"])
    check(config, "c_mirror", c_mirror, io["c_mirror"])
    assert torch.equal(flip_yaw(io["c"]), io["c_mirror"])


@pytest.mark.parametrize("branch", ["", "_mirror"])
def test_forward_warp_geometry(config: dict, io: dict[str, torch.Tensor], warps: dict[str, ForwardWarp],
                               branch: str) -> None:
    out = warps[branch]
    check(config, f"depth{branch}_up", out.depth_up, io[f"depth{branch}_up"])
    check(config, f"flow{branch}", out.flow, io[f"flow{branch}"])
    if branch == "":  # the fixture stores the internals of the original branch
        check(config, "trans_depth", out.target_depth, io["trans_depth"])
        check(config, "splat_weight", out.weights, io["splat_weight"])


@pytest.mark.parametrize("branch", ["", "_mirror"])
def test_forward_warp_splat_and_visibility(config: dict, io: dict[str, torch.Tensor], warps: dict[str, ForwardWarp],
                                           branch: str) -> None:
    out = warps[branch]
    if branch == "":
        check(config, "splat_num", out.numerator, io["splat_num"])
        check(config, "splat_den", out.denominator, io["splat_den"])
    check(config, f"warp01{branch}", out.warped, io[f"warp01{branch}"])
    check(config, f"vis_mask{branch}", out.visible, io[f"vis_mask{branch}"])
    check(config, f"warp_img{branch}", (out.warped * 2 - 1).clamp(-1, 1), io[f"warp_img{branch}"])


def test_blur_sigmas_follow_the_stated_seed(config: dict, io: dict[str, torch.Tensor]) -> None:
    match = re.search(r"manual_seed\((\d+)\)", json.dumps(config.get("mask_processing", {})))
    if match is None:
        pytest.skip("the config states no seed for the blur sigmas")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(match.group(1)))
        drawn = [draw_blur_sigma() for _ in range(io["blur_sigma"].numel())]  # original, then mirror
    assert drawn == io["blur_sigma"].tolist()


@pytest.mark.parametrize(("branch", "mask_name"), [("", "mask_processed"), ("_mirror", "mask_mirror_processed")])
def test_mask_processing_and_inpaint_input(config: dict, io: dict[str, torch.Tensor], branch: str,
                                           mask_name: str) -> None:
    """From the fixture's own visible masks and warps: erosion, blur at the stored sigma, hybrid fill and the
    7-channel input (the mirrored half is filled with the same un-mirrored render)."""
    sigma = float(io["blur_sigma"][0 if branch == "" else 1])
    visible = io[f"vis_mask{branch}"]
    check(config, f"eroded_vis{branch}", erode(visible, WARPGAN_ERODE), io[f"eroded_vis{branch}"])
    hole = hole_mask(visible, sigma)
    check(config, mask_name, hole, io[mask_name])
    render = to01(io["inversion"])
    warped = to01(io[f"warp_img{branch}"])
    check(config, f"masked_img{branch}_hybrid", hybrid_fill(warped, render, hole), io[f"masked_img{branch}_hybrid"])
    check(config, f"inp{branch}", inpaint_input(warped, render, hole), io[f"inp{branch}"])


@pytest.mark.parametrize(("branch", "mask_name"), [("", "mask_processed"), ("_mirror", "mask_mirror_processed")])
def test_end_to_end_from_our_warp(config: dict, io: dict[str, torch.Tensor], warps: dict[str, ForwardWarp],
                                  branch: str, mask_name: str) -> None:
    """Our warp through our mask processing: the input is off by at most the warp's and the mask's
    tolerances (``|d(a (1 - m) + b m)| <= |da| + |dm|`` for values in [0, 1])."""
    out = warps[branch]
    hole = hole_mask(out.visible, float(io["blur_sigma"][0 if branch == "" else 1]))
    inp = inpaint_input(to01((out.warped * 2 - 1).clamp(-1, 1)), to01(io["inversion"]), hole)
    tol = config["tolerances"]["per_tensor"]
    check(config, f"inp{branch}", inp, io[f"inp{branch}"],
          tolerance=tol[f"warp_img{branch}"]["max_abs"] / 2 + tol[mask_name]["max_abs"])
