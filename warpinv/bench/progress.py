"""Progress: one tqdm line per method with an ETA, and CPU thread sharing across processes."""
from __future__ import annotations

import os
import sys
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback


class MethodProgress(Callback):
    """A progress bar for one method's images (rank 0 draws it; other ranks' images are estimated).

    Ranks take interleaved shards of equal size (``UnrepeatedDistributedSamplerWrapper``), so each
    image rank 0 finishes stands for ``world_size`` images.
    """

    def __init__(self, label: str, total: int, enabled: bool = True) -> None:
        super().__init__()
        self.label = label
        self.total = total
        self.enabled = enabled
        self.bar: Any = None
        self.failed = 0

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not (self.enabled and trainer.is_global_zero):
            return
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.total, desc=f"{self.label:>12}", unit="img", dynamic_ncols=True, leave=True,
                        file=sys.stderr, mininterval=0.5, smoothing=0.1)

    def on_predict_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                             batch_idx: int, dataloader_idx: int = 0) -> None:
        if self.bar is None:
            return
        n_images = len(batch.get("image_ids", [])) if isinstance(batch, dict) else 1
        self.failed += sum(1 for o in outputs or [] if not getattr(o, "ok", True))  # failed inversions
        step = min(n_images * trainer.world_size, self.total - self.bar.n)
        self.bar.update(max(step, 0))
        if self.failed:  # rank 0's own failures (the merged table counts all)
            self.bar.set_postfix({"failed" if trainer.world_size == 1 else "failed(rank0)": self.failed})

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.bar is not None:
            self.bar.update(self.total - self.bar.n)
            self.bar.close()
            self.bar = None


class ShareCpuThreads(Callback):
    """CPU process setup in every rank: ``cpu_count // N`` intra-op threads with N processes (no
    oversubscription), and the allocator tuning of :func:`warpinv.backbone.runtime.tune_cpu_allocator`
    (ranks started from a notebook or a test never went through the CLI)."""

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if pl_module.device.type != "cpu":
            return
        from warpinv.backbone.runtime import tune_cpu_allocator

        tune_cpu_allocator()
        if trainer.world_size > 1:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // trainer.world_size))
