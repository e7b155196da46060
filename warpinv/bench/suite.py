"""Benchmark suites: the YAML schema, dotted overrides, and each method's resolved config.

A suite (``experiments/bench/*.yaml``) names the generator, the dataset and split, the methods (each
with config overrides), the metrics, the evaluation views and the output folder. Precedence of a
method's config, lowest first: the method's ``Config`` defaults, ``experiments/methods/<name>.yaml``
(or the entry's ``preset``), the suite entry's ``config``, then command-line overrides.

Command-line overrides are dotted ``key=value`` pairs (values parsed as YAML scalars):

- any suite field: ``output=runs/x``, ``dataset.limit=2``, ``allow_random_metrics=true``;
- a method's config: ``methods.<label>.<key>=value`` (``methods.pti.tuning.lr=3e-4``); keys that are
  not fields of the method entry (``method``, ``preset``, ``config``) go into its ``config``;
- the shorthand ``method.<key>=value`` in suites with exactly one method (an error naming the
  methods otherwise), so a wandb sweep's ``${args_no_hyphens}`` feeds them directly.

Unknown keys are errors everywhere (suite fields, method labels, method config keys).

Relative paths in a suite are relative to the working directory (run from the project root).
"""
from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from warpinv.checks import check_choice, check_min
from warpinv.config import ConfigError, config_hash, deep_merge, from_dict, load_yaml, parse_override, to_dict


@dataclass
class SynthesisConfig:
    """How to build a synthetic multi-view dataset on first run (``warpinv.data.make_synthetic_multiview``)."""

    generator: str | None = None
    """Generator that renders the set; ``None`` uses the suite's generator."""
    n: int = 8
    """Number of identities (each with an input view and ground-truth novel views)."""
    seed: int = 0
    """Seed of the latents and input cameras."""
    options: dict[str, Any] = field(default_factory=dict)
    """Further keyword arguments of ``make_synthetic_multiview`` (views, truncation, ...)."""


@dataclass
class DatasetConfig:
    """The images to invert."""

    root: str = ""
    """Folder with the images and ``dataset.json`` (EG3D layout)."""
    split: str | None = None
    """Split file (one image id per line); ``None`` uses every image in ``root``."""
    name: str = ""
    """Name shown in tables; defaults to the split file's stem, else the root folder's name."""
    synthesize: SynthesisConfig | None = None
    """Build the set at ``root`` on first run when it does not exist (synthetic suites only)."""
    limit: int | None = None
    """Use only the first N ids of the split (quick runs); the tables say so."""
    images: int | None = None
    """How many images the split holds, when known before it exists (the CelebA-HQ test split: 2,824): the preflight's
    disk estimate uses it, and a run refuses a split file of another size."""
    num_workers: int = 0
    """DataLoader workers per process."""
    options: dict[str, Any] = field(default_factory=dict)
    """Further keyword arguments of ``InversionDataModule``."""


@dataclass
class MethodEntry:
    """One method of the suite; the mapping key is its label in tables."""

    method: str = ""
    """Registry name (``warpinv.methods.METHODS``); defaults to the label."""
    preset: str | None = None
    """Defaults file: a path, or a name in ``methods_dir``; ``None`` uses ``<method>.yaml`` when present."""
    config: dict[str, Any] = field(default_factory=dict)
    """Overrides of the method's ``Config`` (applied over the preset)."""


@dataclass
class ViewsConfig:
    """The cameras each inversion is rendered and scored at (the input view is always scored)."""

    gt_novel: bool = True
    """Score the dataset's ground-truth novel views when it has them (one row per view, ``gt:...``)."""
    yaw_sweep: list[float] = field(default_factory=lambda: [-0.5, -0.25, 0.25, 0.5])
    """Yaw offsets (radians) from the input camera for image grids and identity metrics (rows ``yaw+0.25``)."""
    sweep_pitch: float | None = 0.0
    """Pitch of the sweep cameras; ``None`` keeps the input camera's pitch."""
    protocols: list[Literal["goae", "hfgi3d"]] = field(default_factory=list)
    """Named novel-view sets of published protocols, scored with the identity metrics: ``goae`` (absolute yaw ±π·25/360
    at the frontal pitch), ``hfgi3d`` (one seeded random novel view per image; see ``warpinv/bench/views.py``)."""
    multiview: bool = True
    """Compute multi-view metrics once per image (row view ``mv``)."""
    render_batch: int = 16
    """At most this many views per synthesis call (all views of an image in one call when they fit)."""


@dataclass
class WandbConfig:
    """Weights & Biases logging. Never required: a missing package or login only skips it."""

    enabled: bool = True
    """Log when the resolved mode is not ``disabled``."""
    project: str = "warpinv"
    """W&B project."""
    entity: str | None = None
    """W&B entity (team or user); ``None`` for the default."""
    mode: str | None = None
    """``online``/``offline``/``disabled``; ``None``: ``$WANDB_MODE``, else online when logged in, else offline."""
    log_images: bool = True
    """Log the image grids."""


@dataclass
class SuiteConfig:
    """A benchmark suite (``experiments/bench/*.yaml``)."""

    name: str = ""
    """Suite name; defaults to the YAML file's stem."""
    generator: str = "tiny"
    """EG3D generator: a preset (``ffhq512-128``), a ``.pkl``/``.safetensors`` path, or ``tiny``."""
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    """The dataset and split."""
    methods: dict[str, MethodEntry] = field(default_factory=dict)
    """Methods by label."""
    metrics: list[str] = field(default_factory=lambda: ["psnr", "ssim", "lpips_alex"])
    """Metric names (``warpinv.metrics.list_metrics()``); those whose weights are missing are listed as unavailable."""
    allow_random_metrics: bool = False
    """Compute metrics whose weights are missing with seeded random weights (every column says so)."""
    require_metric_weights: bool = False
    """Treat a metric with missing weights as a preflight error instead of listing it unavailable."""
    views: ViewsConfig = field(default_factory=ViewsConfig)
    """Evaluation views."""
    output: str = ""
    """Output folder; defaults to ``runs/bench/<name>``."""
    methods_dir: str = "experiments/methods"
    """Where method presets (``<name>.yaml``) live."""
    save_images: int = 4
    """Images per method saved for the HTML grid (the first ids of the split)."""
    save_inversions: bool = False
    """Also save every ``Inversion`` (``inversions/<label>/<id>.safetensors``) for re-rendering later. A PTI inversion
    of ffhq512-128 holds every tuned generator tensor (123 MB in float32); the preflight states the disk a run needs and
    refuses when the output's disk cannot hold it."""
    inversion_precision: Literal["float32", "float16"] = "float16"
    """Precision of saved generator tensors: ``float16`` stores each tuned tensor as its float16 difference from the
    method's generator (half the disk; the render error this costs is measured in ``tests/methods/test_base.py`` and
    stated in the README), ``float32`` stores them exactly."""
    plugins: list[str] = field(default_factory=list)
    """Python files or importable modules to import before the methods are resolved: methods defined outside warpinv
    register themselves there with ``@register_method``."""
    device: str = "auto"
    """``auto`` (every visible GPU, else CPU), ``cpu`` or ``cuda``."""
    devices: int | None = None
    """Processes: ``None`` = all visible GPUs, or ``cpu_processes`` on CPU; ``--devices N`` overrides."""
    cpu_processes: int = 1
    """Processes when the run is on CPU and neither ``devices`` nor ``--devices`` is set (each gets ``cores // N``
    threads; small generators run faster as 2 one-thread processes than as one two-thread process)."""
    ddp_timeout_hours: float = 24.0
    """Process-group timeout (the end-of-run barrier waits for the slowest rank)."""
    batch_size: int = 1
    """Images per predict step (per-image optimisation methods use 1)."""
    wandb: WandbConfig = field(default_factory=WandbConfig)
    """Weights & Biases logging."""
    notes: list[str] = field(default_factory=list)
    """Free-text notes printed under every table (e.g. how budgets were chosen)."""
    aggregation: Literal["auto", "all", "common_subset"] = "auto"
    """How tables average: ``all`` (each method over its own successful images), ``common_subset`` (every method over
    the images all of them scored), ``auto`` (``common_subset`` when the methods' successful images differ)."""


#: Fields of ``MethodEntry`` (other keys under ``methods.<label>`` are method config keys).
_ENTRY_FIELDS = {f.name for f in dataclasses.fields(MethodEntry)}


# ------------------------------------------------------------------------------------ overrides


def normalize_overrides(data: dict[str, Any], overrides: list[str]) -> list[tuple[list[str], Any]]:
    """Parse ``key=value`` overrides and map method shorthands to full paths.

    Raises:
        ConfigError: malformed override, ``method.`` shorthand with several methods, unknown label.
    """
    labels = list((data.get("methods") or {}).keys())
    out: list[tuple[list[str], Any]] = []
    for text in overrides:
        keys, value = parse_override(text)
        if keys[0] == "method":
            if len(labels) != 1:
                raise ConfigError(f"override {text!r}: the shorthand 'method.' needs a suite with exactly one method; "
                                  f"this suite has {len(labels)} ({', '.join(labels) or 'none'}): "
                                  f"use methods.<label>.{'.'.join(keys[1:])}=...")
            keys = ["methods", labels[0], *keys[1:]]
        if keys[0] == "methods" and len(keys) >= 2:
            if keys[1] not in labels:
                raise ConfigError(f"override {text!r}: no method labelled {keys[1]!r} in this suite; "
                                  f"its methods are: {', '.join(labels) or 'none'}")
            if len(keys) == 2:
                raise ConfigError(f"override {text!r}: name a key of the method (methods.{keys[1]}.<key>=value)")
            if keys[2] not in _ENTRY_FIELDS:
                keys = [*keys[:2], "config", *keys[2:]]
        out.append((keys, value))
    return out


def set_path(data: dict[str, Any], keys: list[str], value: Any, text: str = "") -> None:
    node = data
    for k in keys[:-1]:
        child = node.get(k)
        if child is None:
            child = node[k] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"override {text or '.'.join(keys)!r}: {k!r} is not a mapping")
        node = child
    node[keys[-1]] = value


def load_suite(path: str | Path, overrides: list[str] | None = None) -> SuiteConfig:
    """Read a suite YAML (``_base_`` inheritance allowed), apply overrides, validate strictly."""
    path = Path(path)
    data = load_yaml(path)
    data = _normalize_methods(data)
    data = copy.deepcopy(data)
    for keys, value in normalize_overrides(data, list(overrides or [])):
        set_path(data, keys, value)
    suite = from_dict(SuiteConfig, data)
    if not suite.name:
        suite.name = path.stem
    if not suite.output:
        suite.output = str(Path("runs") / "bench" / suite.name)
    if not suite.methods:
        raise ConfigError(f"{path}: the suite names no methods")
    if not suite.dataset.root:
        raise ConfigError(f"{path}: dataset.root is required")
    check_counts(suite)
    for label, entry in suite.methods.items():
        if not entry.method:
            entry.method = label
    import_plugins(suite.plugins, base=path.parent)
    return suite


def check_counts(suite: SuiteConfig) -> None:
    """Counts that must be positive, a known device, and valid dataset options, refused before any work.

    Raises:
        ConfigError: naming the key and the value.
    """
    from warpinv.data.validation import DatasetOptions

    check_choice(suite.device, ("auto", "cpu", "cuda"), "device", error=ConfigError)
    for key, value, least in (("batch_size", suite.batch_size, 1), ("views.render_batch", suite.views.render_batch, 1),
                              ("dataset.limit", suite.dataset.limit, 1), ("cpu_processes", suite.cpu_processes, 1),
                              ("devices", suite.devices, 1), ("dataset.num_workers", suite.dataset.num_workers, 0),
                              ("save_images", suite.save_images, 0), ("dataset.images", suite.dataset.images, 1),
                              ("dataset.synthesize.n",
                              suite.dataset.synthesize.n if suite.dataset.synthesize else None, 1)):
        if value is not None:
            check_min(value, least, key, error=ConfigError)
    check_min(suite.ddp_timeout_hours, 0, "ddp_timeout_hours", strict=True, error=ConfigError)
    from_dict(DatasetOptions, suite.dataset.options, path="dataset.options")


def import_plugins(plugins: list[str], base: Path | None = None) -> None:
    """Import each plugin (a ``.py`` file, relative to the working directory or ``base``, or a module
    name) so that the methods it defines register themselves.

    A file is imported as a module named after its stem with its folder on ``sys.path``, so that
    spawned processes (GPU ranks) can import it again by name.

    Raises:
        ConfigError: a file that does not exist, a module that cannot be imported.
    """
    import importlib
    import sys

    for plugin in plugins:
        if plugin.endswith(".py"):
            path = Path(plugin)
            if not path.is_file() and base is not None and (base / path).is_file():
                path = base / path
            if not path.is_file():
                raise ConfigError(f"plugins: {plugin} does not exist")
            folder = str(path.resolve().parent)
            if folder not in sys.path:
                sys.path.insert(0, folder)
            module = path.stem
        else:
            module = plugin
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ConfigError(f"plugins: cannot import {plugin}: {err}") from None


def _normalize_methods(data: dict[str, Any]) -> dict[str, Any]:
    """Allow ``methods: [w_opt, pti]`` (labels = names) or ``methods: {label: null}``."""
    methods = data.get("methods")
    if isinstance(methods, list):
        out: dict[str, Any] = {}
        for m in methods:
            if not isinstance(m, str):
                raise ConfigError(f"methods: list entries must be method names, got {m!r}; use a mapping "
                                  "label -> {method, preset, config} for anything more")
            out[m] = {}
        data = {**data, "methods": out}
    elif isinstance(methods, dict):
        data = {**data, "methods": {k: ({} if v is None else v) for k, v in methods.items()}}
    return data


# ------------------------------------------------------------------------------ method configs


@dataclass
class ResolvedMethod:
    """One method of a suite with its fully resolved config.

    Attributes:
        label: the suite's label (table row name).
        name: registry name.
        config: the method's ``Config`` instance.
        config_hash: hash of what determines this method's rows (name, config, generator, evaluation).
        preset_path: the defaults file used, if any.
        reference: the config the budget is compared against (``Config`` defaults + preset), as a dict.
        budget: ``[(key, reference value, used value)]`` for every leaf where they differ.
        generator: the generator the method runs on (its config's ``generator``, else the suite's).
    """

    label: str
    name: str
    config: Any
    config_hash: str
    preset_path: str | None
    reference: dict[str, Any]
    budget: list[tuple[str, Any, Any]]
    generator: str = ""

    def budget_text(self) -> str:
        """``pivot.steps 450 -> 30 (x0.07)``, ... or an empty string when the reference config is used."""
        parts = []
        for key, ref, used in self.budget:
            ratio = ""
            if _is_number(ref) and _is_number(used) and ref not in (0, 0.0):
                ratio = f" (x{used / ref:.3g})"
            parts.append(f"{key} {ref} -> {used}{ratio}")
        return ", ".join(parts)

    def summary(self) -> dict[str, Any]:
        return {"label": self.label, "method": self.name, "config_hash": self.config_hash,
                "generator": self.generator, "preset": self.preset_path, "config": to_dict(self.config),
                "changed_from_reference": [{"key": k, "reference": r, "used": u} for k, r, u in self.budget]}


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def find_preset(suite: SuiteConfig, entry: MethodEntry) -> Path | None:
    """The defaults file of a method entry (``None`` when the method has none)."""
    root = Path(suite.methods_dir)
    if entry.preset:
        p = Path(entry.preset)
        candidates = [p, root / p, root / f"{p}.yaml"] if p.suffix not in (".yaml", ".yml") else [p, root / p]
        for c in candidates:
            if c.is_file():
                return c
        raise ConfigError(f"method preset {entry.preset!r} not found (looked at {', '.join(map(str, candidates))})")
    default = root / f"{entry.method}.yaml"
    return default if default.is_file() else None


def load_preset(path: Path | None, method_name: str) -> dict[str, Any]:
    """Config mapping of a preset file. A file may hold the config directly, or under ``config:``
    next to ``method:``/``name:``/``label:``/``description:`` keys (which must then match the method)."""
    if path is None:
        return {}
    data = load_yaml(path)
    if "config" in data and isinstance(data["config"], dict):
        named = data.get("method") or data.get("name")
        if named and named != method_name:
            raise ConfigError(f"{path} is a preset of method {named!r}, not {method_name!r}")
        return dict(data["config"])
    return data


def evaluation_spec(suite: SuiteConfig) -> dict[str, Any]:
    """Everything outside a method's config that changes its rows (part of the config hash): the
    generator, the code (:func:`~warpinv.bench.provenance.code_fingerprint`), the metrics, the
    dataset's identity and the views. The dataset's content is checked per image at resume."""
    ds = suite.dataset  # not limit: it selects images, the rows of each image stay valid
    dataset = {"root": ds.root, "split": ds.split, "options": ds.options,
               "synthesize": None if ds.synthesize is None else to_dict(ds.synthesize)}
    from warpinv.backbone import generator_fingerprint
    from warpinv.bench.provenance import code_fingerprint

    return {"generator": suite.generator, "generator_fingerprint": generator_fingerprint(suite.generator),
            "code": code_fingerprint(), "metrics": sorted(suite.metrics), "dataset": dataset,
            "allow_random_metrics": suite.allow_random_metrics, "views": to_dict(suite.views)}


def method_identity(name: str, config: Any) -> dict[str, Any]:
    """What identifies a method's outputs besides its config values: the content of the files the
    config names (its own generator, its trained checkpoint), so that retraining or replacing a file
    changes the config hash even when its path stays the same."""
    identity: dict[str, Any] = {}
    generator = getattr(config, "generator", None)
    if generator is not None:
        from warpinv.backbone import generator_fingerprint

        identity["generator_fingerprint"] = generator_fingerprint(generator)
    checkpoint = getattr(config, "checkpoint", None)
    if checkpoint is not None:
        from warpinv.weights import sha256_file

        path = Path(checkpoint)
        identity["checkpoint_sha256"] = sha256_file(path) if path.is_file() else f"missing:{checkpoint}"
    return identity


def resolve_methods(suite: SuiteConfig) -> list[ResolvedMethod]:
    """Resolve every method's config (strict: unknown keys error with the method's label)."""
    from warpinv.methods import METHODS

    evaluation = evaluation_spec(suite)
    out = []
    for label, entry in suite.methods.items():
        if entry.method not in METHODS:
            raise ConfigError(f"methods.{label}: unknown method {entry.method!r}; registered: "
                              f"{', '.join(sorted(METHODS)) or 'none'}")
        cls = METHODS[entry.method]
        preset_path = find_preset(suite, entry)
        preset = load_preset(preset_path, entry.method)
        reference = from_dict(cls.Config, preset, path=f"{preset_path or 'methods.' + label}")
        config = from_dict(cls.Config, deep_merge(preset, entry.config), path=f"methods.{label}.config")
        ref_dict, used_dict = to_dict(reference), to_dict(config)
        budget = [(k, r, u) for k, r, u in _leaf_diff(ref_dict, used_dict)]
        hashed = {"method": entry.method, "config": used_dict, "evaluation": evaluation}
        hashed.update(method_identity(entry.method, config))
        digest = config_hash(hashed)
        generator = getattr(config, "generator", None) or suite.generator
        out.append(ResolvedMethod(label, entry.method, config, digest, str(preset_path) if preset_path else None,
                                  ref_dict, budget, generator))
    return out


def _leaf_diff(a: Any, b: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in list(a) + [k for k in b if k not in a]:
            out += _leaf_diff(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else str(k))
        return out
    return [] if a == b else [(prefix, a, b)]


def resolved_dict(suite: SuiteConfig, methods: list[ResolvedMethod]) -> dict[str, Any]:
    """The fully resolved suite (written to ``resolved_config.yaml``)."""
    data = to_dict(suite)
    data["methods"] = {m.label: m.summary() for m in methods}
    data["suite_hash"] = config_hash(data)
    return data
