"""Properties of In-N-Out's losses and OOD removal: no recorded outputs needed, so not a `golden` test (the
official values are checked in test_in_n_out_golden.py)."""
from __future__ import annotations

import pytest
import torch

from warpinv.methods.in_n_out import losses
from warpinv.methods.in_n_out.removal import dilate, ood_rays, remove_ood


def _rays(values: list[float]) -> torch.Tensor:
    """One ray per value, one sample each: ``(1, M, 1, 1)``."""
    return torch.tensor(values, dtype=torch.float64).reshape(1, -1, 1, 1)


def _no_fine(coarse: torch.Tensor) -> torch.Tensor:
    return coarse[:, :, :0]


# --- blend regularisers ------------------------------------------------------------------------------------------


def test_entropy_is_zero_at_the_ends_and_peaks_where_the_skewed_blend_is_one_half() -> None:
    b = torch.linspace(0, 1, 2001, dtype=torch.float64)
    entropy = losses.blend_entropy(_rays(b.tolist()), _no_fine(_rays(b.tolist())), skewness=2.0).flatten()
    assert entropy[0] < 1e-16 and entropy[-1] < 1e-16
    peak = b[entropy.argmax()]
    assert abs(peak - 0.5 ** 0.5) < 1e-3
    assert entropy.max() == pytest.approx(torch.log(torch.tensor(2.0)).item(), abs=1e-6)


def test_entropy_is_finite_with_gradients_at_exact_zero_and_one() -> None:
    b = _rays([0.0, 1e-12, 0.5, 1.0]).requires_grad_(True)
    losses.blend_entropy(b, _no_fine(b)).sum().backward()
    assert torch.isfinite(b.grad).all()


def test_entropy_concatenates_coarse_then_fine() -> None:
    coarse, fine = torch.full((2, 3, 4, 1), 0.2), torch.full((2, 3, 5, 1), 0.9)
    out = losses.blend_entropy(coarse, fine)
    assert out.shape == (2, 3, 9)
    assert torch.equal(out[..., :4], losses.blend_entropy(coarse, _no_fine(coarse)))
    assert torch.equal(out[..., 4:], losses.blend_entropy(fine, _no_fine(fine)))


def test_laplace_variant_is_lowest_at_the_ends() -> None:
    b = _rays([0.0, 0.5 ** 0.5, 1.0])
    out = losses.blend_laplace(b, _no_fine(b)).flatten()
    assert out[1] > out[0] and out[1] > out[2]


def test_area_of_zero_blends_is_zero_and_uses_each_sets_maximum() -> None:
    zeros = torch.zeros(1, 4, 3, 1)
    assert losses.blend_area(zeros, zeros) == 0
    coarse = torch.zeros(1, 2, 3, 1)
    coarse[0, 0, 1] = 1.0  # ray 0: max 1, ray 1: max 0 -> mean of squares 0.5
    fine = torch.full((1, 2, 2, 1), 0.5)  # both rays: max 0.5 -> 0.25
    assert losses.blend_area(coarse, fine).item() == pytest.approx((0.5 + 0.25) / 2)


def test_sparsity_averages_over_selected_rays_and_is_zero_without_any() -> None:
    coarse = torch.tensor([[0.2, 0.4], [1.0, 1.0]]).reshape(1, 2, 2, 1)
    fine = torch.tensor([[0.0, 0.6], [1.0, 1.0]]).reshape(1, 2, 2, 1)
    assert losses.blend_sparsity(coarse, fine, torch.tensor([[[1.0], [0.0]]])).item() == pytest.approx(0.3)
    assert losses.blend_sparsity(coarse, fine, torch.zeros(1, 2, 1)) == 0


@pytest.mark.parametrize(("coarse", "fine"), [
    (torch.zeros(1, 4, 3), torch.zeros(1, 4, 3, 1)),  # missing trailing 1
    (torch.zeros(1, 4, 3, 1), torch.zeros(1, 5, 3, 1)),  # rays differ
    (torch.zeros(1, 4, 3, 2), torch.zeros(1, 4, 3, 2)),
])
def test_blend_losses_refuse_bad_shapes(coarse: torch.Tensor, fine: torch.Tensor) -> None:
    for loss in (losses.blend_entropy, losses.blend_laplace, losses.blend_area):
        with pytest.raises(ValueError, match="coarse|fine"):
            loss(coarse, fine)


def test_sparsity_refuses_a_mask_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match="mask"):
        losses.blend_sparsity(torch.zeros(1, 4, 3, 1), torch.zeros(1, 4, 3, 1), torch.ones(1, 4))


# --- W+ ----------------------------------------------------------------------------------------------------------


def test_delta_norms_skip_the_last_layer_and_follow_num_ws() -> None:
    ws = torch.zeros(3, 14, 8)
    ws[:, -1] = 100.0  # the last layer never counts by default
    ws[:, 1:-1, 0] = 2.0
    assert losses.layer_delta_norms(ws).item() == pytest.approx(12 * 2.0)
    assert losses.layer_delta_norms(torch.zeros(2, 6, 4).index_fill(1, torch.tensor([1, 2, 3, 4, 5]), 1.0)) \
        == pytest.approx(4 * 2.0)  # layers 1..4 of 6, |delta| = sqrt(4)
    assert losses.layer_delta_norms(ws, first=1, last=13).item() == pytest.approx(12 * 2.0 + (100 ** 2 * 8) ** 0.5)


def test_delta_norms_average_over_the_batch_and_use_norms_not_squares() -> None:
    ws = torch.zeros(2, 4, 3)
    ws[0, 1] = torch.tensor([3.0, 4.0, 0.0])  # norm 5; the other frame has no delta
    assert losses.layer_delta_norms(ws).item() == pytest.approx(2.5)


@pytest.mark.parametrize(("shape", "first", "last"), [((2, 14), 1, None), ((2, 14, 8), 0, 12), ((2, 14, 8), 1, 14),
                                                      ((2, 14, 8), 5, 4)])
def test_delta_norms_refuse_bad_input(shape: tuple[int, ...], first: int, last: int | None) -> None:
    with pytest.raises(ValueError, match="ws|first"):
        losses.layer_delta_norms(torch.zeros(shape), first, last)


def test_compose_wplus_adds_the_weighted_residual_per_frame() -> None:
    canonical, residual = torch.randn(1, 14, 8), torch.randn(3, 14, 8)
    ws = losses.compose_wplus(canonical, residual, weight=0.5)
    assert torch.allclose(ws[2], canonical[0] + 0.5 * residual[2])
    assert torch.equal(losses.compose_wplus(canonical, torch.zeros(3, 14, 8)), canonical.expand(3, -1, -1))
    with pytest.raises(ValueError, match="canonical"):
        losses.compose_wplus(torch.zeros(1, 13, 8), residual)


# --- region MSE --------------------------------------------------------------------------------------------------


def test_region_mse_is_the_mean_over_a_full_region_and_counts_channels() -> None:
    pred, target = torch.randn(2, 3, 5, 5), torch.randn(2, 3, 5, 5)
    full = torch.nn.functional.mse_loss(pred, target)
    assert torch.allclose(losses.region_mse(pred, target, torch.ones(2, 1, 5, 5)), full)
    assert torch.allclose(losses.region_mse(pred, target, torch.ones(2, 3, 5, 5)), full)
    region = torch.zeros(2, 1, 5, 5)
    region[:, :, :2] = 1.0
    assert torch.allclose(losses.region_mse(pred, target, region),
                          torch.nn.functional.mse_loss(pred[:, :, :2], target[:, :, :2]))


def test_region_mse_of_an_empty_region_is_zero_with_a_zero_gradient() -> None:
    pred = torch.randn(1, 3, 4, 4, requires_grad=True)
    loss = losses.region_mse(pred, torch.zeros(1, 3, 4, 4), torch.zeros(1, 1, 4, 4))
    loss.backward()
    assert loss.item() == 0 and torch.equal(pred.grad, torch.zeros_like(pred))


def test_region_mse_refuses_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="same shape"):
        losses.region_mse(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5), torch.ones(1, 1, 4, 4))
    with pytest.raises(ValueError, match="region"):
        losses.region_mse(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4), torch.ones(1, 2, 4, 4))
    with pytest.raises(TypeError, match="region"):
        losses.region_mse(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4), None)


# --- depth prior -------------------------------------------------------------------------------------------------


def _depth_pair(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    depth = 2.3 + 0.8 * torch.rand(2, 1, 6, 7, generator=g, dtype=torch.float64)
    prior = 1.0 + 4.0 * torch.rand(2, 1, 6, 7, generator=g, dtype=torch.float64)
    return depth, prior


def test_depth_prior_is_invariant_to_an_affine_change_of_the_prior_disparity() -> None:
    depth, prior = _depth_pair()
    changed = 1 / (3.0 / (prior + 1e-8) + 0.7) - 1e-8  # disparity -> 3 * disparity + 0.7
    ours, theirs = losses.depth_prior_loss(depth, prior), losses.depth_prior_loss(depth, changed)
    assert ours.item() > 1e-2  # a random prior is far from the render
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-9)


def test_depth_prior_as_disparity_is_invariant_to_an_affine_map() -> None:
    depth, prior = _depth_pair(1)
    disparity = 1 / prior
    a = losses.depth_prior_loss(depth, disparity, prior_is_disparity=True)
    b = losses.depth_prior_loss(depth, 0.2 * disparity + 5.0, prior_is_disparity=True)
    assert a.item() == pytest.approx(b.item(), rel=1e-9)
    assert a.item() == pytest.approx(losses.depth_prior_loss(depth, prior).item(), rel=1e-9)


def test_depth_prior_matching_the_render_up_to_disparity_affinity_costs_only_the_charbonnier_floor() -> None:
    depth, _ = _depth_pair(2)
    prior = 1 / (0.5 / depth + 2.0)
    assert losses.depth_prior_loss(depth, prior).item() == pytest.approx(1e-3, rel=1e-3)


def test_depth_prior_gradient_goes_to_the_render_only() -> None:
    depth, prior = _depth_pair(3)
    depth.requires_grad_(True)
    prior.requires_grad_(True)
    losses.depth_prior_loss(depth, prior).backward()
    assert depth.grad is not None and depth.grad.abs().sum() > 0
    assert prior.grad is None


def test_depth_prior_uses_valid_pixels_only() -> None:
    depth, prior = _depth_pair(4)
    valid = torch.zeros_like(depth, dtype=torch.bool)
    valid[..., :3] = True
    garbage = prior.clone()
    garbage[..., 3:] = 1e3
    assert losses.depth_prior_loss(depth, prior, valid).item() == pytest.approx(
        losses.depth_prior_loss(depth, garbage, valid).item(), rel=1e-12)
    assert losses.depth_prior_loss(depth, prior, valid).item() == pytest.approx(
        losses.depth_prior_loss(depth[..., :3], prior[..., :3]).item(), rel=1e-12)


def test_depth_prior_refuses_bad_input() -> None:
    depth, prior = _depth_pair()
    with pytest.raises(ValueError, match="same shape"):
        losses.depth_prior_loss(depth, prior[..., :3])
    with pytest.raises(ValueError, match="depth"):
        losses.depth_prior_loss(depth[:, 0], prior[:, 0])
    with pytest.raises(ValueError, match="constant"):
        losses.depth_prior_loss(depth, torch.ones_like(prior))
    with pytest.raises(ValueError, match="valid"):
        losses.depth_prior_loss(depth, prior, torch.zeros_like(depth, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool"):
        losses.depth_prior_loss(depth, prior, torch.ones_like(depth))


# --- OOD removal -------------------------------------------------------------------------------------------------


def test_remove_ood_returns_a_new_tensor_and_leaves_its_input_alone() -> None:
    blend = torch.rand(1, 6, 4, 1)
    before = blend.clone()
    rays = torch.tensor([[True, False, False, True, False, False]])
    out = remove_ood(blend, rays)
    assert torch.equal(blend, before)
    assert torch.equal(out[0, [0, 3]], torch.zeros(2, 4, 1))
    assert torch.allclose(out[0, [1, 2, 4, 5]], 1.2 * blend[0, [1, 2, 4, 5]])


def test_remove_ood_clamp_keeps_blends_in_the_unit_interval() -> None:
    blend = torch.linspace(0, 1, 24).reshape(1, 6, 4, 1)
    rays = torch.zeros(1, 6, dtype=torch.bool)
    assert remove_ood(blend, rays).max() > 1.0  # the released behaviour
    clamped = remove_ood(blend, rays, clamp=True)
    assert clamped.min() >= 0 and clamped.max() == 1.0


def test_remove_ood_without_rays_clears_every_blend() -> None:
    assert torch.equal(remove_ood(torch.rand(2, 5, 3, 1), None), torch.zeros(2, 5, 3, 1))


def test_remove_ood_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="blend"):
        remove_ood(torch.rand(1, 6, 4), None)
    with pytest.raises(ValueError, match="rays"):
        remove_ood(torch.rand(1, 6, 4, 1), torch.zeros(1, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool"):
        remove_ood(torch.rand(1, 6, 4, 1), torch.zeros(1, 6))


def test_dilation_is_a_max_filter_whose_border_never_wins() -> None:
    mask = -torch.ones(1, 1, 6, 6)  # negative values: a zero-padded filter would raise the border to 0
    mask[0, 0, 3, 3] = 1.0
    out = dilate(mask, 3)
    assert out.min() == -1.0
    assert torch.equal(out[0, 0, 2:5, 2:5], torch.ones(3, 3))
    assert (out == 1).sum() == 9


def test_dilation_places_even_squares_as_kornia() -> None:
    mask = torch.zeros(1, 1, 5, 5)
    mask[0, 0, 2, 2] = 1.0
    out = dilate(mask, 2)  # kornia: origin at size // 2, i.e. the window covers [x - 1, x]
    assert torch.equal(out[0, 0].nonzero(), torch.tensor([[2, 2], [2, 3], [3, 2], [3, 3]]))


def test_ood_rays_select_only_full_pixels_after_dilation() -> None:
    mask = torch.zeros(1, 3, 16, 16)
    mask[:, :, 8:10, 8:10] = 0.5  # antialiased: never selected on its own
    assert not ood_rays(mask, 16).any()
    mask[:, 0, 0, 0] = 1.0
    rays = ood_rays(mask, 16).reshape(16, 16)
    assert rays[:3, :3].all() and rays.sum() == 9  # 5x5 square clipped by the corner
    mask[:, 0, 0, 0] = 0.0
    mask[:, 1:, 0, 0] = 1.0  # only channel 0 decides
    assert not ood_rays(mask, 16).any()


def test_ood_rays_refuse_bad_masks() -> None:
    with pytest.raises(ValueError, match="ood_mask"):
        ood_rays(torch.zeros(1, 2, 8, 8), 4)
    with pytest.raises(ValueError, match="ood_mask"):
        ood_rays(torch.zeros(1, 1, 8, 8, dtype=torch.bool), 4)
    with pytest.raises(ValueError, match="ood_mask"):
        ood_rays(torch.zeros(1, 8, 8), 4)
