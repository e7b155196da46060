"""Reading and validating an EG3D-format folder's ``dataset.json``, with a report.

Format (EG3D's, extended by optional keys; every per-image key uses EG3D's list of
``[filename, value]`` pairs, and a ``{filename: value}`` mapping is accepted too)::

    {
      "labels": [["img00000.png", [25 floats]], ...],          # required: cam2world (16) + intrinsics (9)
      "masks": [["img00000.png", "masks/img00000.png"], ...],   # optional: 255 = valid pixel
      "depths": [["img00000.png", "depth/img00000.npy"], ...],  # optional: (H, W) float depth prior
      "camera_sources": [["img00000.png", "pnp5"], ...],        # optional: where each camera came from
      "novel_views": [["img00000.png", [{"name": "yaw+0.35,pitch-0.20",
                                          "file": "novel/img00000/yaw+0.35_pitch-0.20.png",
                                          "camera": [25 floats]}, ...]], ...],   # optional ground truth
      "meta": {"camera_source": "...", "refine_camera": false, ...}             # optional
    }

File names are relative to the folder with forward slashes (EG3D looks labels up that way).

Checks (all problems are collected, then reported together):

- invalid JSON, a missing or malformed ``labels`` -> error naming the file (and line/column);
- a label that is not a list of 25 finite numbers, or not a camera (bottom row, rotation,
  intrinsics; :func:`warpinv.cameras.validate_label`) -> error naming the file, the entry index, the
  image name and the offending label entry;
- duplicate names -> error listing each with its entry indices;
- files that do not exist (images, masks, depths, novel views) -> **one** error listing every
  missing name;
- a camera whose centre is not at ``radius`` (2.7) from the normalisation centre -> warning, and the
  camera is normalised with :func:`warpinv.cameras.normalize_camera`. The convention is EG3D's
  ``preprocess_face_cameras.py --mode orig``: the centre is rescaled about the **world origin**
  (``t <- t / |t| * 2.7``), keeping the rotation; ``normalization_center=(0, 0, 0.175)`` gives the
  script's ``cor`` mode;
- a camera whose optical axis misses the pivot ``(0, 0, 0.2)`` by more than ``pivot_tolerance`` ->
  warning; with ``off_pivot="reaim"`` the camera is also turned (smallest rotation, roll kept) to
  look at the pivot, with ``"refuse"`` it is an error. EG3D's own FFHQ labels come from a 3DMM fit
  and do not look exactly at the pivot, so the default only warns;
- images: unreadable headers -> error; a size other than the dataset resolution -> warning and
  resized at load (``on_wrong_size="resize"``) or error (``"refuse"``); non-RGB modes and EXIF
  rotations -> a note (they are converted at load).
"""
from __future__ import annotations

import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import numpy as np
import torch

from warpinv.cameras import LABEL_DIM, CameraError, entry_name, normalize_camera, validate_label
from warpinv.data.images import DEFAULT_BACKGROUND, DEFAULT_MAX_PIXELS, ImageReadError, probe_image, read_image

DATASET_JSON = "dataset.json"
_MAX_LISTED = 50


class DatasetError(ValueError):
    """A dataset folder that cannot be loaded; the message lists every problem found.

    Attributes:
        report: the :class:`ValidationReport` (``None`` when the folder itself is unusable).
    """

    def __init__(self, message: str, report: "ValidationReport | None" = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class DatasetOptions:
    """How a dataset folder is validated and loaded."""

    resolution: int | None = None
    """Image side the loader delivers; ``None`` = the most common size among the images."""
    on_wrong_size: Literal["resize", "refuse"] = "resize"
    """Images of another size: resize them (Lanczos, with a warning) or refuse the dataset."""
    normalize_cameras: bool = True
    """Rescale camera centres to ``radius`` about ``normalization_center`` (warning per camera)."""
    radius: float = 2.7
    """Camera distance EG3D's FFHQ checkpoints expect."""
    radius_tolerance: float = 1e-3
    """Cameras farther than this from ``radius`` are reported (and normalised)."""
    normalization_center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Centre of the radius normalisation: the world origin, as EG3D's ``--mode orig``."""
    pivot: tuple[float, float, float] = (0.0, 0.0, 0.2)
    """Point the cameras should look at (EG3D's ``avg_camera_pivot``)."""
    pivot_tolerance: float = 0.05
    """Largest accepted distance between the pivot and a camera's optical axis (world units)."""
    off_pivot: Literal["warn", "reaim", "refuse"] = "warn"
    """Cameras off the pivot: warn, turn them to look at it (and warn), or refuse the dataset."""
    load_novel_views: bool = True
    """Load ground-truth novel views listed under ``novel_views``."""
    load_depths: bool = True
    """Load depth priors listed under ``depths``."""
    background: tuple[int, int, int] = DEFAULT_BACKGROUND
    """RGB colour transparent pixels are composited over."""
    max_pixels: int = DEFAULT_MAX_PIXELS
    """Images with more pixels are refused."""
    verify_images: bool = False
    """Decode every image at validation (slow) instead of reading headers only."""

    def __post_init__(self) -> None:
        if self.resolution is not None and self.resolution < 1:
            raise ValueError(f"resolution must be >= 1, got {self.resolution}")
        if self.on_wrong_size not in ("resize", "refuse"):
            raise ValueError(f"on_wrong_size must be 'resize' or 'refuse', got {self.on_wrong_size!r}")
        if self.off_pivot not in ("warn", "reaim", "refuse"):
            raise ValueError(f"off_pivot must be 'warn', 'reaim' or 'refuse', got {self.off_pivot!r}")
        if not self.radius > 0:
            raise ValueError(f"radius must be > 0, got {self.radius}")


@dataclass
class NovelView:
    """A ground-truth view of an entry: ``name`` (e.g. ``yaw+0.35,pitch-0.20``), ``file``, ``label (25,)``."""

    name: str
    file: str
    label: np.ndarray


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


@dataclass
class ValidationReport:
    """What validation found. ``errors`` make the dataset unusable; the rest is information.

    Attributes:
        root: the folder; json_path: its dataset.json.
        num_entries: labels in the file.
        resolution: image side the loader delivers.
        errors, warnings, notes: messages (each names the file and the entry).
        missing_files: every listed file that does not exist.
        normalized: names whose camera (or a novel-view camera) was rescaled to the radius.
        off_pivot: names whose camera misses the pivot.
        resized: names whose image will be resized.
        converted: names whose image mode is converted to RGB (or EXIF-rotated).
        meta: the file's ``meta`` block.
    """

    root: Path
    json_path: Path
    num_entries: int = 0
    resolution: int | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    missing_files: list[str] = field(default_factory=list)
    normalized: list[str] = field(default_factory=list)
    off_pivot: list[str] = field(default_factory=list)
    resized: list[str] = field(default_factory=list)
    converted: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def format(self) -> str:
        """Human-readable report (what ``warpinv data validate`` prints)."""
        head = (f"{self.json_path}: {self.num_entries} entries"
                + (f", resolution {self.resolution}" if self.resolution else "")
                + (f", camera_source {self.meta.get('camera_source')}" if self.meta.get("camera_source") else ""))
        lines = [head]
        for title, items in (("ERROR", self.errors), ("warning", self.warnings), ("note", self.notes)):
            lines.extend(f"  {title}: {m}" for m in items)
        lines.append("  OK" if self.ok else f"  {len(self.errors)} error(s): the dataset cannot be loaded")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f", ... ({len(names) - _MAX_LISTED} more)" if len(names) > _MAX_LISTED else "")


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


def _axis_miss(label: np.ndarray, pivot: np.ndarray) -> float:
    """Distance from ``pivot`` to the camera's optical axis (inf when the pivot is behind it)."""
    m = label[:16].reshape(4, 4)
    centre, forward = m[:3, 3], m[:3, 2] / np.linalg.norm(m[:3, 2])
    v = pivot - centre
    along = float(v @ forward)
    if along <= 0:
        return math.inf
    return float(np.linalg.norm(v - along * forward))


def reaim_label(label: np.ndarray, pivot: np.ndarray) -> np.ndarray:
    """Turn a camera about its centre by the smallest rotation that makes it look at ``pivot``."""
    m = label[:16].reshape(4, 4).copy()
    f = m[:3, 2] / np.linalg.norm(m[:3, 2])
    g = pivot - m[:3, 3]
    g = g / np.linalg.norm(g)
    axis = np.cross(f, g)
    s, c = float(np.linalg.norm(axis)), float(f @ g)
    if s < 1e-12:
        return label.copy()
    k = axis / s
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    rot = np.eye(3) + s * kx + (1 - c) * kx @ kx
    m[:3, :3] = rot @ m[:3, :3]
    out = label.copy()
    out[:16] = m.reshape(16)
    return out


def _fix_camera(label: np.ndarray, opts: DatasetOptions) -> tuple[np.ndarray, float | None, float]:
    """Normalised label, the radius error before (``None`` when within tolerance), the pivot miss."""
    radius_error = None
    if opts.normalize_cameras:
        t = torch.from_numpy(label)[None]
        fixed, report = normalize_camera(t, radius=opts.radius, pivot=opts.normalization_center)
        err = float(report.error[0])
        if abs(err) > opts.radius_tolerance:
            label = fixed[0].numpy().astype(np.float64)
            radius_error = err
    miss = _axis_miss(label, np.asarray(opts.pivot, dtype=np.float64))
    if miss > opts.pivot_tolerance and opts.off_pivot == "reaim":
        label = reaim_label(label, np.asarray(opts.pivot, dtype=np.float64))
    return label, radius_error, miss


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
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: the top level must be a JSON object with a 'labels' key, "
                           f"got {type(data).__name__}")
    return path, data


def validate_dataset(root: str | os.PathLike[str], options: DatasetOptions | None = None,
                     ) -> tuple[list[DatasetEntry], ValidationReport]:
    """Validate a dataset folder; problems go into the report (nothing is raised for content).

    Raises:
        DatasetError: only when the folder or its dataset.json cannot be read at all.
    """
    opts = options or DatasetOptions()
    root = Path(root)
    json_path, data = load_dataset_json(root)
    report = ValidationReport(root=root, json_path=json_path)
    where = str(json_path)
    errors = report.errors
    meta = data.get("meta", {})
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        errors.append(f"{where}: 'meta' must be an object, got {type(meta).__name__}")
        meta = {}
    report.meta = meta
    unknown = sorted(set(data) - {"labels", "masks", "depths", "camera_sources", "novel_views", "meta"})
    if unknown:
        report.notes.append(f"{where}: keys not used by the loader: {', '.join(unknown)}")

    if "labels" not in data or data["labels"] is None:
        errors.append(f"{where}: no 'labels': inversion needs a camera for every image")
        return [], report
    pairs = _pairs(data["labels"], "labels", where, errors)
    if pairs is None:
        return [], report
    report.num_entries = len(pairs)
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
            entries[name] = DatasetEntry(name=name, label=label)
    dups = {n: idx for n, idx in seen.items() if len(idx) > 1}
    if dups:
        errors.append(f"{where}: duplicate image names: "
                      + "; ".join(f"{n!r} at labels{idx}" for n, idx in dups.items()))

    # Optional per-image keys.
    for key, attr in (("masks", "mask"), ("depths", "depth"), ("camera_sources", "camera_source")):
        if data.get(key) is None:
            continue
        if key == "depths" and not opts.load_depths:
            continue
        items = _pairs(data[key], key, where, errors) or []
        for i, raw_name, value in items:
            name = _check_name(raw_name, where, key, i, errors)
            if name is None:
                continue
            if name not in seen:
                errors.append(f"{where}: {key}[{i}] ({name!r}) names an image that has no label")
                continue
            if key != "camera_sources":
                value = _check_name(value, where, f"{key}[{i}] value", i, errors)
            elif not isinstance(value, str):
                errors.append(f"{where}: camera_sources[{i}] ({name!r}) must be a string, got {value!r}")
                continue
            if value is not None and name in entries:
                setattr(entries[name], attr, value)

    if data.get("novel_views") is not None and opts.load_novel_views:
        items = _pairs(data["novel_views"], "novel_views", where, errors) or []
        for i, raw_name, views in items:
            name = _check_name(raw_name, where, "novel_views", i, errors)
            if name is None:
                continue
            if name not in seen:
                errors.append(f"{where}: novel_views[{i}] ({name!r}) names an image that has no label")
                continue
            if not isinstance(views, list):
                errors.append(f"{where}: novel_views[{i}] ({name!r}) must be a list of "
                              '{"name", "file", "camera"} objects')
                continue
            parsed: list[NovelView] = []
            view_names: Counter[str] = Counter()
            for j, view in enumerate(views):
                vw = f"{where}: novel_views[{i}] ({name!r}) view {j}"
                if not isinstance(view, dict) or not {"name", "file", "camera"} <= set(view):
                    errors.append(f"{vw}: must be an object with 'name', 'file' and 'camera'")
                    continue
                vfile = _check_name(view["file"], where, f"novel_views[{i}] view {j} file", j, errors)
                vlabel, msg = parse_label(view["camera"], f"{vw} ({view.get('name')!r}) camera")
                if msg is not None:
                    errors.append(msg)
                if vfile is None or vlabel is None:
                    continue
                view_names[str(view["name"])] += 1
                parsed.append(NovelView(str(view["name"]), vfile, vlabel))
            repeated = [v for v, n in view_names.items() if n > 1]
            if repeated:
                errors.append(f"{where}: novel_views[{i}] ({name!r}): duplicate view names {repeated}")
            if name in entries:
                entries[name].novel_views = parsed

    # Files.
    missing: list[str] = []
    for e in entries.values():
        for rel in [e.name, e.mask, e.depth, *[v.file for v in e.novel_views]]:
            if rel is not None and not (root / rel).is_file():
                missing.append(rel)
    if missing:
        report.missing_files = missing
        errors.append(f"{where}: {len(missing)} listed file(s) missing in {root}: {_listing(missing)}")

    # Cameras: radius and pivot.
    pivot_missed: list[tuple[str, float]] = []
    radius_fixed: list[tuple[str, float]] = []
    for e in entries.values():
        e.label, rerr, miss = _fix_camera(e.label, opts)
        if rerr is not None:
            radius_fixed.append((e.name, rerr))
        if miss > opts.pivot_tolerance:
            pivot_missed.append((e.name, miss))
        for v in e.novel_views:
            v.label, verr, vmiss = _fix_camera(v.label, opts)
            if verr is not None:
                radius_fixed.append((f"{e.name} view {v.name}", verr))
            if vmiss > opts.pivot_tolerance:
                pivot_missed.append((f"{e.name} view {v.name}", vmiss))
    if radius_fixed:
        report.normalized = [n for n, _ in radius_fixed]
        worst = max(radius_fixed, key=lambda t: abs(t[1]))
        report.warnings.append(
            f"{where}: {len(radius_fixed)} camera(s) not at radius {opts.radius:g} from "
            f"{tuple(opts.normalization_center)} were normalised (EG3D preprocess_face_cameras 'orig' "
            f"convention: centre rescaled about that point, rotation kept); worst {worst[0]!r} off by "
            f"{worst[1]:+.4g}: {_listing([n for n, _ in radius_fixed])}")
    if pivot_missed:
        report.off_pivot = [n for n, _ in pivot_missed]
        worst = max(pivot_missed, key=lambda t: t[1])
        msg = (f"{where}: {len(pivot_missed)} camera(s) look past the pivot {tuple(opts.pivot)} by more than "
               f"{opts.pivot_tolerance:g}; worst {worst[0]!r} misses it by {worst[1]:.4g}: "
               f"{_listing([n for n, _ in pivot_missed])}")
        if opts.off_pivot == "refuse":
            errors.append(msg)
        else:
            report.warnings.append(msg + ("; re-aimed at the pivot" if opts.off_pivot == "reaim" else
                                          " (kept as they are; off_pivot='reaim' turns them)"))

    # Image headers.
    sizes: dict[str, tuple[int, int]] = {}
    unreadable: list[str] = []
    for e in entries.values():
        files = [e.name, *[v.file for v in e.novel_views]]
        for rel in files:
            path = root / rel
            if not path.is_file():
                continue
            try:
                if opts.verify_images:
                    im = read_image(path, background=opts.background, max_pixels=opts.max_pixels)
                    sizes[rel] = im.size
                    continue
                info = probe_image(path, max_pixels=opts.max_pixels)
            except ImageReadError as err:
                unreadable.append(f"{rel} ({err.status}: {err.reason})")
                continue
            sizes[rel] = info.size
            if info.notes:
                report.converted.append(rel)
        e.size = sizes.get(e.name)
    if unreadable:
        errors.append(f"{where}: {len(unreadable)} image file(s) cannot be read: {_listing(unreadable)}")
    if report.converted:
        report.notes.append(f"{len(report.converted)} image(s) are converted to RGB or EXIF-rotated at load: "
                            f"{_listing(report.converted)}")

    resolution = opts.resolution
    if resolution is None and sizes:
        counts = Counter(sizes.values())
        square = [s for s, _ in counts.most_common() if s[0] == s[1]]
        resolution = square[0][0] if square else min(counts.most_common(1)[0][0])
    report.resolution = resolution
    if resolution is not None:
        wrong = [f"{rel} ({w}x{h})" for rel, (w, h) in sizes.items() if (w, h) != (resolution, resolution)]
        if wrong:
            report.resized = [w.rsplit(" (", 1)[0] for w in wrong]
            msg = f"{where}: {len(wrong)} image(s) are not {resolution}x{resolution}: {_listing(wrong)}"
            if opts.on_wrong_size == "refuse":
                errors.append(msg + " (on_wrong_size='refuse')")
            else:
                report.warnings.append(msg + "; resized at load (Lanczos)")

    listed = set(entries) | {v.file for e in entries.values() for v in e.novel_views}
    extra = sorted(p.name for p in root.iterdir()
                   if p.is_file() and p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp", ".bmp")
                   and p.name not in listed)
    if extra:
        report.notes.append(f"{len(extra)} image file(s) in {root} have no label and are ignored: {_listing(extra)}")
    return list(entries.values()), report
