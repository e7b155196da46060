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

Layout::

    OUT/dataset.json              labels (input views), novel_views (GT), meta (generator, seed, views)
    OUT/id000.png ...             input views
    OUT/novel/id000/yaw+0.35_pitch-0.20.png ...
    OUT/gt_latents.safetensors    the ws of every identity (key = image id), for debugging

:func:`make_synthetic_multiview` is idempotent: with the same spec it returns the existing folder
without rendering; another spec or generator (``generator_fingerprint``) in an existing folder is an error unless ``overwrite=True``.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from warpinv.cameras import yaw_pitch_camera
from warpinv.data.images import tensor_to_image
from warpinv.data.validation import DATASET_JSON

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

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        names = [view_name(*v) for v in self.views]
        if len(set(names)) != len(names):
            raise ValueError(f"views have duplicate names: {names}")


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

    Args:
        out: output folder.
        spec: what to render; keyword arguments override its fields (``n=8``, ``seed=0``, ...).
        overwrite: replace an existing set made with a different spec or generator.
        device: where to render.

    Raises:
        FileExistsError: ``out`` holds a set of another spec or generator (or other files) and not ``overwrite``.
    """
    from safetensors.torch import save_file

    from warpinv.backbone import generator_fingerprint, load_generator

    s = spec or SyntheticSpec()
    if overrides:
        s = SyntheticSpec(**{**asdict(s), **overrides})
    out = Path(out)
    spec_dict = asdict(s)
    fingerprint = generator_fingerprint(s.generator)
    old = _existing_meta(out)
    if (old is not None and old["spec"] == spec_dict and old.get("generator_fingerprint") == fingerprint
            and (out / "gt_latents.safetensors").is_file()):
        return out
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            what = "a synthetic set of another spec or generator" if old is not None else "other files"
            raise FileExistsError(f"{out} already holds {what}; pass overwrite=True (--overwrite) to replace it")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    G = load_generator(s.generator, device=device)
    # Per identity: its own streams, so identity i does not depend on n.
    draws = [np.random.default_rng([s.seed, i]).uniform(-1.0, 1.0, size=2) for i in range(s.n)]
    input_yaw = [float(d[0]) * s.input_yaw for d in draws]
    input_pitch = [float(d[1]) * s.input_pitch for d in draws]
    views = [(float(y), float(p)) for y, p in s.views]
    novel_cams = yaw_pitch_camera(torch.tensor([v[0] for v in views]), torch.tensor([v[1] for v in views]),
                                  device=device)
    c_cond = yaw_pitch_camera(0.0, 0.0, device=device)
    labels, novel, latents = [], [], {}
    with torch.no_grad():
        for i in range(s.n):
            image_id = f"id{i:03d}.png"
            z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(s.seed + i)).to(device)
            ws = G.mapping(z, c_cond, truncation_psi=s.truncation_psi)
            c_in = yaw_pitch_camera(float(input_yaw[i]), float(input_pitch[i]), device=device)
            cams = torch.cat([c_in, novel_cams])
            # One backbone pass per identity, then one camera at a time: on CPU, batching the views
            # is slower per view than rendering them one by one.
            planes = G.planes(ws, noise_mode="const")
            images = torch.cat([G.render_planes(planes, ws, cam[None], deterministic=True,
                                                noise_mode="const")["image"] for cam in cams])
            tensor_to_image(images[0]).save(out / image_id)
            labels.append([image_id, [float(v) for v in c_in[0].tolist()]])
            entry = []
            for (yaw, pitch), img, cam in zip(views, images[1:], novel_cams):
                name = view_name(yaw, pitch)
                rel = f"novel/id{i:03d}/{name.replace(',', '_')}.png"
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                tensor_to_image(img).save(out / rel)
                entry.append({"name": name, "file": rel, "camera": [float(v) for v in cam.tolist()]})
            novel.append([image_id, entry])
            latents[image_id] = ws[0].detach().cpu().contiguous()
    save_file(latents, str(out / "gt_latents.safetensors"), metadata={"generator": str(G.source)})
    meta = {
        "created_by": "warpinv data synth (warpinv.data.make_synthetic_multiview)",
        "generator": str(getattr(G, "source", s.generator)),
        "generator_fingerprint": fingerprint,
        "generator_resolution": int(G.img_resolution),
        "seed": s.seed,
        "spec": spec_dict,
        "camera_source": "gt",
        "refine_camera": False,
        "input_views": {lab[0]: {"yaw": float(y), "pitch": float(p)}
                        for lab, y, p in zip(labels, input_yaw, input_pitch)},
        "views": [{"name": view_name(y, p), "yaw": y, "pitch": p} for y, p in views],
        "rendering": "SR image, deterministic=True, noise_mode='const', conditioning on the frontal camera, "
                     f"truncation_psi {s.truncation_psi}; radius 2.7, look-at (0, 0, 0.2), focal 4.2647",
        "seconds": round(time.perf_counter() - start, 2),
    }
    if "random weights" in meta["generator"] or s.generator == "tiny":
        meta["note"] = "rendered by a generator with random weights: not faces, a test of the machinery only"
    tmp = out / (DATASET_JSON + ".tmp")
    tmp.write_text(json.dumps({"labels": labels, "novel_views": novel, "meta": meta}, indent=1) + "\n")
    os.replace(tmp, out / DATASET_JSON)
    return out

