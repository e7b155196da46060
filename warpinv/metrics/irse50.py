"""IR-SE50: the ArcFace face-recognition backbone behind the pSp/e4e ``IDLoss`` (``model_ir_se50.pth``).

A clean-room re-implementation of the network used as ``Backbone(input_size=112, num_layers=50,
mode='ir_se', drop_ratio=0.6, affine=True)`` in pSp (originally TreB1eN/InsightFace_Pytorch). Module
names, state-dict key names and their order equal the published checkpoint, so
``IRSE50().load_state_dict(torch.load("model_ir_se50.pth", weights_only=True), strict=True)`` works.

Structure (input ``(N, 3, 112, 112)`` in [-1, 1], output ``(N, 512)`` of unit l2 norm):

- ``input_layer``: Conv3x3(3->64, no bias) -> BatchNorm2d -> PReLU.
- ``body``: 24 ``IRSEBlock`` units in four stages of (3, 4, 14, 3) units with (64, 128, 256, 512)
  channels; the first unit of each stage has stride 2 (112 -> 56 -> 28 -> 14 -> 7).
- ``output_layer``: BatchNorm2d -> Dropout(0.6) -> Flatten -> Linear(512*7*7 -> 512) -> BatchNorm1d.
- The embedding is divided by its l2 norm.

Registration order is ``input_layer``, ``output_layer``, ``body`` (as in the original), which fixes the
state-dict order.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from warpinv.checks import check_shape

__all__ = ["IRSE50", "IRSEBlock", "SqueezeExcite", "STAGES", "EMBEDDING_DIM", "INPUT_SIZE"]

#: (in_channels, out_channels, units) of the four stages of IR-SE50.
STAGES: tuple[tuple[int, int, int], ...] = ((64, 64, 3), (64, 128, 4), (128, 256, 14), (256, 512, 3))
EMBEDDING_DIM = 512
INPUT_SIZE = 112
_SE_REDUCTION = 16
_DROP_RATIO = 0.6


class SqueezeExcite(nn.Module):
    """Channel attention: global average -> 1x1 conv (C -> C/16) -> ReLU -> 1x1 conv -> sigmoid -> scale.

    Shapes: ``(N, C, H, W) -> (N, C, H, W)``. Parameters ``fc1.weight`` ``(C/16, C, 1, 1)`` and
    ``fc2.weight`` ``(C, C/16, 1, 1)``, both without bias.
    """

    def __init__(self, channels: int, reduction: int = _SE_REDUCTION) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, channels // reduction, kernel_size=1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(channels // reduction, channels, kernel_size=1, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        gate = self.sigmoid(self.fc2(self.relu(self.fc1(self.avg_pool(x)))))
        return x * gate


class IRSEBlock(nn.Module):
    """One ``bottleneck_IR_SE`` unit: ``res_layer(x) + shortcut_layer(x)``, no final activation.

    ``res_layer`` = BN(in) -> Conv3x3(in->out, stride 1) -> PReLU -> Conv3x3(out->out, stride) -> BN -> SE.
    ``shortcut_layer`` = MaxPool2d(1, stride) (a strided subsample) when ``in == out``, else
    Conv1x1(in->out, stride, no bias) -> BN.

    Shapes: ``(N, in, H, W) -> (N, out, ceil(H/stride), ceil(W/stride))``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.shortcut_layer = self._shortcut(in_channels, out_channels, stride)
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, out_channels, 3, stride=1, padding=1, bias=False),
            nn.PReLU(out_channels),
            nn.Conv2d(out_channels, out_channels, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            SqueezeExcite(out_channels),
        )

    @staticmethod
    def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
        if in_channels == out_channels:
            return nn.MaxPool2d(kernel_size=1, stride=stride)
        return nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


def _body() -> nn.Sequential:
    units: list[nn.Module] = []
    for in_channels, out_channels, count in STAGES:
        units.append(IRSEBlock(in_channels, out_channels, stride=2))
        units.extend(IRSEBlock(out_channels, out_channels, stride=1) for _ in range(count - 1))
    return nn.Sequential(*units)


class IRSE50(nn.Module):
    """ArcFace IR-SE50 embedding network (43,824,064 float parameters and statistics, 397 state-dict keys).

    Call ``.eval()`` before use: BatchNorm must use its running statistics and Dropout must be off.

    Args (of ``forward``):
        x: ``(N, 3, 112, 112)`` face crops in [-1, 1] (see ``warpinv.metrics.identity.arcface_preprocess``).

    Returns:
        ``(N, 512)`` embeddings with unit l2 norm.

    Example:
        >>> net = IRSE50().eval()
        >>> len(net.state_dict())
        397
    """

    def __init__(self) -> None:
        super().__init__()
        self.input_layer = nn.Sequential(
            nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.PReLU(64),
        )
        final = INPUT_SIZE // 16
        self.output_layer = nn.Sequential(
            nn.BatchNorm2d(512),
            nn.Dropout(_DROP_RATIO),
            nn.Flatten(),
            nn.Linear(512 * final * final, EMBEDDING_DIM),
            nn.BatchNorm1d(EMBEDDING_DIM, affine=True),
        )
        self.body = _body()

    def forward(self, x: Tensor) -> Tensor:
        check_shape(x, f"N 3 {INPUT_SIZE} {INPUT_SIZE}", "IRSE50 input",
                    note="; use arcface_preprocess() on 256x256 images first")
        features = self.output_layer(self.body(self.input_layer(x)))
        return features / features.norm(p=2, dim=1, keepdim=True)

    @torch.no_grad()
    def randomize_(self, seed: int = 0) -> IRSE50:
        """Fill the network with seeded random weights, in place (for tests and weight-free runs).

        Every floating tensor with ``ndim >= 2`` becomes ``randn / sqrt(fan_in)`` drawn from one generator
        seeded with ``seed`` in state-dict order; BatchNorm and PReLU keep their default initialisation
        (identity statistics, slope 0.25) and biases become zero.

        Returns:
            ``self``.
        """
        generator = torch.Generator().manual_seed(seed)
        for name, tensor in self.state_dict(keep_vars=True).items():
            if tensor.is_floating_point() and tensor.ndim >= 2:
                fan_in = math.prod(tensor.shape[1:])
                draw = torch.randn(tensor.shape, generator=generator, dtype=torch.float32) / math.sqrt(fan_in)
                tensor.copy_(draw)
            elif name.endswith(".bias"):
                tensor.zero_()
        return self
