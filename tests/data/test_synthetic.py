"""The synthetic multi-view set: layout, determinism, idempotence, and loading through the data module."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from warpinv.cameras import yaw_pitch_camera
from warpinv.data import (
    DEFAULT_VIEWS,
    InversionDataModule,
    InversionDataset,
    SyntheticSpec,
    make_synthetic_multiview,
    run_data_cli,
    view_name,
)
from warpinv.methods.base import split_batch


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_multiview(tmp_path_factory.mktemp("synth") / "set", n=2)


def test_layout_and_meta(synth: Path) -> None:
    data = json.loads((synth / "dataset.json").read_text())
    assert [n for n, _ in data["labels"]] == ["id000.png", "id001.png"]
    meta = data["meta"]
    assert meta["generator"].startswith("tiny (seeded random weights") and meta["seed"] == 0
    assert meta["camera_source"] == "gt" and "random weights" in meta["note"]
    assert [v["name"] for v in meta["views"]] == [view_name(y, p) for y, p in DEFAULT_VIEWS]
    assert len(DEFAULT_VIEWS) == 6
    for _name, views in data["novel_views"]:
        assert len(views) == 6
        for view in views:
            assert (synth / view["file"]).is_file()
    im = Image.open(synth / "id000.png")
    assert im.size == (128, 128) and im.mode == "RGB"


def test_loads_with_ground_truth_novel_views(synth: Path) -> None:
    ds = InversionDataset(synth)
    assert len(ds) == 2 and ds.resolution == 128 and not ds.report.warnings
    s = ds[0]
    assert s["novel_images"].shape == (6, 3, 128, 128) and s["camera_source"] == "gt"
    expected = yaw_pitch_camera(torch.tensor([y for y, _ in DEFAULT_VIEWS]),
                                torch.tensor([p for _, p in DEFAULT_VIEWS]))
    assert torch.allclose(s["novel_cameras"], expected, atol=1e-6)
    yaw = json.loads((synth / "dataset.json").read_text())["meta"]["input_views"]["id000.png"]
    assert abs(yaw["yaw"]) <= 0.25 and abs(yaw["pitch"]) <= 0.1
    assert torch.allclose(s["camera"], yaw_pitch_camera(yaw["yaw"], yaw["pitch"])[0], atol=1e-6)
    dm = InversionDataModule(synth, batch_size=2)
    item = split_batch(next(iter(dm.predict_dataloader())))[1]
    assert item.extras["novel_images"].shape == (1, 6, 3, 128, 128)


def test_images_are_renders_of_the_recorded_latents(synth: Path) -> None:
    from safetensors.torch import load_file

    from warpinv.backbone import load_generator
    from warpinv.data import image_to_tensor

    G = load_generator("tiny")
    ws = load_file(str(synth / "gt_latents.safetensors"))["id001.png"][None]
    ds = InversionDataset(synth)
    s = ds[1]
    with torch.no_grad():
        out = G.synthesis(ws, s["novel_cameras"][2:3], deterministic=True, noise_mode="const")["image"]
    rendered = image_to_tensor(Image.fromarray(
        (out[0].clamp(-1, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()))
    assert torch.equal(rendered, s["novel_images"][2])


def test_idempotent_and_spec_checked(synth: Path, tmp_path: Path) -> None:
    stamp = (synth / "dataset.json").stat().st_mtime_ns
    assert make_synthetic_multiview(synth, n=2) == synth
    assert (synth / "dataset.json").stat().st_mtime_ns == stamp  # nothing re-rendered
    with pytest.raises(FileExistsError, match="another spec or generator"):
        make_synthetic_multiview(synth, n=3)
    other = tmp_path / "x"
    other.mkdir()
    (other / "keep.txt").write_text("user file")
    with pytest.raises(FileExistsError, match="other files"):
        make_synthetic_multiview(other, n=1)
    with pytest.raises(ValueError):
        SyntheticSpec(n=0)
    with pytest.raises(ValueError, match="duplicate"):
        SyntheticSpec(views=[[0.1, 0.0], [0.1, 0.0]])


def test_a_changed_generator_definition_invalidates_the_set(synth: Path, tmp_path: Path, monkeypatch) -> None:
    """The set records the generator's fingerprint; after a change to tiny it is stale, not reused."""
    import shutil

    import warpinv.backbone.loading as loading
    from warpinv.data.synthetic import holds_synthetic_set

    copy = tmp_path / "copy"
    shutil.copytree(synth, copy)
    meta = json.loads((copy / "dataset.json").read_text())["meta"]
    assert meta["generator_fingerprint"] == loading.generator_fingerprint("tiny")
    assert holds_synthetic_set(copy) and not holds_synthetic_set(tmp_path)
    monkeypatch.setattr(loading, "TINY_VERSION", loading.TINY_VERSION + 1)
    assert loading.generator_fingerprint("tiny") != meta["generator_fingerprint"]
    with pytest.raises(FileExistsError, match="another spec or generator"):
        make_synthetic_multiview(copy, n=2)


def test_identities_do_not_depend_on_n_and_cli(synth: Path, tmp_path: Path) -> None:
    out = io.StringIO()
    code = run_data_cli(["synth", str(tmp_path / "one"), "--n", "1"], stdout=out)
    assert code == 0 and "1 identities" in out.getvalue()
    a = np.asarray(Image.open(tmp_path / "one" / "id000.png"))
    b = np.asarray(Image.open(synth / "id000.png"))
    assert np.array_equal(a, b)
    assert run_data_cli(["synth", str(tmp_path / "one"), "--n", "2"], stdout=io.StringIO()) == 1


# --- a killed build, and hints that name what exists ---------------------------------------------------------------

_KILL_AFTER_FIRST_IDENTITY = """
import os, signal, sys
import warpinv.data.synthetic as syn
save = syn._save_novel_views
def save_then_die(out, i, *args):
    entry = save(out, i, *args)
    os.kill(os.getpid(), signal.SIGKILL)  # as a kill -9 (or the OOM killer) would, mid-build
    return entry
syn._save_novel_views = save_then_die
syn.make_synthetic_multiview(sys.argv[1], n=1)
"""


@pytest.mark.slow
def test_a_killed_build_leaves_nothing_that_blocks_the_next(synth: Path, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.helpers import PROJECT_ROOT

    out = tmp_path / "set"
    proc = subprocess.run([sys.executable, "-c", _KILL_AFTER_FIRST_IDENTITY, str(out)], cwd=PROJECT_ROOT,
                          env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}, capture_output=True, timeout=300)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert not out.exists()  # the build happens beside it and is renamed into place only when complete
    assert make_synthetic_multiview(out, n=1) == out  # no --overwrite, no manual deletion
    assert np.array_equal(np.asarray(Image.open(out / "id000.png")), np.asarray(Image.open(synth / "id000.png")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]  # the killed build's leftovers are gone


@pytest.mark.slow
def test_an_incomplete_folder_of_the_builders_own_files_is_rebuilt(synth: Path, tmp_path: Path) -> None:
    """What an interrupted build of an earlier version left (renders, no dataset.json) is rebuilt."""
    import shutil

    out = tmp_path / "set"
    shutil.copytree(synth, out)
    (out / "dataset.json").rename(out / "dataset.json.tmp")
    (out / "gt_latents.safetensors").unlink()
    (out / "notes.txt").write_text("a user's file")
    with pytest.raises(FileExistsError, match="other files"):
        make_synthetic_multiview(out, n=1)  # not only the builder's files: refused
    (out / "notes.txt").unlink()
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "id000.png").write_bytes(b"a user's photo that happens to have a builder's name")
    with pytest.raises(FileExistsError, match="other files"):
        make_synthetic_multiview(lone, n=1)  # no ground-truth views: not taken for an incomplete set
    assert make_synthetic_multiview(out, n=1) == out
    assert json.loads((out / "dataset.json").read_text())["meta"]["spec"]["n"] == 1
    assert not (out / "dataset.json.tmp").exists() and not (out / "id001.png").exists()


def test_refusal_hints_name_flags_that_exist(tmp_path: Path) -> None:
    import re

    other = tmp_path / "x"
    other.mkdir()
    (other / "keep.txt").write_text("user file")
    with pytest.raises(FileExistsError) as info:
        make_synthetic_multiview(other, n=1)
    message = str(info.value)
    assert (other / "keep.txt").exists()
    flags = re.findall(r"--[a-z][a-z-]*", message)
    assert flags, message
    parser_help = _synth_help()
    for flag in flags:
        assert flag in parser_help, (flag, message)
    assert "warpinv data synth" in message  # the command the flag belongs to is named (bench has no such flag)
    assert "dataset.root" in message


def _synth_help() -> str:
    import argparse

    from warpinv.data import add_data_parser

    parser = argparse.ArgumentParser(prog="warpinv")
    add_data_parser(parser.add_subparsers(dest="command"))
    sub = next(a for a in parser._subparsers._group_actions[0].choices["data"]._actions  # noqa: SLF001
               if isinstance(a, argparse._SubParsersAction)).choices["synth"]  # noqa: SLF001
    return sub.format_help()


# --- the textured variant (plane_texture) --------------------------------------------------------------------------

#: ``meta.spec`` keys of a set without the textured and occluded variants (``covisibility_tol``: every set has
#: covisibility masks; sets built before them lack it and are rebuilt, tests/data/test_covisibility.py).
_PLAIN_SPEC_KEYS = {"n", "generator", "seed", "truncation_psi", "input_yaw", "input_pitch", "views", "covisibility_tol"}


@pytest.fixture(scope="module")
def textured(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_multiview(tmp_path_factory.mktemp("synth") / "textured", n=2, plane_texture=1.0)


def _views(root: Path, image_id: str) -> list[np.ndarray]:
    """The input view then the ground-truth novel views of ``image_id``, as float arrays (H, W, 3)."""
    data = json.loads((root / "dataset.json").read_text())
    files = [image_id] + [v["file"] for name, views in data["novel_views"] if name == image_id for v in views]
    return [np.asarray(Image.open(root / f), dtype=np.float64) for f in files]


def _files(root: Path, identity: str = "") -> dict[str, bytes]:
    """Contents of the PNGs in ``root`` (those of ``identity``, e.g. ``id000``, when given) by relative path."""
    files = {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*.png"))}
    return {rel: p.read_bytes() for rel, p in files.items() if identity in rel}


def _laplacian_variance(image: np.ndarray, margin: int = 8) -> float:
    """High-frequency energy of ``image (H, W, 3)``: variance of its 4-neighbour Laplacian ``margin`` pixels
    in from the edges (the super-resolution's ringing at the image border would dominate otherwise)."""
    lap = (image[:-2, 1:-1] + image[2:, 1:-1] + image[1:-1, :-2] + image[1:-1, 2:]) - 4 * image[1:-1, 1:-1]
    return float(lap[margin:-margin, margin:-margin].var())


def test_texture_off_is_the_plain_set(synth: Path, tmp_path: Path) -> None:
    """plane_texture=0 (any scale) is the set built before the variant: same spec record, same images, reused."""
    meta = json.loads((synth / "dataset.json").read_text())["meta"]
    assert set(meta["spec"]) == _PLAIN_SPEC_KEYS and "plane_texture" not in meta
    stamp = (synth / "dataset.json").stat().st_mtime_ns
    assert make_synthetic_multiview(synth, n=2, plane_texture=0.0, plane_texture_scale=4) == synth
    assert (synth / "dataset.json").stat().st_mtime_ns == stamp  # an existing default folder still matches
    one = make_synthetic_multiview(tmp_path / "off", n=1, plane_texture=0.0)
    assert _files(one) == _files(synth, "id000")


def test_textured_set_differs_in_every_view(synth: Path, textured: Path) -> None:
    meta = json.loads((textured / "dataset.json").read_text())["meta"]
    assert meta["spec"]["plane_texture"] == 1.0 and meta["spec"]["plane_texture_scale"] == 8
    assert meta["plane_texture"]["amplitude"] == 1.0 and "textured" in meta["rendering"]
    for image_id in ("id000.png", "id001.png"):
        plain, tex = _views(synth, image_id), _views(textured, image_id)
        assert len(plain) == len(tex) == 7
        for a, b in zip(plain, tex):
            assert np.abs(a - b).mean() > 5.0  # grey levels: a visible change, not rounding
    with pytest.raises(FileExistsError, match="another spec"):
        make_synthetic_multiview(synth, n=2, plane_texture=1.0)
    stamp = (textured / "dataset.json").stat().st_mtime_ns
    assert make_synthetic_multiview(textured, n=2, plane_texture=1.0) == textured
    assert (textured / "dataset.json").stat().st_mtime_ns == stamp


def test_textured_views_are_renders_of_one_textured_tri_plane(textured: Path) -> None:
    """Input and novel views come from the same textured planes (3D-consistent); the latents alone miss them."""
    from safetensors.torch import load_file

    from warpinv.backbone import load_generator
    from warpinv.data import image_to_tensor
    from warpinv.data.synthetic import _texture_generator, add_plane_texture

    G = load_generator("tiny")
    ws = load_file(str(textured / "gt_latents.safetensors"))["id001.png"][None]
    s = InversionDataset(textured)[1]
    cams = torch.cat([s["camera"][None], s["novel_cameras"][4:5]])
    expected = torch.stack([s["image"], s["novel_images"][4]])

    def render(planes: torch.Tensor) -> torch.Tensor:
        out = torch.cat([G.render_planes(planes, ws, c[None], deterministic=True, noise_mode="const")["image"]
                         for c in cams])
        return torch.stack([image_to_tensor(Image.fromarray(
            (o.clamp(-1, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy())) for o in out])

    with torch.no_grad():
        planes = G.planes(ws, noise_mode="const")
        assert torch.equal(render(add_plane_texture(planes, 1.0, 8, generator=_texture_generator(0, 1))), expected)
        plain = render(planes)
    assert (plain - expected).abs().mean() > 0.04  # the recorded ws alone do not give the textured images


def test_texture_adds_high_frequency_detail_to_the_input_view(synth: Path, textured: Path) -> None:
    for image_id in ("id000.png", "id001.png"):
        plain, tex = _views(synth, image_id)[0], _views(textured, image_id)[0]
        assert _laplacian_variance(tex) > 3 * _laplacian_variance(plain)  # measured: about 10x


def test_texture_is_seeded_per_identity_and_independent_of_n(textured: Path, tmp_path: Path) -> None:
    out = io.StringIO()
    code = run_data_cli(["synth", str(tmp_path / "one"), "--n", "1", "--plane-texture", "1",
                         "--plane-texture-scale", "8"], stdout=out)
    assert code == 0 and "plane texture 1.0" in out.getvalue()
    assert _files(tmp_path / "one") == _files(textured, "id000")  # same files again; identity 0 without n=2
    from warpinv.data.synthetic import _texture_generator, add_plane_texture

    planes = torch.randn(1, 3, 2, 16, 16, generator=torch.Generator().manual_seed(0))

    def pattern(seed: int, i: int) -> torch.Tensor:
        return add_plane_texture(planes, 1.0, 4, generator=_texture_generator(seed, i)) - planes

    assert torch.equal(pattern(0, 1), pattern(0, 1))
    assert not torch.allclose(pattern(0, 1), pattern(0, 0)) and not torch.allclose(pattern(0, 1), pattern(1, 1))


def test_texture_pattern_scale_and_amplitude() -> None:
    from warpinv.data.synthetic import add_plane_texture

    planes = torch.randn(1, 3, 4, 64, 64, generator=torch.Generator().manual_seed(0)) * 3 + 1

    def added(amplitude: float, scale: int) -> torch.Tensor:
        return add_plane_texture(planes, amplitude, scale, generator=torch.Generator().manual_seed(5)) - planes

    std = planes.std(dim=(-1, -2))
    assert torch.allclose(added(0.5, 8).std(dim=(-1, -2)), 0.5 * std, rtol=1e-4)
    assert torch.allclose(added(0.5, 8).mean(dim=(-1, -2)), torch.zeros_like(std), atol=1e-4)
    assert torch.allclose(added(2.0, 8), 4 * added(0.5, 8), atol=1e-5)

    def neighbour_correlation(x: torch.Tensor) -> float:
        return float((x[..., 1:] * x[..., :-1]).mean() / (x * x).mean())

    assert neighbour_correlation(added(1.0, 16)) > neighbour_correlation(added(1.0, 4)) > 0.5  # larger spots
    with pytest.raises(ValueError, match="planes must be"):
        add_plane_texture(planes[0], 1.0, 8)
    with pytest.raises(ValueError, match="scale must be between 1 and the plane resolution 64"):
        add_plane_texture(planes, 1.0, 65)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"plane_texture": -0.5}, ValueError, "plane_texture must be >= 0"),
    ({"plane_texture": float("nan")}, ValueError, "plane_texture must be >= 0"),
    ({"plane_texture": float("inf")}, ValueError, "finite"),
    ({"plane_texture_scale": 0}, ValueError, "plane_texture_scale must be >= 1"),
    ({"plane_texture_scale": 2.5}, TypeError, "plane_texture_scale must be an int"),
])
def test_texture_fields_are_checked(kwargs: dict, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        SyntheticSpec(**kwargs)


# --- the occluded variant (occluders): out-of-distribution inputs for In-N-Out --------------------------------------


@pytest.fixture(scope="module")
def occluded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_multiview(tmp_path_factory.mktemp("synth") / "occluded", n=2, occluders=2)


def _array(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_occluded_inputs_masks_and_clean_inputs(synth: Path, occluded: Path) -> None:
    data = json.loads((occluded / "dataset.json").read_text())
    assert data["ood_masks"] == [["id000.png", "ood_masks/id000.png"], ["id001.png", "ood_masks/id001.png"]]
    assert data["clean_images"] == [["id000.png", "clean/id000.png"], ["id001.png", "clean/id001.png"]]
    meta = data["meta"]
    assert meta["spec"]["occluders"] == 2 and meta["spec"]["occluder_kinds"] == ["patch", "stripes", "glasses",
                                                                                  "sticker"]
    for image_id in ("id000.png", "id001.png"):
        mask_png = Image.open(occluded / "ood_masks" / image_id)
        assert mask_png.mode == "L" and set(np.unique(np.asarray(mask_png))) == {0, 255}  # binary
        mask = np.asarray(mask_png) == 255
        assert 0.05 <= mask.mean() <= 0.25
        assert meta["occluders"]["inputs"][image_id]["coverage"] == pytest.approx(mask.mean(), abs=1e-4)
        assert len(meta["occluders"]["inputs"][image_id]["kinds"]) == 2
        seen, clean = _array(occluded / image_id), _array(occluded / "clean" / image_id)
        assert np.array_equal(seen[~mask], clean[~mask])  # exactly equal outside the mask
        assert (seen != clean).any(axis=-1)[mask].mean() > 0.9  # and changed inside it
        assert np.array_equal(clean, _array(synth / image_id))  # the clean input is the plain set's input
    novel = {rel: b for rel, b in _files(occluded).items() if rel.startswith("novel/")}
    assert len(novel) == 12 and novel == {rel: b for rel, b in _files(synth).items() if rel.startswith("novel/")}


def test_occluded_set_loads_with_ood_masks_and_clean_images(occluded: Path) -> None:
    ds = InversionDataset(occluded)
    assert not ds.report.warnings and ds.report.ok
    s = ds[1]
    mask = torch.from_numpy(_array(occluded / "ood_masks" / "id001.png") == 255).float()[None]
    assert s["ood_mask"].shape == (1, 128, 128) and torch.equal(s["ood_mask"], mask)
    assert s["clean_image"].shape == (3, 128, 128) and "mask" not in s  # an occluder mask is not a validity mask
    outside = (s["ood_mask"] == 0).expand(3, -1, -1)
    assert torch.equal(s["clean_image"][outside], s["image"][outside])
    dm = InversionDataModule(occluded, batch_size=2)
    batch = next(iter(dm.predict_dataloader()))
    assert batch["masks"] is None and batch["has_ood_mask"].tolist() == [True, True]
    item = split_batch(batch)[1]
    assert item.mask is None and torch.equal(item.extras["ood_mask"][0], mask)
    assert item.extras["clean_image"].shape == (1, 3, 128, 128) and item.extras["has_ood_mask"].tolist() == [True]


def test_occluded_set_is_deterministic_seeded_and_reused(occluded: Path, tmp_path: Path) -> None:
    import shutil

    from warpinv.data.synthetic import _only_builder_files

    stamp = (occluded / "dataset.json").stat().st_mtime_ns
    assert make_synthetic_multiview(occluded, n=2, occluders=2) == occluded
    assert (occluded / "dataset.json").stat().st_mtime_ns == stamp  # same spec: not re-rendered
    with pytest.raises(FileExistsError, match="another spec"):
        make_synthetic_multiview(occluded, n=2, occluders=2, occluder_seed=1)
    out = io.StringIO()
    assert run_data_cli(["synth", str(tmp_path / "one"), "--n", "1", "--occluders", "2"], stdout=out) == 0
    assert "2 occluder(s) per input" in out.getvalue()
    assert _files(tmp_path / "one") == _files(occluded, "id000")  # same bytes again, independent of n
    assert run_data_cli(["synth", str(tmp_path / "glasses"), "--n", "1", "--occluders", "1", "--occluder-kinds",
                         "glasses", "--occluder-seed", "3"], stdout=io.StringIO()) == 0
    meta = json.loads((tmp_path / "glasses" / "dataset.json").read_text())["meta"]
    assert meta["spec"]["occluder_kinds"] == ["glasses"] and meta["occluders"]["inputs"]["id000.png"]["kinds"] == [
        "glasses"]
    assert run_data_cli(["synth", str(tmp_path / "bad"), "--n", "1", "--occluders", "1", "--occluder-kinds", "hat"],
                        stdout=io.StringIO()) == 1
    partial = tmp_path / "partial"
    shutil.copytree(occluded, partial)
    (partial / "dataset.json").unlink()
    assert _only_builder_files(partial)  # clean/ and ood_masks/ of an interrupted build are the builder's own


def test_occluders_off_is_the_plain_set(synth: Path) -> None:
    """occluders=0 (whatever the kinds and seed) records and matches the spec of sets built before the variant."""
    data = json.loads((synth / "dataset.json").read_text())
    assert set(data) == {"labels", "novel_views", "meta"} and "occluders" not in data["meta"]
    assert set(data["meta"]["spec"]) == _PLAIN_SPEC_KEYS
    assert not (synth / "clean").exists() and not (synth / "ood_masks").exists()
    stamp = (synth / "dataset.json").stat().st_mtime_ns
    assert make_synthetic_multiview(synth, n=2, occluders=0, occluder_kinds=["patch"], occluder_seed=7) == synth
    assert (synth / "dataset.json").stat().st_mtime_ns == stamp


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"occluders": -1}, ValueError, "occluders must be >= 0"),
    ({"occluders": 9}, ValueError, "occluders must be at most 8"),
    ({"occluders": 1.5}, TypeError, "occluders must be an int"),
    ({"occluder_seed": "a"}, TypeError, "occluder_seed must be an int"),
    ({"occluder_kinds": "glasses"}, TypeError, "occluder_kinds must be a list"),
    ({"occluder_kinds": ["hat"]}, ValueError, r"occluder_kinds must name kinds among .*\['hat'\]"),
])
def test_occluder_fields_are_checked(kwargs: dict, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        SyntheticSpec(**kwargs)
