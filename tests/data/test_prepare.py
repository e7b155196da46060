"""``warpinv data prepare``: the bad-input corpus, statuses, resume, and loading the result as-is.

Real faces come from scikit-image's bundled astronaut portrait (public domain, NASA; no network).
"""
from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from warpinv.data import DatasetWarning, InversionDataModule, InversionDataset, run_data_cli
from warpinv.data.prepare.detect import Face
from warpinv.data.prepare.prepare import (
    STATUSES,
    PrepareConfig,
    _choose_face,
    output_names,
    prepare_folder,
)
from warpinv.methods.base import split_batch

GOOD = ("good.jpg", "rgba.png", "gray16.png", "cmyk.jpg", "rotated.jpg", "two.png", "huge.jpg", "tight.png")
EXPECTED = {
    "good.jpg": "ok", "tight.png": "ok", "rgba.png": "ok", "gray16.png": "ok", "cmyk.jpg": "ok", "rotated.jpg": "ok",
    "huge.jpg": "ok", "two.png": "multiple_faces", "truncated.jpg": "corrupt", "text.png": "not_an_image",
    "one.png": "too_small", "noface.png": "no_face", "sub/empty.jpg": "not_an_image",
}


def _write_corpus(src: Path, astronaut: Image.Image, no_face: Image.Image) -> None:
    src.mkdir(parents=True)
    astronaut.save(src / "good.jpg", quality=95)
    # A tight head crop (like CelebA-HQ's): EG3D's looser crop runs off the photo -> padding + mask.
    astronaut.crop((170, 60, 280, 180)).resize((330, 360), Image.BICUBIC).save(src / "tight.png")
    rgba = astronaut.convert("RGBA")
    alpha = np.full(astronaut.size[::-1], 255, dtype=np.uint8)
    alpha[:, :40] = 0  # a transparent strip on the left
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(src / "rgba.png")
    grey16 = (np.asarray(astronaut.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(grey16).save(src / "gray16.png")
    assert Image.open(src / "gray16.png").mode == "I;16"
    astronaut.convert("CMYK").save(src / "cmyk.jpg", quality=95)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: displayed after a 90-degree clockwise turn
    astronaut.transpose(Image.ROTATE_90).save(src / "rotated.jpg", exif=exif.tobytes(), quality=95)
    two = Image.new("RGB", (1024, 512), (128, 128, 128))
    two.paste(astronaut, (0, 0))
    two.paste(astronaut.transpose(Image.FLIP_LEFT_RIGHT), (512, 0))
    two.save(src / "two.png")
    huge = Image.new("RGB", (10_000, 10_000), (90, 100, 110))
    huge.paste(astronaut.resize((2048, 2048), Image.BICUBIC), (4000, 3000))
    huge.save(src / "huge.jpg", quality=85)
    del huge
    buf = io.BytesIO()
    astronaut.save(buf, format="JPEG", quality=95)
    (src / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    (src / "text.png").write_text("a text file with an image name\n")
    Image.new("RGB", (1, 1), (200, 10, 10)).save(src / "one.png")
    no_face.save(src / "noface.png")
    (src / "sub").mkdir()
    (src / "sub" / "empty.jpg").write_bytes(b"")
    (src / ".hidden.png").write_text("skipped: hidden")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory, astronaut: Image.Image, no_face_photo: Image.Image,
             detector):  # noqa: ANN001, ANN201
    base = tmp_path_factory.mktemp("prepare")
    src, dst = base / "src", base / "dst"
    _write_corpus(src, astronaut, no_face_photo)
    result = prepare_folder(src, dst, PrepareConfig(), progress=False, detector=detector)
    return src, dst, result


@pytest.mark.slow
def test_every_input_gets_the_right_status(prepared) -> None:  # noqa: ANN001
    _, dst, result = prepared
    statuses = {r["source"]: r["status"] for r in result.records}
    assert statuses == EXPECTED  # hidden files are skipped, everything else is listed
    report = json.loads((dst / "prepare_report.json").read_text())
    assert {r["source"]: r["status"] for r in report["files"]} == EXPECTED
    assert set(report["summary"]) == set(STATUSES)
    assert report["summary"]["ok"] == 7 and report["summary"]["multiple_faces"] == 1
    for r in report["files"]:
        assert r["prepared"] == (r["source"] in GOOD)
        if not r["prepared"]:
            assert r["reason"], r  # nothing is dropped silently
    text = result.summary()
    assert "prepared 8 of 13 inputs" in text and "truncated.jpg: corrupt" in text
    assert "multiple_faces  1 (1 prepared from the largest face, 0 refused)" in text


@pytest.mark.slow
def test_good_files_are_eg3d_crops_with_cameras(prepared) -> None:  # noqa: ANN001
    _, dst, result = prepared
    by_src = {r["source"]: r for r in result.records}
    crops = {}
    for name in GOOD:
        r = by_src[name]
        out = Image.open(dst / r["output"])
        assert out.size == (512, 512) and out.mode == "RGB"
        crops[name] = np.asarray(out).astype(np.float64)
        assert r["camera_source"] == "pnp5" and len(r["label"]) == 25
        assert abs(r["camera"]["yaw_deg"]) < 15 and abs(r["camera"]["pitch_deg"]) < 15, r["camera"]
    # The same face through different encodings gives nearly the same crop.
    ref = crops["good.jpg"]
    for name in ("rgba.png", "cmyk.jpg", "rotated.jpg", "huge.jpg"):
        centre = (slice(128, 384), slice(128, 384))
        assert np.abs(crops[name][centre] - ref[centre]).mean() < 12, name
    grey = crops["gray16.png"]
    assert np.allclose(grey[..., 0], grey[..., 1]) and 60 < grey.mean() < 200  # scaled, not clipped to white
    assert by_src["huge.jpg"]["image_size"] == [10000, 10000]
    assert by_src["two.png"]["faces"] == 2


@pytest.mark.slow
def test_padding_is_recorded_as_a_mask(prepared) -> None:  # noqa: ANN001
    _, dst, result = prepared
    data = json.loads((dst / "dataset.json").read_text())
    masks = dict(data["masks"])
    assert list(masks) == ["tight.png"]
    for r in result.records:
        if not r.get("prepared"):
            continue
        if r["padding_fraction"] > 0:
            mask = np.asarray(Image.open(dst / masks[r["output"]]))
            assert mask.shape == (512, 512) and set(np.unique(mask)) <= {0, 255}
            assert abs((mask == 0).mean() - r["padding_fraction"]) < 1e-6
            crop = np.asarray(Image.open(dst / r["output"]))
            assert crop[mask == 0].mean() < 10  # black where the photo ends, as EG3D's crop
            assert 0.2 < r["padding_fraction"] < 0.9
        else:
            assert r["output"] not in masks


@pytest.mark.slow
def test_dataset_json_records_sources_and_refine(prepared) -> None:  # noqa: ANN001
    _, dst, _ = prepared
    data = json.loads((dst / "dataset.json").read_text())
    names = [n for n, _ in data["labels"]]
    assert sorted(names) == sorted(output_names(list(GOOD)).values())
    assert dict(data["camera_sources"]) == {n: "pnp5" for n in names}
    assert data["meta"]["camera_source"] == "pnp5" and data["meta"]["refine_camera"] is False
    assert dict(data["meta"]["sources"])["good.png"] == "good.jpg"


@pytest.mark.slow
def test_prepared_folder_loads_as_is(prepared, tmp_path: Path) -> None:  # noqa: ANN001
    """Acceptance 5: the output is an EG3D-format folder the data module reads without changes."""
    _, dst, _ = prepared
    with warnings.catch_warnings():
        warnings.simplefilter("error", DatasetWarning)  # cameras need no normalisation, sizes match
        ds = InversionDataset(dst)
    assert len(ds) == 8 and ds.resolution == 512 and ds.report.ok
    tight = ds[ds.image_ids.index("tight.png")]
    assert tight["mask"].shape == (1, 512, 512) and 0.1 < float(tight["mask"].mean()) < 0.8
    split = tmp_path / "split.txt"
    split.write_text("good\nhuge\ntruncated\n")
    with pytest.warns(DatasetWarning, match="truncated"):
        dm = InversionDataModule(dst, split=split, batch_size=2)
        dm.setup("predict")
    batch = next(iter(dm.predict_dataloader()))
    assert batch["image_ids"] == ["good.png", "huge.png"]
    assert batch["images"].shape == (2, 3, 512, 512) and batch["cameras"].shape == (2, 25)
    items = split_batch(batch)
    assert items[0].extras["camera_source"] == "pnp5"
    assert all(abs(float(i.camera[0, [3, 7, 11]].norm()) - 2.7) < 1e-5 for i in items)


@pytest.mark.slow
def test_rerun_skips_prepared_files_and_redoes_changed_ones(prepared, detector) -> None:  # noqa: ANN001
    src, dst, first = prepared
    before = (dst / "good.png").stat().st_mtime_ns
    again = prepare_folder(src, dst, PrepareConfig(), progress=False, detector=detector)
    # Only what was not prepared is looked at again (noface.png and truncated.jpg reach decoding).
    assert again.skipped == 8 and again.processed == 2
    assert {r["source"]: r["status"] for r in again.records} == EXPECTED
    assert (dst / "good.png").stat().st_mtime_ns == before
    # A changed source is prepared again.
    os.utime(src / "good.jpg", ns=(before + 10**9, before + 10**9))
    third = prepare_folder(src, dst, PrepareConfig(), progress=False, detector=detector)
    redone = [r["source"] for r in third.records if r.get("prepared") and not r.get("resumed")]
    assert redone == ["good.jpg"]


@pytest.mark.slow
def test_refuse_multiple_faces_and_the_cli(prepared, tmp_path: Path) -> None:  # noqa: ANN001
    src, _, _ = prepared
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "two.png").write_bytes((src / "two.png").read_bytes())
    out = io.StringIO()
    code = run_data_cli(["prepare", str(folder), str(tmp_path / "out"), "--multiple-faces", "refuse",
                         "--refine", "--no-progress"], stdout=out)
    assert code == 0
    assert "two.png: multiple_faces: 2 faces; refused" in out.getvalue()
    data = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert data["labels"] == [] and data["meta"]["refine_camera"] is True
    assert run_data_cli(["prepare", str(tmp_path / "missing"), str(tmp_path / "o2")], stdout=io.StringIO()) == 2


# --- statuses with a scripted detector (no MTCNN) ---------------------------------------------------------------


def _face(conf: float, x: float, size: float) -> Face:
    lm = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]]) * size + np.array([x, 100.0])
    return Face((x, 100.0, x + size, 100.0 + size), conf, lm)


class ScriptedDetector:
    """Returns the faces scripted per image (keyed by the image's mean grey level)."""

    def __init__(self, script: dict[int, list[Face] | Exception]) -> None:
        self.script = script
        self.calls = 0

    def detect(self, images: list[np.ndarray]) -> list[list[Face]]:
        self.calls += 1
        out = []
        for im in images:
            faces = self.script[int(round(float(im.mean())))]
            if isinstance(faces, Exception):
                raise faces
            out.append(faces)
        return out


def test_statuses_from_scripted_detections(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    script: dict[int, list[Face] | Exception] = {
        10: [_face(0.99, 100, 150)],                           # ok
        20: [_face(0.80, 100, 150)],                           # low_confidence
        30: [_face(0.99, 100, 15)],                            # too_small (15 px < MTCNN's 20 px minimum)
        70: [_face(0.99, 100, 40)],                            # ok: prepared with a low_resolution note
        40: [_face(0.99, 50, 150), _face(0.98, 300, 120)],     # multiple_faces
        50: RuntimeError("detector exploded"),                 # error, and the batch goes on
        60: [_face(0.95, 100, 150), _face(0.7, 300, 150)],     # one confident face: ok
    }
    for level in script:
        Image.new("RGB", (512, 512), (level,) * 3).save(src / f"g{level}.png")
    det = ScriptedDetector(script)
    res = prepare_folder(src, tmp_path / "dst", PrepareConfig(batch_size=8), progress=False, detector=det)
    statuses = {r["source"]: r["status"] for r in res.records}
    assert statuses == {"g10.png": "ok", "g20.png": "low_confidence", "g30.png": "too_small",
                        "g40.png": "multiple_faces", "g50.png": "error", "g60.png": "ok", "g70.png": "ok"}
    low = {r["source"] for r in res.records if r.get("low_resolution")}
    assert low == {"g70.png"}  # 40 px < low_resolution_face_size 64
    assert "detector exploded" in next(r["reason"] for r in res.records if r["source"] == "g50.png")
    assert det.calls > 1  # the failing batch was retried photo by photo
    chosen = next(r for r in res.records if r["source"] == "g40.png")
    assert chosen["prepared"] and chosen["face"]["box"][0] == 50.0  # the largest face


def test_choose_face_rules() -> None:
    cfg = PrepareConfig()
    assert _choose_face([], cfg)[0] == "no_face"
    status, face, reason = _choose_face([_face(0.5, 0, 200), _face(0.85, 0, 200)], cfg)
    assert status == "low_confidence" and face is None and "0.850" in reason
    assert _choose_face([_face(0.99, 0, 19)], cfg)[0] == "too_small"
    assert _choose_face([_face(0.99, 0, 30)], cfg)[0] == "ok"  # small, but above MTCNN's 20 px minimum
    assert _choose_face([_face(0.99, 0, 30)], PrepareConfig(min_face_size=64))[0] == "too_small"
    two = [_face(0.99, 0, 100), _face(0.99, 300, 200)]
    status, face, _ = _choose_face(two, cfg)
    assert status == "multiple_faces" and face is not None and face.box[0] == 300
    assert _choose_face(two, PrepareConfig(multiple_faces="refuse"))[1] is None
    with pytest.raises(ValueError):
        PrepareConfig(multiple_faces="all")  # type: ignore[arg-type]


def test_output_names_never_collide() -> None:
    names = output_names(["a.jpg", "a.png", "b.JPG", "sub/a.jpg"])
    assert names == {"a.jpg": "a.jpg.png", "a.png": "a.png.png", "b.JPG": "b.png", "sub/a.jpg": "sub/a.png"}
    assert len(set(names.values())) == len(names)


@pytest.mark.slow
def test_camera_labels_are_finite(prepared) -> None:  # noqa: ANN001
    _, dst, _ = prepared
    data = json.loads((dst / "dataset.json").read_text())
    labels = torch.tensor([lab for _, lab in data["labels"]], dtype=torch.float64)
    assert torch.isfinite(labels).all()


@pytest.mark.slow
def test_the_celebahq_suite_accepts_a_prepared_folder(prepared, tmp_path: Path) -> None:  # noqa: ANN001
    """Acceptance 5: the harness's CelebA-HQ suite runs on a ``warpinv data prepare`` output as-is
    (only the generator, method and metrics are swapped for ones that need no weight file)."""
    import yaml

    import tests.bench.toy  # noqa: F401  (registers the test-only method bench_toy)
    from tests.helpers import PROJECT_ROOT
    from warpinv.bench.runner import run_bench

    _, dst, _ = prepared
    suite = yaml.safe_load((PROJECT_ROOT / "experiments" / "bench" / "celebahq.yaml").read_text())
    suite["dataset"] = {**suite["dataset"], "root": str(dst), "split": None, "images": None}
    suite.update(generator="tiny", methods={"toy": {"method": "bench_toy"}}, metrics=["psnr"],
                 require_metric_weights=False, output=str(tmp_path / "out"), save_images=0, save_inversions=False,
                 views={**suite["views"], "multiview": False}, wandb={"enabled": False})
    path = tmp_path / "celebahq_prepared.yaml"
    path.write_text(yaml.safe_dump(suite))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DatasetWarning)  # nothing to fix up in a prepared folder
        result = run_bench(path, quiet=True)
    inputs = [r for r in result.rows if r["view"] == "input"]
    assert sorted(r["image_id"] for r in inputs) == sorted(n.rsplit(".", 1)[0] + ".png" for n in GOOD)
    assert all(r["status"] == "ok" and r["metrics"]["psnr"] > 0 for r in inputs)
    assert result.split_checks[0].ok
