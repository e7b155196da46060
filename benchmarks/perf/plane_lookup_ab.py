"""The tiny generator's inversion step with a base commit's plane lookup against the current one, in one process.

Issue 16 changed the tri-plane lookup (``TexelTable`` / ``plane_grid_sample`` of ``warpinv/backbone/ops.py``),
the plane mean (``mean_over_planes``, and the fused ``sample_plane_mean`` the decoder now reads, in
``warpinv/backbone/renderer.py``) and the FIR padding (``upfirdn2d``). This script loads those of ``--base``
(``git show REV:path``, default 97de300, the last commit before the change) next to the current ones (the base
reads the plane mean in its two steps), swaps them in and out of the renderer, and times
``synthesis`` forward and forward + backward to ``ws`` (the inversion step of W / W+ / PTI) on the ``tiny``
generator, alternating which goes first. Its outputs agree to float rounding; the result
(``benchmarks/results/perf_plane_lookup_ab.json`` / ``.md``) records every time, the machine and its load.

    python benchmarks/perf/plane_lookup_ab.py
    python benchmarks/perf/plane_lookup_ab.py --batches 1 --repeats 9 --out runs/ab.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a file: its sibling module
from perf_common import (  # noqa: E402
    ROOT,
    ab_provenance,
    alternating,
    load_average,
    machine_environment,
    module_at,
)

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "perf_plane_lookup_ab.json"
DEFAULT_BASE = "97de300"


class Variants:
    """Swaps a commit's lookup, plane mean and FIR into the renderer and the ops module."""

    def __init__(self, base: str, folder: Path) -> None:
        import warpinv.backbone.ops as ops
        import warpinv.backbone.renderer as renderer

        self.ops, self.renderer = ops, renderer
        old_ops = module_at(base, "warpinv/backbone/ops.py", "base_ops", folder)
        old_renderer = module_at(base, "warpinv/backbone/renderer.py", "base_renderer", folder)

        class BaseTable(old_ops.TexelTable):  # type: ignore[name-defined, misc]
            @classmethod
            def for_lookups(cls, planes: torch.Tensor, points: int) -> Any:
                del points
                return cls(planes)

        def base_plane_mean(planes: torch.Tensor, coordinates: torch.Tensor, box_warp: float,
                            texels: Any = None, plane_axes: Any = renderer.PLANE_AXES) -> torch.Tensor:
            """The base's two steps: per-plane lookup, then the plane mean."""
            features = renderer.sample_from_planes(planes, coordinates, box_warp, texels, plane_axes)
            return old_renderer.mean_over_planes(features)

        self.sets = {
            "base": (BaseTable, old_ops.plane_grid_sample, old_renderer.mean_over_planes, base_plane_mean,
                     old_ops.upfirdn2d),
            "current": (ops.TexelTable, ops.plane_grid_sample, renderer.mean_over_planes, renderer.sample_plane_mean,
                        ops.upfirdn2d),
        }

    def use(self, name: str) -> None:
        table, lookup, mean, plane_mean, fir = self.sets[name]
        self.renderer.TexelTable, self.renderer.plane_grid_sample = table, lookup
        self.renderer.mean_over_planes, self.renderer.sample_plane_mean = mean, plane_mean
        self.ops.upfirdn2d = fir


def step_calls(batch: int) -> dict[str, Callable[[], torch.Tensor]]:
    from warpinv.backbone import build_tiny
    from warpinv.cameras import yaw_pitch_camera

    G = build_tiny().eval().requires_grad_(False)
    c = yaw_pitch_camera(0.3, 0.1).reshape(1, 25).repeat(batch, 1)
    ws = G.mapping(torch.randn(batch, G.z_dim, generator=torch.Generator().manual_seed(0)), c)

    def forward() -> torch.Tensor:
        with torch.no_grad():
            torch.manual_seed(0)
            return G.synthesis(ws, c, noise_mode="const")["image"]

    def forward_backward() -> torch.Tensor:
        w = ws.detach().requires_grad_(True)
        torch.manual_seed(0)
        G.synthesis(w, c, noise_mode="const")["image"].square().mean().backward()
        assert w.grad is not None
        return w.grad

    return {"forward": forward, "forward_backward": forward_backward}


def measure(variants: Variants, batch: int, repeats: int) -> list[dict[str, Any]]:
    rows = []
    for stage, call in step_calls(batch).items():
        outputs, times = {}, {name: [] for name in variants.sets}
        for name in variants.sets:
            variants.use(name)
            outputs[name] = call()
        for name in alternating(list(variants.sets), repeats):
            variants.use(name)
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
        medians = {name: statistics.median(t) for name, t in times.items()}
        rows.append({"config": "tiny", "batch": batch, "stage": stage, "runs_s": times, "median_s": medians,
                     "ratio": medians["current"] / medians["base"],
                     "max_abs_diff": float((outputs["current"] - outputs["base"]).abs().max())})
    variants.use("current")
    return rows


def markdown(result: dict[str, Any]) -> str:
    env = result["environment"]
    lines = [
        "# Tiny inversion step: the plane lookup of a base commit against the current one",
        "",
        ab_provenance("benchmarks/perf/plane_lookup_ab.py", env, result["base"])
        + "; ratio = current / base (below 1: the current code is faster).",
        "",
        "| config | batch | step | base (ms) | current (ms) | ratio | max abs diff |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in result["results"]:
        med = row["median_s"]
        lines.append(f"| {row['config']} | {row['batch']} | {row['stage'].replace('_', ' + ')} | "
                     f"{1000 * med['base']:.1f} | {1000 * med['current']:.1f} | {row['ratio']:.3f}x | "
                     f"{row['max_abs_diff']:.1e} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default=DEFAULT_BASE, help="commit whose lookup, plane mean and FIR to time")
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 4])
    parser.add_argument("--repeats", type=int, default=15, help="timed calls per variant and step (median)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    from warpinv.backbone.runtime import tune_cpu_allocator

    tune_cpu_allocator()
    load_before = load_average()
    with tempfile.TemporaryDirectory() as folder:
        variants = Variants(args.base, Path(folder))
        rows = [row for batch in args.batches for row in measure(variants, batch, args.repeats)]
    for row in rows:
        print(f"tiny b{row['batch']} {row['stage']}: base {1000 * row['median_s']['base']:.1f} ms, current "
              f"{1000 * row['median_s']['current']:.1f} ms ({row['ratio']:.3f}x), diff {row['max_abs_diff']:.1e}")
    env = machine_environment("cpu", load_average_before=load_before, load_average_after=load_average())
    result = {"benchmark": "plane_lookup_ab", "base": args.base, "environment": env, "results": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
