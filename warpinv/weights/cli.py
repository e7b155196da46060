"""``warpinv weights ...``: list, check, fetch and convert pretrained files.

The main ``warpinv`` command mounts this with :func:`add_weights_parser`; every subcommand handler
is stored as ``func`` on the parsed namespace and returns an exit code. :func:`run_weights_cli`
runs the group on its own (tests, scripts).
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from warpinv.weights import (
    REGISTRY,
    STATUS_MISMATCH,
    STATUS_MISSING,
    STATUS_UNREADABLE,
    WEIGHTS_ENV,
    ChecksumError,
    FetchError,
    UnknownWeightError,
    WeightSpec,
    check,
    fetch,
)

__all__ = ["add_weights_parser", "run_weights_cli"]

Handler = Callable[[argparse.Namespace], int]


def add_weights_parser(subparsers: Any) -> None:
    """Register ``weights`` and its subcommands on an ``argparse`` subparsers object."""
    parser = subparsers.add_parser("weights", help="list, check, fetch and convert pretrained weight files",
                                   description="List, check, fetch and convert pretrained weight files. "
                                               "Nothing is ever downloaded except by `weights fetch`.")
    parser.set_defaults(func=_help_handler(parser))
    sub = parser.add_subparsers(dest="weights_command", metavar="{list,check,fetch,convert}")

    p = sub.add_parser("list", help="every registered file: source, checksum, licence, users")
    p.add_argument("-v", "--verbose", action="store_true", help="also print URLs, instructions and provenance")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("check", help="which files are present and verified (offline)")
    p.add_argument("names", nargs="*", metavar="NAME", help="registry names (default: all)")
    p.add_argument("--strict", action="store_true", help="exit 1 when a listed file is missing")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("fetch", help="download one file and verify it (never implicit)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--dest", metavar="DIR", default=None,
                   help=f"target folder (default: ${WEIGHTS_ENV}, else the torch hub checkpoints folder)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_fetch)

    p = sub.add_parser("convert", help="convert an official EG3D .pkl to a safe .safetensors generator file")
    p.add_argument("src", metavar="SRC.pkl")
    p.add_argument("dst", metavar="DST.safetensors")
    p.add_argument("--key", default="G_ema", help="network inside the pickle (default: G_ema)")
    p.add_argument("--fixed-planes", action="store_true",
                   help="record fixed_planes=True (the third tri-plane read as (z, y)), as WarpGAN builds its LPFF "
                        "EG3D var2-128.pkl")
    p.set_defaults(func=_cmd_convert)


def run_weights_cli(argv: Sequence[str], stdout: TextIO | None = None) -> int:
    """Run ``warpinv weights ARGV...`` and return its exit code (a leading ``weights`` is optional)."""
    args = list(argv)
    if args[:1] == ["weights"]:
        args = args[1:]
    parser = argparse.ArgumentParser(prog="warpinv")
    add_weights_parser(parser.add_subparsers(dest="command"))
    out = stdout if stdout is not None else sys.stdout
    try:
        ns = parser.parse_args(["weights", *args])
    except SystemExit as exc:  # argparse exits on --help (0) and on usage errors (2)
        return exc.code if isinstance(exc.code, int) else 2
    ns.out = out
    return int(ns.func(ns))


def _help_handler(parser: argparse.ArgumentParser) -> Handler:
    def handler(ns: argparse.Namespace) -> int:
        parser.print_help(_out(ns))
        return 2

    return handler


def _out(ns: argparse.Namespace) -> TextIO:
    return getattr(ns, "out", None) or sys.stdout


def _table(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip(), file=out)
        if n == 0:
            print("  ".join("-" * w for w in widths), file=out)


def _short(text: str, width: int = 48) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _source(spec: WeightSpec) -> str:
    if spec.packaged_in is not None:
        return f"wheel: {spec.packaged_in[0]}"
    if spec.source_kind == "direct":
        return "fetch: " + spec.urls[0].split("/")[2]
    return "manual" + (" (Google Drive)" if any("drive.google" in u for u in spec.urls) else "")


def _checksum(spec: WeightSpec) -> str:
    if spec.checksum is not None:
        return f"{spec.checksum.kind} {spec.checksum.value[:12]}"
    if spec.sha256 is not None:
        return f"sha256 {spec.sha256[:12]} (computed)"
    return "none published"


def _cmd_list(ns: argparse.Namespace) -> int:
    out = _out(ns)
    rows = [("NAME", "FILE", "SOURCE", "CHECKSUM", "LICENCE")]
    rows += [(s.name, s.filename, _source(s), _checksum(s), _short(s.licence)) for s in REGISTRY.values()]
    _table(rows, out)
    if ns.verbose:
        for spec in REGISTRY.values():
            _print_details(spec, out)
    print(f"\nFiles are looked up in: explicit path > ${WEIGHTS_ENV} > torch hub cache > installed package. "
          "`warpinv weights check` shows what is present.", file=out)
    return 0


def _print_details(spec: WeightSpec, out: TextIO) -> None:
    print(f"\n{spec.name}  ({spec.filename})\n  {spec.description}", file=out)
    print("  used by: " + "; ".join(spec.used_by), file=out)
    print(f"  licence: {spec.licence}", file=out)
    for url in spec.urls:
        print(f"  url: {url}", file=out)
    if spec.checksum is not None:
        print(f"  published {spec.checksum.kind}: {spec.checksum.value} ({spec.checksum.source})", file=out)
    if spec.sha256 is not None:
        print(f"  sha256: {spec.sha256}", file=out)
    if spec.size is not None:
        print(f"  size: {spec.size} bytes", file=out)
    if spec.manual_instructions:
        print(f"  manual: {spec.manual_instructions}", file=out)
    if spec.provenance:
        print(f"  provenance: {spec.provenance}", file=out)


def _cmd_check(ns: argparse.Namespace) -> int:
    out = _out(ns)
    try:
        statuses = check(ns.names or None)
    except UnknownWeightError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    rows = [("NAME", "STATUS", "PATH")]
    rows += [(s.name, s.status, str(s.path) if s.path else "-") for s in statuses]
    _table(rows, out)
    for s in statuses:
        if s.detail:
            print(f"\n{s.name}: {s.detail}", file=out)
    missing = sum(s.status == STATUS_MISSING for s in statuses)
    print(f"\n{len(statuses) - missing}/{len(statuses)} present. Missing files are optional unless a run names "
          f"them; `make test` needs none. Set ${WEIGHTS_ENV} or see `warpinv weights list -v`.", file=out)
    if any(s.status in (STATUS_MISMATCH, STATUS_UNREADABLE) for s in statuses):
        return 1
    return 1 if (ns.strict and missing) else 0


@contextmanager
def _log_messages_to(out: TextIO) -> Iterator[None]:
    """Show the weights package's log messages (an unverifiable download's sha256) on ``out``, unadorned."""
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(message)s"))
    package_logger = logging.getLogger("warpinv.weights")
    package_logger.addHandler(handler)
    try:
        yield
    finally:
        package_logger.removeHandler(handler)


def _cmd_fetch(ns: argparse.Namespace) -> int:
    out = _out(ns)
    try:
        with _log_messages_to(out):
            path = fetch(ns.name, dest_dir=ns.dest, progress=not ns.no_progress)
    except UnknownWeightError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (FetchError, ChecksumError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{ns.name}: {path}", file=out)
    return 0


def _cmd_convert(ns: argparse.Namespace) -> int:
    out = _out(ns)
    try:
        from warpinv.weights.generator_file import convert_network_pickle
    except ImportError as err:
        print(f"error: the converter is not available ({err})", file=sys.stderr)
        return 1
    src, dst = Path(ns.src), Path(ns.dst)
    if not src.is_file():
        print(f"error: {src} does not exist", file=sys.stderr)
        return 1
    try:
        gf = convert_network_pickle(src, dst, key=ns.key, fixed_planes=ns.fixed_planes)
    except Exception as err:  # the converter refuses unsafe or unexpected pickles in several ways
        print(f"error: could not convert {src}: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    planes = ", fixed_planes" if gf.init_kwargs.get("fixed_planes") else ""
    print(f"wrote {dst}: {len(gf.state_dict)} tensors from {ns.key!r}, "
          f"neural_rendering_resolution {gf.neural_rendering_resolution}{planes}", file=out)
    return 0
