"""``warpinv metrics [NAME]``: the registered metrics and what each measures.

The main ``warpinv`` command mounts this with :func:`add_metrics_parser`. Without ``NAME`` it lists
every metric of :func:`warpinv.metrics.list_metrics` (kind, direction, resolution, weights and the
protocol cut to one line); with ``NAME`` it prints every field of that metric's
:class:`~warpinv.metrics.MetricInfo`, and of each result column of a multiview metric.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import textwrap
from typing import Any

from warpinv.metrics.base import MetricInfo, list_metrics, metric_info

__all__ = ["add_metrics_parser", "direction", "one_line"]

_WIDTH = 100


def add_metrics_parser(subparsers: Any) -> None:
    """Register ``metrics`` on an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "metrics", help="list the registered metrics, or everything about one metric",
        description="Without NAME: every registered metric with its kind, direction, resolution, weights and "
                    "protocol. With NAME: all of the metric's MetricInfo (protocol, ranges, weights, which papers' "
                    "tables it is comparable to, its result columns).")
    p.add_argument("name", nargs="?", metavar="NAME", help="a registered metric (default: list them all)")
    p.set_defaults(func=_cmd_metrics)


def direction(info: MetricInfo) -> str:
    """``'higher'`` or ``'lower'`` (is better), over all result columns; ``'mixed'`` when they differ."""
    found = {column.higher_is_better for column in info.columns().values()}
    return "mixed" if len(found) > 1 else ("higher" if found.pop() else "lower")


def one_line(text: str, width: int = 80) -> str:
    """The first sentence of ``text`` (up to the first ``'. '``), cut to ``width`` characters.

    Example:
        >>> one_line("Mean squared error per image. Images are resized first.")
        'Mean squared error per image'
        >>> one_line("a" * 12, width=10)
        'aaaaaaa...'
    """
    first = text.split(". ", 1)[0].rstrip(".")
    return first if len(first) <= width else first[: width - 3] + "..."


def _resolution(value: int | None) -> str:
    return "input size" if value is None else f"{value}x{value}"


def _cmd_metrics(ns: argparse.Namespace) -> int:
    if ns.name is None:
        _print_list()
        return 0
    try:
        info = metric_info(ns.name)
    except KeyError as err:
        print(f"warpinv metrics: {err.args[0]}", file=sys.stderr)
        return 2
    _print_info(info)
    return 0


def _print_list() -> None:
    rows = [("METRIC", "KIND", "BETTER", "RESOLUTION", "WEIGHTS", "PROTOCOL")]
    rows += [(i.name, i.kind, direction(i), _resolution(i.resolution), ", ".join(i.weight_names) or "none",
              one_line(i.protocol)) for i in list_metrics()]
    widths = [max(len(row[k]) for row in rows) for k in range(5)]
    for row in rows:
        print("  ".join([*(cell.ljust(w) for cell, w in zip(row, widths)), row[5]]).rstrip())
    print("\n`warpinv metrics NAME` prints a metric's full protocol; `warpinv weights check` shows which weight "
          "files are present.")


def _print_info(info: MetricInfo, indent: str = "", parent: MetricInfo | None = None) -> None:
    """Every field of ``info``; for a result column (``parent`` given) only those that differ from it."""
    for f in dataclasses.fields(info):
        value = getattr(info, f.name)
        if f.name == "outputs" or (parent is not None and (f.name == "name" or value == getattr(parent, f.name))):
            continue
        label = f"{indent}{f.name}: "
        print(textwrap.fill(_format(f.name, value), width=_WIDTH, initial_indent=label,
                            subsequent_indent=indent + "    ", break_on_hyphens=False))
    for column in info.outputs:
        print(f"\n{indent}column {column.name} (other fields as {info.name}):")
        _print_info(column, indent + "  ", info)


def _format(name: str, value: Any) -> str:
    if name == "higher_is_better":
        return f"{value} ({'higher' if value else 'lower'} is better)"
    if name == "resolution":
        return _resolution(value)
    if name.endswith("_range"):
        return f"[{value[0]:g}, {value[1]:g}]"
    if isinstance(value, tuple):
        return ", ".join(map(str, value)) or "none"
    return str(value) if value != "" else "-"
