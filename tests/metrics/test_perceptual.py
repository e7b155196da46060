"""LPIPS metrics (lpips_alex, lpips_vgg): agreement with the lpips package, weights policy, masks, input checks."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import lpips
import pytest
import torch
import torchvision

from warpinv.metrics import build_metric, metric_info
from warpinv.metrics.base import resize
from warpinv.metrics.perceptual import LPIPSMetric
from warpinv.weights import MissingWeightsError, get_spec, registered

# lpips builds torchvision trunks with the deprecated ``pretrained=`` argument.
pytestmark = pytest.mark.filterwarnings("ignore:.*(pretrained|weight enum).*:UserWarning")

TRUNKS = {"alex": ("torchvision-alexnet", torchvision.models.alexnet),
          "vgg": ("torchvision-vgg16", torchvision.models.vgg16)}


def images(n: int = 2, size: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(n, 3, size, size, generator=g) * 2 - 1
    pred = (target + 0.3 * torch.randn(target.shape, generator=g)).clamp(-1, 1)
    return pred, target


def random_trunk(net: str, seed: int = 7) -> dict[str, torch.Tensor]:
    """A torchvision-format trunk state dict (``features.*``) with seeded random values, built offline."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TRUNKS[net][1](weights=None)
    return {k: v for k, v in model.state_dict().items() if k.startswith("features.")}


@pytest.fixture(params=["alex", "vgg"])
def trunk_file(request: pytest.FixtureRequest, tmp_path: Path):
    """(net, path) of a random trunk saved under the published file name; its registry checksum shadowed."""
    net = request.param
    spec = get_spec(TRUNKS[net][0])
    path = tmp_path / spec.filename
    torch.save(random_trunk(net), path)
    with registered(replace(spec, checksum=None)):  # the file is not the published one
        yield net, path


def package_lpips(net: str, trunk: dict[str, torch.Tensor], monkeypatch: pytest.MonkeyPatch) -> lpips.LPIPS:
    """The lpips package's own LPIPS with ``trunk`` where it would download the ImageNet weights."""
    builder = TRUNKS[net][1]

    def offline(pretrained: bool = True, **_: object) -> torch.nn.Module:
        model = builder(weights=None)
        model.load_state_dict({**model.state_dict(), **trunk})
        return model

    monkeypatch.setattr(lpips.pretrained_networks.tv, "alexnet" if net == "alex" else "vgg16", offline)
    return lpips.LPIPS(net=net, version="0.1", pretrained=True, pnet_rand=False, verbose=False).eval()


@pytest.mark.slow
def test_agrees_with_lpips_package(trunk_file, monkeypatch: pytest.MonkeyPatch) -> None:
    net, path = trunk_file
    metric = build_metric(f"lpips_{net}", weights=path, resolution=None)
    assert not metric.random_weights and metric.source == str(path)
    assert set(metric.weight_files) == {TRUNKS[net][0], f"lpips-{net}-v0.1"}
    reference = package_lpips(net, torch.load(path, weights_only=True), monkeypatch)
    pred, target = images()
    with torch.no_grad():
        expected = reference(pred, target, normalize=False).reshape(-1)
    torch.testing.assert_close(metric(pred, target), expected, atol=1e-6, rtol=1e-5)
    if net == "vgg":
        return  # the resize path is shared; VGG at 256 is slow on CPU
    # At the default 256 resolution both see the same resized images.
    big_pred, big_target = images(n=1, size=512, seed=1)
    with torch.no_grad():
        expected = reference(resize(big_pred, 256), resize(big_target, 256), normalize=False).reshape(-1)
    torch.testing.assert_close(build_metric(f"lpips_{net}", weights=path)(big_pred, big_target), expected,
                               atol=1e-6, rtol=1e-5)


def test_random_weights_agree_with_package_on_the_same_trunk(monkeypatch: pytest.MonkeyPatch) -> None:
    metric = build_metric("lpips_alex", allow_random=True, seed=3, resolution=None)
    assert metric.random_weights and "random" in metric.source and metric.weight_files == {}
    trunk = {f"features.{k.split('.', 2)[1]}.{k.split('.', 2)[2]}": v
             for k, v in metric.lpips.model.net.state_dict().items()}
    reference = package_lpips("alex", trunk, monkeypatch)
    pred, target = images()
    with torch.no_grad():
        expected = reference(pred, target, normalize=False).reshape(-1)
    torch.testing.assert_close(metric(pred, target), expected, atol=1e-6, rtol=1e-5)
    again = build_metric("lpips_alex", allow_random=True, seed=3, resolution=None)
    torch.testing.assert_close(again(pred, target), metric(pred, target), atol=0, rtol=0)  # seeded


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_missing_trunk_raises(net: str) -> None:
    with pytest.raises(MissingWeightsError, match=get_spec(TRUNKS[net][0]).filename):
        build_metric(f"lpips_{net}")


def test_perfect_reconstruction_and_metadata() -> None:
    metric = build_metric("lpips_alex", allow_random=True)
    _, target = images()
    assert metric(target.clone(), target).abs().max().item() == 0.0
    info = metric.info
    assert info.name == "lpips_alex" and not info.higher_is_better and info.resolution == 256
    assert info.weights[0] == "alexnet-owt-7be5be79.pth" and info.weight_names[0] == "torchvision-alexnet"
    assert "pSp" in info.comparable_to and "IBRNet" in metric_info("lpips_vgg").comparable_to


def test_mask_composites_prediction_onto_target() -> None:
    metric = LPIPSMetric("alex", allow_random=True, resolution=None)
    pred, target = images(n=1)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 16:48, 16:48] = 1
    wrong_outside = torch.where(mask.bool(), target, pred)
    assert metric(wrong_outside, target, mask).item() == 0.0
    assert metric(wrong_outside, target).item() > 0
    composite = pred * mask + target * (1 - mask)
    torch.testing.assert_close(metric(pred, target, mask), metric(composite, target))


def test_input_checks() -> None:
    metric = LPIPSMetric("alex", allow_random=True, resolution=None)
    pred, target = images()
    with pytest.raises(ValueError, match="same shape"):
        metric(pred[..., :32, :32], target)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        metric(pred, (target + 1) / 2 * 1.5)
    with pytest.raises(ValueError, match="NaN"):
        metric(pred * float("nan"), target)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        metric(pred[:, 0], target[:, 0])
    with pytest.raises(ValueError, match="alex' or 'vgg"):
        LPIPSMetric("squeeze", allow_random=True)
    with pytest.raises(ValueError, match="not both"):
        LPIPSMetric("alex", weights="x.pth", allow_random=True)
