"""How much In-N-Out's released quirks change its renders: ``official`` settings against the corrected ones.

The three quirks (``../shared/fixtures/in_n_out/README.md`` facts 6, 10 and 1):

- ``pairing``: the OOD field re-sorts its samples by its own importance draw, so the composite pairs samples of
  different points (``official``) instead of each point with itself (``matched``);
- ``removal_clamp``: OOD removal scales every blend by 1.2 without a clamp, so blends reach 1.2 and composite
  weights turn negative (``False``) instead of clamping to ``[0, 1]`` (``True``);
- ``depth_clamp``: the composite depth is clamped to the range of all depths of the render (``batch``) instead of
  each ray's own (``ray``).

Measured on two scenes, each quirk switched alone (the others official), for the plain composite and for the
OOD-removal render:

1. ``fixture``: the released ``ComposeTriplane`` inputs of ``compose_pipeline_io.safetensors`` (8x8 rays, random
   planes and decoders as recorded; its stored OOD mask for removal);
2. ``tiny``: an In-N-Out fit on the tiny generator (the default suite's budget) of the first occluded image of
   ``runs/data/synthetic-tiny-ood`` (built when missing), rendered at the input view and at 6 novel views.

Reported: max and mean absolute difference of the raw composite image (``[-1, 1]``) and depth, and for ``tiny`` the
PSNR of the SR image of the corrected setting against the official one. Output: ``benchmarks/results/
in_n_out_quirks.json`` and ``.md``.

    python benchmarks/in_n_out_quirks.py            # about a minute on 2 CPU cores
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "in_n_out_quirks.json"
logger = logging.getLogger("in_n_out_quirks")

#: Each quirk: (config field, official value, corrected value).
QUIRKS = (("pairing", "official", "matched"), ("removal_clamp", False, True), ("depth_clamp", "batch", "ray"))


def _differences(official: dict[str, torch.Tensor], other: dict[str, torch.Tensor]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in ("image_raw", "image_depth"):
        diff = (official[key] - other[key]).abs()
        out[f"{key}_max_abs"] = float(diff.max())
        out[f"{key}_mean_abs"] = float(diff.mean())
    if "image" in official:
        mse = float((official["image"] - other["image"]).square().mean())
        out["image_psnr_vs_official"] = math.inf if mse == 0 else 10 * math.log10(4.0 / mse)
    return out


def fixture_scene() -> dict[str, Any]:
    """Raw composite renders of the compose fixture under each setting (plain and with removal)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from warpinv.backbone.presets import get_preset
    from warpinv.backbone.renderer import ImportanceRenderer, OSGDecoder
    from warpinv.cameras.labels import unpack_label
    from warpinv.cameras.rays import generate_rays
    from warpinv.methods.in_n_out.composite import render_fields
    from warpinv.methods.in_n_out.networks import OODField
    from warpinv.methods.in_n_out.removal import ood_rays, remove_ood
    folder = Path(os.environ.get("WARPINV_FIXTURES", ROOT.parent / "shared" / "fixtures")) / "in_n_out"
    with safe_open(str(folder / "compose_pipeline_io.safetensors"), "pt") as f:
        io = {k: f.get_tensor(k) for k in f.keys()}
        res = int((f.metadata() or {})["neural_rendering_resolution"])
    weights = load_file(str(folder / "ood_decoder_weights.safetensors"))
    coarse, fine = io["ind_depths_coarse"], io["ind_depths_fine"]
    options = get_preset("ffhq512-128").kwargs()["rendering_kwargs"]
    options.update(ray_start=float(coarse[0, 0, 0, 0]), ray_end=float(coarse[0, 0, -1, 0]),
                   depth_resolution=coarse.shape[2], depth_resolution_importance=fine.shape[2])
    planes = io["in_planes_ind"]
    decoder = OSGDecoder(planes.shape[1] // 3, output_dim=io["ind_colors_sorted"].shape[-1])
    decoder.load_state_dict({k.removeprefix("w_G.decoder."): v for k, v in io.items() if k.startswith("w_G.decoder.")})
    ood = OODField(channels=io["in_planes_ood"].shape[2], resolution=io["in_planes_ood"].shape[-1])
    ood.load_state_dict({"triplanes": io["in_planes_ood"],
                         **{k.removeprefix("new_triplanes."): v for k, v in weights.items()}})
    origins, directions = generate_rays(*unpack_label(io["in_c"]), res)
    rays = ImportanceRenderer().sample_rays(planes.view(1, 3, -1, *planes.shape[-2:]), decoder, origins, directions,
                                            options, deterministic=True)
    removed = ood_rays(1 - io["in_masks"], res)

    def render(settings: dict[str, Any], removal: bool) -> dict[str, torch.Tensor]:
        edit = (lambda b: remove_ood(b, removed, clamp=settings["removal_clamp"])) if removal else None
        with torch.no_grad():
            out = render_fields(rays, lambda x: ood.evaluate(x, io["in_phi"], options), origins, directions, options,
                                pairing=settings["pairing"], depth_clamp=settings["depth_clamp"], blend_edit=edit,
                                deterministic=True)
        image = out.features[..., :3].permute(0, 2, 1).reshape(1, 3, res, res).clamp(-1, 1)
        return {"image_raw": image, "image_depth": out.depth.permute(0, 2, 1).reshape(1, 1, res, res)}

    return {"render": render, "rays": res * res}


def tiny_scene(data_root: Path) -> dict[str, Any]:
    """An In-N-Out fit of the first occluded image at the default suite's budget, rendered under each setting."""
    from warpinv.backbone import load_generator
    from warpinv.config import load_yaml
    from warpinv.data import InversionDataset, collate, make_synthetic_multiview
    from warpinv.methods import build_method, split_batch
    from warpinv.methods.in_n_out.views import CompositeViewRenderer

    if not (data_root / "dataset.json").exists():
        make_synthetic_multiview(data_root, n=4, occluders=2)
    G = load_generator("tiny")
    suite = load_yaml(ROOT / "experiments" / "bench" / "default_ood.yaml")
    base = {**suite["methods"]["in_n_out"]["config"], "allow_random_lpips": True}
    method = build_method("in_n_out", base, G)
    item = split_batch(collate([InversionDataset(data_root)[0]]))[0]
    start = time.perf_counter()
    outcome = method.invert_item(item)
    assert outcome.inversion is not None, outcome.error
    fit_seconds = time.perf_counter() - start
    cameras = torch.cat([item.camera, item.extras["novel_cameras"][0]])

    def render(settings: dict[str, Any], removal: bool) -> dict[str, torch.Tensor]:
        config = dataclasses.replace(method.config, **settings)
        renderer = CompositeViewRenderer(G, outcome.inversion, config)
        return renderer.without_ood(cameras) if removal else renderer(cameras)

    return {"render": render, "fit_seconds": fit_seconds, "views": int(cameras.shape[0])}


def measure(scene: dict[str, Any]) -> list[dict[str, Any]]:
    official = {name: value for name, value, _ in QUIRKS}
    rows = []
    for removal in (False, True):
        reference = scene["render"](official, removal)
        for name, _, corrected in QUIRKS:
            if name == "removal_clamp" and not removal:
                continue  # the clamp only acts on removal
            other = scene["render"]({**official, name: corrected}, removal)
            rows.append({"quirk": name, "corrected": corrected, "render": "ood_removal" if removal else "composite",
                         **_differences(reference, other)})
    return rows


def markdown(result: dict[str, Any]) -> str:
    lines = ["# In-N-Out: released quirks against the corrected settings", "",
             f"{result['date']}, {result['device']}, torch {result['torch']}. Each quirk switched alone; values are "
             "differences of the corrected render from the official one (raw image in [-1, 1]).", ""]
    for scene, rows in result["scenes"].items():
        lines += [f"## {scene}: {result['scene_notes'][scene]}", "",
                  "| quirk | render | raw max abs | raw mean abs | depth max abs | depth mean abs "
                  "| SR PSNR vs official |",
                  "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
        for r in rows:
            psnr = r.get("image_psnr_vs_official")
            psnr_text = "n/a" if psnr is None else ("identical" if math.isinf(psnr) else f"{psnr:.1f} dB")
            lines.append(f"| {r['quirk']} -> {r['corrected']} | {r['render']} | {r['image_raw_max_abs']:.2e} | "
                         f"{r['image_raw_mean_abs']:.2e} | {r['image_depth_max_abs']:.2e} | "
                         f"{r['image_depth_mean_abs']:.2e} | {psnr_text} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--data", type=Path, default=ROOT / "runs" / "data" / "synthetic-tiny-ood")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    fixture, tiny = fixture_scene(), tiny_scene(args.data)
    result = {
        "date": time.strftime("%Y-%m-%d"), "device": "CPU", "torch": torch.__version__,
        "scenes": {"fixture": measure(fixture), "tiny": measure(tiny)},
        "scene_notes": {
            "fixture": (f"the released ComposeTriplane inputs of compose_pipeline_io ({fixture['rays']} rays, "
                        "stored mask)"),
            "tiny": (f"In-N-Out fitted at the default_ood budget ({tiny['fit_seconds']:.0f} s) to the first occluded "
                     f"image of {args.data.name}, rendered at the input and 6 novel views ({tiny['views']} views; "
                     "removal away from the input view sets b = 0 in every setting)"),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result) + "\n")
    logger.info("wrote %s and %s", args.out, args.out.with_suffix(".md"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
