"""Pure-PyTorch equivalents of StyleGAN2's custom ops, as EG3D uses them.

The official code ships CUDA kernels (``bias_act``, ``upfirdn2d``) with reference fallbacks that it
takes off-CUDA. These functions compute the same thing with plain PyTorch, on every device.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

SQRT2 = math.sqrt(2.0)
LRELU_SLOPE = 0.2
#: Default gain per activation (StyleGAN2's ``def_gain``): keeps the signal's second moment.
ACTIVATION_GAIN = {"linear": 1.0, "lrelu": SQRT2}


def bias_act(
    x: Tensor,
    b: Tensor | None = None,
    act: str = "linear",
    gain: float | None = None,
    clamp: float | None = None,
    dim: int = 1,
    inplace: bool = False,
) -> Tensor:
    """``clamp(act(x + b) * gain, -clamp, clamp)`` with ``b`` broadcast along ``dim``.

    Args:
        x: any shape; ``b`` has ``x.shape[dim]`` entries.
        act: ``"linear"`` or ``"lrelu"`` (slope 0.2).
        gain: defaults to the activation's gain (1 for linear, sqrt(2) for lrelu).
        clamp: symmetric clamp of the output, ``None`` for none.
        inplace: overwrite ``x`` when no gradient is being recorded for it (fresh large CPU
            allocations cost as much as the arithmetic); ignored otherwise.

    Example:
        >>> bias_act(torch.tensor([[-1.0, 2.0]]), torch.tensor([0.0, 1.0]), act="lrelu")
        tensor([[-0.2828,  4.2426]])
    """
    if act not in ACTIVATION_GAIN:
        raise ValueError(f"unsupported activation {act!r}; expected one of {sorted(ACTIVATION_GAIN)}")
    gain = ACTIVATION_GAIN[act] if gain is None else gain
    if inplace and not records_grad(x, b):
        if b is not None:
            x.add_(b.reshape([-1 if i == dim else 1 for i in range(x.ndim)]))
        if act == "lrelu":
            F.leaky_relu_(x, LRELU_SLOPE)
        if gain != 1:
            x.mul_(gain)
        return x.clamp_(-clamp, clamp) if clamp is not None and clamp >= 0 else x
    if b is not None:
        x = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    if act == "lrelu":
        x = F.leaky_relu(x, LRELU_SLOPE)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def records_grad(*tensors: Tensor | None) -> bool:
    """Whether autograd is recording an operation on any of ``tensors``."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def setup_filter(taps: Sequence[float] = (1, 3, 3, 1)) -> Tensor:
    """Normalised separable 2D FIR filter ``outer(k, k) / sum``, as StyleGAN2's ``setup_filter``.

    Example:
        >>> setup_filter().sum().item(), setup_filter().shape
        (1.0, torch.Size([4, 4]))
    """
    k = torch.as_tensor(taps, dtype=torch.float32)
    f = torch.outer(k, k)
    return f / f.sum()


def upfirdn2d(
    x: Tensor,
    f: Tensor,
    up: int = 1,
    down: int = 1,
    padding: Sequence[int] = (0, 0, 0, 0),
    flip_filter: bool = False,
    gain: float = 1.0,
) -> Tensor:
    """Upsample (zero insertion), pad or crop, FIR-filter, then downsample.

    The four steps of StyleGAN2's ``upfirdn2d``: a true convolution with ``f`` (the filter is
    flipped unless ``flip_filter``) scaled by ``gain``; padding is ``(x0, x1, y0, y1)`` and may be
    negative (a crop).

    Args:
        x: ``(N, C, H, W)``.
        f: ``(fh, fw)`` filter.

    Returns:
        ``(N, C, H', W')`` with ``H' = (H*up + y0 + y1 - fh) // down + 1``.
    """
    if x.ndim != 4:
        raise ValueError(f"upfirdn2d expects (N, C, H, W), got {tuple(x.shape)}")
    n, c, h, w = x.shape
    px0, px1, py0, py1 = padding
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    conv_padding = (0, 0)
    if px0 == px1 >= 0 and py0 == py1 >= 0:
        conv_padding = (py0, px0)  # the convolution pads: no padded copy of x (a 135 MB one in the 512 px SR)
    else:
        x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
        x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]
    f = f.to(x.dtype) * gain
    if not flip_filter:
        f = f.flip([0, 1])
    weight = f[None, None].expand(c, 1, *f.shape)
    x = F.conv2d(x, weight, groups=c, padding=conv_padding)
    return x[:, :, ::down, ::down]


def upsample2d(x: Tensor, f: Tensor) -> Tensor:
    """2x upsampling with FIR filter ``f`` and gain 4, as StyleGAN2's ``upsample2d``.

    Args:
        x: ``(N, C, H, W)``.

    Returns:
        ``(N, C, 2H, 2W)``.
    """
    fh, fw = f.shape
    if fh == fw and fw % 2 == 0 and x.ndim == 4:
        # Zero insertion + padding + FIR is a stride-2 transposed convolution with the unflipped
        # filter: same sums without multiplying the inserted zeros (4x fewer products; forward plus
        # backward of the tiny generator's 96-channel 256 px skip image went from 0.20 s to 0.05 s).
        c = x.shape[1]
        weight = (f.to(x.dtype) * 4.0)[None, None].expand(c, 1, fh, fw)
        return F.conv_transpose2d(x, weight, stride=2, padding=fw // 2 - 1, groups=c)
    pad = [(fw + 1) // 2, (fw - 2) // 2, (fh + 1) // 2, (fh - 2) // 2]
    return upfirdn2d(x, f, up=2, padding=pad, gain=4.0)


def conv2d_up2(x: Tensor, w: Tensor, f: Tensor, groups: int = 1) -> Tensor:
    """3x3 convolution with 2x upsampling, as StyleGAN2's ``conv2d_resample(up=2, padding=1)``.

    A stride-2 transposed convolution with the (unflipped) weight, then the FIR ``f`` with gain 4 and
    one pixel of zero padding on each side.

    Args:
        x: ``(N, groups*I, H, W)``.
        w: ``(groups*O, I, k, k)``.

    Returns:
        ``(N, groups*O, 2H, 2W)`` for ``k = 3``.
    """
    out_ch, in_per_group, kh, kw = w.shape
    w = w.reshape(groups, out_ch // groups, in_per_group, kh, kw).transpose(1, 2)
    w = w.reshape(groups * in_per_group, out_ch // groups, kh, kw)
    x = F.conv_transpose2d(x, w, stride=2, groups=groups)
    fh, fw = f.shape
    px0 = (fw + 1) // 2 - (kw - 1) + 1
    px1 = (fw - 2) // 2 - (kw - 2) + 1
    py0 = (fh + 1) // 2 - (kh - 1) + 1
    py1 = (fh - 2) // 2 - (kh - 2) + 1
    return upfirdn2d(x, f, padding=[px0, px1, py0, py1], gain=4.0)


def modulated_conv2d(
    x: Tensor,
    weight: Tensor,
    styles: Tensor,
    noise: Tensor | None = None,
    up: int = 1,
    padding: int = 0,
    resample_filter: Tensor | None = None,
    demodulate: bool = True,
    fused_modconv: bool = True,
) -> Tensor:
    """StyleGAN2 modulated convolution (optionally demodulated), fused or not.

    Fused: one grouped convolution with per-sample weights. Non-fused: scale the activations before
    and after a shared convolution. Both compute the same function; the official code uses the fused
    form in eval and the non-fused one in training (``fused_modconv_default='inference_only'``).

    Args:
        x: ``(N, I, H, W)``.
        weight: ``(O, I, k, k)``.
        styles: ``(N, I)``.
        noise: broadcastable to ``(N, O, H', W')``, added after the convolution.
        up: 1, or 2 for a 2x upsampling convolution (needs ``resample_filter``).

    Returns:
        ``(N, O, H', W')`` with ``H' = H * up``.
    """
    n = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    if x.dtype == torch.float16 and demodulate:
        # Official fp16 guard: pre-normalise weights and styles by their max-norm to avoid overflow.
        weight = weight * (1 / math.sqrt(in_ch * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)
    w = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)
    dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt() if demodulate else None
    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
        x = _conv(x, weight.to(x.dtype), up, padding, resample_filter, groups=1)
        if dcoefs is not None:
            x = x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
        return x.add_(noise.to(x.dtype)) if noise is not None else x
    if dcoefs is not None:
        w = w * dcoefs.reshape(n, -1, 1, 1, 1)
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_ch, kh, kw)
    x = _conv(x, w.to(x.dtype), up, padding, resample_filter, groups=n)
    x = x.reshape(n, -1, *x.shape[2:])
    return x.add_(noise.to(x.dtype)) if noise is not None else x


def _conv(x: Tensor, w: Tensor, up: int, padding: int, f: Tensor | None, groups: int) -> Tensor:
    if up == 1:
        return F.conv2d(x, w, padding=padding, groups=groups)
    if up != 2 or f is None or padding != w.shape[-1] // 2:
        raise NotImplementedError("only up=1, or up=2 with a FIR filter and same-padding, are used by EG3D")
    return conv2d_up2(x, w, f, groups=groups)


#: Zero texels a padded :class:`TexelTable` adds around each plane (before, after) on both axes: every corner of
#: a clamped sample position lands inside the table, so zero padding needs no mask.
TABLE_PAD = (1, 2)


def _bilinear_weights(fx: Tensor, fy: Tensor) -> Tensor:
    """``(..., )`` fractional positions -> ``(numel, 4)`` weights of the corners nw, ne, sw, se."""
    gx, gy = 1 - fx, 1 - fy
    return torch.stack([gx * gy, fx * gy, gx * fy, fx * fy], dim=-1).reshape(-1, 4)


def _unnormalised(grid: Tensor, h: int, w: int) -> tuple[Tensor, Tensor]:
    """``align_corners=False`` texel coordinates ``(ix, iy)`` of ``grid (..., 2)`` in ``[-1, 1]``."""
    return ((grid[..., 0] + 1) * w - 1) / 2, ((grid[..., 1] + 1) * h - 1) / 2


def _taps_padded(grid: Tensor, base: Tensor, stride: int, h: int, w: int) -> tuple[Tensor, Tensor]:
    """:func:`bilinear_taps` into a padded table: positions clamped to ``[-1, size]`` put every corner outside
    the plane on a zero texel, so the weights need no mask and points far outside read zeros."""
    before, after = TABLE_PAD
    wp = w + before + after
    ix, iy = _unnormalised(grid, h, w)
    ix, iy = ix.clamp_(-1, w), iy.clamp_(-1, h)
    # A NaN position reads valid rows with NaN weights: NaN out, as from grid_sample.
    x0, y0 = ix.floor().nan_to_num_(-1.0), iy.floor().nan_to_num_(-1.0)
    weights = _bilinear_weights(ix.sub_(x0), iy.sub_(y0))
    first = (y0.long() + before) * wp + (x0.long() + before)
    first = base + first * stride
    offsets = torch.tensor([0, 1, wp, wp + 1], device=grid.device) * stride
    return first.reshape(-1, 1) + offsets, weights


def _taps_masked(grid: Tensor, base: Tensor, stride: int, h: int, w: int) -> tuple[Tensor, Tensor]:
    """:func:`bilinear_taps` into an unpadded table: corners outside the plane get weight 0 and a clamped row."""
    ix, iy = _unnormalised(grid, h, w)
    x0, y0 = ix.floor(), iy.floor()
    weights = _bilinear_weights(ix - x0, iy - y0)
    x0, y0 = x0.long(), y0.long()
    inside_x = torch.stack([(x0 >= 0) & (x0 < w), (x0 >= -1) & (x0 < w - 1)], dim=-1)
    inside_y = torch.stack([(y0 >= 0) & (y0 < h), (y0 >= -1) & (y0 < h - 1)], dim=-1)
    inside = (inside_y.unsqueeze(-1) & inside_x.unsqueeze(-2)).reshape(-1, 4)  # nw, ne, sw, se
    xs = torch.stack([x0, x0 + 1], dim=-1).clamp_(0, w - 1)
    ys = torch.stack([y0, y0 + 1], dim=-1).clamp_(0, h - 1)
    texel = (ys.unsqueeze(-1) * w + xs.unsqueeze(-2)).reshape(*grid.shape[:-1], 4)
    rows = base.unsqueeze(-1) + texel * stride
    return rows.reshape(-1, 4), weights.mul_(inside)


def bilinear_taps(grid: Tensor, base: Tensor, stride: int, h: int, w: int,
                  padded: bool) -> tuple[Tensor, Tensor]:
    """The 4 texels of each grid point as rows into a texel table, and their bilinear weights.

    ``grid (..., 2)`` -> ``rows (numel, 4)`` (int64) and ``weights (numel, 4)``, corners in ``grid_sample``'s
    order (nw, ne, sw, se); texel ``(y, x)`` of a point's plane is row ``base + (y * W + x) * stride`` with
    ``base`` broadcast against ``grid.shape[:-1]`` and ``W`` the table's row width (``w``, or ``w + 3`` when
    ``padded``, see :data:`TABLE_PAD`). ``align_corners=False`` unnormalisation; texels outside the plane
    contribute zero.
    """
    return (_taps_padded if padded else _taps_masked)(grid, base, stride, h, w)


def prefer_padded_table(texels_per_plane: int, points_per_lookup: int) -> bool:
    """Whether a :class:`TexelTable` for lookups of ``points_per_lookup`` points per plane should be padded.

    Padding copies the whole table once per render (on a 2-core CPU 6.5 ms forward and 2.3 ms backward for EG3D's
    96 x 256 x 256 planes); masking adds about 20 elementwise operations on the taps of every point of every
    lookup. The threshold (padding from half as many points per lookup as the plane has texels) is an estimate from
    those costs: EG3D's ffhq512-128 passes (786,432 points on 256x256 planes) take the padded table, the tiny
    generator's (8,192 points) the masked one. With the padded table everywhere, tiny's forward was 3-8 % slower
    than before the embedding-bag lookup; with the masked one it is faster (``benchmarks/perf/plane_lookup_ab.py``).

    Example:
        >>> prefer_padded_table(256 * 256, 128 * 128 * 48), prefer_padded_table(256 * 256, 32 * 32 * 8)
        (True, False)
    """
    return 2 * points_per_lookup >= texels_per_plane


class _TexelRows(torch.autograd.Function):
    """``(N, K, L)`` -> ``(N*L, K)``: each image's channels become a texel's row, and back for the
    gradient, by one 2-D transpose per image. On CPU PyTorch's 2-D transpose copy is about 3x faster
    than the general permute (or a batched transpose) for tri-plane shapes (14 vs 42 ms at 96x256x256)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.n_images = x.shape[0]
        rows = [image.t().contiguous() for image in x]
        return rows[0] if len(rows) == 1 else torch.cat(rows)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:  # type: ignore[override]
        if ctx.n_images == 1:
            return grad.t().contiguous()[None]
        return torch.stack([g.t().contiguous() for g in grad.chunk(ctx.n_images)])


class TexelTable:
    """Tri-planes as one table of texel rows, built once per render and shared by all its lookups.

    From ``(N, 3, C, H, W)``, each plane optionally padded with zero texels (:data:`TABLE_PAD`) to ``(Hp, Wp)``
    (see :func:`prefer_padded_table`): the ``3*C`` features of a texel become one row, seen as 3 rows of ``C``
    (texel ``t`` of plane ``p`` of image ``n`` is row ``(n*Hp*Wp + t)*3 + p``). Planes expanded over the batch
    (one set of planes at many cameras) are converted once. ``planes`` stays for lookups whose grid needs a
    gradient (``F.grid_sample``).

    Example:
        >>> planes = torch.arange(24.0).view(1, 3, 2, 2, 2)  # (N, 3, C=2, H=2, W=2)
        >>> table = TexelTable(planes)
        >>> table.table.shape  # (1 + 2 + 2) x (1 + 2 + 2) padded texels x 3 planes, C = 2
        torch.Size([75, 2])
        >>> first = (1 * 5 + 1) * 3  # texel (0, 0) of the planes
        >>> table.table[first:first + 3].tolist()  # planes 0, 1, 2
        [[0.0, 4.0], [8.0, 12.0], [16.0, 20.0]]
        >>> TexelTable(planes, padded=False).table[:3].tolist()  # unpadded: texel (0, 0) comes first
        [[0.0, 4.0], [8.0, 12.0], [16.0, 20.0]]
    """

    def __init__(self, planes: Tensor, padded: bool = True) -> None:
        n, n_planes, c, h, w = planes.shape
        shared = n > 1 and planes.stride(0) == 0
        source = planes[:1] if shared else planes
        before, after = TABLE_PAD if padded else (0, 0)
        source = source.reshape(source.shape[0], n_planes * c, h, w)
        if padded:
            source = F.pad(source, (before, after, before, after))
        texels = (h + before + after) * (w + before + after)
        self._planes = planes
        self.size = (h, w)
        self.padded = padded
        self.stride = n_planes
        self.table = _TexelRows.apply(source.reshape(source.shape[0], n_planes * c, texels)).view(-1, c)
        image = torch.zeros(n, dtype=torch.long) if shared else torch.arange(n)
        self.base = ((image * (texels * n_planes))[:, None] + torch.arange(n_planes)).flatten().to(planes.device)

    @classmethod
    def for_lookups(cls, planes: Tensor, points: int) -> TexelTable:
        """The table of ``planes (N, 3, C, H, W)`` for lookups of ``points`` points per plane, padded when
        :func:`prefer_padded_table` says so."""
        return cls(planes, padded=prefer_padded_table(planes.shape[-2] * planes.shape[-1], points))

    @property
    def planes(self) -> Tensor:
        """``(N*3, C, H, W)`` for ``F.grid_sample`` (reshaped on demand: for expanded planes it copies)."""
        n, n_planes, c, h, w = self._planes.shape
        return self._planes.reshape(n * n_planes, c, h, w)


def _scatter_taps(out: Tensor, rows: Tensor, weights: Tensor, grad: Tensor) -> None:
    """``out[rows[p, k]] += weights[p, k] * grad[p]`` for every tap ``k``: rows, weights ``(P, K)``, grad ``(P, C)``.

    The weighted products share one buffer: a fresh 300 MB product per tap (EG3D's passes) costs more in page
    faults than in arithmetic.
    """
    scaled = torch.empty_like(grad)
    for k in range(rows.shape[1]):
        out.index_add_(0, rows[:, k], torch.mul(grad, weights[:, k, None], out=scaled))


class _PlaneSample(torch.autograd.Function):
    """Bilinear plane lookup as a weighted bag of 4 texel rows (``F.embedding_bag``), and its scatter gradient.

    Same arithmetic as ``F.grid_sample(mode="bilinear", padding_mode="zeros", align_corners=False)``
    (four weighted texels, in its order). PyTorch's CPU ``grid_sample`` walks the channel-first layout point by
    point, a stride of H*W floats between channels; one fused gather of contiguous channel rows took about half
    its time on an EG3D coarse pass, timed in isolation on a 2-core CPU. The gradient is an ``index_add_`` of
    the weighted output gradient per plane and corner (faster than ``embedding_bag``'s own backward at EG3D's
    sizes).
    """

    @staticmethod
    def forward(ctx: Any, table: Tensor, grid: Tensor, base: Tensor, stride: int,  # type: ignore[override]
                h: int, w: int, padded: bool) -> Tensor:
        rows, weights = bilinear_taps(grid, base.view(-1, 1, 1), stride, h, w, padded)
        weights = weights.to(table.dtype)
        out = F.embedding_bag(rows, table, per_sample_weights=weights, mode="sum")
        ctx.save_for_backward(rows, weights)
        ctx.table_shape = table.shape
        return out.view(*grid.shape[:3], table.shape[1]).permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        rows, weights = ctx.saved_tensors
        n_planes, c = grad.shape[0], ctx.table_shape[1]
        rows, weights = rows.view(n_planes, -1, 4), weights.view(n_planes, -1, 4).to(grad.dtype)
        out = torch.zeros(ctx.table_shape, device=grad.device, dtype=grad.dtype)
        # Plane by plane: the incoming gradient is often a broadcast over the planes (the decoder averages them),
        # which a (B*Ho*Wo, C) view of all planes would copy.
        for b in range(n_planes):
            _scatter_taps(out, rows[b], weights[b], grad[b].permute(1, 2, 0).reshape(-1, c))
        return out, None, None, None, None, None, None


def plane_grid_sample(planes: Tensor | TexelTable, grid: Tensor) -> Tensor:
    """Bilinear ``grid_sample`` with zero padding and ``align_corners=False`` (EG3D's plane lookup).

    ``planes (B, C, H, W)`` (or the :class:`TexelTable` of tri-planes, ``B = 3N``), ``grid (B, Ho,
    Wo, 2)`` in ``[-1, 1]`` -> ``(B, C, Ho, Wo)`` (a channel-last tensor seen in that shape). The
    values equal ``F.grid_sample``'s up to float summation order; the planes get their gradient. A
    grid that needs a gradient takes ``F.grid_sample`` itself.

    Example:
        >>> planes = torch.arange(4.0).view(1, 1, 2, 2).requires_grad_()
        >>> out = plane_grid_sample(planes, torch.zeros(1, 1, 1, 2))  # the centre: mean of the 4 texels
        >>> out.item(), torch.autograd.grad(out.sum(), planes)[0].flatten().tolist()
        (1.5, [0.25, 0.25, 0.25, 0.25])
    """
    if grid.requires_grad:
        source = planes.planes if isinstance(planes, TexelTable) else planes
        return F.grid_sample(source, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if not isinstance(planes, TexelTable):
        planes = TexelTable.for_lookups(planes[:, None], grid.shape[1] * grid.shape[2])
    h, w = planes.size
    return _PlaneSample.apply(planes.table, grid, planes.base, planes.stride, h, w, planes.padded)


class _PlaneMeanSample(torch.autograd.Function):
    """The mean over the planes of their bilinear lookups as one weighted bag of 4 texels per plane."""

    @staticmethod
    def forward(ctx: Any, table: Tensor, grid: Tensor, base: Tensor, stride: int,  # type: ignore[override]
                h: int, w: int, padded: bool) -> Tensor:
        n, m, n_planes, _ = grid.shape
        rows, weights = bilinear_taps(grid, base.view(n, 1, n_planes), stride, h, w, padded)
        rows, weights = rows.view(n * m, 4 * n_planes), weights.to(table.dtype).div_(n_planes).view(n * m, -1)
        ctx.save_for_backward(rows, weights)
        ctx.table_shape = table.shape
        return F.embedding_bag(rows, table, per_sample_weights=weights, mode="sum").view(n, m, table.shape[1])

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        rows, weights = ctx.saved_tensors
        out = torch.zeros(ctx.table_shape, device=grad.device, dtype=grad.dtype)
        _scatter_taps(out, rows, weights.to(grad.dtype), grad.reshape(-1, ctx.table_shape[1]))
        return out, None, None, None, None, None, None


def plane_mean_sample(texels: TexelTable, grid: Tensor) -> Tensor:
    """The mean over the tri-planes of their bilinear lookups, in one pass: ``grid (N, M, 3, 2)`` in ``[-1, 1]``
    (point ``m`` of image ``n`` on each plane) -> ``(N, M, C)``.

    Equals ``plane_grid_sample`` per plane followed by the mean over the planes (EG3D's decoder input), to float
    rounding, without the ``(N, 3, M, C)`` per-plane features: on EG3D's passes at 128 px that tensor is 300 MB
    written and read again. The planes get their gradient; the grid must not need one (``plane_grid_sample``
    takes that path).

    Example:
        >>> planes = torch.arange(24.0).view(1, 3, 2, 2, 2)  # (N, 3, C=2, H=2, W=2)
        >>> plane_mean_sample(TexelTable(planes), torch.zeros(1, 1, 3, 2))  # the centre of every plane
        tensor([[[ 9.5000, 13.5000]]])
    """
    if grid.requires_grad:
        raise ValueError("plane_mean_sample gives the planes their gradient, not the grid; use plane_grid_sample")
    h, w = texels.size
    return _PlaneMeanSample.apply(texels.table, grid, texels.base, texels.stride, h, w, texels.padded)
