"""HFGI3D's pseudo views with a base commit's geometry code against the current one, in one process.

The pseudo-view speed-up (this commit's parent is the base, 5e2bc48) changed three modules: the rasteriser
(``warpinv/geometry/splat.py``: one candidate search and one sort for both splats of a view, distances computed per
row and column, merges only once the new candidates could fill every pixel slot, ranks by counting), the masks
(``warpinv/geometry/masks.py``: the box erosion as a row then a column minimum) and the pipeline that calls them
(``warpinv/geometry/pseudo_views.py``). This script imports the base's three (``git show REV:path``, the base
pipeline wired to the base rasteriser and masks) next to the current ones and times ``make_pseudo_views`` on the
inputs of ``benchmarks/perf/hfgi3d.py`` (an analytic dome depth, seeded 8-bit image and renders), alternating which
goes first, in both modes; every output (images, masks, warps) must be bit-identical, or the script exits 1.
Settings: ``tiny`` (128 px, 62,500 points, 31 views) and ``released`` (512 px, 1,000,000 points, 2 of the 31
views; ``--views`` sets both). Results: ``benchmarks/results/perf_pseudo_views_ab.json`` / ``.md``.

    python benchmarks/perf/pseudo_views_ab.py                 # about 5 minutes on 2 CPU cores
    python benchmarks/perf/pseudo_views_ab.py --settings tiny --repeats 1 --out runs/ab.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a file: its sibling modules
from hfgi3d import PSEUDO_SETTINGS, TOTAL_VIEWS, dome_depth, eight_bit  # noqa: E402
from perf_common import ROOT, ab_provenance, alternating, load_average, machine_environment, module_at  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "perf_pseudo_views_ab.json"
DEFAULT_BASE = "5e2bc48"


def base_pipeline(rev: str, folder: Path) -> ModuleType:
    """The base commit's ``pseudo_views`` module, calling the base's rasteriser and masks."""
    module_at(rev, "warpinv/geometry/masks.py", "base_masks", folder)
    module_at(rev, "warpinv/geometry/splat.py", "base_splat", folder)
    return module_at(rev, "warpinv/geometry/pseudo_views.py", "base_pseudo_views", folder,
                     imports={"warpinv.geometry.masks": "base_masks", "warpinv.geometry.splat": "base_splat"})


def inputs(setting: str, views: int) -> dict[str, Any]:
    """The same inputs as ``benchmarks/perf/hfgi3d.py``'s pseudo-view groups."""
    from warpinv.cameras import hfgi3d_orbit, yaw_pitch_camera

    size, depth_size = PSEUDO_SETTINGS[setting]["size"], PSEUDO_SETTINGS[setting]["depth_size"]
    rng = torch.Generator().manual_seed(0)
    camera = yaw_pitch_camera(0.0, 0.0)[0]
    cameras = torch.cat([hfgi3d_orbit(), camera[None]])[:views]
    return {"image": eight_bit((3, size, size), rng), "depth": dome_depth(depth_size), "camera": camera,
            "cameras": cameras, "renders": eight_bit((views, 3, size, size), rng)}


def measure(pipelines: dict[str, ModuleType], setting: str, mode: str, views: int, repeats: int) -> dict[str, Any]:
    args = inputs(setting, views)
    times: dict[str, list[float]] = {name: [] for name in pipelines}
    outputs: dict[str, Any] = {}
    for name in alternating(list(pipelines), repeats):
        module = pipelines[name]
        config = module.PseudoViewConfig(mode=mode)
        start = time.perf_counter()
        outputs[name] = module.make_pseudo_views(args["image"], args["depth"], args["camera"], args["cameras"],
                                                 args["renders"], config, torch.Generator().manual_seed(1))
        times[name].append(time.perf_counter() - start)
    identical = all(torch.equal(getattr(outputs["base"], f), getattr(outputs["current"], f))
                    for f in ("images", "masks", "warps"))
    medians = {name: statistics.median(t) for name, t in times.items()}
    return {"setting": setting, "mode": mode, "size": PSEUDO_SETTINGS[setting]["size"], "views": views,
            "num_points": outputs["current"].num_points, "runs_s": times, "median_s": medians,
            "ratio": medians["current"] / medians["base"], "identical": identical}


def markdown(result: dict[str, Any]) -> str:
    env = result["environment"]
    lines = [
        "# HFGI3D pseudo views: a base commit's geometry code against the current one",
        "",
        ab_provenance("benchmarks/perf/pseudo_views_ab.py", env, result["base"])
        + f", {result['repeats']} timed call(s) of `make_pseudo_views` per variant (median); ratio = current / base "
        "(below 1: the current code is faster); identical: images, masks and warps bit for bit.",
        "",
        "| setting | mode | px | points | views | base (s) | current (s) | ratio | identical |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["results"]:
        med = row["median_s"]
        lines.append(f"| {row['setting']} | {row['mode']} | {row['size']} | {row['num_points']} | {row['views']} | "
                     f"{med['base']:.2f} | {med['current']:.2f} | {row['ratio']:.2f}x | {row['identical']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default=DEFAULT_BASE, help="commit whose geometry code to time")
    parser.add_argument("--settings", nargs="+", default=["tiny", "released"], choices=sorted(PSEUDO_SETTINGS))
    parser.add_argument("--modes", nargs="+", default=["official", "clean"], choices=["official", "clean"])
    parser.add_argument("--views", type=int, default=None,
                        help="views timed per call (default: all 31 for tiny, 2 for released)")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per variant (median)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    import warpinv.geometry.pseudo_views as current

    load_before = load_average()
    with tempfile.TemporaryDirectory() as folder:
        pipelines = {"base": base_pipeline(args.base, Path(folder)), "current": current}
        rows = [measure(pipelines, setting, mode, args.views or (TOTAL_VIEWS if setting == "tiny" else 2),
                        args.repeats) for setting in args.settings for mode in args.modes]
    for row in rows:
        print(f"{row['setting']} {row['mode']}: base {row['median_s']['base']:.2f} s, current "
              f"{row['median_s']['current']:.2f} s ({row['ratio']:.2f}x), identical {row['identical']}")
    env = machine_environment("cpu", load_average_before=load_before, load_average_after=load_average())
    result = {"benchmark": "pseudo_views_ab", "base": args.base, "repeats": args.repeats, "environment": env,
              "results": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    return 0 if all(row["identical"] for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
