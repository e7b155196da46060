"""``warpinv bench`` and ``warpinv sweep``.

The main ``warpinv`` command mounts them with :func:`add_bench_parser` and :func:`add_sweep_parser`;
each handler is stored as ``func`` on the namespace and returns an exit code, every error ending in
one ``warpinv bench: ...`` line with a hint, never a traceback:

- 0: the run finished (failed images, if any, are reported on stderr);
- 1: ``bench`` only: a method has no successful image or misses images of the split (the
  leaderboard is still written);
- 2: the suite cannot run: a config, preflight or dataset error, a refused pickle, a generator file
  that does not match its kwargs, an output folder held by another run;
- 3: the output cannot be written (read-only folder, disk full): what was written stays, and a
  rerun resumes;
- 4: a worker process (a DDP rank) died, e.g. killed by the system for memory: the images the other
  ranks finished are on disk, and a rerun resumes.

:func:`run_bench_cli` runs them on their own.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["add_bench_parser", "add_sweep_parser", "run_bench_cli"]

_OVERRIDES_HELP = ("dotted overrides: any suite field (output=runs/x, dataset.limit=2, allow_random_metrics=true), "
                   "a method's config (methods.pti.tuning.lr=3e-4), or method.KEY=VALUE in single-method suites")


def add_bench_parser(subparsers: Any) -> None:
    """Register ``bench`` on an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "bench", help="run a benchmark suite (resumable) and write its leaderboards",
        description="Run every method of a suite on its dataset through trainer.predict (all visible GPUs, or "
                    "--devices N CPU processes), resumably; write rows, leaderboards (md, csv, tex, html), timing "
                    "and provenance into the suite's output folder.")
    p.add_argument("suite", metavar="SUITE.yaml", help="suite file, e.g. experiments/bench/default.yaml")
    p.add_argument("overrides", nargs=argparse.REMAINDER, metavar="KEY=VALUE", help=_OVERRIDES_HELP)
    _bench_flags(p)
    p.set_defaults(func=_cmd_bench)


def _bench_flags(p: argparse.ArgumentParser, default: Any = None) -> None:
    p.add_argument("--devices", type=int, default=default, metavar="N",
                   help="processes: N GPUs (default: all visible), or N CPU processes when there is no GPU")
    p.add_argument("--dry-run", action="store_true", default=default if default is not None else False,
                   help="resolve the config and run the preflight checks, print the resolved suite, run nothing")
    p.add_argument("--keys", action="store_true", default=default if default is not None else False,
                   help="list every suite key and each method's config keys, then exit")
    p.add_argument("-q", "--quiet", action="store_true", default=default if default is not None else False,
                   help="no progress bars or table on the terminal")


def _sweep_flags(p: argparse.ArgumentParser, default: Any = None) -> None:
    p.add_argument("--devices", type=int, default=default, metavar="N", help="processes per trial (as for bench)")
    p.add_argument("--seed", type=int, default=default if default is not None else 0,
                   help="seed of the random draws (default 0)")
    p.add_argument("--max-trials", type=int, default=default, metavar="K",
                   help="run at most K trials (random: draw K)")
    p.add_argument("--out", default=default, metavar="DIR", help="output folder (default runs/sweeps/<name>)")
    p.add_argument("--dry-run", action="store_true", default=default if default is not None else False,
                   help="print the trials and exit")
    p.add_argument("-q", "--quiet", action="store_true", default=default if default is not None else False,
                   help="no progress bars or tables on the terminal")


def _intermixed(ns: argparse.Namespace, flags: Any) -> argparse.Namespace:
    """Flags may follow the overrides (``bench s.yaml a=1 --devices 2``): parse the remainder again."""
    rest = list(ns.overrides or [])
    if not rest:
        ns.overrides = []
        return ns
    parser = argparse.ArgumentParser(prog="warpinv", add_help=False)
    flags(parser, default=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*")
    more = parser.parse_intermixed_args(rest)
    for key, value in vars(more).items():
        setattr(ns, key, value)
    return ns


def add_sweep_parser(subparsers: Any) -> None:
    """Register ``sweep`` on an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "sweep", help="run a wandb sweep file locally (grid/random) and write one leaderboard across it",
        description="Expand a wandb sweep file (experiments/sweeps/*.yaml) locally -- grid, or seeded random draws -- "
                    "run each trial through `warpinv bench`, and write one leaderboard across the trials. With a "
                    "W&B server, the same file runs unchanged with `wandb sweep FILE` + `wandb agent ID`.")
    p.add_argument("sweep", metavar="SWEEP.yaml")
    p.add_argument("overrides", nargs=argparse.REMAINDER, metavar="KEY=VALUE",
                   help="overrides applied to every trial; " + _OVERRIDES_HELP)
    _sweep_flags(p)
    p.set_defaults(func=_cmd_sweep)


def show_progress(quiet: bool) -> None:
    """Send the harness's progress lines (logger ``warpinv.bench``) to stderr, once."""
    import logging

    log = logging.getLogger("warpinv.bench")
    if not quiet and not any(getattr(h, "_warpinv_cli", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._warpinv_cli = True  # type: ignore[attr-defined]
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def _errors() -> tuple[type[BaseException], ...]:
    from warpinv.backbone.loading import GeneratorLoadError
    from warpinv.bench.preflight import PreflightError
    from warpinv.bench.rows import SplitMismatchError
    from warpinv.bench.runner import OutputLockedError
    from warpinv.config import ConfigError
    from warpinv.data import DatasetError
    from warpinv.weights import ChecksumError, MissingWeightsError
    from warpinv.weights.network_pickle import UnsafePickleError

    return (ConfigError, PreflightError, MissingWeightsError, ChecksumError, SplitMismatchError, DatasetError,
            OutputLockedError, UnsafePickleError, GeneratorLoadError)


def _dead_rank(command: str, err: Exception) -> int:
    """Exit 4 with one line when a worker process died; any other error propagates."""
    from torch.multiprocessing import ProcessExitedException

    if not isinstance(err, ProcessExitedException):
        raise err
    code = getattr(err, "exit_code", None)
    why = " (killed: SIGKILL, often the out-of-memory killer)" if code in (137, -9) else ""
    print(f"warpinv {command}: a worker process died with exit code {code}{why}; the images other processes "
          "finished are saved: rerun the same command to resume", file=sys.stderr)
    return 4


def _write_error(command: str, err: OSError) -> int:
    """Exit 3 with one line for an output that cannot be written; any other ``OSError`` propagates."""
    import errno

    hints = {errno.ENOSPC: "the disk is full: free space (or choose another `output`) and rerun to resume",
             errno.EDQUOT: "the disk quota is used up: free space (or choose another `output`) and rerun to resume",
             errno.EACCES: "the output folder is not writable: choose another `output`",
             errno.EPERM: "the output folder is not writable: choose another `output`",
             errno.EROFS: "the output folder is on a read-only file system: choose another `output`"}
    if err.errno not in hints:
        raise err
    hint = hints[err.errno]
    print(f"warpinv {command}: cannot write {err.filename or 'the output'}: {err.strerror or err}; {hint}",
          file=sys.stderr)
    return 3


def _cmd_bench(ns: argparse.Namespace) -> int:
    from warpinv.bench.preflight import preflight
    from warpinv.bench.runner import run_bench
    from warpinv.bench.suite import load_suite, resolve_methods, resolved_dict

    try:
        ns = _intermixed(ns, _bench_flags)
        if ns.keys:
            _print_keys(ns.suite, ns.overrides)
            return 0
        if ns.dry_run:
            import yaml

            suite = load_suite(ns.suite, ns.overrides)
            methods = resolve_methods(suite)
            report, metric_set = preflight(suite, methods)
            print(yaml.safe_dump(resolved_dict(suite, methods), sort_keys=False))
            if report.will_synthesize:
                print(f"# the synthetic dataset will be built at {suite.dataset.root}")
            for line in report.notes():
                print(line)
            for name, reason in (metric_set.unavailable if metric_set else {}).items():
                print(f"# metric {name} unavailable: {reason}")
            print("# preflight ok")
            return 0
        show_progress(ns.quiet)
        result = run_bench(ns.suite, ns.overrides, devices=ns.devices, quiet=ns.quiet)
        if not ns.quiet:
            from warpinv.bench.leaderboard import to_markdown

            print(to_markdown(result.board), flush=True)
    except _errors() as err:
        print(f"warpinv bench: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        return _write_error("bench", err)
    except Exception as err:  # noqa: BLE001 - only a dead rank is handled; anything else re-raises
        return _dead_rank("bench", err)
    for line in result.failure_lines():
        print(f"warpinv bench: {line}", file=sys.stderr)
    if result.methods_without_success:
        print(f"warpinv bench: no successful image for {', '.join(result.methods_without_success)}; "
              f"the leaderboard was written ({result.paths['md']})", file=sys.stderr)
    return result.exit_code


def _cmd_sweep(ns: argparse.Namespace) -> int:
    from warpinv.bench.sweep import expand, load_sweep, run_sweep

    try:
        ns = _intermixed(ns, _sweep_flags)
        if ns.dry_run:
            spec = load_sweep(ns.sweep)
            trials = expand(spec, seed=ns.seed, max_trials=ns.max_trials)
            print(f"sweep {spec.name}: {spec.method}, {len(trials)} trial(s), suite {spec.suite}")
            for t in trials:
                print(f"  {t.name}: {' '.join(t.overrides())}")
            return 0
        show_progress(ns.quiet)
        run_sweep(ns.sweep, out_dir=ns.out, devices=ns.devices, seed=ns.seed, max_trials=ns.max_trials,
                  overrides=ns.overrides, quiet=ns.quiet)
    except _errors() as err:
        print(f"warpinv sweep: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        return _write_error("sweep", err)
    except Exception as err:  # noqa: BLE001 - only a dead rank is handled; anything else re-raises
        return _dead_rank("sweep", err)
    return 0


def _print_keys(suite_path: str, overrides: list[str]) -> None:
    from warpinv.bench.suite import SuiteConfig, load_suite
    from warpinv.config import describe
    from warpinv.methods import METHODS

    print("suite keys:")
    for key, default, help_text in describe(SuiteConfig):
        print(f"  {key} = {default}\n      {help_text}")
    suite = load_suite(suite_path, overrides)
    for label, entry in suite.methods.items():
        cls = METHODS.get(entry.method)
        if cls is None:
            continue
        print(f"\nmethods.{label}.<key>  ({entry.method}):")
        for key, default, help_text in describe(cls.Config):
            print(f"  {key} = {default}\n      {help_text}")


def run_bench_cli(argv: Sequence[str]) -> int:
    """Run ``bench``/``sweep`` without the main ``warpinv`` parser (tests, scripts)."""
    parser = argparse.ArgumentParser(prog="warpinv")
    sub = parser.add_subparsers(dest="command", required=True)
    add_bench_parser(sub)
    add_sweep_parser(sub)
    ns = parser.parse_args(list(argv))
    return int(ns.func(ns))
