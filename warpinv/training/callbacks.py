"""Lightning callbacks of ``warpinv train``: a step progress bar with an ETA, validation image grids and the final
checkpoint."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, TQDMProgressBar
from torch import Tensor

from warpinv.bench.grids import save_png, to_uint8
from warpinv.methods.base import InversionItem

logger = logging.getLogger(__name__)


class StepProgressBar(TQDMProgressBar):
    """The training bar counts optimiser steps out of ``max_steps`` (the proxy stream is endless, so an epoch
    has no length); tqdm then shows the rate and the remaining time. A resumed run starts at its step."""

    def on_train_epoch_start(self, trainer: pl.Trainer, *_: Any) -> None:
        super().on_train_epoch_start(trainer)
        self.train_progress_bar.reset(total=trainer.max_steps)
        self.train_progress_bar.initial = trainer.global_step
        self.train_progress_bar.n = trainer.global_step
        self.train_progress_bar.set_description("train")


class ValidationGrid(Callback):
    """Every ``every_n_steps`` (and after the last step), one PNG of the first validation batch: per sample a row
    of the input, its inversion at the input view, then each ground-truth novel view beside its render.

    Uses only the method interface (``invert_batch`` and ``renderer``), so it works for any trainable method.
    Saved as ``<folder>/step<N>.png`` and logged to every logger with ``log_image`` (wandb).
    """

    def __init__(self, folder: str | Path, every_n_steps: int, max_samples: int = 4) -> None:
        self.folder, self.every, self.max_samples = Path(folder), every_n_steps, max_samples
        self._done: set[int] = set()

    def on_validation_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        step = trainer.global_step
        due = self.every > 0 and (step % self.every == 0 or step >= (trainer.max_steps or 0))
        if batch_idx != 0 or not due or step in self._done or trainer.sanity_checking or not trainer.is_global_zero:
            return
        self._done.add(step)
        grid = validation_grid(pl_module, batch, self.max_samples)
        path = self.folder / f"step{step:07d}.png"
        save_png(to_uint8(grid), path)
        for lg in trainer.loggers:
            if hasattr(lg, "log_image"):
                lg.log_image(key="val/grid", images=[str(path)], step=step)


@torch.no_grad()
def validation_grid(method: Any, batch: dict[str, Tensor], max_samples: int = 4) -> Tensor:
    """``(3, rows * H, (2 + 2 K) * W)`` in [-1, 1]: per sample, input | inversion | (GT novel | render) x K."""
    n = min(max_samples, batch["images"].shape[0])
    items = [InversionItem(f"val{i}", batch["images"][i: i + 1], batch["cameras"][i: i + 1]) for i in range(n)]
    rows = []
    for i, inversion in enumerate(method.invert_batch(items)):
        cams = torch.cat([batch["cameras"][i: i + 1], batch["novel_cameras"][i]])
        renders = method.renderer(inversion)(cams)["image"].clamp(-1, 1)
        tiles = [batch["images"][i], renders[0]]
        for k in range(cams.shape[0] - 1):
            tiles += [batch["novel_images"][i, k], renders[k + 1]]
        rows.append(torch.cat([t.float().cpu() for t in tiles], dim=-1))
    return torch.cat(rows, dim=-2)


class FinalCheckpoint(Callback):
    """Writes ``last.ckpt`` after the last step too (the periodic checkpoints need not fall on it), on every rank
    as Lightning's ``save_checkpoint`` requires, so that the launching process can read the final weights back
    after a multi-process run and ``--resume`` of a finished run starts where it ended."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trainer.save_checkpoint(self.path, weights_only=False)  # the full state (optimiser too): a resume needs it
