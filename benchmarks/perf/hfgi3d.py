"""HFGI3D per-image cost: pseudo-view generation, per-step optimisation costs, and the seconds per image
they add up to at the released and the paper budgets.

Measured here (each group in a fresh subprocess, so each peak memory is its own):

- **pseudo views** (:func:`warpinv.geometry.pseudo_views.make_pseudo_views`, geometry only): the fixed
  per-image cost (mesh + surface sampling + input-view visibility, :func:`seen_surface`) and the cost
  per target view, in both modes (``official``, ``clean``), for two settings:

  - ``released``: 512x512 views, 1,000,000 points, mesh 1024 from a 128x128 depth (the released
    ``generate_multi_views.py``); ``--views N`` times N of the 31 views (30 ``hfgi3d_orbit()`` views
    plus the input camera) and extrapolates to 31;
  - ``tiny``: 128x128 views, ``PseudoViewConfig().num_points_for(128)`` points, mesh 256 from a 32x32
    depth (the tiny generator's raw render size), all 31 views.

  The depth is analytic (a dome from 2.3 to 2.9 in front of a 2.9 background, ray distances seen from
  the frontal FFHQ camera); image and renders are seeded random 8-bit images;
- **optimisation steps** on a generator (``tiny`` and ``ffhq512-128`` with random weights; speed does not
  depend on weight values): one W+ projector step (:func:`~warpinv.methods.projector.project`), one
  single-view tuning step and one two-view tuning step (input + one of the pseudo views drawn by
  :class:`~warpinv.methods.tuning.InputAndRandomView`; :func:`~warpinv.methods.tuning.tune_generator`
  without early stop), one forward render (the 31 renders the pseudo views are blended over) and the
  projector's ``w_avg`` statistics. Each step is timed between the optimiser's step callbacks, the first
  step (setup included) is the warm-up, the median of the rest is reported. LPIPS runs on **seeded random
  trunks** (VGG for the projector, AlexNet for tuning): the pretrained weights cannot be downloaded here,
  and the cost does not depend on them.

From these, seconds per image are **extrapolated** at the released budget (500 W+ projector steps, up to
500 tuning steps with the early stop, 31 renders, 31 pseudo views, 1000 two-view tuning steps) and at
the paper's (1000 + 3000 steps); every figure in the JSON says whether it is measured or extrapolated,
with its formula. Output: ``benchmarks/results/perf_hfgi3d.json`` and a Markdown summary next to it.

    python benchmarks/perf/hfgi3d.py --views 2          # about 7 minutes on 2 CPU cores
    python benchmarks/perf/hfgi3d.py --configs tiny --pseudo-settings tiny --out runs/perf_hfgi3d.json
    python benchmarks/perf/hfgi3d.py --smoke --out smoke.json         # seconds, in one process

Reference, **context only, not a side-by-side measurement** (other hardware, the CUDA PyTorch3D
rasteriser, trained weights and a data-dependent early stop): In-N-Out measured HFGI3D at 7.51 h for
200 frames on one RTX A6000, about 135 s per frame; the HFGI3D paper states about 5 minutes per image on
an RTX 2080 (``../shared/reference/methods.md`` sections 2.3 and 3.3).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

ROOT = Path(__file__).resolve().parents[2]

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a file: its sibling module
from perf_common import (  # noqa: E402
    StepClock,
    build_generator,
    figure,
    load_average,
    machine_environment,
    peak_memory_mb,
    seconds_text,
    step_figure,
    timed_once,
)

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "perf_hfgi3d.json"
logger = logging.getLogger("perf_hfgi3d")

#: Pseudo-view settings: view size and depth-map size (the generator's raw render side).
PSEUDO_SETTINGS: dict[str, dict[str, int]] = {"released": {"size": 512, "depth_size": 128},
                                              "tiny": {"size": 128, "depth_size": 32}}
#: The pseudo-view setting that goes with each generator in the per-image totals.
SETTING_OF_CONFIG = {"tiny": "tiny", "ffhq512-128": "released"}
TOTAL_VIEWS = 31  # 30 orbit views + the input camera
BUDGETS: dict[str, dict[str, Any]] = {
    "released": {"projector_steps": 500, "tuning_steps": 500, "final_steps": 1000,
                 "note": "released code: 500 W+ steps, up to 500 PTI steps (early stop at LPIPS <= 0.06, "
                         "data-dependent), 1000 steps of input + 1 random pseudo view"},
    "paper": {"projector_steps": 1000, "tuning_steps": 0, "final_steps": 3000,
              "note": "paper text: 1000 initial iterations, then 3000 iterations with one auxiliary view; "
                      "taken as 1000 W+ projector steps, no first tuning, 3000 two-view tuning steps"},
}
OFFICIAL_REFERENCE = {
    "in_n_out_a6000": {"seconds_per_frame": 7.51 * 3600 / 200, "hardware": "1x RTX A6000",
                       "source": "In-N-Out (CVPR 2024) Table 1: 7.51 h for 200 frames"},
    "hfgi3d_paper_rtx2080": {"seconds_per_image": 300, "hardware": "RTX 2080",
                             "source": "HFGI3D paper: about 5 minutes per image"},
    "note": "context only, NOT a side-by-side measurement: other hardware (GPU vs this CPU), PyTorch3D's CUDA "
            "rasteriser, trained weights, and a data-dependent early stop",
}
LPIPS_NOTE = ("seeded random LPIPS trunks (VGG16 in the projector, AlexNet in tuning): pretrained weights cannot be "
              "downloaded here; cost does not depend on weight values")


# ----------------------------------------------------------------------------------------------
# Figures and timing



# ----------------------------------------------------------------------------------------------
# Pseudo views


def dome_depth(size: int, near: float = 2.3, far: float = 2.9, radius: float = 0.8) -> Tensor:
    """``(size, size)`` analytic ray depth: a dome ``far - (far - near) sqrt(1 - (r/radius)^2)`` over a
    background at ``far``, ``r`` the distance from the image centre in ``[-1, 1]`` coordinates.

    Example:
        >>> d = dome_depth(64)
        >>> round(float(d.min()), 2), round(float(d.max()), 2)
        (2.3, 2.9)
    """
    axis = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    bump = (1 - (x.square() + y.square()) / radius**2).clamp(min=0).sqrt()
    return far - (far - near) * bump


def eight_bit(shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
    """Seeded random image values ``k / 255`` (the 8-bit PNGs the official mode reads)."""
    return torch.round(torch.rand(shape, generator=generator) * 255) / 255


def measure_pseudo_views(setting: str, mode: str, views: int, num_points: int | None, depth_size: int | None,
                         device: torch.device) -> dict[str, Any]:
    """Fixed and per-view cost of :func:`make_pseudo_views` for one image (setting, mode)."""
    from warpinv.cameras import hfgi3d_orbit, yaw_pitch_camera
    from warpinv.geometry.pseudo_views import PseudoViewConfig, make_pseudo_views, seen_surface

    size = PSEUDO_SETTINGS[setting]["size"]
    depth_size = depth_size or PSEUDO_SETTINGS[setting]["depth_size"]
    config = PseudoViewConfig(mode=mode, num_points=num_points)  # type: ignore[arg-type]
    views = min(views, TOTAL_VIEWS)
    rng = torch.Generator().manual_seed(0)
    camera = yaw_pitch_camera(0.0, 0.0)[0].to(device)
    cameras = torch.cat([hfgi3d_orbit(), camera[None].cpu()])[:views].to(device)
    image = eight_bit((3, size, size), rng).to(device)
    renders = eight_bit((views, 3, size, size), rng).to(device)
    depth = dome_depth(depth_size).to(device)

    def seen() -> Any:
        return seen_surface(image, depth, camera, config, torch.Generator().manual_seed(1))

    warmup_s, _ = timed_once(seen, device)
    fixed_s, surface = timed_once(seen, device)
    total_s, out = timed_once(lambda: make_pseudo_views(image, depth, camera, cameras, renders, config,
                                                        torch.Generator().manual_seed(1)), device)
    per_view = max(total_s - fixed_s, 0.0) / views
    all_views = fixed_s + TOTAL_VIEWS * per_view
    return {
        "setting": setting, "mode": mode, "size": size, "depth_size": depth_size,
        "num_points": config.num_points_for(size), "mesh_size": config.mesh_size_for(size),
        "num_in_view": int(surface.points.shape[0]), "num_visible": out.num_visible,
        "mask_mean": float(out.masks.mean()), "views_timed": views,
        "seen_surface_s": figure(fixed_s, "measured", "seen_surface (mesh + sampling + visibility), 1 run after "
                                 "1 warm-up run", warmup_s=warmup_s),
        "make_pseudo_views_s": figure(total_s, "measured", f"make_pseudo_views with {views} view(s), 1 run"),
        "per_view_s": figure(per_view, "measured", f"(make_pseudo_views_s - seen_surface_s) / {views}"),
        "views_31_s": figure(all_views, "measured" if views == TOTAL_VIEWS else "extrapolated",
                             f"seen_surface_s + {TOTAL_VIEWS} x per_view_s"),
        "peak_mb": peak_memory_mb(device),
    }


# ----------------------------------------------------------------------------------------------
# Optimisation steps


def measure_steps(config: str, steps: int, device: torch.device) -> dict[str, Any]:
    """Per-step costs of the projector and of tuning (one and two views) on one generator."""
    from warpinv.cameras import hfgi3d_orbit, yaw_pitch_camera
    from warpinv.methods.projector import ProjectorConfig, latent_stats, project, synthesize
    from warpinv.methods.tuning import InputAndRandomView, TuningConfig, TuningTarget, tune_generator

    G = build_generator(config, device)
    res = G.img_resolution
    rng = torch.Generator().manual_seed(0)
    camera = yaw_pitch_camera(0.0, 0.0).to(device)
    target = (torch.rand(1, 3, res, res, generator=rng) * 2 - 1).to(device)
    proj_cfg = ProjectorConfig(steps=steps + 1)
    tune_cfg = TuningConfig(steps=steps + 1, lpips_threshold=None)
    proj_lpips, tune_lpips = proj_cfg.perceptual(allow_random=True), tune_cfg.perceptual(allow_random=True)
    assert proj_lpips is not None and tune_lpips is not None
    proj_lpips.to(device)
    tune_lpips.to(device)

    stats_s, stats = timed_once(lambda: latent_stats(G, camera, proj_cfg.w_avg_samples, proj_cfg.w_avg_seed), device)
    clock = StepClock(device).begin()
    with torch.enable_grad():
        fit = project(G, target, camera, proj_cfg, stats, space="w+", perceptual=proj_lpips, callback=clock)
    projector = step_figure(clock, "project(space='w+')")

    with torch.no_grad():
        synthesize(G, fit.ws, camera)
        forward_runs = [timed_once(lambda: synthesize(G, fit.ws, camera), device)[0] for _ in range(max(steps, 1))]
    forward = figure(statistics.median(forward_runs), "measured",
                     f"G.synthesis without gradients: median of {len(forward_runs)} runs after 1 warm-up",
                     runs_s=forward_runs)

    single = [TuningTarget(target, camera)]
    clock = StepClock(device).begin()
    tune_generator(G, fit.ws, single, tune_cfg, perceptual=tune_lpips, callback=clock)
    tuning = step_figure(clock, "tune_generator, input view")

    others = hfgi3d_orbit()[:2].to(device)
    pseudo = [TuningTarget((torch.rand(1, 3, res, res, generator=rng) * 2 - 1).to(device), c[None]) for c in others]
    clock = StepClock(device).begin()
    tune_generator(G, fit.ws, single + pseudo, tune_cfg, sampler=InputAndRandomView(3, seed=0),
                   perceptual=tune_lpips, callback=clock)
    tuning_2 = step_figure(clock, "tune_generator, InputAndRandomView (input + 1 pseudo view)")
    return {
        "config": config, "resolution": res, "neural_rendering_resolution": G.neural_rendering_resolution,
        "source": getattr(G, "source", config), "lpips_random_trunks": bool(proj_lpips.random_weights),
        "latent_stats_s": figure(stats_s, "measured", f"latent_stats with {proj_cfg.w_avg_samples} samples, 1 run"),
        "projector_step_s": projector, "forward_s": forward, "tuning_step_s": tuning,
        "tuning_step_2views_s": tuning_2, "peak_mb": peak_memory_mb(device),
    }


# ----------------------------------------------------------------------------------------------
# Per-image budgets


def stage(steps: int, per_step: dict[str, Any], name: str, fixed: dict[str, Any] | None = None,
          fixed_name: str = "") -> dict[str, Any]:
    seconds = steps * per_step["seconds"] + (fixed["seconds"] if fixed else 0.0)
    formula = f"{steps} x {name} ({per_step['seconds']:.4g} s)"
    if fixed:
        formula += f" + {fixed_name} ({fixed['seconds']:.4g} s)"
    return figure(seconds, "extrapolated", formula)


def budget(steps_row: dict[str, Any], pseudo_rows: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    """Seconds per image of one budget on one generator, per pseudo-view mode."""
    b = BUDGETS[name]
    stages = {
        "projector": stage(b["projector_steps"], steps_row["projector_step_s"], "projector_step_s",
                           steps_row["latent_stats_s"], "latent_stats_s"),
        "tuning_up_to": stage(b["tuning_steps"], steps_row["tuning_step_s"], "tuning_step_s"),
        "renders": stage(TOTAL_VIEWS, steps_row["forward_s"], "forward_s"),
        "final_tuning": stage(b["final_steps"], steps_row["tuning_step_2views_s"], "tuning_step_2views_s"),
    }
    base = sum(s["seconds"] for s in stages.values())
    totals = {}
    for mode, row in pseudo_rows.items():
        pv = row["views_31_s"]
        totals[mode] = {
            "pseudo_views": pv,
            "total_up_to": figure(base + pv["seconds"], "extrapolated",
                                  "projector + tuning_up_to + renders + pseudo_views + final_tuning"),
            "total_if_tuning_stops_at_once": figure(base - stages["tuning_up_to"]["seconds"] + pv["seconds"],
                                                    "extrapolated", "total_up_to - tuning_up_to"),
        }
    return {"note": b["note"], "pseudo_view_setting": next(iter(pseudo_rows.values()))["setting"],
            "stages": stages, "by_pseudo_view_mode": totals}


def budgets(steps_rows: list[dict[str, Any]], pseudo_rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for row in steps_rows:
        if "error" in row:
            continue
        setting = SETTING_OF_CONFIG.get(row["config"])
        matching = {p["mode"]: p for p in pseudo_rows if p.get("setting") == setting and "error" not in p}
        if matching:
            out[row["config"]] = {name: budget(row, matching, name) for name in BUDGETS}
    return out


# ----------------------------------------------------------------------------------------------
# Driver


def child_row(args: argparse.Namespace, kind: str, name: str, mode: str = "") -> dict[str, Any]:
    """One measurement group, in this process."""
    device = torch.device(args.device)
    if kind == "pseudo":
        return measure_pseudo_views(name, mode, args.views if name == "released" else args.tiny_views,
                                    args.num_points, args.depth_size, device)
    return measure_steps(name, args.steps, device)


def run_group(args: argparse.Namespace, kind: str, name: str, mode: str = "") -> dict[str, Any]:
    """One measurement group, in a fresh subprocess unless ``--in-process``."""
    label = {"kind": kind, "name": name, **({"mode": mode} if mode else {})}
    if args.in_process:
        return child_row(args, kind, name, mode)
    cmd = [sys.executable, __file__, "--device", args.device, "--views", str(args.views), "--tiny-views",
           str(args.tiny_views), "--steps", str(args.steps), "--child", kind, name, mode or "-"]
    cmd += ["--num-points", str(args.num_points)] if args.num_points else []
    cmd += ["--depth-size", str(args.depth_size)] if args.depth_size else []
    cmd += ["--no-malloc-tuning"] if args.no_malloc_tuning else []
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        return {**label, "error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def environment(device: str) -> dict[str, Any]:
    return machine_environment(
        device, weights="random generator weights (speed and memory do not depend on weight values)",
        lpips=LPIPS_NOTE,
        memory="CPU: process peak RSS (ru_maxrss) per measurement group; CUDA: torch max_memory_allocated")



def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="*", default=["tiny", "ffhq512-128"], help="generators for the step costs")
    parser.add_argument("--pseudo-settings", nargs="*", default=["released", "tiny"], choices=sorted(PSEUDO_SETTINGS))
    parser.add_argument("--modes", nargs="+", default=["official", "clean"], choices=["official", "clean"])
    parser.add_argument("--views", type=int, default=TOTAL_VIEWS,
                        help="views timed in the released (512 px) setting; the rest is extrapolated to 31")
    parser.add_argument("--tiny-views", type=int, default=TOTAL_VIEWS, help="views timed in the tiny (128 px) setting")
    parser.add_argument("--steps", type=int, default=3,
                        help="timed optimiser steps after the warm-up step (0: time the first step, setup included)")
    parser.add_argument("--num-points", type=int, default=None, help="override the surface points (default: released)")
    parser.add_argument("--depth-size", type=int, default=None, help="override the depth-map side")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--in-process", action="store_true", help="no subprocesses (peak memory is cumulative)")
    parser.add_argument("--smoke", action="store_true",
                        help="quick check: tiny, 2000 points, 16 px depth, 2 views, 1 step (no warm-up), in-process")
    parser.add_argument("--no-malloc-tuning", action="store_true", help="keep glibc's default allocator settings")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--child", nargs=3, metavar=("KIND", "NAME", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.views, args.tiny_views) < 1 or args.steps < 0:
        parser.error(f"--views and --tiny-views must be >= 1 and --steps >= 0, got {args.views}, {args.tiny_views} "
                     f"and {args.steps}")
    if args.smoke:
        args.configs, args.pseudo_settings, args.in_process = ["tiny"], ["tiny"], True
        args.num_points, args.depth_size, args.steps = args.num_points or 2000, args.depth_size or 16, 0
        args.tiny_views = min(args.tiny_views, 2)
    unknown = set(args.configs) - set(SETTING_OF_CONFIG)
    if unknown:
        parser.error(f"--configs must be among {sorted(SETTING_OF_CONFIG)}, got {sorted(unknown)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        from warpinv.backbone.runtime import tune_cpu_allocator

        tuned = False if args.no_malloc_tuning else tune_cpu_allocator()
        kind, name, mode = args.child
        print(json.dumps({**child_row(args, kind, name, "" if mode == "-" else mode), "malloc_tuning": tuned}))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    load_before, start = load_average(), time.perf_counter()
    pseudo = [run_group(args, "pseudo", s, m) for s in args.pseudo_settings for m in args.modes]
    for row in pseudo:
        logger.info(pseudo_summary(row))
    steps = [run_group(args, "steps", c) for c in args.configs]
    for row in steps:
        logger.info(steps_summary(row))
    env = {**environment(args.device), "load_average_before": load_before, "load_average_after": load_average(),
           "wall_s": time.perf_counter() - start}
    result = {
        "benchmark": "hfgi3d", "environment": env,
        "settings": {"views_timed_released": args.views, "views_timed_tiny": args.tiny_views,
                     "timed_steps": args.steps, "smoke": args.smoke,
                     "depth": "analytic dome (dome_depth): 2.3 at the centre to 2.9, ray distances, frontal camera",
                     "images": "seeded random 8-bit image and renders (geometry cost only)",
                     "num_points_override": args.num_points, "depth_size_override": args.depth_size},
        "official_reference": OFFICIAL_REFERENCE,
        "pseudo_views": pseudo, "steps": steps, "per_image": budgets(steps, pseudo),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    markdown = args.out.with_suffix(".md")
    markdown.write_text(render_markdown(result))
    logger.info("wrote %s and %s", args.out, markdown)
    return 0


# ----------------------------------------------------------------------------------------------
# Summaries


def pseudo_summary(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"pseudo {row['name']} {row.get('mode', '')}: FAILED {row['error']}"
    return (f"pseudo {row['setting']:>8} {row['mode']:>8}: {row['size']} px, {row['num_points']} points | seen_surface "
            f"{row['seen_surface_s']['seconds']:.2f}s, per view {row['per_view_s']['seconds']:.2f}s "
            f"({row['views_timed']} timed), 31 views {row['views_31_s']['seconds']:.1f}s "
            f"[{row['views_31_s']['kind']}] | peak {row['peak_mb']:.0f} MB")


def steps_summary(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"steps {row['name']}: FAILED {row['error']}"
    return (f"steps {row['config']:>12}: projector {row['projector_step_s']['seconds']:.3f}s | tuning "
            f"{row['tuning_step_s']['seconds']:.3f}s | tuning 2 views {row['tuning_step_2views_s']['seconds']:.3f}s | "
            f"forward {row['forward_s']['seconds']:.3f}s | peak {row['peak_mb']:.0f} MB")


def render_markdown(result: dict[str, Any]) -> str:
    env = result["environment"]
    lines = [
        "# HFGI3D per-image cost",
        "",
        f"{env['processor']}, {env['threads']} threads, device {env['device']}, torch {env['torch']}, "
        f"commit {env['git_commit']}, load average before/after {env.get('load_average_before')} / "
        f"{env.get('load_average_after')} (other processes inflate every time). Generators: {env['weights']}; "
        f"LPIPS: {env['lpips']}.",
        "",
        "## Pseudo views (geometry only, one image)",
        "",
        "| setting | mode | px | points | seen_surface s (measured) | per view s (measured) | views timed "
        "| 31 views s | kind |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["pseudo_views"]:
        if "error" not in r:
            lines.append(f"| {r['setting']} | {r['mode']} | {r['size']} | {r['num_points']} | "
                         f"{r['seen_surface_s']['seconds']:.2f} | {r['per_view_s']['seconds']:.2f} | "
                         f"{r['views_timed']} | {r['views_31_s']['seconds']:.1f} | {r['views_31_s']['kind']} |")
    lines += ["", "## Optimisation steps (measured, median after 1 warm-up step)", "",
              "| generator | projector W+ step s | tuning step s | 2-view tuning step s | forward s | peak MB |",
              "|---|---|---|---|---|---|"]
    for r in result["steps"]:
        if "error" not in r:
            lines.append(f"| {r['config']} | {r['projector_step_s']['seconds']:.3f} | "
                         f"{r['tuning_step_s']['seconds']:.3f} | {r['tuning_step_2views_s']['seconds']:.3f} | "
                         f"{r['forward_s']['seconds']:.3f} | {r['peak_mb']:.0f} |")
    lines += ["", "## Seconds per image (extrapolated)", "",
              "| generator | budget | projector | tuning (up to) | 31 renders | pseudo views (official / clean) "
              "| final tuning | total up to (official) | total if tuning stops at once (official) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for config, by_budget in result["per_image"].items():
        for name, b in by_budget.items():
            s, modes = b["stages"], b["by_pseudo_view_mode"]
            pv = " / ".join(f"{modes[m]['pseudo_views']['seconds']:.1f}" for m in ("official", "clean") if m in modes)
            main_mode = modes.get("official") or next(iter(modes.values()))
            lines.append(f"| {config} | {name} | {s['projector']['seconds']:.1f} | "
                         f"{s['tuning_up_to']['seconds']:.1f} | {s['renders']['seconds']:.1f} | {pv} | "
                         f"{s['final_tuning']['seconds']:.1f} | "
                         f"{seconds_text(main_mode['total_up_to']['seconds'])} | "
                         f"{seconds_text(main_mode['total_if_tuning_stops_at_once']['seconds'])} |")
    ref = result["official_reference"]
    lines += ["", "Budgets: " + "; ".join(f"**{k}**: {v['note']}" for k, v in BUDGETS.items()) + ".",
              "Formulas are in the JSON (`formula` of each figure).", "",
              f"Reference ({ref['note']}): {ref['in_n_out_a6000']['source']} = "
              f"{ref['in_n_out_a6000']['seconds_per_frame']:.0f} s per frame on {ref['in_n_out_a6000']['hardware']}; "
              f"{ref['hfgi3d_paper_rtx2080']['source']} on an {ref['hfgi3d_paper_rtx2080']['hardware']}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
