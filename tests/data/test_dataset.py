"""InversionDataset / InversionDataModule / collate, and validation of broken dataset.json files."""
from __future__ import annotations

import json
import math
import pickle
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from tests.data.conftest import camera, noise_image
from warpinv.cameras import validate_label
from warpinv.data import (
    DataConfig,
    DatasetError,
    DatasetOptions,
    DatasetWarning,
    InversionDataModule,
    InversionDataset,
    collate,
    validate_dataset,
)
from warpinv.methods.base import split_batch

MakeDataset = Callable[..., Path]


def _load(root: Path, **kw: Any) -> InversionDataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetWarning)
        return InversionDataset(root, **kw)


# --- a good folder --------------------------------------------------------------------------------------------


def test_loads_images_ids_and_cameras(make_dataset: MakeDataset) -> None:
    root = make_dataset(3, size=32)
    ds = InversionDataset(root)
    assert len(ds) == 3 and ds.image_ids == ["img0.png", "img1.png", "img2.png"] and ds.resolution == 32
    s = ds[1]
    assert s["image_id"] == "img1.png"
    assert s["image"].shape == (3, 32, 32) and s["image"].dtype == torch.float32
    assert -1.0 <= float(s["image"].min()) and float(s["image"].max()) <= 1.0
    expected = np.asarray(noise_image(32, seed=1), dtype=np.float32) / 127.5 - 1
    assert torch.allclose(s["image"], torch.from_numpy(expected).permute(2, 0, 1), atol=1e-6)
    assert torch.allclose(s["camera"], torch.tensor(camera(0.1, -0.05), dtype=torch.float32))
    assert s["camera_source"] == "dataset" and s["refine_camera"] is False
    assert "mask" not in s and "novel_images" not in s
    assert ds.report.ok and not ds.report.warnings


def test_collate_feeds_split_batch(make_dataset: MakeDataset) -> None:
    root = make_dataset(3, masks=[["img1.png", "m1.png"]])
    mask = np.zeros((32, 32), dtype=np.uint8)
    mask[:, :16] = 255
    Image.fromarray(mask).save(root / "m1.png")
    ds = InversionDataset(root)
    batch = collate([ds[0], ds[1]])
    assert batch["images"].shape == (2, 3, 32, 32) and batch["cameras"].shape == (2, 25)
    assert batch["image_ids"] == ["img0.png", "img1.png"]
    assert batch["masks"].shape == (2, 1, 32, 32)
    assert float(batch["masks"][0].min()) == 1.0  # no mask -> all valid
    assert float(batch["masks"][1, 0, 0, :16].min()) == 1.0 and float(batch["masks"][1, 0, 0, 16:].max()) == 0.0
    items = split_batch(batch)
    assert [i.image_id for i in items] == ["img0.png", "img1.png"]
    assert items[1].image.shape == (1, 3, 32, 32) and items[1].camera.shape == (1, 25)
    assert items[1].mask is not None and items[1].mask.shape == (1, 1, 32, 32)
    assert items[0].extras["camera_source"] == "dataset" and items[0].extras["refine_camera"] is False
    no_mask = collate([ds[0], ds[2]])
    assert no_mask["masks"] is None and split_batch(no_mask)[0].mask is None


def test_novel_views_depth_sources_and_meta(make_dataset: MakeDataset) -> None:
    root = make_dataset(2, novel_views=[["img0.png", [
        {"name": "yaw+0.35,pitch-0.20", "file": "novel/a.png", "camera": camera(0.35, -0.2)},
        {"name": "yaw-0.35,pitch-0.20", "file": "novel/b.png", "camera": camera(-0.35, -0.2)}]],
        ["img1.png", [
            {"name": "yaw+0.35,pitch-0.20", "file": "novel/c.png", "camera": camera(0.35, -0.2)},
            {"name": "yaw-0.35,pitch-0.20", "file": "novel/d.png", "camera": camera(-0.35, -0.2)}]]],
        depths={"img0.png": "d0.npy", "img1.png": "d1.npy"},
        camera_sources=[["img0.png", "pnp5"]], meta={"camera_source": "mixed", "refine_camera": True})
    (root / "novel").mkdir()
    for i, n in enumerate("abcd"):
        noise_image(32, seed=10 + i).save(root / "novel" / f"{n}.png")
    np.save(root / "d0.npy", np.full((8, 8), 2.5, dtype=np.float32))
    np.save(root / "d1.npy", np.full((8, 8), 2.6, dtype=np.float32))
    ds = InversionDataset(root)
    s = ds[0]
    assert s["novel_images"].shape == (2, 3, 32, 32) and s["novel_cameras"].shape == (2, 25)
    assert s["novel_view_names"] == ["yaw+0.35,pitch-0.20", "yaw-0.35,pitch-0.20"]
    assert s["depth"].shape == (1, 8, 8) and float(s["depth"][0, 0, 0]) == 2.5
    assert s["camera_source"] == "pnp5" and ds[1]["camera_source"] == "mixed"
    assert s["refine_camera"] is True
    batch = collate([ds[0], ds[1]])
    assert batch["novel_images"].shape == (2, 2, 3, 32, 32) and batch["depth"].shape == (2, 1, 8, 8)
    item = split_batch(batch)[1]
    assert item.extras["novel_images"].shape == (1, 2, 3, 32, 32)
    assert item.extras["novel_view_names"] == ["yaw+0.35,pitch-0.20", "yaw-0.35,pitch-0.20"]
    assert item.extras["refine_camera"] is True


def test_collate_refuses_mixed_batches(make_dataset: MakeDataset) -> None:
    root = make_dataset(2, depths={"img0.png": "d0.npy"})
    np.save(root / "d0.npy", np.ones((4, 4), dtype=np.float32))
    ds = InversionDataset(root)
    with pytest.raises(ValueError, match="batch_size=1"):
        collate([ds[0], ds[1]])
    with pytest.raises(ValueError):
        collate([])


# --- images: modes, sizes, EXIF --------------------------------------------------------------------------------


def test_modes_become_rgb_and_wrong_sizes_are_resized_with_a_warning(make_dataset: MakeDataset) -> None:
    root = make_dataset(4, size=32)
    Image.fromarray(np.full((32, 32), 40000, dtype=np.uint16)).save(root / "img1.png")  # 16-bit grey
    noise_image(32, seed=1, mode="RGBA").save(root / "img2.png")
    noise_image(48, seed=3).save(root / "img3.png")  # wrong size
    with pytest.warns(DatasetWarning, match="img3.png"):
        ds = InversionDataset(root)
    assert ds.resolution == 32 and ds.report.resized == ["img3.png"]
    assert "img1.png" in ds.report.converted and "img2.png" in ds.report.converted
    for i in range(4):
        assert ds[i]["image"].shape == (3, 32, 32)
    assert abs(float(ds[1]["image"][0, 0, 0]) - (round(40000 * 255 / 65535) / 127.5 - 1)) < 1e-6


def test_wrong_size_refused_by_config(make_dataset: MakeDataset) -> None:
    root = make_dataset(2, size=32)
    noise_image(48, seed=3).save(root / "img1.png")
    with pytest.raises(DatasetError, match=r"img1.png \(48x48\).*on_wrong_size='refuse'"):
        InversionDataset(root, on_wrong_size="refuse")
    ds = _load(root, resolution=48)
    assert ds.resolution == 48 and ds.report.resized == ["img0.png"]


def test_exif_rotation_honoured_at_load(make_dataset: MakeDataset) -> None:
    root = make_dataset(1, size=32)
    arr = np.zeros((16, 32, 3), dtype=np.uint8)
    arr[:, :8] = 255  # white band on the left
    exif = Image.Exif()
    exif[0x0112] = 8  # displayed rotated 90 degrees counter-clockwise: 32 x 16 stored -> 16 x 32 shown
    (root / "img0.png").unlink()
    Image.fromarray(arr).save(root / "img0.jpg", exif=exif.tobytes(), quality=98)
    data = json.loads((root / "dataset.json").read_text())
    data["labels"][0][0] = "img0.jpg"
    (root / "dataset.json").write_text(json.dumps(data))
    ds = _load(root, resolution=32)
    assert ds.report.converted == ["img0.jpg"]
    img = ds[0]["image"]
    # After rotating 90 degrees counter-clockwise the white band is at the bottom of a 16 x 32 image,
    # then resized to 32 x 32.
    assert float(img[0, -2, 16]) > 0.8 and float(img[0, 2, 16]) < -0.8


# --- cameras: radius and pivot ----------------------------------------------------------------------------------


def test_camera_off_radius_is_normalised_with_a_warning(make_dataset: MakeDataset) -> None:
    far = camera(0.2, 0.1)
    for k in (3, 7, 11):
        far[k] *= 3.0 / 2.7
    root = make_dataset(2, data={"labels": [["img0.png", camera()], ["img1.png", far]]})
    with pytest.warns(DatasetWarning, match=r"1 camera\(s\) not at radius 2.7.*'img1.png' off by \+0.3"):
        ds = InversionDataset(root)
    assert ds.report.normalized == ["img1.png"]
    c = ds[1]["camera"].double()
    assert abs(float(c[[3, 7, 11]].norm()) - 2.7) < 1e-6
    assert torch.allclose(c, torch.tensor(camera(0.2, 0.1), dtype=torch.float64), atol=1e-6)
    kept = _load(root, normalize_cameras=False)
    assert abs(float(kept[1]["camera"][[3, 7, 11]].norm()) - 3.0) < 1e-5


def test_normalisation_about_the_cor_centre(make_dataset: MakeDataset) -> None:
    root = make_dataset(1, data={"labels": [["img0.png", camera()]]})
    ds = _load(root, normalization_center=(0.0, 0.0, 0.175))
    c = ds[0]["camera"].double()
    assert abs(float((c[[3, 7, 11]] - torch.tensor([0, 0, 0.175], dtype=torch.float64)).norm()) - 2.7) < 1e-6


def _turned(label: list[float], angle: float) -> list[float]:
    m = np.asarray(label[:16]).reshape(4, 4)
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    m[:3, :3] = rot @ m[:3, :3]
    return m.reshape(16).tolist() + label[16:]


def test_camera_off_pivot_warns_reaims_or_refuses(make_dataset: MakeDataset) -> None:
    off = _turned(camera(0.1, 0.0), 0.1)  # turned by ~5.7 degrees: misses the pivot by ~0.25
    root = make_dataset(2, data={"labels": [["img0.png", camera()], ["img1.png", off]]})
    with pytest.warns(DatasetWarning, match=r"look past the pivot.*'img1.png'"):
        ds = InversionDataset(root)
    assert ds.report.off_pivot == ["img1.png"]
    assert torch.allclose(ds[1]["camera"].double(), torch.tensor(off, dtype=torch.float64), atol=1e-6)  # kept
    reaimed = _load(root, off_pivot="reaim")
    fixed = reaimed[1]["camera"].double()
    validate_label(fixed[None], atol=1e-5)
    centre, fwd = fixed[[3, 7, 11]], fixed[[2, 6, 10]]
    to_pivot = torch.tensor([0, 0, 0.2], dtype=torch.float64) - centre
    assert float(torch.linalg.cross(fwd, to_pivot / to_pivot.norm()).norm()) < 1e-6
    assert torch.allclose(fixed, torch.tensor(camera(0.1, 0.0), dtype=torch.float64), atol=1e-5)
    with pytest.raises(DatasetError, match="look past the pivot"):
        InversionDataset(root, off_pivot="refuse")


# --- broken dataset.json: every case names the file and the entry ----------------------------------------------


def test_missing_dataset_json_and_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        InversionDataset(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="has no dataset.json"):
        InversionDataset(tmp_path)


def test_bad_json_names_file_line_and_column(make_dataset: MakeDataset) -> None:
    root = make_dataset(1, data='{"labels": [["img0.png", [1, 2,]]]}')
    with pytest.raises(DatasetError) as info:
        InversionDataset(root)
    msg = str(info.value)
    assert str(root / "dataset.json") in msg and "invalid JSON at line 1 column" in msg


@pytest.mark.parametrize("data, expected", [
    ([1, 2], "top level must be a JSON object"),
    ({"meta": {}}, "no 'labels'"),
    ({"labels": None}, "no 'labels'"),
    ({"labels": "img0.png"}, "'labels' must be a list"),
    ({"labels": []}, "'labels' is empty"),
    ({"labels": [["img0.png"]]}, r"labels\[0\] must be a \[filename, value\] pair, got a list of length 1"),
    ({"labels": ["img0.png"]}, r"labels\[0\] must be a \[filename, value\] pair, got str"),
    ({"labels": [[7, [0.0] * 25]]}, r"labels\[0\]: the file name must be a non-empty string"),
    ({"labels": [["../img0.png", [0.0] * 25]]}, r"labels\[0\] \('../img0.png'\).*must not contain '..'"),
    ({"labels": [["/abs/img0.png", [0.0] * 25]]}, r"labels\[0\] \('/abs/img0.png'\).*relative"),
])
def test_malformed_structure(make_dataset: MakeDataset, data: Any, expected: str) -> None:
    root = make_dataset(1, data=data)
    with pytest.raises(DatasetError, match=expected) as info:
        InversionDataset(root)
    assert str(root / "dataset.json") in str(info.value)


def _label_with(k: int, value: Any) -> list[Any]:
    lab: list[Any] = camera()
    lab[k] = value
    return lab


@pytest.mark.parametrize("label, expected", [
    (camera()[:24], r"labels\[1\] \('img1.png'\): the label must have 25 numbers .*got 24"),
    (camera() + [0.0], r"labels\[1\] \('img1.png'\): the label must have 25 numbers .*got 26"),
    ({"pose": 1}, r"labels\[1\] \('img1.png'\): the label must be a list of 25 numbers, got dict"),
    (None, r"labels\[1\] \('img1.png'\): the label must be a list of 25 numbers, got NoneType"),
    (_label_with(5, float("nan")), r"labels\[1\] \('img1.png'\): entry 5 \(cam2world\[1,1\]\) is nan"),
    (_label_with(11, float("inf")), r"labels\[1\] \('img1.png'\): entry 11 \(cam2world\[2,3\]\) is inf"),
    (_label_with(16, "4.26"), r"labels\[1\] \('img1.png'\): entry 16 \(intrinsics\[0,0\]\) must be a number"),
    (_label_with(3, True), r"labels\[1\] \('img1.png'\): entry 3 \(cam2world\[0,3\]\) must be a number"),
    (_label_with(15, 2.0), r"labels\[1\] \('img1.png'\): not a valid camera: entry 15 \(cam2world\[3,3\]\)"),
    (_label_with(0, 2.0), r"labels\[1\] \('img1.png'\): not a valid camera: cam2world\[:3,:3\] is not a rotation"),
    (_label_with(16, -1.0), r"labels\[1\] \('img1.png'\): not a valid camera: entry 16 .*focal length"),
])
def test_bad_labels_name_file_and_entry(make_dataset: MakeDataset, label: Any, expected: str) -> None:
    root = make_dataset(2, data={"labels": [["img0.png", camera()], ["img1.png", label]]})
    with pytest.raises(DatasetError, match=expected) as info:
        InversionDataset(root)
    assert str(root / "dataset.json") in str(info.value)


def test_nan_written_as_json_literal(make_dataset: MakeDataset) -> None:
    text = json.dumps({"labels": [["img0.png", _label_with(7, float("nan"))]]})
    assert "NaN" in text
    root = make_dataset(1, data=text)
    with pytest.raises(DatasetError, match=r"labels\[0\] \('img0.png'\): entry 7 \(cam2world\[1,3\]\) is nan"):
        InversionDataset(root)


def test_all_problems_reported_together(make_dataset: MakeDataset) -> None:
    root = make_dataset(2, data={"labels": [["img0.png", camera()[:3]], ["img1.png", _label_with(2, None)],
                                            ["gone.png", camera()]]})
    with pytest.raises(DatasetError) as info:
        InversionDataset(root)
    msg = str(info.value)
    assert "labels[0] ('img0.png')" in msg and "labels[1] ('img1.png')" in msg and "gone.png" in msg
    report = info.value.report
    assert report is not None and len(report.errors) == 3


def test_duplicate_names_refused(make_dataset: MakeDataset) -> None:
    root = make_dataset(2, data={"labels": [["img0.png", camera()], ["img1.png", camera()],
                                            ["img0.png", camera(0.1)]]})
    with pytest.raises(DatasetError, match=r"duplicate image names: 'img0.png' at labels\[0, 2\]"):
        InversionDataset(root)


def test_missing_files_listed_in_one_error(make_dataset: MakeDataset) -> None:
    root = make_dataset(2, data={
        "labels": [["img0.png", camera()], ["img1.png", camera()], ["a.png", camera()], ["sub/b.png", camera()]],
        "masks": [["img0.png", "masks/img0.png"]],
        "novel_views": [["img1.png", [{"name": "v", "file": "novel/v.png", "camera": camera()}]]]})
    with pytest.raises(DatasetError) as info:
        InversionDataset(root)
    report = info.value.report
    assert report is not None
    missing_errors = [e for e in report.errors if "missing" in e]
    assert len(missing_errors) == 1
    for name in ("a.png", "sub/b.png", "masks/img0.png", "novel/v.png"):
        assert name in missing_errors[0]
    assert sorted(report.missing_files) == ["a.png", "masks/img0.png", "novel/v.png", "sub/b.png"]


@pytest.mark.parametrize("extra, expected", [
    ({"masks": [["nolabel.png", "m.png"]]}, r"masks\[0\] \('nolabel.png'\) names an image that has no label"),
    ({"masks": 5}, "'masks' must be a list"),
    ({"camera_sources": [["img0.png", 3]]}, r"camera_sources\[0\] \('img0.png'\) must be a string"),
    ({"novel_views": [["img0.png", {"name": "v"}]]}, r"novel_views\[0\] \('img0.png'\) must be a list"),
    ({"novel_views": [["img0.png", [{"name": "v", "file": "img0.png"}]]]},
     r"novel_views\[0\] \('img0.png'\) view 0: must be an object with 'name', 'file' and 'camera'"),
    ({"novel_views": [["img0.png", [{"name": "v", "file": "img0.png", "camera": [0.0] * 24}]]]},
     r"novel_views\[0\] \('img0.png'\) view 0 \('v'\) camera: the label must have 25 numbers"),
    ({"novel_views": [["img0.png", [{"name": "v", "file": "img0.png", "camera": camera()},
                                    {"name": "v", "file": "img0.png", "camera": camera()}]]]},
     r"novel_views\[0\] \('img0.png'\): duplicate view names \['v'\]"),
    ({"meta": [1]}, "'meta' must be an object"),
])
def test_bad_optional_keys(make_dataset: MakeDataset, extra: dict[str, Any], expected: str) -> None:
    root = make_dataset(1, data={"labels": [["img0.png", camera()]], **extra})
    with pytest.raises(DatasetError, match=expected):
        InversionDataset(root)


def test_unreadable_image_is_an_error_naming_it(make_dataset: MakeDataset) -> None:
    root = make_dataset(2)
    (root / "img1.png").write_text("not an image")
    with pytest.raises(DatasetError, match=r"img1.png \(not_an_image"):
        InversionDataset(root)


def test_labels_as_mapping_and_unlisted_images_noted(make_dataset: MakeDataset) -> None:
    root = make_dataset(3, data={"labels": {"img0.png": camera(), "img1.png": camera(0.1)}})
    entries, report = validate_dataset(root)
    assert [e.name for e in entries] == ["img0.png", "img1.png"] and report.ok
    assert any("img2.png" in n and "no label" in n for n in report.notes)
    assert "OK" in report.format()


# --- splits, exclusions and the data module ---------------------------------------------------------------------


def test_split_and_exclude_ids(make_dataset: MakeDataset, tmp_path: Path) -> None:
    root = make_dataset(4)
    split = tmp_path / "split.txt"
    split.write_text("# a comment\nimg2\n\nimg0.png\nnot_there\n")
    with pytest.warns(DatasetWarning, match="1 split id"):
        ds = InversionDataset(root, split=split)
    assert ds.image_ids == ["img2.png", "img0.png"] and ds.missing_split_ids == ["not_there"]
    ds = InversionDataset(root, split=["img3", "img1"], exclude_ids=["img1.png"])
    assert ds.image_ids == ["img3.png"]


def test_datamodule_predict_loader_and_pickling(make_dataset: MakeDataset) -> None:
    root = make_dataset(5)
    dm = InversionDataModule(root, batch_size=2, exclude_ids=["img4.png"])
    dm2 = pickle.loads(pickle.dumps(dm))
    dm2.setup("predict")
    batches = list(dm2.predict_dataloader())
    assert [b["image_ids"] for b in batches] == [["img0.png", "img1.png"], ["img2.png", "img3.png"]]
    assert batches[0]["images"].shape == (2, 3, 32, 32)
    assert [b["image_ids"] for b in dm2.test_dataloader()] == [b["image_ids"] for b in batches]
    with pytest.raises(ValueError):
        InversionDataModule(root, batch_size=0)


def test_datamodule_from_config(make_dataset: MakeDataset) -> None:
    from warpinv.config import from_dict

    root = make_dataset(2)
    cfg = from_dict(DataConfig, {"root": str(root), "batch_size": 2, "resolution": 16, "off_pivot": "reaim"})
    dm = InversionDataModule.from_config(cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetWarning)
        batch = next(iter(dm.predict_dataloader()))
    assert batch["images"].shape == (2, 3, 16, 16)
    assert dm.options.off_pivot == "reaim" and cfg.options().resolution == 16
    with pytest.raises(ValueError, match="root is empty"):
        InversionDataModule.from_config(DataConfig())
    with pytest.raises(ValueError):
        DatasetOptions(on_wrong_size="crop")  # type: ignore[arg-type]


# --- out-of-distribution masks and clean images (In-N-Out) -------------------------------------------------------


def _ood_folder(make_dataset: MakeDataset) -> Path:
    """3 images; img1 has an OOD mask (16 x 16, left half OOD, nearest-resized to 32), img0 and img1 clean images."""
    root = make_dataset(3, ood_masks=[["img1.png", "ood_masks/img1.png"]],
                        clean_images={"img0.png": "clean/img0.png", "img1.png": "clean/img1.png"})
    (root / "ood_masks").mkdir()
    (root / "clean").mkdir()
    mask = np.zeros((16, 16), dtype=np.uint8)
    mask[:, :8] = 128  # > 127: OOD
    mask[:, 8:] = 127  # not OOD
    Image.fromarray(mask).save(root / "ood_masks" / "img1.png")
    for i in (0, 1):
        noise_image(32, seed=20 + i).save(root / "clean" / f"img{i}.png")
    return root


def test_ood_masks_and_clean_images_load(make_dataset: MakeDataset) -> None:
    root = _ood_folder(make_dataset)
    ds = InversionDataset(root)
    assert ds.report.ok and not ds.report.notes  # known keys: no "keys not used by the loader" note
    s1 = ds[1]
    assert s1["ood_mask"].shape == (1, 32, 32) and s1["ood_mask"].dtype == torch.float32
    assert float(s1["ood_mask"][0, :, :16].min()) == 1.0 and float(s1["ood_mask"][0, :, 16:].max()) == 0.0
    expected = np.asarray(noise_image(32, seed=21), dtype=np.float32) / 127.5 - 1
    assert torch.allclose(s1["clean_image"], torch.from_numpy(expected).permute(2, 0, 1), atol=1e-6)
    assert "mask" not in s1  # an OOD mask is not a validity mask
    assert "ood_mask" not in ds[0] and "clean_image" in ds[0]
    assert "ood_mask" not in ds[2] and "clean_image" not in ds[2]


def test_collate_ood_masks_with_mixed_presence(make_dataset: MakeDataset) -> None:
    ds = InversionDataset(_ood_folder(make_dataset))
    batch = collate([ds[0], ds[1]])
    assert batch["masks"] is None
    assert batch["ood_mask"].shape == (2, 1, 32, 32) and batch["has_ood_mask"].tolist() == [False, True]
    assert float(batch["ood_mask"][0].abs().max()) == 0.0  # no OOD mask: nothing is OOD
    assert torch.equal(batch["ood_mask"][1], ds[1]["ood_mask"])
    assert batch["clean_image"].shape == (2, 3, 32, 32)  # both have one
    items = split_batch(batch)
    assert items[1].extras["ood_mask"].shape == (1, 1, 32, 32) and items[1].mask is None
    assert items[1].extras["has_ood_mask"].tolist() == [True] and items[0].extras["has_ood_mask"].tolist() == [False]
    assert torch.equal(items[1].extras["clean_image"][0], ds[1]["clean_image"])
    partial = collate([ds[1], ds[2]])
    assert "clean_image" not in partial  # img2 has none: omitted for the whole batch
    assert partial["has_ood_mask"].tolist() == [True, False]
    neither = collate([ds[0], ds[2]])
    assert "ood_mask" not in neither and "has_ood_mask" not in neither and "clean_image" not in neither


def test_corrupt_ood_mask_or_clean_image_behaves_as_a_corrupt_mask(make_dataset: MakeDataset) -> None:
    root = _ood_folder(make_dataset)
    (root / "ood_masks" / "img1.png").write_text("not an image")
    (root / "clean" / "img0.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    entries, report = validate_dataset(root, DatasetOptions(verify_images=True))
    unreadable = [e for e in report.errors if "cannot be read" in e]
    assert len(unreadable) == 1
    assert "OOD mask 'ood_masks/img1.png' of 'img1.png'" in unreadable[0]
    assert "clean image 'clean/img0.png' of 'img0.png'" in unreadable[0]
    ds = InversionDataset(root)  # without decoding, the loader meets them: a failed sample, not a failed loader
    s0, s1 = ds[0], ds[1]
    assert "clean image 'clean/img0.png'" in s0["load_error"] and "OOD mask 'ood_masks/img1.png'" in s1["load_error"]
    assert "load_error" not in ds[2]
    batch = collate([s0, s1, ds[2]])
    assert batch["load_error"][:2] == [s0["load_error"], s1["load_error"]] and batch["load_error"][2] is None
    assert "ood_mask" not in batch  # the failed sample lost its mask with the rest of it


def test_ood_files_are_checked_like_masks(make_dataset: MakeDataset) -> None:
    root = make_dataset(2, ood_masks=[["img0.png", "ood_masks/gone.png"]], clean_images=[["img1.png", "img0.png"]])
    with pytest.raises(DatasetError) as info:
        InversionDataset(root)
    report = info.value.report
    assert report is not None and report.missing_files == ["ood_masks/gone.png"]
    assert any("its clean image 'img0.png' is also listed as an image" in e for e in report.errors)
    for extra, expected in (({"ood_masks": 5}, "'ood_masks' must be a list"),
                            ({"clean_images": [["nolabel.png", "c.png"]]},
                             r"clean_images\[0\] \('nolabel.png'\) names an image that has no label")):
        with pytest.raises(DatasetError, match=expected):
            InversionDataset(make_dataset(1, data={"labels": [["img0.png", camera()]], **extra}))


def test_input_fingerprint_covers_ood_files_and_keeps_old_ones(make_dataset: MakeDataset) -> None:
    root = _ood_folder(make_dataset)
    plain_root = make_dataset(3)
    ds, plain = InversionDataset(root), InversionDataset(plain_root)
    assert ds.input_fingerprint(2) == plain.input_fingerprint(2)  # no OOD files: the fingerprint of before
    assert ds.input_fingerprint(1) != plain.input_fingerprint(1)
    before = ds.input_fingerprint(1)
    Image.fromarray(np.full((16, 16), 255, dtype=np.uint8)).save(root / "ood_masks" / "img1.png")
    assert InversionDataset(root).input_fingerprint(1) != before


def test_ood_extras_reach_the_benchmarks_ood_scoring(make_dataset: MakeDataset) -> None:
    """The per-item extras carry the names the evaluator reads (``ood_mask``, ``has_ood_mask``, ``clean_image``)."""
    from warpinv.bench.evaluate import supplied_ood_mask

    ds = InversionDataset(_ood_folder(make_dataset))
    items = split_batch(collate([ds[0], ds[1]]))
    assert supplied_ood_mask(items[0].extras) is None  # the zeros placeholder is not taken for a mask
    assert torch.equal(supplied_ood_mask(items[1].extras), ds[1]["ood_mask"][None])
    assert torch.equal(items[0].extras["clean_image"], ds[0]["clean_image"][None])
