"""The StyleGAN2 pieces EG3D builds on: mapping network, modulated synthesis layers and blocks.

Parameter and buffer names, shapes and registration order equal the official
``training/networks_stylegan2.py`` so official state dicts load with ``strict=True``.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from warpinv.backbone.ops import ACTIVATION_GAIN, bias_act, modulated_conv2d, setup_filter, upsample2d

FusedModconv = bool | str | None


def normalize_2nd_moment(x: Tensor, eps: float = 1e-8) -> Tensor:
    """Scale each row to unit mean square. ``x``: ``(N, C)``."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def resolve_fused_modconv(fused_modconv: FusedModconv, default: FusedModconv, training: bool) -> bool:
    """The official rule: ``None`` takes the default; ``'inference_only'`` means fused in eval()."""
    value = default if fused_modconv is None else fused_modconv
    if value == "inference_only":
        return not training
    return bool(value)


class FullyConnectedLayer(nn.Module):
    """Equalised-learning-rate linear layer: ``act(x @ (W * lr/sqrt(in)).T + b * lr)``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: Tensor) -> Tensor:
        """``x``: ``(N, in)`` -> ``(N, out)``."""
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


class MappingNetwork(nn.Module):
    """z (and camera c) to w, broadcast to ``num_ws`` copies, with truncation toward ``w_avg``."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int | None,
        num_layers: int = 8,
        embed_features: int | None = None,
        layer_features: int | None = None,
        activation: str = "lrelu",
        lr_multiplier: float = 0.01,
        w_avg_beta: float | None = 0.998,
    ) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        embed_features = w_dim if embed_features is None else embed_features
        layer_features = w_dim if layer_features is None else layer_features
        if c_dim == 0:
            embed_features = 0
        if z_dim == 0 and c_dim == 0:
            raise ValueError("the mapping network needs z_dim > 0 or c_dim > 0")
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(features[idx], features[idx + 1], activation=activation,
                                        lr_multiplier=lr_multiplier)
            setattr(self, f"fc{idx}", layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(
        self,
        z: Tensor,
        c: Tensor,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
    ) -> Tensor:
        """``z``: ``(N, z_dim)``, ``c``: ``(N, c_dim)`` -> ``(N, num_ws, w_dim)`` (or ``(N, w_dim)``)."""
        parts = []
        if self.z_dim > 0:
            parts.append(normalize_2nd_moment(z.to(torch.float32)))
        if self.c_dim > 0:
            parts.append(normalize_2nd_moment(self.embed(c.to(torch.float32))))
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if update_emas and self.w_avg_beta is not None:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            x = self.truncate(x, truncation_psi, truncation_cutoff)
        return x

    def truncate(self, ws: Tensor, psi: float, cutoff: int | None = None) -> Tensor:
        """``w_avg + psi * (w - w_avg)`` on layers ``[0, cutoff)`` (all when ``cutoff`` is None).

        ``torch.lerp`` is used on purpose: it switches formula at weight 0.5, and the official code
        calls it, so results stay bit-identical.
        """
        if self.num_ws is None or cutoff is None:
            return self.w_avg.lerp(ws, psi)
        ws = ws.clone()
        ws[:, :cutoff] = self.w_avg.lerp(ws[:, :cutoff], psi)
        return ws


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution (optionally 2x upsampling), noise, bias and leaky ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        kernel_size: int = 3,
        up: int = 1,
        use_noise: bool = True,
        activation: str = "lrelu",
        resample_filter: tuple[float, ...] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.padding = kernel_size // 2
        self.act_gain = ACTIVATION_GAIN[activation]
        self.channels_last = channels_last
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(
        self, x: Tensor, w: Tensor, noise_mode: str = "random", fused_modconv: bool = True, gain: float = 1.0
    ) -> Tensor:
        """``x``: ``(N, I, R/up, R/up)``, ``w``: ``(N, w_dim)`` -> ``(N, O, R, R)``.

        ``noise_mode``: ``'random'`` (fresh noise, the official default), ``'const'`` (the stored
        ``noise_const``) or ``'none'``.
        """
        if noise_mode not in ("random", "const", "none"):
            raise ValueError(f"noise_mode must be 'random', 'const' or 'none', got {noise_mode!r}")
        styles = self.affine(w)
        noise = None
        if self.use_noise and noise_mode == "random":
            noise = (torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device)
                     * self.noise_strength)
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, fused_modconv=fused_modconv)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=self.act_gain * gain, clamp=clamp,
                        inplace=True)

    def extra_repr(self) -> str:
        return f"in={self.in_channels}, out={self.out_channels}, resolution={self.resolution}, up={self.up}"


class ToRGBLayer(nn.Module):
    """Modulated 1x1 convolution without demodulation, to the block's image channels."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        kernel_size: int = 1,
        conv_clamp: float | None = None,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.conv_clamp = conv_clamp
        self.channels_last = channels_last
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: Tensor, w: Tensor, fused_modconv: bool = True) -> Tensor:
        """``x``: ``(N, I, R, R)``, ``w``: ``(N, w_dim)`` -> ``(N, out, R, R)``."""
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp, inplace=True)


class SynthesisBlock(nn.Module):
    """One resolution of the 'skip' synthesis network: [const | up-conv], conv, toRGB + upsampled skip.

    ``up=False`` gives EG3D's ``SynthesisBlockNoUp`` (used by the 2X/4X super-resolution modules):
    the first convolution keeps the resolution and the skip image is not upsampled.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        is_last: bool,
        architecture: str = "skip",
        resample_filter: tuple[float, ...] = (1, 3, 3, 1),
        conv_clamp: float | None = 256,
        use_fp16: bool = False,
        fp16_channels_last: bool = False,
        fused_modconv_default: FusedModconv = True,
        up: bool = True,
        **layer_kwargs: Any,
    ) -> None:
        if architecture != "skip":
            raise NotImplementedError(f"EG3D uses the 'skip' architecture only, got {architecture!r}")
        super().__init__()
        self.in_channels = in_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        self.fused_modconv_default = fused_modconv_default
        self.upsamples = up
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.num_conv = 0
        self.num_torgb = 0
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim=w_dim, resolution=resolution,
                                        up=2 if up else 1, resample_filter=resample_filter,
                                        conv_clamp=conv_clamp, channels_last=self.channels_last, **layer_kwargs)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim=w_dim, resolution=resolution,
                                    conv_clamp=conv_clamp, channels_last=self.channels_last, **layer_kwargs)
        self.num_conv += 1
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp,
                                channels_last=self.channels_last)
        self.num_torgb += 1

    def compute_dtype(self, device: torch.device, force_fp32: bool) -> torch.dtype:
        """fp16 only for fp16 blocks on CUDA, as the official code (which forces fp32 off-CUDA)."""
        if self.use_fp16 and not force_fp32 and device.type == "cuda":
            return torch.float16
        return torch.float32

    def forward(
        self,
        x: Tensor | None,
        img: Tensor | None,
        ws: Tensor,
        force_fp32: bool = False,
        fused_modconv: FusedModconv = None,
        update_emas: bool = False,
        **layer_kwargs: Any,
    ) -> tuple[Tensor, Tensor]:
        """``ws``: ``(N, num_conv + num_torgb, w_dim)``. Returns features and the skip image (fp32)."""
        del update_emas
        w_iter = iter(ws.unbind(dim=1))
        dtype = self.compute_dtype(ws.device, force_fp32)
        memory_format = (torch.channels_last if self.channels_last and dtype == torch.float16
                         else torch.contiguous_format)
        fused = resolve_fused_modconv(fused_modconv, self.fused_modconv_default, self.training)
        if self.in_channels == 0:
            x = self.const.to(dtype=dtype, memory_format=memory_format).unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
        else:
            if x is None or x.shape[1:] != (self.in_channels, self.resolution // (2 if self.upsamples else 1),
                                            self.resolution // (2 if self.upsamples else 1)):
                raise ValueError(f"block {self.resolution}: unexpected input {None if x is None else tuple(x.shape)}")
            x = x.to(dtype=dtype, memory_format=memory_format)
            x = self.conv0(x, next(w_iter), fused_modconv=fused, **layer_kwargs)
        x = self.conv1(x, next(w_iter), fused_modconv=fused, **layer_kwargs)
        if img is not None and self.upsamples:
            img = upsample2d(img, self.resample_filter)
        y = self.torgb(x, next(w_iter), fused_modconv=fused).to(dtype=torch.float32,
                                                                  memory_format=torch.contiguous_format)
        if img is None:
            img = y
        elif self.upsamples:
            img = img.add_(y)  # a fresh upsample output: safe in place
        else:
            img = img + y  # the caller's tensor: never modified here (see SuperResolution.forward_with_raw)
        return x, img

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, architecture={self.architecture}, up={self.upsamples}"


class SynthesisNetwork(nn.Module):
    """Blocks ``b4 ... b{img_resolution}``; the final skip image is the output (EG3D: the tri-planes)."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 4,
        **block_kwargs: Any,
    ) -> None:
        super().__init__()
        log2 = int(math.log2(img_resolution))
        if img_resolution < 4 or 2**log2 != img_resolution:
            raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_fp16_res = num_fp16_res
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        self.num_ws = 0
        for res in self.block_resolutions:
            block = SynthesisBlock(channels[res // 2] if res > 4 else 0, channels[res], w_dim=w_dim,
                                   resolution=res, img_channels=img_channels, is_last=res == img_resolution,
                                   use_fp16=res >= fp16_resolution, **block_kwargs)
            self.num_ws += block.num_conv
            if res == img_resolution:
                self.num_ws += block.num_torgb
            setattr(self, f"b{res}", block)

    def blocks(self) -> list[SynthesisBlock]:
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def forward(self, ws: Tensor, **block_kwargs: Any) -> Tensor:
        """``ws``: ``(N, num_ws, w_dim)`` -> image ``(N, img_channels, R, R)``.

        Block k reads ``num_conv + num_torgb`` consecutive ws starting at its first conv, so each
        toRGB shares its w with the next block's first convolution.
        """
        ws = ws.to(torch.float32)
        x = img = None
        w_idx = 0
        for block in self.blocks():
            cur = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            w_idx += block.num_conv
            x, img = block(x, img, cur, **block_kwargs)
        return img


class StyleGAN2Backbone(nn.Module):
    """StyleGAN2 ``Generator``: the tri-plane backbone of EG3D (``synthesis`` and ``mapping``)."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        mapping_kwargs: dict[str, Any] | None = None,
        **synthesis_kwargs: Any,
    ) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                                          **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws,
                                      **dict(mapping_kwargs or {}))

    def forward(self, z: Tensor, c: Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                update_emas: bool = False, **synthesis_kwargs: Any) -> Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        return self.synthesis(ws, update_emas=update_emas, **synthesis_kwargs)
