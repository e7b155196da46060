"""WarpGAN's SVINet (style-based view inpainting network): the official ``FFCStyleResNetGenerator``.

Layout (``configs/train_inpainting.yaml``; ``C = ngf``):

- input ``(N, 14, H, W)`` = two branches of 7 channels, ``[hybrid-filled warp (3), EG3D novel render (3),
  soft hole mask (1)]`` for the original view, then the same for the mirrored warp; the branches are split with
  ``torch.split(inp, 7)`` (the yaml's ``input_nc=4`` is ignored by the official constructor);
- ``model_down`` (shared by both branches): reflect pad 3 + 7x7 FFC, then ``n_downsampling`` stride-2 3x3 FFCs;
  the last one already splits its output ``int(C * 0.75)`` global / the rest local;
- ``cond`` (:class:`CondEncoder`): ``x_ori * (1 + scale) + shift`` with ``scale`` / ``shift`` computed by two
  plain FFC stacks from ``cat(x_ori, x_mirror)`` per group;
- ``model_res``: ``n_blocks`` style-modulated FFC resnet blocks, all driven by the W+ row ``ws[:, -5]``;
- ``model_up``: ``n_downsampling`` StyleGAN2-like decoder blocks (3x3 up-conv, 3x3 conv, toRGB) driven by
  ``ws_up = cat(ws[:, -5:], ws[:, -1:] x 2)``, block ``i`` taking rows ``2i, 2i+1, 2i+2`` of ``ws_up``; their
  toRGB skip image is computed but does not reach the output;
- ``model_out``: reflect pad 3 + 7x7 conv + sigmoid. The network returns values in ``(0, 1)``; WarpGAN's
  inference maps them with ``* 2 - 1`` outside the network.

State-dict names, shapes and order equal the official module's, so ``torch.load(ckpt)['inpaintor_state_dict']``
loads strictly (:func:`load_svinet_state`). ``use_condition=False`` is **ours** (an ablation, not in the
official code): the mirrored half of the input is ignored and the condition encoder is skipped, ``x_ori`` going
straight to the resnet blocks; the encoder's weights stay in the module so state dicts keep the official layout.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

import torch
from torch import Tensor, nn

from warpinv.backbone.ops import bias_act, setup_filter, upsample2d
from warpinv.methods.warpgan.ffc import (
    FeaturePair,
    FourierConvNormAct,
    ModulatedConv,
    StyleConv,
    StyleFourierResBlock,
    concat_pair,
)

logger = logging.getLogger(__name__)

OutAct = Literal["sigmoid", "tanh", "none"]
#: Key of the generator's state dict in WarpGAN's released inpainting checkpoint.
CHECKPOINT_KEY = "inpaintor_state_dict"
#: Channels of the decoder blocks' toRGB skip image (hard-wired to 3 officially).
IMG_CHANNELS = 3
#: W+ rows read by SVINet counted from the end: the resnet blocks use ``ws[:, -5]``, the decoder ``ws[:, -5:]``.
W_ROWS_FROM_END = 5
#: Rows of ``ws_up`` (the last 5 rows plus the last row twice more); block ``i`` reads rows ``2i .. 2i+2``.
W_UP_ROWS = W_ROWS_FROM_END + 2


@dataclass(frozen=True)
class SVINetConfig:
    """Hyper-parameters of :class:`SVINet`; defaults = the released ``configs/train_inpainting.yaml`` build.

    Attributes:
        ngf: channels after the first conv; level ``i`` of the encoder has ``min(max_features, ngf * 2**i)``.
        n_downsampling: stride-2 encoder levels = decoder blocks (at most 3: the decoder reads 7 W+ rows).
        n_blocks: style-modulated FFC resnet blocks at the bottleneck.
        output_nc: output channels.
        max_features: channel cap of every level.
        w_dim: width of a W+ row (the official ``style_dim``, hard-wired 512).
        branch_channels: input channels per branch (7 with ``cat_inv``: image, inversion, mask; 4 without).
        init_ratios, downsample_ratios, resnet_ratios: FFC ``(ratio_gin, ratio_gout)`` of the first conv, the
            downsampling convs (the last one's ``ratio_gout`` is replaced by ``resnet_ratios[0]``) and the
            resnet blocks / condition encoder.
        out_act: output activation (``add_out_act``).
        use_condition: ours, not official: ``False`` drops the mirrored branch and the condition encoder.
    """

    ngf: int = 64
    n_downsampling: int = 3
    n_blocks: int = 9
    output_nc: int = 3
    max_features: int = 1024
    w_dim: int = 512
    branch_channels: int = 7
    init_ratios: tuple[float, float] = (0.0, 0.0)
    downsample_ratios: tuple[float, float] = (0.0, 0.0)
    resnet_ratios: tuple[float, float] = (0.75, 0.75)
    out_act: OutAct = "sigmoid"
    use_condition: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.n_downsampling <= W_UP_ROWS // 2:
            raise ValueError(f"n_downsampling must be in 1..{W_UP_ROWS // 2} (the decoder reads {W_UP_ROWS} "
                             f"W+ rows, 2 per block + 1), got {self.n_downsampling}")
        for name in ("ngf", "output_nc", "max_features", "w_dim", "branch_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {self.n_blocks}")
        for name in ("init_ratios", "downsample_ratios", "resnet_ratios"):
            ratios = getattr(self, name)
            if len(ratios) != 2 or not all(0 <= r < 1 for r in ratios):
                raise ValueError(f"{name} must be (ratio_gin, ratio_gout) in [0, 1), got {ratios}")
        if self.init_ratios[0] != 0:
            raise ValueError("the first conv sees a plain image: init ratio_gin must be 0")
        if self.out_act not in ("sigmoid", "tanh", "none"):
            raise ValueError(f"out_act must be 'sigmoid', 'tanh' or 'none', got {self.out_act!r}")

    @property
    def encoder_channels(self) -> list[int]:
        """Channels after the first conv and after each downsampling level (``[64, 128, 256, 512]`` released)."""
        return [min(self.max_features, self.ngf * 2**i) for i in range(self.n_downsampling + 1)]

    @property
    def bottleneck_channels(self) -> int:
        """Channels of the resnet blocks (local + global)."""
        return self.encoder_channels[-1]

    @property
    def decoder_channels(self) -> list[int]:
        """Output channels of each decoder block (``[256, 128, 64]`` released)."""
        return [min(self.max_features, int(self.ngf * 2 ** (self.n_downsampling - i) / 2))
                for i in range(self.n_downsampling)]

    @classmethod
    def from_official(cls, kwargs: Mapping[str, Any], **overrides: Any) -> SVINetConfig:
        """The config of the official ``FFCStyleResNetGenerator(**kwargs)`` (the yaml's ``generator`` section).

        Supported: the released build's keys and values (plus ``kind='ffc_style_resnet'``,
        ``max_features``, ``padding_type='reflect'``, ``spatial_transform_layers=None``, ``out_ffc=False``).
        Unknown keys and unsupported values (another ``input_mirror``, ``refine=True``, LFU, ...) raise
        ``ValueError`` naming them. ``overrides`` set fields that have no official kwarg (``w_dim``,
        ``use_condition``).

        Example:
            >>> SVINetConfig.from_official(RELEASED_GENERATOR_KWARGS) == SVINetConfig()
            True
            >>> SVINetConfig.from_official({**RELEASED_GENERATOR_KWARGS, "ngf": 8, "n_blocks": 2}).bottleneck_channels
            64
        """
        return cls(**_config_fields_from_official(kwargs), **overrides)


#: The ``generator`` section of the released ``configs/train_inpainting.yaml`` (``infer.yaml`` has the same).
RELEASED_GENERATOR_KWARGS: Mapping[str, Any] = MappingProxyType({
    "kind": "ffc_style_resnet", "input_nc": 4, "output_nc": 3, "ngf": 64, "n_downsampling": 3, "n_blocks": 9,
    "add_out_act": "sigmoid", "refine": False, "cat_inv": True, "input_mirror": "condition", "use_style": "style_res",
    "init_conv_kwargs": {"ratio_gin": 0, "ratio_gout": 0, "enable_lfu": False},
    "downsample_conv_kwargs": {"ratio_gin": 0, "ratio_gout": 0, "enable_lfu": False},
    "resnet_conv_kwargs": {"ratio_gin": 0.75, "ratio_gout": 0.75, "enable_lfu": False},
})
_OFFICIAL_KEYS = frozenset({
    "kind", "input_nc", "output_nc", "ngf", "n_downsampling", "n_blocks", "max_features", "add_out_act", "refine",
    "cat_inv", "input_mirror", "use_style", "init_conv_kwargs", "downsample_conv_kwargs", "resnet_conv_kwargs",
    "padding_type", "spatial_transform_layers", "out_ffc",
})
#: Official kwargs that only have one supported value: (key, official default, the value the port implements).
_FIXED_VALUES = (
    ("kind", "ffc_style_resnet", "ffc_style_resnet"),
    ("refine", False, False),
    ("input_mirror", None, "condition"),
    ("use_style", "style_res", "style_res"),
    ("padding_type", "reflect", "reflect"),
    ("spatial_transform_layers", None, None),
    ("out_ffc", False, False),
)
_CONV_KWARG_KEYS = frozenset({"ratio_gin", "ratio_gout", "enable_lfu"})


def _config_fields_from_official(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(kwargs) - _OFFICIAL_KEYS)
    if unknown:
        raise ValueError(f"unknown FFCStyleResNetGenerator kwargs {unknown}; supported: {sorted(_OFFICIAL_KEYS)}")
    for key, default, supported in _FIXED_VALUES:
        value = kwargs.get(key, default)
        if value != supported:
            raise ValueError(f"{key}={value!r} is not supported by the SVINet port (only {supported!r})")
    out: dict[str, Any] = {k: int(kwargs[k]) for k in ("output_nc", "ngf", "n_downsampling", "n_blocks",
                                                        "max_features") if k in kwargs}
    if "input_nc" in kwargs:
        logger.debug("official input_nc=%s ignored: the branch width follows cat_inv", kwargs["input_nc"])
    out["branch_channels"] = 7 if kwargs.get("cat_inv", True) else 4
    out["out_act"] = _out_act_from_official(kwargs.get("add_out_act", True))
    init = _ratios_from_official("init_conv_kwargs", kwargs.get("init_conv_kwargs", {}))
    down = _ratios_from_official("downsample_conv_kwargs", kwargs.get("downsample_conv_kwargs", {}))
    res = kwargs.get("resnet_conv_kwargs", {})
    out["init_ratios"], out["downsample_ratios"] = init, down
    out["resnet_ratios"] = _ratios_from_official("resnet_conv_kwargs", res) if res else (0.0, 0.0)
    return out


def _ratios_from_official(name: str, conv_kwargs: Mapping[str, Any]) -> tuple[float, float]:
    unknown = sorted(set(conv_kwargs) - _CONV_KWARG_KEYS)
    if unknown:
        raise ValueError(f"unknown keys {unknown} in {name}; supported: {sorted(_CONV_KWARG_KEYS)}")
    missing = sorted({"ratio_gin", "ratio_gout"} - set(conv_kwargs))
    if missing:
        raise ValueError(f"{name} must give {missing} (the official FFC_BN_ACT has no default for them)")
    if conv_kwargs.get("enable_lfu", True):  # the official FFC default is True
        raise ValueError(f"{name}: the local Fourier unit (enable_lfu=True, the official default) is not supported")
    return float(conv_kwargs["ratio_gin"]), float(conv_kwargs["ratio_gout"])


def _out_act_from_official(add_out_act: bool | str) -> OutAct:
    if add_out_act is True:
        return "tanh"
    if add_out_act is False:
        return "none"
    if add_out_act in ("sigmoid", "tanh"):
        return add_out_act  # type: ignore[return-value]
    raise ValueError(f"add_out_act={add_out_act!r} is not supported (True, False, 'sigmoid' or 'tanh')")


# --- building blocks --------------------------------------------------------------------------------------------


class CondEncoder(nn.Module):
    """Symmetry-prior fusion (official ``CondEncoder``): ``x_ori * (1 + scale) + shift`` per FFC group.

    ``scale`` and ``shift`` each come from two plain 3x3 FFCs (``2C -> C -> C``, BatchNorm + ReLU, so both are
    ``>= 0``) on the per-group channel concatenation ``(cat(ori_l, mirror_l), cat(ori_g, mirror_g))``.
    """

    def __init__(self, channels: int, ratio_gin: float, ratio_gout: float) -> None:
        super().__init__()
        self.condition_scale = self._branch(channels, ratio_gin, ratio_gout)
        self.condition_shift = self._branch(channels, ratio_gin, ratio_gout)

    @staticmethod
    def _branch(channels: int, ratio_gin: float, ratio_gout: float) -> nn.Sequential:
        return nn.Sequential(
            FourierConvNormAct(2 * channels, channels, 3, ratio_gin, ratio_gout, padding=1),
            FourierConvNormAct(channels, channels, 3, ratio_gin, ratio_gout, padding=1),
        )

    def scale_shift(self, x_ori: FeaturePair, x_mirror: FeaturePair) -> tuple[FeaturePair, FeaturePair]:
        """``(scale, shift)`` pairs, each of ``x_ori``'s shapes, from both branches' bottleneck features."""
        x_cond = tuple(None if a is None else torch.cat([a, b], dim=1) for a, b in zip(x_ori, x_mirror))
        return self.condition_scale(x_cond), self.condition_shift(x_cond)

    @staticmethod
    def fuse(x_ori: FeaturePair, scale: FeaturePair, shift: FeaturePair) -> FeaturePair:
        """``x_ori * (1 + scale) + shift`` per group."""
        fused = tuple(None if x is None else x * (1 + s) + t for x, s, t in zip(x_ori, scale, shift))
        return fused[0], fused[1]

    def forward(self, x_ori: FeaturePair, x_mirror: FeaturePair) -> FeaturePair:
        """``(N, C_l, h, w)`` / ``(N, C_g, h, w)`` pairs of both branches -> fused pair of the same shapes."""
        return self.fuse(x_ori, *self.scale_shift(x_ori, x_mirror))


class StyleToRGB(nn.Module):
    """Official ``ToRGB``: 1x1 modulated conv without demodulation + bias, plus the 2x-upsampled skip image."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int = 512) -> None:
        super().__init__()
        self.conv = ModulatedConv(in_channels, out_channels, kernel_size=1, w_dim=w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("resample_filter", setup_filter([1, 3, 3, 1]))

    def forward(self, x: Tensor, w: Tensor, skip: Tensor | None = None) -> Tensor:
        """``x`` ``(N, I, H, W)``, ``w`` ``(N, w_dim)``, ``skip`` ``(N, 3, H/2, W/2)`` or ``None`` -> ``(N, 3, H, W)``.

        Officially the skip image never reaches SVINet's output; it is kept for the fixture comparison.
        """
        out = bias_act(self.conv(x, w), self.bias)
        if skip is not None:
            if skip.shape != out.shape:
                skip = upsample2d(skip, self.resample_filter)
            out = out + skip
        return out


class StyleDecoderBlock(nn.Module):
    """Official ``DecBlock``: 3x3 style conv with 2x upsampling, 3x3 style conv, toRGB (rows 0, 1, 2 of ``w``)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int = 512) -> None:
        super().__init__()
        self.conv0 = StyleConv(in_channels, out_channels, kernel_size=3, w_dim=w_dim, up=2)
        self.conv1 = StyleConv(out_channels, out_channels, kernel_size=3, w_dim=w_dim)
        self.toRGB = StyleToRGB(out_channels, IMG_CHANNELS, w_dim=w_dim)

    def forward(self, x: Tensor, img: Tensor | None, w: Tensor) -> tuple[Tensor, Tensor]:
        """``x`` ``(N, I, H, W)``, ``img`` ``(N, 3, H, W)`` or ``None``, ``w`` ``(N, 3, w_dim)``.

        Returns:
            ``(N, O, 2H, 2W)`` features and the ``(N, 3, 2H, 2W)`` skip image.
        """
        x = self.conv0(x, w[:, 0])
        x = self.conv1(x, w[:, 1])
        return x, self.toRGB(x, w[:, 2], skip=img)


def _out_activation(kind: OutAct) -> nn.Module:
    return {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "none": nn.Identity}[kind]()


# --- the network ------------------------------------------------------------------------------------------------


class SVINet(nn.Module):
    """WarpGAN's inpainting generator ``G(inp, ws)``; see the module docstring for the layout.

    Example:
        >>> cfg = SVINetConfig(ngf=4, n_blocks=1, w_dim=16)
        >>> net = SVINet(cfg).eval()
        >>> net(torch.rand(1, 14, 32, 32), torch.randn(1, 14, 16)).shape
        torch.Size([1, 3, 32, 32])
    """

    def __init__(self, config: SVINetConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or SVINetConfig()
        #: Ours: ``False`` ignores the mirrored branch (may be toggled on a loaded network).
        self.use_condition = cfg.use_condition
        self.model_down = self._encoder(cfg)
        bottleneck = cfg.bottleneck_channels
        self.cond = CondEncoder(bottleneck, *cfg.resnet_ratios)
        self.model_res = nn.ModuleList(
            StyleFourierResBlock(bottleneck, *cfg.resnet_ratios, w_dim=cfg.w_dim) for _ in range(cfg.n_blocks)
        )
        in_channels = [bottleneck, *cfg.decoder_channels[:-1]]
        self.model_up = nn.ModuleList(
            StyleDecoderBlock(cin, cout, w_dim=cfg.w_dim) for cin, cout in zip(in_channels, cfg.decoder_channels)
        )
        self.model_out = nn.Sequential(
            nn.ReflectionPad2d(3),
            nn.Conv2d(cfg.decoder_channels[-1], cfg.output_nc, kernel_size=7),
            _out_activation(cfg.out_act),
        )

    @staticmethod
    def _encoder(cfg: SVINetConfig) -> nn.Sequential:
        channels = cfg.encoder_channels
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            FourierConvNormAct(cfg.branch_channels, channels[0], 7, *cfg.init_ratios),
        ]
        for i in range(cfg.n_downsampling):
            ratio_gin, ratio_gout = cfg.downsample_ratios
            if i == cfg.n_downsampling - 1:
                ratio_gout = cfg.resnet_ratios[0]  # the bottleneck split already happens here
            layers.append(FourierConvNormAct(channels[i], channels[i + 1], 3, ratio_gin, ratio_gout,
                                             stride=2, padding=1))
        return nn.Sequential(*layers)

    def forward(self, inp: Tensor, ws: Tensor) -> Tensor:
        """Inpainted image.

        Args:
            inp: ``(N, 2 * branch_channels, H, W)`` (``(N, 14, H, W)`` released): original branch, then mirrored
                branch; with ``use_condition=False`` ``(N, branch_channels, H, W)`` is accepted too.
            ws: ``(N, num_ws, w_dim)`` W+ codes, ``num_ws >= 5`` (only the last 5 rows are read).

        Returns:
            ``(N, output_nc, H, W)``, in ``(0, 1)`` with the released sigmoid head.
        """
        return self._run(inp, ws, None)

    def forward_with_features(self, inp: Tensor, ws: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """:meth:`forward` plus intermediates, named as the golden fixture names them.

        ``down_{ori,mirror}_{l,g}``, ``cond_{scale,shift}_{l,g}``, ``after_cond_{l,g}`` (when the condition
        branch is used), ``after_res0_{l,g}``, ``after_res_all_{l,g}``, ``after_concat``, ``after_up{i}``,
        ``up{i}_img`` (the unused toRGB skip image), ``out_logits`` (before the output activation).
        """
        features: dict[str, Tensor] = {}
        out = self._run(inp, ws, features)
        return out, features

    def _run(self, inp: Tensor, ws: Tensor, features: dict[str, Tensor] | None) -> Tensor:
        self._check_inputs(inp, ws)
        x = self._bottleneck(inp, features)
        w_res = ws[:, -W_ROWS_FROM_END]
        for i, block in enumerate(self.model_res):
            x = block(x, w_res)
            if i == 0:
                _record(features, "after_res0", x)
        _record(features, "after_res_all", x)
        h = concat_pair(x)
        _record(features, "after_concat", h)
        ws_up = torch.cat([ws[:, -W_ROWS_FROM_END:], ws[:, -1:].expand(-1, 2, -1)], dim=1)
        img = None
        for i, block in enumerate(self.model_up):
            h, img = block(h, img, ws_up[:, 2 * i: 2 * i + 3])
            _record(features, f"after_up{i}", h)
            _record(features, f"up{i}_img", img)
        head, act = self.model_out[:-1], self.model_out[-1]
        logits = head(h)
        _record(features, "out_logits", logits)
        return act(logits)

    def _bottleneck(self, inp: Tensor, features: dict[str, Tensor] | None) -> FeaturePair:
        """Shared encoder on each branch, then (unless ``use_condition`` is off) the condition encoder."""
        c = self.config.branch_channels
        x_ori = self.model_down(inp[:, :c])
        _record(features, "down_ori", x_ori)
        if not self.use_condition:
            return x_ori
        x_mirror = self.model_down(inp[:, c: 2 * c])
        _record(features, "down_mirror", x_mirror)
        scale, shift = self.cond.scale_shift(x_ori, x_mirror)
        _record(features, "cond_scale", scale)
        _record(features, "cond_shift", shift)
        x = self.cond.fuse(x_ori, scale, shift)
        _record(features, "after_cond", x)
        return x

    def _check_inputs(self, inp: Tensor, ws: Tensor) -> None:
        c = self.config.branch_channels
        allowed = (2 * c,) if self.use_condition else (c, 2 * c)
        if inp.ndim != 4 or inp.shape[1] not in allowed:
            raise ValueError(f"inp must be (N, {' or '.join(map(str, allowed))}, H, W), got {tuple(inp.shape)}")
        if ws.ndim != 3 or ws.shape[1] < W_ROWS_FROM_END or ws.shape[2] != self.config.w_dim:
            raise ValueError(f"ws must be (N, num_ws >= {W_ROWS_FROM_END}, {self.config.w_dim}), got {tuple(ws.shape)}")
        if ws.shape[0] != inp.shape[0]:
            raise ValueError(f"batch sizes differ: inp {inp.shape[0]}, ws {ws.shape[0]}")


def _record(features: dict[str, Tensor] | None, name: str, value: Tensor | FeaturePair) -> None:
    if features is None:
        return
    if isinstance(value, tuple):
        features[f"{name}_l"] = value[0]
        if value[1] is not None:
            features[f"{name}_g"] = value[1]
    else:
        features[name] = value


def load_svinet_state(module: nn.Module, checkpoint: Mapping[str, Any]) -> None:
    """Strictly load an SVINet state dict, raw or wrapped as the released checkpoint (``inpaintor_state_dict``).

    Raises:
        KeyError: naming the missing and unexpected keys when the layouts differ.
    """
    state = checkpoint[CHECKPOINT_KEY] if CHECKPOINT_KEY in checkpoint else checkpoint
    expected = set(module.state_dict())
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise KeyError(f"SVINet state dict does not match: missing {len(missing)} {missing[:20]}, "
                       f"unexpected {len(unexpected)} {unexpected[:20]}")
    module.load_state_dict(state, strict=True)


__all__ = [
    "CHECKPOINT_KEY",
    "CondEncoder",
    "RELEASED_GENERATOR_KWARGS",
    "SVINet",
    "SVINetConfig",
    "StyleDecoderBlock",
    "StyleToRGB",
    "load_svinet_state",
]
