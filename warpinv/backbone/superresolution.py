"""EG3D's super-resolution modules: two StyleGAN2 blocks driven by the last w.

The official classes ignore the ``channel_base``/``channel_max``/``num_fp16_res``/``conv_clamp``
passed in ``sr_kwargs``: widths are hard-coded per class and the clamp is 256 whenever
``sr_num_fp16_res > 0``. We keep both quirks so official checkpoints load and behave the same.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from warpinv.backbone.ops import setup_filter
from warpinv.backbone.stylegan2 import SynthesisBlock


@dataclass(frozen=True)
class SRLayout:
    """Static layout of one official SR class."""

    img_resolution: int
    input_resolution: int
    block0: tuple[int, int]        # (out channels, resolution)
    block1: tuple[int, int]
    block0_upsamples: bool
    resize_only_smaller: bool      # Hybrid4X resizes only inputs smaller than 128
    has_resample_filter: bool      # the DC variant registers no top-level filter buffer


SR_LAYOUTS: dict[str, SRLayout] = {
    "SuperresolutionHybrid8XDC": SRLayout(512, 128, (256, 256), (128, 512), True, False, False),
    "SuperresolutionHybrid8X": SRLayout(512, 128, (128, 256), (64, 512), True, False, True),
    "SuperresolutionHybrid4X": SRLayout(256, 128, (128, 128), (64, 256), False, True, True),
    "SuperresolutionHybrid2X": SRLayout(128, 64, (128, 64), (64, 128), False, False, True),
}


def sr_class_name(module_path: str) -> str:
    """``'training.superresolution.SuperresolutionHybrid8XDC'`` -> ``'SuperresolutionHybrid8XDC'``."""
    name = module_path.rsplit(".", 1)[-1]
    if name not in SR_LAYOUTS:
        raise ValueError(f"unknown super-resolution module {module_path!r}; known: {sorted(SR_LAYOUTS)}")
    return name


class SuperResolution(nn.Module):
    """One of EG3D's hybrid SR modules, chosen by official class name.

    Forward: resize the raw image and the feature image to the input resolution (bilinear,
    antialiased as configured), then two synthesis blocks, all modulated by the **last** w.
    """

    def __init__(
        self,
        class_name: str,
        channels: int,
        img_resolution: int,
        sr_num_fp16_res: int,
        sr_antialias: bool = True,
        num_fp16_res: int = 4,
        conv_clamp: float | None = None,
        channel_base: int | None = None,
        channel_max: int | None = None,
        **block_kwargs: Any,
    ) -> None:
        super().__init__()
        del num_fp16_res, conv_clamp, channel_base, channel_max  # ignored, as in the official classes
        self.class_name = sr_class_name(class_name)
        layout = SR_LAYOUTS[self.class_name]
        if img_resolution != layout.img_resolution:
            raise ValueError(f"{self.class_name} produces {layout.img_resolution}px images, "
                             f"but img_resolution={img_resolution}")
        self.layout = layout
        self.input_resolution = layout.input_resolution
        self.sr_antialias = sr_antialias
        use_fp16 = sr_num_fp16_res > 0
        clamp = 256 if use_fp16 else None
        (c0, r0), (c1, r1) = layout.block0, layout.block1
        self.block0 = SynthesisBlock(channels, c0, w_dim=512, resolution=r0, img_channels=3, is_last=False,
                                     use_fp16=use_fp16, conv_clamp=clamp, up=layout.block0_upsamples, **block_kwargs)
        self.block1 = SynthesisBlock(c0, c1, w_dim=512, resolution=r1, img_channels=3, is_last=True,
                                     use_fp16=use_fp16, conv_clamp=clamp, **block_kwargs)
        if layout.has_resample_filter:
            self.register_buffer("resample_filter", setup_filter())

    def forward(self, rgb: Tensor, x: Tensor, ws: Tensor, **block_kwargs: Any) -> Tensor:
        """``rgb``: ``(N, 3, H, H)``, ``x``: ``(N, 32, H, H)``, ``ws``: ``(N, num_ws, 512)``.

        Returns the ``(N, 3, img_resolution, img_resolution)`` image.
        """
        return self.forward_with_raw(rgb, x, ws, **block_kwargs)[0]

    def forward_with_raw(self, rgb: Tensor, x: Tensor, ws: Tensor, **block_kwargs: Any) -> tuple[Tensor, Tensor]:
        """The SR image, and ``rgb`` as the official code leaves it.

        Official quirk kept on purpose: ``SynthesisBlockNoUp`` (first block of the 2X and 4X
        modules) adds its toRGB output to the skip image *in place*. When the input needs no resize,
        that skip image is the generator's ``image_raw`` itself, so the official ``image_raw``
        comes back as ``rgb + toRGB(block0)``. We compute the same values without aliasing and
        return them as the second output (``rgb`` unchanged in every other case).
        """
        ws = ws[:, -1:, :].repeat(1, 3, 1)
        size = x.shape[-1]
        needs_resize = (size < self.input_resolution if self.layout.resize_only_smaller
                        else size != self.input_resolution)
        if needs_resize:
            x = self.resize(x)
            skip = self.resize(rgb)
        else:
            skip = rgb
        x, skip = self.block0(x, skip, ws, **block_kwargs)
        raw_out = skip if not needs_resize and not self.layout.block0_upsamples else rgb
        x, image = self.block1(x, skip, ws, **block_kwargs)
        return image, raw_out

    def resize(self, image: Tensor) -> Tensor:
        """Bilinear resize to the input resolution. ``image``: ``(N, C, H, H)``."""
        size = (self.input_resolution, self.input_resolution)
        return F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=self.sr_antialias)

    def extra_repr(self) -> str:
        return f"class_name={self.class_name}"


def build_superresolution(module_path: str, **kwargs: Any) -> SuperResolution:
    """The SR module named by ``rendering_kwargs['superresolution_module']``."""
    return SuperResolution(module_path, **kwargs)


__all__ = ["SR_LAYOUTS", "SRLayout", "SuperResolution", "build_superresolution", "sr_class_name"]
