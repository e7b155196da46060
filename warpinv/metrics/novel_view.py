"""Ground-truth novel views: per-view pair metrics of renders against the dataset's views.

When a dataset provides ground-truth views of the same face (the synthetic multi-view set:
``item.extras["novel_images"] (1, V, 3, H, W)`` with ``novel_cameras (1, V, 25)``), render the
inversion at those cameras and score each view against its ground truth with the registered pair
metrics (PSNR, SSIM, LPIPS by default), per view.

Example:
    >>> import torch
    >>> truth = torch.zeros(2, 3, 64, 64)
    >>> rendered = truth.clone(); rendered[1] += 0.2   # the second view is off by 0.1 in [0, 1] units
    >>> score_novel_views(rendered, truth, metrics=("psnr",), names=["left", "right"])
    [{'view': 'left', 'psnr': inf}, {'view': 'right', 'psnr': 20.0}]
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor

from warpinv.checks import check_shape
from warpinv.metrics.base import PairMetric, build_metric

__all__ = ["DEFAULT_NOVEL_VIEW_METRICS", "score_novel_views"]

DEFAULT_NOVEL_VIEW_METRICS = ("psnr", "ssim", "lpips_alex")


def _as_views(images: Tensor, name: str) -> Tensor:
    """``(1, V, C, H, W)`` (one image's views, as batched by the loader) -> ``(V, C, H, W)``; others unchanged."""
    if isinstance(images, Tensor) and images.ndim == 5:
        check_shape(images, "1 V C H W", name, note=" for one image, or (V, C, H, W)")
        images = images[0]
    return images


def score_novel_views(
    rendered: Tensor,
    ground_truth: Tensor,
    *,
    metrics: Mapping[str, PairMetric] | Sequence[str | PairMetric] = DEFAULT_NOVEL_VIEW_METRICS,
    names: Sequence[str] | None = None,
    masks: Tensor | None = None,
    allow_random: bool = False,
) -> list[dict[str, float | str]]:
    """Score each rendered novel view against its ground truth.

    Args:
        rendered: ``(V, 3, H, W)`` renders in [-1, 1] (clamped) at the ground-truth cameras, or
            ``(1, V, 3, H, W)``.
        ground_truth: the same shape, in [-1, 1].
        metrics: built pair metrics by column name, or a sequence of registered names and/or built
            metrics (names are built with :func:`~warpinv.metrics.base.build_metric`; pass built
            metrics when scoring many images, to build them once).
        names: one name per view (default ``view0``, ``view1``, ...).
        masks: optional ``(V, 1, H, W)`` (or ``(1, V, 1, H, W)``) validity masks.
        allow_random: passed to :func:`build_metric` for metrics given by name.

    Returns:
        One dict per view: ``{"view": name, <metric name>: value, ...}``.

    Raises:
        ValueError: shapes differ, values out of range, wrong number of names, or a non-pair metric.
        MissingWeightsError: a metric given by name needs weights that are absent.
    """
    rendered, ground_truth = _as_views(rendered, "rendered"), _as_views(ground_truth, "ground_truth")
    masks = None if masks is None else _as_views(masks, "masks")
    n_views = check_shape(rendered, "V 3 H W", "rendered")["V"]
    names = [f"view{i}" for i in range(n_views)] if names is None else list(names)
    if len(names) != n_views:
        raise ValueError(f"got {len(names)} view names for {n_views} views")
    if isinstance(metrics, Mapping):
        built = dict(metrics)
    else:
        built = {}
        for metric in metrics:
            metric = build_metric(metric, allow_random=allow_random) if isinstance(metric, str) else metric
            built[metric.info.name] = metric
    scores: dict[str, list[float]] = {}
    for column, metric in built.items():
        if not isinstance(metric, PairMetric):
            raise ValueError(f"{column!r} is not a pair metric (kind {getattr(metric.info, 'kind', '?')!r})")
        scores[column] = metric(rendered, ground_truth, masks).tolist()
    return [{"view": name, **{column: values[i] for column, values in scores.items()}} for i, name in enumerate(names)]
