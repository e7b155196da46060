"""The method interface: every inversion method is an ``InversionMethod`` (a LightningModule).

Data flows one way: a batch of images -> ``invert`` -> ``Inversion`` objects -> the harness's
evaluator renders views and scores them -> per-image rows.

- ``invert(item) -> Inversion`` fits one image. Per-image optimisation methods run it under
  ``Trainer(inference_mode=False)`` (see ``trainer_arguments``) with their own optimisers; encoder
  methods (``trainable = True``) train through ``fit`` and their ``invert`` is a forward pass, run
  without autograd.
- ``predict_step`` seeds each image from its id (results do not depend on the number of
  processes), inverts it, hands the ``Inversion`` to the attached evaluator and returns its rows. A
  NaN or out-of-memory failure on one image becomes a failed row with the reason.
- The base generator is never modified: methods that tune it work on a copy
  (:meth:`InversionMethod.tunable_generator`) and return the tuned tensors in the ``Inversion``.
"""
from __future__ import annotations

import contextlib
import copy
import json
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator, Protocol

import pytorch_lightning as pl
import torch
from torch import Tensor

from warpinv.backbone import EG3DGenerator
from warpinv.config import from_dict, to_dict


@dataclass
class MethodConfig:
    """Fields every method has. Method configs subclass this."""

    seed: int = 0
    """Base seed; each image's seed is derived from it and the image id."""
    neural_rendering_resolution: int | None = None
    """Raw render size during inversion; ``None`` keeps the generator's trained value."""


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


class Inversion:
    """What a method fitted for one image; it renders at any camera and can be saved and reloaded.

    Attributes:
        image_id, method: provenance.
        ws: ``(1, num_ws, w_dim)`` the latent.
        camera: ``(1, 25)`` the camera the image was explained with (refined, if the method does).
        generator_delta: generator tensors that differ from the base generator (e.g. PTI's tuned
            weights), by state-dict name; empty when the generator is untouched.
        tensors: other fitted tensors (method-specific).
        info: JSON-serialisable facts (steps run, final loss, early stop, ...).
    """

    kind: ClassVar[str] = "latent"
    _kinds: ClassVar[dict[str, type["Inversion"]]] = {}

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
        Inversion._kinds[cls.kind] = cls

    def render(self, G: EG3DGenerator, c: Tensor, **synthesis_kwargs: Any) -> dict[str, Tensor]:
        """Render at cameras ``c (V, 25)`` with the base generator ``G`` plus this inversion's delta.

        Returns ``image (V, 3, R, R)``, ``image_raw``, ``image_depth`` and the other synthesis outputs.
        """
        ws = self.ws.to(c.device).expand(c.shape[0], -1, -1)
        synthesis_kwargs.setdefault("noise_mode", "const")
        with swapped_tensors(G, self.generator_delta):
            return G.synthesis(ws, c, **synthesis_kwargs)

    def save(self, path: str | Path) -> None:
        """Write a ``.safetensors`` file (tensors) with the metadata in its header."""
        from safetensors.torch import save_file

        tensors = {"ws": self.ws, "camera": self.camera}
        tensors.update({f"delta/{k}": v for k, v in self.generator_delta.items()})
        tensors.update({f"tensor/{k}": v for k, v in self.tensors.items()})
        meta = {"kind": self.kind, "image_id": self.image_id, "method": self.method, "info": json.dumps(self.info)}
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous().cpu() for k, v in tensors.items()}, str(path), metadata=meta)

    @classmethod
    def load(cls, path: str | Path) -> "Inversion":
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        if "kind" not in meta:
            raise ValueError(f"{path} is not a warpinv inversion file (no 'kind' metadata)")
        klass = Inversion._kinds.get(meta["kind"], Inversion)
        return klass(meta["image_id"], meta["method"], tensors["ws"], tensors["camera"],
                     {k[6:]: v for k, v in tensors.items() if k.startswith("delta/")},
                     {k[7:]: v for k, v in tensors.items() if k.startswith("tensor/")},
                     json.loads(meta.get("info", "{}")))


Inversion._kinds[Inversion.kind] = Inversion


@contextlib.contextmanager
def swapped_tensors(module: torch.nn.Module, tensors: dict[str, Tensor]) -> Iterator[None]:
    """Temporarily replace some of ``module``'s state-dict tensors (values restored on exit)."""
    if not tensors:
        yield
        return
    state = module.state_dict()
    unknown = sorted(set(tensors) - set(state))
    if unknown:
        raise KeyError(f"tensors not in the module's state dict: {unknown[:5]}")
    saved = {k: state[k].detach().clone() for k in tensors}
    try:
        with torch.no_grad():
            for k, v in tensors.items():
                state[k].copy_(v)
        yield
    finally:
        with torch.no_grad():
            for k, v in saved.items():
                state[k].copy_(v)


class Evaluator(Protocol):
    """Turns an inversion into result rows (the harness provides it)."""

    def evaluate(self, method: "InversionMethod", item: InversionItem, inversion: Inversion,
                 seconds: float, peak_mem_mb: float) -> list[dict[str, Any]]: ...

    def failed(self, method: "InversionMethod", item: InversionItem, reason: str,
               seconds: float) -> list[dict[str, Any]]: ...


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; the image gets a failed row."""


def check_finite(loss: Tensor, step: int) -> None:
    """Raise :class:`NonFiniteLossError` when ``loss`` is NaN or infinite."""
    if not torch.isfinite(loss).all():
        raise NonFiniteLossError(f"loss is {loss.detach().flatten()[0].item()} at step {step}")


def failure_reason(err: BaseException) -> str | None:
    """The failed-row reason for an error that must not stop a run (non-finite loss, out of memory),
    ``None`` for any other error (a bug: it propagates)."""
    if isinstance(err, (NonFiniteLossError, torch.OutOfMemoryError)):
        return f"{type(err).__name__}: {err}".strip()
    if isinstance(err, RuntimeError) and "out of memory" in str(err).lower():
        return "OutOfMemory: " + str(err).splitlines()[0]
    return None


def image_seed(image_id: str, base_seed: int) -> int:
    """Seed of one image: depends on its id and the config's seed only (not on rank or order)."""
    return zlib.crc32(f"{base_seed}:{image_id}".encode())


METHODS: dict[str, type["InversionMethod"]] = {}


def register_method(cls: type["InversionMethod"]) -> type["InversionMethod"]:
    """Class decorator adding a method to the registry under ``cls.name``."""
    if not cls.name or cls.name in METHODS:
        raise ValueError(f"method name {cls.name!r} is empty or already registered")
    METHODS[cls.name] = cls
    return cls


def build_method(name: str, config: dict[str, Any] | None, generator: EG3DGenerator) -> "InversionMethod":
    """Instantiate a registered method from a plain config dict (strictly validated)."""
    import warpinv.methods  # noqa: F401  (registers the built-in methods)

    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; registered: {', '.join(sorted(METHODS))}")
    cls = METHODS[name]
    return cls(from_dict(cls.Config, config or {}, path=f"method.{name}"), generator)


class InversionMethod(pl.LightningModule):
    """Base class of every inversion method.

    Subclasses set ``name`` and ``Config`` and implement :meth:`invert`.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    #: Encoder methods train through ``fit`` and invert by a forward pass, run without autograd;
    #: per-image optimisation methods (``False``) do not train and invert with gradients enabled.
    trainable: ClassVar[bool] = False

    def __init__(self, config: MethodConfig, generator: EG3DGenerator) -> None:
        super().__init__()
        self.config = config
        self.G = generator.eval().requires_grad_(False)
        self.evaluator: Evaluator | None = None

    @property
    def trainer_arguments(self) -> dict[str, Any]:
        """Trainer arguments this method needs (merged by the harness in one place)."""
        return {"inference_mode": False}

    def config_dict(self) -> dict[str, Any]:
        return to_dict(self.config)

    def invert(self, item: InversionItem) -> Inversion:
        """Fit one image. Runs with the image's seed set, and gradients enabled unless ``trainable``
        (an encoder's forward pass builds no autograd graph)."""
        raise NotImplementedError

    def tunable_generator(self) -> EG3DGenerator:
        """A private copy of the base generator for methods that fine-tune it."""
        return copy.deepcopy(self.G)

    @property
    def nrr(self) -> int:
        """Neural rendering resolution used during inversion."""
        return self.config.neural_rendering_resolution or self.G.neural_rendering_resolution

    def predict_step(self, batch: dict[str, Any], batch_idx: int = 0) -> list[dict[str, Any]]:
        if self.evaluator is None:
            raise RuntimeError("no evaluator attached: set `method.evaluator` (the harness does) before predicting")
        rows: list[dict[str, Any]] = []
        for item in split_batch(batch):
            rows.extend(self.run_item(item))
        return rows

    def run_item(self, item: InversionItem) -> list[dict[str, Any]]:
        """Invert and evaluate one image; NaN and out-of-memory failures (in either) become failed rows."""
        assert self.evaluator is not None
        device = item.image.device
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        stage = "inversion"
        try:
            grad = torch.no_grad() if self.trainable else torch.enable_grad()
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), grad:
                torch.manual_seed(image_seed(item.image_id, self.config.seed))
                inversion = self.invert(item)
            if not torch.isfinite(inversion.ws).all():
                raise NonFiniteLossError("the fitted latent contains NaN or inf")
            seconds = time.perf_counter() - start
            peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")
            stage = "evaluation"
            return self.evaluator.evaluate(self, item, inversion, seconds, peak)
        except (NonFiniteLossError, RuntimeError) as err:  # torch.OutOfMemoryError is a RuntimeError
            reason = failure_reason(err)
            if reason is None:
                raise
            if device.type == "cuda":
                torch.cuda.empty_cache()
            suffix = "" if stage == "inversion" else f" (during {stage})"
            return self.evaluator.failed(self, item, reason + suffix, time.perf_counter() - start)

