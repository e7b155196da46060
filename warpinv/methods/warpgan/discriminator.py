"""The pix2pixHD N-layer PatchGAN discriminator that WarpGAN trains SVINet against (LaMa's ``NLayerDiscriminator``).

Released build (``configs/train_inpainting.yaml``: ``kind: pix2pixhd_nlayer, input_nc: 3, ndf: 64, n_layers: 4``):
``n_layers + 2`` stages ``model0 .. model{n_layers+1}``, every conv 4x4 with padding 2:

- ``model0``: conv stride 2 (``input_nc -> ndf``) + leaky ReLU 0.2;
- ``model1 .. model{n_layers-1}``: conv stride 2 (channels doubled, capped at 512) + BatchNorm + leaky ReLU;
- ``model{n_layers}``: the same with stride 1;
- ``model{n_layers+1}``: conv stride 1 to one logit channel.

``forward`` returns ``(logits, activations)`` as LaMa's discriminators do: the last stage's output and the list of
every earlier stage's output, for the feature-matching loss. State-dict names equal the official ones.
"""
from __future__ import annotations

from torch import Tensor, nn

#: Kernel size and padding of every conv (pix2pixHD: ``padw = ceil((kw - 1) / 2)``).
KERNEL_SIZE = 4
PADDING = 2
#: Channel cap of the discriminator's stages.
MAX_CHANNELS = 512


class NLayerDiscriminator(nn.Module):
    """PatchGAN discriminator with intermediate activations.

    Args:
        input_nc: image channels.
        ndf: channels of the first stage.
        n_layers: stride-2 stages (``n_layers + 2`` stages in all).

    Example:
        >>> import torch
        >>> d = NLayerDiscriminator(input_nc=3, ndf=8, n_layers=2)
        >>> logits, feats = d(torch.randn(2, 3, 32, 32))
        >>> tuple(logits.shape), [tuple(f.shape) for f in feats]
        ((2, 1, 11, 11), [(2, 8, 17, 17), (2, 16, 9, 9), (2, 32, 10, 10)])
    """

    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 4) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.n_layers = n_layers
        stages = [[_conv(input_nc, ndf, stride=2), _lrelu()]]
        channels = ndf
        for _ in range(1, n_layers):
            prev, channels = channels, min(channels * 2, MAX_CHANNELS)
            stages.append([_conv(prev, channels, stride=2), nn.BatchNorm2d(channels), _lrelu()])
        prev, channels = channels, min(channels * 2, MAX_CHANNELS)
        stages.append([_conv(prev, channels, stride=1), nn.BatchNorm2d(channels), _lrelu()])
        stages.append([_conv(channels, 1, stride=1)])
        for i, stage in enumerate(stages):
            setattr(self, f"model{i}", nn.Sequential(*stage))

    def stages(self) -> list[nn.Module]:
        """``model0 .. model{n_layers+1}`` in order."""
        return [getattr(self, f"model{i}") for i in range(self.n_layers + 2)]

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``(N, input_nc, H, W)`` -> ``(N, 1, h, w)`` patch logits and the ``n_layers + 1`` earlier activations."""
        activations = []
        for stage in self.stages():
            x = stage(x)
            activations.append(x)
        return activations[-1], activations[:-1]


def _conv(cin: int, cout: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=KERNEL_SIZE, stride=stride, padding=PADDING)


def _lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(0.2)


__all__ = ["NLayerDiscriminator"]
