"""In-N-Out's losses, as the released code computes them (``Twizwei/in-n-out``).

- Blend regularisers on the raw, unsorted, pre-removal blends ``b`` of the coarse and the importance
  samples (``eg3d/outdomain/loss_functions.py``, from D^2NeRF): :func:`blend_entropy` (weight 1, skewness 2),
  :func:`blend_laplace` (the ``use_lap`` variant, unused by the released recipe), :func:`blend_area`
  (weight 1) and :func:`blend_sparsity` (weight 0 in ``run_train.sh``).
- The in-distribution W+ (``eg3d/inversion/invert_multi_ws.py``): :func:`compose_wplus` (shared canonical
  code + 0.7 x per-frame residual) and :func:`layer_delta_norms` (weight 1e-3).
- :func:`region_mse`: the official masked MSE reduction, ``sum(((pred - target) * region)^2) / sum(region)``.
- :func:`depth_prior_loss`: the single-view script's Charbonnier depth regulariser after the released
  median / mean-absolute-deviation disparity alignment (:func:`align_prior_depth`; default weight 0).

Empty regions (:func:`region_mse`, :func:`blend_sparsity`): the official code divides by zero (NaN); here the
loss is a documented **zero** (with zero gradient), so a frame without OOD pixels contributes nothing and
no host synchronisation is needed.
"""
from __future__ import annotations

import torch
from torch import Tensor

from warpinv.checks import check_min, check_same_shape, check_shape, check_tensor

__all__ = [
    "align_prior_depth",
    "blend_area",
    "blend_entropy",
    "blend_laplace",
    "blend_sparsity",
    "compose_wplus",
    "depth_prior_loss",
    "layer_delta_norms",
    "region_mse",
]

#: The official clip of blend values before the logarithms.
BLEND_CLIP = 1e-19


def _blend_samples(coarse: Tensor, fine: Tensor) -> Tensor:
    """``(N, M, Sc, 1)``, ``(N, M, Sf, 1)`` -> ``(N, M, Sc + Sf)``, the two sample sets side by side."""
    check_tensor(coarse, "coarse")
    check_tensor(fine, "fine")
    sizes = check_shape(coarse, "N M Sc 1", "coarse", note=" of blend weights")
    check_shape(fine, "N M Sf 1", "fine", sizes={"N": sizes["N"], "M": sizes["M"]}, note=" of blend weights")
    return torch.cat([coarse, fine], dim=-2).squeeze(-1)


def _skewed(coarse: Tensor, fine: Tensor, skewness: float, clip: float) -> tuple[Tensor, Tensor]:
    """``b' = clamp(b^skewness, clip, 1 - clip)`` and ``clamp(1 - b', min=clip)``, each ``(N, M, Sc + Sf)``."""
    check_min(clip, 0.0, "clip", strict=True)
    blend = torch.clamp(_blend_samples(coarse, fine) ** skewness, clip, 1 - clip)
    return blend, torch.clamp(1 - blend, min=clip)


def blend_entropy(coarse: Tensor, fine: Tensor, skewness: float = 2.0, clip: float = BLEND_CLIP) -> Tensor:
    """Binary entropy of the skewed blend ``b' = b^skewness``, per sample (not reduced).

    ``H = -(b' ln b' + (1 - b') ln (1 - b'))`` with both arguments clamped at ``clip`` (the upper clamp
    ``1 - 1e-19`` is a no-op in float32, as in the official code). ``skewness > 1`` moves the peak of ``H``
    to ``b = 0.5^(1/skewness)`` (0.707 for 2), which pushes ambiguous samples towards the OOD field. The
    training loss is ``blend_entropy(...).mean()`` over all ``N*M*(Sc+Sf)`` elements.

    Args:
        coarse: ``(N, M, Sc, 1)`` raw blends of the coarse samples.
        fine: ``(N, M, Sf, 1)`` raw blends of the importance samples.

    Returns:
        ``(N, M, Sc + Sf)``.

    Example:
        >>> b = torch.tensor([0.0, 0.5 ** 0.5, 1.0]).reshape(1, 1, 3, 1)
        >>> blend_entropy(b, b[:, :, :0]).squeeze()
        tensor([4.3749e-18, 6.9315e-01, 4.3749e-18])
    """
    blend, rest = _skewed(coarse, fine, skewness, clip)
    return -(blend * torch.log(blend) + rest * torch.log(rest))


def blend_laplace(coarse: Tensor, fine: Tensor, skewness: float = 2.0, clip: float = BLEND_CLIP) -> Tensor:
    """The official ``use_lap`` alternative to :func:`blend_entropy`: ``-ln(exp(-b') + exp(-(1 - b')))``.

    Same inputs, skewing and clamps; ``(N, M, Sc + Sf)`` out. Lowest (``-ln(1 + e^-1) = -0.313``) at
    ``b' in {0, 1}``, highest at ``b' = 0.5``.

    Example:
        >>> b = torch.tensor([0.0, 1.0]).reshape(1, 1, 2, 1)
        >>> blend_laplace(b, b, skewness=1.0).squeeze()
        tensor([-0.3133, -0.3133, -0.3133, -0.3133])
    """
    blend, rest = _skewed(coarse, fine, skewness, clip)
    return -torch.log(torch.clamp(torch.exp(-blend) + torch.exp(-rest), min=clip))


def blend_area(coarse: Tensor, fine: Tensor) -> Tensor:
    """D^2NeRF's area loss: ``(mean_rays (max_coarse b)^2 + mean_rays (max_fine b)^2) / 2`` (a scalar).

    The maximum runs over each sample set separately, not over their union.

    Args:
        coarse: ``(N, M, Sc, 1)``; fine: ``(N, M, Sf, 1)``.

    Example:
        >>> coarse = torch.tensor([[0.0, 0.5], [0.0, 0.0]]).reshape(1, 2, 2, 1)
        >>> blend_area(coarse, torch.ones(1, 2, 1, 1))
        tensor(0.5625)
    """
    _blend_samples(coarse, fine)  # shape checks
    return (coarse.amax(dim=-2).square().mean() + fine.amax(dim=-2).square().mean()) / 2


def _ratio_or_zero(numerator: Tensor, denominator: Tensor) -> Tensor:
    """``numerator / denominator``, or 0 (with a zero gradient) where ``denominator == 0``."""
    return numerator / torch.where(denominator == 0, torch.ones_like(denominator), denominator)


def blend_sparsity(coarse: Tensor, fine: Tensor, mask: Tensor) -> Tensor:
    """Mean ``|b|`` over the rays selected by ``mask`` and all their samples (a scalar).

    ``sum(|b| * mask) / sum(mask) / (Sc + Sf)``; 0 when ``mask`` selects no ray.

    Args:
        coarse: ``(N, M, Sc, 1)``; fine: ``(N, M, Sf, 1)``.
        mask: ``(N, M, 1)`` ray weights.

    Example:
        >>> b = torch.tensor([[0.2, 0.4], [1.0, 1.0]]).reshape(1, 2, 2, 1)
        >>> blend_sparsity(b, b[:, :, :0], torch.tensor([[[1.0], [0.0]]]))
        tensor(0.3000)
    """
    blend = _blend_samples(coarse, fine)
    check_tensor(mask, "mask")
    check_shape(mask, "N M 1", "mask", sizes={"N": blend.shape[0], "M": blend.shape[1]}, note=" of ray weights")
    return _ratio_or_zero((blend.abs() * mask).sum(), mask.sum()) / blend.shape[-1]


def compose_wplus(canonical: Tensor, residual: Tensor, weight: float = 0.7) -> Tensor:
    """Per-frame W+ codes: ``canonical + weight * residual`` (``invert_multi_ws.py``; residuals start at 0).

    Args:
        canonical: ``(1, L, D)`` (or ``(F, L, D)``) shared code.
        residual: ``(F, L, D)`` per-frame residuals.

    Returns:
        ``(F, L, D)``.

    Example:
        >>> compose_wplus(torch.ones(1, 14, 512), torch.ones(3, 14, 512)).shape
        torch.Size([3, 14, 512])
    """
    check_tensor(canonical, "canonical")
    check_tensor(residual, "residual")
    sizes = check_shape(residual, "F L D", "residual")
    if canonical.ndim != 3 or canonical.shape[0] not in (1, sizes["F"]) or canonical.shape[1:] != residual.shape[1:]:
        raise ValueError(f"canonical must be (1 or F, L, D) = (1 or {sizes['F']}, {sizes['L']}, {sizes['D']}) "
                         f"to match residual, got {tuple(canonical.shape)}")
    return canonical + weight * residual


def layer_delta_norms(ws: Tensor, first: int = 1, last: int | None = None) -> Tensor:
    """e4e-style delta regulariser: ``sum_{l=first..last} mean_batch ||w_l - w_0||_2`` (a scalar).

    Norms, not squares. ``last`` defaults to ``num_ws - 2`` (the official ``range(1, num_ws - 1)``:
    the last layer, 13 of EG3D's 14, is left out); both bounds are inclusive.

    Args:
        ws: ``(N, num_ws, D)``.

    Example:
        >>> ws = torch.zeros(2, 14, 512)
        >>> ws[:, 1:, 0] = 1.0
        >>> layer_delta_norms(ws)  # layers 1..12, not 13
        tensor(12.)
    """
    check_tensor(ws, "ws")
    num_ws = check_shape(ws, "N L D", "ws", note=" of W+ codes")["L"]
    last = num_ws - 2 if last is None else last
    if not 1 <= first <= last < num_ws:
        raise ValueError(f"need 1 <= first <= last < num_ws = {num_ws}, got first={first}, last={last}")
    deltas = ws[:, first:last + 1] - ws[:, :1]
    return torch.linalg.vector_norm(deltas, dim=-1).mean(0).sum()


def region_mse(pred: Tensor, target: Tensor, region: Tensor) -> Tensor:
    """The official masked MSE: ``sum(((pred - target) * region)^2) / sum(region broadcast to pred)``.

    The denominator counts every channel the region covers, so a one-channel region averages over channels
    and ``region = ones`` gives the plain mean. (The region enters the numerator squared, as in the official
    ``MSELoss(reduction='sum')(pred * m, target * m) / m.sum()``; the same for binary regions.) Returns 0
    (zero gradient) when the region is empty; the official code returns NaN there.

    Args:
        pred, target: ``(N, C, H, W)`` (any equal shapes).
        region: broadcastable to ``pred`` (e.g. ``(N, 1, H, W)`` or ``(N, C, H, W)``), weights in [0, 1].

    Example:
        >>> pred, target = torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
        >>> region_mse(pred, target, torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]]))
        tensor(1.)
        >>> region_mse(pred, target, torch.zeros(1, 1, 2, 2))
        tensor(0.)
    """
    for value, name in ((pred, "pred"), (target, "target"), (region, "region")):
        check_tensor(value, name)
    check_same_shape(pred, target)
    try:
        region = region.to(pred.dtype).expand_as(pred)
    except RuntimeError as error:
        raise ValueError(f"region {tuple(region.shape)} does not broadcast to pred {tuple(pred.shape)}") from error
    return _ratio_or_zero(((pred - target) * region).square().sum(), region.sum())


def _median_and_spread(x: Tensor) -> tuple[Tensor, Tensor]:
    """``torch.median`` (the lower middle value, as the released code) and the mean absolute deviation from it."""
    median = x.median()
    return median, (x - median).abs().mean()


def _align_one(prior: Tensor, depth: Tensor, prior_is_disparity: bool) -> Tensor:
    """Align one image's prior (1-D, valid pixels) to its rendered depth (1-D); returns the aligned depth."""
    disparity_prior = prior if prior_is_disparity else 1 / (prior + 1e-8)
    low, high = disparity_prior.min(), disparity_prior.max()
    if not bool(high > low):
        raise ValueError("prior must not be constant over the valid pixels (its disparity is min-max normalised)")
    disparity_prior = (disparity_prior - low) / (high - low) * (1 - 0.01) + 0.01
    median_prior, spread_prior = _median_and_spread(disparity_prior)
    median_render, spread_render = _median_and_spread(1 / (depth + 1e-8))
    aligned = spread_render / spread_prior * (disparity_prior - median_prior) + median_render
    return 1 / (aligned + 1e-8)


def align_prior_depth(prior: Tensor, depth: Tensor, valid: Tensor | None = None,
                      prior_is_disparity: bool = False) -> Tensor:
    """The released ``depth_alignment.calibrate_disparity``, per image: the prior is aligned to the render.

    In disparity space (``1 / (x + 1e-8)``): the prior's disparity is min-max normalised to ``[0.01, 1]``,
    then shifted and scaled so that its median and mean absolute deviation from the median equal those of
    the rendered depth's disparity (MiDaS' alignment), and turned back into depth. The result is detached
    (the released code runs under ``no_grad``): the prior is the target, the render gets the gradient.

    Args:
        prior: ``(N, 1, H, W)`` depth prior, at the render's resolution (the released code resizes it
            bilinearly with ``align_corners=True`` first). The released code takes its reciprocal, i.e. it
            treats the prior as a depth map; ``prior_is_disparity=True`` skips the reciprocal (e.g. raw
            MiDaS output, which is an inverse depth).
        depth: ``(N, 1, H, W)`` rendered depth.
        valid: optional ``(N, 1, H, W)`` bool; statistics use valid pixels only (the released code has no
            mask: all pixels).

    Returns:
        ``(N, 1, H, W)`` aligned prior depth (invalid pixels keep the rendered depth).

    Example:
        >>> depth = torch.linspace(2.0, 3.0, 16).reshape(1, 1, 4, 4)
        >>> torch.allclose(align_prior_depth(5 * depth, depth), depth)
        True
    """
    for value, name in ((prior, "prior"), (depth, "depth")):
        check_tensor(value, name)
    check_shape(depth, "N 1 H W", "depth", note=" rendered depth")
    check_same_shape(prior, depth, ("prior", "depth"))
    if valid is None:
        valid = torch.ones_like(depth, dtype=torch.bool)
    check_tensor(valid, "valid")
    check_same_shape(valid, depth, ("valid", "depth"))
    if valid.dtype != torch.bool:
        raise ValueError(f"valid must be a bool tensor, got {valid.dtype}")
    aligned = depth.detach().clone()
    with torch.no_grad():
        for i in range(depth.shape[0]):
            keep = valid[i]
            if not bool(keep.any()):
                raise ValueError(f"valid selects no pixel of image {i}")
            aligned[i][keep] = _align_one(prior[i][keep].to(depth.dtype), depth[i][keep], prior_is_disparity)
    return aligned


def depth_prior_loss(depth: Tensor, prior: Tensor, valid: Tensor | None = None, prior_is_disparity: bool = False,
                     eps: float = 1e-6) -> Tensor:
    """Charbonnier distance between the rendered depth and the aligned prior (a scalar).

    ``mean sqrt((align_prior_depth(prior, depth) - depth)^2 + eps)`` over the valid pixels
    (``train_outdomain_single_view.py``, ``lamb_depth_reg``, default 0; the paper's ``L_D`` weight 0.1).
    The prior is aligned to the detached render (see :func:`align_prior_depth`), so the loss is invariant
    to an affine change of the prior's disparity and only ``depth`` receives a gradient.

    Args:
        depth: ``(N, 1, H, W)`` rendered depth.
        prior: ``(N, 1, H, W)`` prior depth (disparity with ``prior_is_disparity=True``).
        valid: optional ``(N, 1, H, W)`` bool.

    Example:
        >>> depth = torch.linspace(2.0, 3.0, 16).reshape(1, 1, 4, 4)
        >>> depth_prior_loss(depth, 0.5 * depth)  # sqrt(1e-6): a perfect prior up to scale
        tensor(0.0010)
    """
    check_min(eps, 0.0, "eps", strict=True)
    aligned = align_prior_depth(prior, depth, valid, prior_is_disparity)
    distance = torch.sqrt((aligned - depth).square() + eps)
    return distance.mean() if valid is None else distance[valid].mean()
