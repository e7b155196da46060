"""``warpinv data prepare`` attacked: colliding and non-UTF-8 output names, broken symbolic links and
special files, low-resolution faces. Detection is scripted (no MTCNN), as in ``test_prepare.py``."""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.data.test_prepare import ScriptedDetector, _face
from warpinv.data import DatasetWarning, InversionDataset, run_data_cli
from warpinv.data.prepare.detect import Face
from warpinv.data.prepare.prepare import (
    MIN_FACE_FLOOR,
    PrepareConfig,
    list_inputs,
    output_names,
    prepare_folder,
    source_name,
)
from warpinv.data.validation import validate_dataset


def _grey(path: Path, level: int, size: tuple[int, int] = (512, 512)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (level,) * 3).save(path, format="PNG")


def _prepare(src: Path, dst: Path, script: dict[int, list[Face] | Exception], **cfg: object):  # noqa: ANN202
    return prepare_folder(src, dst, PrepareConfig(**cfg), progress=False, detector=ScriptedDetector(script))


# --- item 1: output names never collide -------------------------------------------------------------------------


def test_a_source_masks_folder_never_shadows_a_padding_mask(tmp_path: Path) -> None:
    """``masks/face7.png`` (a photo) and ``face7.jpg`` (a crop needing a padding mask) used to write the
    same ``dst/masks/face7.png``; dataset.json then listed the mask as an image with a camera."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    _grey(src / "masks" / "face7.png", 10)
    _grey(src / "face7.jpg", 20)  # PNG bytes under a .jpg name: read by content
    script: dict[int, list[Face] | Exception] = {
        10: [_face(0.99, 180, 150)],  # well inside the photo
        20: [_face(0.99, 0, 150)],    # at the left edge: the crop runs off the photo -> padding mask
    }
    res = _prepare(src, dst, script)
    by_src = {r["source"]: r for r in res.records}
    assert all(r["prepared"] for r in res.records), res.summary()
    assert by_src["face7.jpg"]["mask"] is not None
    data = json.loads((dst / "dataset.json").read_text())
    images = [n for n, _ in data["labels"]]
    masks = dict(data["masks"])
    assert len(images) == 2 and not set(images) & set(masks.values())
    assert not any(n.split("/")[0].casefold() == "masks" for n in images)
    for name in images:
        assert Image.open(dst / name).mode == "RGB"
    mask = np.asarray(Image.open(dst / masks[by_src["face7.jpg"]["output"]]))
    assert mask.ndim == 2 and set(np.unique(mask)) <= {0, 255} and (mask == 0).any()
    _, report = validate_dataset(dst)
    assert report.ok, report.format()


def test_output_names_never_collide_nor_shadow_folders_or_masks() -> None:
    rels = ["masks/face7.png", "face7.jpg", "Masks/x.png", "a.jpg", "A.JPG", "a.png/b.jpg", "input_masks/face7.jpg"]
    names = output_names(rels)
    outs = list(names.values())
    folded = [n.casefold() for n in outs]
    assert len(set(folded)) == len(outs), names  # distinct even on case-insensitive file systems
    folders = {"/".join(n.split("/")[:k]).casefold() for n in outs for k in range(1, n.count("/") + 1)}
    assert not folders & set(folded), names  # no output is also another output's folder
    assert all(n.endswith(".png") and n.split("/")[0].casefold() != "masks" for n in outs), names
    assert names["face7.jpg"] == "face7.png" and names["a.png/b.jpg"] == "a.png/b.png"
    # The earlier rule still holds for plain stem collisions.
    assert output_names(["a.jpg", "a.png", "b.jpeg"]) == {"a.jpg": "a.jpg.png", "a.png": "a.png.png",
                                                          "b.jpeg": "b.png"}


def test_non_utf8_source_names_get_valid_utf8_outputs(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    raw = b"caf\xe9.jpg"
    try:
        _grey(Path(os.fsdecode(os.path.join(os.fsencode(src), raw))), 10)
    except (OSError, UnicodeError):
        pytest.skip("this file system does not store non-UTF-8 file names")
    _grey(src / "café.jpg", 10)  # the same name, properly encoded: must not collide
    res = _prepare(src, dst, {10: [_face(0.99, 180, 150)]})
    assert all(r["prepared"] for r in res.records), res.summary()
    outputs = [r["output"] for r in res.records]
    assert len(set(outputs)) == 2
    for out in outputs:
        out.encode("utf-8")  # valid UTF-8, no surrogates
        assert (dst / out).is_file()
    bad = next(r for r in res.records if r.get("source_bytes"))
    assert bad["source_bytes"] == raw.hex() and bad["source"] == source_name(os.fsdecode(raw))
    assert bad["output"].startswith("caf_-") and bad["output"].endswith(".png")
    report = (dst / "prepare_report.json").read_bytes().decode("utf-8")
    assert "\\udce9" not in report  # no lone surrogate escapes in the report
    with warnings.catch_warnings():
        warnings.simplefilter("error", DatasetWarning)
        ds = InversionDataset(dst)
    assert len(ds) == 2
    again = _prepare(src, dst, {10: [_face(0.99, 180, 150)]})
    assert again.skipped == 2  # the report's records map back to the same files


# --- item 2: broken symbolic links and special files get a status --------------------------------------------------


def test_broken_links_loops_and_special_files_get_their_own_status(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    _grey(src / "good.png", 10)
    (src / "dangling.jpg").symlink_to(src / "gone.jpg")
    (src / "self.jpg").symlink_to(src / "self.jpg")            # a link to itself
    (src / "ping.jpg").symlink_to(src / "pong.jpg")            # two links pointing at each other
    (src / "pong.jpg").symlink_to(src / "ping.jpg")
    (src / "sub").mkdir()
    (src / "sub" / "up").symlink_to(src, target_is_directory=True)  # a folder loop
    (src / "linked").symlink_to(src / "sub", target_is_directory=True)
    _grey(src / "sub" / "inner.png", 10)
    if hasattr(os, "mkfifo"):
        os.mkfifo(src / "pipe.png")  # reading it would block forever
    res = _prepare(src, dst, {10: [_face(0.99, 180, 150)]})
    st = {r["source"]: (r["status"], r["reason"]) for r in res.records}
    assert st["good.png"][0] == "ok" and st["sub/inner.png"][0] == "ok" and st["linked/inner.png"][0] == "ok"
    assert st["dangling.jpg"][0] == "unreadable" and "dangling symbolic link" in st["dangling.jpg"][1]
    for name in ("self.jpg", "ping.jpg", "pong.jpg"):
        assert st[name][0] == "unreadable" and "loop" in st[name][1], st[name]
    assert st["sub/up"][0] == "unreadable" and "enclosing folder" in st["sub/up"][1]
    if hasattr(os, "mkfifo"):
        assert st["pipe.png"][0] == "unreadable" and "not a regular file" in st["pipe.png"][1]
    assert "dangling.jpg: unreadable" in res.summary()


def test_list_inputs_does_not_follow_a_link_into_the_output_folder(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _grey(src / "a.png", 10)
    (tmp_path / "dst").mkdir()
    (src / "out").symlink_to(tmp_path / "dst", target_is_directory=True)
    _grey(tmp_path / "dst" / "x.png", 10)
    assert [p.name for p in list_inputs(src, tmp_path / "dst")] == ["a.png"]


# --- item 3: low-resolution faces are prepared with a note; refused only below MTCNN's minimum ----------------------


def test_a_51px_face_in_a_300px_portrait_is_prepared_with_a_low_resolution_note(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    _grey(src / "portrait.png", 10, (300, 300))
    _grey(src / "tiny.png", 20, (300, 300))
    script: dict[int, list[Face] | Exception] = {10: [_face(0.99, 125, 51)], 20: [_face(0.99, 125, 15)]}
    res = _prepare(src, dst, script)
    by_src = {r["source"]: r for r in res.records}
    portrait = by_src["portrait.png"]
    assert portrait["status"] == "ok" and portrait["prepared"], portrait
    low = portrait["low_resolution"]
    crop_side = portrait["crop"]["box"][2] - portrait["crop"]["box"][0]
    assert low["face_px"] == pytest.approx(51.0) and low["crop_source_px"] == pytest.approx(crop_side, abs=0.01)
    assert low["upsampling"] == pytest.approx(512 / crop_side, abs=0.01) and low["upsampling"] > 1
    assert "low_resolution" in portrait["notes"][-1]
    assert by_src["tiny.png"]["status"] == "too_small"
    assert f"{MIN_FACE_FLOOR:g} px" in by_src["tiny.png"]["reason"]
    assert "low_resolution  1" in res.summary()
    data = json.loads((dst / "dataset.json").read_text())
    assert dict(data["meta"]["low_resolution"]) == {"portrait.png": low["upsampling"]}


def test_min_face_size_cannot_go_below_mtcnns_minimum() -> None:
    assert PrepareConfig().min_face_size == MIN_FACE_FLOOR == 20
    with pytest.raises(ValueError, match="min_face_size"):
        PrepareConfig(min_face_size=10)
    assert PrepareConfig(min_face_size=64).min_face_size == 64  # a stricter floor stays possible


def test_cli_low_resolution_options(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _grey(src / "a.png", 10, (16, 16))
    out = tmp_path / "out.txt"
    with out.open("w") as stream:
        code = run_data_cli(["prepare", str(src), str(tmp_path / "dst"), "--no-progress",
                             "--low-resolution-face-size", "100"], stdout=stream)
    assert code == 0 and "a.png: too_small" in out.read_text()
    report = json.loads((tmp_path / "dst" / "prepare_report.json").read_text())
    assert report["config"]["low_resolution_face_size"] == 100 and report["config"]["min_face_size"] == 20
