"""Backbone performance: forward, forward+backward to ws, peak memory, and the per-stage split.

Measures the ``tiny`` and the full ``ffhq512-128`` architectures with **random weights** (speed and
memory do not depend on the weight values) at batch 1 and 4, each configuration in a fresh
subprocess so peak memory is its own. Writes ``benchmarks/results/perf_backbone.json`` with the
device, thread count, torch version and git commit.

    python benchmarks/perf/backbone.py                  # everything (several minutes on 2 CPU cores)
    python benchmarks/perf/backbone.py --configs tiny --batches 1 --out runs/perf.json

The official code is timed beside ours, same weights and same process, by ``versus_official.py``; every
comparison with it comes from there.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a file: its sibling module
from perf_common import ROOT, machine_environment, peak_memory_mb, run_json_child, timed_once  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "perf_backbone.json"


def frontal_label(n: int, device: torch.device) -> torch.Tensor:
    from warpinv.cameras import yaw_pitch_camera

    return yaw_pitch_camera(0.0, 0.0).reshape(1, 25).repeat(n, 1).to(device)


def timed(fn: Callable[[], Any], repeats: int, device: torch.device) -> tuple[list[float], Any]:
    """One warm-up call, then ``repeats`` timed calls (seconds each)."""
    result = fn()
    times = []
    for _ in range(repeats):
        seconds, result = timed_once(fn, device)
        times.append(seconds)
    return times, result


def measure(config: str, batch: int, repeats: int, device: torch.device, backward: bool) -> dict[str, Any]:
    """All measurements of one (architecture, batch) in this process."""
    from warpinv.backbone import build_random, build_tiny

    G = (build_tiny() if config == "tiny" else build_random(config)).to(device).eval().requires_grad_(False)
    z = torch.randn(batch, G.z_dim, generator=torch.Generator().manual_seed(0)).to(device)
    c = frontal_label(batch, device)
    baseline_mb = peak_memory_mb(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with torch.no_grad():
        forward, _ = timed(lambda: G(z, c, noise_mode="const"), repeats, device)
        ws = G.mapping(z, c)
        t_map, _ = timed(lambda: G.mapping(z, c), repeats, device)
        t_backbone, planes = timed(lambda: G.planes(ws, noise_mode="const"), repeats, device)
        origins, dirs = G.rays(c, G.neural_rendering_resolution)
        t_render, out = timed(lambda: G.renderer(planes, G.decoder, origins, dirs, G.rendering_kwargs), repeats, device)
        res = G.neural_rendering_resolution
        feats = out.features.permute(0, 2, 1).reshape(batch, -1, res, res)
        t_sr, _ = timed(lambda: G.superresolve(feats[:, :3], feats, ws), repeats, device)
    forward_peak = peak_memory_mb(device)
    row: dict[str, Any] = {
        "config": config,
        "batch": batch,
        "repeats": repeats,
        "forward_s": statistics.median(forward),
        "forward_runs_s": forward,
        "split_s": {"mapping": statistics.median(t_map), "backbone": statistics.median(t_backbone),
                    "renderer": statistics.median(t_render), "superresolution": statistics.median(t_sr)},
        "peak_mb_forward": forward_peak,
        "model_mb": baseline_mb,
    }
    if backward:
        def step() -> None:
            w = ws.detach().requires_grad_(True)
            img = G.synthesis(w, c, noise_mode="const")["image"]
            img.square().mean().backward()

        fb, _ = timed(step, max(1, repeats - 1), device)
        row["forward_backward_ws_s"] = statistics.median(fb)
        row["peak_mb_forward_backward"] = peak_memory_mb(device)
    return row


def run_child(args: argparse.Namespace, config: str, batch: int) -> dict[str, Any]:
    child = [__file__, "--child", config, str(batch), "--repeats", str(args.repeats), "--device", args.device]
    child += (["--no-backward"] if args.no_backward else []) + (["--no-malloc-tuning"] if args.no_malloc_tuning else [])
    return run_json_child(child, {"config": config, "batch": batch}, error_lines=1)


def environment(device: str) -> dict[str, Any]:
    return machine_environment(device, weights="random (speed and memory do not depend on weight values)",
                               memory="CPU: process peak RSS (ru_maxrss) incl. the model; CUDA: torch "
                                      "max_memory_allocated")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["tiny", "ffhq512-128"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 4])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--no-backward", action="store_true", help="skip forward+backward timing")
    parser.add_argument("--no-malloc-tuning", action="store_true", help="keep glibc's default allocator settings")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--child", nargs=2, metavar=("CONFIG", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        from warpinv.backbone.runtime import tune_cpu_allocator

        tuned = False if args.no_malloc_tuning else tune_cpu_allocator()
        row = measure(args.child[0], int(args.child[1]), args.repeats, torch.device(args.device), not args.no_backward)
        row["malloc_tuning"] = tuned
        print(json.dumps(row))
        return 0
    rows = []
    for config in args.configs:
        for batch in args.batches:
            row = run_child(args, config, batch)
            rows.append(row)
            print(_summary(row), flush=True)
    result = {"benchmark": "backbone", "environment": environment(args.device),
              "results": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


def _summary(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"{row['config']:>12} b{row['batch']}: FAILED {row['error']}"
    s = row["split_s"]
    fb = f" fwd+bwd {row['forward_backward_ws_s']:.2f}s" if "forward_backward_ws_s" in row else ""
    return (f"{row['config']:>12} b{row['batch']}: forward {row['forward_s']:.2f}s{fb} | mapping {s['mapping']:.3f} "
            f"backbone {s['backbone']:.2f} renderer {s['renderer']:.2f} sr {s['superresolution']:.2f} | "
            f"peak {row.get('peak_mb_forward_backward', row['peak_mb_forward']):.0f} MB")


if __name__ == "__main__":
    raise SystemExit(main())
