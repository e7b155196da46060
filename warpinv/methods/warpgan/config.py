"""WarpGAN settings. Defaults: the released pipeline (``Huang-KT/WarpGAN`` @ 1bb86bf: ``configs/infer.yaml``,
``configs/train_vanilla.yaml``, ``configs/train_inpainting.yaml``) at full size; deviations are marked "ours" and
listed in ``README.md``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from warpinv.checks import check_choice, check_min
from warpinv.geometry import ForwardWarpConfig
from warpinv.methods.base import MethodConfig
from warpinv.methods.pti.method import PivotConfig
from warpinv.methods.tuning import TuningConfig
from warpinv.methods.warpgan.goae import GOAEConfig
from warpinv.methods.warpgan.svinet import SVINetConfig
from warpinv.metrics.lpips import Net

#: Where the average latent added to the encoder's W+ comes from.
LatentAvgSource = Literal["sampled", "w_avg"]


@dataclass
class DiscriminatorConfig:
    """SVINet's pix2pixHD n-layer discriminator (``configs/train_inpainting.yaml``: ndf 64, 4 layers)."""

    ndf: int = 64
    """Channels of the first layer."""
    n_layers: int = 4
    """Strided layers."""


@dataclass
class EncoderLosses:
    """Stage 1 (encoder) loss weights: ``configs/train_vanilla.yaml`` plus our proxy latent loss."""

    latent: float = 0.0
    """Ours: W+ MSE to the proxy sample's latent (the tiny CPU budget trains from it alone; released: none)."""
    mse: float = 1.0
    """L2 between the input image and the render of the encoded W+ at the input camera (released: 1)."""
    lpips: float = 0.8
    """LPIPS(alex) of the same pair (released: 0.8)."""
    identity: float = 0.1
    """ArcFace IR-SE50 identity loss, 1 - cos (released: 0.1); needs ``model_ir_se50.pth``."""
    w_delta: float = 5e-4
    """W-delta regulariser: the norm of W+ minus its first row (all rows together), batch mean (released: 5e-4)."""


@dataclass
class SVINetLosses:
    """Stage 2 (SVINet) loss weights, ``configs/train_inpainting.yaml``."""

    l1: float = 10.0
    """L1 over the whole image (``with_mask: False``: known and missing pixels alike)."""
    perceptual: float = 30.0
    """Perceptual loss. Released: LaMa's ResNet-50 segmentation trunk (ADE20k weights, not redistributable here);
    ours: LPIPS with the ``perceptual_net`` trunk in its place."""
    adversarial: float = 10.0
    """Non-saturating adversarial loss of the generator."""
    r1: float = 0.001
    """R1 gradient penalty of the discriminator on real images (``gp_coef``)."""
    feature_matching: float = 100.0
    """MSE between the discriminator features of the prediction and of the target."""
    identity: float = 0.5
    """ArcFace identity loss (needs ``model_ir_se50.pth``)."""
    latent: float = 0.1
    """Latent consistency: MSE between the encoder's W+ of the novel-view prediction and the input's W+."""


def _multi_view_tuning() -> TuningConfig:
    return TuningConfig(steps=1000, lpips_threshold=None)


@dataclass
class MultiViewPTIConfig:
    """The optional PTI stage on WarpGAN's inpainted novel views (released ``scripts/run_pti.py`` with
    ``configs/pti.yaml``, ``multi_views: True``): a pivot, then the generator is tuned at the input view plus, each
    step, one of ``num_views`` orbit views that WarpGAN inpainted from the encoder's latent (the teachers)."""

    enabled: bool = False
    """Run the stage. The inversion then holds the tuned generator and renders as PTI does (for editing)."""
    pivot_from_encoder: bool = False
    """Pivot = the encoder's W+ (``get_w_pivot: encoder``); released default ``opt``: the projector below."""
    pivot: PivotConfig = field(default_factory=PivotConfig)
    """The projected pivot (released: PTI's W projector, 500 steps at 5e-3)."""
    num_views: int = 30
    """Teacher views: HFGI3D's 30-view orbit (yaw ±0.35, pitch −0.05 ± 0.25, 3.14 for pi), as released."""
    tuning: TuningConfig = field(default_factory=_multi_view_tuning)
    """Tuning: 1000 steps (``max_pti_steps_multiviews``), Adam 3e-4, L2 + LPIPS(alex) on the input view and one
    random teacher view per step, no early stop (released)."""

    def __post_init__(self) -> None:
        check_min(self.num_views, 1, "num_views")


@dataclass
class WarpGANConfig(MethodConfig):
    """WarpGAN: GOAE-Swin W+ encoder, EG3D depth warp of the input and its mirror, SVINet inpainting (``README.md``).
    """

    encoder: GOAEConfig = field(default_factory=GOAEConfig)
    """The W+ encoder (GOAE's Swin-V2 encoder; released size by default)."""
    svinet: SVINetConfig = field(default_factory=SVINetConfig)
    """The inpainting network (released size by default). ``svinet.use_condition: false`` is the ablation without the
    symmetry prior (ours: the mirrored warp is not computed and the condition branch is skipped)."""
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    """SVINet's discriminator (training only; not part of exported checkpoints)."""
    encoder_checkpoint: str | None = None
    """A released encoder file (WarpGAN ``gan_encoder.pt``, key ``psp_state_dict``, or GOAE's ``encoder_FFHQ.pt``),
    a path or a weights-registry name (``warpgan-encoder``); loaded when the method is built (a ``checkpoint`` given
    too is loaded over it)."""
    svinet_checkpoint: str | None = None
    """A released SVINet file (WarpGAN ``inpaintor.pt``, key ``inpaintor_state_dict``), a path or a registry name
    (``warpgan-svinet``); its discriminator too, when the file holds one. Loaded when the method is built."""
    latent_avg: str = "sampled"
    """The average latent added to the encoder's W+: ``sampled`` (the released ``scripts/avg_latent.py``: mean
    ``w`` of ``latent_avg_samples`` z from ``RandomState(123)`` at the frontal camera, computed from the
    generator), ``w_avg`` (the mapping's tracked average; cheap), or a file with the released tensor (a path or
    the registry name ``warpgan-latent-avg``)."""
    latent_avg_samples: int = 10_000
    """Samples of ``latent_avg: sampled``."""
    warp: ForwardWarpConfig = field(default_factory=ForwardWarpConfig)
    """The forward warp (``official``: the released ``Warper.forward_warp``)."""
    blur_sigma: float | None = None
    """Sigma of the 21-tap Gaussian blur of the hole masks. ``None``: drawn from U(0.1, 2.0) per warp as the
    released inference does, seeded by the image and the camera so that a render is reproducible; a number: fixed
    (ours)."""
    inpaint: bool = True
    """Inpaint the warped views. ``False``: render the encoder's W+ with the generator only (the encoder-only row)."""
    allow_untrained: bool = False
    """Let a benchmark run WarpGAN without trained weights (tests only)."""
    svinet_start_step: int = 0
    """Training: steps of stage 1 (the encoder) before stage 2 (SVINet with the encoder frozen). Released: two
    separate runs; 0 trains SVINet only (the encoder comes from ``encoder_checkpoint``)."""
    encoder_lr: float = 1e-4
    """Stage 1 learning rate (released: Ranger 1e-4; ours: Adam)."""
    svinet_lr: float = 1e-3
    """Stage 2 Adam learning rate of SVINet (released: 1e-3)."""
    discriminator_lr: float = 1e-4
    """Stage 2 Adam learning rate of the discriminator (released: 1e-4)."""
    encoder_losses: EncoderLosses = field(default_factory=EncoderLosses)
    """Stage 1 loss weights."""
    svinet_losses: SVINetLosses = field(default_factory=SVINetLosses)
    """Stage 2 loss weights."""
    synthetic_branch: bool = True
    """Stage 2: train on proxy pairs against their ground-truth novel views (released: ``SynthData100000``)."""
    real_branch: bool = True
    """Stage 2: the warp-there-and-back loss on unlabelled images (released: FFHQ). Without a real-image dataset it
    uses the proxy samples' input images, ignoring their ground truth (ours)."""
    proxy_view: int | None = None
    """Stage 2: which novel view of each proxy sample the synthetic branch targets; ``None``: the next one every
    step (ours; the released synthetic set has one target per source)."""
    render_memo: int = 0
    """Stage 2: remember the encoder's latent and the generator's renders of up to this many samples (exact, since
    stage 2 trains neither); for the small fixed proxy cache of a CPU run, where those renders cost most of a step.
    0: off."""
    lpips_net: Net = "alex"
    """LPIPS trunk of the encoder's LPIPS loss (released: alex)."""
    perceptual_net: Net = "vgg"
    """LPIPS trunk standing in for LaMa's ResNet-50 perceptual loss (ours)."""
    encoder_input_size: int | None = None
    """Side the encoder reads (released: 256, via ``goae_input``); ``None``: ``encoder.img_size``."""
    render_batch: int = 8
    """Views per generator call when rendering an inversion."""
    pti: MultiViewPTIConfig = field(default_factory=MultiViewPTIConfig)
    """The optional PTI stage on the inpainted novel views (off by default, as WarpGAN's inference)."""

    def __post_init__(self) -> None:
        if self.latent_avg in ("sampled", "w_avg"):
            pass
        elif not self.latent_avg:
            raise ValueError("latent_avg must be 'sampled', 'w_avg', or a file / registry name")
        check_min(self.latent_avg_samples, 1, "latent_avg_samples")
        if self.blur_sigma is not None:
            check_min(self.blur_sigma, 0.0, "blur_sigma", strict=True)
        check_min(self.svinet_start_step, 0, "svinet_start_step")
        for name in ("encoder_lr", "svinet_lr", "discriminator_lr"):
            check_min(getattr(self, name), 0.0, name, strict=True)
        check_choice(self.lpips_net, ("alex", "vgg", "squeeze"), "lpips_net")
        check_choice(self.perceptual_net, ("alex", "vgg", "squeeze"), "perceptual_net")
        check_min(self.render_batch, 1, "render_batch")
        check_min(self.render_memo, 0, "render_memo")
        if not (self.synthetic_branch or self.real_branch):
            raise ValueError("stage 2 needs synthetic_branch or real_branch (or both)")
