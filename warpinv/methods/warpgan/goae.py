"""GOAE's Swin-V2 W+ encoder as WarpGAN builds it (``GOAEncoder(get_config(swinv2.yaml), mlp_layer=2)``).

Clean-room implementation written from the GOAE paper (Yuan et al., ICCV 2023) and the behaviour of the
official ``models/goae/goae.py`` / ``attention.py`` of GOAE and WarpGAN (Huang-KT/WarpGAN@1bb86bf); no code is
copied. State-dict names equal the official ones, so ``gan_encoder.pt['psp_state_dict']`` (WarpGAN) and
GOAE's ``encoder_FFHQ.pt`` load with :func:`load_goae_state`.

Architecture, with stage ``i`` of the Swin trunk (:class:`~warpinv.methods.warpgan.swin.SwinTransformerV2`)
holding ``L_i`` tokens of ``C_i`` channels (released build: ``L = 4096, 1024, 256, 64``,
``C = 128, 256, 512, 1024``):

- ``x_base (N, C_3, L_3)``: the final LayerNorm output, transposed; ``x_query (N, C_3, L_3)``: the input of the
  last stage (the third PatchMerging output), transposed; ``x_coarse, x_mid, x_fine``: the inputs of stages
  2, 1 and 0, ``(N, L_i, C_i)``;
- base code: ``mapper_base_channel(mapper_base_spatial(x_base)^T + maxpool_tokens(x_base)^T)`` ``(N, 1, w_dim)``,
  repeated over the ``num_ws`` rows; the mappers are ``mlp_layer``-deep MLPs with ``LeakyReLU(0.01)``;
- queries: the same construction on ``x_query`` with ``rows`` outputs per level (3 / 3 / 7);
- keys/values: ``kv_coarse = f(x_coarse)``, ``kv_mid = f(x_mid) + g(kv_coarse^T)^T``,
  ``kv_fine = f(x_fine) + g(kv_mid^T)^T`` (channel maps to ``w_dim``, token maps ``L_2 -> L_1 -> L_0``);
- :class:`CrossAttention` per level; ``ws = base + cat([0, coarse, mid, fine])`` (row 0 is the base alone).
  With :attr:`GOAEConfig.attention_dim` set (ours, off in the released build) the queries, keys, values and
  attention layers have that width and one shared ``delta_projection`` maps each level's output to ``w_dim``.

``ws`` is the W+ code BEFORE the generator's average latent: WarpGAN adds its ``latent_avg`` ``(1, w_dim)``
(broadcast over the rows) afterwards.

The official module hard-wires a 256 px input, 128 embedding channels and the token / channel counts above;
:class:`GOAEConfig` derives them from the Swin settings, so a small encoder (e.g. :data:`TINY_GOAE`) can be
trained on a CPU. The default config is the released build (111,218,822 parameters).

Example:
    >>> encoder = GOAEncoder(TINY_GOAE).eval()
    >>> encoder(goae_input(torch.zeros(2, 3, 128, 128, dtype=torch.uint8), TINY_GOAE.img_size)).shape
    torch.Size([2, 14, 512])
"""
from __future__ import annotations

import bisect
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from warpinv.checks import check_floating, check_min, check_range, check_shape, check_tensor
from warpinv.methods.warpgan.swin import SwinTransformerV2, effective_window

__all__ = [
    "CrossAttention",
    "GOAECheckpointError",
    "GOAEConfig",
    "GOAEFeatures",
    "GOAEncoder",
    "TINY_GOAE",
    "default_row_split",
    "goae_input",
    "load_goae_state",
    "mlp_mapper",
]

logger = logging.getLogger(__name__)

#: Number of Swin stages GOAE reads (inputs of stages 0-3 and the final output).
NUM_STAGES = 4
#: Keys under which a training checkpoint stores the encoder (WarpGAN's ``gan_encoder.pt``).
WRAPPER_KEYS = ("psp_state_dict",)
#: Prefixes stripped when every key of a checkpoint carries one (a wrapped or DDP-saved encoder).
STRIP_PREFIXES = ("psp_encoder.", "encoder.", "module.")


def default_row_split(num_ws: int) -> tuple[int, int, int]:
    """Rows ``(coarse, mid, fine)`` of the W+ deltas for ``num_ws`` rows (row 0 has no delta).

    GOAE's 14 rows split as ``(3, 3, 7)``; other counts keep the 3/13 proportion for coarse and mid
    (at least one row each) and give the rest to fine.

    Example:
        >>> default_row_split(14), default_row_split(10), default_row_split(4)
        ((3, 3, 7), (2, 2, 5), (1, 1, 1))
    """
    check_min(num_ws, 4, "num_ws")
    deltas = num_ws - 1
    outer = max(1, (3 * deltas + 6) // 13)
    return outer, outer, deltas - 2 * outer


@dataclass(frozen=True)
class GOAEConfig:
    """Settings of :class:`GOAEncoder`; the defaults are WarpGAN's ``configs/swinv2.yaml`` + ``mlp_layer=2``.

    The Swin fields are ``DATA.IMG_SIZE`` / ``MODEL.SWINV2.*`` / ``MODEL.DROP*`` of the yaml. Token counts and
    channel widths of every mapper are derived from them (:attr:`stage_tokens`, :attr:`stage_dims`).
    """

    img_size: int = 256
    """Side of the (square) input images."""
    patch_size: int = 4
    """Side of a Swin patch."""
    in_chans: int = 3
    """Input channels."""
    embed_dim: int = 128
    """Channels of the first Swin stage (doubled by each patch merge)."""
    depths: tuple[int, ...] = (2, 2, 18, 2)
    """Swin blocks of the 4 stages."""
    num_heads: tuple[int, ...] = (4, 8, 16, 32)
    """Attention heads of the 4 stages."""
    window_size: int = 16
    """Attention window side (clipped to a stage's resolution, which then is not shifted)."""
    pretrained_window_sizes: tuple[int, ...] = (12, 12, 12, 6)
    """Window sides the position-bias table is normalised by (0: the stage's own window)."""
    mlp_ratio: float = 4.0
    """Hidden width of a Swin block's MLP, relative to its channels."""
    qkv_bias: bool = True
    """Learn q and v biases (k never has one)."""
    ape: bool = False
    """Add a learned absolute position embedding to the patches."""
    patch_norm: bool = True
    """LayerNorm after the patch embedding."""
    drop_rate: float = 0.0
    """Dropout in the Swin MLPs, attention projections and after the patch embedding (training only)."""
    attn_drop_rate: float = 0.0
    """Dropout of the Swin attention weights (training only)."""
    drop_path_rate: float = 0.2
    """Stochastic depth of the last Swin block, rising linearly from 0 over the blocks (training only)."""
    num_ws: int = 14
    """W+ rows of the generator."""
    w_dim: int = 512
    """Width of a W vector."""
    mlp_layer: int = 2
    """Linear layers of the base and query mappers."""
    rows: tuple[int, int, int] | None = None
    """W+ delta rows ``(coarse, mid, fine)`` after row 0; ``None``: :func:`default_row_split` (3, 3, 7 for 14)."""
    attention_dim: int | None = None
    """Width of the queries, keys, values and cross-attention layers (ours); ``None``: ``w_dim`` (released).
    A smaller width adds a ``delta_projection`` Linear back to ``w_dim`` after each cross-attention layer, so a
    small encoder for a ``w_dim = 512`` generator stays small."""
    cross_attention_heads: int = 4
    """Heads of the three cross-attention layers."""
    cross_attention_ffn: int | None = None
    """Hidden width of the cross-attention FFN; ``None``: twice :attr:`attn_dim` (released: 1024)."""
    cross_attention_dropout: float = 0.1
    """Dropout of the cross-attention layers (training only)."""
    stage_list: tuple[int, ...] = (10000, 20000, 30000)
    """Progressive-training steps switching on the coarse, mid and fine deltas (:meth:`GOAEncoder.set_stage`;
    WarpGAN never calls it, so all deltas are always on)."""

    def __post_init__(self) -> None:
        for name in ("depths", "num_heads", "pretrained_window_sizes", "stage_list"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        if self.rows is not None:
            object.__setattr__(self, "rows", tuple(int(v) for v in self.rows))
        self._validate()

    def _validate(self) -> None:
        for name in ("depths", "num_heads", "pretrained_window_sizes"):
            if len(getattr(self, name)) != NUM_STAGES:
                raise ValueError(f"GOAE reads {NUM_STAGES} Swin stages: {name} needs {NUM_STAGES} entries, "
                                 f"got {getattr(self, name)}")
        for name in ("img_size", "patch_size", "in_chans", "embed_dim", "window_size", "w_dim", "mlp_layer",
                     "cross_attention_heads", "attn_dim", "ffn_dim"):
            check_min(getattr(self, name), 1, name)
        grid, rem = divmod(self.img_size, self.patch_size)
        if rem or grid % 2 ** (NUM_STAGES - 1):
            raise ValueError(f"img_size / patch_size must be an integer divisible by {2 ** (NUM_STAGES - 1)} "
                             f"(three patch merges), got {self.img_size} / {self.patch_size}")
        for i, (dim, heads, depth) in enumerate(zip(self.stage_dims, self.num_heads, self.depths)):
            check_min(depth, 1, f"depths[{i}]")
            if dim % heads:
                raise ValueError(f"stage {i}: {dim} channels are not divisible by num_heads[{i}] = {heads}")
            side = self.stage_sides[i]
            window, _ = effective_window(side, self.window_size, self.window_size // 2)
            if side % window:
                raise ValueError(f"stage {i}: its {side}x{side} tokens cannot be tiled by {window}x{window} windows")
        if sum(self.row_split) != self.num_ws - 1 or min(self.row_split) < 1:
            raise ValueError(f"rows (coarse, mid, fine) must be >= 1 each and sum to num_ws - 1 = "
                             f"{self.num_ws - 1}, got {self.row_split}")
        if self.attn_dim % self.cross_attention_heads:
            raise ValueError(f"the attention width {self.attn_dim} (attention_dim, else w_dim) is not divisible by "
                             f"cross_attention_heads {self.cross_attention_heads}")
        if len(self.stage_list) != NUM_STAGES - 1 or list(self.stage_list) != sorted(self.stage_list):
            raise ValueError(f"stage_list needs {NUM_STAGES - 1} ascending steps, got {self.stage_list}")

    @property
    def stage_sides(self) -> tuple[int, ...]:
        """Tokens per side of each stage's input (released: 64, 32, 16, 8)."""
        grid = self.img_size // self.patch_size
        return tuple(grid // 2 ** i for i in range(NUM_STAGES))

    @property
    def stage_tokens(self) -> tuple[int, ...]:
        """Tokens of each stage's input (released: 4096, 1024, 256, 64)."""
        return tuple(side * side for side in self.stage_sides)

    @property
    def stage_dims(self) -> tuple[int, ...]:
        """Channels of each stage (released: 128, 256, 512, 1024)."""
        return tuple(self.embed_dim * 2 ** i for i in range(NUM_STAGES))

    @property
    def row_split(self) -> tuple[int, int, int]:
        """W+ delta rows ``(coarse, mid, fine)``."""
        if self.rows is not None:
            if len(self.rows) != 3:
                raise ValueError(f"rows must be (coarse, mid, fine), got {self.rows}")
            return self.rows  # type: ignore[return-value]
        return default_row_split(self.num_ws)

    @property
    def attn_dim(self) -> int:
        """Width of the cross-attention layers (released: ``w_dim``)."""
        return self.w_dim if self.attention_dim is None else self.attention_dim

    @property
    def ffn_dim(self) -> int:
        """Hidden width of the cross-attention FFN."""
        return 2 * self.attn_dim if self.cross_attention_ffn is None else self.cross_attention_ffn

    def swin_kwargs(self) -> dict[str, Any]:
        """Constructor kwargs of the Swin trunk."""
        return {
            "img_size": self.img_size, "patch_size": self.patch_size, "in_chans": self.in_chans,
            "embed_dim": self.embed_dim, "depths": self.depths, "num_heads": self.num_heads,
            "window_size": self.window_size, "mlp_ratio": self.mlp_ratio, "qkv_bias": self.qkv_bias,
            "drop_rate": self.drop_rate, "attn_drop_rate": self.attn_drop_rate,
            "drop_path_rate": self.drop_path_rate, "ape": self.ape, "patch_norm": self.patch_norm,
            "pretrained_window_sizes": self.pretrained_window_sizes,
        }


#: A small encoder for CPU training on the tiny generator (the ``warpgan_tiny`` preset's sizes): 64 px input,
#: 16 channels, one block per stage, 64-wide cross-attention (663k parameters).
TINY_GOAE = GOAEConfig(img_size=64, embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 4), window_size=4,
                       pretrained_window_sizes=(4, 4, 4, 2), attention_dim=64)


def mlp_mapper(in_dim: int, out_dim: int, layers: int) -> nn.Sequential:
    """``layers - 1`` times ``Linear(in, in) + LeakyReLU(0.01)``, then ``Linear(in, out)`` (GOAE's mapper)."""
    check_min(layers, 1, "mlp_layer")
    modules: list[nn.Module] = []
    for _ in range(layers - 1):
        modules += [nn.Linear(in_dim, in_dim), nn.LeakyReLU()]
    modules.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*modules)


class CrossAttention(nn.Module):
    """GOAE's (DETR-style) cross-attention layer without a final norm.

    ``out = t + FFN(t)`` with ``t = LayerNorm(query + MHA(query, memory, memory))`` (LayerNorm without affine,
    FFN = Linear -> ReLU -> Linear, dropout after the attention, inside and after the FFN).

    Call: ``layer(query (N, Q, d), memory (N, K, d)) -> (N, Q, d)``.
    """

    def __init__(self, d_model: int, num_heads: int, ffn_dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.linear1 = nn.Linear(d_model, ffn_dim)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(ffn_dim, d_model)
        self.norm = nn.LayerNorm(d_model, elementwise_affine=False)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(self, query: Tensor, memory: Tensor) -> Tensor:
        attended = self.multihead_attn(query, memory, memory, need_weights=False)[0]
        x = self.norm(query + self.dropout2(attended))
        return x + self.dropout3(self.linear2(self.dropout(F.relu(self.linear1(x)))))


@dataclass
class GOAEFeatures:
    """Everything :meth:`GOAEncoder.forward_features` computes (``B`` = batch, ``L_i`` / ``C_i`` of stage i).

    Attributes:
        ws: ``(B, num_ws, w_dim)`` W+ code before ``latent_avg``.
        x_base: ``(B, C_3, L_3)`` final-norm output, transposed.
        x_query: ``(B, C_3, L_3)`` last-stage input, transposed.
        x_coarse: ``(B, L_2, C_2)``; x_mid: ``(B, L_1, C_1)``; x_fine: ``(B, L_0, C_0)`` stage inputs.
        ws_base_1: ``(B, 1, w_dim)`` the base code before the repeat.
        ws_coarse, ws_mid, ws_fine: ``(B, rows, w_dim)`` cross-attention outputs (``None`` when the
            progressive stage has not switched them on).
    """

    ws: Tensor
    x_base: Tensor
    x_query: Tensor
    x_coarse: Tensor
    x_mid: Tensor
    x_fine: Tensor
    ws_base_1: Tensor
    ws_coarse: Tensor | None = None
    ws_mid: Tensor | None = None
    ws_fine: Tensor | None = None


class GOAEncoder(nn.Module):
    """GOAE W+ encoder: ``(N, 3, S, S)`` images in [-1, 1] (``S = config.img_size``, see :func:`goae_input`)
    -> ``(N, num_ws, w_dim)`` W+ codes before the average latent (see the module docstring).

    ``stage`` (0 = base only, 1 = + coarse, 2 = + mid, 3 = all deltas; default 3) gates the deltas as GOAE's
    progressive training does; it is not part of the state dict.
    """

    def __init__(self, config: GOAEConfig | None = None) -> None:
        super().__init__()
        self.config = config = GOAEConfig() if config is None else config
        self.stage = NUM_STAGES - 1
        L, C, w, a = config.stage_tokens, config.stage_dims, config.w_dim, config.attn_dim
        coarse, mid, fine = config.row_split
        depth = config.mlp_layer
        self.swin_model = SwinTransformerV2(**config.swin_kwargs())
        self.mapper_base_spatial = mlp_mapper(L[3], 1, depth)
        self.mapper_base_channel = mlp_mapper(C[3], w, depth)
        self.mapper_query_spatial_coarse = mlp_mapper(L[3], coarse, depth)
        self.mapper_query_channel_coarse = mlp_mapper(C[3], a, depth)
        self.mapper_query_spatial_mid = mlp_mapper(L[3], mid, depth)
        self.mapper_query_channel_mid = mlp_mapper(C[3], a, depth)
        self.mapper_query_spatial_fine = mlp_mapper(L[3], fine, depth)
        self.mapper_query_channel_fine = mlp_mapper(C[3], a, depth)
        self.mapper_coarse_channel = nn.Sequential(nn.Linear(C[2], a), nn.LeakyReLU())
        self.mapper_mid_channel = nn.Sequential(nn.Linear(C[1], a), nn.LeakyReLU())
        # Released widths 128 -> 256 -> 512: the hidden width is read as the next stage's channels (2 * C_0).
        self.mapper_fine_channel = nn.Sequential(nn.Linear(C[0], C[1]), nn.LeakyReLU(), nn.Linear(C[1], a),
                                                 nn.LeakyReLU())
        # Released 256 -> 512 -> 1024 and 1024 -> 2048 -> 4096: the hidden width is twice the input tokens.
        self.mapper_coarse_to_mid_spatial = nn.Sequential(nn.Linear(L[2], 2 * L[2]), nn.LeakyReLU(),
                                                          nn.Linear(2 * L[2], L[1]), nn.LeakyReLU())
        self.mapper_mid_to_fine_spatial = nn.Sequential(nn.Linear(L[1], 2 * L[1]), nn.LeakyReLU(),
                                                        nn.Linear(2 * L[1], L[0]), nn.LeakyReLU())
        heads, ffn, drop = config.cross_attention_heads, config.ffn_dim, config.cross_attention_dropout
        self.cross_att_coarse = CrossAttention(a, heads, ffn, drop)
        self.cross_att_mid = CrossAttention(a, heads, ffn, drop)
        self.cross_att_fine = CrossAttention(a, heads, ffn, drop)
        self.delta_projection: nn.Module = nn.Identity() if a == w else nn.Linear(a, w)

    def set_stage(self, step: int) -> int:
        """Progressive stage for training ``step`` with ``config.stage_list = (s1, s2, s3)``; returns it.

        ``step < s1`` -> 0, ``< s2`` -> 1, ``<= s3`` -> 2, ``> s3`` -> 3. Kept from the official code: at
        exactly ``s3`` the stage is still 2.
        """
        steps = self.config.stage_list
        self.stage = NUM_STAGES - 1 if step > steps[-1] else min(bisect.bisect_right(steps, step), len(steps) - 1)
        logger.info("GOAE progressive stage %d at step %d", self.stage, step)
        return self.stage

    def _check_input(self, x: object) -> Tensor:
        S = self.config.img_size
        check_shape(x, f"N {self.config.in_chans} {S} {S}", "GOAEncoder input",
                    note=" of images in [-1, 1] (resize with goae_input)")
        assert isinstance(x, Tensor)
        check_floating(x, "GOAEncoder input", hint=" (convert uint8 images with goae_input)")
        return x

    @staticmethod
    def _pooled_code(x: Tensor, spatial: nn.Module, channel: nn.Module) -> Tensor:
        """``(B, C, L) -> (B, rows, w_dim)``: token MLP plus the token max, then the channel MLP."""
        return channel(spatial(x).transpose(1, 2) + x.amax(dim=2, keepdim=True).transpose(1, 2))

    def forward_features(self, x: Tensor) -> GOAEFeatures:
        """``x (N, 3, S, S)`` -> :class:`GOAEFeatures` (the W+ code and every intermediate)."""
        x = self._check_input(x)
        final, (x_fine, x_mid, x_coarse, query) = self.swin_model(x)
        x_base, x_query = final.transpose(1, 2), query.transpose(1, 2)
        ws_base_1 = self._pooled_code(x_base, self.mapper_base_spatial, self.mapper_base_channel)
        out = GOAEFeatures(ws=ws_base_1.repeat(1, self.config.num_ws, 1), x_base=x_base, x_query=x_query,
                           x_coarse=x_coarse, x_mid=x_mid, x_fine=x_fine, ws_base_1=ws_base_1)
        if self.stage == 0:
            return out
        deltas = [torch.zeros_like(ws_base_1)]
        kv = self.mapper_coarse_channel(x_coarse)
        q = self._pooled_code(x_query, self.mapper_query_spatial_coarse, self.mapper_query_channel_coarse)
        out.ws_coarse = self.delta_projection(self.cross_att_coarse(q, kv))
        deltas.append(out.ws_coarse)
        if self.stage >= 2:
            kv = self.mapper_mid_channel(x_mid) + self.mapper_coarse_to_mid_spatial(kv.transpose(1, 2)).transpose(1, 2)
            q = self._pooled_code(x_query, self.mapper_query_spatial_mid, self.mapper_query_channel_mid)
            out.ws_mid = self.delta_projection(self.cross_att_mid(q, kv))
            deltas.append(out.ws_mid)
        if self.stage >= 3:
            kv = self.mapper_fine_channel(x_fine) + self.mapper_mid_to_fine_spatial(kv.transpose(1, 2)).transpose(1, 2)
            q = self._pooled_code(x_query, self.mapper_query_spatial_fine, self.mapper_query_channel_fine)
            out.ws_fine = self.delta_projection(self.cross_att_fine(q, kv))
            deltas.append(out.ws_fine)
        delta = torch.cat(deltas, dim=1)
        missing = self.config.num_ws - delta.shape[1]
        if missing:
            delta = torch.cat([delta, delta.new_zeros(delta.shape[0], missing, delta.shape[2])], dim=1)
        out.ws = out.ws + delta
        return out

    def forward(self, x: Tensor) -> Tensor:
        """``x (N, 3, S, S)`` in [-1, 1] -> ``ws (N, num_ws, w_dim)`` before ``latent_avg``."""
        return self.forward_features(x).ws


def goae_input(images: Tensor, size: int = 256) -> Tensor:
    """WarpGAN's encoder input: ``(N, 3, H, W)`` uint8 or [-1, 1] float images -> ``(N, 3, size, size)`` float32.

    As ``datasets/dataset_vanilla.py`` with torchvision 0.12: uint8 -> ``/255`` in float64 -> ``(x - 0.5) / 0.5``
    -> bilinear resize (``align_corners=False``, ``antialias=False``) in float64 -> float32. Float images are
    taken as already normalised and resized the same way (float64, then float32). For 512 -> 256 the resize
    is exactly a 2x2 average pool.

    Example:
        >>> goae_input(torch.full((1, 3, 4, 4), 255, dtype=torch.uint8), size=2)
        tensor([[[[1., 1.],
                  [1., 1.]],
        <BLANKLINE>
                 [[1., 1.],
                  [1., 1.]],
        <BLANKLINE>
                 [[1., 1.],
                  [1., 1.]]]])
    """
    check_tensor(images, "images")
    check_shape(images, "N 3 H W", "images", note=" (uint8 in [0, 255] or float in [-1, 1])")
    check_min(size, 1, "size")
    if images.numel() == 0:
        raise ValueError(f"images is empty, shape {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        x = (images.to(torch.float64) / 255.0 - 0.5) / 0.5
    elif images.is_floating_point():
        check_range(images, "images", (-1.0, 1.0), tolerance=1e-6)
        x = images.to(torch.float64)
    else:
        raise ValueError(f"images must be uint8 or floating point, got {images.dtype}")
    if tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    return x.to(torch.float32)


class GOAECheckpointError(ValueError):
    """A GOAE checkpoint whose entries do not match the encoder (the message names the offending keys)."""


def _unwrap(checkpoint: Mapping[str, Any]) -> Mapping[str, Any]:
    for key in WRAPPER_KEYS:
        if key in checkpoint and isinstance(checkpoint[key], Mapping):
            return checkpoint[key]
    return checkpoint


def _strip_prefix(state: Mapping[str, Any]) -> Mapping[str, Any]:
    for prefix in STRIP_PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            return {k[len(prefix):]: v for k, v in state.items()}
    return state


def _listed(title: str, names: Sequence[str], limit: int = 8) -> str:
    more = f" ... (+{len(names) - limit} more)" if len(names) > limit else ""
    return f"{title} ({len(names)}): {', '.join(names[:limit])}{more}"


def load_goae_state(module: nn.Module, checkpoint: Mapping[str, Any]) -> None:
    """Strictly load a GOAE encoder state into ``module`` (a :class:`GOAEncoder`).

    ``checkpoint``: the raw state dict (GOAE's ``encoder_FFHQ.pt``, WarpGAN's ``goae_FFHQ_ori.pt``) or a
    training checkpoint holding it under ``psp_state_dict`` (WarpGAN's ``gan_encoder.pt``); a prefix
    (``psp_encoder.``, ``encoder.``, ``module.``) carried by every key is stripped. The computed Swin buffers
    are taken from the checkpoint.

    Raises:
        GOAECheckpointError: missing, unexpected or mis-shaped entries (all named in the message).
    """
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f"checkpoint must be a mapping (a state dict or {{'psp_state_dict': ...}}), "
                        f"got {type(checkpoint).__name__}")
    state = _strip_prefix(_unwrap(checkpoint))
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [f"{k} {tuple(v.shape)} != {tuple(expected[k].shape)}" for k, v in state.items()
                  if k in expected and isinstance(v, Tensor) and v.shape != expected[k].shape]
    problems = [_listed(title, names) for title, names in
                (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)) if names]
    if problems:
        raise GOAECheckpointError("GOAE checkpoint does not match the encoder: " + "; ".join(problems))
    module.load_state_dict(dict(state), strict=True)
