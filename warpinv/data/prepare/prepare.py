r"""``warpinv data prepare``: a folder of arbitrary face photos -> an EG3D-format dataset.

For every entry under ``SRC`` (recursively; hidden files and ``DST`` itself are skipped; symbolic
links to folders are followed unless they loop back to an enclosing folder):

1. read it robustly (:mod:`warpinv.data.images`); failures get ``not_an_image``, ``corrupt`` or
   ``unreadable`` (also a dangling symbolic link, a link loop, a FIFO or another special file); a
   photo whose shorter side is below ``min_face_size`` gets ``too_small``;
2. detect faces with MTCNN (batched over photos of equal detection size, progress bar);
3. choose the face: detections below ``min_confidence`` do not count (``low_confidence`` when that
   leaves none), nor do boxes whose shorter side is below ``min_face_size`` (``too_small``); two or
   more remaining faces give ``multiple_faces``, and the largest one (EG3D's ``width + height``
   criterion) is prepared or the photo is refused, per ``multiple_faces``;
4. crop it exactly as EG3D's in-the-wild pipeline (:mod:`.align`) and record padding outside the
   photo as a mask (``masks/<output>``, 255 = photo pixel); a face below
   ``low_resolution_face_size`` is prepared with a ``low_resolution`` note (the upsampling factor);
5. fit the camera from the landmarks in the crop (:mod:`.pose`) in EG3D's convention.

**Small faces.** ``min_face_size`` cannot go below :data:`MIN_FACE_FLOOR` (20 px), MTCNN's detection
minimum: facenet-pytorch's ``MTCNN(min_face_size=20)``, which EG3D's ``batch_mtcnn.py`` uses, starts
its image pyramid where the P-Net's 12 px window covers 20 photo pixels, so smaller boxes are not
searched for and only appear by box regression at the edge of a detection; their landmarks are a
few pixels each, and one pixel of landmark noise is then 5 % of the face (the pose error table in
``data/README.md`` grows quickly with noise). Faces from 20 px up are prepared as the official
pipeline would; below ``low_resolution_face_size`` (64 px) the record gets ``low_resolution``:
``{"face_px", "crop_source_px", "upsampling"}``, the 512 output side over the crop's side in photo
pixels (the crop spans about 1.8 face-box sides on a real face, so a 51 px face is upsampled about
5.5x).

**Output names** (:func:`output_names`) never collide, with each other, with another output's folder
or with the masks: ``<relative path without suffix>.png``; inputs whose names would collide (also
case-insensitively, as on macOS and Windows) keep their suffix (``a.jpg.png``), and any that still
collide get ``-<8 hex digits>`` of the sha256 of their source path. Inputs under a top-level folder
named ``masks`` (the padding masks' folder) are written under ``input_masks/``. A file name that is
not valid UTF-8 (or holds a backslash or a control character, which dataset.json names cannot) has
those bytes replaced by ``_`` and gets the hash suffix too (``caf\xe9.jpg`` -> ``caf_-1a2b3c4d.png``);
its record shows the name with ``\xNN`` escapes and keeps the original bytes as ``source_bytes``
(hex).

Outputs in ``DST``: ``<output>.png`` crops, ``masks/``, ``dataset.json`` (``labels``, ``masks``,
``camera_sources``, ``meta``) and ``prepare_report.json`` (one record per input with its status).
Nothing is dropped silently, one bad file never stops the batch (an unexpected exception becomes
status ``error`` with the reason), and a rerun skips files already prepared with the same
settings (the report and dataset.json are rewritten after every batch, so a killed run resumes).
"""
from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import logging
import os
import re
import stat
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal, TextIO

import numpy as np
from PIL import Image

from warpinv.checks import check_choice, check_min
from warpinv.data.images import (
    DEFAULT_BACKGROUND,
    DEFAULT_MAX_PIXELS,
    ImageInfo,
    ImageReadError,
    probe_image,
    read_image,
)
from warpinv.data.prepare.align import AlignmentError, CropGeometry, crop_face, eg3d_crop_geometry
from warpinv.data.prepare.detect import Face, FaceDetector
from warpinv.data.prepare.pose import CAMERA_SOURCES, MOUTH_Y_WEIGHT, estimate_pose
from warpinv.data.prepare.report import (  # noqa: F401 - statuses and file names are public here too
    DATASET_NAME,
    MASK_DIR,
    REPORT_NAME,
    STATUS_CORRUPT,
    STATUS_ERROR,
    STATUS_LOW_CONFIDENCE,
    STATUS_MULTIPLE_FACES,
    STATUS_NO_FACE,
    STATUS_NOT_AN_IMAGE,
    STATUS_OK,
    STATUS_TOO_SMALL,
    STATUS_UNREADABLE,
    STATUSES,
    PrepareResult,
    dataset_json,
    report_json,
    source_name,
    write_json_atomic,
)

logger = logging.getLogger(__name__)

#: Smallest face box side (photo pixels) that can be prepared: MTCNN's detection minimum (module docstring).
MIN_FACE_FLOOR = 20.0
#: Inputs under a top-level folder named like the masks' folder are written under this one instead.
SHADOWING_INPUTS_DIR = "input_masks"
#: Characters a dataset.json file name cannot hold (backslashes are read as separators; control characters).
_UNPORTABLE = re.compile(r"[\x00-\x1f\x7f\\]")

#: A chunk holds at most this many decoded photo pixels (memory bound for huge photos).
_CHUNK_PIXELS = 120_000_000

#: A photo waiting for detection: its path, its path relative to the source folder, its header.
_Todo = tuple[Path, str, ImageInfo]
#: A decoded photo: its record, the image, the detection copy and the copy's scale factors.
_Loaded = tuple[dict[str, Any], Image.Image, np.ndarray, tuple[float, float]]


@dataclass
class PrepareConfig:
    """Settings of ``warpinv data prepare``."""

    refine: bool = False
    """Record that methods supporting camera refinement should refine these estimated cameras."""
    multiple_faces: Literal["largest", "refuse"] = "largest"
    """With several qualifying faces: prepare the largest (EG3D's choice) or refuse the photo."""
    min_confidence: float = 0.9
    """Smallest MTCNN face probability that counts as a face (EG3D's batch_mtcnn.py uses 0.9)."""
    min_face_size: float = MIN_FACE_FLOOR
    """Smallest face box side in photo pixels that is prepared; smaller faces (and photos) are ``too_small``.
    At least :data:`MIN_FACE_FLOOR` (MTCNN's detection minimum)."""
    low_resolution_face_size: float = 64.0
    """Faces with a smaller box side are prepared with a ``low_resolution`` note (the upsampling factor)."""
    camera: Literal["pnp", "pos"] = "pnp"
    """Camera solver: perspective PnP seeded by POS (default) or POS alone."""
    keep_roll: bool = True
    """Keep the fitted roll about the optical axis in the camera (the crop does not remove roll)."""
    mouth_y_weight: float = MOUTH_Y_WEIGHT
    """Weight of the mouth corners' vertical residuals in the PnP fit (expressions move them)."""
    batch_size: int = 8
    """Photos per MTCNN batch (photos of one detection size are batched together)."""
    detect_max_side: int = 2048
    """Photos are detected on a copy whose longest side is at most this (results scaled back)."""
    max_pixels: int = DEFAULT_MAX_PIXELS
    """Photos with more pixels are refused as ``unreadable`` before decoding."""
    background: tuple[int, int, int] = DEFAULT_BACKGROUND
    """RGB colour transparent pixels are composited over."""
    device: str = "cpu"
    """Device of the MTCNN networks."""

    def __post_init__(self) -> None:
        check_choice(self.multiple_faces, ("largest", "refuse"), "multiple_faces")
        check_choice(self.camera, sorted(CAMERA_SOURCES), "camera")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {self.min_confidence}")
        if not self.min_face_size >= MIN_FACE_FLOOR:
            raise ValueError(f"min_face_size must be >= {MIN_FACE_FLOOR:g} px (MTCNN's detection minimum; smaller "
                             f"boxes have unreliable landmarks), got {self.min_face_size}")
        check_min(self.low_resolution_face_size, 0, "low_resolution_face_size")
        check_min(self.batch_size, 1, "batch_size")
        check_min(self.detect_max_side, 64, "detect_max_side")
        check_min(self.mouth_y_weight, 0, "mouth_y_weight", strict=True)

    def settings_key(self) -> dict[str, Any]:
        """Settings that change an output; a file prepared with other settings is redone."""
        keys = ("multiple_faces", "min_confidence", "min_face_size", "low_resolution_face_size", "camera",
                "keep_roll", "mouth_y_weight", "detect_max_side", "background")
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items() if k in keys}


def list_inputs(src: Path, dst: Path | None = None) -> list[Path]:
    """Every non-hidden entry under ``src`` that is not a folder (recursively), sorted by relative path.

    Symbolic links to folders are followed, except into ``dst`` (skipped, as ``dst`` itself) and back
    to an enclosing folder (a loop): such a link is listed like a file, so that it gets a status.
    Dangling links, link loops, special files and folders that cannot be listed are listed too
    (:func:`_unreadable_entry` says why they cannot be read); nothing is dropped silently.
    """
    src = src.resolve()
    skip = dst.resolve() if dst is not None else None
    out: list[Path] = []
    stack: list[tuple[Path, frozenset[str]]] = [(src, frozenset({str(src)}))]
    while stack:
        folder, ancestors = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            if folder == src:
                raise
            out.append(folder)  # a folder that cannot be listed gets a status of its own
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            if not _is_folder(entry):
                out.append(path)
                continue
            real = os.path.realpath(path)
            if skip is not None and real == str(skip):
                continue
            if real in ancestors:
                out.append(path)
            else:
                stack.append((path, ancestors | {real}))
    return sorted(out, key=lambda p: p.relative_to(src).as_posix())


def _is_folder(entry: os.DirEntry) -> bool:
    """Whether an entry is a folder or a link to one (``False`` for link loops, which raise)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _unreadable_entry(path: Path) -> tuple[str | None, os.stat_result | None]:
    """Why a listed entry cannot be read as a photo (``None`` when it can), and its ``stat``."""
    try:
        st = path.stat()
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "symbolic link loop (the link leads back to itself)", None
        if err.errno == errno.ENOENT and path.is_symlink():
            return f"dangling symbolic link to {os.readlink(path)!r} (the target does not exist)", None
        return f"cannot be read: {err.strerror or err}", None
    if stat.S_ISDIR(st.st_mode):
        if path.is_symlink():
            return "symbolic link to an enclosing folder (a loop); not followed", None
        return "folder that cannot be listed (permission denied?)", None
    if not stat.S_ISREG(st.st_mode):
        kind = ("FIFO" if stat.S_ISFIFO(st.st_mode) else "socket" if stat.S_ISSOCK(st.st_mode)
                else "device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "special file")
        return f"not a regular file ({kind})", None
    return None, st


def _source_hash(rel: str, salt: int = 0) -> str:
    """8 hex digits of the sha256 of a source path's bytes (and ``salt`` when not 0)."""
    data = os.fsencode(rel) + (b"\0%d" % salt if salt else b"")
    return hashlib.sha256(data).hexdigest()[:8]


def _portable(rel: str) -> str:
    """``rel`` as a valid, portable dataset.json name: undecodable bytes, backslashes and control
    characters become ``_`` and the name gets ``-<hash>`` before its suffix."""
    text = _UNPORTABLE.sub("_", os.fsencode(rel).decode("utf-8", "replace").replace("\ufffd", "_"))
    if text == rel:
        return rel
    p = PurePosixPath(text)
    return str(p.with_name(f"{p.stem}-{_source_hash(rel)}{p.suffix}"))


def _candidate_name(rel: str, stage: int) -> str:
    """Output name of ``rel`` at a collision stage: 0 = suffix replaced by ``.png``, 1 = suffix kept,
    2+ = suffix kept and a hash (salted by the stage) appended; never under the masks' folder."""
    p = PurePosixPath(_portable(rel))
    if p.parts[0].casefold() == MASK_DIR.casefold() and len(p.parts) > 1:
        p = PurePosixPath(SHADOWING_INPUTS_DIR, *p.parts[1:])
    if stage == 0:
        return str(p.with_suffix("")) + ".png"
    if stage == 1:
        return str(p) + ".png"
    return f"{p}-{_source_hash(rel, stage - 2)}.png"


def _colliding(names: dict[str, str]) -> set[str]:
    """Inputs whose output name equals another's, or another's folder, ignoring case."""
    seen: Counter[str] = Counter(n.casefold() for n in names.values())
    folders = {"/".join(parts[:k]) for parts in (n.casefold().split("/") for n in names.values())
               for k in range(1, len(parts))}
    return {rel for rel, n in names.items() if seen[n.casefold()] > 1 or n.casefold() in folders}


def output_names(rel_paths: list[str]) -> dict[str, str]:
    """Output file name per input: never colliding (rules in the module docstring).

    Example:
        >>> output_names(["a.jpg", "a.png", "b.jpeg", "sub/c.webp", "masks/d.png"])
        {'a.jpg': 'a.jpg.png', 'a.png': 'a.png.png', 'b.jpeg': 'b.png', 'sub/c.webp': 'sub/c.png', \
'masks/d.png': 'input_masks/d.png'}
    """
    rels = [p.replace(os.sep, "/") for p in rel_paths]
    names = {rel: _candidate_name(rel, 0) for rel in rels}
    for stage in range(1, 100):
        clash = _colliding(names)
        if not clash:
            return {orig: names[rel] for orig, rel in zip(rel_paths, rels)}
        names.update({rel: _candidate_name(rel, stage) for rel in clash})
    raise RuntimeError(f"output_names: no collision-free names after 100 rounds: {sorted(clash)[:5]}")


def _fingerprint(st: os.stat_result) -> dict[str, int]:
    return {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def _save_png_atomic(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    image.save(tmp, format="PNG")
    os.replace(tmp, path)


def _choose_face(faces: list[Face], cfg: PrepareConfig) -> tuple[str, Face | None, str]:
    """Status, chosen face (or None) and reason for a photo's detections."""
    if not faces:
        return STATUS_NO_FACE, None, "MTCNN found no face"
    confident = [f for f in faces if f.confidence >= cfg.min_confidence]
    if not confident:
        best = max(f.confidence for f in faces)
        return STATUS_LOW_CONFIDENCE, None, (f"{len(faces)} detection(s), best probability {best:.3f} "
                                             f"< min_confidence {cfg.min_confidence}")
    big = [f for f in confident if f.size >= cfg.min_face_size]
    if not big:
        largest = max(f.size for f in confident)
        floor = " (MTCNN's detection minimum)" if cfg.min_face_size == MIN_FACE_FLOOR else ""
        return STATUS_TOO_SMALL, None, (f"largest confident face is {largest:.0f} px < min_face_size "
                                        f"{cfg.min_face_size:g} px{floor}")
    largest = max(big, key=lambda f: f.extent)
    if len(big) > 1:
        if cfg.multiple_faces == "refuse":
            return STATUS_MULTIPLE_FACES, None, f"{len(big)} faces; refused (--multiple-faces refuse)"
        return STATUS_MULTIPLE_FACES, largest, f"{len(big)} faces; the largest was prepared"
    return STATUS_OK, largest, ""


def _detection_copy(image: Image.Image, max_side: int) -> tuple[np.ndarray, tuple[float, float]]:
    w, h = image.size
    scale = min(1.0, max_side / max(w, h))
    if scale >= 1.0:
        return np.asarray(image, dtype=np.uint8), (1.0, 1.0)
    dw, dh = max(1, round(w * scale)), max(1, round(h * scale))
    small = image.resize((dw, dh), Image.BILINEAR, reducing_gap=2.0)
    return np.asarray(small, dtype=np.uint8), (dw / w, dh / h)


def _rescale_face(face: Face, factors: tuple[float, float]) -> Face:
    fx, fy = factors
    if fx == 1.0 and fy == 1.0:
        return face
    x0, y0, x1, y1 = face.box
    lm = face.landmarks.copy()
    lm[:, 0] /= fx
    lm[:, 1] /= fy
    return Face((x0 / fx, y0 / fy, x1 / fx, y1 / fy), face.confidence, lm)


def _error_reason(err: Exception) -> str:
    """``Type: message at file.py:line`` (the innermost frame) for an unexpected exception."""
    tb = traceback.extract_tb(err.__traceback__)[-1:]
    where = f" at {tb[0].filename.rsplit('/', 1)[-1]}:{tb[0].lineno}" if tb else ""
    return f"{type(err).__name__}: {err}{where}"


def _detection_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """Size of the copy a photo of ``size`` is detected on (longest side at most ``max_side``)."""
    w, h = size
    s = min(1.0, max_side / max(w, h))
    return (w, h) if s >= 1 else (max(1, round(w * s)), max(1, round(h * s)))


def _detection_chunks(todo: list[_Todo], cfg: PrepareConfig) -> list[list[_Todo]]:
    """Photos of one detection size batched together, at most ``batch_size`` photos and ``_CHUNK_PIXELS``
    decoded pixels a chunk."""
    groups: dict[tuple[int, int], list[_Todo]] = {}
    for item in todo:
        groups.setdefault(_detection_size(item[2].size, cfg.detect_max_side), []).append(item)
    chunks: list[list[_Todo]] = []
    for items in groups.values():
        chunk: list[_Todo] = []
        pixels = 0
        for item in items:
            n = item[2].size[0] * item[2].size[1]
            if chunk and (len(chunk) >= cfg.batch_size or pixels + n > _CHUNK_PIXELS):
                chunks.append(chunk)
                chunk, pixels = [], 0
            chunk.append(item)
            pixels += n
        if chunk:
            chunks.append(chunk)
    return chunks


def _read_previous_records(report_path: Path) -> dict[str, dict[str, Any]]:
    """Records of an earlier run by source path (empty when there is no readable report)."""
    if not report_path.exists():
        return {}
    try:
        old = json.loads(report_path.read_text())
        return {_record_key(r): r for r in old.get("files", []) if isinstance(r, dict) and "source" in r}
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}


def _record_key(record: dict[str, Any]) -> str:
    """The source path of a report record as Python holds it (the original bytes of a non-UTF-8 name)."""
    raw = record.get("source_bytes")
    return os.fsdecode(bytes.fromhex(raw)) if isinstance(raw, str) else record["source"]


def _new_record(rel: str, output: str, settings: dict[str, Any]) -> dict[str, Any]:
    """A record before its input is looked at; a name that is not UTF-8 keeps its bytes (hex)."""
    record: dict[str, Any] = {"source": source_name(rel), "output": output, "status": None, "prepared": False,
                              "reason": "", "fingerprint": None, "settings": settings}
    if record["source"] != rel:
        record["source_bytes"] = os.fsencode(rel).hex()
    return record


def _already_prepared(old: dict[str, Any] | None, record: dict[str, Any], dst: Path) -> bool:
    """Whether an earlier record of the same file, settings and output name can be kept as it is."""
    return bool(old and old.get("prepared") and old.get("fingerprint") == record["fingerprint"]
                and old.get("settings") == record["settings"] and old.get("output") == record["output"]
                and (dst / record["output"]).exists() and (not old.get("mask") or (dst / old["mask"]).exists()))


def _probe(path: Path, record: dict[str, Any], cfg: PrepareConfig) -> ImageInfo | None:
    """The photo's header, or ``None`` with the record's status set (unreadable, error, too small)."""
    try:
        info = probe_image(path, max_pixels=cfg.max_pixels)
    except ImageReadError as err:
        record.update(status=err.status, reason=err.reason)
        return None
    except Exception as err:  # noqa: BLE001 - one bad file never stops the batch
        record.update(status=STATUS_ERROR, reason=f"{type(err).__name__}: {err}")
        return None
    record["image_size"] = list(info.size)
    record["notes"] = info.notes
    if min(info.size) < cfg.min_face_size:
        record.update(status=STATUS_TOO_SMALL,
                      reason=f"photo is {info.size[0]}x{info.size[1]} px, smaller than min_face_size "
                             f"{cfg.min_face_size:g} px")
        return None
    return info


class _Preparer:
    """One run of :func:`prepare_folder`: its records and the stages that fill them."""

    def __init__(self, src: Path, dst: Path, cfg: PrepareConfig, detector: FaceDetector | None) -> None:
        self.src, self.dst, self.cfg = src, dst, cfg
        self.detector = detector or FaceDetector(cfg.device)
        self.inputs = list_inputs(src, dst)
        self.rels = [p.relative_to(src.resolve()).as_posix() for p in self.inputs]
        self.report_path = dst / REPORT_NAME
        self.previous = _read_previous_records(self.report_path)
        self.records: dict[str, dict[str, Any]] = {}
        self.skipped = 0

    def plan(self) -> list[_Todo]:
        """A record for every input; the photos that still need detection (earlier results are kept)."""
        names = output_names(self.rels)
        settings = self.cfg.settings_key()
        todo: list[_Todo] = []
        for path, rel in zip(self.inputs, self.rels):
            record = _new_record(rel, names[rel], settings)
            problem, st = _unreadable_entry(path)
            if problem is not None:
                record.update(status=STATUS_UNREADABLE, reason=problem)
                self.records[rel] = record
                continue
            record["fingerprint"] = _fingerprint(st)
            old = self.previous.get(rel)
            if _already_prepared(old, record, self.dst):
                self.records[rel] = dict(old, resumed=True)
                self.skipped += 1
                continue
            self.records[rel] = record
            info = _probe(path, record, self.cfg)
            if info is not None:
                todo.append((path, rel, info))
        return todo

    def load(self, chunk: list[_Todo]) -> tuple[list[_Loaded], int]:
        """Decode a chunk's photos and their detection copies; also how many failed (status set)."""
        loaded: list[_Loaded] = []
        failed = 0
        for path, rel, _info in chunk:
            record = self.records[rel]
            try:
                image = read_image(path, background=self.cfg.background, max_pixels=self.cfg.max_pixels)
                arr, factors = _detection_copy(image, self.cfg.detect_max_side)
                loaded.append((record, image, arr, factors))
            except ImageReadError as err:
                record.update(status=err.status, reason=err.reason)
                failed += 1
            except Exception as err:  # noqa: BLE001
                record.update(status=STATUS_ERROR, reason=f"{type(err).__name__}: {err}")
                failed += 1
        return loaded, failed

    def detect(self, arrays: list[np.ndarray]) -> list[list[Face] | Exception]:
        """Faces per photo: one batch when the photos have one size, else (or on failure) one by one."""
        try:
            if len({a.shape for a in arrays}) != 1:
                raise ValueError("mixed sizes")
            return list(self.detector.detect(arrays))
        except Exception:  # noqa: BLE001 - retry one by one so one photo cannot fail the batch
            results: list[list[Face] | Exception] = []
            for arr in arrays:
                try:
                    results.append(self.detector.detect([arr])[0])
                except Exception as err:  # noqa: BLE001
                    results.append(err)
            return results

    def finish(self, loaded: _Loaded, faces: list[Face] | Exception) -> None:
        """Crop, mask and camera of one detected photo; failures become the record's status."""
        record, image, _, factors = loaded
        try:
            if isinstance(faces, Exception):
                raise faces
            self.finish_one(record, image, [_rescale_face(f, factors) for f in faces])
        except AlignmentError as err:
            record.update(status=STATUS_ERROR, prepared=False, reason=f"alignment failed: {err}")
        except Exception as err:  # noqa: BLE001
            record.update(status=STATUS_ERROR, prepared=False, reason=_error_reason(err))

    def finish_one(self, record: dict[str, Any], image: Image.Image, faces: list[Face]) -> None:
        """Choose the face, then write its crop and mask and fit its camera into ``record``."""
        cfg = self.cfg
        status, face, reason = _choose_face(faces, cfg)
        record.update(status=status, reason=reason, faces=len(faces),
                      detections=[f.to_dict() for f in faces[:10]])
        if face is None:
            return
        geometry = eg3d_crop_geometry(face.landmarks, image.size)
        self._note_resolution(record, face, geometry)
        crop, mask = crop_face(image, geometry)
        lm_crop = geometry.photo_to_output(face.landmarks)
        pose = estimate_pose(lm_crop, geometry.output_size, method=cfg.camera, keep_roll=cfg.keep_roll,
                             mouth_y_weight=cfg.mouth_y_weight)
        _save_png_atomic(crop, self.dst / record["output"])
        padding = float(1.0 - mask.mean())
        mask_rel = self._write_mask(mask, record["output"], padding)
        record.update(prepared=True, face=face.to_dict(), crop=geometry.to_dict(),
                      landmarks_crop=np.round(lm_crop, 3).tolist(), camera=pose.to_dict(),
                      label=[float(v) for v in pose.label], camera_source=CAMERA_SOURCES[pose.method],
                      mask=mask_rel, padding_fraction=round(padding, 6))

    def _note_resolution(self, record: dict[str, Any], face: Face, geometry: CropGeometry) -> None:
        """Record the crop's upsampling factor (output side / crop side in photo pixels), and a
        ``low_resolution`` note for a face below ``low_resolution_face_size``."""
        side = float(geometry.box[2] - geometry.box[0])
        upsampling = geometry.output_size / side
        record["crop_upsampling"] = round(upsampling, 3)
        if face.size >= self.cfg.low_resolution_face_size:
            return
        record["low_resolution"] = {"face_px": round(face.size, 2), "crop_source_px": round(side, 2),
                                    "upsampling": round(upsampling, 3)}
        record["notes"] = [*record.get("notes", []),
                           f"low_resolution: face {face.size:.0f} px < {self.cfg.low_resolution_face_size:g} px; "
                           f"the {geometry.output_size} px crop is upsampled {upsampling:.2f}x from {side:.0f} "
                           "photo pixels"]

    def _write_mask(self, mask: np.ndarray, output: str, padding: float) -> str | None:
        """``masks/<output>`` when the crop has padding (255 = photo pixel), else ``None`` (and an
        earlier mask of that output is removed)."""
        if padding > 0:
            mask_rel = f"{MASK_DIR}/{output}"
            _save_png_atomic(Image.fromarray(mask.astype(np.uint8) * 255, "L"), self.dst / mask_rel)
            return mask_rel
        stale = self.dst / MASK_DIR / output
        if stale.exists():
            stale.unlink()
        return None

    def ordered(self) -> list[dict[str, Any]]:
        return [self.records[r] for r in self.rels]

    def save_state(self) -> list[str]:
        """Rewrite dataset.json and the report; return earlier outputs whose source is gone."""
        ordered = self.ordered()
        current = set(self.rels)
        stale = sorted(r["output"] for s, r in self.previous.items()
                       if s not in current and r.get("prepared") and (self.dst / r["output"]).exists())
        write_json_atomic(self.dst / DATASET_NAME, dataset_json(ordered, self.cfg))
        write_json_atomic(self.report_path, report_json(self.src, self.dst, self.cfg, ordered, stale))
        return stale


def _check_folders(src: Path, dst: Path) -> None:
    if not src.is_dir():
        raise NotADirectoryError(f"source folder {src} does not exist or is not a folder")
    if dst.resolve() == src.resolve():
        raise ValueError(f"the output folder must differ from the source folder ({src})")


def prepare_folder(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    config: PrepareConfig | None = None,
    *,
    progress: bool = True,
    detector: FaceDetector | None = None,
    stream: TextIO | None = None,
) -> PrepareResult:
    """Prepare every photo under ``src`` into the EG3D-format dataset ``dst`` (see module doc).

    Stages: list and probe the inputs (keeping earlier results) -> batch them by detection size ->
    per batch: decode, detect, crop and fit cameras, then rewrite dataset.json and the report.

    Args:
        src: folder of photos (any formats; non-images get a status too).
        dst: output folder (created; may already hold an earlier run, which is resumed).
        config: settings (defaults: :class:`PrepareConfig`).
        progress: show a progress bar (user-facing; per-batch details go to the ``logging`` debug level).
        detector: a :class:`FaceDetector` to reuse (tests, notebooks).
        stream: where the progress bar goes (default stderr).

    Returns:
        A :class:`PrepareResult`; its :meth:`~PrepareResult.summary` is what the CLI prints.
    """
    from tqdm import tqdm

    cfg = config or PrepareConfig()
    src, dst = Path(src), Path(dst)
    _check_folders(src, dst)
    start = time.perf_counter()
    dst.mkdir(parents=True, exist_ok=True)
    run = _Preparer(src, dst, cfg, detector)
    todo = run.plan()
    chunks = _detection_chunks(todo, cfg)
    logger.info("prepare %s -> %s: %d inputs, %d to process in %d batches, %d already prepared",
                src, dst, len(run.inputs), len(todo), len(chunks), run.skipped)
    bar = tqdm(total=len(todo), unit="photo", desc="prepare", disable=not progress,
               file=stream if stream is not None else sys.stderr)
    try:
        for i, chunk in enumerate(chunks):
            loaded, failed = run.load(chunk)
            bar.update(failed)
            results = run.detect([arr for _, _, arr, _ in loaded]) if loaded else []
            for item, faces in zip(loaded, results):
                run.finish(item, faces)
                bar.update(1)
            del loaded
            run.save_state()
            logger.debug("batch %d/%d: %d photos done", i + 1, len(chunks), len(chunk))
    finally:
        bar.close()
    stale = run.save_state()
    ordered = run.ordered()
    counts = dict(Counter(r["status"] for r in ordered))
    return PrepareResult(dst, ordered, counts, len(todo), run.skipped, time.perf_counter() - start, stale)
