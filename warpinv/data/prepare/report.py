r"""What ``warpinv data prepare`` writes and says: input statuses, ``dataset.json``, ``prepare_report.json``.

Every input gets one status (:data:`STATUSES`) and a record; the prepared records make the
EG3D-format ``dataset.json`` (:func:`dataset_json`), all records make ``prepare_report.json``
(:func:`report_json`); :class:`PrepareResult` is what :func:`~warpinv.data.prepare.prepare_folder`
returns and its :meth:`~PrepareResult.summary` is what the CLI prints. Both files are written
atomically (:func:`write_json_atomic`), so a killed run leaves the previous complete version, and
both are valid UTF-8: file-name bytes that are not UTF-8 are written ``\xNN`` (:func:`source_name`).
"""
from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warpinv.data.prepare.pose import CAMERA_SOURCES

if TYPE_CHECKING:
    from warpinv.data.prepare.prepare import PrepareConfig

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
        low = [r["low_resolution"]["upsampling"] for r in self.records if r.get("prepared") and r.get("low_resolution")]
        if low:
            lines.append(f"  {'low_resolution':<15} {len(low)} (prepared from small faces, upsampled up to "
                         f"{max(low):.1f}x; see 'low_resolution' in the report)")
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


def source_name(text: str) -> str:
    r"""``text`` (a file name as Python holds it) as valid UTF-8 text: bytes that are not UTF-8, which
    Python keeps as surrogate escapes, are written ``\xNN``.

    Example:
        >>> source_name(os.fsdecode(b"caf\xe9.jpg")), source_name("café.jpg")
        ('caf\\xe9.jpg', 'café.jpg')
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return os.fsencode(text).decode("utf-8", "backslashreplace")


def _utf8_strings(data: Any) -> Any:
    """``data`` with every string made valid UTF-8 (:func:`source_name`): reasons can quote file names."""
    if isinstance(data, str):
        return source_name(data)
    if isinstance(data, dict):
        return {_utf8_strings(k): _utf8_strings(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_utf8_strings(v) for v in data]
    return data


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON (ASCII, valid UTF-8) through a temporary file, so that readers never see a
    partial file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_utf8_strings(data), indent=1, allow_nan=False) + "\n")
    os.replace(tmp, path)


def dataset_json(records: list[dict[str, Any]], cfg: PrepareConfig) -> dict[str, Any]:
    """The EG3D-format ``dataset.json`` of the prepared ``records`` (sorted by output name)."""
    from warpinv import __version__

    done = sorted((r for r in records if r.get("prepared")), key=lambda r: r["output"])
    sources = Counter(r["camera_source"] for r in done)
    overall = next(iter(sources)) if len(sources) == 1 else ("mixed" if sources else CAMERA_SOURCES[cfg.camera])
    low = [[r["output"], r["low_resolution"]["upsampling"]] for r in done if r.get("low_resolution")]
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
            **({"low_resolution": low} if low else {}),
        },
    }


def report_json(src: Path, dst: Path, cfg: PrepareConfig, records: list[dict[str, Any]],
                stale: list[str]) -> dict[str, Any]:
    """``prepare_report.json``: the run's folders and settings, counts per status and every record."""
    counts = Counter(r["status"] for r in records if r["status"])
    return {
        "src": source_name(str(src.resolve())), "dst": source_name(str(dst.resolve())),
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(cfg).items()},
        "summary": {s: counts.get(s, 0) for s in STATUSES},
        "prepared": sum(1 for r in records if r.get("prepared")),
        "stale_outputs": stale,
        "files": records,
    }
