"""The training curve image: logged scalars over steps, drawn with PIL (no plotting dependency).

Reads Lightning's ``CSVLogger`` file (``metrics.csv``: a ``step`` column and one column per logged name) and
draws one panel per series: the training loss (per logged step) and the validation PSNRs.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "metrics.csv").write_text("step,train/loss,val/novel_psnr\\n9,1.0,\\n19,0.5,12.0\\n")
    >>> series = read_series(d / "metrics.csv", ["train/loss", "val/novel_psnr"])
    >>> series["train/loss"]
    [(9, 1.0), (19, 0.5)]
    >>> draw_curves(series, d / "curve.png").size
    (640, 480)
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

from PIL import Image, ImageDraw

#: Series drawn by default (those present in the file).
DEFAULT_SERIES = ("train/loss", "val/novel_psnr", "val/input_psnr")


Series = dict[str, list[tuple[int, float]]]


def read_series(path: str | Path, names: tuple[str, ...] | list[str] = DEFAULT_SERIES) -> Series:
    """``{name: [(step, value), ...]}`` of the finite values of ``names`` in a CSVLogger file."""
    out: dict[str, list[tuple[int, float]]] = {n: [] for n in names}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            for n in names:
                text = row.get(n, "")
                if text not in ("", None) and math.isfinite(float(text)):
                    out[n].append((int(row["step"]), float(text)))
    return {n: v for n, v in out.items() if v}


def read_attempts(paths: list[Path], names: tuple[str, ...] | list[str] = DEFAULT_SERIES) -> Series:
    """The series of a run logged over several attempts (a start and its resumes, in order): each attempt's
    points replace the earlier attempts' points from its first step on."""
    merged: Series = {}
    for path in paths:
        for name, points in read_series(path, names).items():
            first = points[0][0]
            merged[name] = [p for p in merged.get(name, []) if p[0] < first] + points
    return merged


def draw_curves(series: Series, path: str | Path, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """Draw one panel per series (stacked), with its min/max and step range written on it; save as PNG."""
    width, height = size
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    panels = max(1, len(series))
    ph = height // panels
    for k, (name, points) in enumerate(series.items()):
        top = k * ph
        box = (50, top + 18, width - 10, top + ph - 18)
        draw.rectangle(box, outline="black")
        steps, values = [p[0] for p in points], [p[1] for p in points]
        lo, hi = min(values), max(values)
        s0, s1 = min(steps), max(steps)
        span_v, span_s = (hi - lo) or 1.0, (s1 - s0) or 1
        coords = [(box[0] + (s - s0) / span_s * (box[2] - box[0]), box[3] - (v - lo) / span_v * (box[3] - box[1]))
                  for s, v in points]
        if len(coords) > 1:
            draw.line(coords, fill=(31, 119, 180), width=2)
        for c in coords[-1:] if len(coords) > 1 else coords:
            draw.ellipse((c[0] - 2, c[1] - 2, c[0] + 2, c[1] + 2), fill=(214, 39, 40))
        draw.text((box[0], top + 3), f"{name}: last {values[-1]:.4g} (min {lo:.4g}, max {hi:.4g})", fill="black")
        draw.text((box[0], box[3] + 3), f"step {s0}", fill="black")
        draw.text((box[2] - 70, box[3] + 3), f"step {s1}", fill="black")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return img
