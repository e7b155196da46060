"""Validating an EG3D-format folder (``dataset.json`` plus images), with a report.

The file format and the parsing of its entries live in :mod:`warpinv.data.dataset_json`.

Checks (all problems are collected, then reported together):

- invalid JSON, a missing or malformed ``labels`` -> error naming the file (and line/column);
- a label that is not a list of 25 finite numbers, or not a camera (bottom row, rotation,
  intrinsics; :func:`warpinv.cameras.validate_label`) -> error naming the file, the entry index, the
  image name and the offending label entry;
- duplicate names -> error listing each with its entry indices;
- files that do not exist (images, masks, depths, novel views, OOD masks, clean images) -> **one**
  error listing every missing name;
- a camera whose centre is not at ``radius`` (2.7) from the normalisation centre -> warning, and the
  camera is normalised with :func:`warpinv.cameras.normalize_camera`. The convention is EG3D's
  ``preprocess_face_cameras.py --mode orig``: the centre is rescaled about the **world origin**
  (``t <- t / |t| * 2.7``), keeping the rotation; ``normalization_center=(0, 0, 0.175)`` gives the
  script's ``cor`` mode;
- a camera that cannot be normalised -> error naming the file and the entry: its centre is at the
  normalisation centre (no direction to rescale along), its distance is not finite, the normalised
  label is not finite or not at the radius, or its distance is surely a wrong value (below);
- **the radius rule**: a camera whose distance from the normalisation centre is more than
  ``max_radius_ratio`` (10) times off (larger or smaller) **both** the dataset's median distance and
  EG3D's ``radius`` is refused. Normalisation exists to absorb a dataset's convention (other units:
  a dataset in millimetres has every camera near 2700, and its median says so), and within one
  dataset the cameras share it. The face fills every crop at fixed intrinsics (focal 4.26, a
  13 degree field of view), so the cameras of one dataset lie within tens of percent of each other:
  one 10x farther would see the head at a tenth of its size. Such a value is a typing or unit
  error (``1e300``, metres among millimetres), and normalising it would only hide it;
- a camera whose optical axis misses the pivot ``(0, 0, 0.2)`` by more than ``pivot_tolerance`` ->
  warning; with ``off_pivot="reaim"`` the camera is also turned (smallest rotation, roll kept) to
  look at the pivot, with ``"refuse"`` it is an error. EG3D's own FFHQ labels come from a 3DMM fit
  and do not look exactly at the pivot, so the default only warns;
- a mask, depth, OOD mask or clean image file that is also listed as an image (with a camera) -> error
  naming both entries;
- images: unreadable headers -> error (with ``verify_images`` every image, mask, depth, OOD mask and
  clean image file is decoded, and one that cannot be is an error naming it; without it, those files
  are read at load, and a sample whose file cannot be read carries a ``load_error``, see
  :class:`warpinv.data.dataset.InversionDataset`); a size other than the dataset resolution -> warning and
  resized at load (``on_wrong_size="resize"``) or error (``"refuse"``); non-RGB modes and EXIF
  rotations -> a note (they are converted at load).
"""
from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from warpinv.cameras import CameraError, normalize_camera
from warpinv.checks import check_choice, check_min
from warpinv.data.dataset_json import (
    DATASET_JSON,
    DatasetEntry,
    DatasetError,
    NovelView,
    load_dataset_json,
    parse_label,
    parse_labels,
    parse_novel_views,
    parse_per_image_keys,
    read_meta,
    unknown_keys,
)
from warpinv.data.images import DEFAULT_BACKGROUND, DEFAULT_MAX_PIXELS, ImageReadError, probe_image, read_image

__all__ = [
    "DATASET_JSON",
    "DatasetEntry",
    "DatasetError",
    "DatasetOptions",
    "NovelView",
    "ValidationReport",
    "load_dataset_json",
    "load_depth",
    "parse_label",
    "reaim_label",
    "validate_dataset",
]

_MAX_LISTED = 50


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
    """Decode every image, mask and depth file at validation (slow) instead of reading image headers only;
    ``warpinv data validate`` does unless ``--no-decode``. The loader decodes each file when it reads it."""
    max_radius_ratio: float | None = 10.0
    """Refuse a camera more than this factor off both the dataset's median distance and ``radius``
    (the radius rule, module docstring); ``None`` turns the rule off."""

    def __post_init__(self) -> None:
        if self.resolution is not None:
            check_min(self.resolution, 1, "resolution")
        check_choice(self.on_wrong_size, ("resize", "refuse"), "on_wrong_size")
        check_choice(self.off_pivot, ("warn", "reaim", "refuse"), "off_pivot")
        check_min(self.radius, 0, "radius", strict=True)
        if self.max_radius_ratio is not None:
            check_min(self.max_radius_ratio, 1, "max_radius_ratio", strict=True)


@dataclass
class ValidationReport:
    """What validation found. ``errors`` make the dataset unusable; the rest is information.

    Attributes:
        root: the folder; json_path: its dataset.json.
        num_entries: labels in the file.
        resolution: image side the loader delivers.
        errors, warnings, notes: messages (each names the file and the entry).
        missing_files: every listed file that does not exist.
        decoded: whether every image, mask and depth file was decoded (else only image headers were read).
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
    decoded: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def format(self) -> str:
        """Human-readable report (what ``warpinv data validate`` prints)."""
        head = (f"{self.json_path}: {self.num_entries} entries"
                + (f", resolution {self.resolution}" if self.resolution else "")
                + (f", camera_source {self.meta.get('camera_source')}" if self.meta.get("camera_source") else ""))
        lines = [head + (", files decoded" if self.decoded else "")]
        if not self.decoded:
            lines.append("  note: image files were NOT decoded (headers only); `warpinv data validate` decodes "
                         "every image, mask and depth file unless --no-decode")
        for title, items in (("ERROR", self.errors), ("warning", self.warnings), ("note", self.notes)):
            lines.extend(f"  {title}: {m}" for m in items)
        lines.append("  OK" if self.ok else f"  {len(self.errors)} error(s): the dataset cannot be loaded")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f", ... ({len(names) - _MAX_LISTED} more)" if len(names) > _MAX_LISTED else "")


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


def _centre_distance(label: np.ndarray, centre: np.ndarray) -> float:
    """Distance of a camera centre from ``centre``, without overflow or underflow (``inf`` past float64).

    Example:
        >>> lab = np.zeros(25); lab[11] = 1e300
        >>> _centre_distance(lab, np.zeros(3)), _centre_distance(np.zeros(25), np.zeros(3))
        (1e+300, 0.0)
    """
    offset = label[[3, 7, 11]] - centre
    scale = float(np.max(np.abs(offset)))
    if scale == 0.0 or not math.isfinite(scale):
        return scale
    with np.errstate(over="ignore"):
        return scale * float(np.linalg.norm(offset / scale))


def _radius_problem(distance: float, median: float, opts: DatasetOptions) -> str | None:
    """Why a camera at ``distance`` from the normalisation centre cannot be used (``None`` when it can)."""
    centre = tuple(opts.normalization_center)
    if distance == 0.0:
        return (f"camera centre coincides with the normalisation centre {centre}: there is no direction "
                f"to move it to radius {opts.radius:g} along")
    if not math.isfinite(distance):
        return f"camera centre is too far from the normalisation centre {centre} for its distance to be a number"
    ratio = opts.max_radius_ratio
    if ratio is None:
        return None
    off_dataset = max(distance / median, median / distance)
    off_eg3d = max(distance / opts.radius, opts.radius / distance)
    if min(off_dataset, off_eg3d) <= ratio:
        return None
    return (f"camera centre is {distance:.4g} from the normalisation centre {centre}, more than {ratio:g}x off "
            f"both the dataset's median distance {median:.4g} and EG3D's radius {opts.radius:g}: a wrong value "
            "(typing or units), not a convention; refused rather than normalised (DatasetOptions.max_radius_ratio)")


def _fix_camera(label: np.ndarray, opts: DatasetOptions,
                ) -> tuple[np.ndarray, float | None, float, str | None]:
    """Normalised label, the radius error before (``None`` when within tolerance), the pivot miss, and
    why the camera cannot be normalised (``None`` when it can)."""
    radius_error = None
    if opts.normalize_cameras:
        try:
            fixed, report = normalize_camera(torch.from_numpy(label)[None], radius=opts.radius,
                                             pivot=opts.normalization_center)
        except CameraError as err:
            return label, None, 0.0, str(err).replace("camera label sample 0: ", "")
        err = float(report.error[0])
        if abs(err) > opts.radius_tolerance:
            label = fixed[0].numpy().astype(np.float64)
            radius_error = err
            after = _centre_distance(label, np.asarray(opts.normalization_center, dtype=np.float64))
            if not (np.isfinite(label).all() and abs(after - opts.radius) <= opts.radius_tolerance):
                return label, None, 0.0, (f"camera cannot be normalised to radius {opts.radius:g}: the result "
                                          f"is {after:.4g} from the normalisation centre")
    miss = _axis_miss(label, np.asarray(opts.pivot, dtype=np.float64))
    if miss > opts.pivot_tolerance and opts.off_pivot == "reaim":
        label = reaim_label(label, np.asarray(opts.pivot, dtype=np.float64))
    return label, radius_error, miss, None


def _check_files(entries: list[DatasetEntry], root: Path, where: str, report: ValidationReport) -> None:
    """One error listing every listed file (image, mask, depth, novel view, OOD mask, clean image) that
    does not exist."""
    missing = [rel for e in entries for rel in e.files() if not (root / rel).is_file()]
    if missing:
        report.missing_files = missing
        report.errors.append(f"{where}: {len(missing)} listed file(s) missing in {root}: {_listing(missing)}")


def _check_roles(entries: list[DatasetEntry], where: str, report: ValidationReport) -> None:
    """An error for each mask, depth, OOD mask or clean image file that is also listed as an image with a camera."""
    images = {e.name: e.entry or repr(e.name) for e in entries}
    for e in entries:
        for kind, rel in (("mask", e.mask), ("depth", e.depth), ("OOD mask", e.ood_mask),
                          ("clean image", e.clean_image)):
            if rel is not None and rel in images:
                report.errors.append(f"{where}: {e.entry or repr(e.name)}: its {kind} {rel!r} is also listed as "
                                     f"an image with a camera ({images[rel]}); a file cannot be both")


def _camera_holders(entries: list[DatasetEntry]) -> list[tuple[str, str, DatasetEntry | NovelView]]:
    """``(entry in dataset.json, name in the report, holder)`` of every camera; ``holder.label`` is it."""
    out: list[tuple[str, str, DatasetEntry | NovelView]] = []
    for e in entries:
        out.append((e.entry or repr(e.name), e.name, e))
        out.extend((v.entry or f"{e.name!r} view {v.name!r} camera", f"{e.name} view {v.name}", v)
                   for v in e.novel_views)
    return out


def _fix_cameras(entries: list[DatasetEntry], opts: DatasetOptions, where: str, report: ValidationReport,
                 ) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """Normalise (and re-aim) every camera in place; ``(name, radius error)`` and ``(name, pivot miss)``
    of the cameras that needed it. A camera that cannot be used is an error naming its entry."""
    radius_fixed: list[tuple[str, float]] = []
    pivot_missed: list[tuple[str, float]] = []
    holders = _camera_holders(entries)
    centre = np.asarray(opts.normalization_center, dtype=np.float64)
    distances = [_centre_distance(h.label, centre) for _, _, h in holders]
    usable = [d for d in distances if 0.0 < d < math.inf]
    median = float(np.median(usable)) if usable else opts.radius
    for (entry, name, holder), distance in zip(holders, distances):
        problem = _radius_problem(distance, median, opts)
        if problem is None:
            label, radius_error, miss, problem = _fix_camera(holder.label, opts)
        if problem is not None:
            report.errors.append(f"{where}: {entry}: {problem}")
            continue
        holder.label = label
        if radius_error is not None:
            radius_fixed.append((name, radius_error))
        if miss > opts.pivot_tolerance:
            pivot_missed.append((name, miss))
    return radius_fixed, pivot_missed


def _report_radius(radius_fixed: list[tuple[str, float]], opts: DatasetOptions, where: str,
                   report: ValidationReport) -> None:
    if not radius_fixed:
        return
    report.normalized = [n for n, _ in radius_fixed]
    worst = max(radius_fixed, key=lambda t: abs(t[1]))
    report.warnings.append(
        f"{where}: {len(radius_fixed)} camera(s) not at radius {opts.radius:g} from "
        f"{tuple(opts.normalization_center)} were normalised (EG3D preprocess_face_cameras 'orig' "
        f"convention: centre rescaled about that point, rotation kept); worst {worst[0]!r} off by "
        f"{worst[1]:+.4g}: {_listing([n for n, _ in radius_fixed])}")


def _report_pivot(pivot_missed: list[tuple[str, float]], opts: DatasetOptions, where: str,
                  report: ValidationReport) -> None:
    if not pivot_missed:
        return
    report.off_pivot = [n for n, _ in pivot_missed]
    worst = max(pivot_missed, key=lambda t: t[1])
    msg = (f"{where}: {len(pivot_missed)} camera(s) look past the pivot {tuple(opts.pivot)} by more than "
           f"{opts.pivot_tolerance:g}; worst {worst[0]!r} misses it by {worst[1]:.4g}: "
           f"{_listing([n for n, _ in pivot_missed])}")
    if opts.off_pivot == "refuse":
        report.errors.append(msg)
    else:
        report.warnings.append(msg + ("; re-aimed at the pivot" if opts.off_pivot == "reaim" else
                                      " (kept as they are; off_pivot='reaim' turns them)"))


def load_depth(path: Path) -> np.ndarray:
    """A depth prior file (``.npy``, or the first array of an ``.npz``) as a finite ``(H, W)`` float32 array.

    Raises:
        ValueError: another suffix, a file numpy cannot read (pickles are refused), or not a finite 2-D array.
    """
    try:
        if path.suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                arr = z[z.files[0]]
        else:
            raise ValueError("must be a .npy or .npz array (a depth prior)")
    except ValueError:
        raise
    except Exception as err:  # noqa: BLE001 - numpy raises many types for a broken file
        raise ValueError(f"cannot be read ({type(err).__name__}: {err})") from None
    arr = np.asarray(arr, dtype=np.float32).squeeze()
    if arr.ndim != 2 or not np.isfinite(arr).all():
        raise ValueError(f"must be a finite (H, W) array, got shape {arr.shape}")
    return arr


def _decode_problems(e: DatasetEntry, root: Path, opts: DatasetOptions) -> list[str]:
    """``mask 'm.png' of 'a.png' (corrupt: ...)`` for each of an entry's mask, OOD mask, clean image,
    covisibility mask and depth files that cannot be decoded."""
    problems = []
    files = [("mask", e.mask), ("OOD mask", e.ood_mask), ("clean image", e.clean_image),
             *(("covisibility mask", v.visible) for v in e.novel_views)]
    for kind, rel in files:
        if rel is None or not (root / rel).is_file():
            continue
        try:
            read_image(root / rel, max_pixels=opts.max_pixels)
        except ImageReadError as err:
            problems.append(f"{kind} {rel!r} of {e.name!r} ({err.status}: {err.reason})")
    if e.depth is not None and opts.load_depths and (root / e.depth).is_file():
        try:
            load_depth(root / e.depth)
        except ValueError as err:
            problems.append(f"depth {e.depth!r} of {e.name!r} ({err})")
    return problems


def _image_sizes(entries: list[DatasetEntry], root: Path, opts: DatasetOptions, where: str,
                 report: ValidationReport) -> dict[str, tuple[int, int]]:
    """``(width, height)`` of every existing image and novel view (headers, or decoded with
    ``verify_images``, which also decodes masks, OOD masks, clean images and depths); sets each entry's
    ``size``; files that cannot be read are one error naming each, conversions a note."""
    sizes: dict[str, tuple[int, int]] = {}
    unreadable: list[str] = []
    for e in entries:
        for rel in [e.name, *[v.file for v in e.novel_views]]:
            path = root / rel
            if not path.is_file():
                continue
            try:
                info = probe_image(path, max_pixels=opts.max_pixels)
                if opts.verify_images:
                    read_image(path, background=opts.background, max_pixels=opts.max_pixels)
            except ImageReadError as err:
                unreadable.append(f"{rel} ({err.status}: {err.reason})")
                continue
            sizes[rel] = info.size
            if info.notes:
                report.converted.append(rel)
        if opts.verify_images:
            unreadable.extend(_decode_problems(e, root, opts))
        e.size = sizes.get(e.name)
    report.decoded = opts.verify_images
    if unreadable:
        report.errors.append(f"{where}: {len(unreadable)} file(s) cannot be read: {_listing(unreadable)}")
    if report.converted:
        report.notes.append(f"{len(report.converted)} image(s) are converted to RGB or EXIF-rotated at load: "
                            f"{_listing(report.converted)}")
    return sizes


def _dataset_resolution(sizes: dict[str, tuple[int, int]], opts: DatasetOptions) -> int | None:
    """``opts.resolution``, else the side of the most common square size (else the shorter side of the
    most common size)."""
    if opts.resolution is not None or not sizes:
        return opts.resolution
    counts = Counter(sizes.values())
    square = [s for s, _ in counts.most_common() if s[0] == s[1]]
    return square[0][0] if square else min(counts.most_common(1)[0][0])


def _check_sizes(sizes: dict[str, tuple[int, int]], resolution: int | None, opts: DatasetOptions, where: str,
                 report: ValidationReport) -> None:
    """Images that are not ``resolution`` square: a warning (resized at load) or an error (``refuse``)."""
    if resolution is None:
        return
    wrong = [f"{rel} ({w}x{h})" for rel, (w, h) in sizes.items() if (w, h) != (resolution, resolution)]
    if not wrong:
        return
    report.resized = [w.rsplit(" (", 1)[0] for w in wrong]
    msg = f"{where}: {len(wrong)} image(s) are not {resolution}x{resolution}: {_listing(wrong)}"
    if opts.on_wrong_size == "refuse":
        report.errors.append(msg + " (on_wrong_size='refuse')")
    else:
        report.warnings.append(msg + "; resized at load (Lanczos)")


def _note_unlabelled_images(entries: list[DatasetEntry], root: Path, report: ValidationReport) -> None:
    listed = {e.name for e in entries} | {v.file for e in entries for v in e.novel_views}
    extra = sorted(p.name for p in root.iterdir()
                   if p.is_file() and p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp", ".bmp")
                   and p.name not in listed)
    if extra:
        report.notes.append(f"{len(extra)} image file(s) in {root} have no label and are ignored: {_listing(extra)}")


def _parse_entries(data: dict[str, Any], opts: DatasetOptions, where: str,
                   report: ValidationReport) -> list[DatasetEntry] | None:
    """Entries of ``dataset.json`` with their optional keys (parse errors go into the report);
    ``None`` when ``labels`` is missing or malformed, so that nothing else can be checked."""
    errors = report.errors
    report.meta = read_meta(data, where, errors)
    unknown = unknown_keys(data)
    if unknown:
        report.notes.append(f"{where}: keys not used by the loader: {', '.join(unknown)}")
    parsed = parse_labels(data, where, errors)
    if parsed is None:
        return None
    entries, seen, report.num_entries = parsed
    parse_per_image_keys(data, entries, seen, where, errors, load_depths=opts.load_depths)
    if opts.load_novel_views:
        parse_novel_views(data, entries, seen, where, errors)
    return list(entries.values())


def validate_dataset(root: str | os.PathLike[str], options: DatasetOptions | None = None,
                     ) -> tuple[list[DatasetEntry], ValidationReport]:
    """Validate a dataset folder; problems go into the report (nothing is raised for content).

    Stages: parse dataset.json -> check the listed files exist -> normalise the cameras (radius,
    pivot) -> read the image headers and sizes -> note unlabelled images.

    Raises:
        DatasetError: only when the folder or its dataset.json cannot be read at all.
    """
    opts = options or DatasetOptions()
    root = Path(root)
    json_path, data = load_dataset_json(root)
    report = ValidationReport(root=root, json_path=json_path)
    where = str(json_path)
    entries = _parse_entries(data, opts, where, report)
    if entries is None:
        return [], report
    _check_files(entries, root, where, report)
    _check_roles(entries, where, report)
    radius_fixed, pivot_missed = _fix_cameras(entries, opts, where, report)
    _report_radius(radius_fixed, opts, where, report)
    _report_pivot(pivot_missed, opts, where, report)
    sizes = _image_sizes(entries, root, opts, where, report)
    report.resolution = _dataset_resolution(sizes, opts)
    _check_sizes(sizes, report.resolution, opts, where, report)
    _note_unlabelled_images(entries, root, report)
    return entries, report
