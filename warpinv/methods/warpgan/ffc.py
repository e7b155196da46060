"""Fast Fourier convolution (FFC) blocks of LaMa, plain and style-modulated, as WarpGAN's SVINet uses them.

An FFC splits its channels into a *local* part (ordinary convolutions) and a *global* part (a spectral transform
whose 1x1 convolutions act on the 2D real FFT, so one layer sees the whole image). A feature is a pair
``(local, global)``, local first; ``global`` is ``None`` where a split has no global channels (the official code
uses the integer ``0`` there). The global share is ``int(C * ratio)``, the local share the rest.

Two families:

- plain (encoder, ``CondEncoder``): ``nn.Conv2d(bias=False, padding_mode='reflect')``, BatchNorm, ReLU;
  the Fourier unit is ``rfft2(ortho) -> [re, im] interleaved per channel -> 1x1 conv -> BN -> ReLU -> irfft2``;
- style-modulated (SVINet's resnet blocks): every convolution (``l2l``, ``l2g``, ``g2l``, the spectral
  ``conv1`` / ``conv2`` and the Fourier unit's conv) is a :class:`StyleConv`: a StyleGAN2 modulated convolution
  with **zero** padding ``k // 2`` (the block's reflect padding, stride and dilation are ignored by the official
  code), bias and leaky ReLU (0.2, gain sqrt(2)); the Fourier unit then has no BatchNorm.

Class names are ours; attribute names equal the official ones (``convl2l``, ``bn_l``, ``fu.conv_layer``, ...), so
state dicts of the official ``FFC_BN_ACT`` / ``FFCResnetBlock_Style`` / ``ModulatedConv2d`` load unchanged.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from warpinv.backbone.ops import bias_act, modulated_conv2d, setup_filter
from warpinv.backbone.stylegan2 import FullyConnectedLayer

#: ``(local, global)`` feature pair; ``global`` is ``None`` when the split has no global channels.
FeaturePair = tuple[Tensor, Tensor | None]


def split_channels(channels: int, ratio_global: float) -> tuple[int, int]:
    """``(local, global)`` channel counts of an FFC split: global ``int(C * ratio)``, local the rest.

    Example:
        >>> split_channels(512, 0.75), split_channels(7, 0)
        ((128, 384), (7, 0))
    """
    global_channels = int(channels * ratio_global)
    return channels - global_channels, global_channels


def as_pair(x: Tensor | FeaturePair) -> FeaturePair:
    """A tensor becomes ``(x, None)`` (all channels local); a pair is returned unchanged."""
    return x if isinstance(x, tuple) else (x, None)


def concat_pair(x: FeaturePair) -> Tensor:
    """``cat([local, global], dim=1)``, or ``local`` alone when there is no global part (``ConcatTupleLayer``).

    Example:
        >>> concat_pair((torch.zeros(1, 2, 4, 4), torch.ones(1, 3, 4, 4))).shape
        torch.Size([1, 5, 4, 4])
    """
    local, glob = x
    return local if glob is None else torch.cat([local, glob], dim=1)


def _sum_terms(*terms: Tensor | None) -> Tensor | None:
    """Sum of the terms that exist (an absent FFC path contributes nothing), ``None`` if none does."""
    present = [t for t in terms if t is not None]
    if not present:
        return None
    out = present[0]
    for t in present[1:]:
        out = out + t
    return out


def to_spectrum(x: Tensor) -> Tensor:
    """Real 2D FFT (ortho) with real and imaginary parts interleaved per channel.

    Args:
        x: ``(N, C, H, W)``.

    Returns:
        ``(N, 2C, H, W // 2 + 1)``, channel ``2c`` = Re, ``2c + 1`` = Im of input channel ``c``.
    """
    spec = torch.fft.rfftn(x, dim=(-2, -1), norm="ortho")
    n, c, h, wf = spec.shape
    return torch.view_as_real(spec).permute(0, 1, 4, 2, 3).reshape(n, 2 * c, h, wf)


def from_spectrum(y: Tensor, size: tuple[int, int]) -> Tensor:
    """Inverse of :func:`to_spectrum`: ``(N, 2C, H, W // 2 + 1)`` -> ``(N, C, H, W)`` with ``(H, W) = size``."""
    n, c2, h, wf = y.shape
    y = y.reshape(n, c2 // 2, 2, h, wf)
    return torch.fft.irfftn(torch.complex(y[:, :, 0], y[:, :, 1]), s=size, dim=(-2, -1), norm="ortho")


# --- plain FFC (encoder and CondEncoder) --------------------------------------------------------------------------


class FourierUnit(nn.Module):
    """Global 1x1 convolution in the frequency domain: FFT -> conv -> BN -> ReLU -> inverse FFT.

    Args:
        in_channels, out_channels: spatial channels (the conv sees twice as many: re and im).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv_layer = nn.Conv2d(2 * in_channels, 2 * out_channels, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(2 * out_channels)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        """``(N, I, H, W)`` -> ``(N, O, H, W)``."""
        spec = self.relu(self.bn(self.conv_layer(to_spectrum(x))))
        return from_spectrum(spec, (x.shape[-2], x.shape[-1]))


class SpectralTransform(nn.Module):
    """FFC global-to-global path: ``conv2(y + fu(y))`` with ``y = ReLU(BN(conv1(x)))``, 1x1 convs.

    ``stride=2`` average-pools first (LaMa); the local Fourier unit (``enable_lfu``) is not supported: no
    released WarpGAN / LaMa configuration used here enables it.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        self.downsample = nn.AvgPool2d(kernel_size=2, stride=2) if stride == 2 else nn.Identity()
        hidden = out_channels // 2
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, hidden, kernel_size=1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU()
        )
        self.fu = FourierUnit(hidden, hidden)
        self.conv2 = nn.Conv2d(hidden, out_channels, kernel_size=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, I, H, W)`` -> ``(N, O, H / stride, W / stride)``."""
        y = self.conv1(self.downsample(x))
        return self.conv2(y + self.fu(y))


class FourierConv(nn.Module):
    """LaMa's ``FFC``: four paths between local and global channel groups.

    ``local_out = l2l(local) + g2l(global)``, ``global_out = l2g(local) + g2g(global)``; a path whose input or
    output group is empty does not exist (``None`` here, ``nn.Identity`` officially, neither has state).
    ``l2l``, ``l2g``, ``g2l`` are ``kernel_size`` convs with reflect padding and no bias; ``g2g`` is a
    :class:`SpectralTransform`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        ratio_gin: float,
        ratio_gout: float,
        stride: int = 1,
        padding: int = 0,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        in_l, in_g = split_channels(in_channels, ratio_gin)
        out_l, out_g = split_channels(out_channels, ratio_gout)
        self.ratio_gin = ratio_gin
        self.ratio_gout = ratio_gout
        self.global_in_num = in_g

        def spatial(cin: int, cout: int) -> nn.Conv2d | None:
            if cin == 0 or cout == 0:
                return None
            return nn.Conv2d(cin, cout, kernel_size, stride, padding, bias=False, padding_mode="reflect")

        self.convl2l = spatial(in_l, out_l)
        self.convl2g = spatial(in_l, out_g)
        self.convg2l = spatial(in_g, out_l)
        self.convg2g = SpectralTransform(in_g, out_g, stride) if in_g and out_g else None

    def forward(self, x: Tensor | FeaturePair) -> FeaturePair:
        """``(N, C_l, H, W)`` / ``(N, C_g, H, W)`` pair (or one tensor, all local) -> output pair."""
        x_l, x_g = as_pair(x)
        out_l = _sum_terms(_apply(self.convl2l, x_l), _apply(self.convg2l, x_g)) if self.ratio_gout != 1 else None
        out_g = _sum_terms(_apply(self.convl2g, x_l), _apply(self.convg2g, x_g)) if self.ratio_gout != 0 else None
        if out_l is None:
            raise ValueError("an FFC needs a local output; ratio_gout == 1 is not supported")
        return out_l, out_g


def _apply(layer: nn.Module | None, x: Tensor | None) -> Tensor | None:
    return None if layer is None or x is None else layer(x)


class FourierConvNormAct(nn.Module):
    """LaMa's ``FFC_BN_ACT``: :class:`FourierConv`, then BatchNorm + ReLU on each output group.

    Args:
        in_channels, out_channels, kernel_size, ratio_gin, ratio_gout, stride, padding: as :class:`FourierConv`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        ratio_gin: float,
        ratio_gout: float,
        stride: int = 1,
        padding: int = 0,
    ) -> None:
        super().__init__()
        self.ffc = FourierConv(in_channels, out_channels, kernel_size, ratio_gin, ratio_gout, stride, padding)
        out_l, out_g = split_channels(out_channels, ratio_gout)
        self.bn_l = nn.BatchNorm2d(out_l) if ratio_gout != 1 else nn.Identity()
        self.bn_g = nn.BatchNorm2d(out_g) if ratio_gout != 0 else nn.Identity()
        self.act_l = nn.ReLU()
        self.act_g = nn.ReLU()

    def forward(self, x: Tensor | FeaturePair) -> FeaturePair:
        """Input pair (or tensor) -> ``(N, out_l, H', W')``, ``(N, out_g, H', W')`` or ``None``."""
        x_l, x_g = self.ffc(x)
        x_l = self.act_l(self.bn_l(x_l))
        x_g = None if x_g is None else self.act_g(self.bn_g(x_g))
        return x_l, x_g


# --- style-modulated convolutions --------------------------------------------------------------------------------


class ModulatedConv(nn.Module):
    """StyleGAN2 modulated convolution with its own style affine (official ``ModulatedConv2d``).

    ``style = affine(w)`` (``FullyConnectedLayer(w_dim, in_channels)``, bias initialised to 1);
    ``w_eff = weight * style / sqrt(I * k * k)``, demodulated with ``rsqrt(sum(w_eff^2) + 1e-8)`` when
    ``demodulate``; zero padding ``k // 2``. ``up=2`` upsamples with the FIR ``[1, 3, 3, 1]`` (gain 4).

    ``weight`` is stored as ``(1, O, I, k, k)`` as in the official checkpoints; ``resample_filter`` is a
    persistent buffer because released checkpoints contain it.

    Example:
        >>> conv = ModulatedConv(4, 6, kernel_size=3, w_dim=8)
        >>> conv(torch.randn(2, 4, 5, 5), torch.randn(2, 8)).shape
        torch.Size([2, 6, 5, 5])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        w_dim: int = 512,
        demodulate: bool = True,
        up: int = 1,
    ) -> None:
        super().__init__()
        if up not in (1, 2):
            raise ValueError(f"up must be 1 or 2, got {up}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.demodulate = demodulate
        self.up = up
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.weight = nn.Parameter(torch.randn([1, out_channels, in_channels, kernel_size, kernel_size]))
        self.register_buffer("resample_filter", setup_filter([1, 3, 3, 1]))
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        """``x``: ``(N, I, H, W)``, ``w``: ``(N, w_dim)`` -> ``(N, O, H * up, W * up)``."""
        styles = self.affine(w) * self.weight_gain
        weight = self.weight[0]
        if self.up == 2:
            # The official up=2 conv keeps conv2d_resample's default flip_weight=True (correlation), unlike
            # EG3D's synthesis layers; ops.conv2d_up2 implements the EG3D case, so hand it the flipped kernel.
            weight = weight.flip([2, 3])
        return modulated_conv2d(
            x, weight, styles, up=self.up, padding=self.padding, resample_filter=self.resample_filter,
            demodulate=self.demodulate,
        )

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
                f"kernel_size={self.kernel_size}, up={self.up}, demodulate={self.demodulate}")


class StyleConv(nn.Module):
    """Modulated convolution + bias + leaky ReLU (slope 0.2, gain sqrt(2)); official ``StyleConv`` (no noise).

    Example:
        >>> StyleConv(4, 6, kernel_size=1, w_dim=8)(torch.randn(2, 4, 3, 3), torch.randn(2, 8)).shape
        torch.Size([2, 6, 3, 3])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int = 512, up: int = 1) -> None:
        super().__init__()
        self.conv = ModulatedConv(in_channels, out_channels, kernel_size, w_dim=w_dim, demodulate=True, up=up)
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        """``x``: ``(N, I, H, W)``, ``w``: ``(N, w_dim)`` -> ``(N, O, H * up, W * up)``."""
        return bias_act(self.conv(x, w), self.bias, act="lrelu")


class StyleFourierUnit(nn.Module):
    """:class:`FourierUnit` whose frequency-domain conv is a 1x1 :class:`StyleConv` (no BatchNorm / ReLU)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int = 512) -> None:
        super().__init__()
        self.conv_layer = StyleConv(2 * in_channels, 2 * out_channels, kernel_size=1, w_dim=w_dim)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        """``(N, I, H, W)``, ``w`` ``(N, w_dim)`` -> ``(N, O, H, W)``."""
        spec = self.conv_layer(to_spectrum(x), w)
        return from_spectrum(spec, (x.shape[-2], x.shape[-1]))


class StyleSpectralTransform(nn.Module):
    """:class:`SpectralTransform` with 1x1 :class:`StyleConv` layers: ``conv2(y + fu(y))``, ``y = conv1(x)``."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int = 512) -> None:
        super().__init__()
        hidden = out_channels // 2
        self.conv1 = StyleConv(in_channels, hidden, kernel_size=1, w_dim=w_dim)
        self.fu = StyleFourierUnit(hidden, hidden, w_dim=w_dim)
        self.conv2 = StyleConv(hidden, out_channels, kernel_size=1, w_dim=w_dim)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        """``(N, I, H, W)``, ``w`` ``(N, w_dim)`` -> ``(N, O, H, W)``."""
        y = self.conv1(x, w)
        return self.conv2(y + self.fu(y, w), w)


class StyleFourierConv(nn.Module):
    """Official ``FFC_Style``: :class:`FourierConv` with every conv a :class:`StyleConv` (zero padding k // 2)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, ratio_gin: float, ratio_gout: float,
        w_dim: int = 512,
    ) -> None:
        super().__init__()
        in_l, in_g = split_channels(in_channels, ratio_gin)
        out_l, out_g = split_channels(out_channels, ratio_gout)
        self.ratio_gin = ratio_gin
        self.ratio_gout = ratio_gout
        self.global_in_num = in_g

        def spatial(cin: int, cout: int) -> StyleConv | None:
            return StyleConv(cin, cout, kernel_size, w_dim=w_dim) if cin and cout else None

        self.convl2l = spatial(in_l, out_l)
        self.convl2g = spatial(in_l, out_g)
        self.convg2l = spatial(in_g, out_l)
        self.convg2g = StyleSpectralTransform(in_g, out_g, w_dim=w_dim) if in_g and out_g else None

    def forward(self, x: Tensor | FeaturePair, w: Tensor) -> FeaturePair:
        """Input pair (or tensor), ``w`` ``(N, w_dim)`` -> output pair, same spatial size."""
        x_l, x_g = as_pair(x)
        out_l = _sum_terms(_style(self.convl2l, x_l, w), _style(self.convg2l, x_g, w)) if self.ratio_gout != 1 else None
        out_g = _sum_terms(_style(self.convl2g, x_l, w), _style(self.convg2g, x_g, w)) if self.ratio_gout != 0 else None
        if out_l is None:
            raise ValueError("an FFC needs a local output; ratio_gout == 1 is not supported")
        return out_l, out_g


def _style(layer: nn.Module | None, x: Tensor | None, w: Tensor) -> Tensor | None:
    return None if layer is None or x is None else layer(x, w)


class StyleFourierConvNormAct(nn.Module):
    """Official ``FFC_BN_ACT_Style``: :class:`StyleFourierConv`, then BatchNorm + ReLU per group."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, ratio_gin: float, ratio_gout: float,
        w_dim: int = 512,
    ) -> None:
        super().__init__()
        self.ffc = StyleFourierConv(in_channels, out_channels, kernel_size, ratio_gin, ratio_gout, w_dim=w_dim)
        out_l, out_g = split_channels(out_channels, ratio_gout)
        self.bn_l = nn.BatchNorm2d(out_l) if ratio_gout != 1 else nn.Identity()
        self.bn_g = nn.BatchNorm2d(out_g) if ratio_gout != 0 else nn.Identity()
        self.act_l = nn.ReLU()
        self.act_g = nn.ReLU()

    def forward(self, x: Tensor | FeaturePair, w: Tensor) -> FeaturePair:
        """Input pair (or tensor), ``w`` ``(N, w_dim)`` -> output pair."""
        x_l, x_g = self.ffc(x, w)
        x_l = self.act_l(self.bn_l(x_l))
        x_g = None if x_g is None else self.act_g(self.bn_g(x_g))
        return x_l, x_g


class StyleFourierResBlock(nn.Module):
    """Official ``FFCResnetBlock_Style``: two 3x3 :class:`StyleFourierConvNormAct` plus the identity, per group.

    Example:
        >>> block = StyleFourierResBlock(8, ratio_gin=0.75, ratio_gout=0.75, w_dim=16).eval()
        >>> x_l, x_g = block((torch.randn(1, 2, 4, 4), torch.randn(1, 6, 4, 4)), torch.randn(1, 16))
        >>> tuple(x_l.shape), tuple(x_g.shape)
        ((1, 2, 4, 4), (1, 6, 4, 4))
    """

    def __init__(self, dim: int, ratio_gin: float, ratio_gout: float, w_dim: int = 512) -> None:
        super().__init__()
        self.conv1 = StyleFourierConvNormAct(dim, dim, 3, ratio_gin, ratio_gout, w_dim=w_dim)
        self.conv2 = StyleFourierConvNormAct(dim, dim, 3, ratio_gin, ratio_gout, w_dim=w_dim)

    def forward(self, x: Tensor | FeaturePair, w: Tensor) -> FeaturePair:
        """``(local, global)`` pair, ``w`` ``(N, w_dim)`` (one W+ row for both convs) -> pair of the same shapes."""
        id_l, id_g = as_pair(x)
        y_l, y_g = self.conv2(self.conv1((id_l, id_g), w), w)
        out_g = _sum_terms(id_g, y_g)
        return id_l + y_l, out_g


__all__ = [
    "FeaturePair",
    "FourierConv",
    "FourierConvNormAct",
    "FourierUnit",
    "ModulatedConv",
    "SpectralTransform",
    "StyleConv",
    "StyleFourierConv",
    "StyleFourierConvNormAct",
    "StyleFourierResBlock",
    "StyleFourierUnit",
    "StyleSpectralTransform",
    "as_pair",
    "concat_pair",
    "from_spectrum",
    "split_channels",
    "to_spectrum",
]
