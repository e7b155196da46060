"""The HFGI3D method on the tiny generator: its stages, what it keeps and discards, and its failures.

No golden fixture here (so no ``golden`` marker): the official pseudo-view steps are checked against
``../shared/fixtures/hfgi3d`` in ``tests/geometry/test_hfgi3d_golden.py``."""
from __future__ import annotations

import pytest
import torch

from warpinv.backbone import load_generator
from warpinv.cameras import unpack_label, yaw_pitch_camera
from warpinv.config import from_dict, load_yaml
from warpinv.methods import InversionItem, build_method
from warpinv.methods.base import Inversion
from warpinv.methods.hfgi3d import HFGI3D, HFGI3DConfig, HFGI3DInversion

SMALL = {"allow_random_lpips": True, "pivot": {"steps": 2, "w_avg_samples": 50},
         "first_tuning": {"steps": 2, "lpips_weight": 0.0, "lpips_threshold": None},
         "final_tuning": {"steps": 2, "lpips_weight": 0.0}, "pseudo_views": {"num_points": 4000}}


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    return load_generator("tiny")


@pytest.fixture(scope="module")
def item(generator) -> InversionItem:
    image = torch.rand(1, 3, generator.img_resolution, generator.img_resolution) * 2 - 1
    return InversionItem("a.png", image, yaw_pitch_camera(0.1, 0.05))


def small(**overrides) -> dict:
    config = {k: (dict(v) if isinstance(v, dict) else v) for k, v in SMALL.items()}
    for key, value in overrides.items():
        if isinstance(value, dict):
            config.setdefault(key, {}).update(value)
        else:
            config[key] = value
    return config


def test_defaults_are_the_released_pipeline() -> None:
    cfg = HFGI3DConfig()
    assert (cfg.pivot.steps, cfg.pivot.lr, cfg.pivot.lpips_net, cfg.pivot.noise_reg_weight) == (500, 0.01, "vgg", 1e5)
    assert (cfg.first_tuning.steps, cfg.first_tuning.lr, cfg.first_tuning.lpips_threshold) == (501, 3e-4, 0.06)
    assert (cfg.final_tuning.steps, cfg.final_tuning.lr, cfg.final_tuning.lpips_threshold) == (1000, 3e-4, None)
    assert cfg.final_tuning.lpips_net == "alex" and cfg.pivot.symmetry_weight == 0
    assert cfg.pseudo_views.mode == "official" and cfg.pseudo_views.blending == "alpha"
    assert cfg.num_views == 30 and cfg.warp_poses == "float16" and cfg.difference_threshold is None


def test_a_partial_override_keeps_the_stage_defaults() -> None:
    cfg = from_dict(HFGI3DConfig, {"final_tuning": {"steps": 5}})
    assert cfg.final_tuning.lpips_threshold is None and cfg.first_tuning.steps == 501


def test_the_method_yamls_load_and_the_paper_preset_changes_what_the_paper_states() -> None:
    released = from_dict(HFGI3DConfig, load_yaml("experiments/methods/hfgi3d.yaml"))
    assert released == HFGI3DConfig()
    paper = from_dict(HFGI3DConfig, load_yaml("experiments/methods/hfgi3d_paper.yaml"))
    assert (paper.pivot.steps, paper.pivot.lr, paper.final_tuning.steps) == (1000, 5e-3, 3000)
    assert paper.final_tuning.lpips_net == "vgg" and paper.pivot.symmetry_weight == 1.0
    assert paper.difference_threshold is not None


def test_warp_poses_are_the_float16_file_and_teachers_the_float32_formula(generator, item) -> None:
    method = build_method("hfgi3d", small(), generator)
    fp16, fp32 = method.orbit(item.camera, torch.float16), method.orbit(item.camera, torch.float32)
    p16, _ = unpack_label(fp16)
    p32, k = unpack_label(fp32)
    assert torch.equal(p16, p32.half().float()) and 0 < float((p16 - p32).abs().max()) < 1e-3
    assert torch.allclose(k, unpack_label(item.camera)[1].expand_as(k))


def test_inversion_tunes_the_original_generator_and_keeps_the_pivot(generator, item) -> None:
    method = build_method("hfgi3d", small(save_pseudo_views=True), generator)
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    outcome = method.invert_item(item)
    assert outcome.ok, outcome.error
    inv = outcome.inversion
    assert isinstance(inv, HFGI3DInversion) and inv.generator_delta
    assert all(torch.equal(v, before[k]) for k, v in generator.state_dict().items())  # base untouched
    assert inv.info["first_tuning_steps_run"] == 2 and inv.info["tuning_steps_run"] == 2
    assert inv.info["pseudo_view_points"] == 4000 and 0 < inv.info["pseudo_view_visible"] <= 4000
    assert inv.tensors["pseudo_views"].shape == (30, 3, 128, 128)
    assert inv.tensors["pseudo_masks"].shape == (30, 1, 128, 128)
    assert [name for name, *_ in inv.illustrations()][:4] == ["pseudo-0", "pseudo-7", "pseudo-15", "pseudo-22"]


def test_without_final_steps_nothing_of_the_first_tuning_survives(generator, item) -> None:
    """Stage 2's tuned generator only serves the pseudo views: the result starts from the original."""
    method = build_method("hfgi3d", small(final_tuning={"steps": 0}), generator)
    outcome = method.invert_item(item)
    assert outcome.ok and outcome.inversion.generator_delta == {}
    assert outcome.inversion.info["first_tuning_steps_run"] == 2


def test_save_and_load_round_trip(generator, item, tmp_path) -> None:
    method = build_method("hfgi3d", small(save_pseudo_views=True), generator)
    inv = method.invert_item(item).inversion
    inv.save(tmp_path / "a.safetensors")
    again = Inversion.load(tmp_path / "a.safetensors")
    assert isinstance(again, HFGI3DInversion) and len(again.illustrations()) == 8
    assert torch.equal(again.tensors["pseudo_views"], inv.tensors["pseudo_views"])


def test_a_degenerate_depth_map_fails_the_image_with_its_reason(generator, item, monkeypatch) -> None:
    method = build_method("hfgi3d", small(), generator)
    real = HFGI3D.stage_two_renders

    def flat(self, *args):
        depth, renders = real(self, *args)
        return torch.zeros_like(depth), renders

    monkeypatch.setattr(HFGI3D, "stage_two_renders", flat)
    outcome = method.invert_item(item)
    assert not outcome.ok and outcome.error.startswith("InversionFailedError: pseudo views: the depth map is empty")


def test_the_symmetry_prior_enters_the_pivot_loss_only_when_weighted(generator, item) -> None:
    for weight, expected in ((0.0, False), (1.0, True)):
        method = build_method("hfgi3d", small(pivot={"symmetry_weight": weight, "symmetry_grid": 8},
                                              final_tuning={"steps": 0}), generator)
        seen: list[dict] = []
        method.pivot_callback = lambda step, terms, seen=seen: seen.append(terms)
        assert method.invert_item(item).ok
        assert all(("regularizer" in t) == expected for t in seen) and seen


def test_the_difference_threshold_excludes_pixels_from_the_warp(generator, item) -> None:
    plain = build_method("hfgi3d", small(final_tuning={"steps": 0}), generator).invert_item(item).inversion
    strict = build_method("hfgi3d", small(final_tuning={"steps": 0}, difference_threshold=0.5),
                          generator).invert_item(item).inversion
    assert strict.info["pseudo_view_visible"] < plain.info["pseudo_view_visible"]


def test_inversion_bytes_counts_the_generator_and_the_kept_views(generator) -> None:
    plain = HFGI3D.inversion_bytes(HFGI3DConfig(), generator)
    kept = HFGI3D.inversion_bytes(HFGI3DConfig(save_pseudo_views=True), generator)
    assert plain > sum(p.numel() for p in generator.parameters()) * 4
    assert kept - plain == 30 * 4 * 128 * 128 * 4
