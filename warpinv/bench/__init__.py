"""The benchmark harness: suites -> ``trainer.predict`` over every method -> rows -> leaderboards.

Public surface::

    from warpinv.bench import run_bench, run_sweep
    result = run_bench("experiments/bench/default.yaml", ["methods.pti.tuning.steps=20"], devices=2)
    result.board, result.paths["md"], result.rows

``warpinv bench SUITE.yaml [key=value ...] [--devices N]`` and ``warpinv sweep SWEEP.yaml`` are the
command-line entries (:mod:`warpinv.bench.cli`). Modules: ``suite`` (schema, overrides, resolved
method configs, plugins), ``preflight`` (missing files, disk), ``metric_set`` (the suite's metrics),
``views`` (the cameras an image is scored at), ``evaluate`` (outcome -> rows), ``writer`` (the
Lightning callback that evaluates and appends rows), ``grids`` (the HTML grid's images), ``rows``
(schema, JSONL, merge, dedupe, split check), ``runner``, ``leaderboard`` (md, csv, tex, html),
``provenance``, ``progress``, ``wandb_log``, ``sweep``.

The harness depends on the method interface only (:mod:`warpinv.methods.base`): a new method is a
folder under ``warpinv/methods`` (or a plugin file a suite names), never a change here.
"""
from __future__ import annotations

from typing import Any

__all__ = ["BenchResult", "SuiteConfig", "load_suite", "run_bench", "run_sweep"]


def __getattr__(name: str) -> Any:  # lazy: importing warpinv.bench stays cheap for the CLI
    if name in ("run_bench", "BenchResult"):
        from warpinv.bench import runner

        return getattr(runner, name)
    if name == "run_sweep":
        from warpinv.bench.sweep import run_sweep

        return run_sweep
    if name in ("SuiteConfig", "load_suite"):
        from warpinv.bench import suite

        return getattr(suite, name)
    raise AttributeError(f"module 'warpinv.bench' has no attribute {name!r}")
