"""Constructor kwargs of NVIDIA's released EG3D checkpoints, and the embedded ``tiny`` generator.

The released kwargs are reconstructed from ``train.py`` defaults and ``docs/models.md`` (see
``../shared/reference/eg3d.md`` section 0). When a checkpoint is loaded, the kwargs pickled inside it
win; these presets name the weight file and let benchmarks build random-weight models of the same
size.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch

_FFHQ_RENDERING: dict[str, Any] = {
    "image_resolution": 512,
    "disparity_space_sampling": False,
    "clamp_mode": "softplus",
    "superresolution_module": "training.superresolution.SuperresolutionHybrid8XDC",
    "c_gen_conditioning_zero": False,
    "gpc_reg_prob": 0.5,
    "c_scale": 1.0,
    "superresolution_noise_mode": "none",
    "density_reg": 0.25,
    "density_reg_p_dist": 0.004,
    "reg_type": "l1",
    "decoder_lr_mul": 1.0,
    "sr_antialias": True,
    "depth_resolution": 48,
    "depth_resolution_importance": 48,
    "ray_start": 2.25,
    "ray_end": 3.3,
    "box_warp": 1,
    "avg_camera_radius": 2.7,
    "avg_camera_pivot": [0, 0, 0.2],
}


def _kwargs(rendering: dict[str, Any], img_resolution: int = 512, channel_base: int = 32768,
            channel_max: int = 512) -> dict[str, Any]:
    return {
        "z_dim": 512,
        "w_dim": 512,
        "mapping_kwargs": {"num_layers": 2},
        "channel_base": channel_base,
        "channel_max": channel_max,
        "fused_modconv_default": "inference_only",
        "rendering_kwargs": rendering,
        "num_fp16_res": 0,
        "sr_num_fp16_res": 4,
        "sr_kwargs": {"channel_base": channel_base, "channel_max": channel_max,
                      "fused_modconv_default": "inference_only"},
        "conv_clamp": None,
        "c_dim": 25,
        "img_resolution": img_resolution,
        "img_channels": 3,
    }


@dataclass(frozen=True)
class GeneratorPreset:
    """A named generator configuration.

    Attributes:
        name: preset name (``ffhq512-128``, ...).
        init_kwargs: ``TriPlaneGenerator`` constructor kwargs.
        neural_rendering_resolution: the trained raw render side (a pickled attribute, not a kwarg).
        weights: name of the weight file's registry entry (``None`` for the embedded tiny model).
        description: one line for ``--help`` and READMEs.
    """

    name: str
    init_kwargs: dict[str, Any]
    neural_rendering_resolution: int
    weights: str | None
    description: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def kwargs(self) -> dict[str, Any]:
        """A deep copy of the constructor kwargs (safe to modify)."""
        return copy.deepcopy(self.init_kwargs)


def _rendering(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(_FFHQ_RENDERING)
    out.update(changes)
    return out


_SHAPENET_RENDERING = _rendering(
    image_resolution=128, superresolution_module="training.superresolution.SuperresolutionHybrid2X",
    c_gen_conditioning_zero=True, gpc_reg_prob=None, depth_resolution=64, depth_resolution_importance=64,
    ray_start=0.1, ray_end=2.6, box_warp=1.6, white_back=True, avg_camera_radius=1.7, avg_camera_pivot=[0, 0, 0])

#: The embedded test/benchmark model: same classes as the released ones (Hybrid2X SR, 128 px output),
#: narrow backbone, few depth samples, a 32 px raw render (the SR resizes it to its 64 px input, as
#: it does for any other size). Its weights are seeded random numbers, never a trained model.
_TINY_RENDERING = _rendering(
    image_resolution=128, superresolution_module="training.superresolution.SuperresolutionHybrid2X",
    depth_resolution=8, depth_resolution_importance=8)

PRESETS: dict[str, GeneratorPreset] = {
    p.name: p
    for p in [
        GeneratorPreset("ffhq512-128", _kwargs(_rendering()), 128, "eg3d-ffhq512-128",
                        "FFHQ 512px, neural rendering 128 (the model the inversion papers use)"),
        GeneratorPreset("ffhqrebalanced512-128", _kwargs(_rendering(gpc_reg_prob=0.8)), 128,
                        "eg3d-ffhqrebalanced512-128", "FFHQ rebalanced poses, 512px, neural rendering 128"),
        GeneratorPreset("ffhqrebalanced512-64", _kwargs(_rendering(gpc_reg_prob=0.8)), 64,
                        "eg3d-ffhqrebalanced512-64", "FFHQ rebalanced poses, 512px, neural rendering 64"),
        GeneratorPreset("afhqcats512-128", _kwargs(_rendering(gpc_reg_prob=0.8, avg_camera_pivot=[0, 0, -0.06])), 128,
                        "eg3d-afhqcats512-128", "AFHQv2 cats, 512px, neural rendering 128"),
        GeneratorPreset("shapenetcars128-64", _kwargs(_SHAPENET_RENDERING, img_resolution=128), 64,
                        "eg3d-shapenetcars128-64", "ShapeNet cars, 128px, no pose conditioning",
                        ("intrinsics come from the dataset; gen_videos.py uses focal 1.7074",)),
        GeneratorPreset("tiny", _kwargs(_TINY_RENDERING, img_resolution=128, channel_base=2048, channel_max=32), 32,
                        None, "embedded seeded random generator for tests and the default benchmark"),
    ]
}


def get_preset(name: str) -> GeneratorPreset:
    """The preset called ``name``; a ``KeyError`` lists the known ones."""
    if name not in PRESETS:
        raise KeyError(f"unknown generator preset {name!r}; known presets: {', '.join(PRESETS)}")
    return PRESETS[name]


def randomize_like_trained(G: torch.nn.Module, seed: int) -> None:
    """Make a freshly initialised generator render structured scenes, deterministically.

    Official initialisation leaves noise strengths, biases and ``w_avg`` at 0 and gives an almost
    transparent volume of nearly one colour. We (1) perturb every tensor, seeded, as the golden
    fixture's recipe does; (2) set ``w_avg`` to the mean w of 2,000 samples; (3) raise the decoder's
    density gain 8x and colour gain 4x and shift the density bias so the median point of the box has
    raw density 0.5. Latents then give distinct, view-dependent scenes with opaque surfaces. The
    weights stay random: never report them as a trained model.

    The statistics (tensor scales, the mean of ``w``) are reduced in float64: float32 reductions
    depend on the thread count, which made the "same" generator differ in its last bits (and its
    sha256) between a 1-thread and a 2-thread process. The mapping's own float32 products still depend
    on the CPU's BLAS kernels (an AVX-512 and an AVX2 path differ in the last bits of ``w_avg``).
    """
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, t in G.state_dict().items():
            if name.endswith("resample_filter") or name.endswith("w_avg"):
                continue
            scale = 10.0 if ("mapping.fc" in name and name.endswith("bias")) else 0.1 * _rms(t)
            t.add_(torch.randn(t.shape, generator=g) * scale)
        z = torch.randn(2000, G.z_dim, generator=g)
        G.backbone.mapping.w_avg.copy_(G.backbone.mapping(z, torch.zeros(2000, 25))[:, 0].double().mean(0))
        _contrast_decoder(G, g)


def _contrast_decoder(G: torch.nn.Module, g: torch.Generator, density_gain: float = 8.0,
                      colour_gain: float = 4.0, median_density: float = 0.5) -> None:
    last = G.decoder.net[2]
    last.weight[0] *= density_gain
    last.weight[1:] *= colour_gain
    last.bias[1:] *= colour_gain
    ws = G.mapping(torch.randn(4, G.z_dim, generator=g), torch.zeros(4, 25))
    points = torch.rand(4, 4096, 3, generator=g) - 0.5
    sigma = G.sample_mixed(points, points, ws, noise_mode="const")["sigma"]
    last.bias[0] += (median_density - sigma.median()) / last.bias_gain


def _rms(t: torch.Tensor) -> float:
    value = float(t.double().square().mean().sqrt()) if t.numel() else 0.0
    return value if value > 0 else 1.0
