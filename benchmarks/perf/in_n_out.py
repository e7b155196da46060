"""In-N-Out per-image cost: the per-step costs of its three stages, and the seconds per image they add up to at
the released budget and at the default suite's.

Measured here on a generator (``tiny`` and ``ffhq512-128`` with random weights; speed and memory do not depend on
weight values), each generator and settings in a fresh subprocess (its own peak memory), with the released settings of
:class:`~warpinv.methods.in_n_out.config.InNOutConfig` and the stages of :mod:`warpinv.methods.in_n_out.stages`:

- **random start** (:func:`~warpinv.methods.in_n_out.stages.random_start`): seconds per random latent, timed over
  calls of one ``ind.init_batch`` (render at the image's camera + LPIPS(alex), no gradient);
- **W+ step** (:func:`~warpinv.methods.projector.project` as the method calls it): render + SR + LPIPS(vgg) at full
  resolution + MSE + the layer-delta term, backward through the backbone into the latent;
- **OOD step** (:func:`~warpinv.methods.in_n_out.stages.fit_ood`): the composite render (InD + OOD field) at raw
  resolution, its SR, the losses (LPIPS(vgg) on the raw composite; the image has an OOD mask, as in the released
  ``train_outdomain.py``), backward into the OOD tri-plane (``3 x 32 x R x R``, R = ``plane_resolution``), the
  decoder, ``phi`` and, as released, the latent at ``lr / 100`` through the backbone; and the variant
  ``ood.ws_lr_scale=0`` (latent frozen: the tri-planes of the backbone are computed once, before the first step);
- **SR step** (:func:`~warpinv.methods.in_n_out.stages.tune_superresolution`): SR forward and backward + MSE +
  LPIPS(vgg), plus, as released (``sr.deterministic_render=False``), a re-render of the raw composite without
  gradient at every step;
- the fixed ``latent_stats`` (``ind.w_avg_samples`` mapped latents) and the process's peak memory after each stage.

The random start runs in a process of its own (``--in-process``: after the other stages, in the same one): its
figure holds that process's peak before it (generator, LPIPS trunks, image) and after it, and their difference per
latent of the batch (``mb_per_latent``), the memory a larger ``ind.init_batch`` costs.

The ``in_n_out`` entry of the default suite (``experiments/bench/default.yaml``), when it has one, is measured the
same way on the suite's generator with the entry's own settings (reduced budget, MSE only, smaller OOD tri-plane...).

Each stage's steps are timed between its step callbacks: the first step (setup included) is the warm-up, the median
of the rest is reported. LPIPS runs on **seeded random trunks** (the pretrained weights cannot be downloaded here;
the cost does not depend on them). Seconds per image are then **extrapolated**: released budget (500 random
latents, 500 W+ steps, 10,000 OOD steps, 100 SR steps) and at the default suite's budget, each from the per-step
costs of its own settings. Every figure in the JSON says whether it is measured or extrapolated, with its formula.
Output: ``benchmarks/results/perf_in_n_out.json`` and a Markdown summary next to it.

    python benchmarks/perf/in_n_out.py                  # about 6 minutes on 2 idle CPU cores
    python benchmarks/perf/in_n_out.py --configs tiny --steps 5 --out runs/perf_in_n_out.json
    python benchmarks/perf/in_n_out.py --smoke --out smoke.json        # seconds, in one process

Reference, **context only, not a side-by-side measurement** (no official run was made here): the In-N-Out paper
reports 2.68 h for 200 frames of a video on one RTX A6000, about 48 s per frame (``../shared/reference/methods.md``
section 3.3). That is its video recipe (one OOD tri-plane and 10,000 iterations shared by the frames, shuffled), on
a GPU with trained weights, so it is not the cost of one single-image run.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[2]

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a file: its sibling module
from perf_common import (  # noqa: E402
    StepClock,
    build_generator,
    figure,
    load_average,
    machine_environment,
    median_figure,
    peak_memory_mb,
    seconds_text,
    step_figure,
    timed_once,
)

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "perf_in_n_out.json"
DEFAULT_SUITE = ROOT / "experiments" / "bench" / "default.yaml"
CONFIGS = ("tiny", "ffhq512-128")
METHOD = "in_n_out"
RELEASED_WS_LR_SCALE = 0.01
#: What one measuring process runs: the step stages, the random start (each in its own process unless in-process).
PARTS = ("steps", "random_start")
#: The figure of a stage that a configuration does not run (0 steps): it adds nothing to a total.
NOT_RUN: dict[str, Any] = {"seconds": 0.0, "kind": "not run", "formula": "0 steps in this configuration"}
logger = logging.getLogger("perf_in_n_out")

#: Per-step figures of a measured row, by budget stage (``ood`` is chosen by the budget's ``ws_lr_scale``).
OOD_FIGURES = {"latent_refined": "ood_step_s", "latent_frozen": "ood_step_frozen_ws_s"}
OFFICIAL_REFERENCE = {
    "in_n_out_a6000": {"hours": 2.68, "frames": 200, "seconds_per_frame": 2.68 * 3600 / 200,
                       "hardware": "1x RTX A6000",
                       "source": "In-N-Out (CVPR 2024) Table 1: 2.68 h for 200 frames "
                                 "(../shared/reference/methods.md section 3.3)"},
    "note": "context only, NOT a side-by-side measurement, and no official run was made here: other hardware "
            "(a GPU vs this CPU), trained weights, and the video recipe (one OOD tri-plane and 10,000 iterations "
            "shared by 200 shuffled frames), so 48 s per frame is not the cost of one single-image run",
}
LPIPS_NOTE = ("seeded random LPIPS trunks (VGG16 for the W+, OOD and SR losses, AlexNet for the random start): "
              "pretrained weights cannot be downloaded here; cost does not depend on weight values")


# ----------------------------------------------------------------------------------------------
# Figures and timing



# ----------------------------------------------------------------------------------------------
# Measurements on one generator


def centre_square_mask(size: int) -> torch.Tensor:
    """``(1, 1, size, size)`` OOD mask, 1 on the central half of each side (the OOD-mask loss term is on).

    Example:
        >>> m = centre_square_mask(8)
        >>> int(m.sum()), m[0, 0, 0, 0].item(), m[0, 0, 4, 4].item()
        (16, 0.0, 1.0)
    """
    mask = torch.zeros(1, 1, size, size)
    mask[..., size // 4: size - size // 4, size // 4: size - size // 4] = 1.0
    return mask


def measure_config(name: str, config: Any, settings: str, steps: int, start_batches: int,
                   device: torch.device, parts: tuple[str, ...] = PARTS) -> dict[str, Any]:
    """Per-step costs of the three stages on one generator with one :class:`InNOutConfig` (random LPIPS trunks).

    ``parts``: ``steps`` (W+, SR, OOD with the latent frozen, OOD as configured, in that order, so that
    ``peak_mb_after`` of each stage shows its own rise) and/or ``random_start`` (after them when both run). A stage
    with 0 steps in ``config`` is reported with 0 s and ``"not run"``.
    """
    from warpinv.methods.in_n_out.method import InNOut

    G = build_generator(name, device)
    config = dataclasses.replace(config, allow_random_lpips=True)
    method = InNOut(config, G)
    for module in (method.ind_perceptual, method.init_perceptual, method.ood_perceptual, method.sr_perceptual):
        if module is not None:
            module.to(device)
    targets = perf_targets(method, device)
    row: dict[str, Any] = {
        "config": name, "settings": settings, "resolution": G.img_resolution,
        "neural_rendering_resolution": method.nrr, "plane_resolution": config.plane_resolution,
        "source": getattr(G, "source", name), "lpips_random_trunks": method.random_lpips, "ood_mask": True,
    }
    if "steps" in parts:
        row.update(measure_steps(method, targets, steps, device))
    if "random_start" in parts:
        row["random_start_sample_s"] = (measure_random_start(method, targets, start_batches, device,
                                                             own_process=parts == ("random_start",))
                                        if config.ind.init_samples else NOT_RUN)
    row["peak_mb"] = peak_memory_mb(device)
    return row


def perf_targets(method: Any, device: torch.device) -> Any:
    """The method's targets for a seeded random image with an OOD mask, at the frontal camera."""
    from warpinv.cameras import yaw_pitch_camera
    from warpinv.methods.base import InversionItem

    res = method.G.img_resolution
    rng = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, res, res, generator=rng) * 2 - 1
    item = InversionItem("perf", image.to(device), yaw_pitch_camera(0.0, 0.0).to(device),
                         extras={"ood_mask": centre_square_mask(res).to(device)})
    return method.targets(item)


def measure_steps(method: Any, targets: Any, steps: int, device: torch.device) -> dict[str, Any]:
    """``latent_stats`` once, then the W+, SR and OOD steps (the ``*_s`` figures of a row)."""
    from warpinv.methods.projector import latent_stats

    config, ind = method.config, method.config.ind
    stats_s, stats = timed_once(lambda: latent_stats(method.G, targets.camera, ind.w_avg_samples, ind.w_avg_seed,
                                                     conditioning=ind.conditioning), device)
    out = {"latent_stats_s": figure(stats_s, "measured", f"latent_stats with {ind.w_avg_samples} samples, 1 run",
                                    peak_mb_after=peak_memory_mb(device))}
    out["wplus_step_s"], ws = measure_wplus(method, targets, stats, steps, device)
    out["sr_step_s"] = measure_sr(method, targets, ws, steps, device) if config.sr.steps else NOT_RUN
    refined = config.ood.ws_lr_scale or RELEASED_WS_LR_SCALE
    out["ood_step_frozen_ws_s"] = measure_ood(method, targets, ws, steps, 0.0, device) if config.ood.steps else NOT_RUN
    out["ood_step_s"] = measure_ood(method, targets, ws, steps, refined, device) if config.ood.steps else NOT_RUN
    return out


def measure_random_start(method: Any, targets: Any, batches: int, device: torch.device,
                         own_process: bool) -> dict[str, Any]:
    """Seconds per random latent of ``random_start``: calls of one ``init_batch`` each, 1 warm-up call; with the
    process's peak memory before and after, and (``own_process``: nothing else ran in it) their difference per
    latent."""
    from warpinv.methods.in_n_out.stages import random_start

    batch = method.config.ind.init_batch
    one_batch = dataclasses.replace(method.config.ind, init_samples=batch)

    def call() -> Any:
        generator = torch.Generator(device=device).manual_seed(0)
        return random_start(method.G, targets.image, targets.camera, one_batch, method.init_perceptual, generator)

    before = peak_memory_mb(device)
    warmup, _ = timed_once(call, device)
    runs = [timed_once(call, device)[0] / batch for _ in range(batches)]
    after = peak_memory_mb(device)
    per_latent = (after - before) / batch if own_process else None
    return median_figure(warmup / batch, runs, f"random_start of {batch} latents (ind.init_batch) per call, "
                         f"{one_batch.init_metric}({one_batch.init_lpips_net}), seconds / {batch}", unit="calls",
                         batch=batch, peak_mb_before=before, peak_mb_after=after, mb_per_latent=per_latent,
                         memory=("its own process: peak before (generator, LPIPS trunks, image) and after; "
                                 "mb_per_latent = (after - before) / batch" if own_process else
                                 "measured after the other stages in the same process: no per-latent figure"))


def measure_wplus(method: Any, targets: Any, stats: Any, steps: int,
                  device: torch.device) -> tuple[dict[str, Any], torch.Tensor]:
    """W+ projection steps as :meth:`InNOut.invert` runs them (from ``w_avg``: the start does not change the cost)."""
    from warpinv.methods.in_n_out.stages import delta_regularizer
    from warpinv.methods.projector import project

    cfg = dataclasses.replace(method.config.ind, steps=steps + 1)
    full_mask = getattr(targets, "ood_mask_full", None)
    keep = 1 - full_mask if getattr(cfg, "use_ood_mask", False) and full_mask is not None else None
    clock = StepClock(device).begin()
    with torch.enable_grad():
        fit = project(method.G, targets.image, targets.camera, cfg, stats, space="w+",
                      perceptual=method.ind_perceptual, mask=keep, neural_rendering_resolution=method.nrr,
                      callback=clock, regularizer=delta_regularizer(cfg))
    losses = [f"LPIPS({cfg.lpips_net}) at {cfg.lpips_resolution or 'full'} resolution"] if cfg.lpips_weight else []
    losses += ["MSE"] if cfg.mse_weight else []
    what = f"project(space='w+'), {' + '.join(losses) or 'no image loss'}" + (", OOD pixels masked" if keep is not None
                                                                             else "")
    return step_figure(clock, what, peak_mb_after=peak_memory_mb(device)), fit.ws


def measure_ood(method: Any, targets: Any, ws: torch.Tensor, steps: int, ws_lr_scale: float,
                device: torch.device) -> dict[str, Any]:
    """``fit_ood`` steps on a fresh OOD field; ``ws_lr_scale=0``: the latent is frozen (planes computed once)."""
    from warpinv.methods.in_n_out.networks import OOD_CHANNELS
    from warpinv.methods.in_n_out.stages import fit_ood

    base = method.config
    config = dataclasses.replace(base, ood=dataclasses.replace(base.ood, steps=steps + 1, ws_lr_scale=ws_lr_scale))
    field, phi = fresh_field(config, device)
    clock = StepClock(device).begin()
    with torch.enable_grad():
        fit_ood(method.G, ws, field, phi, targets, config, method.ood_perceptual, clock)
    what = (f"fit_ood, ood.ws_lr_scale={ws_lr_scale:g}"
            + (" (latent refined through the backbone)" if ws_lr_scale > 0
               else " (latent frozen: backbone tri-planes computed once, in the warm-up step)")
            + f", OOD tri-plane 3x{OOD_CHANNELS}x{config.plane_resolution}x{config.plane_resolution}")
    return step_figure(clock, what, ws_lr_scale=ws_lr_scale, peak_mb_after=peak_memory_mb(device))


def fresh_field(config: Any, device: torch.device) -> tuple[Any, torch.Tensor]:
    """A new OOD field and ``phi (1, 32)`` as :meth:`InNOut.invert` creates them (seeded)."""
    from warpinv.methods.in_n_out.networks import OOD_CHANNELS, OODField

    generator = torch.Generator().manual_seed(0)
    field = OODField(OOD_CHANNELS, config.plane_resolution, config.plane_reduction, generator=generator).to(device)
    phi = torch.randn(1, OOD_CHANNELS, generator=generator).to(device).requires_grad_(True)
    return field, phi


def measure_sr(method: Any, targets: Any, ws: torch.Tensor, steps: int, device: torch.device) -> dict[str, Any]:
    """``tune_superresolution`` steps (released: the raw composite is re-rendered without gradient every step)."""
    from warpinv.methods.in_n_out.stages import tune_superresolution

    base = method.config
    config = dataclasses.replace(base, sr=dataclasses.replace(base.sr, steps=steps + 1))
    field, phi = fresh_field(config, device)
    clock = StepClock(device).begin()
    with torch.enable_grad():
        tune_superresolution(method.G, ws, field, phi, targets, config, method.sr_perceptual, clock)
    render = ("re-render of the raw composite without gradient every step (sr.deterministic_render=False, as "
              "released)" if not config.sr.deterministic_render else "raw composite rendered once")
    losses = " + ".join((["MSE"] if config.sr.mse_weight else []) + ([f"LPIPS({config.sr.lpips_net})"]
                                                                      if config.sr.lpips_weight else []))
    what = f"tune_superresolution: SR forward/backward + {losses or 'no loss'}, {render}"
    return step_figure(clock, what, peak_mb_after=peak_memory_mb(device))


# ----------------------------------------------------------------------------------------------
# Budgets and per-image extrapolation


def budget_of(config: Any, note: str) -> dict[str, Any]:
    """The step counts of an :class:`InNOutConfig` that the per-image cost scales with."""
    return {"init_samples": config.ind.init_samples, "ind_steps": config.ind.steps, "ood_steps": config.ood.steps,
            "sr_steps": config.sr.steps, "ws_lr_scale": config.ood.ws_lr_scale, "note": note}


def released_budget() -> dict[str, Any]:
    from warpinv.methods.in_n_out.config import InNOutConfig

    return budget_of(InNOutConfig(), "the released code (invert_multi_ws.py, train_outdomain.py with run_train.sh), "
                                     "per-step costs measured with its settings")


def suite_entry(path: Path) -> tuple[Any, dict[str, Any]] | str:
    """The resolved :class:`InNOutConfig` of the ``in_n_out`` entry of a suite file (its preset + overrides) and
    facts about it, or why there is none."""
    if not path.is_file():
        return f"{path} does not exist"
    from warpinv.bench.suite import find_preset, load_preset, load_suite
    from warpinv.config import deep_merge, from_dict
    from warpinv.methods.in_n_out.config import InNOutConfig

    suite = load_suite(path)
    entries = [(label, e) for label, e in suite.methods.items() if e.method == METHOD]
    if not entries:
        return f"{path} has no {METHOD} entry"
    label, entry = entries[0]
    preset = load_preset(find_preset(suite, entry), METHOD)
    config = from_dict(InNOutConfig, deep_merge(preset, entry.config), path=f"methods.{label}.config")
    shown = path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path
    return config, {"suite": str(shown), "label": label, "generator": config.generator or suite.generator}


def suite_budget(path: Path) -> dict[str, Any]:
    """The budget of the ``in_n_out`` entry of a suite file, or ``{"skipped": reason}``. Its other settings that
    differ from the released ones (they change the per-step costs, measured with them) are in ``changes``."""
    from warpinv.config import to_dict
    from warpinv.methods.in_n_out.config import InNOutConfig

    found = suite_entry(path)
    if isinstance(found, str):
        return {"skipped": found}
    config, facts = found
    budget_keys = {"ind.init_samples", "ind.steps", "ood.steps", "sr.steps", "ood.ws_lr_scale"}
    changes = [f"{k}: {r} -> {u}" for k, r, u in leaf_changes(to_dict(InNOutConfig()), to_dict(config))
               if k not in budget_keys]
    note = (f"{path.name} entry {facts['label']!r} on generator {facts['generator']}, per-step costs measured with "
            "the entry's settings")
    return {**budget_of(config, note), **facts, "changes": changes}


def settings_config(settings: str, suite: Path) -> Any:
    """The :class:`InNOutConfig` a row is measured with: ``released`` (the defaults) or ``default_suite``."""
    from warpinv.methods.in_n_out.config import InNOutConfig

    if settings == "released":
        return InNOutConfig()
    found = suite_entry(suite)
    if isinstance(found, str):
        raise ValueError(f"settings {settings!r}: {found}")
    return found[0]


def leaf_changes(reference: Any, used: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``(dotted key, reference, used)`` of every leaf that differs between two nested dicts.

    Example:
        >>> leaf_changes({"a": 1, "b": {"c": 2, "d": 3}}, {"a": 1, "b": {"c": 5, "d": 3}})
        [('b.c', 2, 5)]
    """
    if isinstance(reference, dict) and isinstance(used, dict):
        out = []
        for key in sorted(set(reference) | set(used)):
            out += leaf_changes(reference.get(key), used.get(key), f"{prefix}.{key}" if prefix else key)
        return out
    return [] if reference == used else [(prefix, reference, used)]


def stage(count: int, per: dict[str, Any], name: str) -> dict[str, Any]:
    """``count x per`` seconds, extrapolated."""
    return figure(count * per["seconds"], "extrapolated", f"{count} x {name} ({per['seconds']:.4g} s)")


def per_image(row: dict[str, Any], budget: dict[str, Any]) -> dict[str, Any]:
    """Seconds per image of one budget on one measured generator, with the latent refined or frozen in stage 2.

    ``total`` follows the budget's own ``ws_lr_scale``; both variants are given.
    """
    init = budget["init_samples"]
    stages = {
        "latent_stats": figure(row["latent_stats_s"]["seconds"], "measured", "latent_stats_s (once per image)"),
        "random_start": stage(init, row["random_start_sample_s"], "random_start_sample_s"),
        "wplus": stage(budget["ind_steps"], row["wplus_step_s"], "wplus_step_s"),
        "ood_latent_refined": stage(budget["ood_steps"], row["ood_step_s"], "ood_step_s"),
        "ood_latent_frozen": stage(budget["ood_steps"], row["ood_step_frozen_ws_s"], "ood_step_frozen_ws_s"),
        "sr": stage(budget["sr_steps"], row["sr_step_s"], "sr_step_s"),
    }
    base = sum(stages[k]["seconds"] for k in ("latent_stats", "random_start", "wplus", "sr"))
    totals = {variant: figure(base + stages[f"ood_{variant}"]["seconds"], "extrapolated",
                              f"latent_stats + random_start + wplus + ood_{variant} + sr")
              for variant in OOD_FIGURES}
    used = "latent_refined" if budget["ws_lr_scale"] > 0 else "latent_frozen"
    return {"note": budget["note"], "stages": stages, "totals": totals, "ood_variant": used, "total": totals[used]}


def extrapolate(rows: list[dict[str, Any]], budgets: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``{generator: {settings: per_image}}`` of every measured row, each at the budget of its settings."""
    out: dict[str, Any] = {}
    for row in rows:
        if "error" not in row:
            out.setdefault(row["config"], {})[row["settings"]] = per_image(row, budgets[row["settings"]])
    return out


# ----------------------------------------------------------------------------------------------
# Driver


def run_group(args: argparse.Namespace, name: str, settings: str) -> dict[str, Any]:
    """One generator's measurements with one settings: the step stages and the random start each in a fresh
    subprocess, unless ``--in-process``."""
    if args.in_process:
        return measure_config(name, settings_config(settings, args.suite), settings, args.steps, args.start_batches,
                              torch.device(args.device))
    steps, start = (run_child(args, name, settings, part) for part in PARTS)
    for row in (steps, start):
        if "error" in row:
            return row
    return {**steps, "random_start_sample_s": start["random_start_sample_s"],
            "peak_mb": max(steps["peak_mb"], start["peak_mb"])}


def run_child(args: argparse.Namespace, name: str, settings: str, part: str) -> dict[str, Any]:
    """One part (:data:`PARTS`) of :func:`measure_config` in a fresh process (its own peak memory)."""
    cmd = [sys.executable, __file__, "--device", args.device, "--steps", str(args.steps), "--start-batches",
           str(args.start_batches), "--suite", str(args.suite), "--child", name, settings, "--part", part]
    cmd += ["--no-malloc-tuning"] if args.no_malloc_tuning else []
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        return {"name": name, "settings": settings, "error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def suite_rows(args: argparse.Namespace, budget: dict[str, Any]) -> list[dict[str, Any]]:
    """The default suite's row, measured on its generator when that is one of ``--configs`` (else a ``skipped``
    reason goes into ``budget``)."""
    if "skipped" in budget:
        return []
    if budget["generator"] not in args.configs:
        budget["skipped"] = f"its generator {budget['generator']!r} is not among --configs {args.configs}"
        return []
    return [run_group(args, budget["generator"], "default_suite")]


def environment(device: str, in_process: bool) -> dict[str, Any]:
    memory = ("CPU: process peak RSS (ru_maxrss), per generator and settings one process for the steps and one for the "
              "random start; peak_mb_after of a stage is the peak so far in its process (steps in the order W+, SR, "
              "OOD frozen, OOD refined; the LPIPS trunks the settings need are built first)" if not in_process else
              "CPU: peak RSS of the one process that measured everything (cumulative)")
    return machine_environment(
        device, weights="random generator weights (speed and memory do not depend on weight values)",
        lpips=LPIPS_NOTE, memory=memory if device.startswith("cpu") else "CUDA: torch max_memory_allocated")



def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS), help="generators to measure")
    parser.add_argument("--steps", type=int, default=2,
                        help="timed steps of each stage after its warm-up step (0: time the first step, setup "
                             "included)")
    parser.add_argument("--start-batches", type=int, default=1,
                        help="timed random-start calls (ind.init_batch latents each) after a warm-up call")
    parser.add_argument("--suite", type=Path, default=DEFAULT_SUITE, help="suite whose in_n_out budget to add")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--in-process", action="store_true", help="no subprocesses (peak memory is cumulative)")
    parser.add_argument("--smoke", action="store_true",
                        help="quick check: tiny only, 2 steps of each stage (1 warm-up + 1 timed), in-process")
    parser.add_argument("--no-malloc-tuning", action="store_true", help="keep glibc's default allocator settings")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--child", nargs=2, metavar=("CONFIG", "SETTINGS"), help=argparse.SUPPRESS)
    parser.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps < 0 or args.start_batches < 1:
        parser.error(f"--steps must be >= 0 and --start-batches >= 1, got {args.steps} and {args.start_batches}")
    if args.smoke:
        args.configs, args.steps, args.start_batches, args.in_process = ["tiny"], 1, 1, True
    unknown = set(args.configs) - set(CONFIGS)
    if unknown:
        parser.error(f"--configs must be among {list(CONFIGS)}, got {sorted(unknown)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        from warpinv.backbone.runtime import tune_cpu_allocator

        tuned = False if args.no_malloc_tuning else tune_cpu_allocator()
        name, settings = args.child
        row = measure_config(name, settings_config(settings, args.suite), settings, args.steps, args.start_batches,
                             torch.device(args.device), parts=(args.part,) if args.part else PARTS)
        print(json.dumps({**row, "malloc_tuning": tuned}))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    load_before, start = load_average(), time.perf_counter()
    budgets = {"released": released_budget(), "default_suite": suite_budget(args.suite)}
    rows = [run_group(args, name, "released") for name in args.configs]
    rows += suite_rows(args, budgets["default_suite"])
    for row in rows:
        logger.info(row_summary(row))
    env = {**environment(args.device, args.in_process), "load_average_before": load_before,
           "load_average_after": load_average(), "wall_s": time.perf_counter() - start}
    result = {
        "benchmark": METHOD, "environment": env,
        "settings": {"timed_steps": args.steps, "timed_start_batches": args.start_batches, "smoke": args.smoke,
                     "config": "released: InNOutConfig() defaults (the released recipe); default_suite: the suite "
                               "entry's config; both with allow_random_lpips=True",
                     "image": "seeded random image with an OOD mask (the central square), frontal camera"},
        "budgets": budgets, "official_reference": OFFICIAL_REFERENCE,
        "steps": rows, "per_image": extrapolate(rows, budgets),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    markdown = args.out.with_suffix(".md")
    markdown.write_text(render_markdown(result))
    logger.info("wrote %s and %s", args.out, markdown)
    return 0


# ----------------------------------------------------------------------------------------------
# Summaries


STEP_COLUMNS = {"random_start_sample_s": "random start s/latent", "wplus_step_s": "W+ step s",
                "ood_step_s": "OOD step s (latent refined)",
                "ood_step_frozen_ws_s": "OOD step s (ood.ws_lr_scale=0)", "sr_step_s": "SR step s",
                "latent_stats_s": "latent_stats s"}


def row_summary(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"{row['name']} ({row['settings']}): FAILED {row['error']}"
    costs = " | ".join(f"{title} {_cost(row[key])}" for key, title in STEP_COLUMNS.items())
    return f"{row['config']:>12} ({row['settings']}): {costs} | peak {row['peak_mb']:.0f} MB"


def _per_latent(fig: dict[str, Any]) -> str:
    per_latent = fig.get("mb_per_latent")
    return "-" if per_latent is None else f"{per_latent:.0f}"


def _cost(fig: dict[str, Any]) -> str:
    return "-" if fig["kind"] == "not run" else f"{fig['seconds']:.3f}"


def render_markdown(result: dict[str, Any]) -> str:
    env = result["environment"]
    lines = [
        "# In-N-Out per-image cost",
        "",
        f"{env['processor']}, {env['threads']} threads, device {env['device']}, torch {env['torch']}, "
        f"commit {env['git_commit']}, load average before/after {env.get('load_average_before')} / "
        f"{env.get('load_average_after')} (other processes inflate every time). Generators: {env['weights']}; "
        f"LPIPS: {env['lpips']}. Settings: {result['settings']['config']}; {result['settings']['image']}.",
        "",
        "## Per-step costs (measured, median after 1 warm-up step)",
        "",
        "| generator | settings | " + " | ".join(STEP_COLUMNS.values()) + " | peak MB | random start MB/latent |",
        "|---" * (len(STEP_COLUMNS) + 4) + "|",
    ]
    for r in result["steps"]:
        if "error" in r:
            lines.append(f"| {r['name']} | {r['settings']} | FAILED: {r['error']} |")
        else:
            lines.append(f"| {r['config']} | {r['settings']} | " + " | ".join(_cost(r[k]) for k in STEP_COLUMNS)
                         + f" | {r['peak_mb']:.0f} | {_per_latent(r['random_start_sample_s'])} |")
    lines += ["", "OOD steps with `ood.ws_lr_scale=0` freeze the latent: the backbone's tri-planes are computed once "
              "(in the warm-up step) and no gradient flows through the backbone; the released recipe refines the "
              "latent at lr/100. SR steps re-render the raw composite without gradient at every step when "
              "`sr.deterministic_render` is False (released), else render it once. `-`: 0 steps in that "
              "configuration. Peak memory: the larger peak RSS of the row's two processes (the steps; the random "
              "start); random start MB/latent: its process's peak rise over its baseline (generator, LPIPS trunks, "
              "image) divided by `ind.init_batch` (`-`: measured in one process with the other stages). The JSON "
              "has `peak_mb_after` per stage.",
              "",
              "## Seconds per image (extrapolated)", "",
              "| generator | budget | latent_stats | random start | W+ | OOD (latent refined / frozen) | SR "
              "| total, latent refined | total, latent frozen |",
              "|---|---|---|---|---|---|---|---|---|"]
    for config, by_budget in result["per_image"].items():
        for name, b in by_budget.items():
            s, t = b["stages"], b["totals"]
            total = {v: seconds_text(t[v]["seconds"]) for v in t}
            total[b["ood_variant"]] = f"**{total[b['ood_variant']]}**"
            lines.append(f"| {config} | {name} | {s['latent_stats']['seconds']:.1f} | "
                         f"{s['random_start']['seconds']:.1f} | {s['wplus']['seconds']:.1f} | "
                         f"{seconds_text(s['ood_latent_refined']['seconds'])} / "
                         f"{seconds_text(s['ood_latent_frozen']['seconds'])}"
                         f" | {s['sr']['seconds']:.1f} | {total['latent_refined']} | {total['latent_frozen']} |")
    lines += ["", "In bold: the total as the budget is configured (its `ood.ws_lr_scale`). Budgets (each total = "
              "latent_stats + init_samples x random start + W+ steps x W+ step + OOD steps x OOD step + SR steps x "
              "SR step; formulas in the JSON):"]
    for name, b in result["budgets"].items():
        if "skipped" in b:
            lines.append(f"- **{name}**: skipped ({b['skipped']}).")
        else:
            lines.append(f"- **{name}**: {b['init_samples']} random latents, {b['ind_steps']} W+ steps, "
                         f"{b['ood_steps']} OOD steps (ood.ws_lr_scale={b['ws_lr_scale']:g}), {b['sr_steps']} SR "
                         f"steps; {b['note']}."
                         + (f" Settings that differ from the released ones: {'; '.join(b['changes'])}."
                            if b.get("changes") else ""))
    ref = result["official_reference"]
    paper = ref["in_n_out_a6000"]
    lines += ["", f"Reference, {ref['note']}. {paper['source']} = about {paper['seconds_per_frame']:.0f} s per "
              f"frame on {paper['hardware']}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
