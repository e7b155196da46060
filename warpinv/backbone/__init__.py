"""EG3D's tri-plane generator in pure PyTorch. Knows nothing of inversion methods.

Public surface::

    from warpinv.backbone import EG3DGenerator, load_generator
    G = load_generator("ffhq512-128")          # or a .pkl, a converted .safetensors, or "tiny"
    ws = G.mapping(z, c, truncation_psi=1.0)
    out = G.synthesis(ws, c, noise_mode="const")   # image, image_raw, image_depth, feature_image, ...
"""
from __future__ import annotations

from warpinv.backbone.generator import EG3DGenerator
from warpinv.backbone.loading import (
    build_generator,
    build_random,
    build_tiny,
    generator_fingerprint,
    load_generator,
    state_dict_sha256,
)
from warpinv.backbone.presets import PRESETS, GeneratorPreset, get_preset
from warpinv.backbone.renderer import (
    DEPTH_CLAMP_MODES,
    TRANSMITTANCE_MODES,
    FeatureHook,
    ImportanceRenderer,
    OSGDecoder,
    RadianceField,
    RaySamples,
    RenderOutput,
    march,
    march_composite,
    sample_from_planes,
    sample_plane_mean,
)
from warpinv.backbone.superresolution import SuperResolution

__all__ = [
    "EG3DGenerator",
    "FeatureHook",
    "GeneratorPreset",
    "ImportanceRenderer",
    "OSGDecoder",
    "PRESETS",
    "RadianceField",
    "RaySamples",
    "RenderOutput",
    "DEPTH_CLAMP_MODES",
    "TRANSMITTANCE_MODES",
    "SuperResolution",
    "build_generator",
    "build_random",
    "build_tiny",
    "generator_fingerprint",
    "get_preset",
    "load_generator",
    "state_dict_sha256",
    "march",
    "march_composite",
    "sample_from_planes",
    "sample_plane_mean",
]
