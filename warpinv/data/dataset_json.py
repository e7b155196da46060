"""The EG3D ``dataset.json`` format: reading the file and parsing its entries (cameras checked as cameras).

Format (EG3D's, extended by optional keys; every per-image key uses EG3D's list of
``[filename, value]`` pairs, and a ``{filename: value}`` mapping is accepted too)::

    {
      "labels": [["img00000.png", [25 floats]], ...],          # required: cam2world (16) + intrinsics (9)
      "masks": [["img00000.png", "masks/img00000.png"], ...],   # optional: 255 = valid pixel
      "ood_masks": [["img00000.png", "ood_masks/img00000.png"], ...],  # optional: 255 = occluder (OOD)
      "clean_images": [["img00000.png", "clean/img00000.png"], ...],   # optional: the view without it
      "depths": [["img00000.png", "depth/img00000.npy"], ...],  # optional: (H, W) float depth prior
      "camera_sources": [["img00000.png", "pnp5"], ...],        # optional: where each camera came from
      "novel_views": [["img00000.png", [{"name": "yaw+0.35,pitch-0.20",
                                          "file": "novel/img00000/yaw+0.35_pitch-0.20.png",
                                          "camera": [25 floats],
                                          "visible": "visible/img00000/yaw+0.35_pitch-0.20.png"  # optional
                                          }, ...]], ...],   # optional ground truth
      "meta": {"camera_source": "...", "refine_camera": false, ...}             # optional
    }

File names are relative to the folder with forward slashes (EG3D looks labels up that way).

``masks`` and ``ood_masks`` are different things. A ``masks`` file marks the pixels every method fits
and every metric scores (255 = valid); an ``ood_masks`` file marks out-of-distribution pixels
(occluders: glasses, face masks, make-up, stickers; 255 = OOD, 0 = in-distribution), which only
methods that model occluders (In-N-Out) read; giving occluder masks as ``masks`` would make every
method ignore those pixels. ``clean_images`` holds the same view without the occluder, for scoring
(synthetic sets, :mod:`warpinv.data.synthetic`). Both are optional per image; an image without an
OOD mask has no OOD pixels.

A novel view's optional ``visible`` file is its **covisibility mask**: 255 = the view's pixel shows a
surface point the input view sees (by the ground-truth geometry), 0 = not; it is read like ``masks``
(grey > 127, nearest resize). Synthetic sets write one per view (:mod:`warpinv.data.synthetic`); the
``psnr_visible`` metric scores a ground-truth view inside it. An entry gives it for every view or for
none (so its views batch).

**In-N-Out's released data** stores its masks the other way round: a ``masks/`` folder with
255 = KEEP (in-distribution). List them under ``ood_masks`` after inverting them, e.g.::

    from PIL import Image, ImageOps
    keep = Image.open(root / "masks" / name).convert("L")
    ImageOps.invert(keep).save(root / "ood_masks" / name)   # 255 = occluder
    # dataset.json: "ood_masks": [[name, f"ood_masks/{name}"], ...]

(the loader thresholds at 127, so antialiased edges go to the nearer side).

Parsing collects every problem as a message naming the file, the key, the entry index and the image
(:mod:`warpinv.data.validation` turns them into the report); only an unreadable file raises.
"""
from __future__ import annotations

import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from warpinv.cameras import LABEL_DIM, CameraError, entry_name, validate_label

if TYPE_CHECKING:
    from warpinv.data.validation import ValidationReport

DATASET_JSON = "dataset.json"
#: Keys the loader reads; others get a note.
KNOWN_KEYS = frozenset({"labels", "masks", "depths", "camera_sources", "novel_views", "ood_masks", "clean_images",
                        "meta"})
#: Optional per-image keys whose value is a file name or a string, and the entry attribute they set.
PER_IMAGE_KEYS = (("masks", "mask"), ("depths", "depth"), ("camera_sources", "camera_source"),
                  ("ood_masks", "ood_mask"), ("clean_images", "clean_image"))


class DatasetError(ValueError):
    """A dataset folder that cannot be loaded; the message lists every problem found.

    Attributes:
        report: the :class:`ValidationReport` (``None`` when the folder itself is unusable).
    """

    def __init__(self, message: str, report: ValidationReport | None = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class NovelView:
    """A ground-truth view of an entry: ``name`` (e.g. ``yaw+0.35,pitch-0.20``), ``file``, ``label (25,)``."""

    name: str
    file: str
    label: np.ndarray
    entry: str = ""
    """Where the view's camera is in dataset.json, for messages: ``novel_views[0] ('a.png') view 1 ('x') camera``."""
    visible: str | None = None
    """Covisibility mask (255 = seen by the input view), from the view's optional ``visible`` key."""


@dataclass
class DatasetEntry:
    """One validated image of the dataset (cameras already normalised)."""

    name: str
    label: np.ndarray
    mask: str | None = None
    depth: str | None = None
    camera_source: str | None = None
    novel_views: list[NovelView] = field(default_factory=list)
    size: tuple[int, int] | None = None
    entry: str = ""
    """Where the entry is in dataset.json, for messages: ``labels[3] ('a.png')``."""
    ood_mask: str | None = None
    """Mask of out-of-distribution pixels (255 = occluder), from ``ood_masks``."""
    clean_image: str | None = None
    """The same view without its occluders, from ``clean_images``."""

    def files(self) -> list[str]:
        """Every file the entry lists (image, mask, depth, novel views, OOD mask, clean image, covisibility masks)."""
        optional = [self.mask, self.depth, *[v.file for v in self.novel_views], self.ood_mask, self.clean_image,
                    *[v.visible for v in self.novel_views]]
        return [self.name, *[f for f in optional if f is not None]]


def load_dataset_json(root: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
    """Read ``root/dataset.json``; :class:`DatasetError` for a missing folder/file or invalid JSON."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist or is not a folder")
    path = root / DATASET_JSON
    if not path.is_file():
        raise DatasetError(f"{root} has no {DATASET_JSON} (EG3D format: images plus "
                           '{"labels": [[filename, [25 floats]], ...]})')
    try:
        data = json.loads(path.read_text())
    except UnicodeDecodeError as err:
        raise DatasetError(f"{path}: not a UTF-8 text file ({err})") from None
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path}: invalid JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
    except RecursionError:
        raise DatasetError(f"{path}: invalid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: the top level must be a JSON object with a 'labels' key, "
                           f"got {type(data).__name__}")
    return path, data


def _pairs(value: Any, key: str, where: str, errors: list[str]) -> list[tuple[int, Any, Any]] | None:
    """A ``[[name, value], ...]`` list or a ``{name: value}`` mapping as ``(index, name, value)``."""
    if isinstance(value, dict):
        return [(i, k, v) for i, (k, v) in enumerate(value.items())]
    if not isinstance(value, list):
        errors.append(f"{where}: '{key}' must be a list of [filename, value] pairs or a mapping, "
                      f"got {type(value).__name__}")
        return None
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            got = f"a list of length {len(item)}" if isinstance(item, (list, tuple)) else type(item).__name__
            errors.append(f"{where}: {key}[{i}] must be a [filename, value] pair, got {got}")
            continue
        out.append((i, item[0], item[1]))
    return out


def _check_name(name: Any, where: str, key: str, i: int, errors: list[str]) -> str | None:
    if not isinstance(name, str) or not name:
        errors.append(f"{where}: {key}[{i}]: the file name must be a non-empty string, got {name!r}")
        return None
    if "\\" in name:
        name = name.replace("\\", "/")
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts:
        errors.append(f"{where}: {key}[{i}] ({name!r}): file names must be relative to the dataset folder "
                      "and must not contain '..'")
        return None
    return name


def parse_label(value: Any, where: str) -> tuple[np.ndarray | None, str | None]:
    """25 finite numbers forming a valid camera, or an error message naming the offending entry.

    Example:
        >>> parse_label([0.0] * 24, "x.json: labels[3] ('a.png')")[1]
        "x.json: labels[3] ('a.png'): the label must have 25 numbers (16 cam2world + 9 intrinsics), got 24"
    """
    if isinstance(value, dict) or not isinstance(value, (list, tuple)):
        return None, f"{where}: the label must be a list of 25 numbers, got {type(value).__name__}"
    if len(value) != LABEL_DIM:
        return None, (f"{where}: the label must have {LABEL_DIM} numbers (16 cam2world + 9 intrinsics), "
                      f"got {len(value)}")
    for k, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return None, f"{where}: entry {k} ({entry_name(k)}) must be a number, got {v!r}"
        if not math.isfinite(v):
            return None, f"{where}: entry {k} ({entry_name(k)}) is {v} (not finite)"
    arr = np.asarray(value, dtype=np.float64)
    try:
        validate_label(torch.from_numpy(arr)[None], atol=1e-3)
    except CameraError as err:
        msg = str(err).replace("camera label sample 0, ", "").replace("camera label sample 0: ", "")
        return None, f"{where}: not a valid camera: {msg}"
    return arr, None


def read_meta(data: dict[str, Any], where: str, errors: list[str]) -> dict[str, Any]:
    """The ``meta`` block (``{}`` when absent or not an object, which is an error)."""
    meta = data.get("meta", {})
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        errors.append(f"{where}: 'meta' must be an object, got {type(meta).__name__}")
        return {}
    return meta


def unknown_keys(data: dict[str, Any]) -> list[str]:
    """Top-level keys the loader does not use, sorted."""
    return sorted(set(data) - KNOWN_KEYS)


def parse_labels(data: dict[str, Any], where: str, errors: list[str],
                 ) -> tuple[dict[str, DatasetEntry], dict[str, list[int]], int] | None:
    """Entries with valid labels, the ``labels`` indices of every named image, and the number of labels.

    ``None`` when ``labels`` is missing or not a list/mapping (nothing else can be checked then).
    Duplicate names are an error; the first occurrence is kept.
    """
    if "labels" not in data or data["labels"] is None:
        errors.append(f"{where}: no 'labels': inversion needs a camera for every image")
        return None
    pairs = _pairs(data["labels"], "labels", where, errors)
    if pairs is None:
        return None
    if not pairs:
        errors.append(f"{where}: 'labels' is empty")
    entries: dict[str, DatasetEntry] = {}
    seen: dict[str, list[int]] = {}
    for i, raw_name, raw_label in pairs:
        name = _check_name(raw_name, where, "labels", i, errors)
        if name is None:
            continue
        seen.setdefault(name, []).append(i)
        label, msg = parse_label(raw_label, f"{where}: labels[{i}] ({name!r})")
        if msg is not None:
            errors.append(msg)
            continue
        if name not in entries:
            entries[name] = DatasetEntry(name=name, label=label, entry=f"labels[{i}] ({name!r})")
    dups = {n: idx for n, idx in seen.items() if len(idx) > 1}
    if dups:
        errors.append(f"{where}: duplicate image names: "
                      + "; ".join(f"{n!r} at labels{idx}" for n, idx in dups.items()))
    return entries, seen, len(pairs)


def _labelled_items(data: dict[str, Any], key: str, seen: dict[str, list[int]], where: str,
                    errors: list[str]) -> list[tuple[int, str, Any]]:
    """``(index, name, value)`` of ``data[key]`` whose name is valid and has a label."""
    out = []
    for i, raw_name, value in _pairs(data[key], key, where, errors) or []:
        name = _check_name(raw_name, where, key, i, errors)
        if name is None:
            continue
        if name not in seen:
            errors.append(f"{where}: {key}[{i}] ({name!r}) names an image that has no label")
            continue
        out.append((i, name, value))
    return out


def parse_per_image_keys(data: dict[str, Any], entries: dict[str, DatasetEntry], seen: dict[str, list[int]],
                         where: str, errors: list[str], *, load_depths: bool = True) -> None:
    """Set each entry's ``mask``, ``depth``, ``camera_source``, ``ood_mask`` and ``clean_image`` from the
    optional keys."""
    for key, attr in PER_IMAGE_KEYS:
        if data.get(key) is None or (key == "depths" and not load_depths):
            continue
        for i, name, value in _labelled_items(data, key, seen, where, errors):
            if key != "camera_sources":
                value = _check_name(value, where, f"{key}[{i}] value", i, errors)
            elif not isinstance(value, str):
                errors.append(f"{where}: camera_sources[{i}] ({name!r}) must be a string, got {value!r}")
                continue
            if value is not None and name in entries:
                setattr(entries[name], attr, value)


def _parse_views(views: list[Any], i: int, name: str, where: str, errors: list[str]) -> list[NovelView]:
    """The valid views of ``novel_views[i]`` (each needs a file name and a valid camera; names unique; an
    optional ``visible`` mask file on every view or on none)."""
    parsed: list[NovelView] = []
    view_names: Counter[str] = Counter()
    with_visible = 0
    for j, view in enumerate(views):
        vw = f"{where}: novel_views[{i}] ({name!r}) view {j}"
        if not isinstance(view, dict) or not {"name", "file", "camera"} <= set(view):
            errors.append(f"{vw}: must be an object with 'name', 'file' and 'camera'")
            continue
        vfile = _check_name(view["file"], where, f"novel_views[{i}] view {j} file", j, errors)
        vlabel, msg = parse_label(view["camera"], f"{vw} ({view.get('name')!r}) camera")
        if msg is not None:
            errors.append(msg)
        visible = None
        if view.get("visible") is not None:
            with_visible += 1
            visible = _check_name(view["visible"], where, f"novel_views[{i}] view {j} visible", j, errors)
            if visible is None:
                continue
        if vfile is None or vlabel is None:
            continue
        view_names[str(view["name"])] += 1
        parsed.append(NovelView(str(view["name"]), vfile, vlabel,
                                entry=f"novel_views[{i}] ({name!r}) view {j} ({str(view['name'])!r}) camera",
                                visible=visible))
    repeated = [v for v, n in view_names.items() if n > 1]
    if repeated:
        errors.append(f"{where}: novel_views[{i}] ({name!r}): duplicate view names {repeated}")
    if 0 < with_visible < len(views):
        errors.append(f"{where}: novel_views[{i}] ({name!r}): {with_visible} of {len(views)} views have a 'visible' "
                      "covisibility mask; give one for every view or for none")
    return parsed


def parse_novel_views(data: dict[str, Any], entries: dict[str, DatasetEntry], seen: dict[str, list[int]],
                      where: str, errors: list[str]) -> None:
    """Set each entry's ground-truth ``novel_views`` from the optional ``novel_views`` key."""
    if data.get("novel_views") is None:
        return
    for i, name, views in _labelled_items(data, "novel_views", seen, where, errors):
        if not isinstance(views, list):
            errors.append(f"{where}: novel_views[{i}] ({name!r}) must be a list of "
                          '{"name", "file", "camera"} objects')
            continue
        parsed = _parse_views(views, i, name, where, errors)
        if name in entries:
            entries[name].novel_views = parsed
