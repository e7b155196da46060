"""E3DGE-style encoder settings. Defaults: the full-size configuration for EG3D 512 generators, following
E3DGE's released training scripts (``NIRVANALAN/CVPR23-E3DGE`` @ 7666d5b, ``scripts/train/ffhq/stage*.sh`` and
``project/utils/options.py``) where they carry over to EG3D; deviations are marked and listed in ``README.md``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from warpinv.checks import check_choice, check_min
from warpinv.methods.base import MethodConfig
from warpinv.metrics.lpips import Net

#: How a ray sample decides whether the input view sees it (see ``pixel_aligned.py``).
Visibility = Literal["depth", "in_image"]


@dataclass
class GlobalConfig:
    """The global branch: a pSp GradualStyleEncoder-like W+ encoder on an IR-SE trunk (E3DGE's E0)."""

    stages: list[list[int]] = field(default_factory=lambda: [[64, 3], [128, 4], [256, 14], [512, 3]])
    """``[channels, units]`` per trunk stage (default: IR-SE50, as pSp and E3DGE)."""
    input_size: int = 256
    """Images are resized to this side first (E3DGE: 256)."""
    coarse_layers: int = 3
    """W+ layers predicted from the coarsest pyramid level (GOAE's split of EG3D's 14 layers: 3 / 4 / 7)."""
    middle_layers: int = 4
    """W+ layers predicted from the middle level; the rest come from the finest."""
    arcface_init: bool = False
    """Initialise the trunk from ``model_ir_se50.pth`` (pSp does; E3DGE trains from scratch, its default)."""


@dataclass
class LocalConfig:
    """The local branch: pixel-aligned features from the input view's residual and depth (E3DGE's E1)."""

    enabled: bool = True
    """Build the branch. ``False``: a global-only encoder (no local weights in the checkpoint)."""
    channels: int = 32
    """Feature channels; they are added to the tri-plane features (32 in EG3D)."""
    base_channels: int = 32
    """Width of the U-Net's first level."""
    depth: int = 3
    """Down/up levels of the U-Net."""
    input_size: int = 256
    """Side of the U-Net input (E3DGE: the 256 residual) and of its feature map."""
    visibility: Visibility = "depth"
    """``depth``: a sample receives features only where the input view sees it (a soft depth test against the
    global render's depth, ours); ``in_image``: wherever it projects inside the input image (E3DGE's released
    code has only this test)."""
    depth_margin: float = 0.02
    """``depth`` visibility: samples up to this far (world units) behind the visible surface still count as seen."""
    depth_softness: float = 0.01
    """``depth`` visibility: width of the sigmoid ramp of the depth test (world units)."""

    def __post_init__(self) -> None:
        check_choice(self.visibility, ("depth", "in_image"), "visibility")
        check_min(self.channels, 1, "channels")
        check_min(self.depth_softness, 0.0, "depth_softness", strict=True)


@dataclass
class LossConfig:
    """Loss weights of one training stage."""

    latent: float = 1.0
    """W+ MSE to the proxy sample's latent (E3DGE stage 1: ``latent_gt`` 1)."""
    mse: float = 1.0
    """Image MSE (E3DGE: ``l2_lambda`` 1)."""
    lpips: float = 0.8
    """LPIPS (E3DGE: ``vgg_lambda`` 0.8 in stage 1, 1 in stage 2.2; AlexNet)."""
    identity: float = 0.1
    """ArcFace IR-SE50 identity loss, 1 - cos (E3DGE: ``id_lambda`` 0.1); needs ``model_ir_se50.pth``."""
    depth: float = 1.0
    """L1 between the rendered and the proxy depth (ours: EG3D has no SDF, so E3DGE's surface SDF and normal
    losses become a depth loss)."""
    input_view: float = 1.0
    """Weight of the image losses at the input view."""
    novel_view: float = 0.0
    """Weight of the image losses at the proxy sample's novel views (E3DGE stage 2: cross-view supervision)."""


@dataclass
class GlobalLosses(LossConfig):
    """Stage 1 (global branch) losses: the latent and the images at the input view (E3DGE stage 1)."""


@dataclass
class LocalLosses(LossConfig):
    """Stage 2 (local branch) losses: the images at the input and the novel views (E3DGE stage 2.2: LPIPS 1)."""

    latent: float = 0.0
    """No latent loss: the global branch is frozen in stage 2."""
    lpips: float = 1.0
    """LPIPS (E3DGE stage 2.2: ``vgg_lambda`` 1)."""
    depth: float = 0.0
    """No depth loss: the local features are trained for appearance."""
    novel_view: float = 1.0
    """Weight of the image losses at the novel views (E3DGE stage 2: cross-view supervision)."""


@dataclass
class E3DGEConfig(MethodConfig):
    """An E3DGE-style encoder: global W+ branch plus pixel-aligned local features (``README.md``)."""

    encoder: GlobalConfig = field(default_factory=GlobalConfig)
    """The global branch."""
    local: LocalConfig = field(default_factory=LocalConfig)
    """The local branch."""
    allow_untrained: bool = False
    """Let a benchmark run this encoder without trained weights (``checkpoint`` empty; tests only: an untrained
    encoder predicts ``w_avg`` and zero local features)."""
    use_global: bool = True
    """Inversion: use the global branch; ``False`` inverts to ``w_avg`` (the baseline row)."""
    use_local: bool = True
    """Inversion: use the local branch; ``False`` renders the global latent alone (the ablation row)."""
    lr: float = 5e-5
    """Adam learning rate of both branches (E3DGE: 5e-5, default betas, no schedule)."""
    local_start_step: int = 200_000
    """Training step at which stage 2 begins: the global branch is frozen and the local branch trains (E3DGE
    trains E0 first, then E1 with E0 frozen; its stage 1 ran about 434k iterations, inferred from its scripts)."""
    global_losses: GlobalLosses = field(default_factory=GlobalLosses)
    """Stage 1 losses (global branch): latent, then the images at the input view."""
    local_losses: LocalLosses = field(default_factory=LocalLosses)
    """Stage 2 losses (local branch): the images at the input and the novel views."""
    lpips_net: Net = "alex"
    """LPIPS trunk of the losses (E3DGE: AlexNet)."""
    loss_resolution: Literal["sr", "raw"] = "sr"
    """Image losses on the super-resolved image (``sr``) or on the raw neural render (``raw``, cheaper)."""

    def __post_init__(self) -> None:
        check_choice(self.loss_resolution, ("sr", "raw"), "loss_resolution")
        check_min(self.lr, 0.0, "lr", strict=True)
        check_min(self.local_start_step, 0, "local_start_step")
