"""FaceNet identity (id_facenet): weights via the registry only, the package's network, crops, MTCNN, checks."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from facenet_pytorch import InceptionResnetV1, fixed_image_standardization

from warpinv.metrics import build_metric
from warpinv.metrics.base import resize
from warpinv.metrics.facenet import WEIGHT_FILE, FaceNetIdentity
from warpinv.weights import MissingWeightsError


def images(n: int = 2, size: int = 128, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(n, 3, size, size, generator=g) * 2 - 1
    pred = (target + 0.5 * torch.randn(target.shape, generator=g)).clamp(-1, 1)
    return pred, target


def released_layout_state(seed: int = 5) -> dict[str, torch.Tensor]:
    """A state dict shaped like 20180402-114759-vggface2.pt (incl. the 8631-class ``logits``), random values."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = InceptionResnetV1(pretrained=None, classify=True, num_classes=8631)
        for name, tensor in net.state_dict().items():  # non-trivial BatchNorm statistics
            if name.endswith("running_mean"):
                tensor.normal_(0, 0.1)
            elif name.endswith("running_var"):
                tensor.uniform_(0.5, 1.5)
    return net.state_dict()


@pytest.fixture(scope="module")
def random_metric() -> FaceNetIdentity:
    return FaceNetIdentity(allow_random=True, seed=1)


def test_missing_weights_never_download() -> None:
    with pytest.raises(MissingWeightsError, match=WEIGHT_FILE):
        build_metric("id_facenet")


@pytest.mark.slow
def test_loads_the_file_from_facenet_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    state = released_layout_state()
    (tmp_path / "checkpoints").mkdir()
    torch.save(state, tmp_path / "checkpoints" / WEIGHT_FILE)
    metric = build_metric("id_facenet")
    assert not metric.random_weights and metric.source.endswith(WEIGHT_FILE)
    assert metric.weight_files == {"facenet-vggface2": metric.source}
    # The package's own network with the same weights, on the same face crop, standardised its way.
    reference = InceptionResnetV1(pretrained=None).eval()
    reference.load_state_dict({k: v for k, v in state.items() if not k.startswith("logits.")})
    pred, target = images(size=256)

    def embed(x: torch.Tensor) -> torch.Tensor:
        crop = resize(x[:, :, 35:223, 32:220], 160)  # the FFHQ face box at 256
        return reference(fixed_image_standardization((crop + 1) * 127.5))

    with torch.no_grad():
        expected = torch.nn.functional.cosine_similarity(embed(pred), embed(target))
    torch.testing.assert_close(metric(pred, target), expected, atol=1e-5, rtol=0)


def test_wrong_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / WEIGHT_FILE
    torch.save({"conv.weight": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="not a FaceNet"):
        build_metric("id_facenet", weights=path)


def test_random_weights_identity_and_shapes(random_metric: FaceNetIdentity) -> None:
    pred, target = images()
    assert random_metric.random_weights and "random" in random_metric.source
    torch.testing.assert_close(random_metric(target.clone(), target), torch.ones(2), atol=1e-6, rtol=0)
    scores = random_metric(pred, target)
    assert scores.shape == (2,) and bool(((scores >= -1) & (scores <= 1)).all())
    assert random_metric(pred[0], target[0]).shape == (1,)
    info = random_metric.info
    assert info.name == "id_facenet" and info.higher_is_better and info.resolution == 160
    assert "No seed paper" in info.comparable_to


def test_crops(random_metric: FaceNetIdentity) -> None:
    _, target = images(n=1, size=256)
    assert random_metric._boxes(target) == [(32, 35, 220, 223)]
    full = FaceNetIdentity(allow_random=True, seed=1, crop="full")
    assert full._boxes(target) == [(0, 0, 256, 256)]


@pytest.mark.slow
def test_mtcnn_crop_uses_the_target_face_for_both(monkeypatch: pytest.MonkeyPatch) -> None:
    metric = FaceNetIdentity(allow_random=True, seed=1, crop="mtcnn")
    assert {"mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet"} <= set(metric.weight_files)  # wheel files, verified
    pred, target = images(size=64)
    assert bool(torch.isnan(metric(pred, target)).all())  # noise: MTCNN finds no face -> NaN

    seen = {}

    def detect(pixels: torch.Tensor):
        seen["pixels"] = pixels
        boxes = np.empty(2, dtype=object)
        boxes[0], boxes[1] = np.array([[10.4, 20.7, 50.2, 60.9], [0, 0, 5, 5]]), None
        return boxes, None

    monkeypatch.setattr(metric.mtcnn, "detect", detect)
    scores = metric(pred, target)
    torch.testing.assert_close(seen["pixels"], ((target + 1) * 127.5).round().permute(0, 2, 3, 1))
    full = FaceNetIdentity(allow_random=True, seed=1, crop="full")
    expected = full(pred[:1, :, 20:60, 10:50], target[:1, :, 20:60, 10:50])
    torch.testing.assert_close(scores[:1], expected)
    assert math.isnan(scores[1].item())


def test_argument_and_input_checks(random_metric: FaceNetIdentity) -> None:
    with pytest.raises(ValueError, match="crop"):
        FaceNetIdentity(allow_random=True, crop="eyes")
    with pytest.raises(ValueError, match="not both"):
        FaceNetIdentity(weights="x.pt", allow_random=True)
    pred, target = images()
    with pytest.raises(ValueError, match="same shape"):
        random_metric(pred, target[:1])
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        random_metric(pred, target * 2)
