"""Per-image result rows: schema, crash-safe JSONL appends, merging, de-duplication, split checks.

One row = one (image, method, config hash, view). Rows are plain JSON objects:

- ``image_id``, ``method`` (the suite's label), ``method_name`` (registry name), ``config_hash``,
  ``view`` (``input``, ``gt:yaw+0.35,pitch-0.20``, ``yaw+0.40``, ``mv``), ``status`` (``ok`` or
  ``failed``), ``error`` (the reason of a failed row, else ``None``);
- ``metrics``: ``{metric key: number or None}`` (``None`` where a value could not be computed, with
  the reason in ``notes``); ``inf`` and ``nan`` are written as the strings ``"inf"``/``"nan"``
  (JSON has no such numbers) and read back as floats;
- ``group``: how many rows this image produced for this method (an image is complete when that many
  views are present), ``seconds`` (inversion time), ``peak_mem_mb`` (CUDA peak, ``nan`` on CPU),
  ``peak_rss_mb`` (the process's peak resident memory so far), ``seed``, ``rank``, ``time`` (UNIX
  seconds when written), ``split``, ``generator`` (the generator the method ran on: its own or the
  suite's), and ``info`` (the method's ``Inversion.info``, input rows only).

Each rank appends its rows to ``rows/rank{r}.jsonl``
(:class:`warpinv.bench.writer.EvaluationWriter`): one ``write`` per image, flushed and fsynced,
so a killed run loses at most the images in flight (a torn last line is skipped with a warning on
merge). The launching process merges every shard, keeps the last row (by ``time``, then file order)
for each ``(image_id, method, config_hash, view)`` and checks the ids against the split.
"""
from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROW_KEY = ("image_id", "method", "config_hash", "view")
SHARD_GLOB = "rank*.jsonl"
STATUS_OK = "ok"
STATUS_FAILED = "failed"
#: The view of a failed image's single row (and of the row carrying the inversion's ``info``).
INPUT_VIEW = "input"
MULTIVIEW_VIEW = "mv"


class SplitMismatchError(ValueError):
    """The merged rows hold image ids that are not in the split."""


def make_row(*, image_id: str, method: str, method_name: str, config_hash: str, view: str, status: str = STATUS_OK,
             metrics: dict[str, Any] | None = None, error: str | None = None, **extra: Any) -> dict[str, Any]:
    """A row with the schema's fixed keys first (extra keys such as ``seconds`` follow)."""
    if status not in (STATUS_OK, STATUS_FAILED):
        raise ValueError(f"row status must be {STATUS_OK!r} or {STATUS_FAILED!r}, got {status!r}")
    row = {"image_id": str(image_id), "method": method, "method_name": method_name, "config_hash": config_hash,
           "view": view, "status": status, "error": error, "metrics": dict(metrics or {})}
    row.update(extra)
    return row


def row_key(row: dict[str, Any]) -> tuple[str, str, str, str]:
    return tuple(str(row[k]) for k in ROW_KEY)  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------- JSON


def _encode(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _encode(value.item())
    return value


_SPECIAL = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _decode_metrics(row: dict[str, Any]) -> dict[str, Any]:
    for key in ("metrics", "seconds", "peak_mem_mb", "peak_rss_mb"):
        if key == "metrics" and isinstance(row.get(key), dict):
            row[key] = {k: _SPECIAL.get(v, v) if isinstance(v, str) else v for k, v in row[key].items()}
        elif isinstance(row.get(key), str):
            row[key] = _SPECIAL.get(row[key], row[key])
    return row


def dumps_row(row: dict[str, Any]) -> str:
    """One JSON line (no trailing newline); non-finite floats become strings."""
    return json.dumps(_encode(row), separators=(",", ":"), allow_nan=False)


def append_rows(path: str | Path, rows: Sequence[dict[str, Any]]) -> None:
    """Append rows to a JSONL file in one write, flushed and fsynced (crash-safe per call).

    A file whose last line was torn (a killed writer, a full disk) gets a newline first, so the new
    rows start on a line of their own instead of being glued to the fragment and lost with it.
    """
    if not rows:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = "".join(dumps_row(r) + "\n" for r in rows)
    with open(path, "a+b") as fh:
        if fh.tell() > 0:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                blob = "\n" + blob
        fh.write(blob.encode("utf-8"))
        fh.flush()
        os.fsync(fh.fileno())


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of one JSONL file; a torn, corrupt or undecodable line (a killed writer, a damaged disk)
    is skipped with a warning naming the file and line."""
    out: list[dict[str, Any]] = []
    path = Path(path)
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            row = _parse_line(raw, path, lineno)
            if row is not None:
                out.append(_decode_metrics(row))
    return out


def _parse_line(raw: bytes, path: Path, lineno: int) -> dict[str, Any] | None:
    if not raw.strip():
        return None
    try:
        row = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        warnings.warn(f"{path}:{lineno}: skipping a row that is not UTF-8 (damaged bytes)", stacklevel=3)
        return None
    except json.JSONDecodeError:
        warnings.warn(f"{path}:{lineno}: skipping a torn or corrupt row (an interrupted write)", stacklevel=3)
        return None
    if not isinstance(row, dict) or any(k not in row for k in ROW_KEY):
        warnings.warn(f"{path}:{lineno}: skipping a line that is not a result row", stacklevel=3)
        return None
    return row


def write_rows(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write (replace) a JSONL file atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(dumps_row(r) + "\n" for r in rows), encoding="utf-8")
    os.replace(tmp, path)


def shard_path(rows_dir: str | Path, rank: int) -> Path:
    return Path(rows_dir) / f"rank{rank}.jsonl"


def read_shards(rows_dir: str | Path) -> list[dict[str, Any]]:
    """Every row of every ``rank*.jsonl`` shard, in (shard, line) order."""
    rows: list[dict[str, Any]] = []
    for path in sorted(Path(rows_dir).glob(SHARD_GLOB), key=lambda p: (len(p.name), p.name)):
        rows.extend(read_rows(path))
    return rows


# ---------------------------------------------------------------------------------------- merging


def dedupe(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the last row of each ``(image_id, method, config_hash, view)``.

    "Last" is by the row's ``time`` (rows of a rerun supersede older ones whatever shard they are
    in), ties broken by input order. The result is sorted by method, image id and view.
    """
    order = sorted(range(len(rows)), key=lambda i: (float(rows[i].get("time") or 0.0), i))
    latest: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for i in order:
        latest[row_key(rows[i])] = rows[i]
    # A failed row stands for the whole image: once any newer row of the image exists, it is superseded.
    out = _drop_superseded_failures(list(latest.values()))
    return sorted(out, key=lambda r: (r["method"], r["config_hash"], r["image_id"], _view_order(r["view"]), r["view"]))


def _drop_superseded_failures(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    newest: dict[tuple[str, str, str], float] = {}
    for r in rows:
        k = (r["image_id"], r["method"], r["config_hash"])
        newest[k] = max(newest.get(k, -math.inf), float(r.get("time") or 0.0))
    keep = []
    for r in rows:
        k = (r["image_id"], r["method"], r["config_hash"])
        if r["status"] == STATUS_FAILED and float(r.get("time") or 0.0) < newest[k]:
            continue
        keep.append(r)
    # Conversely, ok rows older than a newer failure of the same image belong to an earlier attempt.
    latest_failure = {(r["image_id"], r["method"], r["config_hash"]): float(r.get("time") or 0.0)
                      for r in keep if r["status"] == STATUS_FAILED}
    return [r for r in keep if r["status"] == STATUS_FAILED
            or float(r.get("time") or 0.0) >= latest_failure.get(
                (r["image_id"], r["method"], r["config_hash"]), -math.inf)]


def _view_order(view: str) -> int:
    if view == INPUT_VIEW:
        return 0
    if view.startswith("gt:"):
        return 1
    if view == MULTIVIEW_VIEW:
        return 3
    return 2


def merge_shards(rows_dir: str | Path) -> list[dict[str, Any]]:
    """Read every shard and de-duplicate."""
    return dedupe(read_shards(rows_dir))


def completed_ids(rows: Iterable[dict[str, Any]], method: str, config_hash: str) -> set[str]:
    """Image ids whose rows for ``(method, config_hash)`` are all present and ok (resume skips them).

    An image is complete when it has ``group`` distinct ok views (``group`` is carried by every row
    of the image), so an image whose rows were cut off mid-write is redone.
    """
    views: dict[str, set[str]] = {}
    sizes: dict[str, int] = {}
    failed: set[str] = set()
    for r in rows:
        if r["method"] != method or r["config_hash"] != config_hash:
            continue
        if r["status"] != STATUS_OK:
            failed.add(r["image_id"])
            continue
        views.setdefault(r["image_id"], set()).add(r["view"])
        sizes[r["image_id"]] = max(sizes.get(r["image_id"], 1), int(r.get("group") or 1))
    return {i for i, v in views.items() if i not in failed and len(v) >= sizes[i]}


@dataclass
class SplitCheck:
    """Result of checking one method's merged rows against the split."""

    method: str
    expected: int
    present: int
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.extra

    def describe(self, limit: int = 5) -> str:
        parts = [f"{self.method}: {self.present}/{self.expected} images"]
        if self.missing:
            parts.append(f"missing {len(self.missing)} ({', '.join(self.missing[:limit])}"
                         f"{', ...' if len(self.missing) > limit else ''})")
        if self.extra:
            parts.append(f"{len(self.extra)} ids not in the split ({', '.join(self.extra[:limit])}"
                         f"{', ...' if len(self.extra) > limit else ''})")
        return "; ".join(parts)


def check_split(rows: Iterable[dict[str, Any]], split_ids: Sequence[str], method: str, config_hash: str,
                *, strict: bool = True) -> SplitCheck:
    """Compare the ids of ``(method, config_hash)`` rows with the split.

    Missing ids are reported (an interrupted or partial run); ids outside the split raise
    :class:`SplitMismatchError` when ``strict`` (rows from another dataset or a bug in sharding).
    """
    have = {r["image_id"] for r in rows if r["method"] == method and r["config_hash"] == config_hash}
    expected = list(dict.fromkeys(str(i) for i in split_ids))
    exp_set = set(expected)
    check = SplitCheck(method, len(expected), len(have & exp_set),
                       [i for i in expected if i not in have], sorted(have - exp_set))
    if check.extra and strict:
        raise SplitMismatchError(f"rows of {method} (config {config_hash}) hold {len(check.extra)} image ids that are "
                                 f"not in the split: {', '.join(check.extra[:10])}")
    return check
