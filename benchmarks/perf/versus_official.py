"""Our EG3D generator against the official code, side by side: same weights, same inputs, interleaved calls.

Takes a checkout of NVlabs/eg3d (``--official PATH``, the repository root or its ``eg3d/`` folder; never vendored
here, its licence is non-commercial), builds the official ``TriPlaneGenerator`` from the same constructor kwargs as
ours, loads our seeded random state dict into it strictly, checks that both produce the same outputs (same seed
for the renderer's random depths), then times both in the same process, alternating which goes first:

- forward: ``G(z, c)`` and its stages ``mapping``, ``backbone`` (the tri-planes), ``renderer``, ``superresolution``;
- forward + backward to ``ws``: ``synthesis(ws, c)["image"]``, then the gradient of the squared mean.

Each (config, batch) runs in its own subprocess. The result (``benchmarks/results/perf_versus_official.json`` and
``.md``) records the machine, the load average before and after, both commits and every single time. Every speed
figure in a README comes from this benchmark's latest committed run.

    python benchmarks/perf/versus_official.py --official ../eg3d
    python benchmarks/perf/versus_official.py --official ../eg3d --configs tiny --batches 1 --repeats 3

Weights are seeded random numbers shaped like a trained model's (``randomize_like_trained``): speed does not
depend on their values, and structured scenes make the agreement check meaningful. Both run in fp32 with
``noise_mode='const'``; on a CPU the official SR forces fp32 by itself, on CUDA it computes its fp16 blocks in fp16
(so the agreement check then allows fp16 rounding).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a file: its sibling module
from perf_common import (  # noqa: E402
    ROOT,
    git_commit,
    load_average,
    machine_environment,
    run_json_child,
    timed_once,
)

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "perf_versus_official.json"
STAGES = ("mapping", "backbone", "renderer", "superresolution")
#: Largest absolute difference of the final images (in [-1, 1]) accepted as "the same outputs": fp32 with another
#: summation order on a CPU, fp16 SR blocks on CUDA.
AGREEMENT_ATOL = {"cpu": 1e-3, "cuda": 5e-2}
SEED = 0


def official_root(path: Path) -> Path:
    """The folder holding the official ``training/triplane.py`` (``path`` or ``path/eg3d``)."""
    for root in (path / "eg3d", path):
        if (root / "training" / "triplane.py").is_file():
            return root.resolve()
    raise SystemExit(f"--official {path}: no training/triplane.py there or in its eg3d/ folder; pass a checkout of "
                     "https://github.com/NVlabs/eg3d (git clone https://github.com/NVlabs/eg3d)")


def import_official_generator(root: Path) -> type:
    """``training.triplane.TriPlaneGenerator`` of the checkout, imported from its own folder."""
    sys.path.insert(0, str(root))
    try:
        from training.triplane import TriPlaneGenerator  # type: ignore[import-not-found]
    except ImportError as error:
        raise SystemExit(f"cannot import the official generator from {root}: {error} "
                         "(install what it names)") from error
    return TriPlaneGenerator


class Pair:
    """The two generators of one config with the same weights, and one stage call per side."""

    def __init__(self, config: str, batch: int, device: torch.device, official_cls: type) -> None:
        from warpinv.backbone import build_tiny
        from warpinv.backbone.loading import build_generator
        from warpinv.backbone.presets import get_preset, randomize_like_trained
        from warpinv.cameras import yaw_pitch_camera

        preset = get_preset(config)
        if config == "tiny":
            ours = build_tiny()
        else:
            with _seeded(SEED):
                ours = build_generator(preset.kwargs(), preset.neural_rendering_resolution)
            randomize_like_trained(ours, SEED)
        official = official_cls(**preset.kwargs())
        official.neural_rendering_resolution = preset.neural_rendering_resolution
        official.load_state_dict(ours.state_dict(), strict=True)
        self.models = {name: m.to(device).eval().requires_grad_(False)
                       for name, m in (("official", official), ("ours", ours))}
        self.device = device
        self.z = torch.randn(batch, ours.z_dim, generator=torch.Generator().manual_seed(SEED)).to(device)
        self.c = yaw_pitch_camera(0.3, 0.1).reshape(1, 25).repeat(batch, 1).to(device)
        self.inputs = {name: self._stage_inputs(name) for name in self.models}

    def _stage_inputs(self, name: str) -> dict[str, Tensor]:
        """Every stage's input, computed once by that side (so a stage's time is its own)."""
        with torch.no_grad(), _seeded(SEED):
            ws = self.mapping(name)
            planes = self.backbone(name, ws)
            features = self.renderer(name, planes)
        return {"ws": ws, "planes": planes, "features": features}

    def mapping(self, name: str) -> Tensor:
        return self.models[name].mapping(self.z, self.c)

    def backbone(self, name: str, ws: Tensor) -> Tensor:
        G = self.models[name]
        if name == "ours":
            return G.planes(ws, noise_mode="const")
        planes = G.backbone.synthesis(ws, noise_mode="const")
        return planes.view(len(planes), 3, 32, planes.shape[-2], planes.shape[-1])

    def renderer(self, name: str, planes: Tensor) -> Tensor:
        """Planes -> the raw feature image ``(N, 32, R, R)``."""
        G = self.models[name]
        res = G.neural_rendering_resolution
        if name == "ours":
            origins, dirs = G.rays(self.c, res)
        else:
            origins, dirs = G.ray_sampler(self.c[:, :16].view(-1, 4, 4), self.c[:, 16:25].view(-1, 3, 3), res)
        features, _, _ = G.renderer(planes, G.decoder, origins, dirs, G.rendering_kwargs)
        return features.permute(0, 2, 1).reshape(len(planes), features.shape[-1], res, res).contiguous()

    def superresolution(self, name: str, features: Tensor, ws: Tensor) -> Tensor:
        G = self.models[name]
        if name == "ours":
            return G.superresolve(features[:, :3], features, ws)
        return G.superresolution(features[:, :3], features, ws,
                                 noise_mode=G.rendering_kwargs["superresolution_noise_mode"])

    def forward(self, name: str) -> Tensor:
        return self.models[name](self.z, self.c, noise_mode="const")["image"]

    def forward_backward(self, name: str) -> Tensor:
        ws = self.inputs[name]["ws"].detach().requires_grad_(True)
        image = self.models[name].synthesis(ws, self.c, noise_mode="const")["image"]
        image.square().mean().backward()
        assert ws.grad is not None
        return ws.grad

    def stage_calls(self, name: str) -> dict[str, Callable[[], Any]]:
        x = self.inputs[name]
        return {
            "mapping": lambda: self.mapping(name),
            "backbone": lambda: self.backbone(name, x["ws"]),
            "renderer": lambda: self.renderer(name, x["planes"]),
            "superresolution": lambda: self.superresolution(name, x["features"], x["ws"]),
            "forward": lambda: self.forward(name),
        }


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """The global RNG seeded (the renderers draw their random depths from it), restored afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def agreement(pair: Pair) -> dict[str, float]:
    """Largest absolute difference of every stage's output and of the image gradient, official vs ours."""
    out: dict[str, float] = {}
    a, b = pair.inputs["official"], pair.inputs["ours"]
    for key in ("ws", "planes", "features"):
        out[key] = float((a[key] - b[key]).abs().max())
    with torch.no_grad():
        sr = [pair.superresolution(name, pair.inputs["ours"]["features"], pair.inputs["ours"]["ws"])
              for name in ("official", "ours")]
        out["superresolution"] = float((sr[0] - sr[1]).abs().max())
        with _seeded(SEED):
            first = pair.forward("official")
        with _seeded(SEED):
            second = pair.forward("ours")
        out["image"] = float((first - second).abs().max())
    grads = []
    for name in ("official", "ours"):
        with _seeded(SEED):
            grads.append(pair.forward_backward(name))
    out["ws_grad_relative"] = float((grads[0] - grads[1]).abs().max() / grads[0].abs().max().clamp_min(1e-30))
    return out


def interleaved(calls: dict[str, Callable[[], Any]], repeats: int, device: torch.device,
                grad: bool) -> dict[str, list[float]]:
    """One warm-up call of each side, then ``repeats`` rounds alternating which side goes first."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    order = list(calls)
    context = contextlib.nullcontext if grad else torch.no_grad
    with context():
        for name in order:
            with _seeded(SEED):
                calls[name]()
        for r in range(repeats):
            for name in (order if r % 2 == 0 else order[::-1]):
                with _seeded(SEED):
                    times[name].append(timed_once(calls[name], device)[0])
    return times


def measure(config: str, batch: int, repeats: int, device: torch.device, official_cls: type,
            backward: bool) -> dict[str, Any]:
    """Agreement and interleaved times of one (config, batch) in this process."""
    pair = Pair(config, batch, device, official_cls)
    row: dict[str, Any] = {"config": config, "batch": batch, "repeats": repeats, "max_abs_diff": agreement(pair)}
    calls = {name: pair.stage_calls(name) for name in pair.models}
    runs: dict[str, dict[str, list[float]]] = {"official": {}, "ours": {}}
    for stage in ("forward", *STAGES):
        for name, t in interleaved({n: calls[n][stage] for n in calls}, repeats, device, grad=False).items():
            runs[name][stage] = t
    if backward:
        fb = {name: (lambda n=name: pair.forward_backward(n)) for name in pair.models}
        for name, t in interleaved(fb, max(1, repeats - 1), device, grad=True).items():
            runs[name]["forward_backward"] = t
    row["runs_s"] = runs
    row["median_s"] = {name: {k: statistics.median(v) for k, v in stages.items()} for name, stages in runs.items()}
    row["ratio"] = {k: row["median_s"]["ours"][k] / row["median_s"]["official"][k] for k in runs["ours"]}
    return row


def run_child(args: argparse.Namespace, config: str, batch: int) -> dict[str, Any]:
    child = [__file__, "--official", str(args.official), "--child", config, str(batch), "--repeats",
             str(args.repeats), "--device", args.device] + (["--no-backward"] if args.no_backward else [])
    return run_json_child(child, {"config": config, "batch": batch})


def check_agreement(row: dict[str, Any], device: str) -> str | None:
    """Why the two sides of ``row`` do not agree, or ``None``."""
    tol = AGREEMENT_ATOL["cuda" if device.startswith("cuda") else "cpu"]
    diff = row["max_abs_diff"]["image"]
    return None if diff <= tol else f"images differ by {diff:.2e} > {tol:.0e}"


def markdown(result: dict[str, Any]) -> str:
    """The committed table: per (config, batch), official and our median seconds and their ratio per stage."""
    env = result["environment"]
    lines = [
        "# warpinv vs official EG3D, side by side",
        "",
        f"Written by `benchmarks/perf/versus_official.py`. Machine: {env['processor']}, {env['threads']} torch "
        f"threads, device `{env['device']}`{', ' + env['gpu'] if 'gpu' in env else ''}; torch {env['torch']}; "
        f"warpinv {env['git_commit']}, official NVlabs/eg3d {env['official_commit']}; load average before "
        f"{env['load_average_before']}, after {env['load_average_after']}. Same random weights in both, "
        "interleaved calls, median of each side's runs; ratio = ours / official (below 1: ours is faster).",
        "",
        "| config | batch | stage | official (s) | warpinv (s) | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["results"]:
        if "error" in row:
            lines.append(f"| {row['config']} | {row['batch']} | FAILED: {' '.join(row['error'])} | | | |")
            continue
        med = row["median_s"]
        for stage in ("forward", *STAGES, "forward_backward"):
            if stage in row["ratio"]:
                bold = "**" if stage in ("forward", "forward_backward") else ""
                lines.append(f"| {row['config']} | {row['batch']} | {bold}{stage.replace('_', ' + ')}{bold} | "
                             f"{med['official'][stage]:.3f} | {med['ours'][stage]:.3f} | "
                             f"{bold}{row['ratio'][stage]:.2f}x{bold} |")
    lines += ["", "Largest absolute differences, official vs ours (image in [-1, 1]; the ws gradient relative):", ""]
    for row in result["results"]:
        if "error" not in row:
            diffs = ", ".join(f"{k} {v:.1e}" for k, v in row["max_abs_diff"].items())
            lines.append(f"- {row['config']} batch {row['batch']}: {diffs}")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", type=Path, required=True, help="checkout of NVlabs/eg3d (root or eg3d/)")
    parser.add_argument("--configs", nargs="+", default=["ffhq512-128", "tiny"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 4])
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per stage (median)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--no-backward", action="store_true", help="skip forward+backward timing")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON result (the table goes beside it, .md)")
    parser.add_argument("--child", nargs=2, metavar=("CONFIG", "BATCH"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = official_root(args.official)
    if args.child:
        from warpinv.backbone.runtime import tune_cpu_allocator

        tune_cpu_allocator()
        row = measure(args.child[0], int(args.child[1]), args.repeats, torch.device(args.device),
                      import_official_generator(root), not args.no_backward)
        print(json.dumps(row))
        return 0
    load_before = load_average()
    rows = []
    for config in args.configs:
        for batch in args.batches:
            row = run_child(args, config, batch)
            rows.append(row)
            print(summary(row), flush=True)
    env = machine_environment(args.device, official_commit=git_commit(root), load_average_before=load_before,
                              load_average_after=load_average(),
                              weights="seeded random, shaped like a trained model (randomize_like_trained)",
                              malloc_tuning="warpinv.backbone.runtime.tune_cpu_allocator, for both sides")
    result = {"benchmark": "versus_official", "environment": env, "results": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    failures = [f"{r['config']} b{r['batch']}: {r.get('error') or check_agreement(r, args.device)}" for r in rows
                if "error" in r or check_agreement(r, args.device)]
    if failures:
        print("FAILED: " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0


def summary(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"{row['config']:>12} b{row['batch']}: FAILED {row['error']}"
    r, med = row["ratio"], row["median_s"]
    parts = [f"{k} {med['official'][k]:.2f}/{med['ours'][k]:.2f}s ({r[k]:.2f}x)" for k in r]
    diff = row["max_abs_diff"]["image"]
    return f"{row['config']:>12} b{row['batch']}: " + ", ".join(parts) + f" | image diff {diff:.1e}"


if __name__ == "__main__":
    raise SystemExit(main())
