"""``load_generator``: one entry point for official pickles, converted files, presets and ``tiny``."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from warpinv.backbone.generator import EG3DGenerator
from warpinv.backbone.presets import PRESETS, get_preset, randomize_like_trained

TINY_SEED = 0
#: Bump when ``randomize_like_trained`` or anything else that shapes tiny's weights changes (its
#: kwargs and render resolution enter :func:`generator_fingerprint` by themselves).
TINY_VERSION = 1


def build_generator(init_kwargs: dict[str, Any], neural_rendering_resolution: int | None = None) -> EG3DGenerator:
    """Construct an ``EG3DGenerator`` (eval mode) from official kwargs and the trained render size."""
    G = EG3DGenerator(**init_kwargs)
    if neural_rendering_resolution is not None:
        G.neural_rendering_resolution = int(neural_rendering_resolution)
    return G.eval()


def build_tiny(seed: int = TINY_SEED) -> EG3DGenerator:
    """The embedded ``tiny`` generator: seeded random weights of the released classes (see presets)."""
    preset = get_preset("tiny")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        G = build_generator(preset.kwargs(), preset.neural_rendering_resolution)
    randomize_like_trained(G, seed)
    G.source = f"tiny (seeded random weights, seed {seed})"
    return G


def build_random(preset_name: str, seed: int = 0) -> EG3DGenerator:
    """A preset's architecture with seeded random weights (benchmarks of speed and memory only)."""
    preset = get_preset(preset_name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        G = build_generator(preset.kwargs(), preset.neural_rendering_resolution)
    G.source = f"{preset_name} architecture with random weights (seed {seed})"
    return G


def load_generator(source: str | os.PathLike[str], device: str | torch.device = "cpu") -> EG3DGenerator:
    """Load an EG3D generator.

    Args:
        source: an official network pickle (``*.pkl``, read without executing any code in it), a
            converted ``*.safetensors`` file (``warpinv weights convert``), a preset name
            (``ffhq512-128``, ``ffhqrebalanced512-128``, ``ffhqrebalanced512-64``,
            ``afhqcats512-128``, ``shapenetcars128-64``; its weight file is looked up in the weights
            registry), or ``tiny`` (the embedded seeded random generator).
        device: where to put the model.

    Returns:
        The generator in eval mode, with ``neural_rendering_resolution`` as trained and a ``source``
        string saying where it came from.

    Raises:
        MissingWeightsError: a preset whose weight file is absent (the message names the file, every
            place searched, and how to obtain it).
        UnsafePickleError: a pickle that reaches for anything outside the allow-list.
    """
    text = os.fspath(source)
    if text == "tiny":
        G = build_tiny()
    elif text in PRESETS:
        G = _load_preset(text)
    else:
        G = _load_file(Path(text))
    return G.to(device)


def _load_preset(name: str) -> EG3DGenerator:
    from warpinv.weights import resolve  # the registry raises MissingWeightsError with instructions

    preset = get_preset(name)
    assert preset.weights is not None
    return _load_file(resolve(preset.weights))


class GeneratorLoadError(ValueError):
    """A generator file whose tensors do not fit the generator its own kwargs build (the message
    names the file and the first mismatches)."""


def _load_strict(G: EG3DGenerator, state: Any, path: Path) -> None:
    try:
        G.load_state_dict(state, strict=True)
    except RuntimeError as err:
        lines = [line.strip() for line in str(err).splitlines()[1:4] if line.strip()]
        raise GeneratorLoadError(f"{path}: its tensors do not match the generator its kwargs build: "
                                 + "; ".join(lines)) from None


def _load_file(path: Path) -> EG3DGenerator:
    if not path.exists():
        known = ", ".join(["tiny", *[p for p in PRESETS if p != "tiny"]])
        raise FileNotFoundError(f"generator source {str(path)!r} is neither an existing file nor a preset ({known})")
    suffix = path.suffix.lower()
    if suffix == ".pkl":
        from warpinv.weights.generator_file import effective_init_kwargs
        from warpinv.weights.network_pickle import read_network_pickle

        net = read_network_pickle(path)
        G = build_generator(effective_init_kwargs(net), net.neural_rendering_resolution)
        _load_strict(G, net.state_dict, path)
    elif suffix == ".safetensors":
        from warpinv.weights.generator_file import read_generator_file

        gf = read_generator_file(path)
        G = build_generator(gf.init_kwargs, gf.neural_rendering_resolution)
        _load_strict(G, gf.state_dict, path)
    else:
        raise ValueError(f"cannot load a generator from {path.name!r}: expected an official .pkl or a converted "
                         ".safetensors (see `warpinv weights convert`)")
    G.source = str(path)
    return G.eval()


def state_dict_sha256(module: torch.nn.Module) -> str:
    """Checksum of a module's tensors (names, shapes, dtypes and bytes), for generators built in memory."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def generator_fingerprint(source: str | os.PathLike[str]) -> str:
    """A digest of everything a render of ``source`` depends on, for cache keys (rows, synthetic sets).

    ``tiny``: its definition (constructor kwargs, neural rendering resolution, seed and
    ``TINY_VERSION``), so a change to the embedded model invalidates what was computed with the old
    one. Not its weights' bytes: those can differ in the last bit between CPUs, and the key must not. A file (or a
    preset's weight file): ``sha256:<digest of the file>``. A preset whose file is absent:
    ``missing:<registry name>`` (nothing can have been computed with it).
    """
    text = os.fspath(source)
    if text == "tiny":
        return _tiny_fingerprint()
    path = Path(text)
    if text in PRESETS:
        from warpinv.weights import get_spec, locate

        weights = get_preset(text).weights
        assert weights is not None
        found = locate(get_spec(weights))
        if found is None:
            return f"missing:{weights}"
        path = Path(found)
    if not path.is_file():
        return f"missing:{text}"
    from warpinv.weights import file_digests

    return "sha256:" + file_digests(path)["sha256"]


def _tiny_fingerprint() -> str:
    preset = get_preset("tiny")
    setup = {"init_kwargs": preset.init_kwargs, "nrr": preset.neural_rendering_resolution, "seed": TINY_SEED,
             "version": TINY_VERSION}
    return "tiny:" + hashlib.sha256(json.dumps(setup, sort_keys=True).encode()).hexdigest()[:16]
