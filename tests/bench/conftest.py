"""Fixtures of the harness tests: a small synthetic multi-view set and suite files."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import tests.bench.toy  # noqa: F401  (registers the test-only method bench_toy)

N_IMAGES = 5


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 identities of the tiny generator, each with an input view and 2 ground-truth novel views."""
    from warpinv.data import make_synthetic_multiview

    root = tmp_path_factory.mktemp("bench_data") / "synthetic"
    make_synthetic_multiview(root, n=N_IMAGES, seed=0, views=[[0.35, 0.0], [-0.35, 0.1]])
    return root


def write_suite(path: Path, root: Path, out: Path, methods: dict[str, Any], **extra: Any) -> Path:
    data = {"name": "test", "generator": "tiny", "dataset": {"root": str(root)}, "methods": methods,
            "metrics": ["psnr"], "output": str(out), "views": {"yaw_sweep": [0.3], "multiview": False},
            "save_images": 2, "wandb": {"enabled": False}, "methods_dir": str(path.parent / "no_presets")}
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture()
def suite_file(tmp_path: Path, synthetic_root: Path):
    """``suite_file(methods, **extra) -> (suite path, output folder)``."""
    def make(methods: dict[str, Any] | None = None, **extra: Any) -> tuple[Path, Path]:
        out = tmp_path / "out"
        path = write_suite(tmp_path / "suite.yaml", synthetic_root, out,
                           methods or {"toy": {"method": "bench_toy"}}, **extra)
        return path, out

    return make

