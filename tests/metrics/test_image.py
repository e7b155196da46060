"""Pixel metrics (mse, psnr, ssim, ssim_valid, ms_ssim): hand-computed and package values, masks, input checks."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torchmetrics.functional.image import (
    multiscale_structural_similarity_index_measure,
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

from warpinv.metrics import build_metric
from warpinv.metrics.base import resize
from warpinv.metrics.image import MSE, MSSSIM, PSNR, SSIM

WEIGHT_FREE = ("mse", "psnr", "ssim", "ssim_valid", "ms_ssim")


def test_pair(n: int = 2, size: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth random image in [-1, 1] and a blurred, noisy copy (like metrics.md §3's test pair)."""
    g = torch.Generator().manual_seed(seed)
    base = F.interpolate(torch.rand(n, 3, size // 8, size // 8, generator=g), size=size, mode="bicubic",
                         align_corners=False).clamp(0, 1)
    blurred = F.avg_pool2d(F.pad(base, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    noisy = (blurred + 0.05 * torch.randn(base.shape, generator=g)).clamp(0, 1)
    return noisy * 2 - 1, base * 2 - 1  # pred, target in [-1, 1]


test_pair.__test__ = False  # a helper, not a test


def ssim_valid_reference(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Wang et al. SSIM on [0, 1], Gaussian 11 / 1.5, population statistics, valid region (independent code)."""
    coords = torch.arange(11, dtype=torch.float64) - 5
    g = torch.exp(-coords**2 / (2 * 1.5**2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :]).expand(3, 1, 11, 11)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, kernel, groups=3)

    x, y = x.double(), y.double()
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    ssim_map = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return ssim_map.flatten(1).mean(1)


# ------------------------------------------------------------------------------------------ values


def test_psnr_and_mse_hand_computed() -> None:
    target = torch.zeros(2, 3, 32, 32)  # 0.5 on [0, 1]
    pred = torch.stack([torch.full((3, 32, 32), 0.2), torch.full((3, 32, 32), -0.02)])  # [0, 1] errors 0.1, 0.01
    psnr = PSNR(resolution=None)(pred, target)
    torch.testing.assert_close(psnr, torch.tensor([20.0, 40.0]), atol=1e-4, rtol=0)
    mse = MSE(resolution=None)(pred, target)  # on [-1, 1]: 4x the [0, 1] value
    torch.testing.assert_close(mse, torch.tensor([0.04, 0.0004]), atol=1e-7, rtol=1e-6)


def test_psnr_per_image_matches_torchmetrics_and_is_not_pooled() -> None:
    pred, target = test_pair()
    pred[1] = (pred[1] + 0.3).clamp(-1, 1)  # different errors per image
    ours = PSNR(resolution=None)(pred, target)
    p01, t01 = (pred + 1) / 2, (target + 1) / 2
    per_image = peak_signal_noise_ratio(p01, t01, data_range=1.0, reduction="none", dim=(1, 2, 3))
    torch.testing.assert_close(ours, per_image.float(), atol=1e-4, rtol=0)
    pooled = peak_signal_noise_ratio(p01, t01, data_range=1.0)  # torchmetrics default: pooled squared error
    assert pooled < ours.mean() - 0.5  # the two conventions differ (pooled <= mean of per-image)


def test_ssim_matches_torchmetrics() -> None:
    pred, target = test_pair(size=128)
    ours = SSIM(resolution=None)(pred, target)
    reference = structural_similarity_index_measure((pred + 1) / 2, (target + 1) / 2, data_range=1.0,
                                                    reduction="none")
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)
    assert build_metric("ssim").info.name == "ssim" and build_metric("ssim").variant == "same"


def test_ssim_valid_matches_reference_and_offset() -> None:
    pred, target = test_pair(size=128)
    valid = SSIM("valid", resolution=None)(pred, target)
    torch.testing.assert_close(valid.double(), ssim_valid_reference((pred + 1) / 2, (target + 1) / 2), atol=1e-6,
                               rtol=0)
    same = SSIM(resolution=None)(pred, target)
    # Reflect-padded borders lower torchmetrics' value (metrics.md §3: about 0.007 on its test pair).
    assert bool(((valid - same) > 0.001).all()) and bool(((valid - same) < 0.02).all())
    assert build_metric("ssim_valid").info.name == "ssim_valid"


def test_ssim_on_minus_one_one_would_differ() -> None:
    """The reason every metric scores [0, 1]: SSIM is not invariant to the [-1, 1] shift (metrics.md §3)."""
    pred, target = test_pair(n=1, size=128)
    on_unit = SSIM(resolution=None)(pred, target)
    shifted = structural_similarity_index_measure(pred, target, data_range=2.0)
    assert abs(on_unit.item() - shifted.item()) > 1e-3


def test_ms_ssim_matches_torchmetrics() -> None:
    pred, target = test_pair()
    ours = MSSSIM()(pred, target)
    reference = multiscale_structural_similarity_index_measure((pred + 1) / 2, (target + 1) / 2, data_range=1.0,
                                                               reduction="none", normalize="relu")
    torch.testing.assert_close(ours, reference.float(), atol=1e-5, rtol=0)
    plain = multiscale_structural_similarity_index_measure((pred + 1) / 2, (target + 1) / 2, data_range=1.0,
                                                           reduction="none", normalize=None)
    torch.testing.assert_close(ours, plain.float(), atol=1e-5, rtol=0)  # relu changes nothing on such pairs


def test_ms_ssim_matches_pytorch_msssim() -> None:
    """The README's agreement figure: pytorch_msssim (TriPlaneNet's MS-SSIM) vs ours on the test pair."""
    pytorch_msssim = pytest.importorskip("pytorch_msssim")
    pred, target = test_pair()
    ours = MSSSIM()(pred, target)
    reference = pytorch_msssim.ms_ssim((pred + 1) / 2, (target + 1) / 2, data_range=1.0, size_average=False)
    assert float((ours - reference).abs().max()) < 1e-5


@pytest.mark.parametrize("name", WEIGHT_FREE)
def test_perfect_reconstruction(name: str) -> None:
    _, target = test_pair(size=64)
    scores = build_metric(name)(target.clone(), target)  # resized to 256
    expected = {"mse": 0.0, "psnr": math.inf, "ssim": 1.0, "ssim_valid": 1.0, "ms_ssim": 1.0}[name]
    if math.isinf(expected):
        assert bool(torch.isinf(scores).all()) and bool((scores > 0).all())
    else:
        torch.testing.assert_close(scores, torch.full((2,), expected), atol=1e-6, rtol=0)


def test_prediction_is_clamped() -> None:
    target = torch.ones(1, 3, 32, 32)
    pred = torch.full((1, 3, 32, 32), 1.7)  # a generator overshooting white
    assert math.isinf(PSNR(resolution=None)(pred, target).item())


def test_default_resolution_is_256_with_antialias() -> None:
    pred, target = test_pair(size=512)
    metric = PSNR()
    assert metric.info.resolution == 256 and PSNR(resolution=None).info.resolution is None
    expected = PSNR(resolution=None)(resize(pred, 256), resize(target, 256))
    torch.testing.assert_close(metric(pred, target), expected)
    reference = F.interpolate(pred, size=(256, 256), mode="bilinear", align_corners=False, antialias=True)
    torch.testing.assert_close(resize(pred, 256), reference)
    small, small_target = test_pair(size=64)
    assert PSNR()(small, small_target).shape == (2,)  # smaller inputs are upsampled to 256


def test_single_image_and_batch() -> None:
    pred, target = test_pair(size=64)
    batch = SSIM(resolution=None)(pred, target)
    single = SSIM(resolution=None)(pred[1], target[1])
    assert single.shape == (1,)
    torch.testing.assert_close(single, batch[1:], atol=1e-7, rtol=0)


# ------------------------------------------------------------------------------------------ masks


def test_masked_psnr_and_mse_average_valid_pixels() -> None:
    pred, target = test_pair(n=1, size=64)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., :, :32] = 1
    pred_bad = pred.clone()
    pred_bad[..., :, 32:] = -1  # garbage outside the mask must not count
    masked = PSNR(resolution=None)(pred_bad, target, mask)
    by_hand = PSNR(resolution=None)(pred[..., :, :32], target[..., :, :32])
    torch.testing.assert_close(masked, by_hand, atol=1e-4, rtol=0)
    torch.testing.assert_close(MSE(resolution=None)(pred, target, torch.ones(1, 1, 64, 64)),
                               MSE(resolution=None)(pred, target))
    bool_mask = MSE(resolution=None)(pred_bad, target, mask.bool())
    torch.testing.assert_close(bool_mask, MSE(resolution=None)(pred[..., :, :32], target[..., :, :32]))


@pytest.mark.parametrize("variant", ["same", "valid"])
def test_masked_ssim_averages_the_map(variant: str) -> None:
    pred, target = test_pair(n=1, size=64)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 16:48, 16:48] = 1
    masked = SSIM(variant, resolution=None)(pred, target, mask)
    if variant == "same":
        _, ssim_map = structural_similarity_index_measure((pred + 1) / 2, (target + 1) / 2, data_range=1.0,
                                                          return_full_image=True)
        expected = ssim_map[..., 16:48, 16:48].mean()
    else:
        import kornia

        ssim_map = kornia.metrics.ssim((pred + 1) / 2, (target + 1) / 2, 11, max_val=1.0, padding="valid")
        expected = ssim_map[..., 11:43, 11:43].mean()  # the mask cropped by 5 like the map
    assert abs(masked.item() - expected.item()) < 1e-5


def test_masked_ms_ssim_composites() -> None:
    pred, target = test_pair(n=1)
    mask = torch.zeros(1, 1, 256, 256)
    mask[..., 64:192, 64:192] = 1
    inside_perfect = torch.where(mask.bool(), target, pred)  # wrong only outside the mask
    assert abs(MSSSIM()(inside_perfect, target, mask).item() - 1.0) < 1e-6
    assert MSSSIM()(inside_perfect, target).item() < 0.999


def test_mask_is_resized_with_the_images() -> None:
    pred, target = test_pair(n=1, size=512)
    mask = torch.zeros(1, 1, 512, 512)
    mask[..., :, :256] = 1
    masked = PSNR()(pred, target, mask)
    expected = PSNR(resolution=None)(resize(pred, 256)[..., :, :127], resize(target, 256)[..., :, :127])
    assert abs(masked.item() - expected.item()) < 0.05  # only the antialiased border column differs


# ------------------------------------------------------------------------------------------ input checks


BAD_INPUTS = [
    ("mismatched shapes", lambda p, t: (p[..., :32], t), "same shape"),
    ("batch mismatch", lambda p, t: (p[:1], t), "same shape"),
    ("target above 1", lambda p, t: (p, t * 1.5), r"\[-1, 1\]"),
    ("target in [0, 255]", lambda p, t: (p, (t + 1) * 127.5), r"\[0, 255\]"),
    ("pred in [0, 255]", lambda p, t: ((p + 1) * 127.5, t), r"\[0, 255\]"),
    ("NaN in pred", lambda p, t: (p.index_put((torch.tensor([0]),), torch.tensor(float("nan"))), t), "NaN"),
    ("Inf in target", lambda p, t: (p, t.index_put((torch.tensor([0]),), torch.tensor(float("inf")))), "NaN or Inf"),
    ("2-D", lambda p, t: (p[0, 0], t[0, 0]), r"\(N, 3, H, W\)"),
    ("one channel", lambda p, t: (p[:, :1], t[:, :1]), r"\(N, 3, H, W\)"),
    ("5-D", lambda p, t: (p[None], t[None]), r"\(N, 3, H, W\)"),
    ("uint8", lambda p, t: (((p + 1) * 127.5).byte(), t), "floating"),
    ("empty batch", lambda p, t: (p[:0], t[:0]), "empty"),
]


@pytest.mark.parametrize("name", WEIGHT_FREE)
@pytest.mark.parametrize(("case", "make", "message"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_inputs_are_refused(name: str, case: str, make, message: str) -> None:
    pred, target = test_pair(size=64)
    bad_pred, bad_target = make(pred, target)
    with pytest.raises(ValueError, match=message):
        build_metric(name)(bad_pred, bad_target)


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (torch.ones(2, 1, 32, 32), r"\(N, 1, H, W\)"),
        (torch.ones(2, 3, 64, 64), r"\(N, 1, H, W\)"),
        (torch.full((2, 1, 64, 64), 2.0), r"\[0, 1\]"),
        (torch.zeros(2, 1, 64, 64), "no valid pixel"),
        (torch.ones(2, 1, 64, 64, dtype=torch.long), "bool or float"),
    ],
)
def test_bad_masks_are_refused(mask: torch.Tensor, message: str) -> None:
    pred, target = test_pair(size=64)
    with pytest.raises(ValueError, match=message):
        PSNR()(pred, target, mask)


def test_other_errors() -> None:
    pred, target = test_pair(size=64)
    with pytest.raises(TypeError, match="torch.Tensor"):
        PSNR()(pred.numpy(), target)
    with pytest.raises(ValueError, match="larger than 160"):
        MSSSIM(resolution=None)(pred, target)
    with pytest.raises(ValueError, match="variant"):
        SSIM("tf")
    with pytest.raises(ValueError, match="resolution"):
        PSNR(resolution=0)
