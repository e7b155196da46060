"""In-N-Out's whole composite render against ``../shared/fixtures/in_n_out/compose_pipeline_io.safetensors``
(the released ``ComposeTriplane`` forward, raw branch, deterministic sampling), with and without OOD removal.

Every size and setting comes from the file: the raw resolution from its metadata, the depth range and the
sample counts from the stored InD depths, the planes and decoders from the stored tensors. What the file does not
hold (``box_warp``, the clamp mode) is the ffhq512-128 preset's, as in the recording.
"""
from __future__ import annotations

from typing import Any

import pytest
import torch

from tests.helpers import require_fixture
from warpinv.backbone.presets import get_preset
from warpinv.backbone.renderer import ImportanceRenderer, OSGDecoder
from warpinv.cameras.labels import unpack_label
from warpinv.cameras.rays import generate_rays
from warpinv.methods.in_n_out.composite import FieldRender, render_fields
from warpinv.methods.in_n_out.networks import OODField
from warpinv.methods.in_n_out.removal import ood_rays, remove_ood

pytestmark = pytest.mark.golden

ATOL = 1e-5  # README: compose pipeline images, depths, colours, densities, blends


def _load(name: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    with safe_open(str(require_fixture("in_n_out", name)), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})


@pytest.fixture(scope="module")
def case() -> dict[str, Any]:
    io, meta = _load("compose_pipeline_io.safetensors")
    weights, _ = _load("ood_decoder_weights.safetensors")
    coarse, fine = io["ind_depths_coarse"], io["ind_depths_fine"]
    options = get_preset("ffhq512-128").kwargs()["rendering_kwargs"]
    options.update(ray_start=float(coarse[0, 0, 0, 0]), ray_end=float(coarse[0, 0, -1, 0]),
                   depth_resolution=coarse.shape[2], depth_resolution_importance=fine.shape[2])
    planes = io["in_planes_ind"]
    decoder = OSGDecoder(planes.shape[1] // 3, output_dim=io["ind_colors_sorted"].shape[-1])
    decoder.load_state_dict({k.removeprefix("w_G.decoder."): v for k, v in io.items() if k.startswith("w_G.decoder.")})
    ood = OODField(channels=io["in_planes_ood"].shape[2], resolution=io["in_planes_ood"].shape[-1])
    ood.load_state_dict({"triplanes": io["in_planes_ood"],
                         **{k.removeprefix("new_triplanes."): v for k, v in weights.items()}})
    res = int(meta["neural_rendering_resolution"])
    origins, directions = generate_rays(*unpack_label(io["in_c"]), res)
    rays = ImportanceRenderer().sample_rays(planes.view(planes.shape[0], 3, -1, *planes.shape[-2:]), decoder,
                                            origins, directions, options, deterministic=True)
    return {"io": io, "res": res, "options": options, "ood": ood, "rays": rays, "origins": origins,
            "directions": directions}


def _render(case: dict[str, Any], **kwargs: Any) -> FieldRender:
    io, ood, options = case["io"], case["ood"], case["options"]
    with torch.no_grad():
        return render_fields(case["rays"], lambda x: ood.evaluate(x, io["in_phi"], options), case["origins"],
                             case["directions"], options, deterministic=True, **kwargs)


def _image(values: torch.Tensor, res: int) -> torch.Tensor:
    return values.permute(0, 2, 1).reshape(values.shape[0], values.shape[-1], res, res)


def _check_outputs(out: FieldRender, io: dict[str, torch.Tensor], res: int, prefix: str) -> None:
    expected = {
        "image_raw_full": _image(out.features, res)[:, :3].clamp(-1, 1),
        "image_depth_full": _image(out.depth, res),
        "image_raw_o": _image(out.ood_features, res)[:, :3].clamp(-1, 1),
        "image_depth_o": _image(out.ood_depth, res),
        "densities_o": out.ood_sigma,
        "densities_f": out.ind_sigma,
        "blendw_coarse": out.blend_coarse,
        "blendw_fine": out.blend_fine,
    }
    for key, ours in expected.items():
        torch.testing.assert_close(ours, io[f"{prefix}{key}"], atol=ATOL, rtol=0, msg=f"{prefix}{key}")


def test_in_n_out_compose_samples_are_the_released_ones(case: dict[str, Any]) -> None:
    io, rays = case["io"], case["rays"]
    torch.testing.assert_close(rays.coarse_depths, io["ind_depths_coarse"], atol=ATOL, rtol=0)
    torch.testing.assert_close(rays.fine_depths, io["ind_depths_fine"], atol=ATOL, rtol=0)
    points = torch.cat([case["origins"].unsqueeze(-2) + d * case["directions"].unsqueeze(-2)
                        for d in (rays.coarse_depths, rays.fine_depths)], dim=-2)
    n, m = points.shape[:2]
    stored = io["sample_points"].reshape(n, 2, m, -1, 3).permute(0, 2, 1, 3, 4).reshape(n, m, -1, 3)
    torch.testing.assert_close(points, stored, atol=ATOL, rtol=0)


def test_in_n_out_compose_official_pairing(case: dict[str, Any]) -> None:
    _check_outputs(_render(case, pairing="official"), case["io"], case["res"], "out_")


def test_in_n_out_compose_matched_pairing_evaluates_ood_at_the_ind_points(case: dict[str, Any]) -> None:
    """``matched`` pairs each InD sample with the OOD field at the same point (the released code does not, README
    fact 6); the InD side is the same in both modes."""
    io, ood, options = case["io"], case["ood"], case["options"]
    official, matched = _render(case, pairing="official"), _render(case, pairing="matched")
    torch.testing.assert_close(matched.ind_sigma, official.ind_sigma, atol=0, rtol=0)
    with torch.no_grad():
        at_ind = ImportanceRenderer.evaluate(lambda x, _d: ood.evaluate(x, io["in_phi"], options), case["origins"],
                                             case["directions"], io["ind_depths_sorted"])
    torch.testing.assert_close(matched.ood_sigma, at_ind["sigma"], atol=ATOL, rtol=0)


def test_in_n_out_compose_with_ood_removal(case: dict[str, Any]) -> None:
    io, res = case["io"], case["res"]
    rays = ood_rays(1 - io["in_masks"], res)  # the dataset mask is 1 = keep; ours is 1 = OOD
    out = _render(case, pairing="official", blend_edit=lambda b: remove_ood(b, rays))
    _check_outputs(out, io, res, "out_removeood_")
