"""The HTML leaderboard's image grids: saving a few images per method and finding them again.

For the first ``save_images`` ids of a split, the evaluator saves the input, the reconstruction,
the depth and the novel views of each method under ``images/<label>/<id>/`` with a
``manifest.json`` naming the label, config hash and image id; :func:`collect_grids` lists only the
folders of the tabulated rows.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from warpinv.bench.rows import STATUS_OK

#: What one grid line shows: ``(name, image, caption, line)``; the lines are ``main``, ``truth``, ``render``,
#: ``method``.
GridEntry = tuple[str, Tensor, str, str]


def safe_name(text: str) -> str:
    """A file-name-safe version of ``text`` (letters, digits and ``._+-`` kept).

    Example:
        >>> safe_name("img 0/a.png")
        'img_0_a.png'
    """
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_") or "item"


def to_uint8(image: Tensor) -> Tensor:
    """``(3, H, W)`` in [-1, 1] -> ``(H, W, 3)`` uint8."""
    return ((image.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu()


def depth_to_uint8(depth: Tensor) -> Tensor:
    """``(1, H, W)`` depth -> ``(H, W, 3)`` uint8, near = bright (min-max over the image)."""
    d = depth.detach().float()[0]
    lo, hi = float(d.min()), float(d.max())
    d = (hi - d) / (hi - lo) if hi > lo else d * 0
    g = (d * 255).round().to(torch.uint8).cpu()
    return g.unsqueeze(-1).repeat(1, 1, 3)


def save_png(array: Tensor, path: Path) -> None:
    """Write an ``(H, W, 3)`` uint8 array as PNG (folders created)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.numpy()).save(path)


def unique_name(image_id: str) -> str:
    """A file name for ``image_id`` that no other id maps to: :func:`safe_name`, plus a short hash of
    the id when that changed it (``img 0.png`` and ``img_0.png`` stay apart).

    Example:
        >>> unique_name("a.png"), unique_name("img 0.png") != unique_name("img_0.png")
        ('a.png', True)
    """
    name = safe_name(image_id)
    if name != image_id:
        name += "-" + hashlib.sha1(image_id.encode()).hexdigest()[:8]
    return name


def grid_folder(out_dir: str | Path, label: str, image_id: str) -> Path:
    """``images/<label>/<id>/`` of one image (:func:`unique_name` of the id)."""
    return Path(out_dir) / "images" / safe_name(label) / unique_name(image_id)


def save_grid_images(folder: Path, *, image_id: str, label: str, config_hash: str,
                     entries: Iterable[GridEntry]) -> None:
    """Write each entry as PNG and the folder's ``manifest.json``."""
    written: list[dict[str, str]] = []
    for name, array, caption, line in entries:
        file = f"{len(written):02d}_{safe_name(name)}.png"
        save_png(array, folder / file)
        written.append({"file": file, "caption": caption, "row": line})
    manifest = {"image_id": image_id, "method": label, "config_hash": config_hash, "images": written}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


def collect_grids(out_dir: str | Path, rows: Iterable[dict[str, Any]],
                  labels: Sequence[str]) -> dict[str, dict[str, list[tuple[str, str, str]]]]:
    """Saved grid images of the tabulated ``rows``, by method label (in ``labels`` order) and image id:
    ``[(path relative to out_dir, caption, grid line)]``.

    A folder is listed only when its manifest names the label, config hash and image id of an ok
    row: images drawn by an older config of the same label, of images outside ``rows`` (a smaller
    ``dataset.limit``) or of failed images are left out. Manifests without a ``config_hash``
    (written before it was recorded) are skipped too, since which config drew them cannot be told.
    """
    out_dir = Path(out_dir)
    wanted = {(r["method"], r["config_hash"], r["image_id"]) for r in rows if r["status"] == STATUS_OK}
    grids: dict[str, dict[str, list[tuple[str, str, str]]]] = {}
    for label in labels:
        per: dict[str, list[tuple[str, str, str]]] = {}
        for manifest in sorted((out_dir / "images" / safe_name(label)).glob("*/manifest.json")):
            data = _read_manifest(manifest)
            if data is None or (data.get("method"), data.get("config_hash"), data.get("image_id")) not in wanted:
                continue
            rel = manifest.parent.relative_to(out_dir)
            per[str(data["image_id"])] = [
                (f"{rel.as_posix()}/{e['file']}", e["caption"], e.get("row", "main")) for e in data.get("images", [])
                if (manifest.parent / e["file"]).is_file()]
        grids[label] = per
    return grids


def _read_manifest(path: Path) -> dict[str, Any] | None:
    """A grid folder's ``manifest.json``, or ``None`` when it cannot be read or is not an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
