"""Metric metadata, the metric base classes, shared input checks and the metric registry.

Every metric is an ``nn.Module`` with an ``info: MetricInfo`` saying what it measures and how
(direction, range, resolution, weights, protocol, which paper's table it matches). Three kinds:

- **pair** metrics (``mse``, ``psnr``, ``ssim``, ``ssim_valid``, ``ms_ssim``, ``lpips_alex``,
  ``lpips_vgg``, ``id_arcface``, ``id_facenet``): ``metric(pred, target, mask=None) -> (N,)``, one
  value per image, with images ``(N, 3, H, W)`` (or one ``(3, H, W)`` image) in **[-1, 1]**;
- **multiview** metrics (``ibrnet_consistency``, ``reprojection_consistency``):
  ``metric(renders, camera, target=None, mask=None) -> {column: value}`` for one inversion, where
  ``renders`` is a :class:`warpinv.metrics.consistency.RenderCache`. Their ``info.outputs`` name
  the columns, each with its own ``MetricInfo``.

Input rules shared by all pair metrics (:func:`check_pair`): the target must lie in [-1, 1]
(1e-4 slack for rounding), the prediction is clamped to [-1, 1] (generators overshoot), both must be
finite floating tensors of the same shape, and a mask is ``(N, 1, H, W)`` in [0, 1] with 1 = valid.

Registry: :data:`METRICS` maps a name to a :class:`MetricEntry`; :func:`build_metric` constructs one
(``allow_random=True`` for seeded random weights, which sets ``metric.random_weights``);
:func:`list_metrics` lists every ``MetricInfo``; :func:`unavailable_reason` says, without building
anything, why a metric cannot run (missing weight files), or ``None``.

Example:
    >>> from warpinv.metrics import build_metric
    >>> psnr = build_metric("psnr")
    >>> x = torch.zeros(2, 3, 256, 256)
    >>> psnr(x, x).tolist()
    [inf, inf]
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from warpinv.checks import check_image, check_mask, check_same_device, check_same_shape

__all__ = [
    "METRICS",
    "DEFAULT_RESOLUTION",
    "PRED_LIMIT",
    "RANGE_TOLERANCE",
    "Metric",
    "MetricEntry",
    "MetricInfo",
    "PairMetric",
    "WrappedPairMetric",
    "build_metric",
    "check_images",
    "check_mask",
    "check_pair",
    "composite",
    "list_metrics",
    "masked_mean",
    "metric_info",
    "register_metric",
    "resize",
    "unavailable_reason",
]

#: Side of the square images pair metrics are computed at by default (pSp lineage, metrics.md §6).
DEFAULT_RESOLUTION = 256
#: Slack allowed outside [-1, 1] for targets (float rounding of conversions such as ``x / 127.5 - 1``).
RANGE_TOLERANCE = 1e-4
#: Predictions are clamped to [-1, 1]; beyond +-PRED_LIMIT they are refused as mis-scaled (e.g. [0, 255]).
PRED_LIMIT = 10.0


@dataclass(frozen=True)
class MetricInfo:
    """What a metric measures and how, for result tables, leaderboard captions and provenance.

    Attributes:
        name: registry name and result column (``psnr``, ``id_arcface``, ...).
        higher_is_better: direction.
        value_range: the range of possible values (``inf`` allowed).
        resolution: side of the square images the metric is computed at; ``None`` = the input's own
            resolution (e.g. the render resolution).
        input_range: value range of the images it takes.
        weights: published file names of the pretrained weights it needs (empty: none).
        protocol: how it is computed, in words.
        comparable_to: which papers' tables the numbers can be set beside (and which not).
        weight_names: ``warpinv.weights`` registry entries of ``weights`` (for lookups and checksums).
        kind: ``"pair"`` (``metric(pred, target, mask) -> (N,)``), ``"multiview"``
            (``metric(renders, camera, target, mask) -> {column: value}``) or ``"ood"`` (occluded
            inputs, :mod:`warpinv.metrics.ood`: ``{column: (N,)}`` from the method's OOD-free render or
            blend map and the item's clean image / occluder mask).
        unit: unit of the value (``"dB"``) or ``""``.
        outputs: for multiview metrics, one ``MetricInfo`` per result column.
    """

    name: str
    higher_is_better: bool
    value_range: tuple[float, float]
    resolution: int | None
    input_range: tuple[float, float]
    weights: tuple[str, ...]
    protocol: str
    comparable_to: str = ""
    weight_names: tuple[str, ...] = ()
    kind: Literal["pair", "multiview", "ood"] = "pair"
    unit: str = ""
    outputs: tuple[MetricInfo, ...] = field(default=())

    def columns(self) -> dict[str, MetricInfo]:
        """Result columns this metric produces, each with its own info (a pair metric: itself)."""
        return {out.name: out for out in self.outputs} if self.outputs else {self.name: self}


# ------------------------------------------------------------------------------------------ input checks


def check_images(images: Tensor, name: str, *, clamp: bool = False) -> Tensor:
    """Validate an image batch in [-1, 1] and return it as ``(N, 3, H, W)``.

    Args:
        images: ``(N, 3, H, W)`` or one ``(3, H, W)`` image.
        name: what to call it in error messages (``pred``, ``target``).
        clamp: clamp to [-1, 1] (predictions) instead of refusing values outside it (targets; slack
            ``RANGE_TOLERANCE``). Values beyond +-``PRED_LIMIT`` are refused either way.

    Raises:
        TypeError: not a tensor.
        ValueError: wrong dimensions or channels, empty, not floating point, NaN/Inf, out of range.

    Example:
        >>> check_images(torch.full((3, 4, 4), 1.2), "pred", clamp=True).amax().item()
        1.0
    """
    return check_image(images, name, tolerance=RANGE_TOLERANCE,
                       clamp_within=(-PRED_LIMIT, PRED_LIMIT) if clamp else None)


def check_pair(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
    """Validate a prediction/target pair (+ mask): same shape, target in [-1, 1], prediction clamped."""
    target = check_images(target, "target")
    pred = check_images(pred, "pred", clamp=True)
    check_same_shape(pred, target)
    check_same_device(pred, target)
    return pred, target.to(pred.dtype), check_mask(mask, target)


# ------------------------------------------------------------------------------------------ image helpers


def resize(images: Tensor, size: int) -> Tensor:
    """Resize ``(N, C, H, W)`` to ``size x size``: bilinear with antialiasing (metrics.md §6).

    Downsampling low-pass filters like torchvision's ``Resize(antialias=True)`` (the pSp metric
    scripts' ``transforms.Resize((256, 256))``); upsampling is plain bilinear. Returns the input when
    it already has that size.
    """
    if tuple(images.shape[-2:]) == (size, size):
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def composite(pred: Tensor, target: Tensor, mask: Tensor | None) -> Tensor:
    """``pred`` where the mask is valid, ``target`` elsewhere (how LPIPS, MS-SSIM and ID honour masks)."""
    return pred if mask is None else pred * mask + target * (1 - mask)


def masked_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    """Per-image mean of ``(N, C, H, W)`` values over the valid pixels of ``(N, 1, H, W)`` mask weights."""
    if mask is None:
        return values.flatten(1).mean(1)
    weights = mask.expand_as(values)
    return (values * weights).flatten(1).sum(1) / weights.flatten(1).sum(1)


# ------------------------------------------------------------------------------------------ base classes


class Metric(nn.Module):
    """Base of every metric: metadata, weight provenance, always in eval mode, no gradients.

    Attributes:
        info: the metric's ``MetricInfo`` (the class attribute; an instance may refine it, e.g. its
            resolution).
        random_weights: the metric runs on seeded random weights (its numbers are meaningless and
            every output must say so).
        source: where its weights came from, in words.
        weight_files: registry name -> path of every weight file it loaded (for checksums).
    """

    info: MetricInfo

    def __init__(self) -> None:
        super().__init__()
        self.random_weights = False
        self.source = "no weights needed"
        self.weight_files: dict[str, str] = {}

    def train(self, mode: bool = True) -> Metric:
        """Metrics never train: BatchNorm statistics and Dropout stay in eval mode."""
        return super().train(False)

    def _device(self, fallback: torch.device) -> torch.device:
        for tensor in self.parameters():
            return tensor.device
        for tensor in self.buffers():
            return tensor.device
        return fallback

    def extra_repr(self) -> str:
        return f"name={self.info.name!r}, source={self.source!r}"


class PairMetric(Metric):
    """A metric of a prediction against a target, one value per image.

    Args:
        resolution: side the images (and mask) are resized to before scoring, with
            :func:`resize`; ``None`` scores at the input resolution. Recorded in ``self.info``.
        info: the metric's info when the class has none (default: the class attribute ``info``).

    Call: ``metric(pred, target, mask=None)`` -> ``(N,)`` float32 on the inputs' device. Images
    ``(N, 3, H, W)`` or ``(3, H, W)`` in [-1, 1] (see :func:`check_pair`); ``mask (N, 1, H, W)``
    with 1 = valid. Subclasses implement :meth:`score` on validated, resized inputs.
    """

    def __init__(self, resolution: int | None = DEFAULT_RESOLUTION, info: MetricInfo | None = None) -> None:
        super().__init__()
        if resolution is not None and (isinstance(resolution, bool) or not isinstance(resolution, int)
                                       or resolution < 1):
            raise ValueError(f"resolution must be a positive int or None, got {resolution!r}")
        self.resolution = resolution
        self.info = replace(info or type(self).info, resolution=resolution)

    @torch.no_grad()
    def forward(self, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        pred, target, mask = check_pair(pred, target, mask)
        out_device = pred.device
        device = self._device(out_device)
        pred, target = pred.to(device), target.to(device)
        mask = None if mask is None else mask.to(device)
        if self.resolution is not None:
            pred, target = resize(pred, self.resolution), resize(target, self.resolution)
            mask = None if mask is None else resize(mask, self.resolution).clamp(0, 1)
        return self.score(pred, target, mask).float().to(out_device)

    def score(self, pred: Tensor, target: Tensor, mask: Tensor | None) -> Tensor:
        """``(N,)`` values of validated ``(N, 3, S, S)`` images in [-1, 1] and an optional mask."""
        raise NotImplementedError


class WrappedPairMetric(PairMetric):
    """A pair metric around a network ``module(pred, target) -> (N,)`` that takes [-1, 1] images.

    Masks are honoured by compositing the prediction onto the target outside the mask. Used to
    register networks that have their own class (``ArcFaceIdentity``).

    Args:
        module: the network; its ``random_weights`` and ``source`` attributes are copied.
        info: the metric's info.
        resolution: see :class:`PairMetric`.
        weight_files: registry name -> path of the files the module loaded.
    """

    def __init__(self, module: nn.Module, info: MetricInfo, resolution: int | None = DEFAULT_RESOLUTION,
                 weight_files: Mapping[str, str] | None = None) -> None:
        super().__init__(resolution, info)
        self.module = module.eval().requires_grad_(False)
        self.random_weights = bool(getattr(module, "random_weights", False))
        self.source = str(getattr(module, "source", type(module).__name__))
        self.weight_files = dict(weight_files or {})

    def score(self, pred: Tensor, target: Tensor, mask: Tensor | None) -> Tensor:
        return self.module(composite(pred, target, mask), target)


# ------------------------------------------------------------------------------------------ registry


@dataclass(frozen=True)
class MetricEntry:
    """One registered metric: its info and the callable that builds it.

    ``build(allow_random=..., seed=..., **options)`` returns a :class:`Metric`.
    """

    info: MetricInfo
    build: Callable[..., Metric]


#: Every metric by name, in registration order (filled when ``warpinv.metrics`` is imported).
METRICS: dict[str, MetricEntry] = {}


def register_metric(info: MetricInfo, build: Callable[..., Metric]) -> None:
    """Add a metric to :data:`METRICS` under ``info.name``.

    Raises:
        ValueError: the name is empty or already registered.
    """
    if not info.name or info.name in METRICS:
        raise ValueError(f"metric name {info.name!r} is empty or already registered")
    METRICS[info.name] = MetricEntry(info, build)


def _entry(name: str) -> MetricEntry:
    if name not in METRICS:
        raise KeyError(f"unknown metric {name!r}; registered: {', '.join(METRICS)}")
    return METRICS[name]


def build_metric(name: str, *, allow_random: bool = False, seed: int = 0,
                 device: str | torch.device | None = None, **options: Any) -> Metric:
    """Construct a registered metric.

    Args:
        name: a key of :data:`METRICS`.
        allow_random: use seeded random weights instead of looking up weight files (tests, smoke
            runs); the metric's ``random_weights`` is then ``True`` for metrics that need weights.
            Metrics without weights ignore it.
        seed: seed of the random weights.
        device: where to put the metric.
        **options: metric-specific options (``resolution``, ``weights=PATH``, ``variant``, ...).

    Raises:
        KeyError: unknown name.
        MissingWeightsError: a weight file is missing and ``allow_random`` is False (the message lists
            every place searched and how to obtain the file).
    """
    metric = _entry(name).build(allow_random=allow_random, seed=seed, **options)
    if device is not None:
        metric = metric.to(device)
    return metric.eval()


def list_metrics() -> list[MetricInfo]:
    """The ``MetricInfo`` of every registered metric, in registration order."""
    return [entry.info for entry in METRICS.values()]


def metric_info(name: str) -> MetricInfo:
    """The ``MetricInfo`` of a registered metric (``KeyError`` if unknown)."""
    return _entry(name).info


def unavailable_reason(name: str, paths: Mapping[str, str | os.PathLike[str]] | None = None) -> str | None:
    """Why metric ``name`` cannot run on real weights here, or ``None`` when every weight file is present.

    Looks each of ``info.weight_names`` up with ``warpinv.weights.resolve`` (offline, verified
    against published checksums; never downloads).

    Args:
        name: a registered metric.
        paths: optional explicit files per registry name (as passed to the metric's options).
    """
    from warpinv.weights import ChecksumError, MissingWeightsError, resolve

    reasons = []
    for weight in _entry(name).info.weight_names:
        try:
            resolve(weight, path=(paths or {}).get(weight))
        except (MissingWeightsError, ChecksumError) as err:
            reasons.append(str(err))
    return "\n".join(reasons) if reasons else None
