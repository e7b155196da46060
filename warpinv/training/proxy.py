"""Self-generated (proxy) training data: the 3D GAN renders its own samples with known latent and cameras.

Each proxy sample ``i`` of a stream is drawn from its own seed (``SeedSequence([seed, stream, i])``, with
``stream`` 0 for training and 1 for validation), so it depends on nothing else:

- ``z (z_dim,)`` standard normal, mapped with the frontal conditioning camera and ``truncation_psi`` into
  the ground-truth latent ``ws (num_ws, w_dim)`` (as :mod:`warpinv.data.synthetic` does);
- the input camera from :attr:`ProxyConfig.input_pose` and ``novel_views`` ground-truth novel cameras from
  :attr:`ProxyConfig.novel_pose`.

Rendering (:func:`render_proxy`, ``deterministic=True``, ``noise_mode="const"``) gives the input image,
its raw image and depth, and the same for every novel view. The images are quantised as a dataset's PNGs
(:func:`as_saved`), the raw images clamped to [-1, 1]. The training stream is consumed step by step:
step ``s`` of rank ``r`` among ``W`` ranks holds samples ``(s W + r) B ... (s W + r) B + B - 1`` for batch
size ``B``; so ranks see different samples, a run is reproducible, and a resumed run continues with the
samples of the step it resumes at (:class:`ProxyStream`'s ``start_step``).

On a GPU the samples are rendered on the fly, on the device (:class:`~warpinv.training.datamodule.ProxyDataModule`
renders in ``on_after_batch_transfer``). On a CPU a fixed set of ``cache_size`` samples can be rendered once
into a cache file (:class:`ProxyCache`); step ``s`` then reads cache entries through a seeded permutation per
pass over the cache.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import IterableDataset

from warpinv.cameras import PoseDistribution, yaw_pitch_camera
from warpinv.checks import check_min
from warpinv.config import config_hash, to_dict

logger = logging.getLogger(__name__)

#: Stream ids in the sample seeds.
TRAIN_STREAM, VAL_STREAM = 0, 1
#: Keys of a rendered proxy batch, besides the drawn ``index``, ``z``, ``cameras`` and ``novel_cameras``.
RENDERED_KEYS = ("ws", "images", "images_raw", "depth", "novel_images", "novel_raw", "novel_depth")


def _novel_pose_default() -> PoseDistribution:
    return PoseDistribution(kind="uniform", yaw_range=0.5, pitch_range=0.25)


@dataclass
class ProxyConfig:
    """How proxy samples are drawn and rendered."""

    seed: int = 0
    """Seeds every sample (with the stream and the sample index)."""
    truncation_psi: float = 0.7
    """Truncation of the sampled latents (0.7: EG3D's sampling default, as the synthetic sets use)."""
    input_pose: PoseDistribution = field(default_factory=PoseDistribution)
    """Camera of the input view (the FFHQ spread by default)."""
    novel_pose: PoseDistribution = field(default_factory=_novel_pose_default)
    """Cameras of the ground-truth novel views (uniform, yaw +-0.5 and pitch +-0.25 rad by default)."""
    novel_views: int = 2
    """Ground-truth novel views per sample."""
    cache: str | None = None
    """Cache file of a fixed training set (CPU training); ``None`` renders every sample on the fly."""
    cache_size: int = 256
    """Samples in the cache (ignored without ``cache``)."""
    val_size: int = 8
    """Fixed validation samples (their own stream, never trained on)."""
    render_batch: int = 8
    """Samples per generator call when rendering the cache or the validation set."""

    def __post_init__(self) -> None:
        check_min(self.novel_views, 1, "novel_views")
        check_min(self.cache_size, 1, "cache_size")
        check_min(self.val_size, 1, "val_size")
        check_min(self.render_batch, 1, "render_batch")


def sample_seed(seed: int, stream: int, index: int) -> int:
    """The seed of sample ``index`` of ``stream``.

    Example:
        >>> sample_seed(0, 0, 5) == sample_seed(0, 0, 5) != sample_seed(0, 1, 5)
        True
    """
    return int(np.random.SeedSequence([seed, stream, index]).generate_state(1)[0])


def draw_samples(config: ProxyConfig, z_dim: int, indices: list[int], stream: int = TRAIN_STREAM) -> dict[str, Tensor]:
    """The draws of samples ``indices``: ``index (B,)``, ``z (B, z_dim)``, ``cameras (B, 25)``,
    ``novel_cameras (B, K, 25)`` (CPU, float32).

    Example:
        >>> d = draw_samples(ProxyConfig(), 8, [3, 4])
        >>> d["z"].shape, d["novel_cameras"].shape
        (torch.Size([2, 8]), torch.Size([2, 2, 25]))
        >>> torch.equal(draw_samples(ProxyConfig(), 8, [4])["z"][0], d["z"][1])
        True
    """
    zs, cams, novel = [], [], []
    for index in indices:
        g = torch.Generator().manual_seed(sample_seed(config.seed, stream, index))
        zs.append(torch.randn(z_dim, generator=g))
        cams.append(config.input_pose.cameras(1, g)[0])
        novel.append(config.novel_pose.cameras(config.novel_views, g))
    return {"index": torch.tensor(indices, dtype=torch.long), "z": torch.stack(zs), "cameras": torch.stack(cams),
            "novel_cameras": torch.stack(novel)}


@torch.no_grad()
def render_proxy(G: Any, z: Tensor, cameras: Tensor, novel_cameras: Tensor, truncation_psi: float) -> dict[str, Tensor]:
    """Render proxy samples with generator ``G`` on the device of ``z``.

    Args:
        z: ``(B, z_dim)``; cameras: ``(B, 25)`` input views; novel_cameras: ``(B, K, 25)``.

    Returns:
        ``ws (B, L, D)``, ``images (B, 3, H, W)``, ``images_raw (B, 3, r, r)``, ``depth (B, 1, r, r)``,
        ``novel_images (B, K, 3, H, W)``, ``novel_raw (B, K, 3, r, r)``, ``novel_depth (B, K, 1, r, r)``.
    """
    b, k = novel_cameras.shape[:2]
    frontal = yaw_pitch_camera(0.0, 0.0, device=z.device).expand(b, -1)
    ws = G.mapping(z, frontal, truncation_psi=truncation_psi)
    planes = G.planes(ws, noise_mode="const")
    views = torch.cat([cameras[:, None], novel_cameras], dim=1).reshape(b * (1 + k), -1)
    out = G.render_planes(planes.repeat_interleave(1 + k, 0), ws.repeat_interleave(1 + k, 0), views,
                          deterministic=True, noise_mode="const")

    def split(x: Tensor) -> tuple[Tensor, Tensor]:
        x = x.reshape(b, 1 + k, *x.shape[1:])
        return x[:, 0], x[:, 1:]

    (images, novel_images), (raw, novel_raw), (depth, novel_depth) = (
        split(as_saved(out["image"])), split(out["image_raw"].clamp(-1, 1)), split(out["image_depth"]))
    return {"ws": ws, "images": images, "images_raw": raw, "depth": depth, "novel_images": novel_images,
            "novel_raw": novel_raw, "novel_depth": novel_depth}


def as_saved(images: Tensor) -> Tensor:
    """Images as a dataset's 8-bit PNGs hold them: EG3D's ``(x * 127.5 + 128).clamp(0, 255)`` truncated to an
    integer, read back as ``v / 127.5 - 1`` (what an encoder sees at inversion time).

    Example:
        >>> as_saved(torch.tensor([-2.0, 0.0, 0.999, 3.0])).tolist()
        [-1.0, 0.003921627998352051, 1.0, 1.0]
    """
    return (images.clamp(-1, 1) * 127.5 + 128).clamp(0, 255).floor() / 127.5 - 1


def step_indices(step: int, batch_size: int, rank: int, world_size: int) -> list[int]:
    """Sample indices of training step ``step`` on ``rank`` of ``world_size``.

    Example:
        >>> step_indices(0, 2, 1, 2), step_indices(1, 2, 0, 2)
        ([2, 3], [4, 5])
    """
    first = (step * world_size + rank) * batch_size
    return list(range(first, first + batch_size))


def cache_entries(indices: list[int], size: int, seed: int) -> list[int]:
    """Cache entries of training samples ``indices``: pass ``p = i // size`` over the cache reads entry
    ``perm_p[i % size]`` of a permutation seeded by ``(seed, p)``.

    Example:
        >>> sorted(cache_entries(list(range(4)), 4, 0))
        [0, 1, 2, 3]
    """
    out, perms = [], {}
    for i in indices:
        p = i // size
        if p not in perms:
            g = torch.Generator().manual_seed(sample_seed(seed, 2, p))
            perms[p] = torch.randperm(size, generator=g).tolist()
        out.append(perms[p][i % size])
    return out


class ProxyStream(IterableDataset):
    """An endless stream of training batches of draws for one rank, from step ``start_step`` on.

    Each item is a whole batch (use ``DataLoader(stream, batch_size=None)``): the output of
    :func:`draw_samples`, plus ``cache_index (B,)`` when ``cache_size`` is set.
    """

    def __init__(self, config: ProxyConfig, z_dim: int, batch_size: int, *, rank: int = 0, world_size: int = 1,
                 start_step: int = 0, cache_size: int | None = None) -> None:
        super().__init__()
        check_min(batch_size, 1, "batch_size")
        check_min(start_step, 0, "start_step")
        self.config, self.z_dim, self.batch_size = config, z_dim, batch_size
        self.rank, self.world_size, self.start_step = rank, world_size, start_step
        self.cache_size = cache_size

    def batch(self, step: int) -> dict[str, Tensor]:
        """The draws of training step ``step`` on this rank."""
        indices = step_indices(step, self.batch_size, self.rank, self.world_size)
        if self.cache_size is None:
            return draw_samples(self.config, self.z_dim, indices)
        return {"index": torch.tensor(indices, dtype=torch.long),
                "cache_index": torch.tensor(cache_entries(indices, self.cache_size, self.config.seed))}

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        step = self.start_step
        while True:
            yield self.batch(step)
            step += 1


class ProxyCacheError(RuntimeError):
    """A cache file that is unreadable or was made for other settings."""


class ProxyCache:
    """A fixed set of rendered training samples in a ``.safetensors`` file (float16 images, float32 latents
    and cameras), keyed by the proxy settings and the generator's fingerprint.

    :meth:`ensure` builds it when missing, rebuilds it when it was made for other settings or is torn
    (a warning says why), and writes atomically (a temporary file renamed into place).
    """

    def __init__(self, path: str | os.PathLike[str], config: ProxyConfig, generator_fingerprint: str) -> None:
        self.path = Path(path)
        self.config = config
        self.key = config_hash({"proxy": {k: v for k, v in to_dict(config).items()
                                          if k not in ("cache", "val_size", "render_batch")},
                                "generator": generator_fingerprint})
        self.tensors: dict[str, Tensor] | None = None

    def ensure(self, G: Any) -> dict[str, Tensor]:
        """The cached tensors (``entry``-indexed, see :data:`RENDERED_KEYS`), rendering them first if needed."""
        if self.tensors is None:
            try:
                self.tensors = self.read()
            except ProxyCacheError as err:
                if self.path.exists():
                    logger.warning("proxy cache %s: %s; rendering it again", self.path, err)
                self.write(G)
                self.tensors = self.read()
        return self.tensors

    def read(self) -> dict[str, Tensor]:
        """Load the cache.

        Raises:
            ProxyCacheError: missing, torn, or made for other settings.
        """
        from safetensors import SafetensorError, safe_open

        if not self.path.is_file():
            raise ProxyCacheError("no cache file")
        try:
            with safe_open(str(self.path), "pt") as f:
                meta = f.metadata() or {}
                if meta.get("key") != self.key:
                    raise ProxyCacheError(f"made for other settings (key {meta.get('key')}, expected {self.key})")
                return {k: f.get_tensor(k) for k in f.keys()}
        except (SafetensorError, OSError, ValueError) as err:
            raise ProxyCacheError(f"unreadable ({type(err).__name__}: {err})") from err

    def write(self, G: Any) -> None:
        """Render ``cache_size`` samples of the training stream with ``G`` (on its device) and save them."""
        from safetensors.torch import save_file

        device = next(G.parameters()).device
        n, chunk = self.config.cache_size, self.config.render_batch
        logger.info("rendering %d proxy samples into %s", n, self.path)
        parts: list[dict[str, Tensor]] = []
        for start in range(0, n, chunk):
            draws = draw_samples(self.config, G.z_dim, list(range(start, min(n, start + chunk))))
            rendered = render_proxy(G, draws["z"].to(device), draws["cameras"].to(device),
                                    draws["novel_cameras"].to(device), self.config.truncation_psi)
            parts.append({**{k: v.cpu() for k, v in rendered.items()}, "cameras": draws["cameras"],
                          "novel_cameras": draws["novel_cameras"]})
        tensors = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        tensors = {k: (v.half() if "images" in k or "raw" in k else v.float()).contiguous() for k, v in tensors.items()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        save_file(tensors, str(tmp), metadata={"key": self.key, "proxy": json.dumps(to_dict(self.config))})
        os.replace(tmp, self.path)

    def gather(self, entries: Tensor, device: torch.device) -> dict[str, Tensor]:
        """The cached samples ``entries (B,)`` on ``device`` as float32 (keys of :func:`render_proxy` plus
        ``cameras`` and ``novel_cameras``)."""
        if self.tensors is None:
            raise ProxyCacheError("the cache is not loaded (call ensure first)")
        idx = entries.cpu()
        return {k: v[idx].to(device).float() for k, v in self.tensors.items()}
