"""Leaderboards from result rows: aggregation, then Markdown, CSV, LaTeX (booktabs) and HTML.

Aggregation (no pandas): rows are grouped by method and by view group -- ``input``, ``novel``
(ground-truth novel views, ``gt:...``), ``sweep`` (the yaw sweep, ``yaw...``) and ``mv`` (multi-view
metrics). Within a group each image's values are averaged over its views first, then the table shows
mean +- std over images; a cell over fewer images than its row's ``n`` shows its count
(``0.9000 (2/3)``) and the notes list the images without a value and why. PSNR is averaged per
image, never pooled. With ``common_subset`` every method is averaged over the images that every
method of the table scored (the default when methods failed on different images).
The best value of every column is in bold, respecting the metric's direction. Every table carries
its provenance (caption / footer) and lists the metrics that could not be computed, with the reason.
"""
from __future__ import annotations

import csv
import html
import io
import json
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warpinv.bench.rows import INPUT_VIEW, MULTIVIEW_VIEW, STATUS_FAILED, STATUS_OK
from warpinv.checks import check_choice

GROUPS = ("input", "novel", "sweep", "goae", "hfgi3d", "mv")
GROUP_TITLES = {"input": "input view", "novel": "GT novel views", "sweep": "yaw sweep",
                "goae": "GOAE views: absolute yaw ±π·25/360, frontal pitch",
                "hfgi3d": "HFGI3D view: one seeded random novel view", "mv": "multi-view"}

#: Direction of metric keys whose metadata is not known (sub-values of multi-view metrics, say).
_HIGHER = ("psnr", "ssim", "id", "covisible", "similarity", "accuracy")
_LOWER = ("lpips", "mse", "mae", "error", "dist", "l1", "l2")


def view_group(view: str) -> str:
    """The table group of a row's view: ``input``, ``novel`` (``gt:...``), a named protocol
    (``goae:...``, ``hfgi3d:...``), ``mv``, else ``sweep``.

    Example:
        >>> [view_group(v) for v in ("input", "gt:yaw+0.35,pitch+0.00", "goae:yaw+0.22", "yaw+0.25", "mv")]
        ['input', 'novel', 'goae', 'sweep', 'mv']
    """
    if view == INPUT_VIEW:
        return "input"
    if view.startswith("gt:"):
        return "novel"
    protocol = view.split(":", 1)[0]
    if protocol in GROUP_TITLES and ":" in view:
        return protocol
    if view == MULTIVIEW_VIEW:
        return "mv"
    return "sweep"


def guess_higher_is_better(key: str) -> bool | None:
    """Direction from a metric key's name, for keys without metadata (``None`` when unsure)."""
    low = key.lower().replace("-", "_")
    leaf = low.rsplit(".", 1)[-1]
    for name in (leaf, low):
        if any(name.startswith(p) or f"_{p}" in name for p in _LOWER):
            return False
        if any(name.startswith(p) or f"_{p}" in name for p in _HIGHER):
            return True
    return None


@dataclass
class MetricMeta:
    """What a table needs to know about a metric key."""

    key: str
    title: str
    higher_is_better: bool | None
    random_weights: bool = False
    resolution: int | None = None
    comparable_to: str = ""


@dataclass
class Cell:
    mean: float
    std: float
    n: int
    missing: dict[str, str] = field(default_factory=dict)
    """Images of the row with no value in this cell, with the reason (a metric's note) when known."""


@dataclass
class Column:
    """One table column: a metric key within a view group."""

    group: str
    key: str
    meta: MetricMeta

    @property
    def id(self) -> str:
        return f"{self.group}/{self.key}"

    @property
    def title(self) -> str:
        arrow = {True: " ↑", False: " ↓", None: ""}[self.meta.higher_is_better]
        rnd = " [RANDOM WEIGHTS]" if self.meta.random_weights else ""
        return f"{self.meta.title}{self.at}{arrow} ({GROUP_TITLES[self.group]}){rnd}"

    @property
    def at(self) -> str:
        """``@256`` when the metric's scoring resolution is known and its key does not say it already."""
        return f"@{self.meta.resolution}" if self.meta.resolution and "@" not in self.key else ""


@dataclass
class MethodSummary:
    """What the table shows about a method besides its metrics."""

    label: str
    name: str
    config_hash: str
    budget: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    generator: str = ""
    """The generator the method ran on (its own, else the suite's)."""


@dataclass
class BoardRow:
    label: str
    name: str
    config_hash: str
    images: int
    failed: int
    seconds_per_image: float
    peak_mem_mb: float
    peak_rss_mb: float
    cells: dict[str, Cell]
    budget: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    generator: str = ""
    succeeded: int = 0
    """Images this method inverted and scored (``images`` counts those in the table's means: fewer under
    ``common_subset``)."""


#: How a table averages: over each method's own successful images, or over the images every method scored.
AGGREGATIONS = ("auto", "all", "common_subset")


@dataclass
class Leaderboard:
    """An aggregated table plus its caption."""

    title: str
    columns: list[Column]
    rows: list[BoardRow]
    caption: list[str] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    csv_context: dict[str, Any] = field(default_factory=dict)
    aggregation: str = "all"
    """``all`` or ``common_subset`` (what :func:`aggregate` used)."""
    excluded: dict[str, list[str]] = field(default_factory=dict)
    """With ``common_subset``: per method label, its successful images left out (another method failed them)."""

    def best(self, column: Column) -> float | None:
        """Best mean in a column (``None`` when the direction is unknown or no value is finite)."""
        if column.meta.higher_is_better is None:
            return None
        values = [r.cells[column.id].mean for r in self.rows if column.id in r.cells
                  and not math.isnan(r.cells[column.id].mean)]
        if len(values) < 2:
            return None
        return max(values) if column.meta.higher_is_better else min(values)

    def is_best(self, column: Column, row: BoardRow) -> bool:
        best = self.best(column)
        cell = row.cells.get(column.id)
        return best is not None and cell is not None and cell.mean == best


# ------------------------------------------------------------------------------------- aggregate


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    if any(math.isinf(v) for v in values):
        mean = math.fsum(values) if not (math.inf in values and -math.inf in values) else math.nan
        return (math.copysign(math.inf, mean) if not math.isnan(mean) else math.nan), math.nan
    mean = math.fsum(values) / len(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, std


def aggregate(rows: Iterable[dict[str, Any]], methods: Sequence[MethodSummary],
              meta: dict[str, MetricMeta] | None = None, *, title: str = "",
              columns: Sequence[str] | None = None, aggregation: str = "auto") -> Leaderboard:
    """Build the table of ``methods`` (in that order) from merged, de-duplicated rows.

    Args:
        rows: result rows (other methods / config hashes are ignored).
        methods: the rows of the table.
        meta: metadata by metric key (direction, title, random weights); unknown keys are guessed.
        columns: restrict to these column ids (``group/key``), in this order.
        aggregation: ``all`` (each method over its own successful images), ``common_subset`` (every
            method over the images all of them scored) or ``auto`` (``common_subset`` when the
            methods' successful images differ, else ``all``).
    """
    check_choice(aggregation, AGGREGATIONS, "aggregation")
    meta = dict(meta or {})
    wanted = {(m.label, m.config_hash) for m in methods}
    per: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if (r["method"], r["config_hash"]) in wanted:
            per.setdefault((r["method"], r["config_hash"]), []).append(r)
    ok_ids = {(m.label, m.config_hash): _ok_ids(per.get((m.label, m.config_hash), [])) for m in methods}
    common = set.intersection(*ok_ids.values()) if ok_ids else set()
    if aggregation == "auto":  # an empty common subset (a method failed everything) would hide every number
        differ = len({frozenset(v) for v in ok_ids.values()}) > 1
        aggregation = "common_subset" if differ and common else "all"
    seen_cols: dict[str, Column] = {}
    board_rows = []
    excluded: dict[str, list[str]] = {}
    for m in methods:
        mrows = per.get((m.label, m.config_hash), [])
        failed_ids = {r["image_id"] for r in mrows if r["status"] == STATUS_FAILED}
        ids = ok_ids[(m.label, m.config_hash)]
        if aggregation == "common_subset":
            if ids - common:
                excluded[m.label] = sorted(ids - common)
            ids = ids & common
        ok_rows = [r for r in mrows if r["status"] == STATUS_OK and r["image_id"] in ids]
        values = _column_values(ok_rows, meta, seen_cols)
        cells = {col_id: _cell(by_image, ids, ok_rows, seen_cols[col_id].key) for col_id, by_image in values.items()}
        inputs = [r for r in ok_rows if r["view"] == INPUT_VIEW]
        secs = [float(r["seconds"]) for r in inputs if _finite(r.get("seconds"))]
        mems = [float(r["peak_mem_mb"]) for r in inputs if _finite(r.get("peak_mem_mb"))]
        rss = [float(r["peak_rss_mb"]) for r in mrows if _finite(r.get("peak_rss_mb"))]
        board_rows.append(BoardRow(
            m.label, m.name, m.config_hash, len(ids), len(failed_ids),
            statistics.fmean(secs) if secs else math.nan, max(mems) if mems else math.nan,
            max(rss) if rss else math.nan, cells, m.budget, dict(m.extra), m.generator,
            len(ok_ids[(m.label, m.config_hash)])))
    if columns is not None:
        cols = [seen_cols[c] for c in columns if c in seen_cols]
    else:
        cols = sorted(seen_cols.values(), key=lambda c: (GROUPS.index(c.group), _metric_rank(c.key, meta), c.key))
    return Leaderboard(title, cols, board_rows, aggregation=aggregation, excluded=excluded)


def _ok_ids(mrows: list[dict[str, Any]]) -> set[str]:
    failed = {r["image_id"] for r in mrows if r["status"] == STATUS_FAILED}
    return {r["image_id"] for r in mrows if r["status"] == STATUS_OK} - failed


def _column_values(ok_rows: list[dict[str, Any]], meta: dict[str, MetricMeta],
                   seen_cols: dict[str, Column]) -> dict[str, dict[str, list[float]]]:
    """``{column id: {image id: [values over the image's views]}}`` of one method's ok rows."""
    values: dict[str, dict[str, list[float]]] = {}
    for r in ok_rows:
        group = view_group(r["view"])
        for key, value in (r.get("metrics") or {}).items():
            if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            col_id = f"{group}/{key}"
            if col_id not in seen_cols:
                seen_cols[col_id] = Column(group, key,
                                           meta.get(key) or MetricMeta(key, key, guess_higher_is_better(key)))
            values.setdefault(col_id, {}).setdefault(r["image_id"], []).append(float(value))
    return values


def _cell(by_image: dict[str, list[float]], ids: set[str], ok_rows: list[dict[str, Any]], key: str) -> Cell:
    """Mean and std over images of one column, with the images that have no value and why."""
    per_image = {i: _mean_std(v)[0] for i, v in by_image.items()}
    scored = [v for v in per_image.values() if not math.isnan(v)]
    mean, std = _mean_std(scored)
    missing = sorted(i for i in ids if i not in per_image or math.isnan(per_image[i]))
    return Cell(mean, std, len(scored), {i: _missing_reason(ok_rows, i, key) for i in missing})


def _missing_reason(ok_rows: list[dict[str, Any]], image_id: str, key: str) -> str:
    for r in ok_rows:
        if r["image_id"] != image_id:
            continue
        for note in r.get("notes") or []:
            if note.startswith(f"{key}:"):
                return note.split(":", 1)[1].strip()
    return "no value"


def _metric_rank(key: str, meta: dict[str, MetricMeta]) -> int:
    order = list(meta)
    return order.index(key) if key in order else len(order)


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


# ------------------------------------------------------------------------------------ formatting


def _digits(column: Column) -> int:
    low = column.key.lower()
    if "psnr" in low:
        return 2
    return 4 if ("lpips" in low or "ssim" in low or "id" in low) else 3


def fmt_value(x: float, digits: int) -> str:
    if math.isnan(x):
        return "-"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}f}"


def fmt_cell(cell: Cell | None, digits: int, pm: str = " ± ", images: int | None = None) -> str:
    """``mean ± std``, with ``(n/images)`` when the cell averages fewer images than its row.

    Example:
        >>> fmt_cell(Cell(0.9, 0.01, 2), 4, images=3)
        '0.9000 ± 0.0100 (2/3)'
    """
    if cell is None:
        return "-"
    text = fmt_value(cell.mean, digits)
    if cell.n > 1 and not math.isnan(cell.std):
        text += pm + fmt_value(cell.std, digits)
    return text + count_suffix(cell, images)


def count_suffix(cell: Cell, images: int | None) -> str:
    """`` (n/images)`` when the cell's count differs from the row's, else empty."""
    return f" ({cell.n}/{images})" if images is not None and cell.n != images else ""


def _fmt_time(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.1f}"


def _fmt_mem(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.0f}"


def _mem_title(board: Leaderboard) -> tuple[str, str]:
    """Peak memory column: CUDA peak when measured, else the process's peak RSS."""
    if any(not math.isnan(r.peak_mem_mb) for r in board.rows):
        return "peak GPU mem (MB)", "gpu"
    return "peak RSS (MB)", "rss"


def _mem(board_row: BoardRow, kind: str) -> float:
    return board_row.peak_mem_mb if kind == "gpu" else board_row.peak_rss_mb


def to_markdown(board: Leaderboard) -> str:
    mem_title, mem_kind = _mem_title(board)
    head = ["method", *[c.title for c in board.columns], "n", "failed", "s/img", mem_title, "config"]
    lines = [f"## {board.title}" if board.title else "", "",
             "| " + " | ".join(_md_escape(h) for h in head) + " |",
             "|" + "|".join([":---", *["---:"] * (len(head) - 2), ":---"]) + "|"]
    for r in board.rows:
        cells = []
        for c in board.columns:
            text = fmt_cell(r.cells.get(c.id), _digits(c), images=r.images)
            cells.append(f"**{text}**" if board.is_best(c, r) else text)
        lines.append("| " + " | ".join([_md_escape(r.label), *cells, str(r.images), str(r.failed),
                                        _fmt_time(r.seconds_per_image), _fmt_mem(_mem(r, mem_kind)),
                                        f"`{r.config_hash}`"]) + " |")
    lines.append("")
    lines += [f"{line}  " for line in _caption_lines(board)]
    return "\n".join(lines).lstrip("\n") + "\n"


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|")


def generator_note(board: Leaderboard) -> str | None:
    """A warning line when the table's rows were made on different generators, else ``None``."""
    by_generator: dict[str, list[str]] = {}
    for r in board.rows:
        by_generator.setdefault(r.generator or "unknown", []).append(r.label)
    if len(by_generator) < 2:
        return None
    parts = "; ".join(f"{', '.join(labels)} on {gen}" for gen, labels in by_generator.items())
    return (f"DIFFERENT GENERATORS: {parts}. Rows made on different generators are not directly comparable "
            "(the generator bounds what each method can reach).")


def _subset_lines(board: Leaderboard, limit: int = 8) -> list[str]:
    """Which images each mean covers: the common subset's exclusions and every partial cell."""
    lines = []
    if board.aggregation == "common_subset":
        n = board.rows[0].images if board.rows else 0
        text = f"Means over the {n} image(s) every method scored (common_subset)"
        if board.excluded:
            text += "; left out: " + "; ".join(f"{label}: {_ids(ids, limit)}" for label, ids in board.excluded.items())
        lines.append(text + ".")
    partial = []
    for r in board.rows:
        for c in board.columns:
            cell = r.cells.get(c.id)
            if cell is not None and cell.missing:
                reasons = {}
                for image_id, reason in cell.missing.items():
                    reasons.setdefault(reason, []).append(image_id)
                why = "; ".join(f"{_ids(ids, limit)} ({reason})" for reason, ids in reasons.items())
                partial.append(f"{r.label} {c.id} {cell.n}/{r.images}: {why}")
    if partial:
        lines.append("Cells over fewer images than their row (without a value): " + " | ".join(partial) + ".")
    return lines


def _ids(ids: list[str], limit: int) -> str:
    return ", ".join(ids[:limit]) + (f", ... ({len(ids)} in all)" if len(ids) > limit else "")


def _caption_lines(board: Leaderboard) -> list[str]:
    lines = list(board.caption)
    mixed = generator_note(board)
    if mixed:
        lines.append(mixed)
    lines += _subset_lines(board)
    budgets = [f"{r.label}: {r.budget}" for r in board.rows if r.budget]
    if budgets:
        lines.append("Budgets and settings changed from the method presets (paper defaults): "
                     + "; ".join(budgets) + ".")
    if board.unavailable:
        lines.append("Unavailable metrics (not computed): "
                     + "; ".join(f"{k} ({v})" for k, v in sorted(board.unavailable.items())) + ".")
    random_cols = sorted({c.meta.key for c in board.columns if c.meta.random_weights})
    if random_cols:
        lines.append("RANDOM WEIGHTS: " + ", ".join(random_cols) + " were computed with seeded random network "
                     "weights (allow_random_metrics); their values are not comparable to any published number.")
    return lines


def to_csv(board: Leaderboard) -> str:
    """One row per method; mean/std/n per column plus the provenance fields on every row."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    context = dict(board.csv_context)
    head = ["method", "method_name", "config_hash", "generator", "images", "failed", "seconds_per_image",
            "peak_gpu_mem_mb", "peak_rss_mb"]
    for c in board.columns:
        suffix = "_random_weights" if c.meta.random_weights else ""
        head += [f"{c.id}{c.at}{suffix}_mean", f"{c.id}{c.at}{suffix}_std", f"{c.id}{c.at}{suffix}_n"]
    head += ["budget", *context]
    writer.writerow(head)
    for r in board.rows:
        line: list[Any] = [r.label, r.name, r.config_hash, r.generator, r.images, r.failed, _num(r.seconds_per_image),
                           _num(r.peak_mem_mb), _num(r.peak_rss_mb)]
        for c in board.columns:
            cell = r.cells.get(c.id)
            line += ([_num(cell.mean), _num(cell.std), cell.n] if cell else ["", "", 0])
        line += [r.budget, *[_csv_value(v) for v in context.values()]]
        writer.writerow(line)
    return buf.getvalue()


def _num(x: float) -> str:
    if math.isnan(x):
        return ""
    return repr(float(x)) if math.isfinite(x) else ("inf" if x > 0 else "-inf")


def _csv_value(v: Any) -> str:
    return json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else str(v)


_TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                "↑": r"$\uparrow$", "↓": r"$\downarrow$", "±": r"$\pm$", "×": r"$\times$", "→": r"$\rightarrow$"}


def tex_escape(text: str) -> str:
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in str(text))


def to_latex(board: Leaderboard, label: str = "tab:warpinv") -> str:
    """A booktabs ``table`` (hand-written: no pandas/jinja2); best per column in ``\\textbf``."""
    mem_title, mem_kind = _mem_title(board)
    cols = "l" + "r" * (len(board.columns) + 4)
    head = ["Method", *[c.title for c in board.columns], "$n$", "failed", "s/img", mem_title]
    out = ["% Generated by warpinv bench; needs \\usepackage{booktabs}.",
           "\\begin{table}[t]", "\\centering", "\\small",
           "\\caption{" + tex_escape(" ".join(_caption_lines(board)) or board.title) + "}",
           "\\label{" + label + "}",
           "\\begin{tabular}{" + cols + "}", "\\toprule",
           " & ".join(tex_escape(h) if not h.startswith("$") else h for h in head) + " \\\\", "\\midrule"]
    for r in board.rows:
        cells = []
        for c in board.columns:
            cell = r.cells.get(c.id)
            digits = _digits(c)
            if cell is None:
                cells.append("--")
                continue
            mean = tex_escape(fmt_value(cell.mean, digits))
            mean = f"\\textbf{{{mean}}}" if board.is_best(c, r) else mean
            std = (f" $\\pm$ {tex_escape(fmt_value(cell.std, digits))}"
                   if cell.n > 1 and not math.isnan(cell.std) else "")
            cells.append(mean + std + count_suffix(cell, r.images))
        out.append(" & ".join([tex_escape(r.label), *cells, str(r.images), str(r.failed),
                               tex_escape(_fmt_time(r.seconds_per_image)), tex_escape(_fmt_mem(_mem(r, mem_kind)))])
                   + " \\\\")
    out += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
    return "\n".join(out)


# ------------------------------------------------------------------------------------------ HTML


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222}
table.board{border-collapse:collapse;margin:12px 0}
table.board th,table.board td{border-bottom:1px solid #ccc;padding:4px 10px;text-align:right}
table.board th:first-child,table.board td:first-child{text-align:left}
table.board thead th{border-bottom:2px solid #333}
td.best{font-weight:bold}
.caption{font-size:0.9em;color:#444;max-width:1100px}
.grid{display:grid;gap:4px;margin:4px 0;align-items:start}
h3{font-size:0.9em;margin:16px 0 4px 0;color:#333}
.grid figure{margin:0;text-align:center;font-size:0.75em;color:#555}
.grid img{width:128px;height:128px;object-fit:contain;image-rendering:pixelated;background:#eee;display:block}
.random{color:#b00;font-weight:bold}
code{font-size:0.9em}
img.broken{outline:3px solid #d00}
"""

#: Marks images that failed to load (red outline) and records the counts on <body> for
#: headless-browser checks (``benchmarks/check_html.py``).
_LOAD_CHECK = """<script>
window.addEventListener("load", function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (imgs[i].complete && imgs[i].naturalWidth > 0) { ok++; } else { imgs[i].classList.add("broken"); }
  }
  document.body.setAttribute("data-images-total", String(imgs.length));
  document.body.setAttribute("data-images-loaded", String(ok));
});
</script>"""


@dataclass
class GridImage:
    """One image of an HTML grid: a path relative to the output folder and a caption."""

    path: str
    caption: str
    row: str = "main"
    """Grid line: ``main`` (input, reconstruction, depth, sweep), ``truth`` (GT novel views), ``render`` (at GT
    cameras), ``method`` (what the method shows of its own work, e.g. HFGI3D's pseudo views)."""


def to_html(board: Leaderboard, grids: dict[str, dict[str, list[GridImage]]] | None = None) -> str:
    """A standalone page: the table, its provenance, and an image grid per method.

    ``grids[label][image_id]`` lists the images of one grid row (input, reconstruction, novel views,
    depth). Paths are relative to the output folder, so the folder can be moved or zipped.
    """
    mem_title, mem_kind = _mem_title(board)
    e = html.escape
    parts = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
             f"<title>{e(board.title or 'warpinv leaderboard')}</title>", f"<style>{_CSS}</style></head><body>",
             f"<h1>{e(board.title or 'warpinv leaderboard')}</h1>",
             "<table class=\"board\" id=\"leaderboard\"><thead><tr>"]
    head = ["method", *[c.title for c in board.columns], "n", "failed", "s/img", mem_title, "config"]
    parts.append("".join(f"<th>{e(h)}</th>" for h in head) + "</tr></thead><tbody>")
    for r in board.rows:
        tds = [f"<td>{e(r.label)}</td>"]
        for c in board.columns:
            cls = " class=\"best\"" if board.is_best(c, r) else ""
            tds.append(f"<td{cls}>{e(fmt_cell(r.cells.get(c.id), _digits(c), images=r.images))}</td>")
        tds += [f"<td>{r.images}</td>", f"<td>{r.failed}</td>", f"<td>{_fmt_time(r.seconds_per_image)}</td>",
                f"<td>{_fmt_mem(_mem(r, mem_kind))}</td>", f"<td><code>{e(r.config_hash)}</code></td>"]
        parts.append("<tr>" + "".join(tds) + "</tr>")
    parts.append("</tbody></table>")
    parts.append("<div class=\"caption\" id=\"provenance\">")
    for line in _caption_lines(board):
        cls = " class=\"random\"" if line.startswith("RANDOM WEIGHTS") else ""
        parts.append(f"<p{cls}>{e(line)}</p>")
    parts.append("</div>")
    for label, per_image in (grids or {}).items():
        if not per_image:
            continue
        parts.append(f"<h2>{e(label)}</h2>")
        for image_id, images in per_image.items():
            parts.append(f"<h3>{e(image_id)}</h3>")
            lines: dict[str, list[GridImage]] = {}
            for im in images:
                lines.setdefault(im.row, []).append(im)
            for row, items in lines.items():
                parts.append(f"<div class=\"grid\" style=\"grid-template-columns:repeat({len(items)},132px)\" "
                             f"data-method=\"{e(label)}\" data-image=\"{e(image_id)}\" data-row=\"{e(row)}\">")
                for im in items:
                    parts.append(f"<figure><img src=\"{e(im.path)}\" alt=\"{e(label)} {e(image_id)} {e(im.caption)}\" "
                                 f"loading=\"eager\"><figcaption>{e(im.caption)}</figcaption></figure>")
                parts.append("</div>")
    prov = board.provenance
    if prov:
        parts.append("<details><summary>provenance (JSON)</summary><pre>"
                     + e(json.dumps(prov, indent=1, sort_keys=True, default=str)) + "</pre></details>")
    parts.append(_LOAD_CHECK)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_all(board: Leaderboard, out_dir: str | Path, *, stem: str = "leaderboard",
              grids: dict[str, dict[str, list[GridImage]]] | None = None,
              tex_label: str = "tab:warpinv") -> dict[str, Path]:
    """Write ``<stem>.md``, ``.csv``, ``.tex`` and ``.html`` into ``out_dir``; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {ext: out_dir / f"{stem}.{ext}" for ext in ("md", "csv", "tex", "html")}
    paths["md"].write_text(to_markdown(board), encoding="utf-8")
    paths["csv"].write_text(to_csv(board), encoding="utf-8")
    paths["tex"].write_text(to_latex(board, tex_label), encoding="utf-8")
    paths["html"].write_text(to_html(board, grids), encoding="utf-8")
    return paths
