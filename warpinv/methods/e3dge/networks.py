"""E3DGE encoder networks: a pSp-style global W+ encoder and a pixel-aligned local U-Net.

Clean-room implementations written from the architecture descriptions of pSp (Richardson et al., CVPR 2021,
``GradualStyleEncoder``) and E3DGE (Lan et al., CVPR 2023); no code is copied from either repository.

- :class:`GlobalEncoder`: image -> W+ offsets ``(N, num_ws, w_dim)`` added to ``w_avg`` by the method.
  Its trunk is IR-SE50 (the ArcFace backbone, :class:`warpinv.metrics.irse50.IRSEBlock` units) and can be
  initialised from ``model_ir_se50.pth`` with :meth:`GlobalEncoder.load_arcface_trunk`, as pSp does.
- :class:`LocalEncoder`: ``(image, residual)`` stack -> pixel-aligned feature map at the input resolution.

Both networks start as exact no-ops (zero deltas, zero features): their last layers are zero-initialised.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from math import gcd

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from warpinv.checks import check_floating, check_min, check_shape
from warpinv.metrics.irse50 import IRSEBlock

__all__ = [
    "GlobalEncoder",
    "LocalEncoder",
    "StyleHead",
    "count_parameters",
    "IRSE50_STAGES",
    "TINY_STAGES",
    "TINY_INPUT_SIZE",
]

logger = logging.getLogger(__name__)

#: ``(channels, units)`` of the four IR-SE50 stages (pSp's ``ir_se`` 50-layer trunk).
IRSE50_STAGES: tuple[tuple[int, int], ...] = ((64, 3), (128, 4), (256, 14), (512, 3))
#: A small trunk for CPU training on tiny generators (SE reduction 16 needs >= 16 channels per stage).
TINY_STAGES: tuple[tuple[int, int], ...] = ((16, 1), (32, 1), (64, 1), (128, 1))
#: Input side of the tiny preset.
TINY_INPUT_SIZE = 64

_SE_REDUCTION = 16
_TRUNK_PREFIXES = ("input_layer.", "body.")


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter entries of ``module`` (only those with ``requires_grad`` when ``trainable_only``).

    Example:
        >>> count_parameters(nn.Linear(3, 2))
        8
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def resize_square(x: Tensor, size: int) -> Tensor:
    """``(N, C, H, W) -> (N, C, size, size)``: area (box) pooling when shrinking, bilinear otherwise.

    Area pooling is pSp's ``face_pool`` (an exact box filter for integer factors such as 512 -> 256); a mixed
    or enlarging resize uses bilinear interpolation with antialiasing.
    """
    height, width = x.shape[-2:]
    if height == size and width == size:
        return x
    if height >= size and width >= size:
        return F.adaptive_avg_pool2d(x, (size, size))
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def _halvings(size: int) -> int:
    """How many stride-2 convolutions (padding 1, so ``ceil(s / 2)``) bring ``size`` down to 1."""
    count = 0
    while size > 1:
        size = (size + 1) // 2
        count += 1
    return count


def _check_input(x: object, channels: int, name: str) -> Tensor:
    check_shape(x, f"N {channels} H W", name)
    assert isinstance(x, Tensor)
    check_floating(x, name)
    if x.shape[0] == 0 or x.shape[-1] == 0 or x.shape[-2] == 0:
        raise ValueError(f"{name} is empty, shape {tuple(x.shape)}")
    return x


class StyleHead(nn.Module):
    """One pSp ``map2style`` head: stride-2 Conv3x3 + LeakyReLU(0.01) down to 1x1, then Linear to ``w_dim``.

    Shapes: ``(N, channels, S, S) -> (N, w_dim)``; ``ceil(log2 S)`` convolutions (none when ``S == 1``).
    The linear layer is zero-initialised, so an untrained head returns zeros.
    """

    def __init__(self, channels: int, spatial: int, w_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(_halvings(spatial)):
            layers += [nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.LeakyReLU(0.01)]
        self.convs = nn.Sequential(*layers)
        self.linear = nn.Linear(channels, w_dim)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(self.convs(x).flatten(1))


def _check_stages(stages: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    stages = tuple((int(c), int(u)) for c, u in stages)
    if len(stages) != 4:
        raise ValueError(f"stages must hold 4 (channels, units) pairs (the pyramid reads stages 2-4), got {stages}")
    for channels, units in stages:
        if channels < _SE_REDUCTION or units < 1:
            raise ValueError(f"every stage needs channels >= {_SE_REDUCTION} (squeeze-excite reduction) and "
                             f"units >= 1, got {stages}")
    return stages


class GlobalEncoder(nn.Module):
    """pSp-style W+ encoder (``GradualStyleEncoder``) on an IR-SE trunk; predicts offsets from ``w_avg``.

    Architecture (input side ``S = input_size``, ``C = stages[-1].channels``):

    - resize: images not ``S x S`` are area-pooled (shrinking) or bilinearly resized to ``S x S``;
    - ``input_layer``: Conv3x3(3 -> stages[0].channels, no bias) -> BatchNorm2d -> PReLU (IR-SE50's);
    - ``body``: the :class:`~warpinv.metrics.irse50.IRSEBlock` units of all stages in one flat
      ``nn.Sequential``; the first unit of each stage has stride 2 (``S -> S/2 -> S/4 -> S/8 -> S/16``).
      ``c1``, ``c2``, ``c3`` are the outputs of stages 2, 3 and 4 (``S/4``, ``S/8``, ``S/16``);
    - pyramid: ``p2 = up(c3) + latlayer1(c2)``, ``p1 = up(p2) + latlayer2(c1)``; ``up`` is bilinear
      (``align_corners=True``) to the lateral's size and the laterals are Conv1x1 to ``C`` channels;
    - ``styles``: one :class:`StyleHead` per W+ layer; layers ``[0, coarse)`` read ``c3``,
      ``[coarse, coarse + middle)`` read ``p2`` and the rest read ``p1``. Every head's linear layer is
      zero-initialised, so an untrained encoder predicts exactly zero offsets.

    With the default IR-SE50 stages the trunk's state-dict names equal IR-SE50's ``input_layer.*`` and
    ``body.<i>.*``, so :meth:`load_arcface_trunk` can copy ``model_ir_se50.pth`` into it.

    Args:
        num_ws: W+ layers of the generator (14 for EG3D at 512).
        w_dim: width of a W vector (512).
        stages: ``(channels, units)`` of the four trunk stages; channels >= 16.
        coarse_layers: W+ layers read from ``c3``.
        middle_layers: W+ layers read from ``p2``.
        input_size: the side images are resized to (>= 16).

    Call: ``encoder(images)`` with ``(N, 3, H, W)`` images in [-1, 1] -> ``(N, num_ws, w_dim)`` offsets.

    Example:
        >>> encoder = GlobalEncoder(num_ws=14, w_dim=512, stages=TINY_STAGES, input_size=64)
        >>> deltas = encoder(torch.zeros(2, 3, 128, 128))
        >>> deltas.shape, bool((deltas == 0).all())
        (torch.Size([2, 14, 512]), True)
    """

    def __init__(self, num_ws: int, w_dim: int, stages: Sequence[tuple[int, int]] = IRSE50_STAGES,
                 coarse_layers: int = 3, middle_layers: int = 4, input_size: int = 256) -> None:
        super().__init__()
        check_min(num_ws, 1, "num_ws")
        check_min(w_dim, 1, "w_dim")
        check_min(coarse_layers, 0, "coarse_layers")
        check_min(middle_layers, 0, "middle_layers")
        check_min(input_size, 16, "input_size")
        if coarse_layers + middle_layers > num_ws:
            raise ValueError(f"coarse_layers + middle_layers must be <= num_ws, got {coarse_layers} + "
                             f"{middle_layers} > {num_ws}")
        self.stages = _check_stages(stages)
        self.num_ws, self.w_dim, self.input_size = num_ws, w_dim, input_size
        self.coarse_layers, self.middle_layers = coarse_layers, middle_layers

        first, last = self.stages[0][0], self.stages[-1][0]
        self.input_layer = nn.Sequential(
            nn.Conv2d(3, first, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(first),
            nn.PReLU(first),
        )
        self.body, self._stage_ends = self._build_body(first)
        self.latlayer1 = nn.Conv2d(self.stages[2][0], last, kernel_size=1)
        self.latlayer2 = nn.Conv2d(self.stages[1][0], last, kernel_size=1)
        sizes = self._pyramid_sizes()
        self.styles = nn.ModuleList(StyleHead(last, sizes[self._level(i)], w_dim) for i in range(num_ws))

    def _build_body(self, in_channels: int) -> tuple[nn.Sequential, tuple[int, ...]]:
        units: list[nn.Module] = []
        ends: list[int] = []
        for channels, count in self.stages:
            units.append(IRSEBlock(in_channels, channels, stride=2))
            units.extend(IRSEBlock(channels, channels, stride=1) for _ in range(count - 1))
            in_channels = channels
            ends.append(len(units))
        return nn.Sequential(*units), tuple(ends)

    def _pyramid_sizes(self) -> tuple[int, int, int]:
        """Spatial sides of ``(c3, p2, p1)``: the input side halved (ceil) 4, 3 and 2 times."""
        size, sides = self.input_size, []
        for _ in range(len(self.stages)):
            size = (size + 1) // 2
            sides.append(size)
        return sides[3], sides[2], sides[1]

    def _level(self, index: int) -> int:
        """Pyramid level of W+ layer ``index``: 0 = ``c3``, 1 = ``p2``, 2 = ``p1``."""
        if index < self.coarse_layers:
            return 0
        return 1 if index < self.coarse_layers + self.middle_layers else 2

    def forward(self, images: Tensor) -> Tensor:
        """``(N, 3, H, W)`` images in [-1, 1] -> ``(N, num_ws, w_dim)`` W+ offsets."""
        images = _check_input(images, 3, "GlobalEncoder images")
        x = self.input_layer(resize_square(images, self.input_size))
        features: list[Tensor] = []
        for count, unit in enumerate(self.body, start=1):
            x = unit(x)
            if count in self._stage_ends:
                features.append(x)
        c1, c2, c3 = features[1], features[2], features[3]
        p2 = self._upsample_add(c3, self.latlayer1(c2))
        p1 = self._upsample_add(p2, self.latlayer2(c1))
        levels = (c3, p2, p1)
        return torch.stack([head(levels[self._level(i)]) for i, head in enumerate(self.styles)], dim=1)

    @staticmethod
    def _upsample_add(x: Tensor, lateral: Tensor) -> Tensor:
        return F.interpolate(x, size=lateral.shape[-2:], mode="bilinear", align_corners=True) + lateral

    @torch.no_grad()
    def load_arcface_trunk(self, state: Mapping[str, Tensor]) -> list[str]:
        """Copy IR-SE50 ArcFace weights into ``input_layer`` and ``body`` (pSp's encoder initialisation).

        Args:
            state: an IR-SE50 state dict (layout of :class:`warpinv.metrics.irse50.IRSE50`, e.g. from
                :func:`warpinv.metrics.identity.load_irse50_state_dict`); ``output_layer.*`` is ignored.

        Returns:
            The names copied, in this encoder's state-dict order (385 for a full IR-SE50 state dict).
            Trunk entries absent from ``state`` or of another shape are skipped with a warning.

        Raises:
            ValueError: this encoder's stages are not IR-SE50's ``((64, 3), (128, 4), (256, 14), (512, 3))``.
        """
        if self.stages != IRSE50_STAGES:
            raise ValueError(f"load_arcface_trunk needs the IR-SE50 stages {IRSE50_STAGES}, this encoder has "
                             f"{self.stages}")
        loaded: list[str] = []
        skipped: list[str] = []
        for name, tensor in self.state_dict(keep_vars=True).items():
            if not name.startswith(_TRUNK_PREFIXES):
                continue
            source = state.get(name)
            if source is None or source.shape != tensor.shape:
                skipped.append(name)
                continue
            tensor.copy_(source.to(device=tensor.device, dtype=tensor.dtype))
            loaded.append(name)
        if skipped:
            logger.warning("load_arcface_trunk: %d trunk tensors missing or of another shape, kept as initialised "
                           "(first: %s)", len(skipped), skipped[0])
        logger.info("load_arcface_trunk: copied %d IR-SE50 tensors", len(loaded))
        return loaded


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(gcd(8, channels), channels)


class LocalEncoder(nn.Module):
    """Pixel-aligned local branch: a small U-Net from an image stack to a feature map at the input size.

    Architecture (``S = input_size``, level widths ``w_k = min(base * 2**k, 8 * base)``):

    - resize: inputs not ``S x S`` are area-pooled (shrinking) or bilinearly resized to ``S x S``;
    - ``down[k]`` for ``k < depth``: Conv3x3 stride 2 -> GroupNorm (``gcd(8, w_k)`` groups; none when
      ``norm=False``) -> LeakyReLU(0.2); ``S / 2**(k+1)`` pixels, ``w_k`` channels;
    - ``up[k]`` for ``k = depth-1 .. 0``: bilinear upsample x2 (to the skip's size) -> concat the skip
      (``down[k-1]``'s output, or the resized input for ``k = 0``) -> Conv3x3 -> LeakyReLU(0.2), to
      ``w_{k-1}`` channels (``base`` for ``k = 0``);
    - ``out``: Conv3x3(base -> out_channels) at ``S x S``, zero-initialised (weight and bias), so an untrained
      branch outputs exactly zero features.

    Args:
        in_channels: channels of the input stack (6: image and residual).
        out_channels: feature channels.
        base_channels: width of the first level.
        depth: number of stride-2 levels (``2**depth <= input_size``).
        input_size: the side inputs are resized to and the output side.
        norm: GroupNorm in the down blocks.

    Call: ``encoder(x)`` with ``(N, in_channels, H, W)`` -> ``(N, out_channels, input_size, input_size)``.

    Example:
        >>> local = LocalEncoder(in_channels=6, out_channels=32, base_channels=16, depth=3, input_size=64)
        >>> features = local(torch.zeros(2, 6, 32, 32))
        >>> features.shape, bool((features == 0).all())
        (torch.Size([2, 32, 64, 64]), True)
    """

    def __init__(self, in_channels: int = 6, out_channels: int = 32, base_channels: int = 32, depth: int = 3,
                 input_size: int = 256, *, norm: bool = True) -> None:
        super().__init__()
        for value, name in ((in_channels, "in_channels"), (out_channels, "out_channels"),
                            (base_channels, "base_channels"), (depth, "depth")):
            check_min(value, 1, name)
        if input_size < 2**depth:
            raise ValueError(f"input_size must be >= 2**depth = {2**depth}, got {input_size}")
        self.in_channels, self.out_channels, self.input_size = in_channels, out_channels, input_size
        widths = [min(base_channels * 2**k, 8 * base_channels) for k in range(depth)]
        skips = [in_channels, *widths[:-1]]  # what up[k] concatenates
        targets = [base_channels, *widths[:-1]]  # what up[k] outputs
        self.down = nn.ModuleList(
            nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1),
                          _group_norm(cout) if norm else nn.Identity(), nn.LeakyReLU(0.2))
            for cin, cout in zip(skips, widths))
        self.up = nn.ModuleList(
            nn.Sequential(nn.Conv2d(widths[k] + skips[k], targets[k], 3, padding=1), nn.LeakyReLU(0.2))
            for k in range(depth))
        self.out = nn.Conv2d(base_channels, out_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in_channels, H, W)`` -> ``(N, out_channels, input_size, input_size)`` features."""
        x = resize_square(_check_input(x, self.in_channels, "LocalEncoder input"), self.input_size)
        skips = [x]
        for block in self.down:
            skips.append(block(skips[-1]))
        y = skips.pop()
        for block in reversed(self.up):
            skip = skips.pop()
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = block(torch.cat([y, skip], dim=1))
        return self.out(y)
