"""CelebA-HQ splits from synthetic mapping/partition files (the real ones are not available offline)."""
from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

from warpinv.data import run_data_cli
from warpinv.data.splits import (
    SplitError,
    match_split,
    read_celeba_partition,
    read_celebahq_mapping,
    read_split,
    sha256_file,
    verify_sums,
    write_celebahq_splits,
)

# CelebA's official partition boundaries are file numbers: 000001-162770 train, 162771-182637 val,
# 182638-202599 test.
N_CELEBA = 202599
TEST_FIRST_FILE = 182638


def _partition_of(file_number: int) -> int:
    return 0 if file_number <= 162770 else (1 if file_number < TEST_FIRST_FILE else 2)


def _write_sources(folder: Path, n_test: int = 2824, n_total: int = 30000, csv: bool = False,
                   ) -> tuple[Path, Path]:
    """A mapping with exactly ``n_test`` CelebA-HQ ids in the test partition, and a partition file.

    CelebA-HQ id 0 maps to file 182638.jpg (``orig_idx`` 182637, 0-based), the first test file: an
    index-threshold join on the 0-based ``orig_idx`` (``orig_idx >= 182638``) would miss it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    test_files = rng.sample(range(TEST_FIRST_FILE + 1, N_CELEBA + 1), n_test - 1)
    other_files = rng.sample(range(1, TEST_FIRST_FILE), n_total - n_test)
    rest = test_files + other_files
    rng.shuffle(rest)
    chosen = [TEST_FIRST_FILE] + rest  # CelebA-HQ id 0 -> 182638.jpg, orig_idx 182637
    mapping = folder / "CelebA-HQ-to-CelebA-mapping.txt"
    lines = ["idx         orig_idx    orig_file"]
    lines += [f"{i:<12}{f - 1:<12}{f:06d}.jpg" for i, f in enumerate(chosen)]
    mapping.write_text("\n".join(lines) + "\n")
    if csv:
        partition = folder / "list_eval_partition.csv"
        partition.write_text("image_id,partition\n" + "".join(f"{f:06d}.jpg,{_partition_of(f)}\n"
                                                              for f in range(1, N_CELEBA + 1)))
    else:
        partition = folder / "list_eval_partition.txt"
        partition.write_text("".join(f"{f:06d}.jpg {_partition_of(f)}\n" for f in range(1, N_CELEBA + 1)))
    return mapping, partition


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The standard synthetic pair (2,824 test ids out of 30,000), written once per module."""
    return _write_sources(tmp_path_factory.mktemp("celeba"))


def test_join_on_file_names_gives_2824_ids(tmp_path: Path, sources: tuple[Path, Path]) -> None:
    mapping, partition = sources
    res = write_celebahq_splits(mapping, partition, tmp_path / "splits", seed=0)
    assert res.warnings == []
    test = read_split(res.files["celebahq_test.txt"])
    assert len(test) == 2824 and res.counts["celebahq_test.txt"] == 2824
    assert "0" in test  # the file-182638 trap: a 0-based orig_idx threshold would drop it
    assert test == sorted(test, key=int)
    m = read_celebahq_mapping(mapping)
    p = read_celeba_partition(partition)
    assert all(p[m[i]] == 2 for i in test)
    assert sum(1 for f in m.values() if p[f] == 2) == 2824


def test_subsets_are_seeded_and_documented(tmp_path: Path, sources: tuple[Path, Path]) -> None:
    mapping, partition = sources
    a = write_celebahq_splits(mapping, partition, tmp_path / "a", seed=0)
    b = write_celebahq_splits(mapping, partition, tmp_path / "b", seed=0)
    c = write_celebahq_splits(mapping, partition, tmp_path / "c", seed=1)
    test = read_split(a.files["celebahq_test.txt"])
    hfgi = read_split(a.files["celebahq_test_hfgi3d1500_seed0.txt"])
    warp = read_split(a.files["celebahq_test_warpgan1000.txt"])
    assert len(hfgi) == 1500 and set(hfgi) <= set(test) and hfgi == sorted(hfgi, key=int)
    assert hfgi == sorted(random.Random(0).sample(test, 1500), key=int)
    assert warp == test[:1000]
    assert a.sha256 == b.sha256  # same sources and seed -> identical files
    assert read_split(c.files["celebahq_test_hfgi3d1500_seed1.txt"]) != hfgi
    header = a.files["celebahq_test_warpgan1000.txt"].read_text().splitlines()[0]
    assert header.startswith("#") and "unpublished" in header
    assert verify_sums(tmp_path / "a") == []
    sums = (tmp_path / "a" / "SHA256SUMS").read_text()
    for name, path in a.files.items():
        assert f"{sha256_file(path)}  {name}" in sums
    a.files["celebahq_test.txt"].write_text("tampered\n")
    assert any("does not match" in p for p in verify_sums(tmp_path / "a"))


def test_kaggle_csv_partition_and_count_warning(tmp_path: Path) -> None:
    mapping, partition = _write_sources(tmp_path, n_test=1600, csv=True)
    res = write_celebahq_splits(mapping, partition, tmp_path / "s")
    assert res.counts["celebahq_test.txt"] == 1600
    assert any("not the 2824" in w for w in res.warnings)
    m2, p2 = _write_sources(tmp_path / "small", n_test=1400)
    with pytest.raises(SplitError, match="needs 1500 ids but the test split has only 1400"):
        write_celebahq_splits(m2, p2, tmp_path / "t")


@pytest.mark.parametrize("content, expected", [
    ("idx orig_idx orig_file\n0 5\n", r":2: expected 'idx orig_idx orig_file'"),
    ("idx orig_idx orig_file\nx 5 000006.jpg\n", r":2: idx 'x' is not a number"),
    ("0 5 000006.jpg\n0 6 000007.jpg\n", r":2: idx 0 appears twice"),
    ("idx orig_idx orig_file\n", "no mapping rows"),
])
def test_bad_mapping_files(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "mapping.txt"
    path.write_text(content)
    with pytest.raises(SplitError, match=expected):
        read_celebahq_mapping(path)


def test_bad_partition_file(tmp_path: Path) -> None:
    path = tmp_path / "p.txt"
    path.write_text("000001.jpg 0\n000002.jpg train\n")
    with pytest.raises(SplitError, match=r"p.txt:2: partition 'train'"):
        read_celeba_partition(path)
    with pytest.raises(SplitError, match="does not exist"):
        read_celeba_partition(tmp_path / "none.txt")


def test_read_split_and_matching(tmp_path: Path) -> None:
    path = tmp_path / "s.txt"
    path.write_text("# header\n12\n\n7\n")
    assert read_split(path) == ["12", "7"]
    path.write_text("1\n2\n1\n")
    with pytest.raises(SplitError, match=r"s.txt:3: id '1' repeats line 1"):
        read_split(path)
    names = ["00012.png", "7.jpg", "sub/3.png", "a.png"]
    assert match_split(names, ["12", "7", "sub/3", "a.png", "x"]) == (["00012.png", "7.jpg", "sub/3.png", "a.png"],
                                                                      ["x"])


def test_cli_celebahq_split(tmp_path: Path, sources: tuple[Path, Path]) -> None:
    mapping, partition = sources
    out = io.StringIO()
    code = run_data_cli(["celebahq-split", "--mapping", str(mapping), "--partition", str(partition),
                         "--out", str(tmp_path / "splits")], stdout=out)
    assert code == 0, out.getvalue()
    text = out.getvalue()
    assert "celebahq_test.txt  2824 ids" in text and "1500 ids" in text and "1000 ids" in text
    assert (tmp_path / "splits" / "SHA256SUMS").is_file()
    out = io.StringIO()
    assert run_data_cli(["celebahq-split", "--mapping", str(mapping), "--partition", str(partition),
                         "--out", str(tmp_path / "s2"), "--expect", "10", "--strict"], stdout=out) == 1
    assert "warning" in out.getvalue()
    out = io.StringIO()
    assert run_data_cli(["celebahq-split", "--mapping", str(tmp_path / "none"), "--partition", str(partition)],
                        stdout=out) == 1
    assert "does not exist" in out.getvalue()
