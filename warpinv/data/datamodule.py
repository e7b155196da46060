"""``InversionDataModule``: the Lightning data module the benchmark harness predicts over.

Every stage (``predict``, ``test``, ``validate``) iterates the same dataset in a fixed order, without
shuffling, through :func:`~warpinv.data.dataset.collate`. Under DDP Lightning's distributed sampler
shards it (and may repeat a few samples to even the shards; the harness de-duplicates rows). The
module holds only plain values until :meth:`setup`, so it pickles for ``ddp_spawn``.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl
from torch.utils.data import DataLoader

from warpinv.checks import check_min
from warpinv.data.dataset import InversionDataset, collate
from warpinv.data.validation import DatasetOptions


@dataclass
class DataConfig(DatasetOptions):
    """A dataset as a benchmark suite names it: folder, split, loader settings and loading options."""

    root: str = ""
    """Folder with images and dataset.json (EG3D format)."""
    split: str | None = None
    """Split file selecting the images (one id per line); ``None`` = every entry."""
    batch_size: int = 1
    """Images per batch (per-image optimisation methods use 1)."""
    num_workers: int = 0
    """DataLoader worker processes."""

    def options(self) -> DatasetOptions:
        """The :class:`DatasetOptions` part of this config."""
        names = {f.name for f in dataclasses.fields(DatasetOptions)}
        return DatasetOptions(**{k: v for k, v in dataclasses.asdict(self).items() if k in names})


class InversionDataModule(pl.LightningDataModule):
    """Loads an EG3D-format folder for ``trainer.predict`` (also ``test``/``validate``).

    Args:
        root: dataset folder.
        split: split file or list of ids (see :mod:`warpinv.data.splits`).
        exclude_ids: ids to skip (a resumed run passes the images it has finished).
        batch_size: images per batch.
        num_workers: DataLoader workers.
        options: :class:`DatasetOptions`; keyword arguments override its fields.

    Example:
        >>> dm = InversionDataModule("runs/data/synthetic-tiny", batch_size=1)  # doctest: +SKIP
        >>> dm.setup("predict"); batch = next(iter(dm.predict_dataloader()))   # doctest: +SKIP
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        split: str | os.PathLike[str] | Sequence[str] | None = None,
        exclude_ids: Iterable[str] = (),
        batch_size: int = 1,
        num_workers: int = 0,
        options: DatasetOptions | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__()
        check_min(batch_size, 1, "batch_size")
        self.root = os.fspath(root)
        self.split = split if split is None or isinstance(split, (str, os.PathLike)) else list(split)
        self.exclude_ids = sorted({str(x) for x in exclude_ids})
        self.batch_size = batch_size
        self.num_workers = num_workers
        opts = options or DatasetOptions()
        self.options = DatasetOptions(**{**opts.__dict__, **overrides}) if overrides else opts
        self.dataset: InversionDataset | None = None

    @classmethod
    def from_config(cls, config: DataConfig, exclude_ids: Iterable[str] = ()) -> InversionDataModule:
        if not config.root:
            raise ValueError("DataConfig.root is empty: name the dataset folder")
        return cls(config.root, split=config.split, exclude_ids=exclude_ids, batch_size=config.batch_size,
                   num_workers=config.num_workers, options=config.options())

    def setup(self, stage: str | None = None) -> None:
        if self.dataset is None:
            self.dataset = InversionDataset(self.root, split=self.split, exclude_ids=self.exclude_ids,
                                            options=self.options)

    def _loader(self) -> DataLoader:
        self.setup()
        assert self.dataset is not None
        return DataLoader(self.dataset, batch_size=self.batch_size, shuffle=False, num_workers=self.num_workers,
                          collate_fn=collate, persistent_workers=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader()

    def test_dataloader(self) -> DataLoader:
        return self._loader()

    def val_dataloader(self) -> DataLoader:
        return self._loader()
