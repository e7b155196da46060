"""OOD metrics: clean_psnr (whole / inside / outside the occluder) and blend_iou, on known values."""
from __future__ import annotations

import math

import pytest
import torch

from warpinv.metrics import PSNR, BlendIoU, CleanPSNR, build_metric, metric_info, occluded_input_psnr

SIZE = 64


def occluded_pair(seed: int = 0, size: int = SIZE) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(occluded, clean, mask)``: a random clean face-like image with a flat square pasted on it."""
    g = torch.Generator().manual_seed(seed)
    clean = torch.rand(2, 3, size, size, generator=g) * 1.6 - 0.8
    mask = torch.zeros(2, 1, size, size)
    mask[0, :, size // 4: size // 2, size // 4: 3 * size // 4] = 1
    mask[1, :, size // 2:, : size // 4] = 1
    occluder = torch.tensor([0.9, -0.9, 0.9]).reshape(1, 3, 1, 1)
    occluded = clean * (1 - mask) + occluder * mask
    return occluded, clean, mask


@pytest.mark.parametrize("resolution", [None, 256, 48])
def test_a_perfect_removal_is_infinite_everywhere(resolution) -> None:
    _, clean, mask = occluded_pair()
    scores = CleanPSNR(resolution)(clean.clone(), clean, mask)
    assert set(scores) == {"clean_psnr", "clean_psnr_in", "clean_psnr_out"}
    for column, values in scores.items():
        assert values.shape == (2,) and values.dtype == torch.float32, column
        assert torch.isinf(values).all() and (values > 0).all(), column


@pytest.mark.parametrize("resolution", [None, 256, 48])
def test_the_occluded_input_is_perfect_outside_and_poor_inside(resolution) -> None:
    """Outside the mask the input is clean: the same (infinite) value as a perfect removal, also after the
    resize (no occluder pixel leaks outside the resized mask's support); inside it is far off."""
    occluded, clean, mask = occluded_pair()
    scores = occluded_input_psnr(occluded, clean, mask, resolution=resolution)
    perfect = CleanPSNR(resolution)(clean, clean, mask)
    assert torch.equal(scores["clean_psnr_out"], perfect["clean_psnr_out"])
    assert (scores["clean_psnr_in"] < 10).all()
    assert (scores["clean_psnr_in"] < scores["clean_psnr"]).all()


def test_inside_and_outside_values_at_the_input_size() -> None:
    clean = torch.zeros(1, 3, 8, 8)
    removed = clean.clone()
    removed[..., :2, :] = 0.2  # 0.1 off on [0, 1] inside: 20 dB
    removed[..., 2:, :] = -0.02  # 0.01 off outside: 40 dB
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :2, :] = 1
    scores = CleanPSNR(resolution=None)(removed, clean, mask)
    assert scores["clean_psnr_in"].item() == pytest.approx(20.0, abs=1e-4)
    assert scores["clean_psnr_out"].item() == pytest.approx(40.0, abs=1e-4)
    whole = -10 * math.log10((0.01 * 16 + 0.0001 * 48) / 64)
    assert scores["clean_psnr"].item() == pytest.approx(whole, abs=1e-4)


@pytest.mark.parametrize("resolution", [None, 256])
def test_the_whole_image_column_is_psnr(resolution) -> None:
    occluded, clean, mask = occluded_pair()
    removed = (clean + 0.05 * torch.randn_like(clean)).clamp(-1, 1)
    scores = CleanPSNR(resolution)(removed, clean, mask)
    torch.testing.assert_close(scores["clean_psnr"], PSNR(resolution)(removed, clean))


def test_without_a_mask_only_the_whole_image_is_scored() -> None:
    occluded, clean, _ = occluded_pair()
    assert list(CleanPSNR()(occluded, clean)) == ["clean_psnr"]
    assert CleanPSNR.columns(False) == ("clean_psnr",)


def test_an_empty_region_is_nan() -> None:
    occluded, clean, mask = occluded_pair()
    scores = CleanPSNR(resolution=None)(occluded, clean, torch.zeros_like(mask))
    assert torch.isnan(scores["clean_psnr_in"]).all()
    torch.testing.assert_close(scores["clean_psnr_out"], scores["clean_psnr"])
    scores = CleanPSNR(resolution=None)(occluded, clean, torch.ones_like(mask))
    assert torch.isnan(scores["clean_psnr_out"]).all()
    torch.testing.assert_close(scores["clean_psnr_in"], scores["clean_psnr"])


def test_the_registered_metric_records_its_resolution() -> None:
    metric = build_metric("clean_psnr", resolution=128)
    assert metric.info.resolution == 128 and {o.resolution for o in metric.info.outputs} == {128}
    assert metric_info("clean_psnr").resolution == 256 == metric_info("psnr").resolution
    assert metric_info("blend_iou").resolution is None


def test_clean_psnr_refuses_bad_inputs() -> None:
    occluded, clean, mask = occluded_pair()
    metric = CleanPSNR(resolution=None)
    with pytest.raises(ValueError, match="removed and clean must have the same shape"):
        metric(occluded[..., :32], clean)
    with pytest.raises(ValueError, match=r"clean must lie in \[-1, 1\]"):
        metric(occluded, clean * 2)
    with pytest.raises(ValueError, match=r"ood_mask must be a \(N=2, 1, H=64, W=64\) tensor"):
        metric(occluded, clean, mask[:, :, :32])
    with pytest.raises(ValueError, match=r"ood_mask must lie in \[0, 1\]"):
        metric(occluded, clean, mask * 255)
    with pytest.raises(TypeError, match="ood_mask must be a torch.Tensor"):
        metric(occluded, clean, mask.numpy())
    with pytest.raises(ValueError, match="resolution must be a positive int or None"):
        CleanPSNR(resolution=0)


def test_bool_masks_are_accepted() -> None:
    occluded, clean, mask = occluded_pair()
    a = CleanPSNR(resolution=None)(occluded, clean, mask.bool())
    b = CleanPSNR(resolution=None)(occluded, clean, mask)
    assert all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------------------------ blend_iou


def test_iou_of_the_mask_itself_is_one_and_of_zeros_is_zero() -> None:
    _, _, mask = occluded_pair()
    metric = BlendIoU()
    assert metric(mask, mask)["blend_iou"].tolist() == [1.0, 1.0]
    assert metric(torch.zeros_like(mask), mask)["blend_iou"].tolist() == [0.0, 0.0]
    assert metric(mask * 0.49, mask)["blend_iou"].tolist() == [0.0, 0.0]  # below the 0.5 threshold
    assert metric(mask * 0.5 + 0.2, mask)["blend_iou"].tolist() == [1.0, 1.0]


def test_the_blend_map_is_resized_nearest_to_the_mask() -> None:
    """A blend map at a quarter of the mask's size, block-aligned with it: exact IoU 1 (nearest, no
    blur); a map equal to the mask shifted by one low-res pixel overlaps by a known fraction."""
    _, _, mask = occluded_pair()
    low = mask[..., ::4, ::4]  # 16 x 16; the mask's blocks are 4-pixel aligned
    assert BlendIoU()(low, mask)["blend_iou"].tolist() == [1.0, 1.0]
    shifted = torch.roll(low[:1], shifts=1, dims=-1)  # image 0: 4 x 8 low-res block moved right by one
    assert BlendIoU()(shifted, mask[:1])["blend_iou"].item() == pytest.approx(28 / 36)


def test_both_empty_is_nan() -> None:
    zeros = torch.zeros(1, 1, 8, 8)
    assert math.isnan(BlendIoU()(zeros, zeros)["blend_iou"].item())


def test_blend_iou_refuses_bad_inputs() -> None:
    _, _, mask = occluded_pair()
    metric = BlendIoU()
    with pytest.raises(ValueError, match=r"blend_map must be a \(N, 1, h, w\) tensor"):
        metric(mask[:, 0], mask)
    with pytest.raises(ValueError, match=r"blend_map must lie in \[0, 1\]"):
        metric(mask * 1.2, mask)
    with pytest.raises(ValueError, match="blend_map contains NaN"):
        metric(mask * float("nan"), mask)
    with pytest.raises(ValueError, match="blend_map must be a floating-point tensor"):
        metric(mask.long(), mask)
    with pytest.raises(ValueError, match="ood_mask batch 1 does not match blend_map batch 2"):
        metric(mask, mask[:1])
    with pytest.raises(ValueError, match=r"ood_mask must be a \(N, 1, H, W\) tensor"):
        metric(mask, mask.expand(-1, 3, -1, -1))
    with pytest.raises(ValueError, match="blend_map is empty"):
        metric(mask[..., :0], mask)
