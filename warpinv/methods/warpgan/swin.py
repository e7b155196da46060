"""Swin Transformer V2 backbone of the GOAE encoder, as GOAE and WarpGAN define it (``swin_transformer.py``).

Clean-room implementation written from the Swin-V2 paper (Liu et al., CVPR 2022) and the behaviour of the
official GOAE / WarpGAN module; no code is copied. Every attribute name equals the official one, so a released
checkpoint's ``swin_model.*`` entries load into :class:`SwinTransformerV2` unchanged.

What makes it Swin V2 (and what a port must reproduce):

- scaled cosine attention: ``cos(q, k) * exp(min(logit_scale, log 100))`` per head;
- continuous relative position bias ``16 * sigmoid(cpb_mlp(table))``; the log-spaced coordinate table is
  normalised by ``pretrained_window_size - 1`` (by ``window - 1`` when no pretrained size is given);
- q and v biases only (k has none);
- residual post-norm: ``x + norm1(attn(x))`` and ``x + norm2(mlp(x))``;
- a stage whose resolution is <= the window uses one window covering the whole map and never shifts;
- ``PatchMerging`` concatenates ``[0::2, 0::2], [1::2, 0::2], [0::2, 1::2], [1::2, 1::2]`` (rows first) and
  normalises after the reduction.

The buffers ``relative_coords_table``, ``relative_position_index`` and (shifted blocks only) ``attn_mask`` are
persistent, as in the official module: a released checkpoint holds them.

Example:
    >>> net = SwinTransformerV2(img_size=64, patch_size=4, embed_dim=16, depths=(1, 1, 1, 1),
    ...                         num_heads=(2, 2, 4, 4), window_size=4)
    >>> final, stage_inputs = net(torch.zeros(2, 3, 64, 64))
    >>> tuple(final.shape), [tuple(s.shape) for s in stage_inputs]
    ((2, 4, 128), [(2, 256, 16), (2, 64, 32), (2, 16, 64), (2, 4, 128)])
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "DropPath",
    "Mlp",
    "PatchEmbed",
    "PatchMerging",
    "SwinStage",
    "SwinTransformerBlock",
    "SwinTransformerV2",
    "WindowAttention",
    "effective_window",
    "relative_coords_table",
    "relative_position_index",
    "reset_computed_buffers",
    "shifted_window_mask",
    "window_merge",
    "window_partition",
]

#: Upper bound of the attention temperature's logarithm (Swin V2 clamps ``logit_scale`` at ``log(1 / 0.01)``).
LOGIT_SCALE_MAX = math.log(100.0)
#: Value added to attention logits between tokens of different regions of a shifted window.
MASK_VALUE = -100.0
#: The continuous position bias is ``CPB_SCALE * sigmoid(cpb_mlp(table))``.
CPB_SCALE = 16.0
#: Hidden width of the position-bias MLP.
CPB_HIDDEN = 512
#: The coordinate table is scaled to [-8, 8] before the log spacing.
_TABLE_RANGE = 8.0


def effective_window(resolution: int, window_size: int, shift_size: int) -> tuple[int, int]:
    """``(window, shift)`` a block really uses: a map no larger than the window is one unshifted window.

    Example:
        >>> effective_window(64, 16, 8), effective_window(16, 16, 8), effective_window(8, 16, 8)
        ((16, 8), (16, 0), (8, 0))
    """
    if resolution <= window_size:
        return resolution, 0
    return window_size, shift_size


def relative_coords_table(window: int, pretrained_window: int) -> Tensor:
    """Log-spaced relative coordinates ``(1, 2w-1, 2w-1, 2)`` float32 fed to the position-bias MLP.

    Offsets ``-(w-1)..(w-1)`` along (rows, columns), divided by ``pretrained_window - 1`` (``w - 1`` when
    ``pretrained_window`` is 0), scaled to [-8, 8], then ``sign(t) * log2(|t| + 1) / log2(8)``.
    """
    divisor = (pretrained_window if pretrained_window > 0 else window) - 1
    if divisor < 1:
        raise ValueError(f"the position table divides by (pretrained window - 1), or (window - 1) without one: "
                         f"window {window} with pretrained window {pretrained_window} divides by {divisor}")
    offsets = torch.arange(-(window - 1), window, dtype=torch.float32)
    rows, cols = torch.meshgrid(offsets, offsets, indexing="ij")
    table = torch.stack((rows, cols), dim=-1).unsqueeze(0)
    table = table / float(divisor)
    table = table * _TABLE_RANGE
    return torch.sign(table) * torch.log2(table.abs() + 1.0) / math.log2(_TABLE_RANGE)


def relative_position_index(window: int) -> Tensor:
    """``(w*w, w*w)`` int64: for tokens i, j of a window, the row of the flattened ``(2w-1, 2w-1)`` table
    holding their offset ``(row_i - row_j, col_i - col_j)``."""
    grid = torch.arange(window)
    rows, cols = torch.meshgrid(grid, grid, indexing="ij")
    rows, cols = rows.flatten(), cols.flatten()
    d_row = rows[:, None] - rows[None, :] + (window - 1)
    d_col = cols[:, None] - cols[None, :] + (window - 1)
    return d_row * (2 * window - 1) + d_col


def shifted_window_mask(resolution: int, window: int, shift: int) -> Tensor:
    """``(nW, w*w, w*w)`` float32 mask of a cyclically shifted ``resolution x resolution`` map.

    After the roll by ``-shift`` the map has three bands per axis (``[0, R-w)``, ``[R-w, R-s)``, ``[R-s, R)``);
    tokens of a window that come from different band pairs get :data:`MASK_VALUE`, the others 0.
    """
    pos = torch.arange(resolution)
    band = (pos >= resolution - window).long() + (pos >= resolution - shift).long()
    region = (band[:, None] * 3 + band[None, :]).to(torch.float32)
    ids = window_partition(region[None, :, :, None], window).squeeze(-1)
    differs = ids[:, None, :] != ids[:, :, None]
    return torch.zeros(differs.shape, dtype=torch.float32).masked_fill(differs, MASK_VALUE)


def reset_computed_buffers(module: nn.Module) -> None:
    """Recompute every Swin block's constructor-computed buffers inside ``module`` in place.

    For modules built on the ``meta`` device and materialised with ``to_empty`` (skipping the weight
    initialisation), whose buffers are then uninitialised memory.
    """
    for block in module.modules():
        if isinstance(block, SwinTransformerBlock):
            block.reset_buffers()


def window_partition(x: Tensor, window: int) -> Tensor:
    """``(B, H, W, C) -> (B * nW, window * window, C)``, windows in row-major order per image."""
    B, H, W, C = x.shape
    x = x.view(B, H // window, window, W // window, window, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, window * window, C)


def window_merge(windows: Tensor, window: int, height: int, width: int) -> Tensor:
    """Inverse of :func:`window_partition`: ``(B * nW, window * window, C) -> (B, H, W, C)``."""
    C = windows.shape[-1]
    x = windows.view(-1, height // window, width // window, window, window, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, height, width, C)


class DropPath(nn.Module):
    """Stochastic depth: in training, zero whole samples with probability ``p`` and scale survivors by
    ``1 / (1 - p)``; identity in eval or when ``p == 0``. Shapes: ``(B, ...) -> (B, ...)``."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop path probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Mlp(nn.Module):
    """``fc1 -> GELU -> dropout -> fc2 -> dropout``: ``(..., dim) -> (..., dim)``."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class WindowAttention(nn.Module):
    """Multi-head scaled cosine self-attention inside square windows, with the continuous position bias.

    Call: ``attn(x, mask)``; ``x``: ``(B * nW, w * w, dim)``; ``mask``: ``(nW, w * w, w * w)`` or ``None``.
    """

    def __init__(self, dim: int, window: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0, pretrained_window: int = 0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.dim, self.window, self.num_heads, self.pretrained_window = dim, window, num_heads, pretrained_window
        self.logit_scale = nn.Parameter(torch.full((num_heads, 1, 1), math.log(10.0)))
        self.cpb_mlp = nn.Sequential(nn.Linear(2, CPB_HIDDEN), nn.ReLU(inplace=True),
                                     nn.Linear(CPB_HIDDEN, num_heads, bias=False))
        self.register_buffer("relative_coords_table", relative_coords_table(window, pretrained_window))
        self.register_buffer("relative_position_index", relative_position_index(window))
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias: nn.Parameter | None = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
        self.v_bias: nn.Parameter | None = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    @torch.no_grad()
    def reset_buffers(self) -> None:
        """Recompute ``relative_coords_table`` and ``relative_position_index`` in place (after ``to_empty``)."""
        self.relative_coords_table.copy_(relative_coords_table(self.window, self.pretrained_window))
        self.relative_position_index.copy_(relative_position_index(self.window))

    def position_bias(self) -> Tensor:
        """``(heads, w * w, w * w)``: ``16 * sigmoid`` of the MLP's bias for every token pair."""
        table = self.cpb_mlp(self.relative_coords_table).view(-1, self.num_heads)
        n = self.window * self.window
        bias = table[self.relative_position_index.view(-1)].view(n, n, self.num_heads).permute(2, 0, 1)
        return CPB_SCALE * torch.sigmoid(bias)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        B_, N, C = x.shape
        bias = None
        if self.q_bias is not None and self.v_bias is not None:
            bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias).reshape(B_, N, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
        attn = attn * torch.clamp(self.logit_scale, max=LOGIT_SCALE_MAX).exp()
        attn = attn + self.position_bias().unsqueeze(0)
        if mask is not None:
            nW = mask.shape[0]
            attn = attn.view(B_ // nW, nW, self.num_heads, N, N) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, self.num_heads, N, N)
        attn = self.attn_drop(attn.softmax(dim=-1))
        out = (attn @ v).transpose(1, 2).reshape(B_, N, C)
        return self.proj_drop(self.proj(out))

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, window={self.window}, pretrained_window={self.pretrained_window}, "
                f"num_heads={self.num_heads}")


class SwinTransformerBlock(nn.Module):
    """(Shifted-)window attention and MLP, each with a residual post-norm: ``(B, R*R, dim) -> (B, R*R, dim)``.

    ``window`` and ``shift`` are those requested; :func:`effective_window` clips them to the resolution.
    """

    def __init__(self, dim: int, resolution: int, num_heads: int, window: int, shift: int = 0,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, drop: float = 0.0, attn_drop: float = 0.0,
                 drop_path: float = 0.0, pretrained_window: int = 0) -> None:
        super().__init__()
        self.dim, self.resolution = dim, resolution
        self.window, self.shift = effective_window(resolution, window, shift)
        if resolution % self.window:
            raise ValueError(f"resolution {resolution} is not a multiple of the window {self.window}")
        if not 0 <= self.shift < self.window:
            raise ValueError(f"shift must be in [0, window={self.window}), got {self.shift}")
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, self.window, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop,
                                    proj_drop=drop, pretrained_window=pretrained_window)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)
        mask = shifted_window_mask(resolution, self.window, self.shift) if self.shift > 0 else None
        self.register_buffer("attn_mask", mask)

    @torch.no_grad()
    def reset_buffers(self) -> None:
        """Recompute the computed buffers (``attn_mask`` and the attention's) in place (after ``to_empty``)."""
        self.attn.reset_buffers()
        if self.attn_mask is not None:
            self.attn_mask.copy_(shifted_window_mask(self.resolution, self.window, self.shift))

    def forward(self, x: Tensor) -> Tensor:
        B, L, C = x.shape
        R = self.resolution
        if L != R * R:
            raise ValueError(f"block expects {R}x{R} = {R * R} tokens, got {L}")
        grid = x.view(B, R, R, C)
        if self.shift:
            grid = torch.roll(grid, shifts=(-self.shift, -self.shift), dims=(1, 2))
        windows = self.attn(window_partition(grid, self.window), mask=self.attn_mask)
        grid = window_merge(windows, self.window, R, R)
        if self.shift:
            grid = torch.roll(grid, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + self.drop_path(self.norm1(grid.reshape(B, L, C)))
        return x + self.drop_path(self.norm2(self.mlp(x)))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, resolution={self.resolution}, window={self.window}, shift={self.shift}"


class PatchMerging(nn.Module):
    """2x2 token merge: ``(B, R*R, dim) -> (B, (R/2)^2, 2*dim)``, LayerNorm after the linear reduction."""

    def __init__(self, resolution: int, dim: int) -> None:
        super().__init__()
        if resolution % 2:
            raise ValueError(f"patch merging needs an even resolution, got {resolution}")
        self.resolution, self.dim = resolution, dim
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(2 * dim)

    def forward(self, x: Tensor) -> Tensor:
        B, L, C = x.shape
        R = self.resolution
        if L != R * R:
            raise ValueError(f"patch merging expects {R}x{R} = {R * R} tokens, got {L}")
        grid = x.view(B, R, R, C)
        # Row-offset first: (0,0), (1,0), (0,1), (1,1) -- the order the released reduction weights expect.
        parts = (grid[:, 0::2, 0::2], grid[:, 1::2, 0::2], grid[:, 0::2, 1::2], grid[:, 1::2, 1::2])
        merged = torch.cat(parts, dim=-1).view(B, -1, 4 * C)
        return self.norm(self.reduction(merged))


class SwinStage(nn.Module):
    """``depth`` blocks (odd ones shifted by ``window // 2``), then an optional :class:`PatchMerging`."""

    def __init__(self, dim: int, resolution: int, depth: int, num_heads: int, window: int, mlp_ratio: float,
                 qkv_bias: bool, drop: float, attn_drop: float, drop_path: Sequence[float], downsample: bool,
                 pretrained_window: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(dim, resolution, num_heads, window, shift=0 if i % 2 == 0 else window // 2,
                                 mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, drop=drop, attn_drop=attn_drop,
                                 drop_path=drop_path[i], pretrained_window=pretrained_window)
            for i in range(depth))
        self.downsample = PatchMerging(resolution, dim) if downsample else None

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x)
        return x if self.downsample is None else self.downsample(x)


class PatchEmbed(nn.Module):
    """Non-overlapping patches: ``(B, in_chans, S, S) -> (B, (S/p)^2, embed_dim)`` (row-major tokens)."""

    def __init__(self, img_size: int, patch_size: int, in_chans: int, embed_dim: int, norm: bool = True) -> None:
        super().__init__()
        self.img_size, self.patch_size = img_size, patch_size
        self.grid = img_size // patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim) if norm else None

    def forward(self, x: Tensor) -> Tensor:
        if tuple(x.shape[-2:]) != (self.img_size, self.img_size):
            raise ValueError(f"patch embedding expects {self.img_size}x{self.img_size} images, "
                             f"got {tuple(x.shape[-2:])}")
        x = self.proj(x).flatten(2).transpose(1, 2)
        return x if self.norm is None else self.norm(x)


class SwinTransformerV2(nn.Module):
    """Swin Transformer V2 trunk (no classification head) returning the final tokens and every stage's input.

    Stage ``i`` works on ``R_i = (img_size / patch_size) / 2**i`` tokens per side with ``embed_dim * 2**i``
    channels; all stages but the last end in :class:`PatchMerging`. Stochastic depth rises linearly from 0 to
    ``drop_path_rate`` over all blocks.

    Call: ``net(x)`` with ``x (B, in_chans, S, S)`` -> ``(final, stage_inputs)``: ``final (B, L_last, C_last)``
    is the last stage's output after ``norm``; ``stage_inputs[i]`` is ``(B, R_i * R_i, C_i)``, what stage ``i``
    receives (the patch embedding for ``i = 0``, the previous :class:`PatchMerging` output otherwise).

    Initialisation follows the official module: linear weights truncated-normal (std 0.02), zero biases,
    LayerNorms at identity, then every block's ``norm1`` / ``norm2`` zeroed (res-post-norm starts as
    identity blocks).
    """

    def __init__(self, img_size: int = 224, patch_size: int = 4, in_chans: int = 3, embed_dim: int = 96,
                 depths: Sequence[int] = (2, 2, 6, 2), num_heads: Sequence[int] = (3, 6, 12, 24),
                 window_size: int = 7, mlp_ratio: float = 4.0, qkv_bias: bool = True, drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0, drop_path_rate: float = 0.1, ape: bool = False,
                 patch_norm: bool = True, pretrained_window_sizes: Sequence[int] = (0, 0, 0, 0)) -> None:
        super().__init__()
        if not len(depths) == len(num_heads) == len(pretrained_window_sizes):
            raise ValueError(f"depths, num_heads and pretrained_window_sizes need one entry per stage, got "
                             f"{tuple(depths)}, {tuple(num_heads)}, {tuple(pretrained_window_sizes)}")
        self.num_layers = len(depths)
        self.embed_dim = embed_dim
        self.num_features = embed_dim * 2 ** (self.num_layers - 1)
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim, norm=patch_norm)
        grid = self.patch_embed.grid
        self.absolute_pos_embed = nn.Parameter(torch.zeros(1, grid * grid, embed_dim)) if ape else None
        self.pos_drop = nn.Dropout(drop_rate)
        rates = torch.linspace(0, drop_path_rate, sum(depths), device="cpu").tolist()
        self.layers = nn.ModuleList()
        for i, depth in enumerate(depths):
            start = sum(depths[:i])
            self.layers.append(SwinStage(
                embed_dim * 2 ** i, grid // 2 ** i, depth, num_heads[i], window_size, mlp_ratio, qkv_bias,
                drop_rate, attn_drop_rate, rates[start:start + depth], downsample=i < self.num_layers - 1,
                pretrained_window=pretrained_window_sizes[i]))
        self.norm = nn.LayerNorm(self.num_features)
        self._init_weights()

    @torch.no_grad()
    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02, a=-2.0, b=2.0)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if self.absolute_pos_embed is not None:
            nn.init.trunc_normal_(self.absolute_pos_embed, std=0.02, a=-2.0, b=2.0)
        for block in self.modules():
            if isinstance(block, SwinTransformerBlock):
                for norm in (block.norm1, block.norm2):
                    nn.init.zeros_(norm.weight)
                    nn.init.zeros_(norm.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        x = self.patch_embed(x)
        if self.absolute_pos_embed is not None:
            x = x + self.absolute_pos_embed
        x = self.pos_drop(x)
        stage_inputs = []
        for layer in self.layers:
            stage_inputs.append(x)
            x = layer(x)
        return self.norm(x), stage_inputs
