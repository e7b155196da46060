"""E3DGE encoder throughput beside the per-image optimisation methods, measured side by side in one run.

Everything runs in one process on one machine (``--device``: ``cuda`` when available, else ``cpu``), with the
methods of the default suite (``experiments/bench/default.yaml``) resolved as ``warpinv bench`` resolves them
(:func:`~warpinv.bench.suite.load_suite` + :func:`~warpinv.bench.suite.resolve_methods`, preset and overrides)
and built on the suite's generator (``tiny``) with :func:`~warpinv.methods.build_method`:

- **encoders** (``e3dge``: global + local branch; ``e3dge_global``: local branch off): calls of
  ``method.invert_items_batched(items)`` (one ``invert_batch`` forward pass under ``no_grad``) at each batch size
  of ``--batches`` (default 1 and 8): one warm-up call, then the median of ``--reps`` calls; reported as seconds
  per image (call / batch) and images per second. When the preset's checkpoint
  (``checkpoints/e3dge_tiny.safetensors``, ``make train-tiny``) is missing, the encoder runs untrained
  (``allow_untrained``): the cost of a forward pass does not depend on the weight values.
- **optimisation methods** (``wplus_opt``, ``pti``, the suite's reduced budgets): one ``method.invert_item(item)``
  each on the same first image, the call the harness times per image. A 1-step ``wplus_opt`` inversion runs first
  (not reported as a method figure) so that imports and first-call costs (allocator, kernels) fall outside every
  timed call; a 16-step optimisation then needs no warm-up of its own.
- **speed-ups**: optimisation seconds per image / encoder seconds per image, for each encoder and batch size.

Only the inversion is timed, which is what the leaderboard's ``s/img`` column reports for every method; the
evaluation renders (input view, novel views) come after it and are not included. The leaderboard runs the suite in
two one-thread processes (``cpu_processes: 2``); here one process uses ``--threads`` (default: torch's default).

Inputs: the images and cameras of the suite's synthetic set (``runs/data/synthetic-tiny``) when it exists, else
proxy samples rendered by the generator (:func:`~warpinv.training.proxy.draw_samples` + ``render_proxy``,
``ProxyConfig()``); a batch larger than the set cycles through its images (distinct ids; the cost does not depend
on the content).

``--configs ffhq512`` (not default) adds the full-size encoder (``E3DGEConfig()``: IR-SE50 global encoder at 256
and the 256 U-Net) on the ``ffhq512-128`` architecture with random weights, untrained, batch 1, in its own
subprocess (its own peak memory): one warm-up call, then the median of ``--full-reps`` calls (default ``--reps``).

Output: ``benchmarks/results/perf_e3dge.json`` (every time a ``figure``: measured, with its formula) and a
Markdown table next to it.

    python benchmarks/perf/e3dge.py                                # tiny suite entries, about a minute on 2 CPU cores
    python benchmarks/perf/e3dge.py --configs ffhq512 --full-reps 2   # plus the full-size encoder, 2 timed calls
    python benchmarks/perf/e3dge.py --smoke --out smoke.json       # seconds: batch 1, 1 rep, 2 optimisation steps
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import logging
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[2]

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a file: its sibling module
from perf_common import (  # noqa: E402
    build_generator,
    figure,
    load_average,
    machine_environment,
    median_figure,
    peak_memory_mb,
    seconds_text,
    timed_once,
)

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "perf_e3dge.json"
DEFAULT_SUITE = ROOT / "experiments" / "bench" / "default.yaml"
METHOD = "e3dge"
#: Suite labels timed as encoders (batched forward passes) and as per-image optimisations.
ENCODER_LABELS = ("e3dge", "e3dge_global")
OPTIMISER_LABELS = ("wplus_opt", "pti")
#: The optimisation method whose 1-step inversion warms the process up.
WARMUP_LABEL = "wplus_opt"
#: Optional full-size configurations: name -> generator architecture (random weights).
CONFIGS = {"ffhq512": "ffhq512-128"}
SMOKE_OPT_STEPS = 2
logger = logging.getLogger("perf_e3dge")


# ----------------------------------------------------------------------------------------------
# Suite entries and configs


def suite_methods(path: Path) -> tuple[Any, dict[str, Any]]:
    """The suite of ``path`` and its resolved methods by label (:class:`~warpinv.bench.suite.ResolvedMethod`)."""
    from warpinv.bench.suite import load_suite, resolve_methods

    suite = load_suite(path)
    return suite, {m.label: m for m in resolve_methods(suite)}


def shown_path(path: Path) -> str:
    """``path`` relative to the repository when it lies inside it (no machine-specific prefix in the results)."""
    resolved = path.resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(path)


def encoder_config(config: Any) -> tuple[Any, str]:
    """The config to build an encoder with and what its weights are: the checkpoint (relative paths are read from
    the repository root, as ``make bench`` runs there) or, when the file is missing, untrained."""
    if config.checkpoint is None:
        return dataclasses.replace(config, allow_untrained=True), "untrained (no checkpoint configured)"
    path = Path(config.checkpoint)
    found = path if path.is_absolute() else ROOT / path
    if not found.is_file():
        note = f"untrained ({config.checkpoint} missing; speed does not depend on weight values)"
        return dataclasses.replace(config, checkpoint=None, allow_untrained=True), note
    return dataclasses.replace(config, checkpoint=str(found)), config.checkpoint


def with_steps(config: Any, steps: int) -> Any:
    """``config`` with every ``steps`` field set to ``steps``, nested configs included.

    Example:
        >>> @dataclasses.dataclass
        ... class Stage:
        ...     steps: int = 5
        >>> @dataclasses.dataclass
        ... class Two:
        ...     pivot: Stage = dataclasses.field(default_factory=Stage)
        ...     steps: int = 9
        >>> with_steps(Two(), 2)
        Two(pivot=Stage(steps=2), steps=2)
    """
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name == "steps":
            changes[f.name] = steps
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            changes[f.name] = with_steps(value, steps)
    return dataclasses.replace(config, **changes)


def build(name: str, config: Any, G: Any, device: torch.device) -> Any:
    """A registered method on ``G``, on ``device``, in eval mode (as ``trainer.predict`` runs it)."""
    from warpinv.methods import build_method

    return build_method(name, config, G).to(device).eval()


# ----------------------------------------------------------------------------------------------
# Inputs


def load_items(suite: Any, G: Any, count: int, device: torch.device) -> tuple[list[Any], str]:
    """Up to ``count`` :class:`~warpinv.methods.base.InversionItem` (``image (1, 3, H, W)``, ``camera (1, 25)``)
    of the suite's dataset when it exists, else ``count`` rendered proxy samples; and where they come from."""
    root = Path(suite.dataset.root)
    root = root if root.is_absolute() else ROOT / root
    if (root / "dataset.json").is_file():
        items = dataset_items(root, suite.dataset.split, count)
        source = f"{len(items)} image(s) of {shown_path(root)}"
    else:
        items = proxy_items(G, count)
        source = f"{count} proxy sample(s) (draw_samples + render_proxy, ProxyConfig(); {shown_path(root)} missing)"
    return [to_device(item, device) for item in items], source


def dataset_items(root: Path, split: Any, count: int) -> list[Any]:
    """The first ``count`` images of a dataset folder, as the harness splits a batch."""
    from warpinv.data import InversionDataModule
    from warpinv.methods.base import split_batch

    dm = InversionDataModule(root, split=split, batch_size=count)
    return split_batch(next(iter(dm.predict_dataloader())))


def proxy_items(G: Any, count: int) -> list[Any]:
    """``count`` proxy samples rendered by ``G`` at their input cameras (CPU)."""
    from warpinv.methods.base import InversionItem
    from warpinv.training.proxy import ProxyConfig, draw_samples, render_proxy

    config = ProxyConfig()
    draws = draw_samples(config, G.z_dim, list(range(count)))
    device = next(G.parameters()).device
    rendered = render_proxy(G, draws["z"].to(device), draws["cameras"].to(device),
                            draws["novel_cameras"].to(device), config.truncation_psi)
    return [InversionItem(f"proxy{i:03d}", rendered["images"][i: i + 1].cpu(), draws["cameras"][i: i + 1])
            for i in range(count)]


def to_device(item: Any, device: torch.device) -> Any:
    """``item`` with its image and camera on ``device`` (the extras stay: no method timed here reads them)."""
    return dataclasses.replace(item, image=item.image.to(device), camera=item.camera.to(device),
                               mask=None if item.mask is None else item.mask.to(device))


def batch_of(items: list[Any], size: int) -> list[Any]:
    """``size`` items cycling through ``items``; repeats get distinct ids (``<id>~<lap>``).

    Example:
        >>> from warpinv.methods.base import InversionItem
        >>> items = [InversionItem(name, torch.zeros(1, 3, 4, 4), torch.zeros(1, 25)) for name in "ab"]
        >>> [i.image_id for i in batch_of(items, 5)]
        ['a', 'b', 'a~1', 'b~1', 'a~2']
    """
    out = []
    for k, item in enumerate(itertools.islice(itertools.cycle(items), size)):
        lap = k // len(items)
        out.append(dataclasses.replace(item, image_id=f"{item.image_id}~{lap}") if lap else item)
    return out


# ----------------------------------------------------------------------------------------------
# Timing


def checked(outcomes: list[Any]) -> list[Any]:
    """The outcomes of an inversion call; a failed one stops the benchmark (a failure's time means nothing)."""
    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise RuntimeError(f"inversion of {failed[0].item.image_id} failed: {failed[0].error}")
    return outcomes


def time_encoder(method: Any, items: list[Any], batch: int, reps: int, device: torch.device) -> dict[str, Any]:
    """Seconds per image of ``invert_items_batched`` on ``batch`` images: 1 warm-up call, median of ``reps``."""
    batch_items = batch_of(items, batch)

    def call() -> list[Any]:
        return checked(method.invert_items_batched(batch_items))

    warmup, _ = timed_once(call, device)
    calls = [timed_once(call, device)[0] for _ in range(reps)]
    fig = median_figure(warmup / batch, [c / batch for c in calls],
                        f"invert_items_batched on {batch} image(s) (one invert_batch forward pass, no_grad), "
                        f"seconds / {batch}", unit="calls", batch=batch, calls_s=calls)
    fig["images_per_s"] = 1.0 / fig["seconds"]
    return fig


def time_optimiser(method: Any, item: Any, device: torch.device) -> dict[str, Any]:
    """Seconds of one ``invert_item`` (the optimisation of one image, its ``w_avg`` statistics included)."""
    seconds, _ = timed_once(lambda: checked([method.invert_item(item)]), device)
    return figure(seconds, "measured", "one invert_item call (per-image optimisation), after the process warm-up",
                  images_per_s=1.0 / seconds)


def encoder_rows(methods: dict[str, Any], G: Any, items: list[Any], args: argparse.Namespace,
                 device: torch.device) -> tuple[list[dict[str, Any]], str]:
    """One row per encoder label and batch size, and what the weights of the first label's encoder were."""
    rows, weights = [], {}
    for label in ENCODER_LABELS:
        resolved = methods[label]
        config, weights[label] = encoder_config(resolved.config)
        method = build(resolved.name, config, G, device)
        params = sum(p.numel() for n, p in method.named_parameters() if not n.startswith("G."))
        for batch in args.batches:
            fig = time_encoder(method, items, batch, args.reps, device)
            rows.append({"label": label, "method": resolved.name, "batch": batch, "use_local": config.use_local,
                         "weights": weights[label], "encoder_parameters": params, "seconds_per_image": fig})
            logger.info("%s batch %d: %.4f s/image, %.1f images/s", label, batch, fig["seconds"],
                        fig["images_per_s"])
        del method
    return rows, weights[ENCODER_LABELS[0]]


def optimiser_rows(methods: dict[str, Any], G: Any, item: Any, steps: int | None,
                   device: torch.device) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One row per optimisation label on ``item`` (the suite's budget, or ``steps`` for every stage), after the
    1-step warm-up inversion of :data:`WARMUP_LABEL` (returned as its own figure)."""
    warm = methods[WARMUP_LABEL]
    warm_method = build(warm.name, with_steps(warm.config, 1), G, device)
    warmup = time_optimiser(warm_method, item, device)
    warmup["formula"] = f"1-step {WARMUP_LABEL} invert_item: the process warm-up (imports, first calls), not a result"
    del warm_method
    rows = []
    for label in OPTIMISER_LABELS:
        resolved = methods[label]
        config = resolved.config if steps is None else with_steps(resolved.config, steps)
        fig = time_optimiser(build(resolved.name, config, G, device), item, device)
        budget = resolved.budget_text() if steps is None else f"every stage at {steps} steps (--opt-steps)"
        rows.append({"label": label, "method": resolved.name, "batch": 1, "budget": budget,
                     "image_id": item.image_id, "seconds_per_image": fig})
        logger.info("%s: %.3f s/image", label, fig["seconds"])
    return rows, warmup


def speedups(encoders: list[dict[str, Any]], optimisers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``{encoder label, batch, vs: {optimiser label: factor}}``: optimiser s/image over encoder s/image.

    Example:
        >>> enc = [{"label": "e", "batch": 8, "seconds_per_image": {"seconds": 0.5}}]
        >>> opt = [{"label": "p", "seconds_per_image": {"seconds": 10.0}}]
        >>> speedups(enc, opt)[0]["vs"]
        {'p': 20.0}
    """
    return [{"label": e["label"], "batch": e["batch"],
             "vs": {o["label"]: o["seconds_per_image"]["seconds"] / e["seconds_per_image"]["seconds"]
                    for o in optimisers},
             "formula": "optimiser seconds per image (one invert_item) / encoder seconds per image at this batch"}
            for e in encoders]


# ----------------------------------------------------------------------------------------------
# The full-size encoder (own subprocess)


def measure_full(name: str, reps: int, device: torch.device) -> dict[str, Any]:
    """The default :class:`E3DGEConfig` (full size), untrained, on ``CONFIGS[name]`` with random weights: batch 1
    on a seeded random image at the frontal camera, 1 warm-up call, median of ``reps``."""
    from warpinv.cameras import yaw_pitch_camera
    from warpinv.methods.base import InversionItem
    from warpinv.methods.e3dge.config import E3DGEConfig

    G = build_generator(CONFIGS[name], device)
    config = E3DGEConfig(allow_untrained=True)
    method = build(METHOD, config, G, device)
    res = G.img_resolution
    image = torch.rand(1, 3, res, res, generator=torch.Generator().manual_seed(0)) * 2 - 1
    item = InversionItem("perf", image.to(device), yaw_pitch_camera(0.0, 0.0).to(device))
    fig = time_encoder(method, [item], 1, reps, device)
    params = {"global": sum(p.numel() for p in method.encoder.parameters()),
              "local": sum(p.numel() for p in method.local_encoder.parameters())}
    return {"config": name, "generator": CONFIGS[name], "source": getattr(G, "source", name), "resolution": res,
            "neural_rendering_resolution": G.neural_rendering_resolution, "batch": 1,
            "encoder": f"E3DGEConfig() defaults: IR-SE50 global encoder at {config.encoder.input_size}, U-Net at "
                       f"{config.local.input_size} ({config.local.depth} levels, base {config.local.base_channels})",
            "encoder_parameters": params, "weights": "untrained (random encoder and generator weights; speed does "
                                                     "not depend on weight values)",
            "seconds_per_image": fig, "peak_mb": peak_memory_mb(device)}


def run_full(args: argparse.Namespace, name: str) -> dict[str, Any]:
    """:func:`measure_full` in a fresh subprocess (its own peak memory) unless ``--in-process``."""
    if args.in_process:
        return measure_full(name, args.full_reps, torch.device(args.device))
    cmd = [sys.executable, __file__, "--device", args.device, "--reps", str(args.full_reps), "--child", name]
    cmd += ["--threads", str(args.threads)] if args.threads else []
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        return {"config": name, "error": proc.stderr.strip().splitlines()[-1:]}
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["subprocess_wall_s"] = time.perf_counter() - start
    return row


# ----------------------------------------------------------------------------------------------
# Driver


def measure_suite(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Encoders and optimisation methods of the suite, side by side in this process."""
    from warpinv.backbone import load_generator

    suite, methods = suite_methods(args.suite)
    missing = [label for label in (*ENCODER_LABELS, *OPTIMISER_LABELS) if label not in methods]
    if missing:
        raise SystemExit(f"{args.suite} has no entry {missing}: this benchmark needs {ENCODER_LABELS} and "
                         f"{OPTIMISER_LABELS}")
    G = load_generator(suite.generator).to(device)
    items, source = load_items(suite, G, max(args.batches), device)
    optimisers, warmup = optimiser_rows(methods, G, items[0], args.opt_steps, device)
    encoders, weights = encoder_rows(methods, G, items, args, device)
    return {"suite": shown_path(args.suite), "generator": suite.generator, "inputs": source, "weights": weights,
            "process_warmup": warmup, "encoders": encoders, "optimisers": optimisers,
            "speedups": speedups(encoders, optimisers), "peak_mb": peak_memory_mb(device)}


def environment(device: str) -> dict[str, Any]:
    return machine_environment(
        device, platform=platform.platform(),
        memory="CUDA: torch max_memory_allocated" if device.startswith("cuda") else
               "CPU: process peak RSS (ru_maxrss); the suite's is cumulative over its methods")



def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", type=Path, default=DEFAULT_SUITE, help="suite whose entries to time")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8], help="encoder batch sizes")
    parser.add_argument("--reps", type=int, default=5, help="timed calls after the warm-up call (median)")
    parser.add_argument("--full-reps", type=int, default=None,
                        help="timed calls of the full-size encoders (default: --reps)")
    parser.add_argument("--opt-steps", type=int, default=None,
                        help="set every optimisation stage to this many steps (default: the suite's budgets)")
    parser.add_argument("--configs", nargs="*", default=[], help=f"full-size encoders to add: {list(CONFIGS)}")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--in-process", action="store_true", help="no subprocess for the full-size encoder")
    parser.add_argument("--smoke", action="store_true",
                        help=f"quick check: batch 1, 1 rep, {SMOKE_OPT_STEPS} steps per optimisation stage")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--child", metavar="CONFIG", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.batches, args.reps, args.opt_steps = [1], 1, SMOKE_OPT_STEPS
    args.full_reps = args.reps if args.full_reps is None else args.full_reps
    if min(args.reps, args.full_reps, *args.batches, 1 if args.opt_steps is None else args.opt_steps) < 1:
        parser.error("--reps, --full-reps, --batches and --opt-steps must be >= 1")
    unknown = set(args.configs) - set(CONFIGS)
    if unknown:
        parser.error(f"--configs must be among {list(CONFIGS)}, got {sorted(unknown)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.child:
        print(json.dumps(measure_full(args.child, args.reps, device)))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    load_before, start = load_average(), time.perf_counter()
    result: dict[str, Any] = {"benchmark": METHOD}
    result.update(measure_suite(args, device))
    result["full_size"] = [run_full(args, name) for name in args.configs]
    result["environment"] = {**environment(args.device), "load_average_before": load_before,
                             "load_average_after": load_average(), "wall_s": time.perf_counter() - start}
    result["settings"] = {"batches": args.batches, "reps": args.reps, "full_reps": args.full_reps,
                          "opt_steps": args.opt_steps,
                          "smoke": args.smoke, "configs": args.configs,
                          "timed": "the inversion call only (the leaderboard's s/img), not the evaluation renders"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    markdown = args.out.with_suffix(".md")
    markdown.write_text(render_markdown(result))
    logger.info("wrote %s and %s", args.out, markdown)
    return 0


# ----------------------------------------------------------------------------------------------
# Summary


def table_row(label: str, batch: Any, fig: dict[str, Any], factors: dict[str, float] | None) -> str:
    """One Markdown row: method, batch, s/image, images/s and the speed-ups (``-`` for the optimisers)."""
    cells = [f"{factors[k]:.1f}x" if factors else "-" for k in OPTIMISER_LABELS]
    return f"| {label} | {batch} | {fig['seconds']:.4g} | {fig['images_per_s']:.3g} | " + " | ".join(cells) + " |"


def render_markdown(result: dict[str, Any]) -> str:
    env, settings = result["environment"], result["settings"]
    lines = [
        "# E3DGE encoder throughput beside the optimisation methods",
        "",
        f"{env['processor']}, {env['threads']} threads, device {env['device']}, torch {env['torch']}, "
        f"commit {env['git_commit']}, load average before/after {env['load_average_before']} / "
        f"{env['load_average_after']} (other processes inflate every time). Suite {result['suite']} on generator "
        f"{result['generator']}; inputs: {result['inputs']}. Encoder weights: {result['weights']}.",
        "",
        "| method | batch | s/image | images/s | " + " | ".join(f"speed-up vs {k}" for k in OPTIMISER_LABELS) + " |",
        "|---|---|---|---|" + "---|" * len(OPTIMISER_LABELS),
    ]
    factors = {(s["label"], s["batch"]): s["vs"] for s in result["speedups"]}
    for e in result["encoders"]:
        lines.append(table_row(e["label"], e["batch"], e["seconds_per_image"], factors[(e["label"], e["batch"])]))
    for o in result["optimisers"]:
        lines.append(table_row(o["label"], "1 (per image)", o["seconds_per_image"], None))
    lines += ["", f"Encoders: median of {settings['reps']} `invert_items_batched` calls after 1 warm-up call, "
              "seconds / batch. Optimisation methods: one `invert_item` on the first image, after a 1-step "
              f"{WARMUP_LABEL} warm-up inversion ({result['process_warmup']['seconds']:.2f} s, not a result). "
              "Speed-up: optimisation s/image / encoder s/image. Only the inversion is timed (the leaderboard's "
              "s/img), not the evaluation renders. Budgets:"]
    lines += [f"- **{o['label']}**: {o['budget'] or 'its preset'}." for o in result["optimisers"]]
    lines += full_size_lines(result["full_size"])
    return "\n".join(lines) + "\n"


def full_size_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The full-size encoder's lines (none when it was not measured)."""
    out = []
    for r in rows:
        if "error" in r:
            out += ["", f"Full-size `{r['config']}`: FAILED {r['error']}"]
            continue
        fig = r["seconds_per_image"]
        out += ["", f"## Full-size encoder ({r['generator']}, random weights, untrained)", "",
                f"{r['encoder']}, {r['resolution']} px input, batch 1: **{seconds_text(fig['seconds'])} s/image** "
                f"({fig['images_per_s']:.3g} images/s; {fig['formula']}; warm-up call {fig['warmup_s']:.1f} s), "
                f"peak memory {r['peak_mb']:.0f} MB."]
    return out


if __name__ == "__main__":
    raise SystemExit(main())
