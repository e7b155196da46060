"""The ``warpinv`` command line. Each command group registers itself here."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from warpinv import __version__
from warpinv.backbone.runtime import tune_cpu_allocator
from warpinv.bench.cli import add_bench_parser, add_sweep_parser
from warpinv.data.cli import add_data_parser
from warpinv.methods.cli import add_methods_parser
from warpinv.metrics.cli import add_metrics_parser
from warpinv.training.cli import add_train_parser
from warpinv.weights.cli import add_weights_parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="warpinv", description="3D GAN inversion on one EG3D backbone.")
    parser.add_argument("--version", action="version", version=f"warpinv {__version__}")
    parser.set_defaults(func=lambda _ns: (parser.print_help(), 0)[1])
    sub = parser.add_subparsers(dest="command", metavar="{weights,data,methods,metrics,bench,sweep,train}")
    add_weights_parser(sub)
    add_data_parser(sub)
    add_methods_parser(sub)
    add_metrics_parser(sub)
    add_bench_parser(sub)
    add_sweep_parser(sub)
    add_train_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``warpinv`` and ``python -m warpinv``; returns the exit code."""
    tune_cpu_allocator()
    ns = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    return int(ns.func(ns))
