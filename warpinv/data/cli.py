"""``warpinv data ...``: prepare photos, validate folders, build splits, render the synthetic set.

The main ``warpinv`` command mounts this with :func:`add_data_parser`; every handler is stored as
``func`` on the namespace and returns an exit code. :func:`run_data_cli` runs the group on its own.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

__all__ = ["add_data_parser", "run_data_cli"]

Handler = Callable[[argparse.Namespace], int]


def _out(ns: argparse.Namespace) -> TextIO:
    return getattr(ns, "stream", None) or sys.stdout


def _help_handler(parser: argparse.ArgumentParser) -> Handler:
    def handler(ns: argparse.Namespace) -> int:
        parser.print_help(_out(ns))
        return 0

    return handler


def add_data_parser(subparsers: Any) -> None:
    """Register ``data`` and its subcommands on an ``argparse`` subparsers object."""
    parser = subparsers.add_parser("data", help="prepare face photos, validate datasets, splits, synthetic set",
                                   description="EG3D-format datasets: prepare raw face photos, validate a folder, "
                                               "build the CelebA-HQ test splits, render the synthetic multi-view set.")
    parser.set_defaults(func=_help_handler(parser))
    sub = parser.add_subparsers(dest="data_command", metavar="{prepare,validate,celebahq-split,synth}")

    p = sub.add_parser("prepare", help="face photos -> EG3D crops + cameras + dataset.json (+ report)",
                       description="Detect (MTCNN), crop as EG3D's in-the-wild pipeline, estimate cameras "
                                   "from 5 landmarks, write DST/dataset.json and DST/prepare_report.json. "
                                   "Every input gets a status; reruns skip files already prepared.")
    p.add_argument("src", metavar="SRC", help="folder of photos (searched recursively)")
    p.add_argument("dst", metavar="DST", help="output folder (created; an earlier run there is resumed)")
    p.add_argument("--refine", action="store_true",
                   help="record that methods supporting camera refinement should refine these cameras")
    p.add_argument("--multiple-faces", choices=("largest", "refuse"), default="largest",
                   help="with several faces: prepare the largest (default, as EG3D) or refuse the photo")
    p.add_argument("--min-confidence", type=float, default=0.9, metavar="P",
                   help="smallest MTCNN face probability that counts (default 0.9, as EG3D)")
    p.add_argument("--min-face-size", type=float, default=20.0, metavar="PX",
                   help="smallest face box side in photo pixels that is prepared (default and minimum 20, "
                        "MTCNN's detection minimum)")
    p.add_argument("--low-resolution-face-size", type=float, default=64.0, metavar="PX",
                   help="smaller faces are prepared with a low_resolution note giving the upsampling factor "
                        "(default 64)")
    p.add_argument("--camera", choices=("pnp", "pos"), default="pnp",
                   help="camera solver: POS-seeded perspective PnP (default) or POS alone")
    p.add_argument("--drop-roll", action="store_true", help="build roll-free LookAt cameras")
    p.add_argument("--batch-size", type=int, default=8, help="photos per detection batch (default 8)")
    p.add_argument("--detect-max-side", type=int, default=2048, metavar="PX",
                   help="detect on a copy whose longest side is at most PX (default 2048)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_prepare)

    p = sub.add_parser("validate", help="check a dataset folder and print the report",
                       description="Validate ROOT/dataset.json and its files as the data loader does, "
                                   "decoding every image, mask and depth file (--no-decode: headers only); "
                                   "exit 1 when the dataset cannot be loaded.")
    p.add_argument("root", metavar="ROOT")
    p.add_argument("--resolution", type=int, default=None, help="expected image side (default: most common)")
    p.add_argument("--refuse-wrong-size", action="store_true", help="wrong-sized images are errors, not resized")
    p.add_argument("--off-pivot", choices=("warn", "reaim", "refuse"), default="warn",
                   help="cameras that do not look at the pivot (0, 0, 0.2)")
    decode = p.add_mutually_exclusive_group()
    decode.add_argument("--no-decode", action="store_true",
                        help="read image headers only (fast); the output then says that files were not decoded")
    decode.add_argument("--verify", action="store_true",
                        help="decode every image, mask and depth file (the default; kept for older scripts)")
    p.add_argument("--split", default=None, help="also check a split file against the dataset")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("celebahq-split", help="build the CelebA-HQ test split (2,824 ids) and its subsets",
                       description="Join CelebA-HQ-to-CelebA-mapping.txt with CelebA's list_eval_partition.txt "
                                   "on file names; write celebahq_test.txt, a seeded 1,500-id subset (HFGI3D), "
                                   "a 1,000-id set (WarpGAN's size) and SHA256SUMS.")
    p.add_argument("--mapping", required=True, metavar="FILE", help="CelebA-HQ-to-CelebA-mapping.txt")
    p.add_argument("--partition", required=True, metavar="FILE", help="CelebA list_eval_partition.txt (or .csv)")
    p.add_argument("--out", dest="out_dir", default="data/splits", metavar="DIR",
                   help="output folder (default data/splits)")
    p.add_argument("--seed", type=int, default=0, help="seed of the 1,500-id subset (default 0)")
    p.add_argument("--hfgi3d-size", type=int, default=1500, help=argparse.SUPPRESS)
    p.add_argument("--warpgan-size", type=int, default=1000, help=argparse.SUPPRESS)
    p.add_argument("--expect", type=int, default=2824, metavar="N",
                   help="expected number of test ids (a different count is a warning; default 2824)")
    p.add_argument("--strict", action="store_true", help="exit 1 on any warning")
    p.set_defaults(func=_cmd_split)

    p = sub.add_parser("synth", help="render the synthetic multi-view set (exact ground-truth novel views)",
                       description="Render N identities with an EG3D generator (default: the embedded tiny "
                                   "one): an input view per identity and ground-truth novel views.")
    p.add_argument("out_dir", metavar="OUT")
    p.add_argument("--n", type=int, default=8, help="identities (default 8)")
    p.add_argument("--generator", default="tiny", help="tiny, a preset name or a weight file (default tiny)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--truncation-psi", type=float, default=0.7)
    p.add_argument("--plane-texture", type=float, default=0.0, metavar="A",
                   help="textured variant: add a seeded random pattern to every identity's tri-planes before "
                        "rendering, A times the planes' feature std (default 0: off); every view sees it, the "
                        "latents cannot reproduce it (0.6 gives 20-26 dB plain-vs-textured with tiny)")
    p.add_argument("--plane-texture-scale", type=int, default=8, metavar="TEXELS",
                   help="size of the texture's spots in plane texels (of 256 across; default 8)")
    p.add_argument("--occluders", type=int, default=0, metavar="N",
                   help="occluded variant (out-of-distribution data): paste N seeded occluders (at most 8, "
                        "together 5-25%% of the image) on each input view; writes clean/ (the inputs without "
                        "them) and ood_masks/ (255 = occluder); novel views stay clean (default 0: off)")
    p.add_argument("--occluder-kinds", type=_kind_list, default=None, metavar="KINDS",
                   help="comma-separated kinds to draw from (default: patch,stripes,glasses,sticker)")
    p.add_argument("--occluder-seed", type=int, default=0,
                   help="another value gives other occluders on the same renders (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace a set made with another spec")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_cmd_synth)


def _kind_list(text: str) -> list[str]:
    """``patch,glasses`` -> ``['patch', 'glasses']`` (checked when the spec is built)."""
    return [k.strip() for k in text.split(",") if k.strip()]


def run_data_cli(argv: Sequence[str], stdout: TextIO | None = None) -> int:
    """Run ``warpinv data ARGV...`` and return its exit code (a leading ``data`` is optional)."""
    args = list(argv)
    if args[:1] == ["data"]:
        args = args[1:]
    parser = argparse.ArgumentParser(prog="warpinv")
    add_data_parser(parser.add_subparsers(dest="command"))
    try:
        ns = parser.parse_args(["data", *args])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    ns.stream = stdout if stdout is not None else sys.stdout
    return int(ns.func(ns))


def _cmd_prepare(ns: argparse.Namespace) -> int:
    from warpinv.data.prepare.prepare import PrepareConfig, prepare_folder

    out = _out(ns)
    try:
        cfg = PrepareConfig(refine=ns.refine, multiple_faces=ns.multiple_faces, min_confidence=ns.min_confidence,
                            min_face_size=ns.min_face_size, low_resolution_face_size=ns.low_resolution_face_size,
                            camera=ns.camera, keep_roll=not ns.drop_roll,
                            batch_size=ns.batch_size, detect_max_side=ns.detect_max_side)
        result = prepare_folder(ns.src, ns.dst, cfg, progress=not ns.no_progress)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=out)
        return 2
    print(result.summary(), file=out)
    print(f"report: {Path(ns.dst) / 'prepare_report.json'}", file=out)
    return 0


def _cmd_validate(ns: argparse.Namespace) -> int:
    from warpinv.data.splits import SplitError, match_split, read_split
    from warpinv.data.validation import DatasetError, DatasetOptions, validate_dataset

    out = _out(ns)
    try:
        opts = DatasetOptions(resolution=ns.resolution, on_wrong_size="refuse" if ns.refuse_wrong_size else "resize",
                              off_pivot=ns.off_pivot, verify_images=not ns.no_decode)
        entries, report = validate_dataset(ns.root, opts)
    except (DatasetError, ValueError) as err:
        print(f"ERROR: {err}", file=out)
        return 1
    print(report.format(), file=out)
    if ns.split:
        try:
            ids = read_split(ns.split)
        except SplitError as err:
            print(f"ERROR: {err}", file=out)
            return 1
        selected, missing = match_split([e.name for e in entries], ids)
        print(f"split {ns.split}: {len(ids)} ids, {len(selected)} found, {len(missing)} missing"
              + (f" ({', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''})" if missing else ""), file=out)
    return 0 if report.ok else 1


def _cmd_split(ns: argparse.Namespace) -> int:
    from warpinv.data.splits import SplitError, write_celebahq_splits

    out = _out(ns)
    try:
        res = write_celebahq_splits(ns.mapping, ns.partition, ns.out_dir, seed=ns.seed, hfgi3d_size=ns.hfgi3d_size,
                                    warpgan_size=ns.warpgan_size, expected_test_size=ns.expect)
    except SplitError as err:
        print(f"error: {err}", file=out)
        return 1
    for name, path in res.files.items():
        print(f"{path}  {res.counts[name]} ids  sha256 {res.sha256[name]}", file=out)
    for w in res.warnings:
        print(f"warning: {w}", file=out)
    return 1 if (ns.strict and res.warnings) else 0


def _cmd_synth(ns: argparse.Namespace) -> int:
    import time

    from warpinv.data.occluders import OCCLUDER_KINDS
    from warpinv.data.synthetic import SyntheticSpec, make_synthetic_multiview

    out = _out(ns)
    start = time.perf_counter()
    try:
        spec = SyntheticSpec(n=ns.n, generator=ns.generator, seed=ns.seed, truncation_psi=ns.truncation_psi,
                             plane_texture=ns.plane_texture, plane_texture_scale=ns.plane_texture_scale,
                             occluders=ns.occluders, occluder_seed=ns.occluder_seed,
                             occluder_kinds=list(OCCLUDER_KINDS) if ns.occluder_kinds is None else ns.occluder_kinds)
        path = make_synthetic_multiview(ns.out_dir, spec, overwrite=ns.overwrite, device=ns.device)
    except (FileExistsError, ValueError, TypeError, OSError) as err:
        print(f"error: {err}", file=out)
        return 1
    texture = f", plane texture {spec.plane_texture} at {spec.plane_texture_scale} texels" if spec.plane_texture else ""
    if spec.occluders:
        texture += f", {spec.occluders} occluder(s) per input ({','.join(spec.occluder_kinds)})"
    print(f"synthetic multi-view set ({spec.n} identities, {len(spec.views)} ground-truth views each, "
          f"generator {spec.generator}{texture}) in {path} ({time.perf_counter() - start:.1f} s)", file=out)
    return 0
