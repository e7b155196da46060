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
