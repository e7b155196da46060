"""Split files and the CelebA-HQ test splits.

A split file is plain text: one image id per line; blank lines and lines starting with ``#``
(provenance) are ignored. An id selects the dataset entry whose file name equals it, or whose name
without extension equals it, or (both numeric) whose number equals it: split id ``12`` selects
``12.png``, ``12.jpg`` or ``00012.png``.

CelebA-HQ test split (``warpinv data celebahq-split``):

- ``CelebA-HQ-to-CelebA-mapping.txt`` (columns ``idx orig_idx orig_file``) maps each CelebA-HQ index
  to its CelebA file; CelebA's ``list_eval_partition.txt`` (``<file> <0|1|2>``, 2 = test) gives the
  partition of each CelebA file. The two are joined on the **file name** (never on index
  thresholds: the partition boundaries are file numbers, and ``orig_idx`` is 0-based). The result is
  the 2,824-image test split used by pSp/e4e and later inversion papers. Ids are CelebA-HQ indices
  as written in the mapping (``0`` ... ``29999``), i.e. the stems of CelebAMask-HQ's
  ``CelebA-HQ-img/<idx>.jpg``.
- ``celebahq_test_hfgi3d1500_seed<S>.txt``: a seeded random 1,500-image subset, as HFGI3D's Table 1
  uses 1,500 random CelebA-HQ images (their list is unpublished): ``random.Random(seed).sample`` of
  the sorted test ids, written sorted.
- ``celebahq_test_warpgan1000.txt``: 1,000 images, the size of WarpGAN's ``celeba-hq_1000_align``
  test folder (its code names only the folder; the list is unpublished). We take the **first 1,000
  test ids in CelebA-HQ index order**, a deterministic, seed-free choice that anyone can
  reproduce; it is not claimed to be WarpGAN's list.
- ``SHA256SUMS``: ``sha256sum``-format hashes of the split files.
"""
from __future__ import annotations

import csv
import os
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from warpinv.weights.network_pickle import sha256_file

CELEBAHQ_TEST_SIZE = 2824
HFGI3D_SUBSET_SIZE = 1500
WARPGAN_SUBSET_SIZE = 1000
TEST_PARTITION = 2
SUMS_NAME = "SHA256SUMS"
DEFAULT_SPLIT_DIR = Path("data/splits")


class SplitError(ValueError):
    """A split source or split file that cannot be used; the message names the file and line."""


def read_split(path: str | os.PathLike[str]) -> list[str]:
    """Ids of a split file (comments and blank lines skipped); duplicates are an error."""
    path = Path(path)
    if not path.is_file():
        raise SplitError(f"split file {path} does not exist")
    ids: list[str] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if text in seen:
            raise SplitError(f"{path}:{n}: id {text!r} repeats line {seen[text]}")
        seen[text] = n
        ids.append(text)
    return ids


def _keys(name: str) -> list[str]:
    keys = [name]
    stem = str(PurePosixPath(name).with_suffix(""))
    if stem != name:
        keys.append(stem)
    base = PurePosixPath(stem).name
    if base.isdigit():
        keys.append(f"#{int(base)}" if PurePosixPath(stem).parent == PurePosixPath(".")
                    else f"{PurePosixPath(stem).parent}/#{int(base)}")
    return keys


def match_split(names: Sequence[str], split_ids: Iterable[str]) -> tuple[list[str], list[str]]:
    """Dataset names selected by split ids (in split order) and the ids that match nothing.

    Example:
        >>> match_split(["00012.png", "7.jpg", "a.png"], ["12", "a", "99"])
        (['00012.png', 'a.png'], ['99'])
    """
    index: dict[str, str] = {}
    for name in names:
        for key in _keys(name):
            index.setdefault(key, name)
    selected: list[str] = []
    missing: list[str] = []
    taken: set[str] = set()
    for sid in split_ids:
        found = None
        for key in _keys(sid):
            if key in index:
                found = index[key]
                break
        if found is None:
            missing.append(sid)
        elif found not in taken:
            taken.add(found)
            selected.append(found)
    return selected, missing


def _rows(path: Path) -> list[tuple[int, list[str]]]:
    """Non-empty rows of a whitespace- or comma-separated text file, with 1-based line numbers."""
    if not path.is_file():
        raise SplitError(f"{path} does not exist")
    lines = path.read_text().splitlines()
    first = next((line for line in lines if line.strip()), "")
    if "," in first:
        return [(n, [c.strip() for c in cells]) for n, cells in enumerate(csv.reader(lines), start=1) if cells]
    return [(n, line.split()) for n, line in enumerate(lines, start=1) if line.strip()]


def read_celebahq_mapping(path: str | os.PathLike[str]) -> dict[str, str]:
    """``CelebA-HQ-to-CelebA-mapping.txt`` -> ``{celebahq_idx: orig_file}`` (header line skipped)."""
    path = Path(path)
    rows = _rows(path)
    out: dict[str, str] = {}
    for n, cells in rows:
        if cells and cells[0].lower() == "idx":
            continue
        if len(cells) < 3:
            raise SplitError(f"{path}:{n}: expected 'idx orig_idx orig_file', got {' '.join(cells)!r}")
        idx, orig_file = cells[0], cells[2]
        if not idx.isdigit():
            raise SplitError(f"{path}:{n}: idx {idx!r} is not a number")
        if idx in out:
            raise SplitError(f"{path}:{n}: idx {idx} appears twice")
        out[idx] = orig_file
    if not out:
        raise SplitError(f"{path}: no mapping rows")
    return out


def read_celeba_partition(path: str | os.PathLike[str]) -> dict[str, int]:
    """``list_eval_partition.txt`` (or Kaggle's ``.csv``) -> ``{file_name: partition}``."""
    path = Path(path)
    out: dict[str, int] = {}
    for n, cells in _rows(path):
        if len(cells) < 2:
            raise SplitError(f"{path}:{n}: expected '<file> <partition>', got {' '.join(cells)!r}")
        name, part = cells[0], cells[1]
        if not part.isdigit():
            if n == 1:  # a header line (image_id,partition)
                continue
            raise SplitError(f"{path}:{n}: partition {part!r} is not 0, 1 or 2")
        out[name] = int(part)
    if not out:
        raise SplitError(f"{path}: no partition rows")
    return out


@dataclass
class SplitFiles:
    """What :func:`write_celebahq_splits` wrote: ``files`` (name -> path), ``sha256`` (name -> hex),
    ``counts`` (name -> ids) and ``warnings``."""

    folder: Path
    files: dict[str, Path]
    sha256: dict[str, str]
    counts: dict[str, int]
    warnings: list[str]


def celebahq_test_ids(mapping: dict[str, str], partition: dict[str, int]) -> tuple[list[str], list[str]]:
    """CelebA-HQ ids whose CelebA file is in the test partition (sorted numerically), and the ids
    whose file is absent from the partition file."""
    unknown = [idx for idx, f in mapping.items() if f not in partition]
    test = [idx for idx, f in mapping.items() if partition.get(f) == TEST_PARTITION]
    return sorted(test, key=int), sorted(unknown, key=int)


def _write(path: Path, header: list[str], ids: list[str]) -> None:
    lines = [f"# {h}" for h in header] + ids
    path.write_text("\n".join(lines) + "\n")


def write_celebahq_splits(
    mapping_path: str | os.PathLike[str],
    partition_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] = DEFAULT_SPLIT_DIR,
    *,
    seed: int = 0,
    hfgi3d_size: int = HFGI3D_SUBSET_SIZE,
    warpgan_size: int = WARPGAN_SUBSET_SIZE,
    expected_test_size: int | None = CELEBAHQ_TEST_SIZE,
) -> SplitFiles:
    """Build the CelebA-HQ test split and its subsets from the two source files (see module doc).

    Raises:
        SplitError: unreadable sources, or fewer test ids than a subset needs.
    """
    mapping_path, partition_path, out = Path(mapping_path), Path(partition_path), Path(out_dir)
    mapping = read_celebahq_mapping(mapping_path)
    partition = read_celeba_partition(partition_path)
    test, unknown = celebahq_test_ids(mapping, partition)
    warnings: list[str] = []
    if unknown:
        warnings.append(f"{len(unknown)} CelebA-HQ ids map to files absent from {partition_path.name} "
                        f"(first: {', '.join(unknown[:5])})")
    if expected_test_size is not None and len(test) != expected_test_size:
        warnings.append(f"the join gives {len(test)} test ids, not the {expected_test_size} of the published "
                        "CelebA-HQ test split: check that the source files are the official ones")
    for size, what in ((hfgi3d_size, "HFGI3D subset"), (warpgan_size, "WarpGAN subset")):
        if size > len(test):
            raise SplitError(f"the {what} needs {size} ids but the test split has only {len(test)}")
    hashes = {"mapping": sha256_file(mapping_path), "partition": sha256_file(partition_path)}
    source = [f"source: {mapping_path.name} sha256 {hashes['mapping']}",
              f"source: {partition_path.name} sha256 {hashes['partition']}"]
    out.mkdir(parents=True, exist_ok=True)

    hfgi = sorted(random.Random(seed).sample(test, hfgi3d_size), key=int)
    warp = test[:warpgan_size]
    specs = {
        "celebahq_test.txt": (["CelebA-HQ test split: CelebA-HQ ids whose CelebA file has partition 2 in "
                               "list_eval_partition.txt, joined on file names (warpinv data celebahq-split)",
                               f"{len(test)} ids, CelebA-HQ index order", *source], test),
        f"celebahq_test_hfgi3d{hfgi3d_size}_seed{seed}.txt": (
            [f"{hfgi3d_size} ids drawn from celebahq_test.txt with random.Random({seed}).sample(sorted ids), "
             "written sorted; HFGI3D (CVPR 2023) evaluates on 1,500 random CelebA-HQ images, list unpublished",
             *source], hfgi),
        f"celebahq_test_warpgan{warpgan_size}.txt": (
            [f"the first {warpgan_size} ids of celebahq_test.txt in CelebA-HQ index order; the size of "
             "WarpGAN's celeba-hq_1000_align test folder, whose list is unpublished (not WarpGAN's list)",
             *source], warp),
    }
    files: dict[str, Path] = {}
    sums: dict[str, str] = {}
    counts: dict[str, int] = {}
    for name, (header, ids) in specs.items():
        path = out / name
        _write(path, header, ids)
        files[name] = path
        sums[name] = sha256_file(path)
        counts[name] = len(ids)
    sums_path = out / SUMS_NAME
    existing: dict[str, str] = {}
    if sums_path.is_file():
        for line in sums_path.read_text().splitlines():
            m = re.match(r"^([0-9a-f]{64})\s+\*?(.+)$", line.strip())
            if m:
                existing[m.group(2)] = m.group(1)
    existing.update(sums)
    sums_path.write_text("".join(f"{h}  {n}\n" for n, h in sorted(existing.items())))
    return SplitFiles(out, files, sums, counts, warnings)


def verify_sums(folder: str | os.PathLike[str]) -> list[str]:
    """Problems with ``folder/SHA256SUMS`` (missing or changed files); empty when all match."""
    folder = Path(folder)
    sums_path = folder / SUMS_NAME
    if not sums_path.is_file():
        return [f"{sums_path} does not exist"]
    problems = []
    for line in sums_path.read_text().splitlines():
        m = re.match(r"^([0-9a-f]{64})\s+\*?(.+)$", line.strip())
        if not m:
            continue
        path = folder / m.group(2)
        if not path.is_file():
            problems.append(f"{path} is listed in {SUMS_NAME} but missing")
        elif sha256_file(path) != m.group(1):
            problems.append(f"{path} does not match its sha256 in {SUMS_NAME}")
    return problems
