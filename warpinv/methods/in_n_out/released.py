"""In-N-Out's released checkpoint ``triplanes.pt``: write it in the official layout, read it without running code.

The official training script (``eg3d/outdomain/train_outdomain.py:393-396, 560-563, 639-642``) saves::

    torch.save({"w_plus": (F, 14, 512), "phi": (F, 32),
                "compose_triplanes": ComposeTriplane(G).state_dict()}, "triplanes.pt")

``compose_triplanes`` holds ``"G." +`` every entry of the EG3D generator's state dict (its super-resolution
fine-tuned by the SR stage) followed by ``"new_triplanes.triplanes"`` ``(1, 3, 32, 256, 256)`` and the OOD
decoder ``"new_triplanes.decoder.net.{0,2}.{weight,bias}"``. Our :class:`~warpinv.backbone.EG3DGenerator` and
:class:`~warpinv.methods.in_n_out.networks.OODField` use the same names without the prefixes.

:func:`read_released` loads with :func:`~warpinv.weights.torch_checkpoint.read_torch_checkpoint` in its
weights-only form (``torch.load(..., weights_only=True)`` only), so a file that would run code when unpickled is
refused (:class:`ReleasedCheckpointError`) instead of executed.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from warpinv.backbone import build_random
    >>> G, field = build_random("tiny"), OODField(channels=4, resolution=8)
    >>> path = write_released(Path(tempfile.mkdtemp()) / "triplanes.pt", G, field,
    ...                       torch.zeros(2, G.num_ws, G.w_dim), torch.zeros(2, 4))
    >>> released = read_released(path)
    >>> tuple(released.ws.shape), tuple(released.phi.shape), released.num_frames
    ((2, 14, 512), (2, 4), 2)
    >>> tuple(read_released(path, frame=1).ws.shape)
    (1, 14, 512)
    >>> G2, changed = load_generator_into(G, released)
    >>> changed
    []
"""
from __future__ import annotations

import copy
import logging
import os
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from warpinv.backbone import EG3DGenerator
from warpinv.methods.in_n_out.networks import OODField, PlaneReduction
from warpinv.weights.atomic import atomic_path
from warpinv.weights.torch_checkpoint import CheckpointReadError, CheckpointRefusedError, read_torch_checkpoint

__all__ = [
    "FIELD_ENTRIES",
    "FIELD_PREFIX",
    "GENERATOR_PREFIX",
    "TOP_LEVEL_KEYS",
    "ReleasedCheckpointError",
    "ReleasedInNOut",
    "load_field",
    "load_generator_into",
    "read_released",
    "released_state",
    "write_released",
]

logger = logging.getLogger(__name__)

#: Top-level keys of ``triplanes.pt``.
TOP_LEVEL_KEYS = ("w_plus", "phi", "compose_triplanes")
#: Prefix of the EG3D generator's entries inside ``compose_triplanes``.
GENERATOR_PREFIX = "G."
#: Prefix of the OOD field's entries inside ``compose_triplanes``.
FIELD_PREFIX = "new_triplanes."
#: The OOD field's entries (without :data:`FIELD_PREFIX`), in the released order.
FIELD_ENTRIES = ("triplanes", "decoder.net.0.weight", "decoder.net.0.bias", "decoder.net.2.weight",
                 "decoder.net.2.bias")


class ReleasedCheckpointError(ValueError):
    """A ``triplanes.pt`` that cannot be used: not a plain tensor checkpoint, torn, or not In-N-Out's layout.
    The message names the file and the offending key."""


@dataclass(frozen=True)
class ReleasedInNOut:
    """The contents of one released ``triplanes.pt``, on the CPU.

    Attributes:
        ws: ``(F, num_ws, w_dim)`` per-frame W+ codes (``w_plus``).
        phi: ``(F, code_dim)`` per-frame OOD codes.
        generator_state: the EG3D generator's state dict (``G.`` stripped), in the file's order.
        field_state: the OOD field's state dict (``new_triplanes.`` stripped): ``triplanes (1, 3, C, R, R)``
            and ``decoder.net.{0,2}.{weight,bias}``.
        source: the file it was read from.
    """

    ws: Tensor
    phi: Tensor
    generator_state: dict[str, Tensor]
    field_state: dict[str, Tensor]
    source: Path

    @property
    def num_frames(self) -> int:
        """``F``, the number of frames the codes cover."""
        return int(self.ws.shape[0])

    def select_frame(self, frame: int = 0) -> ReleasedInNOut:
        """The same checkpoint with the codes of one frame only (``ws[frame:frame+1]``, ``phi[frame:frame+1]``),
        e.g. the first frame for a single-image inversion."""
        if isinstance(frame, bool) or not isinstance(frame, int):
            raise TypeError(f"frame must be an int, got {type(frame).__name__}")
        if not 0 <= frame < self.num_frames:
            raise ValueError(f"frame must be in [0, {self.num_frames}) for {self.source}, got {frame}")
        return replace(self, ws=self.ws[frame:frame + 1].clone(), phi=self.phi[frame:frame + 1].clone())


def _cpu_copy(t: Tensor) -> Tensor:
    # A fresh, compact storage: torch.save writes a view's whole storage otherwise.
    return t.detach().cpu().clone(memory_format=torch.contiguous_format)


def _check_codes(ws: object, phi: object, num_ws: int, w_dim: int, code_dim: int) -> None:
    for name, value, dims in (("ws", ws, 3), ("phi", phi, 2)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
        if value.ndim != dims or not value.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor with {dims} dimensions, got "
                             f"{tuple(value.shape)} {value.dtype}")
    assert isinstance(ws, Tensor) and isinstance(phi, Tensor)
    if tuple(ws.shape[1:]) != (num_ws, w_dim) or ws.shape[0] < 1:
        raise ValueError(f"ws must be (F, {num_ws}, {w_dim}) for this generator, got {tuple(ws.shape)}")
    if tuple(phi.shape) != (ws.shape[0], code_dim):
        raise ValueError(f"phi must be (F={ws.shape[0]}, {code_dim}) (one code per frame of ws, the OOD decoder's "
                         f"code width), got {tuple(phi.shape)}")


def released_state(G: EG3DGenerator, field: OODField, ws: Tensor, phi: Tensor) -> dict[str, Any]:
    """The dictionary the official script saves as ``triplanes.pt``.

    Args:
        G: the generator (its super-resolution possibly fine-tuned).
        field: the OOD field.
        ws: ``(F, num_ws, w_dim)`` per-frame W+ codes.
        phi: ``(F, code_dim)`` per-frame OOD codes.

    Returns:
        ``{"w_plus": (F, num_ws, w_dim) float32, "phi": (F, code_dim) float32, "compose_triplanes":
        OrderedDict}`` with ``"G." +`` every generator entry in state-dict order, then ``"new_triplanes." +``
        every field entry; all tensors detached, contiguous copies on the CPU.
    """
    if not isinstance(G, EG3DGenerator):
        raise TypeError(f"G must be an EG3DGenerator, got {type(G).__name__}")
    if not isinstance(field, OODField):
        raise TypeError(f"field must be an OODField, got {type(field).__name__}")
    _check_codes(ws, phi, G.num_ws, G.w_dim, field.decoder.code_dim)
    if field.decoder.plane_reduction != "mean":
        logger.warning("the OOD field sums its plane features; the official code reading this file averages them")
    compose: OrderedDict[str, Tensor] = OrderedDict()
    for prefix, module in ((GENERATOR_PREFIX, G), (FIELD_PREFIX, field)):
        for name, t in module.state_dict().items():
            compose[prefix + name] = _cpu_copy(t)
    return {"w_plus": _cpu_copy(ws).float(), "phi": _cpu_copy(phi).float(), "compose_triplanes": compose}


def write_released(path: str | os.PathLike[str], G: EG3DGenerator, field: OODField, ws: Tensor,
                   phi: Tensor) -> Path:
    """Save :func:`released_state` to ``path`` atomically (a reader never sees a half-written file).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    state = released_state(G, field, ws, phi)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def _load_plain(path: Path) -> object:
    """The checkpoint read weights-only (tensors and plain containers); anything else is our error, never run."""
    try:
        return read_torch_checkpoint(path, weights_only=True)
    except CheckpointRefusedError as err:
        raise ReleasedCheckpointError(
            f"{path}: not a plain tensor checkpoint (tensors in dicts, lists and tuples), refused without "
            f"unpickling it, since unpickling it could run code ({err.reason})") from None
    except CheckpointReadError as err:
        raise ReleasedCheckpointError(f"{path}: unreadable checkpoint (truncated or corrupt?): {err.cause}") from err


def _require_mapping(value: object, path: Path, what: str) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise ReleasedCheckpointError(f"{path}: {what} must be a dict, got {type(value).__name__}")
    return value


def _split_compose(compose: Mapping[Any, Any], path: Path) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """``compose_triplanes`` -> (generator state, field state), prefixes stripped, order kept."""
    generator: dict[str, Tensor] = {}
    field: dict[str, Tensor] = {}
    for key, value in compose.items():
        if not isinstance(key, str) or not isinstance(value, Tensor):
            raise ReleasedCheckpointError(f"{path}: compose_triplanes[{key!r}] must be a tensor under a string "
                                          f"key, got {type(value).__name__}")
        if key.startswith(GENERATOR_PREFIX):
            generator[key[len(GENERATOR_PREFIX):]] = value
        elif key.startswith(FIELD_PREFIX) and key[len(FIELD_PREFIX):] in FIELD_ENTRIES:
            field[key[len(FIELD_PREFIX):]] = value
        else:
            raise ReleasedCheckpointError(f"{path}: unexpected entry compose_triplanes[{key!r}] (expected 'G.*' "
                                          f"and {[FIELD_PREFIX + e for e in FIELD_ENTRIES]})")
    if not generator:
        raise ReleasedCheckpointError(f"{path}: compose_triplanes has no generator entries ('G.*')")
    missing = [FIELD_PREFIX + e for e in FIELD_ENTRIES if e not in field]
    if missing:
        raise ReleasedCheckpointError(f"{path}: compose_triplanes lacks {missing}")
    return generator, field


def _shape_error(path: Path, key: str, expected: str, t: Tensor) -> ReleasedCheckpointError:
    return ReleasedCheckpointError(f"{path}: {key} must be {expected}, got {tuple(t.shape)} {t.dtype}")


def _check_field(field: Mapping[str, Tensor], path: Path) -> int:
    """Check the OOD tensors fit one another; return the decoder's code width (its input minus C)."""
    planes, w0, b0 = field["triplanes"], field["decoder.net.0.weight"], field["decoder.net.0.bias"]
    w2, b2 = field["decoder.net.2.weight"], field["decoder.net.2.bias"]
    for name, t in field.items():
        if not t.is_floating_point():
            raise _shape_error(path, FIELD_PREFIX + name, "a floating-point tensor", t)
    if planes.ndim != 5 or planes.shape[:2] != (1, 3) or planes.shape[3] != planes.shape[4]:
        raise _shape_error(path, FIELD_PREFIX + "triplanes", "(1, 3, C, R, R)", planes)
    channels = int(planes.shape[2])
    if w0.ndim != 2 or w0.shape[1] <= channels:
        raise _shape_error(path, FIELD_PREFIX + "decoder.net.0.weight", f"(H, {channels} + code width)", w0)
    hidden = int(w0.shape[0])
    expected = {"decoder.net.0.bias": (hidden,), "decoder.net.2.weight": (channels + 2, hidden),
                "decoder.net.2.bias": (channels + 2,)}
    for name, t in (("decoder.net.0.bias", b0), ("decoder.net.2.weight", w2), ("decoder.net.2.bias", b2)):
        if tuple(t.shape) != expected[name]:
            raise _shape_error(path, FIELD_PREFIX + name, str(expected[name]), t)
    return int(w0.shape[1]) - channels


def _check_released_codes(ws: object, phi: object, code_dim: int, generator: Mapping[str, Tensor],
                          path: Path) -> None:
    if not isinstance(ws, Tensor) or ws.ndim != 3 or ws.shape[0] < 1 or not ws.is_floating_point():
        raise ReleasedCheckpointError(f"{path}: w_plus must be a floating-point (F, num_ws, w_dim) tensor, got "
                                      f"{tuple(ws.shape) if isinstance(ws, Tensor) else type(ws).__name__}")
    w_avg = generator.get("backbone.mapping.w_avg")
    if w_avg is not None and ws.shape[2] != w_avg.shape[-1]:
        raise ReleasedCheckpointError(f"{path}: w_plus is {tuple(ws.shape)} but the generator's w has "
                                      f"{w_avg.shape[-1]} entries (G.backbone.mapping.w_avg)")
    if not isinstance(phi, Tensor) or not phi.is_floating_point() or tuple(phi.shape) != (ws.shape[0], code_dim):
        got = tuple(phi.shape) if isinstance(phi, Tensor) else type(phi).__name__
        raise ReleasedCheckpointError(f"{path}: phi must be (F={ws.shape[0]}, {code_dim}) (one code per frame of "
                                      f"w_plus; the decoder's input minus the tri-plane channels), got {got}")


def read_released(path: str | os.PathLike[str], frame: int | None = None) -> ReleasedInNOut:
    """Read and check a released ``triplanes.pt``, executing nothing inside it.

    Args:
        path: the file.
        frame: keep only this frame's codes (single-image inversion: ``0``); ``None`` keeps all ``F``.

    Raises:
        FileNotFoundError: no such file.
        ReleasedCheckpointError: not a plain tensor checkpoint (e.g. a pickle that would call a function), a torn
            or corrupt file, a missing key or entry, or shapes that do not fit together; the message names the
            file and the key.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"In-N-Out checkpoint {str(path)!r} does not exist")
    top = _require_mapping(_load_plain(path), path, "the checkpoint")
    missing = [k for k in TOP_LEVEL_KEYS if k not in top]
    if missing:
        raise ReleasedCheckpointError(f"{path}: missing top-level key(s) {missing} (In-N-Out's triplanes.pt has "
                                      f"{list(TOP_LEVEL_KEYS)}; found {list(top)})")
    generator, field = _split_compose(_require_mapping(top["compose_triplanes"], path, "compose_triplanes"), path)
    code_dim = _check_field(field, path)
    _check_released_codes(top["w_plus"], top["phi"], code_dim, generator, path)
    released = ReleasedInNOut(ws=top["w_plus"].detach(), phi=top["phi"].detach(), generator_state=generator,
                              field_state=field, source=path)
    return released if frame is None else released.select_frame(frame)


def load_field(released: ReleasedInNOut, plane_reduction: PlaneReduction = "mean") -> OODField:
    """An :class:`OODField` holding the released OOD tri-plane and decoder (sizes from the tensors, strict load).

    ``plane_reduction="mean"`` is what the released code does; ``"sum"`` follows the paper's text.
    """
    planes, w0 = released.field_state["triplanes"], released.field_state["decoder.net.0.weight"]
    channels, resolution = int(planes.shape[2]), int(planes.shape[-1])
    hidden, code_dim = int(w0.shape[0]), int(w0.shape[1]) - channels
    with torch.random.fork_rng(devices=[]):  # the random init is overwritten; do not consume the caller's RNG
        field = OODField(channels, resolution, plane_reduction=plane_reduction, code_dim=code_dim, hidden_dim=hidden)
    try:
        field.load_state_dict(released.field_state, strict=True)
    except RuntimeError as err:
        raise ReleasedCheckpointError(f"{released.source}: the OOD field does not load: {err}") from None
    return field


def load_generator_into(G: EG3DGenerator, released: ReleasedInNOut) -> tuple[EG3DGenerator, list[str]]:
    """A copy of ``G`` carrying the released generator weights (strict load); ``G`` itself is untouched.

    Returns:
        ``(copy, changed)``: ``changed`` lists, in state-dict order, the entries whose released values differ from
        ``G``'s (after In-N-Out's SR stage usually the ``superresolution.*`` ones).

    Raises:
        ReleasedCheckpointError: the released tensors or codes do not fit ``G``'s architecture.
    """
    if not isinstance(G, EG3DGenerator):
        raise TypeError(f"G must be an EG3DGenerator, got {type(G).__name__}")
    if tuple(released.ws.shape[1:]) != (G.num_ws, G.w_dim):
        raise ReleasedCheckpointError(f"{released.source}: w_plus is {tuple(released.ws.shape)} but this generator "
                                      f"takes (F, {G.num_ws}, {G.w_dim})")
    before = G.state_dict()
    changed = [name for name, t in released.generator_state.items()
               if name in before and (t.shape != before[name].shape or t.dtype != before[name].dtype
                                      or not torch.equal(t, before[name].detach().cpu()))]
    loaded = copy.deepcopy(G)
    try:
        loaded.load_state_dict(released.generator_state, strict=True)
    except RuntimeError as err:
        lines = [line.strip() for line in str(err).splitlines()[1:4] if line.strip()]
        raise ReleasedCheckpointError(f"{released.source}: its generator entries do not fit G: "
                                      + "; ".join(lines)) from None
    loaded.source = f"{G.source} with In-N-Out weights from {released.source}"
    return loaded, changed
