"""Training of encoder methods (``warpinv train``): proxy data the generator renders itself, the data module,
the run loop with checkpoints, resume, validation and logging, and the exported weights."""
from __future__ import annotations

from warpinv.training.config import RealConfig, TrainConfig, TrainerConfig
from warpinv.training.datamodule import ProxyDataModule
from warpinv.training.proxy import ProxyCache, ProxyConfig, ProxyStream, draw_samples, render_proxy
from warpinv.training.runner import TrainResult, load_train_config, run_training

__all__ = ["ProxyCache", "ProxyConfig", "ProxyDataModule", "ProxyStream", "RealConfig", "TrainConfig", "TrainResult",
           "TrainerConfig", "draw_samples", "load_train_config", "render_proxy", "run_training"]
