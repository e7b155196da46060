"""Fixtures of the data tests: tiny EG3D-format folders written on the fly, and sample faces."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from warpinv.cameras import yaw_pitch_camera


def camera(yaw: float = 0.0, pitch: float = 0.0) -> list[float]:
    """An EG3D LookAt label as a list of 25 floats."""
    return [float(v) for v in yaw_pitch_camera(yaw, pitch, dtype=torch.float64)[0].tolist()]


def noise_image(size: int = 32, seed: int = 0, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).convert(mode)


@pytest.fixture
def make_dataset(tmp_path: Path) -> Callable[..., Path]:
    """``make_dataset(n=3, size=32, data=None, **extra_keys)`` writes images + dataset.json.

    With ``data`` given, it is written verbatim as dataset.json (a dict is JSON-encoded, a str is
    written as is); the images ``img0.png`` ... are written either way.
    """
    counter = {"n": 0}

    def make(n: int = 3, size: int = 32, data: Any = None, **extra: Any) -> Path:
        counter["n"] += 1
        root = tmp_path / f"ds{counter['n']}"
        root.mkdir()
        names = [f"img{i}.png" for i in range(n)]
        for i, name in enumerate(names):
            noise_image(size, seed=i).save(root / name)
        if data is None:
            data = {"labels": [[name, camera(0.1 * i, -0.05 * i)] for i, name in enumerate(names)], **extra}
        text = data if isinstance(data, str) else json.dumps(data)
        (root / "dataset.json").write_text(text)
        return root

    return make


@pytest.fixture(scope="session")
def astronaut() -> Image.Image:
    """scikit-image's bundled astronaut portrait (public domain, NASA); skip when skimage is absent."""
    skdata = pytest.importorskip("skimage.data", reason="scikit-image (the dev extra) ships the sample faces")
    return Image.fromarray(skdata.astronaut())


@pytest.fixture(scope="session")
def no_face_photo() -> Image.Image:
    """scikit-image's coffee cup: a photo without a face."""
    skdata = pytest.importorskip("skimage.data", reason="scikit-image (the dev extra) ships the sample photos")
    return Image.fromarray(skdata.coffee())


@pytest.fixture(scope="session")
def detector():  # noqa: ANN201 - one MTCNN for the whole session (loading it takes seconds)
    pytest.importorskip("facenet_pytorch")
    from warpinv.data.prepare.detect import FaceDetector

    return FaceDetector("cpu")
