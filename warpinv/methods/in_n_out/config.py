"""In-N-Out's settings. Defaults: the released code (``Twizwei/in-n-out`` @ 0bbfc7d: ``inversion/invert_multi_ws.py``
with its documented command, ``outdomain/train_outdomain.py`` with ``scripts/run_train.sh``); settings that only the
paper states are switches marked "paper, not in the released code". Sources: ``README.md`` of this folder.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from warpinv.checks import check_choice
from warpinv.methods.base import MethodConfig
from warpinv.methods.in_n_out.composite import DepthClamp, Pairing, Transmittance
from warpinv.methods.in_n_out.networks import PlaneReduction
from warpinv.methods.projector import ProjectorConfig, check_non_negative, check_positive
from warpinv.metrics.lpips import Net


@dataclass
class InDConfig(ProjectorConfig):
    """Stage 1, the in-distribution part: W+ of the frozen generator (``invert_multi_ws.py``, one frame).

    For one image the released ``w = canonical + 0.7 * residual`` is one W+ latent (see ``README.md`` on the step
    size). No latent noise and no noise maps are optimised; LPIPS(vgg) and MSE on the 512 SR image.
    """

    steps: int = 500
    """Steps (``--num_epochs 500``, one frame: one step per epoch; paper: 200 epochs)."""
    lr: float = 5e-3
    """Peak of PTI's ramp (``--lr 5e-3``; paper: 1e-3)."""
    adam_init_lr: float = 5e-3
    """Rate Adam is created with; the ramp overwrites it at every step (as released)."""
    noise_factor: float = 0.0
    """No latent noise in ``invert_multi_ws.py``."""
    optimize_noise: bool = False
    """The noise maps are not optimised in ``invert_multi_ws.py``."""
    noise_reg_weight: float = 0.0
    """No noise regulariser."""
    lpips_resolution: int | None = None
    """LPIPS at the full SR resolution (``lpips.LPIPS(net='vgg', spatial=True)`` on the 512 image)."""
    mse_weight: float = 1.0
    """MSE on the SR image (weight 1)."""
    delta_weight: float = 1e-3
    """Weight of the layer-delta regulariser (``--weight_delta_norm 1e-3``; paper: lambda_Delta 1e-3)."""
    delta_norm: Literal["norm", "squared"] = "norm"
    """``norm``: ``sum_{l=1..num_ws-2} ||w_l - w_0||`` (released: norms, the last layer left out); ``squared``: the
    paper's ``sum ||Delta_i||^2`` over every layer (paper, not in the released code)."""
    init_samples: int = 500
    """Start from the best of this many random latents (``--w_init_samples 500``; mapped with the frontal
    conditioning camera, rendered at the image's camera); 0: start at ``w_avg``."""
    init_metric: Literal["lpips", "mse"] = "lpips"
    """How the random start is chosen: ``lpips`` (released: LPIPS of ``init_lpips_net``) or ``mse`` (needs no
    trunk)."""
    init_lpips_net: Net = "alex"
    """LPIPS trunk of the random-start choice (released: alex)."""
    init_batch: int = 8
    """Random latents rendered per call while choosing the start (speed only)."""
    use_ood_mask: bool = False
    """Leave the OOD pixels out of this stage's losses when the image has an OOD mask (the released ``--use_mask``
    flag; off in its documented command)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice(self.delta_norm, ("norm", "squared"), "delta_norm")
        check_choice(self.init_metric, ("lpips", "mse"), "init_metric")
        check_non_negative(delta_weight=self.delta_weight, init_samples=self.init_samples)
        check_positive(init_batch=self.init_batch)

    def init_nets(self) -> list[Net]:
        """The LPIPS trunk the random-start choice needs."""
        return [self.init_lpips_net] if self.init_samples > 0 and self.init_metric == "lpips" else []


@dataclass
class OODConfig:
    """Stage 2, the OOD field and the composite (``train_outdomain.py``, ``run_train.sh`` flags)."""

    steps: int = 10000
    """Iterations (``--max_num_iters_raw 10000``; paper: 10,000)."""
    lr: float = 5e-3
    """Adam rate of the OOD tri-plane, decoder and ``phi`` (``--lr 5e-3``)."""
    ws_lr_scale: float = 0.01
    """The W+ latent is refined at ``lr * ws_lr_scale`` (released: ``lr / 100``); 0 freezes it."""
    raw_mse_weight: float = 1.0
    """MSE of the raw composite (128 px for ffhq512) against the bilinearly downsampled image (``lamb_l2_raw_full``)."""
    raw_lpips_weight: float = 1.0
    """LPIPS of the raw composite (``lamb_lpips_raw_full``)."""
    lpips_net: Net = "vgg"
    """LPIPS trunk (released: ``lpips.LPIPS(net='vgg')``)."""
    sr_mse_weight: float = 1.0
    """MSE of the SR composite at full resolution (``lamb_l2_sr_full``; the SR stays frozen in this stage)."""
    ood_mse_weight: float = 1.0
    """MSE of the OOD-only raw render inside the OOD mask, when the image has one (``lamb_l2_raw_o``)."""
    entropy_weight: float = 1.0
    """Blend entropy (``lamb_blendw_loss``), on the raw coarse and fine blends."""
    entropy_skewness: float = 2.0
    """Entropy of ``b ** skewness`` (``blendw_skew``)."""
    area_weight: float = 1.0
    """Blend area loss (``lamb_blendw_area_loss``)."""
    sparsity_weight: float = 0.0
    """Blend sparsity over the in-distribution pixels, when the image has a mask (``lamb_blendw_sparse_loss``: 0)."""
    depth_weight: float = 0.0
    """Depth prior (Charbonnier after the released disparity alignment) when the dataset supplies a depth map;
    released video recipe 0 (commented out), paper single-image 0.1. Off without a depth map."""
    maskless_w_avg_weight: float = 1.0
    """Images without an OOD mask: weight of ``||w - w_avg||`` (``train_outdomain_auto.py``)."""
    maskless_delta_weight: float = 2e-3
    """Images without an OOD mask: weight of the layer-delta norms (``train_outdomain_auto.py``)."""
    deterministic_render: bool = False
    """Render without depth jitter while fitting (the released code jitters)."""

    def __post_init__(self) -> None:
        check_non_negative(steps=self.steps, lr=self.lr, ws_lr_scale=self.ws_lr_scale,
                           raw_mse_weight=self.raw_mse_weight, raw_lpips_weight=self.raw_lpips_weight,
                           sr_mse_weight=self.sr_mse_weight, ood_mse_weight=self.ood_mse_weight,
                           entropy_weight=self.entropy_weight, area_weight=self.area_weight,
                           sparsity_weight=self.sparsity_weight, depth_weight=self.depth_weight,
                           maskless_w_avg_weight=self.maskless_w_avg_weight,
                           maskless_delta_weight=self.maskless_delta_weight)
        check_positive(entropy_skewness=self.entropy_skewness)

    def lpips_nets(self) -> list[Net]:
        return [self.lpips_net] if self.raw_lpips_weight > 0 and self.steps > 0 else []


@dataclass
class SRConfig:
    """Stage 3, tuning the super-resolution module alone on the fixed composite (``train_sr=True``)."""

    steps: int = 100
    """Steps (``--num_epochs_sr 100``, one frame: one step per epoch; paper: 100 epochs)."""
    lr: float = 1e-3
    """Adam rate (``--lr_sr 1e-3``)."""
    mse_weight: float = 1.0
    """MSE of the SR composite (``lamb_l2_sr_full``)."""
    lpips_weight: float = 1.0
    """LPIPS of the SR composite (``lamb_lpips_sr_full``)."""
    lpips_net: Net = "vgg"
    """LPIPS trunk (released: vgg)."""
    deterministic_render: bool = False
    """Render the composite without depth jitter (the released code jitters)."""

    def __post_init__(self) -> None:
        check_non_negative(steps=self.steps, lr=self.lr, mse_weight=self.mse_weight, lpips_weight=self.lpips_weight)

    def lpips_nets(self) -> list[Net]:
        return [self.lpips_net] if self.lpips_weight > 0 and self.steps > 0 else []


@dataclass
class InNOutConfig(MethodConfig):
    """In-N-Out. Defaults: the released code; overrides are dotted (``ood.steps=200``, ``ind.init_samples=16``)."""

    ind: InDConfig = field(default_factory=InDConfig)
    """Stage 1, the W+ latent of the frozen generator."""
    ood: OODConfig = field(default_factory=OODConfig)
    """Stage 2, the OOD field fitted through the composite render."""
    sr: SRConfig = field(default_factory=SRConfig)
    """Stage 3, the super-resolution module tuned on the fixed composite."""
    plane_resolution: int = 256
    """Side of the OOD tri-plane (released: 256)."""
    plane_reduction: PlaneReduction = "mean"
    """How the OOD decoder reduces the three plane features: ``mean`` (released) or ``sum`` (paper, not in the
    released code)."""
    pairing: Pairing = "official"
    """``official``: the released pairing of InD and OOD samples (the OOD field re-sorts by its own importance
    draw); ``matched``: each sample paired with itself (corrected)."""
    transmittance: Transmittance = "product"
    """``product``: the released ``blend_forward``; ``density_sum``: the paper's ``exp(-sum (sigma_O + sigma_I) delta)``
    (paper, not in the released code)."""
    depth_clamp: DepthClamp = "batch"
    """``batch``: the composite depth is clamped to the range of every sample depth of the render (released; it
    matters once removal makes weights negative); ``ray``: to each ray's own range (corrected)."""
    removal_scale: float = 1.2
    """OOD removal multiplies every blend by this first (released 1.2)."""
    removal_clamp: bool = False
    """Clamp the scaled blends to ``[0, 1]`` (corrected; the released code does not, so weights can turn negative)."""
    removal_dilation: int = 5
    """Side of the square dilation of the OOD mask before removal (released 5)."""
    sr_noise_mode: Literal["const", "none", "random"] = "const"
    """Noise mode of the SR on the composite (released: ``'const'``)."""
    save_illustrations: bool = True
    """Keep the blend map, the OOD-only render and the OOD-removed render of the input view in the inversion (the
    HTML grid's ``method`` line)."""

    def __post_init__(self) -> None:
        check_positive(plane_resolution=self.plane_resolution, removal_scale=self.removal_scale,
                       removal_dilation=self.removal_dilation)
        check_choice(self.plane_reduction, ("mean", "sum"), "plane_reduction")
        check_choice(self.pairing, ("official", "matched"), "pairing")
        check_choice(self.transmittance, ("product", "density_sum"), "transmittance")
        check_choice(self.depth_clamp, ("batch", "ray"), "depth_clamp")
        check_choice(self.sr_noise_mode, ("const", "none", "random"), "sr_noise_mode")
        if self.removal_dilation % 2 == 0:
            raise ValueError(f"removal_dilation must be odd (a centred square), got {self.removal_dilation}")


__all__ = ["InDConfig", "InNOutConfig", "OODConfig", "SRConfig"]
