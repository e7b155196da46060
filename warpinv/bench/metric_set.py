"""The suite's metrics, built once per process: which are available, how the harness uses each, and
the facts tables and provenance record about them.

A metric whose weight files are missing (looked up offline) is not built: it is listed unavailable
with the reason, built with seeded random weights only under ``allow_random_metrics``, or -- with
``require_metric_weights`` -- reported by the preflight.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

KIND_PAIR = "pair"
KIND_IDENTITY = "identity"
KIND_MULTIVIEW = "multiview"
#: Metrics of occluded inputs (``info.kind == "ood"``): extra columns of the input row, for items that carry
#: a clean image or an occluder mask (:mod:`warpinv.metrics.ood`).
KIND_OOD = "ood"


@dataclass
class MetricSet:
    """The suite's metrics, built once per process.

    Attributes:
        modules: built metric objects by name (only the available ones).
        kinds: ``pair`` / ``identity`` / ``multiview`` / ``ood`` by name.
        unavailable: ``{name: reason}`` for metrics that are not computed (missing weights, ...).
        info: per-metric facts for tables and provenance (direction, resolution, weights, random).
    """

    modules: dict[str, Any] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    info: dict[str, dict[str, Any]] = field(default_factory=dict)

    def of_kind(self, kind: str) -> dict[str, Any]:
        return {n: m for n, m in self.modules.items() if self.kinds.get(n) == kind}

    def to(self, device: torch.device) -> MetricSet:
        for name, m in self.modules.items():
            if isinstance(m, torch.nn.Module):
                self.modules[name] = m.to(device)
        return self


def metric_kind(name: str, metric: Any) -> str:
    """How the harness uses a metric: ``multiview`` or ``ood`` (``info.kind``), ``identity`` (pair metrics
    named ``id_*``: also scored on the sweep views against the input image) or ``pair``."""
    info = getattr(metric, "info", None)
    kind = getattr(info, "kind", None)
    if kind in (KIND_MULTIVIEW, KIND_OOD):
        return kind
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
        if value is not None or (attr == "resolution" and info is not None):  # None: scored at the native size
            facts[attr] = list(value) if isinstance(value, tuple) else value
    columns = info.columns() if info is not None and hasattr(info, "columns") else {}
    if facts["kind"] == KIND_OOD:
        columns = {entry_column(name, info.name, col): ci for col, ci in columns.items()}
    if columns and list(columns) != [name]:
        facts["columns"] = {col: {"higher_is_better": ci.higher_is_better, "unit": getattr(ci, "unit", ""),
                                  "resolution": ci.resolution} for col, ci in columns.items()}
    return facts


def entry_column(entry: str, metric_name: str, column: str) -> str:
    """The result column of a metric's ``column`` under the suite entry ``entry``: the entry's ``@...``
    suffix carries over, so two entries of one multi-column OOD metric keep apart.

    Example:
        >>> entry_column("clean_psnr@512", "clean_psnr", "clean_psnr_in")
        'clean_psnr_in@512'
        >>> entry_column("blend_iou", "blend_iou", "blend_iou")
        'blend_iou'
    """
    return column + entry[len(metric_name):] if entry.startswith(metric_name) else column


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


def parse_metric_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """A suite's metric entry -> ``(registry name, build options)``: ``name`` (the metric's default
    scoring resolution), ``name@512`` (scored at 512 x 512) or ``name@native`` (at the images' own size).

    Example:
        >>> parse_metric_spec("psnr@512"), parse_metric_spec("ssim@native"), parse_metric_spec("psnr")
        (('psnr', {'resolution': 512}), ('ssim', {'resolution': None}), ('psnr', {}))
    """
    from warpinv.config import ConfigError

    name, sep, resolution = spec.partition("@")
    if not sep:
        return name, {}
    if resolution == "native":
        return name, {"resolution": None}
    if not resolution.isdigit() or int(resolution) < 1:
        raise ConfigError(f"metrics: {spec!r}: the part after @ must be a positive size in pixels or 'native'")
    return name, {"resolution": int(resolution)}


def build_metric_set(names: list[str], *, allow_random: bool = False, require_weights: bool = False,
                     device: str | torch.device = "cpu") -> tuple[MetricSet, list[tuple[str, str]]]:
    """Build the suite's metrics.

    ``names`` are suite entries (:func:`parse_metric_spec`); each entry is its own column key, so
    ``psnr`` and ``psnr@512`` can stand side by side. A metric whose weight files are missing
    (looked up offline, ``info.weight_names``) is not built:
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
        registry_name, options = parse_metric_spec(name)
        try:
            info = metric_info(registry_name)
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
            metric = build_metric(registry_name, allow_random=random, **options)
        except TypeError as err:
            raise ConfigError(f"metrics: {name!r}: {registry_name} takes no such option ({err})") from None
        except ImportError as err:  # an optional package (facenet-pytorch: `pip install 'warpinv[facenet]'`)
            out.unavailable[name] = (f"needs the Python package {err.name or err} (install warpinv's extra that "
                                     "provides it, e.g. `pip install 'warpinv[facenet]'`)")
            out.info[name] = {"status": "unavailable", "reason": out.unavailable[name]}
            continue
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
