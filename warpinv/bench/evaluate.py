"""The benchmark's evaluator: renders each inversion at the evaluation views and scores it into rows.

For one image (:meth:`BenchEvaluator.rows` of an :class:`~warpinv.methods.base.InversionOutcome`):

1. One batched render through the method's own renderer (:meth:`InversionMethod.renderer`:
   deterministic, ``noise_mode="const"``) of the input camera, the dataset's ground-truth novel
   cameras (when present) and the suite's yaw sweep (:mod:`warpinv.bench.views`).
2. Rows: ``input`` (pair metrics of the reconstruction vs the input image, with the item's mask, and
   identity metrics; for occluded items, the OOD metrics as extra columns, see below), one row per
   ground-truth novel view (``gt:yaw+0.35,pitch-0.20``, scored with
   ``warpinv.metrics.score_novel_views``), one row per sweep view with identity metrics vs the input
   (``yaw+0.25``), and one ``mv`` row with the multi-view metrics.
3. A few images per method are saved for the HTML grid (:mod:`warpinv.bench.grids`), and optionally
   the ``Inversion`` file.

Pair metrics that need a per-view mask from the dataset declare its item extra as ``mask_key``
(``psnr_visible``: ``novel_visible (1, V, 1, H, W)``, each ground-truth view's covisibility mask, the
same pixels for every method). They are scored on the ground-truth rows with those masks; the input
row, and the ground-truth rows of items without the extra, get ``None`` with a note.

OOD metrics (:mod:`warpinv.metrics.ood`) score items that carry ``clean_image`` (``clean_psnr``; its
``_in``/``_out`` columns also need the mask) or a supplied ``ood_mask`` (``blend_iou``; ``has_ood_mask``
False means none was supplied). A renderer that is :class:`~warpinv.methods.rendering.SeparatesOOD` is
scored on its ``without_ood`` render and ``blend_map`` at the input camera; any other renderer on its
ordinary input-view render, and it has no blend map (``blend_iou`` ``None`` with a note). Items without
those extras get no OOD columns at all.

A metric that raises on an image leaves ``None`` in that row with the reason in ``notes`` (per
metric: the other metrics keep their values). An out-of-memory error or a non-finite value while
evaluating is not a metric's problem: the whole image becomes a failed row, retried on the next
run. The evaluator runs inside :class:`~warpinv.bench.writer.EvaluationWriter`, the Lightning
callback the harness attaches; ``predict_step`` knows nothing of it.
"""
from __future__ import annotations

import math
import resource
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from warpinv.bench.grids import (
    GridEntry,
    depth_to_uint8,
    grid_folder,
    safe_name,
    save_grid_images,
    to_uint8,
    unique_name,
)
from warpinv.bench.metric_set import KIND_IDENTITY, KIND_MULTIVIEW, KIND_OOD, KIND_PAIR, MetricSet, entry_column
from warpinv.bench.rows import INPUT_VIEW, MULTIVIEW_VIEW, STATUS_FAILED, make_row
from warpinv.bench.views import ViewSet, image_views
from warpinv.methods.base import (
    InversionItem,
    InversionMethod,
    InversionOutcome,
    NonFiniteLossError,
    Precision,
    failure_reason,
    image_seed,
)


class BenchEvaluator:
    """Turns one method's inversion outcomes into result rows.

    Args:
        label, method_name, config_hash, split: copied into every row.
        generator: the generator the method ran on (its own, else the suite's), copied into every row.
        metrics: the suite's :class:`MetricSet`.
        gt_novel, yaw_sweep, sweep_pitch, protocols, multiview, render_batch: the suite's ``views``.
        out_dir: the run's output folder (images and inversions are written below it).
        save_image_ids: ids whose images are saved for the HTML grid.
        save_inversions: save every ``Inversion`` to ``inversions/<label>/<id>.safetensors``.
        inversion_precision: precision of the saved generator tensors (``float16``: residuals
            from the method's generator, see :meth:`Inversion.save`).
        input_fingerprints: each image's input fingerprint, copied into its rows as
            ``input_sha256`` (resume compares it with the image as it is then).
    """

    def __init__(self, *, label: str, method_name: str, config_hash: str, split: str, metrics: MetricSet,
                 generator: str = "", gt_novel: bool = True, yaw_sweep: list[float] | None = None,
                 sweep_pitch: float | None = 0.0, protocols: list[str] | None = None, multiview: bool = True,
                 render_batch: int = 16,
                 out_dir: str | Path = ".", save_image_ids: set[str] | None = None, save_inversions: bool = False,
                 inversion_precision: Precision = "float32", input_fingerprints: dict[str, str] | None = None) -> None:
        self.label = label
        self.method_name = method_name
        self.config_hash = config_hash
        self.split = split
        self.generator = generator
        self.metrics = metrics
        self.gt_novel = gt_novel
        self.yaw_sweep = list(yaw_sweep or [])
        self.sweep_pitch = sweep_pitch
        self.protocols = list(protocols or [])
        self.multiview = multiview
        self.render_batch = render_batch
        self.out_dir = Path(out_dir)
        self.save_image_ids = set(save_image_ids or ())
        self.save_inversions = save_inversions
        self.inversion_precision = inversion_precision
        self.input_fingerprints = dict(input_fingerprints or {})
        self._device: torch.device | None = None

    # -- entry points -------------------------------------------------------------------------------

    def rows(self, method: InversionMethod, outcome: InversionOutcome) -> list[dict[str, Any]]:
        """The rows of one outcome: a failed row for a failed inversion or a failed evaluation
        (out of memory, non-finite), else the scored rows."""
        if not outcome.ok:
            return self.failed(method, outcome.item, outcome.error or "no reason recorded", outcome.seconds)
        try:
            return self.evaluate(method, outcome)
        except (NonFiniteLossError, RuntimeError) as err:
            reason = failure_reason(err)
            if reason is None:
                raise
            if outcome.item.image.device.type == "cuda":
                torch.cuda.empty_cache()
            return self.failed(method, outcome.item, reason + " (during evaluation)", outcome.seconds)

    def failed(self, method: InversionMethod, item: InversionItem, reason: str, seconds: float) -> list[dict[str, Any]]:
        """The single row of an image that has no result."""
        row = self._base(item, INPUT_VIEW, status=STATUS_FAILED, error=reason, seconds=float(seconds),
                         peak_mem_mb=math.nan, peak_rss_mb=peak_rss_mb(), group=1, time=time.time(),
                         seed=image_seed(item.image_id, method.config.seed))
        reset_peak_rss()
        return [row]

    def evaluate(self, method: InversionMethod, outcome: InversionOutcome) -> list[dict[str, Any]]:
        """The scored rows of a successful outcome (errors of the evaluation propagate)."""
        item, inversion = outcome.item, outcome.inversion
        assert inversion is not None
        peak_rss = peak_rss_mb()
        start = time.perf_counter()
        self._metrics_on(item.image.device)
        with torch.no_grad():
            rows, grid = self._score(method, item, inversion)
        if item.image_id in self.save_image_ids:
            save_grid_images(grid_folder(self.out_dir, self.label, item.image_id), image_id=item.image_id,
                             label=self.label, config_hash=self.config_hash, entries=grid)
        if self.save_inversions:
            inversion.save(self.inversion_path(item.image_id), precision=self.inversion_precision, base=method.G)
        common = {"seconds": float(outcome.seconds), "peak_mem_mb": float(outcome.peak_mem_mb),
                  "peak_rss_mb": peak_rss, "eval_seconds": time.perf_counter() - start, "group": len(rows),
                  "time": time.time(), "seed": image_seed(item.image_id, method.config.seed)}
        for r in rows:
            r.update(common)
        rows[0]["info"] = jsonable(inversion.info)
        reset_peak_rss()
        return rows

    def inversion_path(self, image_id: str) -> Path:
        """Where :attr:`save_inversions` writes the inversion of ``image_id``."""
        return self.out_dir / "inversions" / safe_name(self.label) / f"{unique_name(image_id)}.safetensors"

    # -- rendering and scoring ---------------------------------------------------------------------

    def _base(self, item: InversionItem, view: str, **extra: Any) -> dict[str, Any]:
        return make_row(image_id=item.image_id, method=self.label, method_name=self.method_name,
                        config_hash=self.config_hash, view=view, split=self.split, generator=self.generator,
                        input_sha256=self.input_fingerprints.get(item.image_id), **extra)

    def _metrics_on(self, device: torch.device) -> None:
        if self._device != device:
            self.metrics.to(device)
            self._device = device

    def _views(self, method: InversionMethod, item: InversionItem) -> ViewSet:
        # Sweep and protocol views feed identity metrics (and the HTML grid: the sweep); render them
        # only when something uses them.
        identity = bool(self.metrics.of_kind(KIND_IDENTITY))
        with_sweep = identity or item.image_id in self.save_image_ids
        rk = method.G.rendering_kwargs
        pivot = rk.get("avg_camera_pivot")
        lookat = tuple(float(v) for v in pivot) if pivot is not None else None
        return image_views(item.camera, item.extras, gt_novel=self.gt_novel,
                           yaw_sweep=self.yaw_sweep if with_sweep else [], sweep_pitch=self.sweep_pitch,
                           lookat=lookat, protocols=self.protocols if identity else [], image_id=item.image_id,
                           radius=float(rk.get("avg_camera_radius", 2.7)))

    def _score(self, method: InversionMethod, item: InversionItem,
               inversion: Any) -> tuple[list[dict[str, Any]], list[GridEntry]]:
        views = self._views(method, item)
        renderer = method.renderer(inversion, self.render_batch)
        out = renderer(views.cameras)
        target = item.image.float()
        renders = resize_like(out["image"].float().clamp(-1, 1), target)
        identity = self.metrics.of_kind(KIND_IDENTITY)
        pair = {**self.metrics.of_kind(KIND_PAIR), **identity}

        notes: list[str] = []
        metrics: dict[str, Any] = {}
        for name, m in pair.items():
            if view_mask_key(m) is not None:
                notes.append(f"{name}: not applicable: only ground-truth novel views have a {view_mask_key(m)} mask")
                metrics[name] = None
                continue
            metrics.update(call_pair(name, m, renders[:1], target, item.mask, notes))
        ood = self.metrics.of_kind(KIND_OOD)
        if ood:
            metrics.update(score_ood(ood, renderer, item, renders[:1], notes))
        rows = [self._base(item, INPUT_VIEW, metrics=metrics, notes=notes)]

        gt_images = None
        if views.n_gt:
            gt_images = item.extras["novel_images"].reshape(views.n_gt, *target.shape[1:]).to(target)
            gt_names = views.names[views.gt]
            masks = view_masks(pair, item.extras, views.n_gt, target)
            for name, (values, vnotes) in zip(gt_names, score_novel(pair, renders[views.gt], gt_images, gt_names,
                                                                    masks)):
                rows.append(self._base(item, name, metrics=values, notes=vnotes))

        scored_views = [*range(views.sweep.start, views.sweep.stop), *range(views.protocol.start, views.protocol.stop)]
        if scored_views and identity:
            for name, render in zip([views.names[v] for v in scored_views], renders[scored_views]):
                vnotes: list[str] = []
                vm: dict[str, Any] = {}
                for metric_name, m in identity.items():
                    vm.update(call_pair(metric_name, m, render[None], target, None, vnotes))
                rows.append(self._base(item, name, metrics=vm, notes=vnotes))

        multiview = self.metrics.of_kind(KIND_MULTIVIEW)
        if self.multiview and multiview:
            rows.append(self._base(item, MULTIVIEW_VIEW, **self._score_multiview(method, item, renderer, out,
                                                                                 multiview)))
        entries = grid_entries(item, views, renders, out["image_depth"][0], gt_images)
        entries += [(name, to_uint8(image), caption, "method") for name, image, caption in inversion.illustrations()]
        return rows, entries

    def _score_multiview(self, method: InversionMethod, item: InversionItem, renderer: Any,
                         out: dict[str, Tensor], multiview: dict[str, Any]) -> dict[str, Any]:
        from warpinv.metrics import RenderCache

        rk = method.G.rendering_kwargs
        cache = RenderCache(renderer, ray_range=(float(rk["ray_start"]), float(rk["ray_end"]))
                            if "ray_start" in rk else None)
        camera = item.camera.reshape(1, 25)
        cache.add(camera, {k: v[:1] for k, v in out.items()})  # the input view is not rendered again
        notes: list[str] = []
        values: dict[str, Any] = {}
        for name, m in multiview.items():
            try:
                values.update(flatten(name, m(cache, camera, item.image.float(), item.mask)))
            except (ValueError, RuntimeError) as err:
                _raise_if_fatal(err)
                notes.append(note(name, err))
                values.update({col: None for col in self.metrics.info.get(name, {}).get("columns", {name: 0})})
        return {"metrics": values, "notes": notes}


# ---------------------------------------------------------------------------------- scoring helpers


def resize_like(renders: Tensor, target: Tensor) -> Tensor:
    """``renders (V, 3, h, w)`` at ``target``'s size (bilinear, antialiased), clamped to [-1, 1]."""
    if renders.shape[-2:] == target.shape[-2:]:
        return renders
    return F.interpolate(renders, size=target.shape[-2:], mode="bilinear", align_corners=False,
                         antialias=True).clamp(-1, 1)


def call_pair(name: str, metric: Any, pred: Tensor, target: Tensor, mask: Tensor | None,
              notes: list[str]) -> dict[str, float | None]:
    """``{column: value}`` of one pair metric; ``{name: None}`` and a note when it raises."""
    try:
        value = metric(pred, target, mask.to(pred)) if mask is not None else metric(pred, target)
    except (ValueError, RuntimeError) as err:
        _raise_if_fatal(err)
        notes.append(note(name, err))
        return {name: None}
    return flatten(name, value)


def supplied_ood_mask(extras: dict[str, Any]) -> Tensor | None:
    """The item's occluder mask ``ood_mask (1, 1, H, W)`` as float, or ``None`` when there is none or
    ``has_ood_mask`` says it was not supplied (a placeholder of zeros)."""
    mask = extras.get("ood_mask")
    flag = extras.get("has_ood_mask", True)
    supplied = bool(flag.reshape(-1)[0]) if isinstance(flag, Tensor) else bool(flag)
    if mask is None or not supplied:
        return None
    return mask.float() if isinstance(mask, Tensor) and mask.dtype == torch.bool else mask


def score_ood(metrics: dict[str, Any], renderer: Any, item: InversionItem, input_render: Tensor,
              notes: list[str]) -> dict[str, float | None]:
    """The OOD metrics' columns of the input row (see the module docstring for which items get which).

    Args:
        metrics: the suite's OOD metrics by suite entry (``clean_psnr``, ``clean_psnr@512``, ``blend_iou``).
        renderer: the method's renderer; :class:`~warpinv.methods.rendering.SeparatesOOD` gives the
            OOD-free render and the blend map, at the input camera.
        item: the image, with ``clean_image (1, 3, H, W)``, ``ood_mask (1, 1, H, W)`` and
            ``has_ood_mask (1,)`` among its extras when the dataset has them.
        input_render: ``(1, 3, H, W)``, the ordinary input-view render at the input's size.
        notes: the row's notes; a metric that raises (or cannot apply) adds one.
    """
    from warpinv.methods.rendering import SeparatesOOD
    from warpinv.metrics.ood import BlendIoU, CleanPSNR

    clean = item.extras.get("clean_image")
    mask = supplied_ood_mask(item.extras)
    separates = isinstance(renderer, SeparatesOOD)
    camera = item.camera.reshape(1, 25)
    removed: list[Tensor] = []  # the OOD-free render, made once for every clean_psnr entry

    def ood_free() -> Tensor:
        if not removed:
            image = renderer.without_ood(camera)["image"].float().clamp(-1, 1) if separates else input_render
            removed.append(resize_like(image, input_render))
        return removed[0]

    values: dict[str, float | None] = {}
    for name, metric in metrics.items():
        if isinstance(metric, CleanPSNR):
            if clean is None:
                continue
            columns = metric.columns(mask is not None)
        elif isinstance(metric, BlendIoU):
            if mask is None:
                continue
            columns = (metric.info.name,)
        else:
            notes.append(f"{name}: the evaluator does not know the inputs of OOD metric {type(metric).__name__}")
            continue
        keys = [entry_column(name, metric.info.name, c) for c in columns]
        if isinstance(metric, BlendIoU) and not separates:
            notes.append(f"{name}: no blend map: the method's renderer ({type(renderer).__name__}) has no OOD part")
            values.update(dict.fromkeys(keys))
            continue
        try:
            if isinstance(metric, CleanPSNR):
                result = metric(ood_free(), clean.to(input_render), None if mask is None else mask.to(input_render))
            else:
                result = metric(renderer.blend_map(camera).float(), mask.to(input_render.device))
        except (ValueError, RuntimeError) as err:
            _raise_if_fatal(err)
            notes.append(note(name, err))
            values.update(dict.fromkeys(keys))
            continue
        values.update({entry_column(name, metric.info.name, c): scalar(v) for c, v in result.items()})
    return values


def view_mask_key(metric: Any) -> str | None:
    """The item extra holding the per-view masks a pair metric requires (``novel_visible`` for
    ``psnr_visible``), or ``None`` for a metric that takes the item's ordinary mask."""
    key = getattr(metric, "mask_key", None)
    return key if isinstance(key, str) else None


def view_masks(pair: dict[str, Any], extras: dict[str, Any], n_views: int, target: Tensor) -> dict[str, Tensor]:
    """``{extra: (V, 1, H, W)}``: the per-view masks that ``pair`` metrics require and the item has
    (``extras[key]`` is ``(1, V, 1, H, W)``), as float on ``target (1, 3, H, W)``'s device."""
    keys = {k for k in map(view_mask_key, pair.values()) if k is not None}
    return {k: extras[k].reshape(n_views, 1, *target.shape[-2:]).to(target) for k in sorted(keys)
            if isinstance(extras.get(k), Tensor)}


def score_novel(pair: dict[str, Any], renders: Tensor, gt: Tensor, names: list[str],
                masks: dict[str, Tensor] | None = None) -> list[tuple[dict[str, Any], list[str]]]:
    """Per-view pair metrics of renders ``(V, 3, H, W)`` at the GT cameras vs the GT images
    ``(V, 3, H, W)``: ``[(values, notes)]`` per view.

    One ``score_novel_views`` call per metric (each metric still scores every view in one batch),
    so a metric that raises leaves ``None`` and a note naming it in every view while the other
    metrics keep their values. Metrics with a :func:`view_mask_key` are scored with ``masks[key]``
    ``(V, 1, H, W)``; without it they are ``None`` with a note (the dataset has no such masks).
    The others are scored without a mask.
    """
    from warpinv.metrics import score_novel_views

    views = [n[3:] for n in names]
    values: list[dict[str, Any]] = [{} for _ in names]
    notes: list[str] = []
    for name, metric in pair.items():
        key = view_mask_key(metric)
        mask = None if key is None else (masks or {}).get(key)
        if key is not None and mask is None:
            notes.append(f"{name}: not applicable: the dataset gives these views no {key} masks")
            scored: list[float | None] = [None] * len(names)
        else:
            try:
                scored = [scalar(v[name]) for v in score_novel_views(renders, gt, metrics={name: metric}, names=views,
                                                                     masks=mask)]
            except (ValueError, RuntimeError) as err:
                _raise_if_fatal(err)
                notes.append(note(name, err))
                scored = [None] * len(names)
        for view_values, value in zip(values, scored):
            view_values[name] = value
    return [(v, list(notes)) for v in values]


def grid_entries(item: InversionItem, views: ViewSet, renders: Tensor, depth: Tensor,
                 gt_images: Tensor | None) -> list[GridEntry]:
    """The HTML grid of one image: input, reconstruction, depth and sweep views on the main line;
    ground truth and renders of the GT views on their own lines."""
    entries: list[GridEntry] = [("input", to_uint8(item.image[0]), "input", "main"),
                                ("reconstruction", to_uint8(renders[0]), "reconstruction", "main"),
                                ("depth", depth_to_uint8(depth), "depth (input view)", "main")]
    entries += [(name, to_uint8(r), f"novel {name}", "main")
                for name, r in zip(views.names[views.sweep], renders[views.sweep])]
    gt_names = views.names[views.gt]
    if gt_images is not None:
        entries += [(f"{n}-truth", to_uint8(g), f"truth {n[3:]}", "truth") for n, g in zip(gt_names, gt_images)]
        entries += [(f"{n}-render", to_uint8(r), f"render {n[3:]}", "render")
                    for n, r in zip(gt_names, renders[views.gt])]
    return entries


def _raise_if_fatal(err: BaseException) -> None:
    """Out of memory inside a metric fails the image (a failed row, retried), not one cell."""
    if failure_reason(err) is not None:
        raise err


def note(name: str, err: BaseException) -> str:
    """``"<metric>: <error type>: <first line of the message>"`` (the runner reads the prefix)."""
    return f"{name}: {type(err).__name__}: {(str(err).splitlines() or [''])[0]}"


def scalar(value: Any) -> float | None:
    """A float from a number or a tensor (the mean of a tensor with several elements)."""
    if value is None:
        return None
    if isinstance(value, Tensor):
        if value.numel() != 1:
            value = value.float().mean()
        return float(value.item())
    return float(value)


def flatten(name: str, value: Any) -> dict[str, float | None]:
    """A metric result -> ``{column: float}``: a scalar (or one-element tensor) under ``name``; a
    mapping (multi-view metrics) under its own column names."""
    if isinstance(value, dict):
        return {str(k): scalar(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    return {name: scalar(value)}


def jsonable(obj: Any) -> Any:
    """``obj`` with tensors and other objects turned into JSON values (for a row's ``info``)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Tensor):
        return obj.item() if obj.numel() == 1 else obj.tolist()
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def peak_rss_mb() -> float:
    """Peak resident memory of this process since the last reset (VmHWM), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> None:
    """Reset VmHWM to the current resident size (Linux), so each image reports its own peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
