"""psnr_visible: PSNR over the covisible pixels of a ground-truth novel view."""
from __future__ import annotations

import math

import pytest
import torch

from warpinv.bench.metric_set import build_metric_set
from warpinv.metrics import PSNR, VisiblePSNR, build_metric, metric_info


def _pair(n: int = 3, size: int = 24, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(n, 3, size, size, generator=g) * 2 - 1
    pred = (target + 0.3 * torch.randn(n, 3, size, size, generator=g)).clamp(-1, 1)
    mask = torch.rand(n, 1, size, size, generator=g) > 0.4
    return pred, target, mask


def test_equals_psnr_of_the_masked_pixels_by_hand() -> None:
    pred, target, mask = _pair()
    scores = build_metric("psnr_visible", resolution=None)(pred, target, mask)
    for i in range(pred.shape[0]):
        inside = mask[i, 0]
        error = ((pred[i].double() + 1) / 2 - (target[i].double() + 1) / 2)[:, inside]  # (3, pixels inside)
        assert scores[i].item() == pytest.approx(-10 * math.log10(error.pow(2).mean().item()), abs=1e-4)
    whole = PSNR(resolution=None)(pred, target)
    assert not torch.allclose(scores, whole, atol=0.01)  # the region matters


@pytest.mark.parametrize("resolution", [None, 256])
def test_an_all_ones_mask_is_psnr(resolution: int | None) -> None:
    pred, target, _ = _pair(size=64)
    ones = torch.ones(pred.shape[0], 1, 64, 64)
    got = VisiblePSNR(resolution)(pred, target, ones)
    assert torch.allclose(got, PSNR(resolution)(pred, target), atol=1e-5)


def test_an_empty_mask_is_nan_and_leaves_the_other_views() -> None:
    pred, target, mask = _pair()
    empty = mask.clone()
    empty[1] = False
    got = VisiblePSNR(resolution=None)(pred, target, empty)
    assert math.isnan(got[1].item())
    expected = VisiblePSNR(resolution=None)(pred[[0, 2]], target[[0, 2]], mask[[0, 2]])
    assert torch.equal(got[[0, 2]], expected) and not empty[1].any()  # the caller's mask is left alone


def test_the_mask_is_required_and_the_images_are_checked_first() -> None:
    pred, target, _ = _pair()
    metric = VisiblePSNR()
    with pytest.raises(ValueError, match="needs the view's covisibility mask"):
        metric(pred, target)
    with pytest.raises(ValueError, match="same shape"):
        metric(pred, target[..., :12])
    with pytest.raises(ValueError, match=r"mask must be \(N, 1, H, W\)"):
        metric(pred, target, torch.ones(3, 1, 8, 8))


def test_metadata_and_suite_entries() -> None:
    info = metric_info("psnr_visible")
    assert info.kind == "pair" and info.higher_is_better and info.unit == "dB" and info.value_range == (0.0, math.inf)
    assert info.protocol.startswith("PSNR over the covisible pixels of a GT novel view")
    assert VisiblePSNR.mask_key == "novel_visible"
    metrics, _ = build_metric_set(["psnr_visible", "psnr_visible@native"])
    assert metrics.kinds == {"psnr_visible": "pair", "psnr_visible@native": "pair"}
    assert metrics.info["psnr_visible@native"]["resolution"] is None
    assert metrics.info["psnr_visible"]["higher_is_better"] is True
