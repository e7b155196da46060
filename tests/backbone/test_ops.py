"""The pure-PyTorch ops against their definitions."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from warpinv.backbone.ops import (
    bias_act,
    conv2d_up2,
    modulated_conv2d,
    setup_filter,
    upfirdn2d,
    upsample2d,
)


def naive_upfirdn2d(x: np.ndarray, f: np.ndarray, up: int, down: int, pad: tuple[int, int, int, int],
                    gain: float) -> np.ndarray:
    """The four steps spelled out with loops: zero insertion, pad/crop, true convolution, decimation."""
    n, c, h, w = x.shape
    u = np.zeros((n, c, h * up, w * up), x.dtype)
    u[:, :, ::up, ::up] = x
    px0, px1, py0, py1 = pad
    u = np.pad(u, ((0, 0), (0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0))))
    u = u[:, :, max(-py0, 0): u.shape[2] - max(-py1, 0), max(-px0, 0): u.shape[3] - max(-px1, 0)]
    fh, fw = f.shape
    kernel = f[::-1, ::-1] * gain
    out = np.zeros((n, c, u.shape[2] - fh + 1, u.shape[3] - fw + 1), x.dtype)
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            out[:, :, i, j] = (u[:, :, i: i + fh, j: j + fw] * kernel).sum(axis=(2, 3))
    return out[:, :, ::down, ::down]


@pytest.mark.parametrize(
    ("up", "down", "pad"),
    [(1, 1, (0, 0, 0, 0)), (2, 1, (2, 1, 2, 1)), (1, 2, (1, 1, 1, 1)), (2, 1, (-1, 2, 0, -1))],
)
def test_upfirdn2d_matches_definition(up: int, down: int, pad: tuple[int, int, int, int]) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 7, 6, generator=g, dtype=torch.float64)
    f = torch.rand(4, 3, generator=g, dtype=torch.float64)  # asymmetric: catches a missing flip
    got = upfirdn2d(x, f, up=up, down=down, padding=pad, gain=1.5)
    want = naive_upfirdn2d(x.numpy(), f.numpy(), up, down, pad, 1.5)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-12)


def test_upsample2d_is_zero_insertion_then_fir() -> None:
    x = torch.randn(2, 5, 9, 9, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    f = setup_filter().double()
    want = naive_upfirdn2d(x.numpy(), f.numpy(), 2, 1, (2, 1, 2, 1), 4.0)
    np.testing.assert_allclose(upsample2d(x, f).numpy(), want, atol=1e-12)
    assert upsample2d(x, f).shape == (2, 5, 18, 18)


def test_conv2d_up2_equals_zero_insertion_convolution() -> None:
    """StyleGAN2's up=2 convolution: stride-2 transposed conv with the unflipped weight, then the FIR
    with gain 4 and one pixel of padding on each side (checked against the loop definition)."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, 4, 6, 6, generator=g, dtype=torch.float64)
    w = torch.randn(3, 4, 3, 3, generator=g, dtype=torch.float64)
    f = setup_filter().double()
    got = conv2d_up2(x, w, f)
    assert got.shape == (1, 3, 12, 12)
    tconv = torch.nn.functional.conv_transpose2d(x, w.transpose(0, 1), stride=2)
    want = naive_upfirdn2d(tconv.numpy(), f.numpy(), 1, 1, (1, 1, 1, 1), 4.0)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-12)


def test_bias_act() -> None:
    x = torch.tensor([[-1.0, 0.5], [2.0, -3.0]])
    b = torch.tensor([0.5, -1.0])
    y = bias_act(x, b, act="lrelu", clamp=1.0)
    expect = torch.nn.functional.leaky_relu(x + b, 0.2) * 2**0.5
    torch.testing.assert_close(y, expect.clamp(-1, 1))
    with pytest.raises(ValueError, match="unsupported activation"):
        bias_act(x, act="swish")


@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("demodulate", [True, False])
def test_fused_and_non_fused_modulated_conv_agree(up: int, demodulate: bool) -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 8, 5, 5, generator=g)
    weight = torch.randn(6, 8, 3, 3, generator=g)
    styles = torch.randn(3, 8, generator=g) + 1
    noise = torch.randn(1, 1, 5 * up, 5 * up, generator=g)
    kwargs = dict(noise=noise, up=up, padding=1, resample_filter=setup_filter(), demodulate=demodulate)
    fused = modulated_conv2d(x, weight, styles, fused_modconv=True, **kwargs)
    split = modulated_conv2d(x, weight, styles, fused_modconv=False, **kwargs)
    assert fused.shape == (3, 6, 5 * up, 5 * up)
    torch.testing.assert_close(fused, split, atol=1e-4, rtol=1e-5)


def test_demodulation_normalises_output_scale() -> None:
    """With unit-variance input, a demodulated conv keeps unit-ish variance whatever the style scale."""
    g = torch.Generator().manual_seed(4)
    x = torch.randn(1, 64, 16, 16, generator=g)
    weight = torch.randn(64, 64, 3, 3, generator=g)
    a = modulated_conv2d(x, weight, torch.full((1, 64), 1.0), padding=1)
    b = modulated_conv2d(x, weight, torch.full((1, 64), 7.0), padding=1)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert 0.5 < a.std().item() < 2.0


@pytest.mark.parametrize("shape", [(3, 8, 16, 12), (6, 5, 7, 9), (3, 2, 40, 40)])  # the last: a masked table
def test_plane_grid_sample_matches_grid_sample_and_its_gradient(shape) -> None:
    from warpinv.backbone.ops import plane_grid_sample

    g = torch.Generator().manual_seed(sum(shape))
    planes = torch.randn(*shape, generator=g, dtype=torch.float64)
    grid = torch.rand(shape[0], 1, 500, 2, generator=g, dtype=torch.float64) * 2.4 - 1.2  # some points outside
    grid[0, 0, :4] = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0], [1.1, -1.05]], dtype=torch.float64)
    grad_out = torch.randn(shape[0], shape[1], 1, 500, generator=g, dtype=torch.float64)

    ours_in = planes.clone().requires_grad_(True)
    ours = plane_grid_sample(ours_in, grid)
    ours.backward(grad_out)
    ref_in = planes.clone().requires_grad_(True)
    ref = torch.nn.functional.grid_sample(ref_in, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    ref.backward(grad_out)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(ours_in.grad, ref_in.grad, rtol=0, atol=1e-12)
    # float32: grid_sample's values within rounding (|values| < 5, fp32 eps 1.2e-7; texel positions carry an
    # absolute error that grows with the plane's size)
    with torch.no_grad():
        ref32 = torch.nn.functional.grid_sample(planes.float(), grid.float(), mode="bilinear", padding_mode="zeros",
                                                align_corners=False)
        atol = 4e-6 * max(1.0, max(shape[-2:]) / 16)
        torch.testing.assert_close(plane_grid_sample(planes.float(), grid.float()), ref32, rtol=0, atol=atol)
    # a grid that needs a gradient takes PyTorch's own path (both gradients)
    grid_req = grid.clone().requires_grad_(True)
    plane_grid_sample(planes.clone().requires_grad_(True), grid_req).sum().backward()
    assert grid_req.grad is not None


@pytest.mark.parametrize("taps", [(1, 3, 3, 1), (1, 2, 5, 3), (1, 1)])
def test_upsample2d_equals_zero_insertion_then_fir(taps) -> None:
    """The transposed-convolution path of ``upsample2d`` against the four steps of ``upfirdn2d``,
    for asymmetric filters too (a flipped filter would pass only the symmetric ones), and its gradient."""
    from warpinv.backbone.ops import upfirdn2d, upsample2d

    g = torch.Generator().manual_seed(len(taps))
    k = torch.tensor(taps, dtype=torch.float64)
    f = torch.outer(k, k.flip(0) + 1)
    f = f / f.sum()
    x = torch.randn(2, 5, 7, 9, generator=g, dtype=torch.float64)
    pad = [(f.shape[1] + 1) // 2, (f.shape[1] - 2) // 2, (f.shape[0] + 1) // 2, (f.shape[0] - 2) // 2]
    ours_in, ref_in = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ours, ref = upsample2d(ours_in, f), upfirdn2d(ref_in, f, up=2, padding=pad, gain=4.0)
    assert ours.shape == (2, 5, 14, 18)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)
    grad_out = torch.randn(ours.shape, generator=g, dtype=torch.float64)
    ours.backward(grad_out)
    ref.backward(grad_out)
    torch.testing.assert_close(ours_in.grad, ref_in.grad, rtol=0, atol=1e-12)


@pytest.mark.parametrize("padded", [True, False])
@pytest.mark.parametrize("expanded", [False, True])
def test_triplane_texel_table_matches_grid_sample_per_plane(expanded: bool, padded: bool) -> None:
    """``sample_from_planes`` through one shared :class:`TexelTable` (2 images, 3 planes; also planes
    expanded over the batch, converted once) equals ``grid_sample`` plane by plane, values and gradients."""
    from warpinv.backbone.ops import TexelTable
    from warpinv.backbone.renderer import project_onto_planes, sample_from_planes

    g = torch.Generator().manual_seed(7)
    base = torch.randn(1 if expanded else 2, 3, 4, 9, 11, generator=g, dtype=torch.float32)
    coords = torch.rand(2, 300, 3, generator=g, dtype=torch.float32) * 2.2 - 1.1
    grad_out = torch.randn(2, 3, 300, 4, generator=g, dtype=torch.float32)

    ours_in = base.clone().requires_grad_(True)
    planes = ours_in.expand(2, -1, -1, -1, -1) if expanded else ours_in
    texels = TexelTable(planes, padded=padded)
    pad = 3 if padded else 0  # zero texels around each plane
    assert texels.table.shape == ((1 if expanded else 2) * (9 + pad) * (11 + pad) * 3, 4)
    ours = sample_from_planes(planes, coords[:, :150], 2.0, texels)
    ours = torch.cat([ours, sample_from_planes(planes, coords[:, 150:], 2.0, texels)], dim=2)  # shared table
    ours.backward(grad_out)

    ref_in = base.clone().requires_grad_(True)
    ref_planes = ref_in.expand(2, -1, -1, -1, -1) if expanded else ref_in
    grid = project_onto_planes(coords)  # box_warp 2: coordinates are already in [-1, 1]
    ref = torch.stack([torch.stack([
        F.grid_sample(ref_planes[n, p][None], grid[n, p][None, None], mode="bilinear", padding_mode="zeros",
                      align_corners=False)[0, :, 0].t() for p in range(3)]) for n in range(2)])
    ref.backward(grad_out)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-5)  # float32 (sample_from_planes casts the grid)
    torch.testing.assert_close(ours_in.grad, ref_in.grad, rtol=0, atol=1e-5)


@pytest.mark.parametrize("padded", [True, False])
def test_plane_grid_sample_far_outside_and_nan_points_match_grid_sample(padded: bool) -> None:
    """Points far outside read zeros and NaN positions give NaN (never an out-of-range row), as grid_sample,
    through both table layouts."""
    from warpinv.backbone.ops import TexelTable, plane_grid_sample

    planes = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(3))
    points = [[float("nan"), 0.0], [1e9, -1e9], [0.3, 0.2], [0.1, float("nan")], [-1.0 - 1e-7, 0.0], [1.25, 1.2],
              [-0.99, 0.999], [1.0, -1.0]]
    grid = torch.tensor(points)[None, None].repeat(3, 1, 1, 1)
    ours = plane_grid_sample(TexelTable(planes[:, None], padded=padded), grid)
    ref = F.grid_sample(planes, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-6, equal_nan=True)
    assert ours[:, :, 0, [0, 3]].isnan().all() and (ours[:, :, 0, [1, 5]] == 0).all()


@pytest.mark.parametrize("padded", [True, False])
@pytest.mark.parametrize("expanded", [False, True])
def test_fused_plane_mean_equals_per_plane_lookup_then_mean(expanded: bool, padded: bool) -> None:
    """``sample_plane_mean`` (one bag of 12 texels per point) against ``sample_from_planes`` + ``mean_over_planes``:
    values and plane gradients, 2 images, planes also expanded over the batch, both table layouts."""
    from warpinv.backbone.ops import TexelTable
    from warpinv.backbone.renderer import mean_over_planes, sample_from_planes, sample_plane_mean

    g = torch.Generator().manual_seed(11)
    base = torch.randn(1 if expanded else 2, 3, 5, 9, 11, generator=g)
    coords = torch.rand(2, 400, 3, generator=g) * 2.4 - 1.2  # some points outside the box
    grad_out = torch.randn(2, 400, 5, generator=g)
    fused_in, ref_in = base.clone().requires_grad_(True), base.clone().requires_grad_(True)
    fused_planes = fused_in.expand(2, -1, -1, -1, -1) if expanded else fused_in
    ref_planes = ref_in.expand(2, -1, -1, -1, -1) if expanded else ref_in
    fused = sample_plane_mean(fused_planes, coords, 2.0, TexelTable(fused_planes, padded=padded))
    ref = mean_over_planes(sample_from_planes(ref_planes, coords, 2.0, TexelTable(ref_planes, padded=padded)))
    assert fused.shape == (2, 400, 5)
    torch.testing.assert_close(fused, ref, rtol=0, atol=2e-6)
    fused.backward(grad_out)
    ref.backward(grad_out)
    torch.testing.assert_close(fused_in.grad, ref_in.grad, rtol=0, atol=2e-6)
    # coordinates that need a gradient take the grid_sample path and get theirs
    moving = coords.clone().requires_grad_(True)
    sample_plane_mean(base.expand(2, -1, -1, -1, -1), moving, 2.0).sum().backward()
    assert moving.grad is not None and moving.grad.abs().sum() > 0
