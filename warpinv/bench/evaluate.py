"""The benchmark's ``Evaluator``: renders each inversion at the evaluation views and scores it.

For one image (``BenchEvaluator.evaluate``):

1. One batched, deterministic render (``noise_mode="const"``, ``deterministic=True``) of the input
   camera, the dataset's ground-truth novel cameras (when present) and the suite's yaw sweep; views
   are chunked by ``views.render_batch`` only when there are more.
2. Rows: ``input`` (pair metrics of the reconstruction vs the input image, with the item's mask, and
   identity metrics), one row per ground-truth novel view (``gt:yaw+0.35,pitch-0.20``, scored with
   ``warpinv.metrics.score_novel_views``), one row per sweep view with identity metrics vs the input
   (``yaw+0.25``), and one ``mv`` row with the multi-view metrics.
3. A few images per method are saved for the HTML grid (input, reconstruction, depth, novel views),
   with a ``manifest.json`` naming the label, config hash and image id (:func:`collect_grids` shows
   only those of the tabulated rows), and optionally the ``Inversion`` file.

A metric whose weights are missing is never computed; it is listed as unavailable with the reason
(once, in the leaderboard and the provenance). A metric that raises on an image leaves ``None`` in
that row with the reason in ``notes`` (per metric: the other metrics keep their values).
"""
from __future__ import annotations

import json
import math
import re
import resource
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from warpinv.bench.rows import INPUT_VIEW, MULTIVIEW_VIEW, STATUS_FAILED, STATUS_OK, make_row
from warpinv.methods.base import Inversion, InversionItem, InversionMethod

KIND_PAIR = "pair"
KIND_IDENTITY = "identity"
KIND_MULTIVIEW = "multiview"


# ------------------------------------------------------------------------------------- metric set


@dataclass
class MetricSet:
    """The suite's metrics, built once per process.

    Attributes:
        modules: built metric objects by name (only the available ones).
        kinds: ``pair`` / ``identity`` / ``multiview`` by name.
        unavailable: ``{name: reason}`` for metrics that are not computed (missing weights, ...).
        info: per-metric facts for tables and provenance (direction, resolution, weights, random).
    """

    modules: dict[str, Any] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    info: dict[str, dict[str, Any]] = field(default_factory=dict)

    def of_kind(self, kind: str) -> dict[str, Any]:
        return {n: m for n, m in self.modules.items() if self.kinds.get(n) == kind}

    def to(self, device: torch.device) -> "MetricSet":
        for name, m in self.modules.items():
            if isinstance(m, torch.nn.Module):
                self.modules[name] = m.to(device)
        return self


def metric_kind(name: str, metric: Any) -> str:
    """How the harness uses a metric: ``multiview`` (``info.kind``), ``identity`` (pair metrics named
    ``id_*``: also scored on the sweep views against the input image) or ``pair``."""
    info = getattr(metric, "info", None)
    if getattr(info, "kind", None) == KIND_MULTIVIEW:
        return KIND_MULTIVIEW
    if name.startswith("id_"):
        return KIND_IDENTITY
    return KIND_PAIR


def metric_facts(name: str, metric: Any) -> dict[str, Any]:
    """What tables and provenance record about a built metric (direction, resolution, weights, ...)."""
    info = getattr(metric, "info", None)
    facts: dict[str, Any] = {"status": "ok", "kind": metric_kind(name, metric),
                             "random_weights": bool(getattr(metric, "random_weights", False)),
                             "source": getattr(metric, "source", None),
                             "weight_files": dict(getattr(metric, "weight_files", {}) or {})}
    for attr in ("higher_is_better", "value_range", "resolution", "weights", "weight_names", "comparable_to", "unit"):
        value = getattr(info, attr, None)
        if value is not None:
            facts[attr] = list(value) if isinstance(value, tuple) else value
    columns = info.columns() if info is not None and hasattr(info, "columns") else {}
    if columns and list(columns) != [name]:
        facts["columns"] = {col: {"higher_is_better": ci.higher_is_better, "unit": getattr(ci, "unit", ""),
                                  "resolution": ci.resolution} for col, ci in columns.items()}
    return facts


def _missing_weights(names: tuple[str, ...]) -> dict[str, str]:
    """``{registry name: short reason}`` for the weight files that cannot be used (offline lookup)."""
    from warpinv.weights import ChecksumError, MissingWeightsError, resolve

    out = {}
    for weight in names:
        try:
            resolve(weight)
        except MissingWeightsError as err:
            spec = getattr(err, "spec", None)
            out[weight] = f"{weight}" + (f" ({spec.filename})" if spec is not None else "") + " missing"
        except ChecksumError as err:
            out[weight] = f"{weight} fails its checksum ({err.kind})"
    return out


def build_metric_set(names: list[str], *, allow_random: bool = False, require_weights: bool = False,
                     device: str | torch.device = "cpu") -> tuple[MetricSet, list[tuple[str, str]]]:
    """Build the suite's metrics.

    A metric whose weight files are missing (looked up offline, ``info.weight_names``) is not built:
    it is listed unavailable with the reason, built with seeded random weights when
    ``allow_random``, or -- with ``require_weights`` -- returned as ``(metric, weight name)`` pairs
    for the caller to report all at once.

    Raises:
        ConfigError: an unknown metric name (the message lists the registered ones).
    """
    from warpinv.config import ConfigError
    from warpinv.metrics import build_metric, metric_info
    from warpinv.weights import MissingWeightsError

    out = MetricSet()
    required: list[tuple[str, str]] = []
    for name in dict.fromkeys(names):
        try:
            info = metric_info(name)
        except KeyError as err:
            raise ConfigError(f"metrics: {err.args[0] if err.args else err}") from None
        missing = _missing_weights(tuple(getattr(info, "weight_names", ()) or ()))
        random = False
        if missing:
            if require_weights:
                required += [(name, w) for w in missing]
                continue
            if not allow_random:
                out.unavailable[name] = ("weights " + "; ".join(missing.values()) + " (`warpinv weights check`; "
                                         "allow_random_metrics=true computes it with random weights)")
                out.info[name] = {"status": "unavailable", "reason": out.unavailable[name]}
                continue
            random = True
        try:
            metric = build_metric(name, allow_random=random)
        except MissingWeightsError as err:  # a weight the metric did not declare
            if require_weights:
                required.append((name, err.weight_name))
                continue
            out.unavailable[name] = f"weights {err.weight_name} missing"
            out.info[name] = {"status": "unavailable", "reason": out.unavailable[name]}
            continue
        if isinstance(metric, torch.nn.Module):
            metric = metric.to(device).eval()
        out.modules[name] = metric
        out.kinds[name] = metric_kind(name, metric)
        out.info[name] = metric_facts(name, metric)
    return out, required


# ------------------------------------------------------------------------------------- utilities


def view_name(camera: Tensor, prefix: str = "") -> str:
    """``yaw+0.35,pitch-0.20`` from a ``(25,)`` label (yaw/pitch as in ``yaw_pitch_camera``)."""
    from warpinv.cameras import cam2world_to_yaw_pitch, unpack_label

    yaw, pitch = cam2world_to_yaw_pitch(unpack_label(camera.reshape(1, 25).double())[0])
    return f"{prefix}yaw{float(yaw):+.2f},pitch{float(pitch):+.2f}"


def sweep_cameras(camera: Tensor, yaws: list[float], pitch: float | None,
                  lookat: tuple[float, float, float] | None = None) -> tuple[Tensor, list[str]]:
    """Cameras at ``input yaw + offset`` (pitch fixed or the input's), same radius and focal, looking
    at ``lookat`` (the generator's ``avg_camera_pivot``; EG3D's FFHQ pivot when ``None``)."""
    from warpinv.cameras import cam2world_to_yaw_pitch, unpack_label, yaw_pitch_camera
    from warpinv.cameras.lookat import DEFAULT_LOOKAT

    if not yaws:
        return camera.new_zeros(0, 25), []
    pose, intrinsics = unpack_label(camera.reshape(1, 25).double())
    yaw0, pitch0 = cam2world_to_yaw_pitch(pose)
    radius = float(pose[0, :3, 3].norm())
    focal = float(intrinsics[0, 0, 0])
    p = float(pitch0) if pitch is None else float(pitch)
    yaw_t = torch.tensor([float(yaw0) + y for y in yaws], dtype=torch.float64)
    cams = yaw_pitch_camera(yaw_t, torch.full_like(yaw_t, p), radius, lookat or DEFAULT_LOOKAT, focal)
    names = [f"yaw{y:+.2f}" for y in yaws]
    return cams.to(camera.device, camera.dtype), names


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_") or "item"


def to_uint8(image: Tensor) -> Tensor:
    """``(3, H, W)`` in [-1, 1] -> ``(H, W, 3)`` uint8."""
    return ((image.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu()


def depth_to_uint8(depth: Tensor) -> Tensor:
    """``(1, H, W)`` depth -> ``(H, W, 3)`` uint8, near = bright (min-max over the image)."""
    d = depth.detach().float()[0]
    lo, hi = float(d.min()), float(d.max())
    d = (hi - d) / (hi - lo) if hi > lo else torch.zeros_like(d)
    g = (d * 255).round().to(torch.uint8).cpu()
    return g.unsqueeze(-1).repeat(1, 1, 3)


def save_png(array: Tensor, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.numpy()).save(path)


def _peak_rss_mb() -> float:
    """Peak resident memory of this process since the last reset (VmHWM), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak_rss() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: reset VmHWM to the current RSS
    except OSError:
        pass


def _scalar(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, Tensor):
        if value.numel() != 1:
            value = value.float().mean()
        return float(value.item())
    return float(value)


# --------------------------------------------------------------------------------------- renderer


class InversionRenderer:
    """Renders one inversion at any cameras: deterministic, ``noise_mode="const"``, batched.

    For the base ``Inversion`` (a latent plus an optional generator delta) the tri-planes depend on
    the latent only, so the backbone runs once per image (on the first call) and only the renderer
    and the super-resolution run per view -- the numbers of ``Inversion.render`` at every camera.
    Inversion subclasses that override ``render`` are rendered through it. Views go in chunks of
    ``render_batch``. Returns ``image``, ``image_raw``, ``image_depth`` and ``weight_sum`` (what
    :class:`warpinv.metrics.RenderCache` keeps).
    """

    KEYS = ("image", "image_raw", "image_depth", "weight_sum")

    def __init__(self, G: Any, inversion: Inversion, render_batch: int = 16) -> None:
        self.G = G
        self.inversion = inversion
        self.render_batch = render_batch
        self._planes: Tensor | None = None

    @torch.no_grad()
    def __call__(self, cameras: Tensor) -> dict[str, Tensor]:
        from warpinv.methods.base import swapped_tensors

        chunks: list[dict[str, Tensor]] = []
        if type(self.inversion).render is Inversion.render:
            ws = self.inversion.ws.to(cameras.device)
            with swapped_tensors(self.G, self.inversion.generator_delta):
                if self._planes is None:
                    self._planes = self.G.planes(ws, noise_mode="const")
                planes = self._planes
                for chunk in cameras.split(self.render_batch):
                    n = chunk.shape[0]
                    chunks.append(self.G.render_planes(planes.expand(n, *planes.shape[1:]), ws.expand(n, -1, -1),
                                                       chunk, deterministic=True, noise_mode="const"))
        else:
            for chunk in cameras.split(self.render_batch):
                chunks.append(self.inversion.render(self.G, chunk, noise_mode="const", deterministic=True))
        return {k: torch.cat([c[k].float() for c in chunks]) for k in self.KEYS if k in chunks[0]}


# -------------------------------------------------------------------------------------- evaluator


class BenchEvaluator:
    """Implements :class:`warpinv.methods.base.Evaluator` for one method of a suite.

    Args:
        label, method_name, config_hash, split: copied into every row.
        metrics: the suite's :class:`MetricSet`.
        gt_novel, yaw_sweep, sweep_pitch, multiview, render_batch: the suite's ``views``.
        out_dir: the run's output folder (images and inversions are written below it).
        save_image_ids: ids whose images are saved for the HTML grid.
        save_inversions: save every ``Inversion`` to ``inversions/<label>/<id>.safetensors``.
    """

    def __init__(self, *, label: str, method_name: str, config_hash: str, split: str, metrics: MetricSet,
                 gt_novel: bool = True, yaw_sweep: list[float] | None = None, sweep_pitch: float | None = 0.0,
                 multiview: bool = True, render_batch: int = 16, out_dir: str | Path = ".",
                 save_image_ids: set[str] | None = None, save_inversions: bool = False) -> None:
        self.label = label
        self.method_name = method_name
        self.config_hash = config_hash
        self.split = split
        self.metrics = metrics
        self.gt_novel = gt_novel
        self.yaw_sweep = list(yaw_sweep or [])
        self.sweep_pitch = sweep_pitch
        self.multiview = multiview
        self.render_batch = render_batch
        self.out_dir = str(out_dir)
        self.save_image_ids = set(save_image_ids or ())
        self.save_inversions = save_inversions
        self._device: torch.device | None = None

    # -- rows ---------------------------------------------------------------------------------------

    def _base(self, item: InversionItem, view: str, **extra: Any) -> dict[str, Any]:
        return make_row(image_id=item.image_id, method=self.label, method_name=self.method_name,
                        config_hash=self.config_hash, view=view, split=self.split, **extra)

    def failed(self, method: InversionMethod, item: InversionItem, reason: str, seconds: float) -> list[dict[str, Any]]:
        from warpinv.methods.base import image_seed

        row = self._base(item, INPUT_VIEW, status=STATUS_FAILED, error=reason, seconds=float(seconds),
                         peak_mem_mb=math.nan, peak_rss_mb=_peak_rss_mb(), group=1, time=time.time(),
                         seed=image_seed(item.image_id, getattr(method.config, "seed", 0)))
        _reset_peak_rss()
        return [row]

    def evaluate(self, method: InversionMethod, item: InversionItem, inversion: Inversion, seconds: float,
                 peak_mem_mb: float) -> list[dict[str, Any]]:
        from warpinv.methods.base import image_seed

        peak_rss = _peak_rss_mb()
        start = time.perf_counter()
        device = item.image.device
        if self._device != device:
            self.metrics.to(device)
            self._device = device
        with torch.no_grad():
            rows, images = self._score(method, item, inversion)
        if item.image_id in self.save_image_ids:
            self._save_images(item, images)
        if self.save_inversions:
            inversion.save(Path(self.out_dir) / "inversions" / safe_name(self.label) / f"{safe_name(item.image_id)}.safetensors")
        now = time.time()
        common = {"seconds": float(seconds), "peak_mem_mb": float(peak_mem_mb), "peak_rss_mb": peak_rss,
                  "eval_seconds": time.perf_counter() - start, "group": len(rows), "time": now,
                  "seed": image_seed(item.image_id, getattr(method.config, "seed", 0))}
        for r in rows:
            r.update(common)
        rows[0]["info"] = _jsonable(inversion.info)
        _reset_peak_rss()
        return rows

    # -- rendering and scoring ---------------------------------------------------------------------

    def _cameras(self, item: InversionItem, with_sweep: bool = True,
                 lookat: tuple[float, float, float] | None = None) -> tuple[Tensor, list[str], int, int]:
        cams = [item.camera.reshape(1, 25)]
        names = [INPUT_VIEW]
        n_gt = 0
        gt_cams = item.extras.get("novel_cameras") if self.gt_novel else None
        if gt_cams is not None and item.extras.get("novel_images") is not None:
            gt_cams = gt_cams.reshape(-1, 25).to(item.camera)
            n_gt = gt_cams.shape[0]
            cams.append(gt_cams)
            given = item.extras.get("novel_view_names")
            if isinstance(given, (list, tuple)) and given and isinstance(given[0], (list, tuple)):
                given = given[0]
            for v in range(n_gt):
                if isinstance(given, (list, tuple)) and len(given) == n_gt:
                    names.append(f"gt:{given[v]}")
                else:
                    names.append(view_name(gt_cams[v], "gt:"))
        sweep, sweep_names = sweep_cameras(item.camera, self.yaw_sweep if with_sweep else [], self.sweep_pitch, lookat)
        cams.append(sweep.to(item.camera))
        names += sweep_names
        return torch.cat(cams), names, n_gt, len(sweep_names)

    def _score(self, method: InversionMethod, item: InversionItem,
               inversion: Inversion) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        # Sweep views feed identity metrics and the HTML grid; render them only when one of those uses them.
        identity = self.metrics.of_kind(KIND_IDENTITY)
        with_sweep = bool(identity) or item.image_id in self.save_image_ids
        pivot = method.G.rendering_kwargs.get("avg_camera_pivot")
        lookat = tuple(float(v) for v in pivot) if pivot is not None else None
        cams, names, n_gt, n_sweep = self._cameras(item, with_sweep, lookat)
        renderer = InversionRenderer(method.G, inversion, self.render_batch)
        out = renderer(cams)
        renders = out["image"].float().clamp(-1, 1)
        target = item.image.float()
        if renders.shape[-2:] != target.shape[-2:]:
            renders = F.interpolate(renders, size=target.shape[-2:], mode="bilinear", align_corners=False,
                                    antialias=True).clamp(-1, 1)
        recon = renders[:1]
        rows: list[dict[str, Any]] = []
        pair = {**self.metrics.of_kind(KIND_PAIR), **identity}

        notes: list[str] = []
        metrics: dict[str, Any] = {}
        for name, m in pair.items():
            metrics.update(self._call_pair(name, m, recon, target, item.mask, notes))
        rows.append(self._base(item, INPUT_VIEW, metrics=metrics, notes=notes))

        gt_images = None
        if n_gt:
            gt_images = item.extras["novel_images"].reshape(n_gt, *target.shape[1:]).to(target)
            for name, (values, vnotes) in zip(names[1: 1 + n_gt],
                                              self._score_novel(pair, renders[1: 1 + n_gt], gt_images,
                                                                names[1: 1 + n_gt])):
                rows.append(self._base(item, name, metrics=values, notes=vnotes))

        sweep_renders = renders[1 + n_gt:]
        if n_sweep and identity:
            for v in range(n_sweep):
                vnotes: list[str] = []
                vm: dict[str, Any] = {}
                for name, m in identity.items():
                    vm.update(self._call_pair(name, m, sweep_renders[v: v + 1], target, None, vnotes))
                rows.append(self._base(item, names[1 + n_gt + v], metrics=vm, notes=vnotes))

        multiview = self.metrics.of_kind(KIND_MULTIVIEW)
        if self.multiview and multiview:
            from warpinv.metrics import RenderCache

            rk = getattr(method.G, "rendering_kwargs", {})
            cache = RenderCache(renderer, ray_range=(float(rk["ray_start"]), float(rk["ray_end"]))
                                if "ray_start" in rk else None)
            camera = item.camera.reshape(1, 25)
            cache.add(camera, {k: v[:1] for k, v in out.items()})  # the input view is not rendered again
            mnotes: list[str] = []
            mm: dict[str, Any] = {}
            for name, m in multiview.items():
                try:
                    mm.update(_flatten(name, m(cache, camera, target, item.mask)))
                except (ValueError, RuntimeError) as err:
                    mnotes.append(_note(name, err))
                    mm.update({col: None for col in self.metrics.info.get(name, {}).get("columns", {name: 0})})
            rows.append(self._base(item, MULTIVIEW_VIEW, metrics=mm, notes=mnotes))

        images = {"input": target[0], "reconstruction": recon[0], "depth": out["image_depth"][0],
                  "gt": [(names[1 + v], gt_images[v], renders[1 + v]) for v in range(n_gt)],
                  "sweep": [(names[1 + n_gt + v], sweep_renders[v]) for v in range(n_sweep)]}
        return rows, images

    def _call_pair(self, name: str, metric: Any, pred: Tensor, target: Tensor, mask: Tensor | None,
                   notes: list[str]) -> dict[str, float | None]:
        try:
            value = metric(pred, target, mask.to(pred)) if mask is not None else metric(pred, target)
        except (ValueError, RuntimeError) as err:
            notes.append(_note(name, err))
            return {name: None}
        return _flatten(name, value)

    def _score_novel(self, pair: dict[str, Any], renders: Tensor, gt: Tensor,
                     names: list[str]) -> list[tuple[dict[str, Any], list[str]]]:
        """Per-view pair metrics of renders ``(V, 3, H, W)`` at the GT cameras vs the GT images
        ``(V, 3, H, W)``: ``[(values, notes)]`` per view.

        One ``score_novel_views`` call per metric (each metric still scores every view in one
        batch), so a metric that raises leaves ``None`` and a note naming it in every view while
        the other metrics keep their values.
        """
        from warpinv.metrics import score_novel_views

        views = [n[3:] for n in names]
        values: list[dict[str, Any]] = [{} for _ in names]
        notes: list[str] = []
        for name, metric in pair.items():
            try:
                scored = [_scalar(v[name]) for v in score_novel_views(renders, gt, metrics={name: metric}, names=views)]
            except (ValueError, RuntimeError) as err:
                notes.append(_note(name, err))
                scored = [None] * len(names)
            for view_values, value in zip(values, scored):
                view_values[name] = value
        return [(v, list(notes)) for v in values]

    # -- images -------------------------------------------------------------------------------------

    def _save_images(self, item: InversionItem, images: dict[str, Any]) -> None:
        folder = Path(self.out_dir) / "images" / safe_name(self.label) / safe_name(item.image_id)
        entries: list[dict[str, str]] = []

        def put(name: str, array: Tensor, caption: str, row: str) -> None:
            file = f"{len(entries):02d}_{safe_name(name)}.png"
            save_png(array, folder / file)
            entries.append({"file": file, "caption": caption, "row": row})

        put("input", to_uint8(images["input"]), "input", "main")
        put("reconstruction", to_uint8(images["reconstruction"]), "reconstruction", "main")
        put("depth", depth_to_uint8(images["depth"]), "depth (input view)", "main")
        for view, render in images["sweep"]:
            put(f"{view}", to_uint8(render), f"novel {view}", "main")
        for view, gt, _ in images["gt"]:
            put(f"{view}-truth", to_uint8(gt), f"truth {view[3:]}", "truth")
        for view, _, render in images["gt"]:
            put(f"{view}-render", to_uint8(render), f"render {view[3:]}", "render")
        manifest = {"image_id": item.image_id, "method": self.label, "config_hash": self.config_hash, "images": entries}
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


def _note(name: str, err: BaseException) -> str:
    """``"<metric>: <error type>: <first line of the message>"`` (``_metric_failures`` reads the prefix)."""
    return f"{name}: {type(err).__name__}: {(str(err).splitlines() or [''])[0]}"


def _flatten(name: str, value: Any) -> dict[str, float | None]:
    """A metric result -> ``{column: float}``: a scalar (or one-element tensor) under ``name``; a
    mapping (multi-view metrics) under its own column names."""
    if isinstance(value, dict):
        return {str(k): _scalar(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    return {name: _scalar(value)}


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Tensor):
        return obj.item() if obj.numel() == 1 else obj.tolist()
    if isinstance(obj, float) and not math.isfinite(obj):
        return obj
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def collect_grids(out_dir: str | Path, rows: Iterable[dict[str, Any]],
                  labels: Sequence[str]) -> dict[str, dict[str, list[tuple[str, str, str]]]]:
    """Saved grid images of the tabulated ``rows``, by method label (in ``labels`` order) and image id:
    ``[(path relative to out_dir, caption, grid line)]``.

    A folder is listed only when its manifest names the label, config hash and image id of an ok
    row: images drawn by an older config of the same label, of images outside ``rows`` (a smaller
    ``dataset.limit``) or of failed images are left out. Manifests without a ``config_hash``
    (written before it was recorded) are skipped too, since which config drew them cannot be told.
    """
    out_dir = Path(out_dir)
    wanted = {(r["method"], r["config_hash"], r["image_id"]) for r in rows if r["status"] == STATUS_OK}
    grids: dict[str, dict[str, list[tuple[str, str, str]]]] = {}
    for label in labels:
        per: dict[str, list[tuple[str, str, str]]] = {}
        for manifest in sorted((out_dir / "images" / safe_name(label)).glob("*/manifest.json")):
            data = _read_manifest(manifest)
            if data is None or (data.get("method"), data.get("config_hash"), data.get("image_id")) not in wanted:
                continue
            rel = manifest.parent.relative_to(out_dir)
            per[str(data["image_id"])] = [
                (f"{rel.as_posix()}/{e['file']}", e["caption"], e.get("row", "main")) for e in data.get("images", [])
                if (manifest.parent / e["file"]).is_file()]
        grids[label] = per
    return grids


def _read_manifest(path: Path) -> dict[str, Any] | None:
    """A grid folder's ``manifest.json``, or ``None`` when it cannot be read or is not an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
