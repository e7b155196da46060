"""A synthetic multi-view dataset rendered by an EG3D generator: exact ground truth for novel views.

For identity ``i`` (``id000`` ...): ``z`` from ``torch.Generator().manual_seed(seed + i)``, mapped with
the frontal conditioning camera (``yaw_pitch_camera(0, 0)``, as EG3D's ``gen_samples.py`` conditions
on the frontal pose) and ``truncation_psi`` 0.7. The **input view** has a seeded yaw in
``[-input_yaw, input_yaw]`` and pitch in ``[-input_pitch, input_pitch]`` (0.25 and 0.1 rad by
default; uniform, from ``numpy.random.default_rng([seed, i])``, so identity ``i`` does not depend on
``n``); the **ground-truth novel views** are the fixed grid
:data:`DEFAULT_VIEWS` (yaw -0.35 / 0 / +0.35 x pitch -0.2 / +0.2 radians, 6 views), the same for
every identity so they batch. All views use radius 2.7, look-at (0, 0, 0.2) and focal 4.2647
(:func:`warpinv.cameras.yaw_pitch_camera`) and are rendered with ``deterministic=True``,
``noise_mode="const"``; images are the SR output at the generator's resolution, converted to PNG
with EG3D's ``(x * 127.5 + 128).clamp(0, 255)``.

**Textured variant** (``plane_texture > 0``): before rendering, a seeded high-frequency pattern is
added to the identity's tri-planes (:func:`add_plane_texture`), once, so the input view and every
ground-truth novel view are renders of the same textured planes and stay exactly 3D-consistent. The
pattern is not produced by the generator from any latent, so it is detail that latent-only fitting
(PTI's first stage, any encoder) cannot reproduce, while methods that carry detail from the input
view into the novel views (HFGI3D's pseudo-views, PTI's generator tuning) can; GT novel-view PSNR on
such a set measures that. ``gt_latents.safetensors`` still holds the plain ``ws``: on a textured
set they render the images without the texture. The pattern of identity ``i`` comes from its own
``torch.Generator`` seeded from ``(seed, i)`` (so it does not depend on ``n``); it is drawn on the
CPU, so it is the same for every rendering device. The default, ``plane_texture=0``, renders the
plain set and records the same ``meta.spec`` as a set built without the variant's fields (they are left out
while it is off).

**Occluded variant** (``occluders > 0``, out-of-distribution data for In-N-Out): after rendering,
``occluders`` seeded occluders of ``occluder_kinds`` (patch, stripes, glasses, sticker; drawn by
:func:`warpinv.data.occluders.occlude`, together 5-25 % of the image) are pasted on each **input
view** only; the ground-truth novel views stay clean (they are what a method must recover) and are
byte-identical to the plain set's. ``OUT/id000.png`` is the occluded input, ``clean/id000.png`` the
same render without occluders (byte-identical to the plain set's input) and ``ood_masks/id000.png``
the binary mask (255 = occluder pixel, 0 elsewhere); dataset.json lists them under
``clean_images`` and ``ood_masks`` (:mod:`warpinv.data.dataset_json`). The occluders of identity
``i`` come from ``numpy.random.default_rng(SeedSequence([seed, i, 2, occluder_seed]))`` (independent
of ``n``; ``occluder_seed`` gives other occluders on the same renders). The default, ``occluders=0``,
records the same ``meta.spec`` as a set built without the variant's fields.

**Covisibility masks** (every set): for each ground-truth novel view, the pixels whose surface point
the input view sees, by the ground-truth geometry; the region where warping the input image to that
view is right (WarpGAN's "warped-visible region", scored by the ``psnr_visible`` metric). The depth
(``image_depth``: EG3D's expected distance along the unit pixel ray, at the generator's neural
rendering resolution ``r``; 32 px with ``tiny``, 128 px with the 512 px presets) comes out of the same
render as each view's image, so rendering it changes no image byte. A novel-view pixel is covisible
when :func:`warpinv.cameras.warp.backward_warp` with ``src_depth`` finds it valid: its depth is
positive, its surface point (novel depth, unprojected) is in front of the input camera and projects
inside the input image, and its distance to the input camera exceeds the input view's depth at the
nearest input pixel by at most ``covisibility_tol`` world units (0.03 by default, the tolerance of the
``reprojection_consistency`` metric: a few ``tiny`` raw-render pixels' worth of depth on a slanted
surface, against a head about 1 unit across). Everything is computed in float64 at ``r x r`` and each
mask pixel is then repeated to the image resolution (nearest-neighbour upsampling, ``nearest-exact``:
blocks of ``R / r`` pixels), so the mask follows the depth maps' pixel grid. A view equal to the input
view is covisible wherever its depth is positive. With ``tiny`` (random weights: semi-transparent
fog rather than an opaque surface, whose expected depths do not agree between views) the masks are
ragged and cover 30-90 % of a default view; trained generators render opaque faces. The masks are
PNGs (mode ``L``, 255 = covisible, 0 = not) listed in dataset.json under each novel view's
``visible`` key. ``covisibility_tol`` is part of ``meta.spec``, so a set built before the masks
existed (whose spec lacks it) is not the set of any current spec: ``warpinv bench`` rebuilds it (it
is derived data), ``warpinv data synth`` refuses it without ``--overwrite`` and says why.

Layout::

    OUT/dataset.json              labels (input views), novel_views (GT), meta (generator, seed, views)
    OUT/id000.png ...             input views (occluded in the occluded variant)
    OUT/novel/id000/yaw+0.35_pitch-0.20.png ...
    OUT/clean/id000.png ...       occluded variant only: the input views without occluders
    OUT/ood_masks/id000.png ...   occluded variant only: 255 = occluder pixel
    OUT/visible/id000/yaw+0.35_pitch-0.20.png ...   covisibility masks: 255 = seen by the input view
    OUT/gt_latents.safetensors    the ws of every identity (key = image id), for debugging

:func:`make_synthetic_multiview` is idempotent: with the same spec it returns the existing folder
without rendering; another spec or generator (``generator_fingerprint``) in an existing folder is an
error unless ``overwrite=True``. A build is atomic: it renders into a hidden sibling folder and
renames it into place when complete, so a killed build leaves no partial set behind.
"""
from __future__ import annotations

import glob
import json
import logging
import math
import os
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from warpinv.cameras import backward_warp, yaw_pitch_camera
from warpinv.checks import check_min
from warpinv.data.images import tensor_to_image
from warpinv.data.occluders import MAX_OCCLUDERS, OCCLUDER_KINDS, check_occluder_kinds, occlude
from warpinv.data.validation import DATASET_JSON

logger = logging.getLogger(__name__)

#: Ground-truth novel views: (yaw, pitch) in radians.
DEFAULT_VIEWS: tuple[tuple[float, float], ...] = tuple(
    (yaw, pitch) for pitch in (-0.2, 0.2) for yaw in (-0.35, 0.0, 0.35))


def view_name(yaw: float, pitch: float) -> str:
    """``yaw+0.35,pitch-0.20``: the view's name in dataset.json and in benchmark rows.

    Example:
        >>> view_name(0.35, -0.2), view_name(0.0, 0.2)
        ('yaw+0.35,pitch-0.20', 'yaw+0.00,pitch+0.20')
    """
    return f"yaw{yaw:+.2f},pitch{pitch:+.2f}"


@dataclass
class SyntheticSpec:
    """What a synthetic multi-view set is made of (recorded in ``meta.spec``)."""

    n: int = 8
    """Number of identities."""
    generator: str = "tiny"
    """Generator: ``tiny``, a preset name or a weight file (see ``warpinv.backbone.load_generator``)."""
    seed: int = 0
    """Seeds the latents (``seed + i``) and the input views."""
    truncation_psi: float = 0.7
    """Truncation of the sampled latents."""
    input_yaw: float = 0.25
    """Input views have yaw uniform in ``[-input_yaw, input_yaw]`` radians."""
    input_pitch: float = 0.1
    """Input views have pitch uniform in ``[-input_pitch, input_pitch]`` radians."""
    views: list[list[float]] = field(default_factory=lambda: [list(v) for v in DEFAULT_VIEWS])
    """Ground-truth novel views as ``[yaw, pitch]`` pairs (radians)."""
    plane_texture: float = 0.0
    """Textured variant: amplitude of a seeded random pattern added to every identity's tri-planes
    before rendering, in units of the identity's feature std (per plane channel); 0 (default) = off.
    All views see the same textured planes (3D-consistent); the latents cannot reproduce the detail.
    With ``tiny`` and scale 8, 0.6 gives a plain-vs-textured input PSNR of 20-26 dB (0.5: 22-27, 1: 17-21)."""
    plane_texture_scale: int = 8
    """Size of the pattern's spots in plane texels (planes are 256 texels across the [-0.5, 0.5]
    box): white noise smoothed by a Gaussian of std ``scale / 2`` texels. One raw-render pixel spans
    about 5 texels with ``tiny`` (32 px) and 1.3 with the 512 px presets (128 px)."""
    occluders: int = 0
    """Occluded variant: occluders pasted on each input view (0 = off, at most 8); together they cover
    5-25 % of the image. The clean input and the occluder mask are written beside it."""
    occluder_kinds: list[str] = field(default_factory=lambda: list(OCCLUDER_KINDS))
    """Kinds each occluder is drawn from (uniformly): ``patch``, ``stripes``, ``glasses``, ``sticker``."""
    occluder_seed: int = 0
    """Seeds the occluders together with ``seed`` and the identity (another value: other occluders on the
    same renders)."""
    covisibility_tol: float = 0.03
    """Covisibility masks: a novel-view surface point counts as seen by the input view when its distance to the
    input camera exceeds the input view's depth there by at most this many world units (module docstring).
    Always recorded in ``meta.spec``: sets built before the masks existed lack it and are not reused."""

    def __post_init__(self) -> None:
        check_min(self.n, 1, "n")
        check_min(self.plane_texture, 0.0, "plane_texture")
        if not math.isfinite(self.plane_texture):
            raise ValueError(f"plane_texture must be a finite amplitude >= 0, got {self.plane_texture}")
        if isinstance(self.plane_texture_scale, bool) or not isinstance(self.plane_texture_scale, int):
            raise TypeError(f"plane_texture_scale must be an int (texels), got {self.plane_texture_scale!r}")
        check_min(self.plane_texture_scale, 1, "plane_texture_scale")
        self._check_occluders()
        if isinstance(self.covisibility_tol, bool) or not isinstance(self.covisibility_tol, (int, float)):
            raise TypeError(f"covisibility_tol must be a number (world units), got {self.covisibility_tol!r}")
        check_min(self.covisibility_tol, 0.0, "covisibility_tol")
        if not math.isfinite(self.covisibility_tol):
            raise ValueError(f"covisibility_tol must be a finite distance >= 0, got {self.covisibility_tol}")
        self.covisibility_tol = float(self.covisibility_tol)
        names = [view_name(*v) for v in self.views]
        if len(set(names)) != len(names):
            raise ValueError(f"views have duplicate names: {names}")

    def _check_occluders(self) -> None:
        for name in ("occluders", "occluder_seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {value!r}")
        check_min(self.occluders, 0, "occluders")
        if self.occluders > MAX_OCCLUDERS:
            raise ValueError(f"occluders must be at most {MAX_OCCLUDERS} per input view, got {self.occluders}")
        self.occluder_kinds = check_occluder_kinds(self.occluder_kinds)


#: Fields of the textured variant: left out of ``meta.spec`` while it is off, so that a plain set
#: records (and matches) the spec of a set built without these fields.
_TEXTURE_FIELDS = ("plane_texture", "plane_texture_scale")
#: Fields of the occluded variant, left out of ``meta.spec`` while it is off (as the texture ones).
_OCCLUDER_FIELDS = ("occluders", "occluder_kinds", "occluder_seed")


def spec_record(s: SyntheticSpec) -> dict[str, Any]:
    """``meta.spec`` of a set built from ``s``: its fields, without those of a variant that is off.

    Example:
        >>> sorted(set(spec_record(SyntheticSpec(plane_texture=1.0))) - set(spec_record(SyntheticSpec())))
        ['plane_texture', 'plane_texture_scale']
        >>> spec_record(SyntheticSpec(plane_texture_scale=4)) == spec_record(SyntheticSpec())
        True
        >>> sorted(set(spec_record(SyntheticSpec(occluders=2))) - set(spec_record(SyntheticSpec())))
        ['occluder_kinds', 'occluder_seed', 'occluders']
    """
    record = asdict(s)
    off = (_TEXTURE_FIELDS if not s.plane_texture else ()) + (_OCCLUDER_FIELDS if not s.occluders else ())
    for name in off:
        record.pop(name)
    return record


def _existing_meta(out: Path) -> dict[str, Any] | None:
    """``meta`` of the synthetic set in ``out``, or ``None`` when ``out`` holds none."""
    path = out / DATASET_JSON
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text()).get("meta", {})
    except (ValueError, AttributeError):
        return None
    return meta if isinstance(meta, dict) and "spec" in meta else None


def holds_synthetic_set(out: str | os.PathLike[str]) -> bool:
    """Whether ``out`` holds a set written by :func:`make_synthetic_multiview` (derived data: safe to rebuild)."""
    meta = _existing_meta(Path(out))
    return meta is not None and str(meta.get("created_by", "")).startswith("warpinv data synth")


def make_synthetic_multiview(
    out: str | os.PathLike[str],
    spec: SyntheticSpec | None = None,
    *,
    overwrite: bool = False,
    device: str | torch.device = "cpu",
    **overrides: Any,
) -> Path:
    """Render the synthetic multi-view set into ``out`` (see the module docstring) and return ``out``.

    The set is rendered into a hidden sibling folder (``.<name>.partial-<pid>-...``) and renamed into
    place when complete, so a killed build never leaves a partial ``out``; the next build removes the
    leftovers of builds whose process is gone. A folder that holds nothing but an incomplete set
    (what an interrupted build of an earlier version left) is rebuilt without ``overwrite``.

    Args:
        out: output folder.
        spec: what to render; keyword arguments override its fields (``n=8``, ``seed=0``, ...).
        overwrite: replace an existing set made with a different spec or generator (or other files).
        device: where to render.

    Raises:
        FileExistsError: ``out`` holds a set of another spec or generator (or other files) and not ``overwrite``.
    """
    from warpinv.backbone import generator_fingerprint

    s = spec or SyntheticSpec()
    if overrides:
        s = SyntheticSpec(**{**asdict(s), **overrides})
    out = Path(out)
    fingerprint = generator_fingerprint(s.generator)
    if _holds_same_set(out, spec_record(s), fingerprint):
        logger.info("synthetic set in %s is up to date (same spec and generator); not re-rendered", out)
        return out
    _check_replaceable(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_builds(out)
    build = Path(tempfile.mkdtemp(prefix=f"{_build_prefix(out)}{os.getpid()}-", dir=out.parent))
    try:
        seconds = _render_set(build, s, fingerprint, device)
        _move_into_place(build, out)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    logger.info("rendered a synthetic set of %d identities x %d views into %s in %.1f s",
                s.n, len(s.views) + 1, out, seconds)
    return out


def _render_set(out: Path, s: SyntheticSpec, fingerprint: str, device: str | torch.device) -> float:
    """Render every identity of ``s`` into the empty folder ``out``; the seconds it took."""
    from safetensors.torch import save_file

    from warpinv.backbone import load_generator

    start = time.perf_counter()
    G = load_generator(s.generator, device=device)
    input_yaw, input_pitch = _input_views(s)
    views = [(float(y), float(p)) for y, p in s.views]
    novel_cams = yaw_pitch_camera(torch.tensor([v[0] for v in views]), torch.tensor([v[1] for v in views]),
                                  device=device)
    c_cond = yaw_pitch_camera(0.0, 0.0, device=device)
    labels, novel, latents, occlusions, coverage = [], [], {}, {}, {}
    depth_resolution = 0
    with torch.no_grad():
        for i in range(s.n):
            image_id = f"id{i:03d}.png"
            z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(s.seed + i)).to(device)
            ws = G.mapping(z, c_cond, truncation_psi=s.truncation_psi)
            c_in = yaw_pitch_camera(float(input_yaw[i]), float(input_pitch[i]), device=device)
            images, depths = _render_views(G, _identity_planes(G, ws, s, i), ws, torch.cat([c_in, novel_cams]))
            visible = covisibility_masks(depths[1:], novel_cams, depths[:1], c_in, s.covisibility_tol,
                                         int(images.shape[-1]))
            depth_resolution = int(depths.shape[-1])
            coverage[image_id] = {view_name(*v): round(f, 4)
                                  for v, f in zip(views, visible.flatten(1).double().mean(1).tolist())}
            if s.occluders:
                occlusions[image_id] = _save_occluded_input(out, image_id, tensor_to_image(images[0]), s, i)
            else:
                tensor_to_image(images[0]).save(out / image_id)
            labels.append([image_id, [float(v) for v in c_in[0].tolist()]])
            novel.append([image_id, _save_novel_views(out, i, views, images[1:], novel_cams, visible)])
            latents[image_id] = ws[0].detach().cpu().contiguous()
            logger.debug("rendered identity %d/%d", i + 1, s.n)
    info = {"generator": str(G.source)}
    if s.plane_texture:
        info["plane_texture"] = f"{s.plane_texture} (these ws render the images without the texture)"
    save_file(latents, str(out / "gt_latents.safetensors"), metadata=info)
    seconds = time.perf_counter() - start
    meta = _meta(s, G, fingerprint, labels, input_yaw, input_pitch, views, seconds)
    meta["covisibility"] = _covisibility_meta(s, depth_resolution, coverage)
    data: dict[str, Any] = {"labels": labels, "novel_views": novel}
    if s.occluders:
        data["ood_masks"] = [[lab[0], f"ood_masks/{lab[0]}"] for lab in labels]
        data["clean_images"] = [[lab[0], f"clean/{lab[0]}"] for lab in labels]
        meta["occluders"] = _occluder_meta(s, occlusions)
        meta["rendering"] += f"; {s.occluders} occluder(s) pasted on each input view (novel views clean)"
    (out / DATASET_JSON).write_text(json.dumps({**data, "meta": meta}, indent=1) + "\n")
    return seconds


def _occluder_rng(s: SyntheticSpec, i: int) -> np.random.Generator:
    """Identity ``i``'s occluder stream: apart from its input view's ``[seed, i]`` and texture's ``[seed, i, 1]``."""
    return np.random.default_rng(np.random.SeedSequence([s.seed, i, 2, s.occluder_seed]))


def _save_occluded_input(out: Path, image_id: str, clean: Image.Image, s: SyntheticSpec, i: int) -> dict[str, Any]:
    """Write the occluded input as ``image_id``, the clean one under ``clean/`` and the mask under
    ``ood_masks/``; what was pasted (``meta.occluders.inputs`` entry)."""
    occ = occlude(np.asarray(clean), s.occluders, s.occluder_kinds, _occluder_rng(s, i))
    Image.fromarray(occ.image, "RGB").save(out / image_id)
    for folder, im in (("clean", clean), ("ood_masks", Image.fromarray(occ.mask.astype(np.uint8) * 255, "L"))):
        (out / folder).mkdir(exist_ok=True)
        im.save(out / folder / image_id)
    return {"kinds": occ.kinds, "coverage": round(occ.coverage, 4)}


def _occluder_meta(s: SyntheticSpec, occlusions: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """dataset.json's ``meta.occluders``: what was pasted on each input view."""
    return {
        "per_input": s.occluders, "kinds": list(s.occluder_kinds), "seed": s.occluder_seed,
        "note": "pasted on the input views only, without anti-aliasing; clean/ holds the inputs without them, "
                "ood_masks/ their masks (255 = occluder pixel); novel views are clean",
        "inputs": occlusions,
    }


def _holds_same_set(out: Path, spec_dict: dict[str, Any], fingerprint: str) -> bool:
    """Whether ``out`` already holds the complete set of this spec and generator."""
    old = _existing_meta(out)
    return (old is not None and old["spec"] == spec_dict and old.get("generator_fingerprint") == fingerprint
            and (out / "gt_latents.safetensors").is_file())


#: Files a build writes (relative paths), besides dataset.json: what an interrupted build can leave.
_BUILDER_FILE = re.compile(r"(clean/|ood_masks/)?id\d{3,}\.png|gt_latents\.safetensors|dataset\.json\.tmp"
                           r"|(novel|visible)/id\d{3,}/yaw[+-]\d+\.\d\d_pitch[+-]\d+\.\d\d\.png")


def _only_builder_files(out: Path) -> bool:
    """Whether ``out`` is empty or an incomplete set: every file is one a build writes (no dataset.json),
    and a ground-truth view is among them (a user's own ``id000.png`` alone is not taken for one)."""
    files = [p.relative_to(out).as_posix() for p in out.rglob("*") if not p.is_dir()]
    return all(_BUILDER_FILE.fullmatch(f) for f in files) and (
        not files or any(f.startswith("novel/") for f in files))


def _check_replaceable(out: Path, overwrite: bool) -> None:
    """Refuse to replace a non-empty ``out`` unless ``overwrite`` or it holds only an incomplete set."""
    if overwrite or not out.exists() or (out.is_dir() and _only_builder_files(out)):
        return
    replace = (f"replace it with `warpinv data synth {out} --overwrite` (overwrite=True), or choose another folder "
               "(for `warpinv bench`: the suite's dataset.root)")
    old = _existing_meta(out)
    if old is not None:
        if isinstance(old["spec"], dict) and "covisibility_tol" not in old["spec"]:
            raise FileExistsError(f"{out} already holds a synthetic set of another spec or generator: it was built "
                                  "before the covisibility masks (visible/) existed and has none; "
                                  f"{replace} (warpinv bench rebuilds it by itself)")
        raise FileExistsError(f"{out} already holds a synthetic set of another spec or generator; {replace}")
    raise FileExistsError(f"{out} already holds other files, which are not a synthetic set; {replace}; "
                          "--overwrite deletes them")


def _build_prefix(out: Path) -> str:
    """Name prefix of the hidden sibling folders a build of ``out`` renders into (``pid-`` follows)."""
    return f".{out.name}.partial-"


def _remove_dead_builds(out: Path) -> None:
    """Remove the leftovers of builds of ``out`` whose process is gone (a kill mid-build)."""
    prefix = _build_prefix(out)
    for path in out.parent.glob(glob.escape(prefix) + "*"):
        pid = path.name[len(prefix):].split("-", 1)[0]
        if path.is_dir() and pid.isdigit() and not _process_alive(int(pid)):
            logger.info("removing %s, left by an interrupted build", path)
            shutil.rmtree(path, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process
        return True
    return True


def _move_into_place(build: Path, out: Path) -> None:
    """Rename the complete ``build`` to ``out``; an earlier ``out`` (checked replaceable) goes."""
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    if not out.exists():
        os.replace(build, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f"{_build_prefix(out)}{os.getpid()}-old-", dir=out.parent))
    os.replace(out, old / out.name)
    os.replace(build, out)
    shutil.rmtree(old, ignore_errors=True)


def _input_views(s: SyntheticSpec) -> tuple[list[float], list[float]]:
    """Seeded input-view yaw and pitch per identity, each from its own stream (independent of ``n``)."""
    draws = [np.random.default_rng([s.seed, i]).uniform(-1.0, 1.0, size=2) for i in range(s.n)]
    return [float(d[0]) * s.input_yaw for d in draws], [float(d[1]) * s.input_pitch for d in draws]


def _texture_generator(seed: int, i: int) -> torch.Generator:
    """The CPU generator of identity ``i``'s texture: its own stream, seeded from ``(seed, i)``."""
    # A third entry keeps this stream apart from the input views' ``default_rng([seed, i])``.
    state = np.random.SeedSequence([seed, i, 1]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def add_plane_texture(planes: torch.Tensor, amplitude: float, scale: int, *,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """``planes (N, 3, C, P, P)`` plus a random pattern of ``scale``-texel spots (a new tensor).

    The pattern is white noise (drawn on the CPU from ``generator``) smoothed on each plane by a
    periodic Gaussian of std ``scale / 2`` texels, then set to zero mean and unit std per plane
    channel and scaled to ``amplitude`` times that channel's spatial std in ``planes``.

    Example:
        >>> planes = torch.randn(1, 3, 4, 32, 32, generator=torch.Generator().manual_seed(0)) * 2
        >>> added = add_plane_texture(planes, 0.5, 4, generator=torch.Generator().manual_seed(1)) - planes
        >>> ratio = added.std(dim=(-1, -2)) / planes.std(dim=(-1, -2))
        >>> bool(torch.allclose(ratio, torch.full_like(ratio, 0.5), atol=1e-4))
        True
    """
    if planes.ndim != 5 or planes.shape[-1] != planes.shape[-2]:
        raise ValueError(f"planes must be a (N, 3, C, P, P) tensor, got {tuple(planes.shape)}")
    if not 1 <= scale <= planes.shape[-1]:
        raise ValueError(f"scale must be between 1 and the plane resolution {planes.shape[-1]} texels, got {scale}")
    pattern = _unit_pattern(tuple(planes.shape), scale, generator).to(planes.device, planes.dtype)
    return planes + amplitude * planes.std(dim=(-1, -2), keepdim=True) * pattern


def _unit_pattern(shape: tuple[int, ...], scale: int, generator: torch.Generator | None) -> torch.Tensor:
    """``shape (..., P, P)`` smoothed noise with zero mean and unit std over each ``(P, P)`` slice (CPU)."""
    size = shape[-1]
    noise = torch.randn(shape, generator=generator, dtype=torch.float64)
    # Circular convolution with a Gaussian of std scale/2: a product with its transfer function.
    freq = torch.fft.fftfreq(size, dtype=torch.float64)
    sigma = scale / 2
    gain = torch.exp(-2 * math.pi ** 2 * sigma ** 2 * (freq[:, None] ** 2 + freq[None, :] ** 2))
    smooth = torch.fft.ifft2(torch.fft.fft2(noise) * gain).real
    smooth = smooth - smooth.mean(dim=(-1, -2), keepdim=True)
    return (smooth / smooth.std(dim=(-1, -2), keepdim=True)).float()


def _identity_planes(G: Any, ws: torch.Tensor, s: SyntheticSpec, i: int) -> torch.Tensor:
    """Identity ``i``'s tri-planes ``(1, 3, 32, P, P)`` from ``ws (1, L, 512)``, textured when ``s`` says so."""
    planes = G.planes(ws, noise_mode="const")
    if s.plane_texture:
        if s.plane_texture_scale > planes.shape[-1]:
            raise ValueError(f"plane_texture_scale must be at most the plane resolution ({planes.shape[-1]} texels), "
                             f"got {s.plane_texture_scale}")
        planes = add_plane_texture(planes, s.plane_texture, s.plane_texture_scale,
                                   generator=_texture_generator(s.seed, i))
    return planes


def _render_views(G: Any, planes: torch.Tensor, ws: torch.Tensor,
                  cams: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(V, 3, R, R)`` SR images and ``(V, 1, r, r)`` depths (``image_depth``, at the neural rendering
    resolution) of one identity's ``planes`` and ``ws (1, L, 512)`` at ``cams (V, 25)``."""
    # One backbone pass per identity, then one camera at a time: on CPU, batching the views
    # is slower per view than rendering them one by one.
    outs = [G.render_planes(planes, ws, cam[None], deterministic=True, noise_mode="const") for cam in cams]
    return torch.cat([o["image"] for o in outs]), torch.cat([o["image_depth"] for o in outs])


def covisibility_masks(novel_depth: torch.Tensor, novel_cams: torch.Tensor, input_depth: torch.Tensor,
                       input_cam: torch.Tensor, tol: float, resolution: int) -> torch.Tensor:
    """Which pixels of each novel view the input view sees, by the ground-truth depths (module docstring).

    Args:
        novel_depth: ``(V, 1, r, r)`` depths of the novel views (distance along the unit pixel rays).
        novel_cams: ``(V, 25)`` their cameras.
        input_depth: ``(1, 1, r', r')`` depth of the input view.
        input_cam: ``(1, 25)`` its camera.
        tol: occlusion tolerance in world units (``backward_warp``'s ``occlusion_tol``).
        resolution: side ``R`` of the masks, a multiple of ``r`` for whole pixel blocks.

    Returns:
        ``(V, 1, R, R)`` bool, True = covisible; each depth pixel repeated to an ``R / r`` block.

    Example:
        >>> cam = yaw_pitch_camera(0.2, 0.0)
        >>> depth = torch.full((1, 1, 4, 4), 2.6)
        >>> covisibility_masks(depth, cam, depth, cam, 0.03, 8).all().item()  # the input view sees itself
        True
    """
    n = novel_depth.shape[0]
    src_depth = input_depth.double().expand(n, -1, -1, -1)
    # Only the validity is used; the depth itself stands in for the warped image.
    _, valid = backward_warp(src_depth, novel_depth.double(), novel_cams.double(),
                             input_cam.double().expand(n, -1), src_depth=src_depth, occlusion_tol=tol)
    if valid.shape[-1] == resolution:
        return valid
    return F.interpolate(valid.to(torch.uint8), size=(resolution, resolution), mode="nearest-exact").bool()


def _save_novel_views(out: Path, i: int, views: list[tuple[float, float]], images: torch.Tensor,
                      cams: torch.Tensor, visible: torch.Tensor) -> list[dict[str, Any]]:
    """Write identity ``i``'s ground-truth views ``images (V, 3, R, R)`` and their covisibility masks
    ``visible (V, 1, R, R)`` bool; their dataset.json entries."""
    entry = []
    for (yaw, pitch), img, cam, mask in zip(views, images, cams, visible):
        name = view_name(yaw, pitch)
        stem = f"id{i:03d}/{name.replace(',', '_')}.png"
        rel, mask_rel = f"novel/{stem}", f"visible/{stem}"
        for path in (out / rel, out / mask_rel):
            path.parent.mkdir(parents=True, exist_ok=True)
        tensor_to_image(img).save(out / rel)
        Image.fromarray(mask[0].cpu().numpy().astype(np.uint8) * 255, "L").save(out / mask_rel)
        entry.append({"name": name, "file": rel, "camera": [float(v) for v in cam.tolist()], "visible": mask_rel})
    return entry


def _covisibility_meta(s: SyntheticSpec, depth_resolution: int,
                       coverage: dict[str, dict[str, float]]) -> dict[str, Any]:
    """dataset.json's ``meta.covisibility``: how the masks were made and the covisible fraction of each view."""
    return {
        "tol": s.covisibility_tol,
        "depth_resolution": depth_resolution,
        "upsampling": "nearest-exact (each depth pixel repeated to a block of the image)",
        "note": "255 = the novel-view pixel's surface point (GT depth) is seen by the input view: in front of it, "
                "inside its image and at most tol world units behind its GT depth there (backward_warp)",
        "coverage": coverage,
    }


def _meta(s: SyntheticSpec, G: Any, fingerprint: str, labels: list[list[Any]], input_yaw: list[float],
          input_pitch: list[float], views: list[tuple[float, float]], seconds: float) -> dict[str, Any]:
    """dataset.json's ``meta``: how the set was made (spec, generator, views, rendering)."""
    meta = {
        "created_by": "warpinv data synth (warpinv.data.make_synthetic_multiview)",
        "generator": str(getattr(G, "source", s.generator)),
        "generator_fingerprint": fingerprint,
        "generator_resolution": int(G.img_resolution),
        "seed": s.seed,
        "spec": spec_record(s),
        "camera_source": "gt",
        "refine_camera": False,
        "input_views": {lab[0]: {"yaw": float(y), "pitch": float(p)}
                        for lab, y, p in zip(labels, input_yaw, input_pitch)},
        "views": [{"name": view_name(y, p), "yaw": y, "pitch": p} for y, p in views],
        "rendering": "SR image, deterministic=True, noise_mode='const', conditioning on the frontal camera, "
                     f"truncation_psi {s.truncation_psi}; radius 2.7, look-at (0, 0, 0.2), focal 4.2647",
        "seconds": round(seconds, 2),
    }
    if s.plane_texture:
        meta["plane_texture"] = {
            "amplitude": s.plane_texture, "scale_texels": s.plane_texture_scale,
            "pattern": "white noise smoothed by a periodic Gaussian of std scale/2 texels, zero mean and unit std "
                       "per plane channel, times amplitude x the channel's std; seeded from (seed, identity)",
            "note": "added to the tri-planes before rendering every view; gt_latents render the plain images"}
        meta["rendering"] += f"; tri-planes textured (amplitude {s.plane_texture}, {s.plane_texture_scale} texels)"
    if "random weights" in meta["generator"] or s.generator == "tiny":
        meta["note"] = "rendered by a generator with random weights: not faces, a test of the machinery only"
    return meta
