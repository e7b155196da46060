"""What the method performance scripts share (``hfgi3d.py``, ``in_n_out.py``): reported figures, step timing,
peak memory, the generators they time and the machine's load.

The scripts run as files (``python benchmarks/perf/<name>.py``, also in their own subprocesses), so they import this
module by name from their own folder.
"""
from __future__ import annotations

import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[2]


def figure(seconds: float, kind: str, formula: str | None = None, **extra: Any) -> dict[str, Any]:
    """One reported number: ``{"seconds", "kind": measured|extrapolated, "formula"?, ...}``.

    Example:
        >>> figure(2.0, "measured", "probe")
        {'seconds': 2.0, 'kind': 'measured', 'formula': 'probe'}
    """
    row: dict[str, Any] = {"seconds": seconds, "kind": kind}
    if formula is not None:
        row["formula"] = formula
    return {**row, **extra}


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA only), so that wall-clock times cover it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_once(fn: Callable[[], Any], device: torch.device) -> tuple[float, Any]:
    """Seconds of one call of ``fn`` and its result."""
    sync(device)
    start = time.perf_counter()
    result = fn()
    sync(device)
    return time.perf_counter() - start, result


class StepClock:
    """Step callback ``clock(step, terms)`` that stamps the time after every optimiser step; ``steps()`` gives
    ``(warm-up seconds incl. setup, [seconds of each later step])``."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.start = 0.0
        self.stamps: list[float] = []

    def begin(self) -> StepClock:
        """Start timing (setup before the first step counts in the warm-up)."""
        sync(self.device)
        self.start = time.perf_counter()
        self.stamps = []
        return self

    def __call__(self, step: int, terms: dict[str, float]) -> None:
        del step, terms
        sync(self.device)
        self.stamps.append(time.perf_counter())

    def steps(self) -> tuple[float, list[float]]:
        if not self.stamps:
            raise RuntimeError("no step was taken")
        return self.stamps[0] - self.start, [b - a for a, b in zip(self.stamps, self.stamps[1:])]


def median_figure(warmup: float, runs: list[float], what: str, unit: str = "steps", **extra: Any) -> dict[str, Any]:
    """The median of ``runs`` after the warm-up (or the warm-up alone when nothing followed it).

    Example:
        >>> median_figure(5.0, [1.0, 3.0, 2.0], "probe")["seconds"]
        2.0
    """
    if not runs:
        return figure(warmup, "measured", f"{what}: one {unit[:-1]} incl. setup (no warm-up)", runs_s=[warmup],
                      **extra)
    return figure(statistics.median(runs), "measured", f"{what}: median of {len(runs)} {unit} after 1 warm-up",
                  runs_s=runs, warmup_s=warmup, **extra)


def step_figure(clock: StepClock, what: str, **extra: Any) -> dict[str, Any]:
    """:func:`median_figure` of a :class:`StepClock`'s steps."""
    warmup, runs = clock.steps()
    return median_figure(warmup, runs, what, **extra)


def peak_memory_mb(device: torch.device) -> float:
    """Peak CUDA memory of the process on ``device``, or its peak resident set size (MB) on a CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_generator(config: str, device: torch.device) -> Any:
    """The embedded ``tiny`` generator or a preset with random weights (speed does not depend on weight values)."""
    from warpinv.backbone import build_random, build_tiny

    G = build_tiny() if config == "tiny" else build_random(config)
    return G.to(device).eval().requires_grad_(False)


def load_average() -> list[float] | None:
    """The machine's 1, 5 and 15 minute load averages (other processes inflate every time), if known."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def seconds_text(seconds: float) -> str:
    """Seconds with one decimal, plus hours from an hour on.

    Example:
        >>> seconds_text(4572.0), seconds_text(30.0)
        ('4572.0 (1.27 h)', '30.0')
    """
    return f"{seconds:.1f} ({seconds / 3600:.2f} h)" if seconds >= 3600 else f"{seconds:.1f}"


def git_commit(path: Path = ROOT) -> str | None:
    """The short commit of the checkout at ``path`` (``None`` outside git)."""
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=path, capture_output=True, text=True,
                         check=False)
    return out.stdout.strip() or None


def module_at(rev: str, path: str, name: str, folder: Path, imports: dict[str, str] | None = None) -> ModuleType:
    """``path`` as it was at commit ``rev``, imported under ``name`` (A/B benchmarks); ``imports`` maps a module
    name in its source to another (``{"warpinv.geometry.splat": "base_splat"}``) so a base module uses base siblings."""
    source = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout
    for old, new in (imports or {}).items():
        source = source.replace(f"from {old} import", f"from {new} import")
    file = folder / f"{name}.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def alternating(names: list[str], repeats: int) -> list[str]:
    """The order of an A/B benchmark's timed calls: ``repeats`` rounds, every other one reversed.

    Example:
        >>> alternating(["base", "current"], 3)
        ['base', 'current', 'current', 'base', 'base', 'current']
    """
    return [name for r in range(repeats) for name in (names if r % 2 == 0 else names[::-1])]


def ab_provenance(script: str, env: dict[str, Any], base: str) -> str:
    """The provenance sentence of an A/B benchmark's Markdown (script, machine, both commits, load)."""
    return (f"Written by `{script}`. Machine: {env['processor']}, {env['threads']} torch threads; "
            f"torch {env['torch']}; warpinv {env['git_commit']} against base {base}; load average before "
            f"{env['load_average_before']}, after {env['load_average_after']}. One process, alternating calls")


def machine_environment(device: str, **notes: Any) -> dict[str, Any]:
    """Where a benchmark ran: torch, python, CPU, threads, device (and GPU name), our commit, plus ``notes``."""
    from warpinv.bench.provenance import cpu_name

    info: dict[str, Any] = {
        "torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
        "processor": cpu_name(), "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "device": device, "git_commit": git_commit(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return {**info, **notes}


def run_json_child(args: list[str], label: dict[str, Any], error_lines: int = 3) -> dict[str, Any]:
    """Run ``python <args>`` with this checkout importable and parse the JSON of its last stdout line; on failure
    ``{**label, "error": [the last lines of stderr]}`` (one configuration's crash or OOM loses only its row)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        return {**label, "error": proc.stderr.strip().splitlines()[-error_lines:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])
