"""Shared losses: masked MSE, LPIPS loss with masks and resizing, noise and latent regularisers."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from warpinv.methods.losses import (
    PerceptualLoss,
    build_lpips,
    composite,
    downsample_to,
    latent_distance,
    layer_spread,
    masked_mse,
    noise_regularization,
    normalize_noise_,
)
from warpinv.weights import MissingWeightsError


def images(seed: int = 0, size: int = 32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(1, 3, size, size, generator=g) * 2 - 1
    b = torch.rand(1, 3, size, size, generator=g) * 2 - 1
    mask = torch.ones(1, 1, size, size)
    mask[..., :, : size // 4] = 0  # a padded left border
    return a, b, mask


def test_masked_mse_is_pti_l2_without_mask_and_ignores_padding() -> None:
    a, b, mask = images()
    assert torch.allclose(masked_mse(a, b), F.mse_loss(a, b))
    assert torch.allclose(masked_mse(a, b, torch.ones_like(mask)), F.mse_loss(a, b))
    valid = mask.bool().expand_as(a)
    assert torch.allclose(masked_mse(a, b, mask), (a - b)[valid].square().mean())
    changed = a.clone()
    changed[..., :, :8] = 5.0  # only padded pixels differ
    assert torch.equal(masked_mse(changed, b, mask), masked_mse(a, b, mask))
    with pytest.raises(ValueError, match="differ in shape"):
        masked_mse(a, b[..., :16])


def test_composite_and_downsample() -> None:
    a, b, mask = images()
    c = composite(a, b, mask)
    assert torch.equal(c[..., :8], b[..., :8]) and torch.equal(c[..., 8:], a[..., 8:])
    assert composite(a, b, None) is a
    big = torch.rand(1, 3, 512, 512)
    assert torch.allclose(downsample_to(big, 256), F.avg_pool2d(big, 2), atol=1e-6)  # 'area' = box filter
    assert downsample_to(a, 256) is a and downsample_to(big, None) is big


def test_lpips_needs_weights_unless_random_is_allowed() -> None:
    with pytest.raises(MissingWeightsError):
        build_lpips("vgg")
    lp = build_lpips("alex", allow_random=True)
    assert lp.random_weights and lp.net_name == "alex"


def test_perceptual_loss_ignores_padding_and_resizes() -> None:
    loss = PerceptualLoss(build_lpips("alex", allow_random=True), resolution=64)
    a, b, mask = images(size=128)
    assert loss.random_weights
    assert loss(a, a).abs().max() < 1e-6 and loss(a, b).item() > 0
    changed = a.clone()
    changed[..., :32] = b[..., :32]
    padded = a.clone()
    padded[..., :32] = -1.0
    assert torch.allclose(loss(padded, b, mask), loss(changed, b))
    expected = loss.lpips(downsample_to(a, 64), downsample_to(b, 64))
    assert torch.allclose(loss(a, b), expected)
    pred = a.clone().requires_grad_(True)
    loss(pred, b, mask).sum().backward()
    assert pred.grad is not None and pred.grad[..., :32].abs().max() == 0 and pred.grad[..., 32:].abs().max() > 0


def reference_noise_reg(buffers: list[torch.Tensor]) -> float:
    """The official loop, written out with numpy-style indexing."""
    total = 0.0
    for buf in buffers:
        x = buf.clone()
        while True:
            total += float((x * x.roll(1, dims=1)).mean() ** 2 + (x * x.roll(1, dims=0)).mean() ** 2)
            if x.shape[0] <= 8:
                break
            x = F.avg_pool2d(x[None, None], 2)[0, 0]
    return total


def test_noise_regularization_matches_the_official_pyramid() -> None:
    g = torch.Generator().manual_seed(1)
    bufs = [torch.randn(4, 4, generator=g), torch.randn(32, 32, generator=g), torch.randn(8, 8, generator=g)]
    assert noise_regularization(bufs).item() == pytest.approx(reference_noise_reg(bufs), rel=1e-5)
    stripes = torch.ones(16, 16)
    assert noise_regularization([stripes]).item() == pytest.approx(4.0)  # 2 levels x 2 directions x 1
    assert float(noise_regularization([])) == 0.0


def test_normalize_noise_gives_zero_mean_unit_variance() -> None:
    bufs = [torch.rand(16, 16) * 3 + 2, torch.rand(4, 4)]
    normalize_noise_(bufs)
    for b in bufs:
        assert abs(float(b.mean())) < 1e-5 and float(b.square().mean()) == pytest.approx(1.0, rel=1e-5)


def test_latent_regularisers() -> None:
    w = torch.randn(1, 1, 8)
    ref = torch.randn(1, 1, 8)
    assert torch.allclose(latent_distance(w.expand(1, 5, 8), ref), (w - ref).square().mean())
    assert float(layer_spread(w.expand(1, 5, 8))) < 1e-12
    assert float(layer_spread(torch.randn(1, 5, 8))) > 0
