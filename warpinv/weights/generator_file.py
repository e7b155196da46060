"""warpinv's converted generator checkpoint: one safetensors file with everything needed to rebuild G.

Layout: the tensors of the official ``state_dict()`` under their official names, and string
metadata:

- ``format``: :data:`FORMAT`
- ``init_kwargs``: JSON of the constructor kwargs
- ``neural_rendering_resolution``: decimal string, or ``""`` when unset
- ``key_order``: JSON list of the state-dict names in official order (safetensors stores its
  entries sorted, so the order would otherwise be lost)
- any extra entries, e.g. ``source`` and ``source_sha256`` written by :func:`convert_network_pickle`
"""
from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from warpinv.weights.atomic import atomic_path
from warpinv.weights.digests import sha256_file
from warpinv.weights.network_pickle import NetworkPickle, read_network_pickle

__all__ = ["FORMAT", "GeneratorFile", "convert_network_pickle", "effective_init_kwargs", "read_generator_file",
           "save_generator_file"]

FORMAT = "warpinv.eg3d-generator/1"
_RESERVED = ("format", "init_kwargs", "neural_rendering_resolution", "key_order")


@dataclass
class GeneratorFile:
    """Contents of a converted generator file.

    Attributes:
        state_dict: tensors in official ``state_dict()`` order, on the CPU.
        init_kwargs: constructor kwargs (plain JSON values).
        neural_rendering_resolution: the generator's attribute of that name, or ``None``.
        metadata: the file's whole string metadata, reserved entries included.
    """

    state_dict: OrderedDict[str, torch.Tensor]
    init_kwargs: dict
    neural_rendering_resolution: int | None
    metadata: dict[str, str]


def save_generator_file(
    path: str | os.PathLike,
    state_dict: Mapping[str, torch.Tensor],
    init_kwargs: dict,
    neural_rendering_resolution: int | None,
    extra: dict[str, str] | None = None,
) -> None:
    """Write a generator file (atomically: a temporary file renamed into place).

    Args:
        path: destination ``.safetensors`` file.
        state_dict: name -> tensor, in the order to keep; tensors are copied to contiguous CPU memory.
        init_kwargs: JSON-serialisable constructor kwargs.
        neural_rendering_resolution: stored as a decimal string (``""`` for ``None``).
        extra: more string metadata; may not use the reserved names.

    Raises:
        ValueError: extra metadata that is not str -> str or collides with a reserved name.
        TypeError: init_kwargs that JSON cannot encode.
    """
    metadata = _metadata(state_dict, init_kwargs, neural_rendering_resolution, extra or {})
    with atomic_path(path) as tmp:
        save_file(_storable(state_dict), tmp, metadata=metadata)


def _metadata(
    state_dict: Mapping[str, torch.Tensor],
    init_kwargs: dict,
    neural_rendering_resolution: int | None,
    extra: dict[str, str],
) -> dict[str, str]:
    clash = sorted(set(extra) & set(_RESERVED))
    if clash:
        raise ValueError(f"extra metadata may not override reserved entries {clash}")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items()):
        raise ValueError("extra metadata must map str to str")
    nrr = "" if neural_rendering_resolution is None else str(int(neural_rendering_resolution))
    return {
        "format": FORMAT,
        "init_kwargs": json.dumps(init_kwargs),
        "neural_rendering_resolution": nrr,
        "key_order": json.dumps(list(state_dict)),
        **extra,
    }


def _storable(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached contiguous CPU tensors, none sharing memory (safetensors refuses shared storage)."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, tensor in state_dict.items():
        t = tensor.detach().cpu().contiguous()
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen:
            t = t.clone()
        seen.add(t.untyped_storage().data_ptr())
        out[name] = t
    return out


def read_generator_file(path: str | os.PathLike) -> GeneratorFile:
    """Read a file written by :func:`save_generator_file`.

    Returns:
        The tensors (official order, CPU), init kwargs, neural rendering resolution and metadata.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a safetensors file, or one without warpinv generator metadata of
            format :data:`FORMAT`; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"generator file {str(path)!r} does not exist")
    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            metadata = dict(f.metadata() or {})
            _check_format(path, metadata)
            order = _key_order(path, metadata, set(f.keys()))
            tensors = OrderedDict((name, f.get_tensor(name)) for name in order)
    except SafetensorError as exc:
        raise ValueError(f"{path}: not a readable safetensors file: {exc}") from exc
    try:
        init_kwargs = json.loads(metadata["init_kwargs"])
        nrr_text = metadata["neural_rendering_resolution"]
        nrr = int(nrr_text) if nrr_text else None
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{path}: malformed {FORMAT} metadata: {exc!r}") from exc
    if not isinstance(init_kwargs, dict):
        raise ValueError(f"{path}: malformed {FORMAT} metadata: init_kwargs is not a JSON object")
    return GeneratorFile(tensors, init_kwargs, nrr, metadata)


def _check_format(path: Path, metadata: dict[str, str]) -> None:
    found = metadata.get("format")
    if found != FORMAT:
        what = "no format metadata" if found is None else f"format {found!r}"
        raise ValueError(f"{path}: not a warpinv generator file ({what}; expected {FORMAT!r}). "
                         "Convert an official .pkl with `warpinv weights convert`.")


def _key_order(path: Path, metadata: dict[str, str], names: set[str]) -> list[str]:
    try:
        order = json.loads(metadata["key_order"])
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{path}: malformed {FORMAT} metadata: no valid key_order") from exc
    if not isinstance(order, list) or len(order) != len(names) or set(order) != names:
        raise ValueError(f"{path}: key_order metadata does not list the file's {len(names)} tensors")
    return order


def convert_network_pickle(src: str | os.PathLike, dst: str | os.PathLike, key: str = "G_ema",
                           fixed_planes: bool = False) -> GeneratorFile:
    """Convert one network of an official EG3D pickle into a generator file, without executing the pickle.

    The metadata records ``source`` (file name), ``source_sha256``, ``source_key`` and ``class_name``.
    The stored kwargs carry the pickled ``rendering_kwargs`` attribute: unpickling restores the
    object's attributes, so that (not the constructor's copy) is what the official model renders with.
    ``fixed_planes=True`` records the ``fixed_planes`` constructor kwarg, as WarpGAN rebuilds its LPFF
    pickle (``TriPlaneGenerator(*G.init_args, **G.init_kwargs, fixed_planes=True)``): the pickle itself
    does not carry it.

    Returns:
        What was written, read back from ``dst``.

    Raises:
        ValueError: ``dst`` is ``src`` (the source would be overwritten), or the network holds no
            tensors (nothing a generator could be built from).
    """
    if Path(dst).resolve() == Path(src).resolve():
        raise ValueError(f"the destination {dst} is the source pickle itself; choose another file name")
    net = read_network_pickle(src, key)
    if not net.state_dict:
        raise ValueError(f"{src}: network {key!r} holds no tensors; it is not a trained generator")
    extra = {
        "source": Path(src).name,
        "source_sha256": sha256_file(src),
        "source_key": key,
        "class_name": net.class_name,
    }
    kwargs = effective_init_kwargs(net)
    if fixed_planes:
        kwargs["fixed_planes"] = True
    save_generator_file(dst, net.state_dict, kwargs, net.neural_rendering_resolution, extra)
    return read_generator_file(dst)


def effective_init_kwargs(net: NetworkPickle) -> dict[str, Any]:
    """Constructor kwargs with the pickled ``rendering_kwargs`` attribute in place of the init copy."""
    kwargs = dict(net.init_kwargs)
    if net.rendering_kwargs is not None:
        kwargs["rendering_kwargs"] = dict(net.rendering_kwargs)
    return kwargs
