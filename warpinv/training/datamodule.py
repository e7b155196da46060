"""``ProxyDataModule``: proxy training and validation batches for ``trainer.fit`` of an encoder method.

- Training: the endless :class:`~warpinv.training.proxy.ProxyStream` of the rank, starting at the trainer's
  ``global_step`` (so a resumed run continues with the samples of the step it resumes at). Draws are made
  on the CPU; the samples are rendered on the training device in ``on_after_batch_transfer`` with the
  method's own (frozen) generator, or read from the CPU cache (:class:`~warpinv.training.proxy.ProxyCache`).
- Validation: ``val_size`` fixed samples of their own stream, rendered once and kept.
- Real images (optional, ``real_root``): an EG3D-format folder cycled in a seeded order per pass and rank;
  training batches are then ``{"proxy": ..., "real": ...}`` (Lightning's combined loader).

Every training batch is a dict with ``proxy`` (the keys of :func:`~warpinv.training.proxy.render_proxy` plus
``index``, ``cameras``, ``novel_cameras``) and, with real images, ``real`` (``images``, ``cameras``,
``image_ids``, ``masks``).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset

from warpinv.checks import check_min
from warpinv.training.proxy import VAL_STREAM, ProxyCache, ProxyConfig, ProxyStream, draw_samples, render_proxy

logger = logging.getLogger(__name__)


class RealStream(IterableDataset):
    """Endless batches of real images for one rank: pass ``p`` visits the dataset in a permutation seeded by
    ``(seed, p)``, and rank ``r`` of ``W`` takes every ``W``-th position from ``r``."""

    def __init__(self, dataset: Any, batch_size: int, seed: int, *, rank: int = 0, world_size: int = 1,
                 start_step: int = 0) -> None:
        super().__init__()
        if len(dataset) == 0:
            raise ValueError("the real-image folder holds no image")
        self.dataset, self.batch_size, self.seed = dataset, batch_size, seed
        self.rank, self.world_size, self.start_step = rank, world_size, start_step

    def positions(self, step: int) -> list[int]:
        """Dataset indices of step ``step`` on this rank."""
        n = len(self.dataset)
        out = []
        for j in range(self.batch_size):
            k = (step * self.world_size + self.rank) * self.batch_size + j
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + k // n))
            out.append(int(perm[k % n]))
        return out

    def __iter__(self) -> Iterator[dict[str, Any]]:
        from warpinv.data.dataset import collate

        step = self.start_step
        while True:
            yield collate([self.dataset[i] for i in self.positions(step)])
            step += 1


class ProxyDataModule(pl.LightningDataModule):
    """Proxy (and optionally real) batches for an encoder method's ``trainer.fit``.

    Args:
        config: the proxy settings.
        generator: the method's generator (its ``z_dim``, and the renderer of the cache); during training the
            samples are rendered with the attached module's ``G`` on the training device.
        batch_size: proxy samples per step and rank.
        real_root: optional EG3D-format folder of real images; ``real_batch_size`` of them per step.
        generator_fingerprint: identifies the generator's weights in the cache key.
    """

    def __init__(self, config: ProxyConfig, generator: Any, batch_size: int, *, real_root: str | None = None,
                 real_batch_size: int = 1, generator_fingerprint: str = "") -> None:
        super().__init__()
        check_min(batch_size, 1, "batch_size")
        self.config, self.G, self.batch_size = config, generator, batch_size
        self.real_root, self.real_batch_size = real_root, real_batch_size
        self.cache = (ProxyCache(config.cache, config, generator_fingerprint or getattr(generator, "source", ""))
                      if config.cache else None)
        self._val: dict[int, dict[str, Tensor]] = {}

    # -- setup ------------------------------------------------------------------------------------------

    def prepare_data(self) -> None:
        """Render the cache once (local rank 0; the other ranks wait and then read it)."""
        if self.cache is not None:
            self.cache.ensure(self.G)

    def setup(self, stage: str | None = None) -> None:
        if self.cache is not None:
            self.cache.ensure(self.G)

    def _position(self) -> tuple[int, int, int]:
        trainer = self.trainer
        if trainer is None:
            return 0, 0, 1
        return trainer.global_step, trainer.global_rank, trainer.world_size

    # -- loaders ----------------------------------------------------------------------------------------

    def train_dataloader(self) -> Any:
        step, rank, world = self._position()
        stream = ProxyStream(self.config, self.G.z_dim, self.batch_size, rank=rank, world_size=world,
                             start_step=step, cache_size=self.config.cache_size if self.cache else None)
        loaders: dict[str, DataLoader] = {"proxy": DataLoader(stream, batch_size=None, num_workers=0)}
        if self.real_root:
            from warpinv.data.dataset import InversionDataset

            real = RealStream(InversionDataset(self.real_root), self.real_batch_size, self.config.seed, rank=rank,
                              world_size=world, start_step=step)
            loaders["real"] = DataLoader(real, batch_size=None, num_workers=0)
        return loaders

    def val_dataloader(self) -> DataLoader:
        n, b = self.config.val_size, self.config.render_batch
        batches = [draw_samples(self.config, self.G.z_dim, list(range(s, min(n, s + b))), VAL_STREAM)
                   for s in range(0, n, b)]
        return DataLoader(batches, batch_size=None, num_workers=0)

    # -- rendering on the device ------------------------------------------------------------------------

    def _generator(self) -> Any:
        module = self.trainer.lightning_module if self.trainer is not None else None
        return getattr(module, "G", None) or self.G

    def render(self, draws: dict[str, Tensor]) -> dict[str, Tensor]:
        """Rendered samples for ``draws`` (on their device): from the cache when the draws name cache entries,
        else rendered with the generator."""
        if "cache_index" in draws:
            assert self.cache is not None
            return {"index": draws["index"], **self.cache.gather(draws["cache_index"], draws["index"].device)}
        rendered = render_proxy(self._generator(), draws["z"], draws["cameras"], draws["novel_cameras"],
                                self.config.truncation_psi)
        return {**draws, **rendered}

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if isinstance(batch, dict) and "proxy" in batch:
            return {**batch, "proxy": self.render(batch["proxy"])}
        if isinstance(batch, dict) and "z" in batch:  # a validation batch
            key = int(batch["index"][0])
            if key not in self._val:
                self._val[key] = self.render(batch)
            return self._val[key]
        return batch

    def describe(self) -> str:
        """One line for logs."""
        source = (f"cache {os.fspath(self.config.cache)} ({self.config.cache_size} samples)" if self.cache
                  else "on the fly")
        real = f", real images from {self.real_root}" if self.real_root else ""
        return (f"proxy samples {source}, batch {self.batch_size}, {self.config.novel_views} novel views, "
                f"psi {self.config.truncation_psi}{real}")
