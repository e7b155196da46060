#!/usr/bin/env python3
"""Copy a finished benchmark run into ``benchmarks/results/<suite>/`` so it can be committed.

Usage::

    python benchmarks/publish.py runs/bench/default benchmarks/results/default   # or: make bench-results

Copies the four leaderboards, ``rows.jsonl``, ``provenance.json``, ``timing.json`` and
``resolved_config.yaml``, plus exactly the images the HTML page references (so the committed page
renders on its own), and nothing else: not the per-rank shards, not saved inversions, not wandb
files. The destination is replaced as a whole, so a published folder never mixes two runs.
"""
from __future__ import annotations

import argparse
import html
import re
import shutil
import sys
from pathlib import Path

FILES = ("leaderboard.md", "leaderboard.csv", "leaderboard.tex", "leaderboard.html", "rows.jsonl",
         "provenance.json", "timing.json", "resolved_config.yaml")
_IMG = re.compile(r"<img\b[^>]*\bsrc=\"([^\"]+)\"", re.IGNORECASE)


def referenced_images(page: Path) -> list[str]:
    """Relative ``<img src>`` paths of a leaderboard page, in page order, without duplicates."""
    srcs = [html.unescape(s) for s in _IMG.findall(page.read_text(encoding="utf-8"))]
    bad = [s for s in srcs if re.match(r"^([a-z]+:|/)", s) or ".." in Path(s).parts]
    if bad:
        raise ValueError(f"{page}: image paths must be relative and inside the run folder, got {bad[:3]}")
    return list(dict.fromkeys(srcs))


def publish(run: Path, dest: Path) -> list[Path]:
    """Copy ``run``'s publishable outputs to ``dest`` (replaced). Returns the written files."""
    missing = [name for name in FILES if not (run / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{run} is not a finished benchmark run: missing {', '.join(missing)} "
                                "(run `make bench` first)")
    images = referenced_images(run / "leaderboard.html")
    absent = [s for s in images if not (run / s).is_file()]
    if absent:
        raise FileNotFoundError(f"{run}/leaderboard.html references missing images: {absent[:3]}")
    staging = dest.with_name(dest.name + ".publishing")
    shutil.rmtree(staging, ignore_errors=True)
    written = []
    for rel in (*FILES, *images):
        target = staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(run / rel, target)
        written.append(dest / rel)
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a finished run's output folder (e.g. runs/bench/default)")
    parser.add_argument("dest", type=Path, help="destination (e.g. benchmarks/results/default)")
    ns = parser.parse_args(argv)
    try:
        written = publish(ns.run, ns.dest)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    size = sum(p.stat().st_size for p in written)
    print(f"published {len(written)} files ({size / 1e6:.1f} MB) to {ns.dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
