"""``InversionDataset``: an EG3D-format folder as a torch ``Dataset`` of images to invert, and ``collate``.

A sample (``dataset[i]``) is a dict:

- ``image_id`` (str): the entry's file name in dataset.json (unique);
- ``image`` ``(3, R, R)`` float32 in ``[-1, 1]``; ``camera`` ``(25,)`` float32 EG3D label (normalised);
- ``mask`` ``(1, R, R)`` float32 in ``{0, 1}`` (1 = valid pixel), only when the entry has one;
- ``depth`` ``(1, h, w)`` float32 depth prior at its stored resolution, only when the entry has one;
- ``ood_mask`` ``(1, R, R)`` float32 in ``{0, 1}`` (1 = out-of-distribution pixel, an occluder; read as
  ``mask``: grey > 127, nearest resize), only when the entry has one (``ood_masks`` in dataset.json);
- ``clean_image`` ``(3, R, R)`` in ``[-1, 1]``: the view without its occluders (read as ``image``),
  only when the entry has one (``clean_images``; synthetic occluded sets);
- ``novel_images`` ``(V, 3, R, R)``, ``novel_cameras`` ``(V, 25)``, ``novel_view_names`` (list of V
  str), only when the entry has ground-truth novel views;
- ``novel_visible`` ``(V, 1, R, R)`` float32 in ``{0, 1}``: each novel view's covisibility mask (1 = the
  pixel's surface point is seen by the input view; read as ``mask``), only when the entry's views have
  ``visible`` files (synthetic sets);
- ``camera_source`` (str): per-file ``camera_sources``, else ``meta.camera_source``, else ``"dataset"``;
- ``refine_camera`` (bool): ``meta.refine_camera`` (set by ``warpinv data prepare --refine``).

:func:`collate` stacks samples into the batch that :func:`warpinv.methods.base.split_batch` expects:
``images (B, 3, R, R)``, ``cameras (B, 25)``, ``image_ids`` (list), ``masks (B, 1, R, R)`` or
``None`` (when some samples have a mask and others not, the missing ones are all ones), and per-sample
extras ``novel_images (B, V, 3, R, R)``, ``novel_cameras (B, V, 25)``, ``novel_view_names`` (list of
lists), ``novel_visible (B, V, 1, R, R)`` (as ``novel_images``: every sample or none),
``depth (B, 1, h, w)``, ``camera_source`` (list), ``refine_camera`` (list), and:

- ``ood_mask (B, 1, R, R)`` with ``has_ood_mask (B,)`` bool, only when some sample has an OOD mask;
  a sample without one gets all zeros (nothing is OOD) and ``False``. Unlike ``masks`` (which every
  method's loss and metric honour), only methods that model occluders (In-N-Out) and the OOD metrics
  read these;
- ``clean_image (B, 3, R, R)``, only when **every** sample has a clean image (omitted otherwise, so
  a consumer scores against ``clean_image`` only when the key is there; use ``batch_size=1`` on
  sets where some images lack one).

Like ``depth``, these per-sample extras keep their sample key in the batch (only ``masks`` is plural:
:func:`~warpinv.methods.base.split_batch` reserves it), so each item's extras hold ``ood_mask
(1, 1, R, R)``, ``has_ood_mask (1,)`` and ``clean_image (1, 3, R, R)``, the names the In-N-Out method
and the benchmark's OOD scoring read.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from warpinv.data.images import ImageReadError, image_to_tensor, read_image
from warpinv.data.splits import match_split, read_split
from warpinv.data.validation import (
    DatasetEntry,
    DatasetError,
    DatasetOptions,
    ValidationReport,
    load_depth,
    validate_dataset,
)


class DatasetWarning(UserWarning):
    """Emitted once per dataset load when validation has warnings (cameras normalised, resizes)."""


class InversionDataset(Dataset):
    """Images, cameras and optional masks, depth priors, ground-truth novel views, OOD masks and clean
    images of a folder.

    Validation runs at construction (:func:`warpinv.data.validation.validate_dataset`); any error
    raises :class:`DatasetError` whose message is the whole report, warnings are emitted as one
    :class:`DatasetWarning` and kept in :attr:`report`.

    Args:
        root: folder with ``dataset.json``.
        split: a split file (or a sequence of ids) selecting entries (see :mod:`warpinv.data.splits`);
            ids that match nothing are listed in :attr:`missing_split_ids` and a warning.
        exclude_ids: image ids to leave out (e.g. those a resumed benchmark has already done).
        options: loading options; keyword arguments override its fields.

    Attributes:
        entries: the selected, validated entries in dataset.json order (split order with a split).
        report: the validation report.
        resolution: the image side every sample has.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        split: str | os.PathLike[str] | Sequence[str] | None = None,
        exclude_ids: Iterable[str] = (),
        options: DatasetOptions | None = None,
        **overrides: Any,
    ) -> None:
        opts = options or DatasetOptions()
        if overrides:
            opts = DatasetOptions(**{**opts.__dict__, **overrides})
        self.root = Path(root)
        self.options = opts
        entries, report = validate_dataset(self.root, opts)
        self.report: ValidationReport = report
        if not report.ok:
            raise DatasetError(report.format(), report)
        self.missing_split_ids: list[str] = []
        if split is not None:
            ids = read_split(split) if isinstance(split, (str, os.PathLike)) else [str(s) for s in split]
            by_name = {e.name: e for e in entries}
            names, self.missing_split_ids = match_split(list(by_name), ids)
            entries = [by_name[n] for n in names]
            if self.missing_split_ids:
                shown = ", ".join(self.missing_split_ids[:20])
                report.warnings.append(f"{len(self.missing_split_ids)} split id(s) have no entry in "
                                       f"{report.json_path}: {shown}"
                                       + (" ..." if len(self.missing_split_ids) > 20 else ""))
        excluded = {str(x) for x in exclude_ids}
        if excluded:
            entries = [e for e in entries if e.name not in excluded]
        self.entries: list[DatasetEntry] = entries
        self.resolution: int = int(report.resolution) if report.resolution else 0
        self.meta = dict(report.meta)
        self.refine_camera = bool(self.meta.get("refine_camera", False))
        self._default_source = str(self.meta.get("camera_source") or "dataset")
        if report.warnings:
            warnings.warn("\n".join(report.warnings), DatasetWarning, stacklevel=2)

    @property
    def image_ids(self) -> list[str]:
        return [e.name for e in self.entries]

    def __len__(self) -> int:
        return len(self.entries)

    def _image(self, rel: str, kind: str = "image") -> Tensor:
        path = self.root / rel
        try:
            im = read_image(path, background=self.options.background, max_pixels=self.options.max_pixels)
        except ImageReadError as err:
            raise DatasetError(f"{self.report.json_path}: {kind} {rel!r}: {err.status}: {err.reason}") from None
        r = self.resolution
        if r and im.size != (r, r):
            im = im.resize((r, r), Image.LANCZOS)
        return image_to_tensor(im)

    def _mask(self, rel: str, kind: str = "mask") -> Tensor:
        path = self.root / rel
        try:
            with Image.open(path) as m:
                m.load()
                arr = np.asarray(m.convert("L"), dtype=np.uint8)
        except Exception as err:  # noqa: BLE001
            raise DatasetError(f"{self.report.json_path}: {kind} {rel!r} cannot be read ({err})") from None
        mask = Image.fromarray(arr)
        r = self.resolution
        if r and mask.size != (r, r):
            mask = mask.resize((r, r), Image.NEAREST)
        return torch.from_numpy((np.asarray(mask) > 127).astype(np.float32))[None]

    def _depth(self, rel: str) -> Tensor:
        try:
            arr = load_depth(self.root / rel)
        except ValueError as err:
            raise DatasetError(f"{self.report.json_path}: depth {rel!r} {err}") from None
        return torch.from_numpy(arr.copy())[None]

    def input_fingerprint(self, index: int) -> str:
        """sha256 (16 hex digits) of everything a result row of entry ``index`` depends on: the bytes
        of its image, mask, depth, ground-truth view, OOD mask, clean image and covisibility mask files,
        and its cameras as loaded. A benchmark resumes an image only when its rows carry the same
        fingerprint."""
        e = self.entries[index]
        h = hashlib.sha256()
        files = [e.name, e.mask, e.depth, *[v.file for v in e.novel_views]]
        labels = [e.label, *[v.label for v in e.novel_views]]
        for rel in files:
            h.update(b"-" if rel is None else hashlib.sha256((self.root / rel).read_bytes()).digest())
        # Only when present, so that entries without them keep the fingerprints they had before these keys.
        optional = [(b"ood_mask", e.ood_mask), (b"clean_image", e.clean_image),
                    *[(b"visible", v.visible) for v in e.novel_views]]
        for tag, rel in optional:
            if rel is not None:
                h.update(tag + hashlib.sha256((self.root / rel).read_bytes()).digest())
        for label in labels:
            h.update(np.ascontiguousarray(label, dtype=np.float64).tobytes())
        return h.hexdigest()[:16]

    def input_fingerprints(self) -> dict[str, str]:
        """:meth:`input_fingerprint` of every entry, by image id."""
        return {e.name: self.input_fingerprint(i) for i, e in enumerate(self.entries)}

    def __getitem__(self, index: int) -> dict[str, Any]:
        """One sample; an image, mask, depth, view, OOD mask, clean image or covisibility mask file that cannot be
        read gives a sample with a ``load_error`` (the file and the reason) instead of stopping the loader: the
        method then fails that image alone, with the reason in its row."""
        try:
            return self._sample(index)
        except DatasetError as err:
            return self._unreadable(index, str(err))

    def _unreadable(self, index: int, reason: str) -> dict[str, Any]:
        e = self.entries[index]
        side = self.resolution or 1
        return {"image_id": e.name, "image": torch.zeros(3, side, side),
                "camera": torch.from_numpy(e.label.astype(np.float32)),
                "camera_source": e.camera_source or self._default_source, "refine_camera": self.refine_camera,
                "load_error": reason}

    def _sample(self, index: int) -> dict[str, Any]:
        e = self.entries[index]
        sample: dict[str, Any] = {
            "image_id": e.name,
            "image": self._image(e.name),
            "camera": torch.from_numpy(e.label.astype(np.float32)),
            "camera_source": e.camera_source or self._default_source,
            "refine_camera": self.refine_camera,
        }
        if e.mask is not None:
            sample["mask"] = self._mask(e.mask)
        if e.depth is not None and self.options.load_depths:
            sample["depth"] = self._depth(e.depth)
        if e.ood_mask is not None:
            sample["ood_mask"] = self._mask(e.ood_mask, "OOD mask")
        if e.clean_image is not None:
            sample["clean_image"] = self._image(e.clean_image, "clean image")
        if e.novel_views and self.options.load_novel_views:
            sample["novel_images"] = torch.stack([self._image(v.file) for v in e.novel_views])
            sample["novel_cameras"] = torch.from_numpy(np.stack([v.label for v in e.novel_views]).astype(np.float32))
            sample["novel_view_names"] = [v.name for v in e.novel_views]
            visible = [v.visible for v in e.novel_views]
            if None not in visible:
                sample["novel_visible"] = torch.stack([self._mask(str(f), "covisibility mask") for f in visible])
        return sample


def collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack samples of :class:`InversionDataset` into a batch (see the module docstring).

    Raises:
        ValueError: samples that cannot share a batch (different image sizes, some with depth or
            novel views and some without, different novel-view sets); use ``batch_size=1`` then.
    """
    if not samples:
        raise ValueError("collate needs at least one sample")
    errors = [s.get("load_error") for s in samples]
    samples = _fill_unreadable(samples)
    ids = [s["image_id"] for s in samples]
    shapes = {tuple(s["image"].shape) for s in samples}
    if len(shapes) > 1:
        raise ValueError(f"samples {ids} have different image shapes {sorted(shapes)}")
    batch: dict[str, Any] = {
        "images": torch.stack([s["image"] for s in samples]),
        "cameras": torch.stack([s["camera"] for s in samples]),
        "image_ids": ids,
        "masks": None,
    }
    if any("mask" in s for s in samples):
        ones = torch.ones_like(samples[0]["image"][:1])
        batch["masks"] = torch.stack([s.get("mask", ones) for s in samples])
    batch.update(_ood_extras(samples))
    for key in ("depth", "novel_images", "novel_visible"):
        have = [key in s for s in samples]
        if any(have) and not all(have):
            raise ValueError(f"samples {ids} mix items with and without {key!r}; use batch_size=1")
    if "depth" in samples[0]:
        dshapes = {tuple(s["depth"].shape) for s in samples}
        if len(dshapes) > 1:
            raise ValueError(f"samples {ids} have depth priors of different shapes {sorted(dshapes)}; "
                             "use batch_size=1")
        batch["depth"] = torch.stack([s["depth"] for s in samples])
    if "novel_images" in samples[0]:
        names = [tuple(s["novel_view_names"]) for s in samples]
        if len(set(names)) > 1:
            raise ValueError(f"samples {ids} have different novel views; use batch_size=1")
        batch["novel_images"] = torch.stack([s["novel_images"] for s in samples])
        batch["novel_cameras"] = torch.stack([s["novel_cameras"] for s in samples])
        batch["novel_view_names"] = [list(s["novel_view_names"]) for s in samples]
        if "novel_visible" in samples[0]:
            batch["novel_visible"] = torch.stack([s["novel_visible"] for s in samples])
    batch["camera_source"] = [s.get("camera_source", "dataset") for s in samples]
    batch["refine_camera"] = [bool(s.get("refine_camera", False)) for s in samples]
    if any(errors):
        batch["load_error"] = errors
    return batch


def _ood_extras(samples: Sequence[dict[str, Any]]) -> dict[str, Tensor]:
    """``ood_mask (B, 1, R, R)`` and ``has_ood_mask (B,)`` when some sample has an OOD mask (zeros for
    the others); ``clean_image (B, 3, R, R)`` when every sample has a clean image."""
    extras: dict[str, Tensor] = {}
    if any("ood_mask" in s for s in samples):
        zeros = torch.zeros_like(samples[0]["image"][:1])
        extras["ood_mask"] = torch.stack([s.get("ood_mask", zeros) for s in samples])
        extras["has_ood_mask"] = torch.tensor(["ood_mask" in s for s in samples], dtype=torch.bool)
    if all("clean_image" in s for s in samples):
        extras["clean_image"] = torch.stack([s["clean_image"] for s in samples])
    return extras


def _fill_unreadable(samples: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Samples whose files could not be read get zero tensors shaped like a readable sample's, so
    that they share its batch (the method fails them by their ``load_error``)."""
    readable = [s for s in samples if "load_error" not in s]
    if not readable or len(readable) == len(samples):
        return list(samples)
    like = readable[0]
    # No ood_mask: an unreadable sample has none (has_ood_mask False), which no method can misread.
    keys = [k for k in ("image", "mask", "depth", "novel_images", "novel_cameras", "novel_visible", "clean_image")
            if k in like]
    filled = []
    for s in samples:
        if "load_error" in s:
            s = {**s, **{k: torch.zeros_like(like[k]) for k in keys}}
            if "novel_view_names" in like:
                s["novel_view_names"] = list(like["novel_view_names"])
        filled.append(s)
    return filled
