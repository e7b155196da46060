#!/usr/bin/env python3
"""Open a benchmark leaderboard HTML in a headless browser and check that it renders with its images.

Usage::

    python benchmarks/check_html.py runs/bench/default/leaderboard.html [--screenshot shot.png]

Checks, in order (exit 0 when all pass, 1 otherwise, 77 when no browser is installed):

1. static: the page has the leaderboard table and the provenance caption; every ``<img src>`` is a
   relative path (the folder is portable) that exists on disk;
2. in the browser (Debian ``chromium``, headless): the DOM after load has the table with one row per
   method, and every image decoded (the page's load script writes ``data-images-loaded`` /
   ``data-images-total`` on ``<body>``);
3. optionally a screenshot.

Install the browser with ``apt-get install -y chromium`` (Debian/Ubuntu); set ``$CHROMIUM`` to use
another Chromium/Chrome binary.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

NO_BROWSER = 77
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser() -> str | None:
    env = os.environ.get("CHROMIUM")
    if env:
        return env if Path(env).is_file() or shutil.which(env) else None
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


class _Scan(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.body: dict[str, str] = {}
        self.tables: list[str] = []
        self.rows_in_board = 0
        self.ids: set[str] = set()
        self._in_board = False
        self._in_tbody = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "img":
            self.images.append(a.get("src", ""))
        elif tag == "body":
            self.body = a
        elif tag == "table":
            self.tables.append(a.get("id", ""))
            self._in_board = a.get("id") == "leaderboard"
        elif tag == "tbody" and self._in_board:
            self._in_tbody = True
        elif tag == "tr" and self._in_tbody:
            self.rows_in_board += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_tbody = False
        elif tag == "table":
            self._in_board = False


def scan(html: str) -> _Scan:
    s = _Scan()
    s.feed(html)
    return s


@dataclass
class Report:
    ok: bool = True
    messages: list[str] = field(default_factory=list)
    images: int = 0
    loaded: int | None = None
    rows: int = 0

    def fail(self, msg: str) -> None:
        self.ok = False
        self.messages.append("FAIL: " + msg)

    def note(self, msg: str) -> None:
        self.messages.append(msg)


def static_check(path: Path, report: Report) -> _Scan:
    page = scan(path.read_text(encoding="utf-8"))
    if "leaderboard" not in page.tables:
        report.fail("no <table id=\"leaderboard\">")
    if "provenance" not in page.ids:
        report.fail("no provenance caption (id=\"provenance\")")
    report.rows = page.rows_in_board
    if page.rows_in_board < 1:
        report.fail("the leaderboard table has no rows")
    report.images = len(page.images)
    for src in page.images:
        if re.match(r"^([a-z]+:|/)", src):
            report.fail(f"image {src!r} is not a relative path (the folder would not be portable)")
        elif not (path.parent / src).is_file():
            report.fail(f"image {src!r} does not exist next to the page")
    report.note(f"static: table with {page.rows_in_board} row(s), {len(page.images)} image(s) referenced")
    return page


def browser_check(path: Path, report: Report, browser: str, screenshot: Path | None = None,
                  timeout: float = 120.0) -> None:
    url = path.resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="warpinv-chromium-") as profile:
        base = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--disable-component-update", "--disable-sync", "--mute-audio", "--hide-scrollbars",
                f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--run-all-compositor-stages-before-draw"]
        try:
            out = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            report.fail(f"the browser did not finish within {timeout:.0f} s")
            return
        if out.returncode != 0 or "<html" not in out.stdout.lower():
            report.fail(f"the browser failed (exit {out.returncode}): {out.stderr.strip()[-500:]}")
            return
        dom = scan(out.stdout)
        if "leaderboard" not in dom.tables or dom.rows_in_board != report.rows:
            report.fail(f"rendered DOM has {dom.rows_in_board} leaderboard rows, the file {report.rows}")
        total = dom.body.get("data-images-total")
        loaded = dom.body.get("data-images-loaded")
        if total is None or loaded is None:
            report.fail("the page's load script did not run (no data-images-* on <body>)")
        else:
            report.loaded = int(loaded)
            if int(total) != report.images:
                report.fail(f"browser saw {total} images, the file references {report.images}")
            if int(loaded) != int(total):
                report.fail(f"only {loaded} of {total} images decoded in the browser")
            report.note(f"browser: {loaded}/{total} images decoded, {dom.rows_in_board} table row(s)")
        if screenshot is not None:
            shot = subprocess.run([*base, f"--screenshot={screenshot.resolve()}", "--window-size=1400,2000", url],
                                  capture_output=True, text=True, timeout=timeout)
            if shot.returncode != 0 or not screenshot.is_file() or screenshot.stat().st_size < 1000:
                report.fail(f"screenshot failed (exit {shot.returncode})")
            else:
                report.note(f"screenshot: {screenshot}")


def check(path: str | Path, screenshot: str | Path | None = None, browser: str | None = None,
          require_images: bool = True) -> Report:
    """Run every check on one page (the browser part is skipped, with a note, when none is installed)."""
    path = Path(path)
    report = Report()
    if not path.is_file():
        report.fail(f"{path} does not exist")
        return report
    static_check(path, report)
    if require_images and report.images == 0:
        report.fail("the page references no images (expected an image grid per method)")
    browser = browser or find_browser()
    if browser is None:
        report.note("no headless browser found (apt-get install -y chromium, or set $CHROMIUM); browser check skipped")
        return report
    browser_check(path, report, browser, Path(screenshot) if screenshot else None)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html", help="leaderboard.html of a benchmark run")
    parser.add_argument("--screenshot", default=None, help="also save a screenshot (PNG)")
    parser.add_argument("--no-images-ok", action="store_true", help="accept a page without images")
    ns = parser.parse_args(argv)
    browser = find_browser()
    report = check(ns.html, ns.screenshot, browser, require_images=not ns.no_images_ok)
    for msg in report.messages:
        print(msg)
    if browser is None:
        print("SKIPPED the browser check: no Chromium found", file=sys.stderr)
        return NO_BROWSER if report.ok else 1
    print("OK" if report.ok else "FAILED")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
