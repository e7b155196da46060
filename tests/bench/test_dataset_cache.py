"""The harness's synthetic-set cache: a set of another generator definition is rebuilt, user files are never touched."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import warpinv.backbone.loading as loading
from tests.bench.conftest import write_suite
from warpinv.bench.runner import ensure_dataset
from warpinv.bench.suite import load_suite
from warpinv.config import ConfigError


def _suite(tmp_path: Path, root: Path):
    path = write_suite(tmp_path / "suite.yaml", root, tmp_path / "out", {"bench_toy": {}},
                       dataset={"synthesize": {"n": 1, "seed": 3, "options": {"views": [[0.3, 0.0]]}}})
    return load_suite(path)


def _fingerprint(root: Path) -> str:
    return json.loads((root / "dataset.json").read_text())["meta"]["generator_fingerprint"]


def test_a_set_of_an_older_tiny_is_rebuilt_and_user_files_are_refused(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "set"
    suite = _suite(tmp_path, root)
    ensure_dataset(suite, quiet=True)
    first = _fingerprint(root)
    stamp = (root / "dataset.json").stat().st_mtime_ns
    ensure_dataset(suite, quiet=True)
    assert (root / "dataset.json").stat().st_mtime_ns == stamp  # same definition: reused as is

    monkeypatch.setattr(loading, "TINY_VERSION", loading.TINY_VERSION + 1)
    ensure_dataset(suite, quiet=True)
    assert _fingerprint(root) == loading.generator_fingerprint("tiny") != first  # rebuilt, not reused

    user = tmp_path / "photos"
    user.mkdir()
    (user / "me.png").write_bytes(b"not a synthetic set")
    with pytest.raises(ConfigError, match="other files"):
        ensure_dataset(_suite(tmp_path, user), quiet=True)
    assert (user / "me.png").read_bytes() == b"not a synthetic set"


def test_a_set_built_before_the_covisibility_masks_is_rebuilt(tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "set"
    suite = _suite(tmp_path, root)
    ensure_dataset(suite, quiet=True)
    data = json.loads((root / "dataset.json").read_text())
    assert data["novel_views"][0][1][0]["visible"] == "visible/id000/yaw+0.30_pitch+0.00.png"
    for _, views in data["novel_views"]:  # what the version before the masks wrote
        for view in views:
            del view["visible"]
    del data["meta"]["spec"]["covisibility_tol"]
    (root / "dataset.json").write_text(json.dumps(data))
    shutil.rmtree(root / "visible")
    ensure_dataset(suite, quiet=True)
    rebuilt = json.loads((root / "dataset.json").read_text())
    assert rebuilt["meta"]["spec"]["covisibility_tol"] == 0.03 and (root / "visible" / "id000").is_dir()
