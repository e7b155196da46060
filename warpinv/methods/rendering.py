"""Rendering an inversion: the default path of :meth:`InversionMethod.renderer`.

An :class:`~warpinv.methods.base.Inversion` holds a latent and, for methods that tune the
generator (PTI, HFGI3D), the tuned tensors by state-dict name. :class:`LatentRenderer` renders it
at any cameras with the method's generator:

- the tuned tensors are put in place of the generator's own by swapping the tensor objects that
  the modules hold (:func:`substituted_tensors`, the mechanism of ``torch.func.functional_call``),
  never by copying values into the shared generator and back;
- the tri-planes depend on the latent only, so the backbone runs once per inversion (on the first
  call) and only the renderer and the super-resolution run per view;
- every render is an evaluation render: ``noise_mode="const"``, ``deterministic=True``, views in
  chunks of ``batch``.

Methods whose novel views are not a plain generator render (In-N-Out's composite field, WarpGAN's
warp and inpainting) return their own renderer from :meth:`InversionMethod.renderer`.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from warpinv.checks import check_min

if TYPE_CHECKING:
    from warpinv.backbone import EG3DGenerator
    from warpinv.methods.base import Inversion

#: What a renderer returns, by output name (``image (V, 3, H, W)``, ``image_raw``, ``image_depth
#: (V, 1, h, w)``, ``weight_sum``, ...).
Renders = dict[str, Tensor]
#: ``cameras (V, 25) -> Renders``; what the evaluator and the multi-view metrics call.
ViewRenderer = Callable[[Tensor], Renders]

#: The outputs kept from each render (what :class:`warpinv.metrics.RenderCache` needs).
RENDER_KEYS = ("image", "image_raw", "image_depth", "weight_sum")


@runtime_checkable
class SeparatesOOD(Protocol):
    """A renderer that can also render without its out-of-distribution (OOD) part (In-N-Out's removal).

    Besides the ordinary ``renderer(cameras (V, 25)) -> Renders`` (the composite), it offers:

    - ``without_ood(cameras (V, 25)) -> Renders``: the same outputs rendered with the OOD part removed
      (for In-N-Out: its blend weights edited away, :mod:`warpinv.methods.in_n_out.removal`);
    - ``blend_map(cameras (V, 25)) -> Tensor (V, 1, h, w)`` in [0, 1]: per pixel, how much the OOD
      part explains (at the renderer's own resolution, e.g. the neural rendering resolution).

    The benchmark scores ``clean_psnr`` on ``without_ood`` and ``blend_iou`` on ``blend_map``
    (:mod:`warpinv.metrics.ood`); a renderer that is not ``SeparatesOOD`` has nothing to remove, so its
    ordinary render is scored instead and it has no blend map. ``isinstance`` checks only that the
    three methods exist (``typing.runtime_checkable``).

    Example:
        >>> class Plain:
        ...     def __call__(self, cameras): return {}
        >>> class Split(Plain):
        ...     def without_ood(self, cameras): return {}
        ...     def blend_map(self, cameras): return torch.zeros(len(cameras), 1, 4, 4)
        >>> isinstance(Plain(), SeparatesOOD), isinstance(Split(), SeparatesOOD)
        (False, True)
    """

    def __call__(self, cameras: Tensor) -> Renders:
        """The ordinary (composite) render at ``cameras (V, 25)``."""
        ...

    def without_ood(self, cameras: Tensor) -> Renders:
        """The render at ``cameras (V, 25)`` without the OOD part (same keys and shapes as a call)."""
        ...

    def blend_map(self, cameras: Tensor) -> Tensor:
        """``(V, 1, h, w)`` in [0, 1]: the OOD part's per-pixel blend weight at ``cameras (V, 25)``."""
        ...


@contextlib.contextmanager
def substituted_tensors(module: nn.Module, tensors: dict[str, Tensor]) -> Iterator[None]:
    """Use ``tensors`` in place of some of ``module``'s parameters or buffers inside the block.

    The tensor objects are swapped (by qualified state-dict name), not copied, so the module's own
    tensors are never written and gradients flow to ``tensors``. Everything is restored on exit,
    also when the block raises.

    Raises:
        KeyError: a name that is neither a parameter nor a buffer of ``module``.

    Example:
        >>> lin = nn.Linear(2, 1)
        >>> with substituted_tensors(lin, {"bias": torch.tensor([5.0])}):
        ...     float(lin.bias)
        5.0
        >>> float(lin.bias) == 5.0
        False
    """
    saved: list[tuple[dict[str, Tensor | None], str, Tensor | None]] = []
    try:
        for name, tensor in tensors.items():
            owner_name, _, leaf = name.rpartition(".")
            try:
                owner = module.get_submodule(owner_name) if owner_name else module
            except AttributeError:
                raise KeyError(f"{name!r} is not a parameter or buffer of the module") from None
            table = owner._parameters if leaf in owner._parameters else owner._buffers
            if leaf not in table:
                raise KeyError(f"{name!r} is not a parameter or buffer of the module")
            saved.append((table, leaf, table[leaf]))
            table[leaf] = tensor  # type: ignore[assignment]
        yield
    finally:
        for table, leaf, original in reversed(saved):
            table[leaf] = original


class LatentRenderer:
    """Renders one inversion (latent plus optional tuned generator tensors) at any cameras.

    Args:
        G: the method's generator (never modified).
        inversion: what to render: ``ws (1, num_ws, w_dim)`` and ``generator_delta``.
        batch: at most this many views per synthesis call.
        neural_rendering_resolution: raw render size; ``None`` keeps the generator's.

    Calling it with ``cameras (V, 25)`` returns ``image (V, 3, H, W)``, ``image_raw``,
    ``image_depth`` and ``weight_sum`` as float32.
    """

    def __init__(self, G: EG3DGenerator, inversion: Inversion, batch: int = 16,
                 neural_rendering_resolution: int | None = None) -> None:
        check_min(batch, 1, "batch")
        self.G = G
        self.inversion = inversion
        self.batch = batch
        self.neural_rendering_resolution = neural_rendering_resolution
        self._planes: Tensor | None = None

    @torch.no_grad()
    def __call__(self, cameras: Tensor) -> Renders:
        ws = self.inversion.ws.to(cameras.device)
        chunks: list[Renders] = []
        with substituted_tensors(self.G, _on(self.inversion.generator_delta, cameras.device)):
            if self._planes is None:
                self._planes = self.G.planes(ws, noise_mode="const")
            planes = self._planes
            for chunk in cameras.split(self.batch):
                n = chunk.shape[0]
                chunks.append(self.G.render_planes(planes.expand(n, *planes.shape[1:]), ws.expand(n, -1, -1), chunk,
                                                   self.neural_rendering_resolution, deterministic=True,
                                                   noise_mode="const"))
        return concat_renders(chunks)


def concat_renders(chunks: list[Renders]) -> Renders:
    """Concatenate per-chunk renders along the view axis (float32, :data:`RENDER_KEYS` only)."""
    return {k: torch.cat([c[k].float() for c in chunks]) for k in RENDER_KEYS if k in chunks[0]}


def _on(tensors: dict[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    return {k: v.to(device) for k, v in tensors.items()}
