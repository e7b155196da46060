"""Hyperparameter sweeps: wandb sweep YAML files, run locally when there is no wandb server.

The files in ``experiments/sweeps/`` are plain wandb sweep configs, so ``wandb sweep FILE`` +
``wandb agent ID`` run them on a W&B server unchanged. Their ``command`` calls the benchmark::

    command: [${env}, ${interpreter}, -m, warpinv, bench, experiments/bench/pti_sweep.yaml, ${args_no_hyphens}]

and their parameters are flat dotted override keys (``method.tuning.lr``), which ``warpinv bench``
accepts as ``key=value``.

``warpinv sweep FILE`` is the local runner (wandb's own local controller still needs the server, and
the ``sweeps`` package pins ``numpy<2``): it expands ``grid`` (cartesian product of ``values``) and
``random`` (seeded draws: ``values`` with optional ``probabilities``, ``min``/``max`` (integers ->
``int_uniform``, else ``uniform``), ``distribution: int_uniform | uniform | log_uniform_values |
log_uniform | q_uniform | normal``), refuses ``bayes``, runs each trial through the same bench code
into ``<out>/trial-NNN/`` and writes one leaderboard across the sweep (``<out>/leaderboard.*``).
Reruns skip finished trials (each trial's bench run is resumable).
"""
from __future__ import annotations

import itertools
import json
import logging
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from warpinv.config import ConfigError, load_yaml

ARGS_MACROS = ("${args_no_hyphens}", "${args}")
_SKIP_TOKENS = ("${env}", "${interpreter}", "${program}")

logger = logging.getLogger("warpinv.bench")


class SweepError(ConfigError):
    """A sweep file the local runner cannot run (bayes, malformed parameters, unusable command)."""


@dataclass
class Trial:
    """One set of parameter values."""

    index: int
    params: dict[str, Any]

    @property
    def name(self) -> str:
        return f"trial-{self.index:03d}"

    def overrides(self) -> list[str]:
        """``key=value`` strings, as wandb's ``${args_no_hyphens}`` writes them."""
        return [f"{k}={format_value(v)}" for k, v in self.params.items()]

    def label(self) -> str:
        return ", ".join(f"{k.rsplit('.', 1)[-1]}={format_value(v)}" for k, v in self.params.items())


def format_value(v: Any) -> str:
    if isinstance(v, float):
        return repr(v) if v == 0 or 1e-3 <= abs(v) < 1e6 else f"{v:.6g}"
    if isinstance(v, (list, dict)):
        return yaml.safe_dump(v, default_flow_style=True).strip()
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


@dataclass
class SweepSpec:
    """A parsed sweep file."""

    path: Path
    name: str
    method: str
    parameters: dict[str, dict[str, Any]]
    suite: str
    extra_args: list[str] = field(default_factory=list)
    metric: dict[str, Any] = field(default_factory=dict)
    run_cap: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and check a wandb sweep file for the local runner."""
    path = Path(path)
    raw = load_yaml(path)
    method = raw.get("method")
    if method == "bayes":
        raise SweepError(f"{path}: method 'bayes' needs the W&B sweep server (it models past results); the local "
                         "runner expands only 'grid' and 'random'. Run it on a server with `wandb sweep "
                         f"{path}` then `wandb agent <sweep id>`, or change the method to grid/random.")
    if method not in ("grid", "random"):
        raise SweepError(f"{path}: method must be grid or random for the local runner, got {method!r}")
    params = flatten_parameters(raw.get("parameters") or {})
    if not params:
        raise SweepError(f"{path}: the sweep has no parameters")
    suite, extra = parse_command(raw.get("command"), path)
    cap = raw.get("run_cap")
    if cap is not None and (not isinstance(cap, int) or cap < 1):
        raise SweepError(f"{path}: run_cap must be a positive integer, got {cap!r}")
    metric = raw.get("metric") or {}
    if metric and metric.get("goal", "minimize") not in ("minimize", "maximize"):
        raise SweepError(f"{path}: metric.goal must be minimize or maximize, got {metric.get('goal')!r}")
    return SweepSpec(path, str(raw.get("name") or path.stem), method, params, suite, extra, dict(metric), cap, raw)


def flatten_parameters(params: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """wandb's nested ``parameters:`` blocks become dotted keys."""
    out: dict[str, dict[str, Any]] = {}
    for key, spec in params.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if not isinstance(spec, dict):
            raise SweepError(f"parameter {full!r}: expected a mapping (value/values/min/max/distribution), "
                             f"got {spec!r}")
        if "parameters" in spec:
            out.update(flatten_parameters(spec["parameters"], full))
        else:
            out[full] = spec
    return out


def parse_command(command: Any, path: Path) -> tuple[str, list[str]]:
    """The suite file and extra arguments of a ``... -m warpinv bench SUITE ${args_no_hyphens}`` command."""
    if not isinstance(command, list) or "bench" not in command:
        raise SweepError(f"{path}: command must be a list calling `warpinv bench <suite>`, e.g. "
                         "[${env}, ${interpreter}, -m, warpinv, bench, experiments/bench/x.yaml, ${args_no_hyphens}]")
    tokens = [str(t) for t in command]
    i = tokens.index("bench")
    rest = [t for t in tokens[i + 1:] if t not in _SKIP_TOKENS]
    if not any(t in ARGS_MACROS for t in rest):
        raise SweepError(f"{path}: command must pass the parameters with ${{args_no_hyphens}} (key=value overrides)")
    bad = [t for t in rest if t.startswith("${") and t not in ARGS_MACROS]
    if bad:
        raise SweepError(f"{path}: unsupported macro(s) {bad}; use ${{args_no_hyphens}}")
    args = [t for t in rest if t not in ARGS_MACROS]
    if not args or args[0].startswith("-"):
        raise SweepError(f"{path}: command names no suite file after `bench`")
    return args[0], args[1:]


# ------------------------------------------------------------------------------------- expansion


def _discrete(name: str, spec: dict[str, Any]) -> list[Any]:
    if "value" in spec:
        return [spec["value"]]
    if "values" in spec:
        values = spec["values"]
        if not isinstance(values, list) or not values:
            raise SweepError(f"parameter {name!r}: values must be a non-empty list")
        return list(values)
    raise SweepError(f"parameter {name!r}: a grid sweep needs value or values (got {sorted(spec)}); use method: random "
                     "for distributions")


def expand_grid(params: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    names = list(params)
    lists = [_discrete(n, params[n]) for n in names]
    return [dict(zip(names, combo)) for combo in itertools.product(*lists)]


def sample(name: str, spec: dict[str, Any], rng: random.Random) -> Any:
    """One seeded draw of a wandb parameter spec."""
    if "value" in spec:
        return spec["value"]
    dist = spec.get("distribution")
    if "values" in spec and dist in (None, "categorical"):
        values = _discrete(name, spec)
        probs = spec.get("probabilities")
        if probs is not None:
            if (len(probs) != len(values) or any(p < 0 for p in probs)
                    or not math.isclose(sum(probs), 1.0, abs_tol=1e-6)):
                raise SweepError(f"parameter {name!r}: probabilities must be {len(values)} non-negative numbers "
                                 "summing to 1")
            return rng.choices(values, weights=probs, k=1)[0]
        return rng.choice(values)
    if dist in ("normal", "log_normal"):
        mu, sigma = float(spec.get("mu", 0.0)), float(spec.get("sigma", 1.0))
        x = rng.gauss(mu, sigma)
        return math.exp(x) if dist == "log_normal" else x
    if "min" not in spec or "max" not in spec:
        raise SweepError(f"parameter {name!r}: needs value, values, or min and max (got {sorted(spec)})")
    lo, hi = spec["min"], spec["max"]
    if not lo <= hi:
        raise SweepError(f"parameter {name!r}: min {lo} > max {hi}")
    if dist is None:
        dist = "int_uniform" if isinstance(lo, int) and isinstance(hi, int) and not isinstance(lo, bool) else "uniform"
    if dist == "int_uniform":
        return rng.randint(int(lo), int(hi))
    if dist == "uniform":
        return rng.uniform(float(lo), float(hi))
    if dist == "q_uniform":
        q = float(spec.get("q", 1.0))
        return round(rng.uniform(float(lo), float(hi)) / q) * q
    if dist == "log_uniform_values":
        if lo <= 0:
            raise SweepError(f"parameter {name!r}: log_uniform_values needs min > 0")
        return math.exp(rng.uniform(math.log(lo), math.log(hi)))
    if dist == "log_uniform":  # wandb: min/max are natural-log exponents
        return math.exp(rng.uniform(float(lo), float(hi)))
    raise SweepError(f"parameter {name!r}: distribution {dist!r} is not supported by the local runner "
                     "(int_uniform, uniform, q_uniform, log_uniform_values, log_uniform, normal, log_normal, "
                     "categorical)")


def expand(spec: SweepSpec, *, seed: int = 0, max_trials: int | None = None) -> list[Trial]:
    """The trials of a sweep: the grid (capped by ``run_cap``/``max_trials``), or seeded random draws."""
    cap = max_trials if max_trials is not None else spec.run_cap
    if spec.method == "grid":
        combos = expand_grid(spec.parameters)
    else:
        if cap is None:
            raise SweepError(f"{spec.path}: a random sweep needs run_cap (or --max-trials) to know how many "
                             "trials to draw")
        rng = random.Random(seed)
        combos = [{n: sample(n, s, rng) for n, s in spec.parameters.items()} for _ in range(cap)]
    if cap is not None:
        combos = combos[:cap]
    return [Trial(i, c) for i, c in enumerate(combos)]


# ---------------------------------------------------------------------------------------- running


@dataclass
class SweepResult:
    out_dir: Path
    trials: list[dict[str, Any]]
    leaderboard: dict[str, Path]
    best: dict[str, Any] | None = None


def run_sweep(path: str | Path, *, out_dir: str | Path | None = None, devices: int | None = None, seed: int = 0,
              max_trials: int | None = None, overrides: list[str] | None = None, quiet: bool = False) -> SweepResult:
    """Run every trial of a sweep locally through :func:`warpinv.bench.runner.run_bench`."""
    from warpinv.bench import leaderboard as lb
    from warpinv.bench.runner import run_bench

    spec = load_sweep(path)
    trials = expand(spec, seed=seed, max_trials=max_trials)
    out = Path(out_dir) if out_dir else Path("runs") / "sweeps" / spec.name
    out.mkdir(parents=True, exist_ok=True)
    extra = list(spec.extra_args)
    devices_arg = devices
    if "--devices" in extra:  # a command may pin the process count
        i = extra.index("--devices")
        devices_arg = devices_arg or int(extra[i + 1])
        del extra[i:i + 2]
    records, boards = [], []
    for trial in trials:
        trial_out = out / trial.name
        if not quiet:
            logger.info(f"[sweep {spec.name}] {trial.name}: {trial.label()}")
        result = run_bench(spec.suite, [*extra, *(overrides or []), *trial.overrides(), f"output={trial_out}",
                                        f"name={spec.name}-{trial.name}"],
                           devices=devices_arg, quiet=quiet, wandb_group=spec.name, wandb_config=trial.params)
        board = result.board
        for r in board.rows:
            r.label = f"{trial.name} {r.label} ({trial.label()})"
            r.extra = {**r.extra, "trial": trial.name, "params": trial.params}
        boards.append(board)
        records.append({"trial": trial.name, "params": trial.params, "output": str(trial_out),
                        "summary": result.summary})
    merged = _merge_boards(boards, f"Sweep {spec.name}: {spec.method} over {', '.join(spec.parameters)}",
                           str(spec.suite))
    best = None
    if spec.metric.get("name"):
        key, goal = spec.metric["name"], spec.metric.get("goal", "minimize")
        scored = [r for r in records
                  if isinstance(r["summary"].get(key), (int, float)) and math.isfinite(r["summary"][key])]
        if scored:
            best = (max if goal == "maximize" else min)(scored, key=lambda r: r["summary"][key])
            merged.caption.append(f"Sweep metric {key} ({goal}): best {best['trial']} "
                                  f"({', '.join(f'{k}={format_value(v)}' for k, v in best['params'].items())}) = "
                                  f"{best['summary'][key]:.4g}.")
        else:
            merged.caption.append(f"Sweep metric {key}: no trial reported it (summary keys look like "
                                  "'<label>/<group>/<metric>', e.g. pti/input/psnr).")
    paths = lb.write_all(merged, out, grids=None, tex_label=f"tab:sweep-{spec.name}")
    (out / "sweep.json").write_text(json.dumps({"sweep": str(spec.path), "method": spec.method, "seed": seed,
                                                "parameters": spec.parameters, "trials": records,
                                                "best": best}, indent=1, default=str) + "\n")
    if not quiet:
        logger.info(f"[sweep {spec.name}] {len(trials)} trials -> {paths['md']}")
    return SweepResult(out, records, paths, best)


def _merge_boards(boards: list[Any], title: str, suite: str) -> Any:
    from warpinv.bench.leaderboard import Leaderboard

    columns: dict[str, Any] = {}
    rows, unavailable, caption = [], {}, []
    for b in boards:
        for c in b.columns:
            columns.setdefault(c.id, c)
        rows += b.rows
        unavailable.update(b.unavailable)
        for line in b.caption:
            if line not in caption and not line.startswith("Suite "):
                caption.append(line)
    if boards:
        caption.insert(0, f"Each trial ran {suite} with the overrides shown.")
    return Leaderboard(title, list(columns.values()), rows, caption, unavailable,
                       boards[0].provenance if boards else {}, boards[0].csv_context if boards else {})
