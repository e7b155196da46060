"""Covisibility masks of the synthetic set: written, listed, loaded, right on analytic geometry; images unchanged."""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from warpinv.cameras import generate_rays, unpack_label, yaw_pitch_camera
from warpinv.data import (
    DatasetError,
    InversionDataModule,
    InversionDataset,
    SyntheticSpec,
    make_synthetic_multiview,
    run_data_cli,
    view_name,
)
from warpinv.data.synthetic import covisibility_masks
from warpinv.methods.base import split_batch

#: The input view is frontal (ranges 0); the first novel view is the same camera, the second a yaw away.
VIEWS = [[0.0, 0.0], [0.35, 0.0]]
FRONTAL = {"n": 1, "input_yaw": 0.0, "input_pitch": 0.0, "views": VIEWS}


@pytest.fixture(scope="module")
def frontal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_multiview(tmp_path_factory.mktemp("covis") / "set", **FRONTAL)


def _data(root: Path) -> dict:
    return json.loads((root / "dataset.json").read_text())


def _mask(root: Path, rel: str) -> np.ndarray:
    return np.asarray(Image.open(root / rel))


def test_masks_are_written_and_listed(frontal: Path) -> None:
    data = _data(frontal)
    [[image_id, views]] = data["novel_views"]
    assert image_id == "id000.png" and [v["name"] for v in views] == [view_name(*v) for v in VIEWS]
    meta = data["meta"]["covisibility"]
    assert meta["tol"] == 0.03 == data["meta"]["spec"]["covisibility_tol"] and meta["depth_resolution"] == 32
    for view in views:
        assert view["visible"] == "visible/" + view["file"].removeprefix("novel/")
        png = Image.open(frontal / view["visible"])
        assert png.mode == "L" and png.size == Image.open(frontal / view["file"]).size == (128, 128)
        mask = np.asarray(png)
        assert set(np.unique(mask)) <= {0, 255}
        assert meta["coverage"][image_id][view["name"]] == pytest.approx((mask == 255).mean(), abs=1e-4)
        blocks = mask.reshape(32, 4, 32, 4)  # nearest upsampling of the 32 px depth grid: 4 x 4 blocks
        assert (blocks == blocks[:, :1, :, :1]).all()


def test_the_input_camera_sees_all_of_itself_and_a_yaw_away_less(frontal: Path) -> None:
    """EG3D's depth is clamped into the ray range, so it is valid (positive) at every pixel."""
    data = _data(frontal)
    same, turned = data["novel_views"][0][1]
    assert np.array_equal(_mask(frontal, same["file"]), _mask(frontal, "id000.png"))  # the same camera
    assert (_mask(frontal, same["visible"]) == 255).all()
    assert 0.0 < (_mask(frontal, turned["visible"]) == 255).mean() < 1.0


def test_masks_load_batch_and_reach_the_items(frontal: Path) -> None:
    ds = InversionDataset(frontal)
    assert ds.report.ok and not ds.report.warnings
    s = ds[0]
    expected = torch.stack([torch.from_numpy(_mask(frontal, v["visible"]) > 127).float()[None]
                            for v in _data(frontal)["novel_views"][0][1]])
    assert s["novel_visible"].shape == (2, 1, 128, 128) and s["novel_visible"].dtype == torch.float32
    assert torch.equal(s["novel_visible"], expected) and s["novel_images"].shape == (2, 3, 128, 128)
    batch = next(iter(InversionDataModule(frontal, batch_size=1).predict_dataloader()))
    assert batch["novel_visible"].shape == (1, 2, 1, 128, 128)
    item = split_batch(batch)[0]
    assert torch.equal(item.extras["novel_visible"][0], expected)
    assert "novel_visible" not in InversionDataset(frontal, load_novel_views=False)[0]


def test_images_are_the_renders_without_depth(frontal: Path) -> None:
    """Rendering the depths changes no image byte: every PNG is the image of a plain render at its camera."""
    from safetensors.torch import load_file

    from warpinv.backbone import load_generator
    from warpinv.data import tensor_to_image

    G = load_generator("tiny")
    data = _data(frontal)
    ws = load_file(str(frontal / "gt_latents.safetensors"))["id000.png"][None]
    turned = data["novel_views"][0][1][1]  # the other view has the input's camera and image (tested above)
    files = [("id000.png", data["labels"][0][1]), (turned["file"], turned["camera"])]
    with torch.no_grad():
        planes = G.planes(ws, noise_mode="const")
        for rel, camera in files:
            out = G.render_planes(planes, ws, torch.tensor([camera]), deterministic=True, noise_mode="const")
            assert np.array_equal(np.asarray(tensor_to_image(out["image"][0])), _mask(frontal, rel)), rel


# --- analytic geometry: a sphere ------------------------------------------------------------------------------------


def _sphere_depth(cams: torch.Tensor, size: int, radius: float = 0.25) -> torch.Tensor:
    """``(N, 1, size, size)`` distance along each unit ray to a sphere at EG3D's pivot; 0 where the ray misses it."""
    cam2world, intrinsics = unpack_label(cams.double())
    origins, directions = generate_rays(cam2world, intrinsics, size)
    offset = origins - torch.tensor([0.0, 0.0, 0.2], dtype=torch.float64)
    b = (directions * offset).sum(-1)
    disc = b * b - ((offset * offset).sum(-1) - radius ** 2)
    t = -b - disc.clamp_min(0).sqrt()
    return torch.where(disc > 0, t, torch.zeros_like(t)).reshape(-1, 1, size, size)


def test_sphere_seen_from_its_input_camera_is_covisible_exactly_where_it_is() -> None:
    cam = yaw_pitch_camera(0.1, 0.05).double()
    depth = _sphere_depth(cam, 32)
    hit = depth > 0
    assert 0.1 < hit.float().mean() < 0.9  # the sphere and some background (no depth there)
    assert torch.equal(covisibility_masks(depth, cam, depth, cam, 0.03, 32), hit)
    upsampled = covisibility_masks(depth, cam, depth, cam, 0.03, 128)
    assert torch.equal(upsampled, hit.repeat_interleave(4, -1).repeat_interleave(4, -2))


def test_sphere_turned_further_from_the_input_shows_less_of_what_the_input_sees() -> None:
    c_in = yaw_pitch_camera(0.1, 0.05).double()
    yaws = torch.tensor([0.1, 0.4, 0.8, 1.4, 2.6])
    cams = yaw_pitch_camera(yaws, torch.full_like(yaws, 0.05)).double()
    novel, source = _sphere_depth(cams, 48), _sphere_depth(c_in, 48)
    hit = (novel > 0).flatten(1).sum(1)

    def covisible(tol: float) -> list[float]:
        return (covisibility_masks(novel, cams, source, c_in, tol, 48).flatten(1).sum(1) / hit).tolist()

    fractions = covisible(0.03)
    assert fractions[0] == 1.0 and fractions[-1] < 0.05
    assert all(a > b for a, b in zip(fractions, fractions[1:])), fractions
    # every point of the sphere projects inside the input image: only the occlusion test removes its far side
    assert covisible(100.0) == [1.0] * len(yaws)


# --- the format: listed files are checked; partial or unsafe entries refused ---------------------------------------


def _copy(frontal: Path, tmp_path: Path) -> Path:
    root = tmp_path / "copy"
    shutil.copytree(frontal, root)
    return root


def _edit_views(root: Path, edit) -> None:
    data = _data(root)
    edit(data["novel_views"][0][1])
    (root / "dataset.json").write_text(json.dumps(data))


def test_a_missing_mask_is_an_error_naming_it(frontal: Path, tmp_path: Path) -> None:
    root = _copy(frontal, tmp_path)
    rel = _data(root)["novel_views"][0][1][1]["visible"]
    (root / rel).unlink()
    with pytest.raises(DatasetError, match=r"1 listed file\(s\) missing.*" + rel.replace("+", r"\+")):
        InversionDataset(root)


def test_a_corrupt_mask_fails_its_image_with_the_file_named(frontal: Path, tmp_path: Path) -> None:
    root = _copy(frontal, tmp_path)
    rel = _data(root)["novel_views"][0][1][0]["visible"]
    (root / rel).write_bytes(b"not a png")
    s = InversionDataset(root)[0]
    assert "covisibility mask" in s["load_error"] and rel in s["load_error"]


def test_verify_images_decodes_the_masks(frontal: Path, tmp_path: Path) -> None:
    from warpinv.data.validation import DatasetOptions, validate_dataset

    root = _copy(frontal, tmp_path)
    rel = _data(root)["novel_views"][0][1][0]["visible"]
    (root / rel).write_bytes(b"not a png")
    _, report = validate_dataset(root, DatasetOptions(verify_images=True))
    assert any("cannot be read" in e and f"covisibility mask {rel!r}" in e for e in report.errors), report.errors


def test_masks_on_some_views_only_or_outside_the_folder_are_refused(frontal: Path, tmp_path: Path) -> None:
    root = _copy(frontal, tmp_path)
    _edit_views(root, lambda views: views[1].pop("visible"))
    with pytest.raises(DatasetError, match="1 of 2 views have a 'visible' covisibility mask"):
        InversionDataset(root)
    _edit_views(root, lambda views: [v.pop("visible", None) for v in views])
    s = InversionDataset(root)[0]  # none: a set without masks, as before they existed
    assert "novel_visible" not in s and s["novel_images"].shape[0] == 2
    _edit_views(root, lambda views: [v.update(visible="../outside.png") for v in views])
    with pytest.raises(DatasetError, match="must not contain '..'"):
        InversionDataset(root)


def test_the_fingerprint_covers_the_masks(frontal: Path, tmp_path: Path) -> None:
    root = _copy(frontal, tmp_path)
    before = InversionDataset(root).input_fingerprint(0)
    rel = _data(root)["novel_views"][0][1][1]["visible"]
    Image.fromarray(255 - _mask(root, rel)).save(root / rel)
    assert InversionDataset(root).input_fingerprint(0) != before


# --- sets built before the masks ------------------------------------------------------------------------------------


def _as_built_before_masks(root: Path) -> None:
    """What a build of the previous version left: no visible/ files or keys, no covisibility_tol in the spec."""
    data = _data(root)
    for _, views in data["novel_views"]:
        for view in views:
            del view["visible"]
    del data["meta"]["spec"]["covisibility_tol"], data["meta"]["covisibility"]
    (root / "dataset.json").write_text(json.dumps(data))
    shutil.rmtree(root / "visible")


def test_a_set_built_before_the_masks_is_never_reused(frontal: Path, tmp_path: Path) -> None:
    from warpinv.data.synthetic import _only_builder_files, holds_synthetic_set

    root = _copy(frontal, tmp_path)
    stamp = (root / "dataset.json").stat().st_mtime_ns
    assert make_synthetic_multiview(root, **FRONTAL) == root
    assert (root / "dataset.json").stat().st_mtime_ns == stamp  # a current set is reused as it is
    (root / "dataset.json").unlink()
    assert _only_builder_files(root)  # visible/ of an interrupted build is the builder's own

    old = _copy(frontal, tmp_path / "old")
    _as_built_before_masks(old)
    assert holds_synthetic_set(old)  # derived data: the benchmark passes overwrite and rebuilds it
    with pytest.raises(FileExistsError, match="built before the covisibility masks"):
        make_synthetic_multiview(old, **FRONTAL)
    out = io.StringIO()
    argv = ["synth", str(old), "--n", "1"]
    assert run_data_cli(argv, stdout=out) == 1 and "--overwrite" in out.getvalue()
    assert make_synthetic_multiview(old, overwrite=True, **FRONTAL) == old
    assert "novel_visible" in InversionDataset(old)[0]


@pytest.mark.parametrize(("value", "error", "match"), [
    (-0.1, ValueError, "covisibility_tol must be >= 0"),
    (float("nan"), ValueError, "covisibility_tol must be >= 0"),
    (float("inf"), ValueError, "finite"),
    (True, TypeError, "covisibility_tol must be a number"),
    ("0.03", TypeError, "covisibility_tol must be a number"),
])
def test_the_tolerance_is_checked(value: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        SyntheticSpec(covisibility_tol=value)  # type: ignore[arg-type]
