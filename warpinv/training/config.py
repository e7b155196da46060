"""The schema of a training run (``experiments/train/<name>.yaml``), validated strictly like every config.

Example:
    >>> cfg = from_dict(TrainConfig, {"name": "t", "method": "e3dge", "trainer": {"max_steps": 10}})
    >>> cfg.trainer.max_steps, cfg.proxy.novel_views
    (10, 2)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from warpinv.bench.suite import WandbConfig
from warpinv.checks import check_min
from warpinv.config import from_dict  # noqa: F401  (doctest)
from warpinv.training.proxy import ProxyConfig


@dataclass
class RealConfig:
    """Optional real images for reconstruction losses (an EG3D-format folder)."""

    root: str | None = None
    """Folder with images and dataset.json; ``None``: proxy samples only."""
    batch_size: int = 1
    """Real images per step and process."""


@dataclass
class TrainerConfig:
    """``pytorch_lightning.Trainer`` settings of the run."""

    max_steps: int = 1000
    """Optimiser steps in all (both stages)."""
    batch_size: int = 4
    """Proxy samples per step and process."""
    val_every_n_steps: int = 500
    """Validate (GT novel-view PSNR of the fixed proxy samples) every this many steps and at the end."""
    checkpoint_every_n_steps: int = 500
    """Write ``checkpoints/last.ckpt`` every this many steps (and at the end); ``best.ckpt`` follows validation."""
    log_every_n_steps: int = 10
    """Log losses and learning rates every this many steps."""
    image_every_n_steps: int = 500
    """Save (and log to wandb) an image grid of validation samples every this many steps; 0 = never."""
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    """``auto``: every visible GPU, else the CPU."""
    devices: int | None = None
    """Processes (GPUs, or CPU processes); ``None``: every visible GPU, or 1 CPU process."""
    cpu_threads: int | None = None
    """torch threads per CPU process; ``None`` keeps torch's default."""
    precision: str = "32-true"
    """Lightning precision (``32-true``, ``bf16-mixed``, ...)."""
    seed: int = 0
    """Seeds the encoder's initialisation (the data have their own seed, ``proxy.seed``)."""
    gradient_clip_val: float | None = None
    """Clip the gradient norm to this value; ``None``: no clipping."""
    deterministic: bool = True
    """``torch.use_deterministic_algorithms`` (exact resume and retraining; may be slower on GPUs)."""

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "val_every_n_steps", "checkpoint_every_n_steps", "log_every_n_steps"):
            check_min(getattr(self, name), 1, name)
        check_min(self.image_every_n_steps, 0, "image_every_n_steps")


@dataclass
class TrainConfig:
    """A training run of a trainable method."""

    name: str = ""
    """Run name (the output folder's and the wandb run's)."""
    method: str = ""
    """A registered trainable method (``warpinv methods``)."""
    preset: str | None = None
    """A method preset (``experiments/methods/<preset>.yaml`` or a path) that ``config`` is merged onto, so that the
    run and the benchmark entry that loads its weights share one architecture; the preset's ``checkpoint`` (the
    weights it would load) is dropped: training starts from initialised weights."""
    config: dict[str, Any] = field(default_factory=dict)
    """The method's config (merged onto ``preset``; validated by the method's schema)."""
    generator: str = "tiny"
    """The generator the method is trained for (a preset, a weight file or ``tiny``)."""
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    """Proxy samples."""
    real: RealConfig = field(default_factory=RealConfig)
    """Optional real images."""
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    """Trainer settings."""
    wandb: WandbConfig = field(default_factory=WandbConfig)
    """Weights & Biases logging (the same rules as ``warpinv bench``)."""
    output: str = ""
    """Run folder; ``""``: ``runs/train/<name>``."""
    export: str | None = None
    """Where the trained weights are also written as ``.safetensors`` (the file a method config names as
    ``checkpoint``); ``None``: ``<output>/<name>.safetensors`` only."""
    notes: list[str] = field(default_factory=list)
    """Free text carried into the run's provenance."""
