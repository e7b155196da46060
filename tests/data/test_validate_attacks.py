"""Validation attacked: cameras that cannot be normalised, and files that only decoding finds broken.

Every refusal must name ``dataset.json`` and the entry (``labels[1] ('img1.png')``), never "sample 0".
"""
from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.data.conftest import camera, noise_image
from warpinv.data import DatasetError, DatasetOptions, InversionDataset, run_data_cli, validate_dataset

MakeDataset = Callable[..., Path]


def _moved(label: list[float], centre: tuple[float, float, float]) -> list[float]:
    out = list(label)
    out[3], out[7], out[11] = centre
    return out


def _labels(n: int = 3, **moved: tuple[float, float, float]) -> list[list]:
    labels = [[f"img{i}.png", camera(0.1 * i, -0.05 * i)] for i in range(n)]
    for name, centre in moved.items():
        i = int(name[3:])
        labels[i][1] = _moved(labels[i][1], centre)
    return labels


@pytest.mark.parametrize(("centre", "opts"), [
    ((0.0, 0.0, 0.0), {}),                                               # at the normalisation centre
    ((1e-300, 0.0, 0.0), {}),                                            # as good as at it
    ((0.0, 0.0, 0.175), {"normalization_center": (0.0, 0.0, 0.175)}),   # EG3D's 'cor' centre
])
def test_a_camera_at_the_normalisation_centre_names_file_and_entry(make_dataset: MakeDataset, centre: tuple,
                                                                    opts: dict) -> None:
    root = make_dataset(3, data={"labels": _labels(img1=centre)})
    entries, report = validate_dataset(root, DatasetOptions(**opts))
    assert not report.ok
    text = report.format()
    assert "sample 0" not in text
    assert re.search(r"dataset\.json: labels\[1\] \('img1\.png'\): camera centre .*normalisation centre", text), text
    with pytest.raises(DatasetError, match=r"labels\[1\] \('img1.png'\)"):
        InversionDataset(root, **opts)


@pytest.mark.parametrize("distance", [1e300, 1e200, 40.0, 0.1])
def test_a_camera_far_from_the_datasets_radius_is_refused(make_dataset: MakeDataset, distance: float) -> None:
    root = make_dataset(4, data={"labels": _labels(4, img2=(0.0, 0.0, distance))})
    _, report = validate_dataset(root)
    assert not report.ok, report.format()
    msg = next(e for e in report.errors if "img2.png" in e)
    assert "dataset.json: labels[2] ('img2.png')" in msg and "radius" in msg
    assert "img0.png" not in " ".join(report.errors)


def test_a_novel_view_camera_far_away_names_its_view(make_dataset: MakeDataset) -> None:
    root = make_dataset(2, data={
        "labels": _labels(2),
        "novel_views": [["img0.png", [{"name": "left", "file": "img1.png",
                                       "camera": _moved(camera(0.3), (0.0, 0.0, 1e300))}]]]})
    _, report = validate_dataset(root)
    assert any("novel_views[0] ('img0.png') view 0 ('left') camera" in e for e in report.errors), report.format()


def test_other_units_are_still_normalised(make_dataset: MakeDataset) -> None:
    """A dataset in millimetres (every camera ~2700 away) is one convention: normalised, with a warning."""
    labels = _labels(3)
    for _, lab in labels:
        for k in (3, 7, 11):
            lab[k] *= 1000.0
    root = make_dataset(3, data={"labels": labels})
    entries, report = validate_dataset(root)
    assert report.ok and len(report.normalized) == 3, report.format()
    one = make_dataset(1, data={"labels": labels[:1]})
    assert validate_dataset(one)[1].ok  # a single camera is its own dataset's radius
    # Twice EG3D's radius in a dataset otherwise at 2.7 is within the rule (factor 10): normalised.
    root = make_dataset(3, data={"labels": _labels(3, img1=(0.0, 0.0, 5.4))})
    assert validate_dataset(root)[1].ok


def test_radius_rule_can_be_widened(make_dataset: MakeDataset) -> None:
    root = make_dataset(3, data={"labels": _labels(3, img1=(0.0, 0.0, 40.0))})
    assert validate_dataset(root, DatasetOptions(max_radius_ratio=100.0))[1].ok
    far = make_dataset(3, data={"labels": _labels(3, img1=(0.0, 0.0, 1e300))})
    assert not validate_dataset(far, DatasetOptions(max_radius_ratio=None))[1].ok  # still not normalisable


# --- decoding --------------------------------------------------------------------------------------------------


def _truncated_png(path: Path) -> None:
    buf = io.BytesIO()
    noise_image(64, seed=3).save(buf, format="PNG")
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])  # a valid header, half the data


def test_validate_decodes_images_and_masks_by_default(make_dataset: MakeDataset) -> None:
    root = make_dataset(3, size=64, masks=[["img0.png", "m0.png"]])
    _truncated_png(root / "img1.png")
    (root / "m0.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    out = io.StringIO()
    assert run_data_cli(["validate", str(root)], stdout=out) == 1
    text = out.getvalue()
    assert "img1.png" in text and "corrupt" in text, text
    assert "mask 'm0.png' of 'img0.png'" in text, text
    assert "decoded" in text


def test_validate_no_decode_says_so(make_dataset: MakeDataset) -> None:
    root = make_dataset(2, size=64)
    _truncated_png(root / "img1.png")
    out = io.StringIO()
    assert run_data_cli(["validate", str(root), "--no-decode"], stdout=out) == 0
    assert "NOT decoded" in out.getvalue(), out.getvalue()
    out = io.StringIO()
    assert run_data_cli(["validate", str(root), "--verify"], stdout=out) == 1  # the old flag still decodes


def test_an_image_listed_as_another_images_mask_is_an_error(make_dataset: MakeDataset) -> None:
    root = make_dataset(2, masks=[["img0.png", "img1.png"]])
    _, report = validate_dataset(root)
    assert any("'img1.png'" in e and "mask" in e and "labels[1]" in e for e in report.errors), report.format()
    json.loads((root / "dataset.json").read_text())


def test_a_200000_deep_dataset_json_is_a_clean_error(tmp_path: Path) -> None:
    """Issue 11: a deeply nested dataset.json ended in a RecursionError traceback."""
    (tmp_path / "dataset.json").write_text('{"labels": ' + "[" * 200_000 + "]" * 200_000 + "}")
    with pytest.raises(DatasetError, match="nested too deeply"):
        InversionDataset(tmp_path)
