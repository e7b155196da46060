"""Datasets for inversion: EG3D-format folders, validation, splits, photo preparation, synthetic sets.

- :class:`InversionDataset` / :class:`InversionDataModule` / :func:`collate`: an EG3D-format folder
  (images + ``dataset.json``) as batches of images in ``[-1, 1]``, ids and 25-float cameras, with
  optional masks, depth priors and ground-truth novel views; validated at load with a report.
- :func:`make_synthetic_multiview`: a multi-view set rendered by a generator (exact novel-view
  ground truth; the default benchmark's data), optionally with occluders pasted on the inputs
  (:mod:`warpinv.data.occluders`; OOD masks and clean inputs beside them).
- :mod:`warpinv.data.splits`: split files and the CelebA-HQ test split.
- :mod:`warpinv.data.prepare`: ``warpinv data prepare`` (MTCNN, EG3D's crop, cameras from landmarks).
- :func:`add_data_parser` / :func:`run_data_cli`: the ``warpinv data`` command group.
"""
from __future__ import annotations

from warpinv.data.cli import add_data_parser, run_data_cli
from warpinv.data.datamodule import DataConfig, InversionDataModule
from warpinv.data.dataset import DatasetWarning, InversionDataset, collate
from warpinv.data.images import ImageReadError, image_to_tensor, read_image, tensor_to_image
from warpinv.data.occluders import OCCLUDER_KINDS, Occlusion, occlude
from warpinv.data.splits import SplitError, match_split, read_split, write_celebahq_splits
from warpinv.data.synthetic import DEFAULT_VIEWS, SyntheticSpec, make_synthetic_multiview, view_name
from warpinv.data.validation import DatasetError, DatasetOptions, ValidationReport, validate_dataset

__all__ = [
    "DEFAULT_VIEWS",
    "DataConfig",
    "DatasetError",
    "DatasetOptions",
    "DatasetWarning",
    "ImageReadError",
    "InversionDataModule",
    "InversionDataset",
    "OCCLUDER_KINDS",
    "Occlusion",
    "SplitError",
    "SyntheticSpec",
    "ValidationReport",
    "add_data_parser",
    "collate",
    "image_to_tensor",
    "make_synthetic_multiview",
    "match_split",
    "occlude",
    "read_image",
    "read_split",
    "run_data_cli",
    "tensor_to_image",
    "validate_dataset",
    "view_name",
    "write_celebahq_splits",
]
