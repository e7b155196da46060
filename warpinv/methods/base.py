"""The method interface: every inversion method is an ``InversionMethod`` (a LightningModule).

Data flows one way: a batch of images -> ``predict_step`` -> one :class:`InversionOutcome` per
image (an :class:`Inversion`, or the reason it failed) -> whoever consumes the predictions. Without
the harness, ``trainer.predict(method, loader)`` returns those outcomes; the harness attaches its
evaluation writer (a ``BasePredictionWriter`` callback) that renders, scores and writes rows.

- ``invert(item) -> Inversion`` fits one image. Per-image optimisation methods run it under
  ``Trainer(inference_mode=False)`` (see ``trainer_arguments``) with their own optimisers, one image
  at a time, each seeded from its id (results do not depend on the number of processes). Encoder
  methods (``trainable = True``) train through ``trainer.fit`` and invert a whole batch by one
  forward pass (:meth:`InversionMethod.invert_batch`), without autograd.
- A method renders its own inversions (:meth:`InversionMethod.renderer`): the default renders the
  latent with the method's generator plus the inversion's tuned tensors; In-N-Out or WarpGAN return
  their own renderer. An ``Inversion`` subclass declares its own ``kind`` (saved in files).
- A NaN or out-of-memory failure on one image becomes a failed outcome with the reason; any other
  error is a bug and propagates.
- The generator is never modified: methods that tune it work on a copy
  (:meth:`InversionMethod.tunable_generator`) and return the tuned tensors in the ``Inversion``.
  It is not part of what a method trains, so method checkpoints exclude it
  (:meth:`InversionMethod.save_checkpoint`); a method may name its own generator
  (``MethodConfig.generator``) instead of the suite's.
"""
from __future__ import annotations

import copy
import inspect
import json
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytorch_lightning as pl
import torch
from torch import Tensor

from warpinv.backbone import EG3DGenerator
from warpinv.checks import check_choice
from warpinv.config import from_dict, to_dict
from warpinv.methods.rendering import LatentRenderer, Renders, ViewRenderer

#: Precision of the generator tensors in a saved inversion (see :meth:`Inversion.save`).
Precision = Literal["float32", "float16"]
#: Bytes per stored element of each precision.
PRECISION_BYTES: dict[str, int] = {"float32": 4, "float16": 2}
#: State-dict prefix of the generator inside a method (excluded from method checkpoints).
GENERATOR_PREFIX = "G."


@dataclass
class MethodConfig:
    """Fields every method has. Method configs subclass this."""

    seed: int = 0
    """Base seed; each image's seed is derived from it and the image id."""
    neural_rendering_resolution: int | None = None
    """Raw render size during inversion; ``None`` keeps the generator's trained value."""
    generator: str | None = None
    """The method's own EG3D generator (a preset, a ``.pkl``/``.safetensors`` path or ``tiny``); ``None`` uses the
    suite's. Rows and tables record which generator made them."""
    checkpoint: str | None = None
    """Trained weights of the method (a ``.safetensors`` file of :meth:`InversionMethod.save_checkpoint`); their content
    hash is part of the config hash."""
    allow_random_lpips: bool = False
    """Use seeded random LPIPS trunks instead of the ImageNet ones in the method's losses, present or not
    (tests, weightless runs); outputs then say ``lpips_random_weights``. Methods without LPIPS ignore it."""


@dataclass
class InversionItem:
    """One image to invert.

    Attributes:
        image_id: unique id (the dataset's file name).
        image: ``(1, 3, H, W)`` in ``[-1, 1]``.
        camera: ``(1, 25)`` EG3D label.
        mask: ``(1, 1, H, W)`` in ``{0, 1}`` (1 = valid pixel) or ``None``.
        extras: anything else the dataset provides (e.g. ``novel_images (1, V, 3, H, W)``,
            ``novel_cameras (1, V, 25)``, ``depth``).
    """

    image_id: str
    image: Tensor
    camera: Tensor
    mask: Tensor | None = None
    extras: dict[str, Any] = field(default_factory=dict)


def split_batch(batch: dict[str, Any]) -> list[InversionItem]:
    """A collated batch (``images (B,3,H,W)``, ``cameras (B,25)``, ``image_ids``, optional ``masks``
    and extra per-sample tensors) -> one :class:`InversionItem` per sample."""
    images, cameras, ids = batch["images"], batch["cameras"], list(batch["image_ids"])
    masks = batch.get("masks")
    reserved = {"images", "cameras", "image_ids", "masks"}
    items = []
    for i, image_id in enumerate(ids):
        extras = {k: (v[i: i + 1] if isinstance(v, Tensor) else v[i]) for k, v in batch.items()
                  if k not in reserved and v is not None}
        items.append(InversionItem(str(image_id), images[i: i + 1], cameras[i: i + 1],
                                   None if masks is None else masks[i: i + 1], extras))
    return items


# ------------------------------------------------------------------------------------- inversions


class Inversion:
    """What a method fitted for one image. The method renders it (:meth:`InversionMethod.renderer`);
    it can be saved and reloaded.

    Attributes:
        image_id, method: provenance.
        ws: ``(1, num_ws, w_dim)`` the latent.
        camera: ``(1, 25)`` the camera the image was explained with (refined, if the method does).
        generator_delta: generator tensors that differ from the method's generator (e.g. PTI's
            tuned weights), by state-dict name; empty when the generator is untouched.
        tensors: other fitted tensors (method-specific).
        info: JSON-serialisable facts (steps run, final loss, early stop, ...).

    Subclasses set their own ``kind`` (the name saved in files); a subclass without one, or with a
    kind already taken, is refused.
    """

    kind: ClassVar[str] = "latent"
    _kinds: ClassVar[dict[str, type[Inversion]]] = {}

    def __init__(self, image_id: str, method: str, ws: Tensor, camera: Tensor,
                 generator_delta: dict[str, Tensor] | None = None, tensors: dict[str, Tensor] | None = None,
                 info: dict[str, Any] | None = None) -> None:
        self.image_id = image_id
        self.method = method
        self.ws = ws.detach()
        self.camera = camera.detach()
        self.generator_delta = {k: v.detach() for k, v in (generator_delta or {}).items()}
        self.tensors = {k: v.detach() for k, v in (tensors or {}).items()}
        self.info = dict(info or {})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" not in cls.__dict__:
            raise TypeError(f"Inversion subclass {cls.__qualname__} must set its own `kind` (the name saved in files)")
        owner = Inversion._kinds.get(cls.kind)
        if owner is not None and owner.__qualname__ != cls.__qualname__:
            raise TypeError(f"Inversion kind {cls.kind!r} of {cls.__qualname__} is already taken by "
                            f"{owner.__module__}.{owner.__qualname__}")
        Inversion._kinds[cls.kind] = cls

    @classmethod
    def kind_of(cls, kind: str) -> type[Inversion]:
        """The registered class of ``kind``.

        Raises:
            KeyError: an unknown kind (the message lists the registered ones).
        """
        if kind not in cls._kinds:
            raise KeyError(f"unknown inversion kind {kind!r}; registered: {', '.join(sorted(cls._kinds))} "
                           "(import the method that defines it first)")
        return cls._kinds[kind]

    def illustrations(self) -> list[tuple[str, Tensor, str]]:
        """Images a method shows of its own work in the leaderboard's HTML grid (e.g. HFGI3D's pseudo
        views): ``(name, image (3, H, W) in [-1, 1], caption)``; none by default."""
        return []

    # -- storage ------------------------------------------------------------------------------------

    def storage_bytes(self, precision: Precision = "float32") -> int:
        """Bytes of tensor data :meth:`save` writes (the header adds a few kB)."""
        small = sum(t.numel() * 4 for t in (self.ws, self.camera))
        big = sum(t.numel() for t in (*self.generator_delta.values(), *self.tensors.values()))
        return small + big * PRECISION_BYTES[precision]

    def save(self, path: str | Path, *, precision: Precision = "float32", base: torch.nn.Module | None = None) -> None:
        """Write a ``.safetensors`` file (tensors) with the metadata in its header.

        ``precision="float16"`` halves the generator tensors: each tuned tensor is stored as its
        difference from ``base`` (the method's generator, required then) in float16, so the rounding
        error scales with how far tuning moved the weights, not with the weights themselves. The
        latent and the camera stay float32. ``float32`` stores every tensor as it is.
        """
        from safetensors.torch import save_file

        check_choice(precision, tuple(PRECISION_BYTES), "precision")
        delta = self.generator_delta
        if precision == "float16" and delta:
            if base is None:
                raise ValueError("saving generator tensors in float16 needs `base` (the method's generator)")
            reference = base.state_dict()
            delta = {k: (v.float() - reference[k].to(v.device).float()).half() for k, v in delta.items()}
        tensors = {"ws": self.ws.float(), "camera": self.camera.float()}
        tensors.update({f"delta/{k}": v for k, v in delta.items()})
        tensors.update({f"tensor/{k}": (v.half() if precision == "float16" and v.is_floating_point() else v)
                        for k, v in self.tensors.items()})
        meta = {"kind": self.kind, "image_id": self.image_id, "method": self.method, "info": json.dumps(self.info),
                "precision": precision, "delta_encoding": "residual" if precision == "float16" and delta else "value"}
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous().cpu() for k, v in tensors.items()}, str(path), metadata=meta)

    @classmethod
    def load(cls, path: str | Path, *, base: torch.nn.Module | None = None) -> Inversion:
        """Read a file of :meth:`save` as the class of its ``kind``; ``base`` (the method's generator)
        is needed for files saved in float16."""
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        if "kind" not in meta:
            raise ValueError(f"{path} is not a warpinv inversion file (no 'kind' metadata)")
        klass = Inversion.kind_of(meta["kind"])
        delta = {k[6:]: v for k, v in tensors.items() if k.startswith("delta/")}
        if meta.get("delta_encoding") == "residual":
            if base is None:
                raise ValueError(f"{path} stores generator tensors as float16 residuals: pass `base` (the "
                                 "method's generator) to load it")
            reference = base.state_dict()
            delta = {k: reference[k].float() + v.float() for k, v in delta.items()}
        others = {k[7:]: (v.float() if v.dtype == torch.float16 else v) for k, v in tensors.items()
                  if k.startswith("tensor/")}
        return klass(meta["image_id"], meta["method"], tensors["ws"], tensors["camera"], delta, others,
                     json.loads(meta.get("info", "{}")))


Inversion._kinds[Inversion.kind] = Inversion


@dataclass
class InversionOutcome:
    """What ``predict_step`` returns per image: the inversion, or why there is none.

    Attributes:
        item: the image (the evaluator scores against it).
        inversion: the fit, ``None`` when it failed.
        error: the failure reason (``NonFiniteLossError: ...``, ``OutOfMemoryError: ...``), else ``None``.
        seconds: wall time of the inversion (of the batch's share, for batched inversion).
        peak_mem_mb: peak CUDA memory of the inversion (``nan`` on CPU).
    """

    item: InversionItem
    inversion: Inversion | None
    error: str | None = None
    seconds: float = 0.0
    peak_mem_mb: float = float("nan")

    @property
    def ok(self) -> bool:
        return self.inversion is not None


# ------------------------------------------------------------------------------------ failures


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; the image gets a failed row."""


class InversionFailedError(Exception):
    """A method cannot invert this image for a reason of the image's own (e.g. HFGI3D's pseudo views
    on a degenerate depth map); the image gets a failed row with the message as its reason."""


def check_finite(loss: Tensor, step: int) -> None:
    """Raise :class:`NonFiniteLossError` when ``loss`` is NaN or infinite."""
    if not torch.isfinite(loss).all():
        raise NonFiniteLossError(f"loss is {loss.detach().flatten()[0].item()} at step {step}")


def failure_reason(err: BaseException) -> str | None:
    """The failed-row reason for an error that must not stop a run (non-finite loss, out of memory),
    ``None`` for any other error (a bug: it propagates).

    Example:
        >>> failure_reason(NonFiniteLossError("loss is nan at step 3"))
        'NonFiniteLossError: loss is nan at step 3'
        >>> failure_reason(InversionFailedError("pseudo views: no visible point"))
        'InversionFailedError: pseudo views: no visible point'
        >>> failure_reason(KeyError("bug")) is None
        True
    """
    if isinstance(err, (NonFiniteLossError, InversionFailedError, torch.OutOfMemoryError)):
        return f"{type(err).__name__}: {err}".strip()
    if isinstance(err, RuntimeError) and "out of memory" in str(err).lower():
        return "OutOfMemory: " + str(err).splitlines()[0]
    return None


def image_seed(image_id: str, base_seed: int) -> int:
    """Seed of one image: depends on its id and the config's seed only (not on rank or order).

    Ids from non-UTF-8 file names (surrogate escapes) are seeded from their original bytes.

    Example:
        >>> image_seed("a.png", 0) == image_seed("a.png", 0) != image_seed("b.png", 0)
        True
        >>> image_seed("caf\\udce9.png", 0) > 0
        True
    """
    return zlib.crc32(f"{base_seed}:{image_id}".encode("utf-8", "surrogateescape"))


# ------------------------------------------------------------------------------------ registry

METHODS: dict[str, type[InversionMethod]] = {}


def register_method(cls: type[InversionMethod]) -> type[InversionMethod]:
    """Class decorator adding a method to the registry under ``cls.name``."""
    if not cls.name or cls.name in METHODS:
        raise ValueError(f"method name {cls.name!r} is empty or already registered")
    METHODS[cls.name] = cls
    return cls


def build_method(name: str, config: dict[str, Any] | MethodConfig | None,
                 generator: EG3DGenerator | None = None) -> InversionMethod:
    """Instantiate a registered method from a config (a plain dict is strictly validated).

    ``generator`` is the suite's; a config that names its own (``generator``) gets that one, and
    ``generator=None`` loads the config's. A config ``checkpoint`` is loaded into the method.
    """
    import warpinv.methods  # noqa: F401  (registers the built-in methods)

    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; registered: {', '.join(sorted(METHODS))}")
    cls = METHODS[name]
    cfg = config if isinstance(config, MethodConfig) else from_dict(cls.Config, config or {}, path=f"method.{name}")
    if cfg.generator is not None:
        from warpinv.backbone import load_generator

        generator = load_generator(cfg.generator)
    if generator is None:
        raise ValueError(f"method {name}: no generator given and its config names none (`generator`)")
    method = cls(cfg, generator)
    if cfg.checkpoint is not None:
        method.load_checkpoint(cfg.checkpoint)
    return method


# ------------------------------------------------------------------------------------ the method


class InversionMethod(pl.LightningModule):
    """Base class of every inversion method.

    Subclasses set ``name`` and ``Config`` and implement :meth:`invert` (per-image optimisation) or
    :meth:`invert_batch` plus ``training_step``/``configure_optimizers`` (encoders, ``trainable``).
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    #: Encoder methods train through ``fit`` and invert by a forward pass, run without autograd;
    #: per-image optimisation methods (``False``) do not train and invert with gradients enabled.
    trainable: ClassVar[bool] = False
    #: An encoder whose untrained weights invert nothing useful: the benchmark refuses it without a
    #: ``checkpoint`` unless its config says ``allow_untrained``.
    requires_trained_weights: ClassVar[bool] = False
    #: Config fields (dotted paths for nested configs) that set the compute budget: tables list
    #: their reductions first.
    budget_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: MethodConfig, generator: EG3DGenerator) -> None:
        super().__init__()
        self.config = config
        self.G = generator.eval().requires_grad_(False)

    # -- declared hooks -----------------------------------------------------------------------------

    @classmethod
    def required_weights(cls, config: MethodConfig) -> list[str]:
        """Registry names of the weight files that building this method with ``config`` resolves
        (the preflight checks them before any work)."""
        return []

    @classmethod
    def checkpoint_howto(cls, config: MethodConfig) -> str:
        """How to obtain the trained weights ``config.checkpoint`` names (the preflight's advice when absent)."""
        return "train it (`warpinv train`) or set the path of the method's released checkpoint"

    @classmethod
    def description(cls) -> str:
        """First line of the class's own docstring, reST literals shown plain (``''`` when it has none)."""
        lines = inspect.cleandoc(cls.__doc__ or "").splitlines()
        return lines[0].replace("``", "") if lines else ""

    @classmethod
    def inversion_bytes(cls, config: MethodConfig, generator: torch.nn.Module,
                        precision: Precision = "float32") -> int:
        """Estimated bytes of one saved inversion (the preflight's disk estimate): the latent and
        the camera. Methods that store more (tuned generator tensors, fields) add theirs."""
        return (generator.num_ws * generator.w_dim + 25) * 4

    @property
    def trainer_arguments(self) -> dict[str, Any]:
        """Trainer arguments this method needs (merged by the harness in one place)."""
        return {"inference_mode": False}

    def config_dict(self) -> dict[str, Any]:
        return to_dict(self.config)

    # -- inversion ----------------------------------------------------------------------------------

    def invert(self, item: InversionItem) -> Inversion:
        """Fit one image. Runs with the image's seed set, and gradients enabled unless ``trainable``
        (an encoder's forward pass builds no autograd graph)."""
        raise NotImplementedError

    def invert_batch(self, items: list[InversionItem]) -> list[Inversion]:
        """Invert several images at once (encoders: one forward pass). Default: :meth:`invert` each."""
        return [self.invert(item) for item in items]

    def tunable_generator(self) -> EG3DGenerator:
        """A private copy of the generator for methods that fine-tune it."""
        return copy.deepcopy(self.G)

    @property
    def nrr(self) -> int:
        """Neural rendering resolution used during inversion."""
        return self.config.neural_rendering_resolution or self.G.neural_rendering_resolution

    # -- rendering ----------------------------------------------------------------------------------

    def renderer(self, inversion: Inversion, batch: int = 16) -> ViewRenderer:
        """A callable rendering ``inversion`` at cameras ``(V, 25)`` for evaluation
        (deterministic, ``noise_mode="const"``, at most ``batch`` views per call); it may keep what
        does not depend on the camera between calls. Default: the latent with this method's
        generator plus the inversion's tuned tensors (:class:`~warpinv.methods.rendering.LatentRenderer`)."""
        return LatentRenderer(self.G, inversion, batch)

    def render(self, inversion: Inversion, cameras: Tensor, batch: int = 16) -> Renders:
        """Render ``inversion`` at ``cameras (V, 25)``: ``image (V, 3, H, W)``, ``image_raw``,
        ``image_depth``, ``weight_sum``."""
        return self.renderer(inversion, batch)(cameras)

    # -- prediction ---------------------------------------------------------------------------------

    def predict_step(self, batch: dict[str, Any], batch_idx: int = 0) -> list[InversionOutcome]:
        """One :class:`InversionOutcome` per image of the batch (see the module docstring)."""
        items = split_batch(batch)
        unreadable = [InversionOutcome(i, None, f"unreadable input: {i.extras['load_error']}")
                      for i in items if i.extras.get("load_error")]
        items = [i for i in items if not i.extras.get("load_error")]
        if self.trainable:
            return unreadable + self.invert_items_batched(items)
        return unreadable + [self.invert_item(item) for item in items]

    def invert_item(self, item: InversionItem) -> InversionOutcome:
        """Invert one image with its seed; NaN, out-of-memory (a RuntimeError) and the method's own
        :class:`InversionFailedError` failures become failed outcomes."""
        device = item.image.device
        _reset_cuda_peak(device)
        start = time.perf_counter()
        try:
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.enable_grad():
                torch.manual_seed(image_seed(item.image_id, self.config.seed))
                inversion = self.invert(item)
            check_inversion(inversion)
        except (NonFiniteLossError, InversionFailedError, RuntimeError) as err:
            return InversionOutcome(item, None, _reason_or_raise(err, device), time.perf_counter() - start)
        return InversionOutcome(item, inversion, None, time.perf_counter() - start, _cuda_peak_mb(device))

    def invert_items_batched(self, items: list[InversionItem]) -> list[InversionOutcome]:
        """Invert a batch in one :meth:`invert_batch` call without autograd (encoders); a failure
        fails every image of the batch."""
        if not items:
            return []
        device = items[0].image.device
        _reset_cuda_peak(device)
        start = time.perf_counter()
        try:
            with torch.no_grad():
                inversions = self.invert_batch(items)
            for inversion in inversions:
                check_inversion(inversion)
        except (NonFiniteLossError, InversionFailedError, RuntimeError) as err:
            reason = _reason_or_raise(err, device)
            share = (time.perf_counter() - start) / len(items)
            return [InversionOutcome(item, None, reason, share) for item in items]
        share = (time.perf_counter() - start) / len(items)
        peak = _cuda_peak_mb(device)
        return [InversionOutcome(item, inv, None, share, peak) for item, inv in zip(items, inversions)]

    # -- checkpoints ----------------------------------------------------------------------------------

    def method_state_dict(self) -> dict[str, Tensor]:
        """What the method trained: its state dict without the generator (``G.*``)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith(GENERATOR_PREFIX)}

    def save_checkpoint(self, path: str | Path) -> None:
        """Write :meth:`method_state_dict` as ``.safetensors`` with the method name and config in its header."""
        from safetensors.torch import save_file

        meta = {"method": self.name, "config": json.dumps(self.config_dict(), sort_keys=True)}
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().contiguous().cpu() for k, v in self.method_state_dict().items()}, str(path),
                  metadata=meta)

    def load_checkpoint(self, path: str | Path) -> None:
        """Load a file of :meth:`save_checkpoint` strictly (every trained tensor, nothing else).

        Raises:
            FileNotFoundError: no such file.
            ValueError: a checkpoint of another method, or tensors that do not match.
        """
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"method {self.name}: checkpoint {path} does not exist")
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
        if meta.get("method") not in (None, self.name):
            raise ValueError(f"{path} is a checkpoint of method {meta['method']!r}, not {self.name!r}")
        expected = self.method_state_dict()
        missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
        if missing or unexpected or wrong:
            raise ValueError(f"{path} does not match method {self.name}: missing {missing[:5]}, unexpected "
                             f"{unexpected[:5]}, wrong shape {wrong[:5]}")
        with torch.no_grad():
            for k, v in expected.items():
                v.copy_(state[k])

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Lightning checkpoints hold what the method trained, never the generator."""
        state = checkpoint.get("state_dict", {})
        for key in [k for k in state if k.startswith(GENERATOR_PREFIX)]:
            del state[key]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Put this method's generator back into a Lightning checkpoint before its strict load."""
        state = checkpoint.setdefault("state_dict", {})
        for key, value in self.G.state_dict().items():
            state.setdefault(GENERATOR_PREFIX + key, value)


def check_inversion(inversion: Inversion) -> None:
    """Raise :class:`NonFiniteLossError` when the fitted latent holds NaN or inf."""
    if not torch.isfinite(inversion.ws).all():
        raise NonFiniteLossError("the fitted latent contains NaN or inf")


def _reason_or_raise(err: BaseException, device: torch.device) -> str:
    reason = failure_reason(err)
    if reason is None:
        raise err
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return reason


def _reset_cuda_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _cuda_peak_mb(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")


def outcomes_of(predictions: Iterable[list[InversionOutcome]] | None) -> list[InversionOutcome]:
    """Flatten ``trainer.predict``'s per-batch lists into one list of outcomes."""
    return [o for batch in (predictions or []) for o in batch]
