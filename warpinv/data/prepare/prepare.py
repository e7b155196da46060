"""``warpinv data prepare SRC DST``: a folder of arbitrary face photos -> an EG3D-format dataset.

For every file under ``SRC`` (recursively; hidden files and ``DST`` itself are skipped):

1. read it robustly (:mod:`warpinv.data.images`); failures get ``not_an_image``, ``corrupt`` or
   ``unreadable``; a photo whose shorter side is below ``min_face_size`` gets ``too_small``;
2. detect faces with MTCNN (batched over photos of equal detection size, progress bar);
3. choose the face: detections below ``min_confidence`` do not count (``low_confidence`` when that
   leaves none), nor do boxes whose shorter side is below ``min_face_size`` (``too_small``); two or
   more remaining faces give ``multiple_faces``, and the largest one (EG3D's ``width + height``
   criterion) is prepared or the photo is refused, per ``multiple_faces``;
4. crop it exactly as EG3D's in-the-wild pipeline (:mod:`.align`) and record padding outside the
   photo as a mask (``masks/<name>.png``, 255 = photo pixel);
5. fit the camera from the landmarks in the crop (:mod:`.pose`) in EG3D's convention.

Outputs in ``DST``: ``<name>.png`` crops, ``masks/``, ``dataset.json`` (``labels``, ``masks``,
``camera_sources``, ``meta``) and ``prepare_report.json`` (one record per input with its status).
Nothing is dropped silently, one bad file never stops the batch (an unexpected exception becomes
status ``error`` with the reason), and a rerun skips files already prepared with the same
settings (the report and dataset.json are rewritten after every batch, so a killed run resumes).
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

import numpy as np
from PIL import Image

from warpinv.data.images import DEFAULT_BACKGROUND, DEFAULT_MAX_PIXELS, ImageReadError, probe_image, read_image
from warpinv.data.prepare.align import AlignmentError, crop_face, eg3d_crop_geometry
from warpinv.data.prepare.detect import Face, FaceDetector
from warpinv.data.prepare.pose import CAMERA_SOURCES, MOUTH_Y_WEIGHT, estimate_pose

STATUS_OK = "ok"
STATUS_MULTIPLE_FACES = "multiple_faces"
STATUS_NO_FACE = "no_face"
STATUS_LOW_CONFIDENCE = "low_confidence"
STATUS_TOO_SMALL = "too_small"
STATUS_CORRUPT = "corrupt"
STATUS_UNREADABLE = "unreadable"
STATUS_NOT_AN_IMAGE = "not_an_image"
STATUS_ERROR = "error"
#: Every status an input can get, in summary order.
STATUSES = (STATUS_OK, STATUS_MULTIPLE_FACES, STATUS_NO_FACE, STATUS_LOW_CONFIDENCE, STATUS_TOO_SMALL,
            STATUS_CORRUPT, STATUS_UNREADABLE, STATUS_NOT_AN_IMAGE, STATUS_ERROR)

REPORT_NAME = "prepare_report.json"
DATASET_NAME = "dataset.json"
MASK_DIR = "masks"
#: A chunk holds at most this many decoded photo pixels (memory bound for huge photos).
_CHUNK_PIXELS = 120_000_000


@dataclass
class PrepareConfig:
    """Settings of ``warpinv data prepare``."""

    refine: bool = False
    """Record that methods supporting camera refinement should refine these estimated cameras."""
    multiple_faces: Literal["largest", "refuse"] = "largest"
    """With several qualifying faces: prepare the largest (EG3D's choice) or refuse the photo."""
    min_confidence: float = 0.9
    """Smallest MTCNN face probability that counts as a face (EG3D's batch_mtcnn.py uses 0.9)."""
    min_face_size: float = 64.0
    """Smallest face box side in photo pixels; smaller faces (and photos) are ``too_small``."""
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
        if self.multiple_faces not in ("largest", "refuse"):
            raise ValueError(f"multiple_faces must be 'largest' or 'refuse', got {self.multiple_faces!r}")
        if self.camera not in CAMERA_SOURCES:
            raise ValueError(f"camera must be one of {sorted(CAMERA_SOURCES)}, got {self.camera!r}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {self.min_confidence}")
        if self.min_face_size < 1 or self.batch_size < 1 or self.detect_max_side < 64:
            raise ValueError("min_face_size and batch_size must be >= 1 and detect_max_side >= 64")
        if not self.mouth_y_weight > 0:
            raise ValueError(f"mouth_y_weight must be > 0, got {self.mouth_y_weight}")

    def settings_key(self) -> dict[str, Any]:
        """Settings that change an output; a file prepared with other settings is redone."""
        keys = ("multiple_faces", "min_confidence", "min_face_size", "camera", "keep_roll", "mouth_y_weight",
                "detect_max_side", "background")
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items() if k in keys}


@dataclass
class PrepareResult:
    """What :func:`prepare_folder` did.

    Attributes:
        dst: the output folder.
        records: one record per input (``source``, ``status``, ``prepared``, ``reason``, ...).
        counts: status -> number of inputs.
        processed, skipped: inputs handled now / skipped because already prepared.
        seconds: wall time.
    """

    dst: Path
    records: list[dict[str, Any]]
    counts: dict[str, int]
    processed: int
    skipped: int
    seconds: float
    stale_outputs: list[str] = field(default_factory=list)

    @property
    def num_prepared(self) -> int:
        return sum(1 for r in self.records if r.get("prepared"))

    def summary(self) -> str:
        """The on-screen summary: counts per status, then every input that was not prepared."""
        lines = [f"prepared {self.num_prepared} of {len(self.records)} inputs into {self.dst} "
                 f"({self.processed} processed now, {self.skipped} already prepared, {self.seconds:.1f} s)"]
        for status in STATUSES:
            n = self.counts.get(status, 0)
            if not n:
                continue
            extra = ""
            if status == STATUS_MULTIPLE_FACES:
                taken = sum(1 for r in self.records if r["status"] == status and r.get("prepared"))
                extra = f" ({taken} prepared from the largest face, {n - taken} refused)"
            lines.append(f"  {status:<15} {n}{extra}")
        bad = [r for r in self.records if not r.get("prepared")]
        if bad:
            lines.append("not prepared:")
            for r in bad:
                lines.append(f"  {r['source']}: {r['status']}: {r.get('reason', '')}")
        if self.stale_outputs:
            lines.append(f"{len(self.stale_outputs)} earlier outputs whose source is gone are no longer in "
                         f"{DATASET_NAME}: {', '.join(self.stale_outputs[:5])}"
                         + (" ..." if len(self.stale_outputs) > 5 else ""))
        return "\n".join(lines)


def list_inputs(src: Path, dst: Path | None = None) -> list[Path]:
    """Every regular, non-hidden file under ``src`` (recursively, sorted), excluding ``dst``."""
    src = src.resolve()
    dst_resolved = dst.resolve() if dst is not None else None
    out = []
    for root, dirs, files in os.walk(src):
        root_path = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and (dst_resolved is None or (root_path / d).resolve() != dst_resolved))
        for name in sorted(files):
            if not name.startswith("."):
                out.append(root_path / name)
    return out


def output_names(rel_paths: list[str]) -> dict[str, str]:
    """Output file name per input: the relative path with ``.png``; colliding stems keep their suffix.

    Example:
        >>> output_names(["a.jpg", "a.png", "b.jpeg", "sub/c.webp"])
        {'a.jpg': 'a.jpg.png', 'a.png': 'a.png.png', 'b.jpeg': 'b.png', 'sub/c.webp': 'sub/c.png'}
    """
    stems: Counter[str] = Counter(str(Path(p).with_suffix("")) for p in rel_paths)
    names = {}
    for p in rel_paths:
        stem = str(Path(p).with_suffix(""))
        names[p] = (p + ".png") if stems[stem] > 1 else (stem + ".png")
    return {k: v.replace(os.sep, "/") for k, v in names.items()}


def _fingerprint(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def _write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n")
    os.replace(tmp, path)


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
        return STATUS_TOO_SMALL, None, (f"largest confident face is {largest:.0f} px < min_face_size "
                                        f"{cfg.min_face_size:g} px")
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


class _Preparer:
    def __init__(self, src: Path, dst: Path, cfg: PrepareConfig, detector: FaceDetector | None) -> None:
        self.src, self.dst, self.cfg = src, dst, cfg
        self.detector = detector or FaceDetector(cfg.device)

    def finish_one(self, record: dict[str, Any], image: Image.Image, faces: list[Face]) -> None:
        cfg = self.cfg
        status, face, reason = _choose_face(faces, cfg)
        record.update(status=status, reason=reason, faces=len(faces),
                      detections=[f.to_dict() for f in faces[:10]])
        if face is None:
            return
        geometry = eg3d_crop_geometry(face.landmarks, image.size)
        crop, mask = crop_face(image, geometry)
        lm_crop = geometry.photo_to_output(face.landmarks)
        pose = estimate_pose(lm_crop, geometry.output_size, method=cfg.camera, keep_roll=cfg.keep_roll,
                             mouth_y_weight=cfg.mouth_y_weight)
        out_path = self.dst / record["output"]
        _save_png_atomic(crop, out_path)
        padding = float(1.0 - mask.mean())
        mask_rel = None
        if padding > 0:
            mask_rel = f"{MASK_DIR}/{record['output']}"
            _save_png_atomic(Image.fromarray(mask.astype(np.uint8) * 255, "L"), self.dst / mask_rel)
        else:
            stale = self.dst / MASK_DIR / record["output"]
            if stale.exists():
                stale.unlink()
        record.update(prepared=True, face=face.to_dict(), crop=geometry.to_dict(),
                      landmarks_crop=np.round(lm_crop, 3).tolist(), camera=pose.to_dict(),
                      label=[float(v) for v in pose.label], camera_source=CAMERA_SOURCES[pose.method],
                      mask=mask_rel, padding_fraction=round(padding, 6))


def _dataset_json(records: list[dict[str, Any]], cfg: PrepareConfig) -> dict[str, Any]:
    from warpinv import __version__

    done = sorted((r for r in records if r.get("prepared")), key=lambda r: r["output"])
    sources = Counter(r["camera_source"] for r in done)
    overall = next(iter(sources)) if len(sources) == 1 else ("mixed" if sources else CAMERA_SOURCES[cfg.camera])
    return {
        "labels": [[r["output"], r["label"]] for r in done],
        "masks": [[r["output"], r["mask"]] for r in done if r.get("mask")],
        "camera_sources": [[r["output"], r["camera_source"]] for r in done],
        "meta": {
            "created_by": f"warpinv data prepare (warpinv {__version__})",
            "camera_source": overall,
            "refine_camera": bool(cfg.refine),
            "camera_convention": "OpenCV cam2world on the origin-centred sphere of radius 2.7 looking at "
                                 "(0, 0, 0.2); normalised intrinsics fx = fy = 4.2647, cx = cy = 0.5",
            "camera_estimation": ("5-landmark template fit in the crop: 'pnp5' = POS-seeded perspective PnP, "
                                  "'pos5' = scaled-orthographic POS; roll "
                                  + ("kept" if cfg.keep_roll else "dropped")),
            "crop": "EG3D in-the-wild: POS fit to Deep3DFaceRecon's 5-point template, rescale_factor 300, "
                    "1024 window, centre 700, Lanczos to 512; padding outside the photo is black and "
                    "listed in 'masks' (255 = photo pixel)",
            "settings": cfg.settings_key(),
            "sources": [[r["output"], r["source"]] for r in done],
        },
    }


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

    Args:
        src: folder of photos (any formats; non-images get a status too).
        dst: output folder (created; may already hold an earlier run, which is resumed).
        config: settings (defaults: :class:`PrepareConfig`).
        progress: show a progress bar.
        detector: a :class:`FaceDetector` to reuse (tests, notebooks).
        stream: where the progress bar goes (default stderr).

    Returns:
        A :class:`PrepareResult`; its :meth:`~PrepareResult.summary` is what the CLI prints.
    """
    from tqdm import tqdm

    cfg = config or PrepareConfig()
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise NotADirectoryError(f"source folder {src} does not exist or is not a folder")
    if dst.resolve() == src.resolve():
        raise ValueError(f"the output folder must differ from the source folder ({src})")
    start = time.perf_counter()
    dst.mkdir(parents=True, exist_ok=True)
    inputs = list_inputs(src, dst)
    rels = [p.relative_to(src.resolve()).as_posix() for p in inputs]
    names = output_names(rels)

    previous: dict[str, dict[str, Any]] = {}
    report_path = dst / REPORT_NAME
    if report_path.exists():
        try:
            old = json.loads(report_path.read_text())
            previous = {r["source"]: r for r in old.get("files", []) if isinstance(r, dict) and "source" in r}
        except (ValueError, KeyError, TypeError):
            previous = {}
    settings = cfg.settings_key()

    records: dict[str, dict[str, Any]] = {}
    todo: list[tuple[Path, str, Any]] = []
    skipped = 0
    for path, rel in zip(inputs, rels):
        record: dict[str, Any] = {"source": rel, "output": names[rel], "status": None, "prepared": False,
                                  "reason": "", "fingerprint": _fingerprint(path), "settings": settings}
        old = previous.get(rel)
        if (old and old.get("prepared") and old.get("fingerprint") == record["fingerprint"]
                and old.get("settings") == settings and old.get("output") == record["output"]
                and (dst / record["output"]).exists() and (not old.get("mask") or (dst / old["mask"]).exists())):
            records[rel] = dict(old, resumed=True)
            skipped += 1
            continue
        records[rel] = record
        try:
            info = probe_image(path, max_pixels=cfg.max_pixels)
        except ImageReadError as err:
            record.update(status=err.status, reason=err.reason)
            continue
        except Exception as err:  # noqa: BLE001 - one bad file never stops the batch
            record.update(status=STATUS_ERROR, reason=f"{type(err).__name__}: {err}")
            continue
        record["image_size"] = list(info.size)
        record["notes"] = info.notes
        if min(info.size) < cfg.min_face_size:
            record.update(status=STATUS_TOO_SMALL,
                          reason=f"photo is {info.size[0]}x{info.size[1]} px, smaller than min_face_size "
                                 f"{cfg.min_face_size:g} px")
            continue
        todo.append((path, rel, info))

    # Batch photos of one detection size; bound the decoded pixels per chunk.
    def det_size(size: tuple[int, int]) -> tuple[int, int]:
        w, h = size
        s = min(1.0, cfg.detect_max_side / max(w, h))
        return (w, h) if s >= 1 else (max(1, round(w * s)), max(1, round(h * s)))

    groups: dict[tuple[int, int], list[tuple[Path, str, Any]]] = {}
    for item in todo:
        groups.setdefault(det_size(item[2].size), []).append(item)
    chunks: list[list[tuple[Path, str, Any]]] = []
    for items in groups.values():
        chunk: list[tuple[Path, str, Any]] = []
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

    preparer = _Preparer(src, dst, cfg, detector)
    all_rels = set(rels)

    def save_state() -> list[str]:
        ordered = [records[r] for r in rels]
        stale = sorted(r["output"] for s, r in previous.items()
                       if s not in all_rels and r.get("prepared") and (dst / r["output"]).exists())
        counts = Counter(r["status"] for r in ordered if r["status"])
        _write_json_atomic(dst / DATASET_NAME, _dataset_json(ordered, cfg))
        _write_json_atomic(report_path, {
            "src": str(src.resolve()), "dst": str(dst.resolve()),
            "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(cfg).items()},
            "summary": {s: counts.get(s, 0) for s in STATUSES},
            "prepared": sum(1 for r in ordered if r.get("prepared")),
            "stale_outputs": stale,
            "files": ordered,
        })
        return stale

    bar = tqdm(total=len(todo), unit="photo", desc="prepare", disable=not progress,
               file=stream if stream is not None else sys.stderr)
    try:
        for chunk in chunks:
            loaded: list[tuple[dict[str, Any], Image.Image, np.ndarray, tuple[float, float]]] = []
            for path, rel, _info in chunk:
                record = records[rel]
                try:
                    image = read_image(path, background=cfg.background, max_pixels=cfg.max_pixels)
                    arr, factors = _detection_copy(image, cfg.detect_max_side)
                    loaded.append((record, image, arr, factors))
                except ImageReadError as err:
                    record.update(status=err.status, reason=err.reason)
                    bar.update(1)
                except Exception as err:  # noqa: BLE001
                    record.update(status=STATUS_ERROR, reason=f"{type(err).__name__}: {err}")
                    bar.update(1)
            results: list[list[Face] | Exception] = []
            if loaded:
                shapes = {a.shape for _, _, a, _ in loaded}
                try:
                    if len(shapes) != 1:
                        raise ValueError("mixed sizes")
                    results = list(preparer.detector.detect([a for _, _, a, _ in loaded]))
                except Exception:  # noqa: BLE001 - retry one by one so one photo cannot fail the batch
                    results = []
                    for _, _, arr, _ in loaded:
                        try:
                            results.append(preparer.detector.detect([arr])[0])
                        except Exception as err:  # noqa: BLE001
                            results.append(err)
            for (record, image, _, factors), faces in zip(loaded, results):
                try:
                    if isinstance(faces, Exception):
                        raise faces
                    preparer.finish_one(record, image, [_rescale_face(f, factors) for f in faces])
                except AlignmentError as err:
                    record.update(status=STATUS_ERROR, prepared=False, reason=f"alignment failed: {err}")
                except Exception as err:  # noqa: BLE001
                    tb = traceback.extract_tb(err.__traceback__)[-1:]
                    where = f" at {tb[0].filename.rsplit('/', 1)[-1]}:{tb[0].lineno}" if tb else ""
                    record.update(status=STATUS_ERROR, prepared=False, reason=f"{type(err).__name__}: {err}{where}")
                bar.update(1)
            del loaded
            save_state()
    finally:
        bar.close()
    stale = save_state()
    ordered = [records[r] for r in rels]
    counts = dict(Counter(r["status"] for r in ordered))
    return PrepareResult(dst, ordered, counts, len(todo), skipped, time.perf_counter() - start, stale)
