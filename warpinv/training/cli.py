"""``warpinv train CONFIG [key=value ...] [--resume] [--devices N]``."""
from __future__ import annotations

import argparse
import logging
from typing import Any


def add_train_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("train", help="train an encoder method on proxy samples (experiments/train/*.yaml)",
                              description="trainer.fit of a trainable method; checkpoints, resume, validation, "
                                          "wandb, and the exported .safetensors weights (see warpinv.training.runner).")
    p.add_argument("config", help="training YAML (experiments/train/<name>.yaml)")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. trainer.max_steps=100 config.lr=1e-4")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in its output folder (checkpoints/last.ckpt)")
    p.add_argument("--devices", type=int, default=None, help="processes (GPUs or CPU processes)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)


def _cmd_train(ns: argparse.Namespace) -> int:
    from warpinv.config import ConfigError
    from warpinv.training.runner import run_training

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        result = run_training(ns.config, ns.overrides, resume=ns.resume, devices=ns.devices,
                              progress=not ns.no_progress)
    except (ConfigError, FileNotFoundError, FileExistsError) as err:
        logging.getLogger("warpinv.train").error("warpinv train: %s", err)
        return 2
    logging.getLogger("warpinv.train").info("weights: %s", result.weights)
    return 0
