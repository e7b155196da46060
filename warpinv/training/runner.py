"""``warpinv train``: ``trainer.fit`` of a trainable method on proxy samples, resumable, with its provenance.

A run folder (``output``, default ``runs/train/<name>``) holds:

- ``config.yaml``: the resolved run config (the method config completed with its defaults) and its hash;
- ``checkpoints/last.ckpt`` (every ``checkpoint_every_n_steps`` and at the end) and ``checkpoints/best.ckpt``
  (best ``val/novel_psnr``): Lightning checkpoints with the optimiser state, without the generator;
- ``logs/attempt<k>/metrics.csv`` (losses, validation PSNRs; one folder per start or resume),
  ``images/step<N>.png`` (validation grids);
- ``<name>.safetensors``: the trained weights as the method loads them (``checkpoint:`` in a method config), with
  the method config in its header, plus ``<name>.json`` (provenance) and ``<name>_curve.png`` beside it (and
  beside ``export`` when set).

``resume=True`` continues from ``checkpoints/last.ckpt``: the optimiser, the step and the proxy stream (whose
position is the step) continue where the run stopped, so a killed run resumed ends with the weights an
uninterrupted run has (on the same machine).
"""
from __future__ import annotations

import contextlib
import json
import logging
import platform
import shutil
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from warpinv.config import (
    ConfigError,
    apply_overrides,
    config_hash,
    deep_merge,
    from_dict,
    load_yaml,
    save_yaml,
    to_dict,
)
from warpinv.training.config import TrainConfig

logger = logging.getLogger("warpinv.train")


@dataclass
class TrainResult:
    """What a finished run produced."""

    output: Path
    weights: Path
    steps: int
    seconds: float
    metrics: dict[str, float]


def load_train_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read a training YAML (``_base_`` allowed), apply dotted overrides, validate strictly (the method config
    too)."""
    from warpinv.methods import METHODS

    path = Path(path)
    data = apply_overrides(load_yaml(path), list(overrides or []))
    cfg = from_dict(TrainConfig, data)
    cfg.name = cfg.name or path.stem
    cfg.output = cfg.output or str(Path("runs") / "train" / cfg.name)
    if cfg.method not in METHODS:
        raise ConfigError(f"{path}: unknown method {cfg.method!r}; registered: {', '.join(sorted(METHODS))}")
    cls = METHODS[cfg.method]
    if not cls.trainable:
        trainable = sorted(n for n, c in METHODS.items() if c.trainable)
        raise ConfigError(f"{path}: method {cfg.method!r} does not train (it optimises per image); trainable methods: "
                          f"{', '.join(trainable) or 'none'}")
    if cfg.preset:
        from warpinv.bench.suite import MethodEntry, SuiteConfig, find_preset, load_preset

        preset = load_preset(find_preset(SuiteConfig(), MethodEntry(cfg.method, cfg.preset)), cfg.method)
        preset.pop("checkpoint", None)
        cfg.config = deep_merge(preset, cfg.config)
    from_dict(cls.Config, cfg.config, path="config")
    return cfg


def method_config(cfg: TrainConfig) -> Any:
    """The method's validated config (its ``checkpoint`` must be empty: training starts from scratch)."""
    from warpinv.methods import METHODS

    mcfg = from_dict(METHODS[cfg.method].Config, cfg.config, path="config")
    if getattr(mcfg, "checkpoint", None):
        raise ConfigError("config.checkpoint: a training run starts from initialised weights; resume a run with "
                          "--resume instead")
    return mcfg


def resolved(cfg: TrainConfig) -> dict[str, Any]:
    """The run config with the method config completed, and its hash (``run_hash``)."""
    data = to_dict(cfg)
    data["config"] = to_dict(method_config(cfg))
    data["run_hash"] = config_hash({k: v for k, v in data.items() if k not in ("notes", "wandb", "output")})
    return data


def check_training_weights(cfg: TrainConfig) -> None:
    """Fail before any work when a weight file the losses need is missing (names every missing file)."""
    from warpinv.methods import METHODS
    from warpinv.weights import resolve

    names = getattr(METHODS[cfg.method], "training_weights", lambda _c: [])(method_config(cfg))
    missing = []
    for name in names:
        try:
            resolve(name)
        except Exception as err:  # MissingWeightsError carries the fetch instructions
            missing.append(str(err))
    if missing:
        raise FileNotFoundError("training needs weight files that are missing:\n" + "\n".join(missing) +
                                "\n(or set config.allow_random_lpips=true for a weight-free run, which trains "
                                "against random LPIPS/ArcFace trunks)")


def _accelerator(cfg: TrainConfig, devices: int | None) -> tuple[str, int]:
    want = devices if devices is not None else cfg.trainer.devices
    use_gpu = cfg.trainer.accelerator in ("auto", "gpu") and torch.cuda.is_available()
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        raise ConfigError("trainer.accelerator=gpu but no CUDA device is visible")
    if use_gpu:
        return "gpu", want or torch.cuda.device_count()
    return "cpu", want or 1


def run_training(path: str | Path, overrides: list[str] | None = None, *, resume: bool = False,
                 devices: int | None = None, progress: bool = True) -> TrainResult:
    """Train (or resume) the run of a YAML config; see the module docstring."""
    import pytorch_lightning as pl

    from warpinv.backbone import load_generator, state_dict_sha256
    from warpinv.bench.runner import output_lock
    from warpinv.methods import build_method
    from warpinv.training.datamodule import ProxyDataModule

    cfg = load_train_config(path, overrides)
    check_training_weights(cfg)
    out = Path(cfg.output)
    last = out / "checkpoints" / "last.ckpt"
    if not resume and last.exists():
        raise FileExistsError(f"{out} already holds a run (checkpoints/last.ckpt); pass --resume to continue it, or "
                              "choose another output")
    if resume and not last.exists():
        logger.warning("[train] --resume: no %s yet, starting from step 0", last)
    out.mkdir(parents=True, exist_ok=True)
    with output_lock(out), process_settings(cfg.trainer.cpu_threads):
        run = resolved(cfg)
        save_yaml(run, out / "config.yaml")
        G = load_generator(cfg.generator)
        pl.seed_everything(cfg.trainer.seed, workers=True, verbose=False)
        method = build_method(cfg.method, method_config(cfg), G)
        dm = ProxyDataModule(cfg.proxy, G, cfg.trainer.batch_size, real_root=cfg.real.root,
                             real_batch_size=cfg.real.batch_size, generator_fingerprint=state_dict_sha256(G))
        logger.info("[train] %s: %s on %s; %s", cfg.name, cfg.method, G.source, dm.describe())
        # the frozen generator is in eval mode on purpose
        warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
        # methods with manual optimisation (WarpGAN) checkpoint after their step, which is what resuming needs
        warnings.filterwarnings("ignore", message=r"Using ModelCheckpoint with manual optimization")
        trainer = pl.Trainer(**trainer_arguments(cfg, out, devices, progress))
        start = time.perf_counter()
        trainer.fit(method, datamodule=dm, ckpt_path=str(last) if resume and last.exists() else None)
        steps = load_final_weights(method, last)
        metrics = {k: float(v) for k, v in trainer.validate(method, datamodule=dm, verbose=False)[0].items()}
        seconds = time.perf_counter() - start
        weights = out / f"{cfg.name}.safetensors"
        if trainer.is_global_zero:
            export_run(method, cfg, run, out, weights, steps, seconds, metrics)
        return TrainResult(out, weights, steps, seconds, metrics)


def load_final_weights(method: Any, last: Path) -> int:
    """Load the final ``last.ckpt`` into ``method`` (after a multi-process run the launching process's copy was
    never trained) and return its step."""
    checkpoint = torch.load(last, map_location="cpu", weights_only=True)
    method.on_load_checkpoint(checkpoint)
    method.load_state_dict(checkpoint["state_dict"])
    return int(checkpoint["global_step"])


@contextlib.contextmanager
def process_settings(threads: int | None) -> Iterator[None]:
    """Set the run's torch thread count; restore it and torch's deterministic-algorithms mode (which the
    trainer's ``deterministic`` sets) afterwards, so a run leaves the calling process as it found it."""
    saved_threads = torch.get_num_threads()
    saved_mode = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(saved_threads)
        torch.use_deterministic_algorithms(saved_mode[0], warn_only=saved_mode[1])


def trainer_arguments(cfg: TrainConfig, out: Path, devices: int | None, progress: bool) -> dict[str, Any]:
    """The ``pl.Trainer`` arguments of a run: loggers, checkpoints, validation cadence, devices."""
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.loggers import CSVLogger

    from warpinv.training.callbacks import FinalCheckpoint, StepProgressBar, ValidationGrid

    t = cfg.trainer
    accelerator, processes = _accelerator(cfg, devices)
    attempt = len(list((out / "logs").glob("attempt*")))  # a resumed run logs beside the earlier attempts
    loggers: list[Any] = [CSVLogger(str(out), name="logs", version=f"attempt{attempt}")]
    wandb_logger = _wandb_logger(cfg, out)
    if wandb_logger is not None:
        loggers.append(wandb_logger)
    callbacks: list[Any] = [
        ModelCheckpoint(dirpath=out / "checkpoints", filename="step{step:07d}", save_last=True, save_top_k=0,
                        every_n_train_steps=t.checkpoint_every_n_steps, auto_insert_metric_name=False),
        ModelCheckpoint(dirpath=out / "checkpoints", filename="best", monitor="val/novel_psnr", mode="max",
                        save_top_k=1, auto_insert_metric_name=False, enable_version_counter=False),
        ValidationGrid(out / "images", t.image_every_n_steps),
        FinalCheckpoint(out / "checkpoints" / "last.ckpt"),
    ]
    if progress:
        callbacks.append(StepProgressBar())
    kwargs: dict[str, Any] = {
        "max_steps": t.max_steps, "accelerator": accelerator, "devices": processes, "precision": t.precision,
        "logger": loggers, "callbacks": callbacks, "val_check_interval": t.val_every_n_steps,
        "check_val_every_n_epoch": None, "log_every_n_steps": t.log_every_n_steps, "num_sanity_val_steps": 0,
        "enable_progress_bar": progress, "enable_model_summary": False, "default_root_dir": str(out),
        "gradient_clip_val": t.gradient_clip_val, "deterministic": "warn" if t.deterministic else False,
        "inference_mode": False,
    }
    if processes > 1:
        from pytorch_lightning.strategies import DDPStrategy

        # a two-stage method leaves one branch without gradients in each stage
        kwargs["strategy"] = DDPStrategy(start_method="spawn" if accelerator == "gpu" else "fork",
                                         process_group_backend="nccl" if accelerator == "gpu" else "gloo",
                                         find_unused_parameters=True)
    return kwargs


def _wandb_logger(cfg: TrainConfig, out: Path) -> Any:
    """A ``WandbLogger`` unless the resolved mode is ``disabled`` or wandb is not installed (a warning)."""
    from warpinv.bench.wandb_log import resolve_mode

    mode = resolve_mode(cfg.wandb.enabled, cfg.wandb.mode)
    if mode == "disabled":
        return None
    try:
        from pytorch_lightning.loggers import WandbLogger

        return WandbLogger(name=cfg.name, project=cfg.wandb.project, entity=cfg.wandb.entity, mode=mode,
                           save_dir=str(out), config=resolved(cfg), log_model=False)
    except (ImportError, ModuleNotFoundError) as err:
        logger.warning("[train] wandb logging skipped: %s", err)
        return None


def _attempt_number(path: Path) -> int:
    return int(path.parent.name.removeprefix("attempt") or 0)


def export_run(method: Any, cfg: TrainConfig, run: dict[str, Any], out: Path, weights: Path, steps: int,
               seconds: float, metrics: dict[str, float]) -> None:
    """Write the trained weights, the provenance JSON and the curve image (and copies at ``export``)."""
    from warpinv.training.curve import draw_curves, read_attempts

    method.save_checkpoint(weights)
    curve = out / f"{cfg.name}_curve.png"
    series = read_attempts(sorted((out / "logs").glob("attempt*/metrics.csv"), key=_attempt_number))
    if series:
        draw_curves(series, curve)
    provenance = {
        "name": cfg.name, "method": cfg.method, "run_hash": run["run_hash"], "steps": steps,
        "seconds": round(seconds, 1), "final_validation": metrics, "generator": cfg.generator,
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "config": run,
    }
    (out / f"{cfg.name}.json").write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n")
    if cfg.export:
        target = Path(cfg.export)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(weights, target)
        (target.with_suffix(".json")).write_text((out / f"{cfg.name}.json").read_text())
        if curve.exists():
            shutil.copyfile(curve, target.with_name(target.stem + "_curve.png"))
    logger.info("[train] %s: %d steps in %.0f s; weights %s; validation %s", cfg.name, steps, seconds, weights,
                {k: round(v, 3) for k, v in metrics.items()})
