"""The port against the official EG3D code's outputs (``../shared/fixtures/eg3d``), deterministic mode.

Tolerances are the fixture README's (observed spread between two official runs).
"""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import require_fixture
from warpinv.backbone import EG3DGenerator
from warpinv.backbone.renderer import march

pytestmark = pytest.mark.golden

ATOL = {"ws": 1e-5, "rays": 1e-6, "planes": 1e-5, "features": 1e-5, "raw": 2e-5, "image": 5e-5}


def max_err(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, f"shape {tuple(a.shape)} != {tuple(b.shape)}"
    return (a.double() - b.double()).abs().max().item()


@pytest.fixture(scope="module")
def io() -> dict[str, torch.Tensor]:
    return load_file(require_fixture("eg3d", "small_io.safetensors"))


@pytest.fixture(scope="module")
def G() -> EG3DGenerator:
    config = json.loads(require_fixture("eg3d", "small_config.json").read_text())
    G = EG3DGenerator(**config["init_kwargs"])
    G.load_state_dict(load_file(require_fixture("eg3d", "small_G.safetensors")), strict=True)
    G.neural_rendering_resolution = config["non_init_attributes"]["neural_rendering_resolution"]
    return G.eval().requires_grad_(False)


@pytest.mark.parametrize(
    ("key", "psi", "cutoff"),
    [("ws_psi1", 1.0, None), ("ws_psi0p7_cut14", 0.7, 14), ("ws_psi0p5_cut8", 0.5, 8)],
)
def test_mapping_every_truncation(G: EG3DGenerator, io: dict, key: str, psi: float, cutoff: int | None) -> None:
    ws = G.mapping(io["z"], io["c_A"], truncation_psi=psi, truncation_cutoff=cutoff)
    assert max_err(ws, io[key]) <= ATOL["ws"]


def test_mapping_with_zeroed_camera(G: EG3DGenerator, io: dict) -> None:
    ws = G.backbone.mapping(io["z"], torch.zeros(2, 25))
    assert max_err(ws, io["ws_czero_psi1"]) <= ATOL["ws"]


def test_rays(G: EG3DGenerator, io: dict) -> None:
    origins, dirs = G.rays(io["c_cam1_yaw0p4_pitchm0p2"], 128)
    assert max_err(origins, io["rays_cam1_res128_origins"]) <= ATOL["rays"]
    assert max_err(dirs, io["rays_cam1_res128_directions"]) <= ATOL["rays"]
    c2w = io["c_cam2_offcenter"][:, :16].reshape(1, 4, 4)
    origins, dirs = G.ray_sampler(c2w, io["rays_skew_intrinsics"][None], 16)
    assert max_err(origins, io["rays_skew_cam2_res16_origins"]) <= ATOL["rays"]
    assert max_err(dirs, io["rays_skew_cam2_res16_directions"]) <= ATOL["rays"]


@pytest.fixture(scope="module")
def planes0(G: EG3DGenerator, io: dict) -> torch.Tensor:
    return G.planes(io["ws_psi1"][:1], noise_mode="const")


def test_planes(planes0: torch.Tensor, io: dict) -> None:
    p = planes0[0]
    assert max_err(p[:, :, ::8, ::8], io["planes0_stride8"]) <= ATOL["planes"]
    assert max_err(p[:, :, 120:136, 120:136], io["planes0_center_crop_120_136"]) <= ATOL["planes"]
    sums = p.double().sum(dim=(2, 3))
    torch.testing.assert_close(sums, io["planes0_sum_f64"], rtol=1e-6,
                               atol=1e-6 * io["planes0_abssum_f64"].max().item())


def test_renderer_intermediates(G: EG3DGenerator, planes0: torch.Tensor, io: dict) -> None:
    origins, dirs = io["render_subset_ray_origins"], io["render_subset_ray_directions"]
    full_o, full_d = G.rays(io["c_cam0_front"], 128)
    idx = io["render_subset_ray_index"]
    assert max_err(full_o[:, idx], origins) <= ATOL["rays"] and max_err(full_d[:, idx], dirs) <= ATOL["rays"]
    opts = G.rendering_kwargs
    coarse = G.renderer.coarse_depths(origins, dirs, opts, deterministic=True, generator=None)
    assert max_err(coarse, io["render_subset_depths_coarse"]) <= 1e-6
    field = G.renderer.plane_field(planes0, G.decoder, opts)
    samples = G.renderer.evaluate(field, origins, dirs, coarse)
    weights = march(samples["rgb"], samples["sigma"], coarse, opts).weights
    fine = G.renderer.sample_importance(coarse, weights, opts["depth_resolution_importance"], True, None)
    assert max_err(fine, io["render_subset_depths_fine"]) <= 1e-5
    out = G.renderer(planes0, G.decoder, origins, dirs, opts, deterministic=True)
    features, depth, weight_sum = out  # unpacks as the official triple
    assert max_err(features, io["render_subset_features"]) <= ATOL["features"]
    assert max_err(depth, io["render_subset_depth"]) <= ATOL["raw"]
    assert max_err(weight_sum, io["render_subset_weight_sum"]) <= ATOL["features"]


def test_sample_mixed_and_sample(G: EG3DGenerator, io: dict) -> None:
    out = G.sample_mixed(io["points_coords"], io["points_dirs"], io["ws_psi1"], noise_mode="const")
    assert max_err(out["sigma"], io["sample_mixed_ws_psi1_sigma"]) <= ATOL["features"]
    assert max_err(out["rgb"], io["sample_mixed_ws_psi1_rgb"]) <= ATOL["features"]
    out = G.sample(io["points_coords"], io["points_dirs"], io["z"], io["c_A"], truncation_psi=0.7,
                   truncation_cutoff=14, noise_mode="const")
    assert max_err(out["sigma"], io["sample_z_cA_psi0p7_sigma"]) <= ATOL["features"]
    assert max_err(out["rgb"], io["sample_z_cA_psi0p7_rgb"]) <= ATOL["features"]


@pytest.mark.slow
def test_synthesis_at_128(G: EG3DGenerator, io: dict) -> None:
    out = G.synthesis(io["ws_psi1"], io["c_A"], neural_rendering_resolution=128, noise_mode="const", deterministic=True)
    assert max_err(out["image"], io["synthA_image"]) <= ATOL["image"]
    assert max_err(out["image_raw"], io["synthA_image_raw"]) <= ATOL["raw"]
    assert max_err(out["image_depth"], io["synthA_image_depth"]) <= ATOL["raw"]


def test_synthesis_at_64_and_resolution_side_effect(G: EG3DGenerator, io: dict) -> None:
    out = G.synthesis(io["ws_psi0p7_cut14"], io["c_B"], neural_rendering_resolution=64, noise_mode="const",
                      deterministic=True)
    assert G.neural_rendering_resolution == 64  # the official side effect
    G.neural_rendering_resolution = 128
    assert max_err(out["image"][:, :, 192:320, 192:320], io["synthB_image_crop_192_320"]) <= ATOL["image"]
    assert max_err(out["image_raw"], io["synthB_image_raw"]) <= ATOL["raw"]
    assert max_err(out["image_depth"], io["synthB_image_depth"]) <= ATOL["raw"]
    sums = out["image"].double().sum(dim=(1, 2, 3))
    torch.testing.assert_close(sums, io["synthB_image_sum_f64"], rtol=1e-6,
                               atol=1e-6 * io["synthB_image_abssum_f64"].max().item())


def test_full_forward(G: EG3DGenerator, io: dict) -> None:
    out = G(io["z"][:1], io["c_cam1_yaw0p4_pitchm0p2"], truncation_psi=1, neural_rendering_resolution=128,
            noise_mode="const", deterministic=True)
    assert max_err(out["image"][:, :, :64, :64], io["forward_z0_cam1_image_crop_0_64"]) <= ATOL["image"]
    assert max_err(out["image_raw"], io["forward_z0_cam1_image_raw"]) <= ATOL["raw"]
    assert max_err(out["image_depth"], io["forward_z0_cam1_image_depth"]) <= ATOL["raw"]


def test_default_mode_is_stochastic(G: EG3DGenerator, io: dict) -> None:
    """Without ``deterministic`` the renderer jitters depths and draws importance samples, as official."""
    origins, dirs = io["render_subset_ray_origins"], io["render_subset_ray_directions"]
    planes = G.planes(io["ws_psi1"][:1], noise_mode="const")
    a = G.renderer(planes, G.decoder, origins, dirs, G.rendering_kwargs, generator=torch.Generator().manual_seed(0))
    b = G.renderer(planes, G.decoder, origins, dirs, G.rendering_kwargs, generator=torch.Generator().manual_seed(1))
    c = G.renderer(planes, G.decoder, origins, dirs, G.rendering_kwargs, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(a.depths, b.depths)
    assert torch.equal(a.features, c.features)
    det = G.renderer(planes, G.decoder, origins, dirs, G.rendering_kwargs, deterministic=True)
    # Jitter moves samples by less than one bin: the stochastic render stays close to the deterministic one.
    assert max_err(a.features, det.features) < 0.5
