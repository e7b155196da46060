"""Read NVIDIA's official EG3D network pickles without running anything they contain.

An official ``network-snapshot-*.pkl`` is a plain :mod:`pickle` of
``dict(training_set_kwargs=..., G=..., D=..., G_ema=..., augment_pipe=...)``. Its networks are
``torch_utils.persistence`` objects: each one reduces to
``_reconstruct_persistent_obj(meta)``, where ``meta`` carries the full source text of the defining
module (``module_src``), which the official loader ``exec``s. Loading such a file with
:func:`pickle.load` therefore runs whatever code the file carries.

:class:`RestrictedUnpickler` resolves only an allow-list of pure data rebuilders. Persistent objects
and the plain ``training.*`` / ``torch.nn.modules.*`` classes become inert stubs that merely hold
their ``__dict__``; ``module_src`` is never looked at. Every other global, and every persistent id,
is refused with :class:`UnsafePickleError` before anything is called. Tensor storages are nested
legacy ``torch.save`` blobs, which are read with ``torch.load(..., weights_only=True)``.

:func:`read_network_pickle` then walks the stub tree to rebuild ``state_dict()`` (same names, same
order, bit-identical tensors), the constructor kwargs and the rendering attributes.

The allow-list, the checked tensor rebuilders and the stubs also serve
:mod:`warpinv.weights.torch_checkpoint`, which reads ``torch.save`` files holding foreign objects.
"""
from __future__ import annotations

import io
import os
import pickle
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from warpinv.weights.digests import sha256_file  # re-exported: other packages import it from here

__all__ = [
    "NetworkPickle",
    "RestrictedUnpickler",
    "UnsafePickleError",
    "read_network_pickle",
    "sha256_file",
]

# The official writer uses protocol 4; anything below 2 predates the format.
_MIN_PROTOCOL = 2


class UnsafePickleError(RuntimeError):
    """A pickle reached for a global outside the allow-list, or is malformed."""


@dataclass
class NetworkPickle:
    """One network extracted from an official pickle.

    Attributes:
        class_name: persistent class name of the network, e.g. ``"TriPlaneGenerator"``.
        state_dict: the official ``state_dict()``: same names, same order, CPU tensors.
        init_kwargs: constructor kwargs as plain dicts, lists and Python scalars.
        neural_rendering_resolution: the network's attribute of that name (``None`` if absent).
        rendering_kwargs: the network's ``rendering_kwargs`` attribute, plain (``None`` if absent).
    """

    class_name: str
    state_dict: OrderedDict[str, torch.Tensor]
    init_kwargs: dict
    neural_rendering_resolution: int | None
    rendering_kwargs: dict | None


# --------------------------------------------------------------------------------------------
# Inert stand-ins for the objects of the pickle
# --------------------------------------------------------------------------------------------


class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict``: a plain dict subclass (no attribute access needed)."""


class PersistentStub:
    """What ``torch_utils.persistence._reconstruct_persistent_obj(meta)`` becomes here.

    Holds the class name and the object's ``__dict__``; the module source is dropped unread.
    """

    def __init__(self, class_name: str, state: dict) -> None:
        self.class_name = class_name
        self.state = state

    def __repr__(self) -> str:
        return f"<persistent {self.class_name}>"


class ObjectStub:
    """Base of the stand-ins for plain ``training.*`` and ``torch.nn.modules.*`` classes.

    The unpickler creates one subclass per qualified name; ``NEWOBJ`` makes an empty instance and
    ``BUILD`` hands it the pickled ``__dict__``.
    """

    qualified_name = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> ObjectStub:
        obj = super().__new__(cls)
        obj.state = {}
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        # (dict, slotstate) is what objects with __slots__ pickle; modules have no slots.
        if isinstance(state, tuple) and len(state) == 2 and state[1] is None:
            state = state[0]
        if not isinstance(state, dict):
            raise UnsafePickleError(f"{self.qualified_name}: expected a dict as object state, got "
                                    f"{type(state).__name__}")
        self.state = state

    @property
    def class_name(self) -> str:
        return self.qualified_name.rsplit(".", 1)[-1]

    def __repr__(self) -> str:
        return f"<stub {self.qualified_name}>"


# --------------------------------------------------------------------------------------------
# Allow-listed callables (each checks its arguments; none can reach code execution)
# --------------------------------------------------------------------------------------------


def _reconstruct_persistent_obj(meta: Any) -> PersistentStub:
    """Replacement for the official reconstructor: keep ``class_name`` and ``state``, never exec."""
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise UnsafePickleError("persistent object: meta is not a dict with type 'class'")
    class_name, state = meta.get("class_name"), meta.get("state")
    if not isinstance(class_name, str) or not isinstance(state, dict):
        raise UnsafePickleError("persistent object: meta lacks a str class_name and a dict state")
    return PersistentStub(class_name, state)


def _load_storage_from_bytes(blob: Any) -> torch.storage.TypedStorage:
    """Replacement for ``torch.storage._load_from_bytes``: the nested blob goes through weights_only."""
    if not isinstance(blob, (bytes, bytearray)):
        raise UnsafePickleError(f"_load_from_bytes: expected bytes, got {type(blob).__name__}")
    try:
        storage = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, ... for hostile blobs
        raise UnsafePickleError(f"torch.storage._load_from_bytes: nested blob refused by "
                                f"torch.load(weights_only=True): {exc}") from exc
    if not isinstance(storage, torch.storage.TypedStorage):
        raise UnsafePickleError(f"_load_from_bytes: nested blob holds a {type(storage).__name__}, not a storage")
    return storage


def _check_int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list, torch.Size)) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise UnsafePickleError(f"tensor rebuild: {what} must be a tuple of ints, got {value!r:.80}")
    return tuple(value)


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any) -> torch.Tensor:
    """Checked ``torch._utils._rebuild_tensor``: a view of a loaded storage (bounds checked by torch)."""
    if not isinstance(storage, torch.storage.TypedStorage):
        raise UnsafePickleError(f"tensor rebuild: expected a storage, got {type(storage).__name__}")
    if not isinstance(offset, int) or isinstance(offset, bool):
        raise UnsafePickleError(f"tensor rebuild: storage offset must be an int, got {offset!r:.80}")
    size, stride = _check_int_tuple(size, "size"), _check_int_tuple(stride, "stride")
    _check_view_bounds(offset, size, stride, storage.size())
    try:
        return torch._utils._rebuild_tensor(storage, offset, size, stride)
    except RuntimeError as exc:
        raise UnsafePickleError(f"tensor rebuild failed: {exc}") from exc


def _check_view_bounds(offset: int, size: tuple[int, ...], stride: tuple[int, ...], numel: int) -> None:
    """Refuse views reaching past their storage: ``Tensor.set_`` would silently grow it instead."""
    if len(size) != len(stride) or offset < 0 or min(size, default=0) < 0 or min(stride, default=0) < 0:
        raise UnsafePickleError(f"tensor rebuild: malformed view offset={offset} size={size} stride={stride}")
    if 0 in size:
        return
    last = offset + sum((n - 1) * st for n, st in zip(size, stride))
    if last >= numel:
        raise UnsafePickleError(f"tensor rebuild: view offset={offset} size={size} stride={stride} reaches "
                                f"past its storage of {numel} elements")


def _rebuild_tensor_v2(
    storage: Any,
    offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any = False,
    backward_hooks: Any = None,
    metadata: Any = None,
) -> torch.Tensor:
    """Checked ``torch._utils._rebuild_tensor_v2``; hooks must be empty and ``requires_grad`` is dropped."""
    if backward_hooks:
        raise UnsafePickleError("tensor rebuild: a tensor carries backward hooks")
    tensor = _rebuild_tensor(storage, offset, size, stride)
    if metadata:
        if not isinstance(metadata, dict):
            raise UnsafePickleError("tensor rebuild: metadata must be a dict")
        torch._utils.set_tensor_metadata(tensor, metadata)
    return tensor


def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None) -> torch.Tensor:
    """``torch._utils._rebuild_parameter`` reduced to its data: the plain tensor."""
    if not isinstance(data, torch.Tensor):
        raise UnsafePickleError(f"parameter rebuild: expected a tensor, got {type(data).__name__}")
    if backward_hooks:
        raise UnsafePickleError("parameter rebuild: a parameter carries backward hooks")
    return data


def _numpy_multiarray() -> Any:
    try:
        import numpy._core.multiarray as multiarray  # numpy >= 2 (and 1.26's forward alias)
    except ImportError:  # pragma: no cover - numpy < 1.26
        import numpy.core.multiarray as multiarray
    return multiarray


def _allowed_globals() -> dict[tuple[str, str], Callable[..., Any] | type]:
    """Every ``(module, name)`` an official pickle may name, mapped to what it resolves to."""
    multiarray = _numpy_multiarray()
    table: dict[tuple[str, str], Callable[..., Any] | type] = {
        ("collections", "OrderedDict"): OrderedDict,
        ("builtins", "set"): set,
        ("dnnlib.util", "EasyDict"): EasyDict,
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,  # files from torch < 0.4
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
        ("numpy", "dtype"): np.dtype,
        ("numpy", "ndarray"): np.ndarray,
    }
    # numpy < 2 wrote numpy.core.*, numpy >= 2 writes numpy._core.*; both resolve to the module in use.
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        table[(module, "scalar")] = multiarray.scalar
        table[(module, "_reconstruct")] = multiarray._reconstruct
    return table


_STUB_PREFIXES = ("training.", "torch.nn.modules.")


def _is_stub_name(module: str, name: str) -> bool:
    """``training.*`` and ``torch.nn.modules.*`` classes: replaced by inert stubs, never imported."""
    return (module == "training" or module.startswith(_STUB_PREFIXES)) and name.isidentifier()


class RestrictedUnpickler(pickle.Unpickler):
    """A :class:`pickle.Unpickler` that resolves only the allow-list of official EG3D pickles.

    Subclasses (``warpinv.weights.torch_checkpoint``) widen it through ``_allowed``, ``_stub_base``,
    :meth:`_is_stub` and :meth:`_refusal`; the order of :meth:`find_class` stays: allow-list, stub, refusal.
    """

    _allowed = _allowed_globals()
    _stub_base: type[ObjectStub] = ObjectStub

    def __init__(self, file: io.BufferedIOBase) -> None:
        super().__init__(file)
        self._stub_classes: dict[str, type[ObjectStub]] = {}

    def find_class(self, module: str, name: str) -> Any:
        """Resolve ``module.name`` from the allow-list, a stub class, or raise :class:`UnsafePickleError`."""
        target = self._allowed.get((module, name))
        if target is not None:
            return target
        if self._is_stub(module, name):
            return self._stub_class(f"{module}.{name}")
        raise UnsafePickleError(f"refused global {module}.{name}: {self._refusal()}")

    def _is_stub(self, module: str, name: str) -> bool:
        """Whether ``module.name`` becomes an inert stub class instead of being refused."""
        return _is_stub_name(module, name)

    def _refusal(self) -> str:
        """Why a global outside the allow-list and the stubs is refused (the end of the error message)."""
        return "not in the allow-list of official EG3D network pickles"

    def persistent_load(self, pid: Any) -> Any:
        """Official network pickles use no persistent ids at the top level."""
        raise UnsafePickleError(f"refused persistent id {pid!r:.80}: official network pickles have none")

    def _stub_class(self, qualified_name: str) -> type[ObjectStub]:
        cls = self._stub_classes.get(qualified_name)
        if cls is None:
            short = qualified_name.rsplit(".", 1)[-1]
            cls = type(short, (self._stub_base,), {"qualified_name": qualified_name})
            self._stub_classes[qualified_name] = cls
        return cls


# --------------------------------------------------------------------------------------------
# Reading a file
# --------------------------------------------------------------------------------------------


def load_network_pickle_data(path: str | os.PathLike) -> Any:
    """Unpickle a whole official network pickle with :class:`RestrictedUnpickler`.

    Raises:
        FileNotFoundError: no such file.
        UnsafePickleError: a refused global or persistent id, or a file that is not a (complete)
            pickle; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"network pickle {str(path)!r} does not exist")
    with open(path, "rb") as f:
        _check_header(path, f.read(2))
        f.seek(0)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="TypedStorage is deprecated")
                return RestrictedUnpickler(f).load()
        except UnsafePickleError as exc:
            raise UnsafePickleError(f"{path}: {exc}") from exc
        except Exception as exc:  # EOFError, UnpicklingError, ... from a truncated or corrupt file
            raise UnsafePickleError(f"{path}: not a valid network pickle (truncated or corrupt?): "
                                    f"{type(exc).__name__}: {exc}") from exc


def _check_header(path: Path, head: bytes) -> None:
    """Refuse early, with a hint, files that cannot be a protocol >= 2 pickle."""
    if head[:2] == b"PK":
        raise UnsafePickleError(f"{path}: a zip archive (a torch.save checkpoint?), not an official network pickle")
    if len(head) < 2 or head[0] != pickle.PROTO[0] or head[1] < _MIN_PROTOCOL:
        raise UnsafePickleError(f"{path}: not a network pickle (no pickle protocol >= {_MIN_PROTOCOL} header)")


def read_network_pickle(path: str | os.PathLike, key: str = "G_ema") -> NetworkPickle:
    """Extract one network (by default ``G_ema``) from an official EG3D network pickle, safely.

    Args:
        path: the ``.pkl`` file.
        key: the top-level entry: ``"G_ema"`` (inference weights), ``"G"`` or ``"D"``.

    Returns:
        The network's class name, its ``state_dict()`` (official names and order, CPU tensors of
        the stored shapes and dtypes), constructor kwargs and rendering attributes.

    Raises:
        FileNotFoundError: no such file.
        UnsafePickleError: the file reaches for a global outside the allow-list, or is malformed.
        KeyError: ``key`` is not a top-level entry (the message lists those there are).
        ValueError: the entry is not a network.
    """
    data = load_network_pickle_data(path)
    if not isinstance(data, dict):
        raise UnsafePickleError(f"{path}: top level is a {type(data).__name__}, not a dict of networks")
    if key not in data:
        raise KeyError(f"{path}: no entry {key!r}; available: {', '.join(map(repr, data))}")
    net = data[key]
    if not isinstance(net, (PersistentStub, ObjectStub)):
        raise ValueError(f"{path}: entry {key!r} is a {type(net).__name__}, not a network")
    state = net.state
    try:
        init_kwargs = _plain(state.get("_init_kwargs", {}))
        nrr = _plain(state.get("neural_rendering_resolution"))
        rendering_kwargs = _plain(state.get("rendering_kwargs"))
    except (TypeError, RecursionError) as exc:
        raise ValueError(f"{path}: entry {key!r}: {exc}") from exc
    if not isinstance(init_kwargs, dict) or not (nrr is None or isinstance(nrr, int)):
        raise ValueError(f"{path}: entry {key!r} has malformed _init_kwargs or neural_rendering_resolution")
    if not (rendering_kwargs is None or isinstance(rendering_kwargs, dict)):
        raise ValueError(f"{path}: entry {key!r} has a malformed rendering_kwargs")
    return NetworkPickle(
        class_name=net.class_name,
        state_dict=extract_state_dict(net),
        init_kwargs=init_kwargs,
        neural_rendering_resolution=nrr,
        rendering_kwargs=rendering_kwargs,
    )


# --------------------------------------------------------------------------------------------
# From stubs to a state dict
# --------------------------------------------------------------------------------------------


def extract_state_dict(net: PersistentStub | ObjectStub) -> OrderedDict[str, torch.Tensor]:
    """Rebuild ``net.state_dict()`` from the pickled module ``__dict__`` tree.

    Per module: ``_parameters`` (skipping ``None``), then ``_buffers`` not in
    ``_non_persistent_buffers_set``, then each child of ``_modules`` in order, names joined by '.'.
    """
    return OrderedDict(_walk(net, "", ()))


def _walk(node: Any, prefix: str, ancestors: tuple[int, ...]) -> Iterator[tuple[str, torch.Tensor]]:
    if not isinstance(node, (PersistentStub, ObjectStub)):
        raise UnsafePickleError(f"module {prefix.rstrip('.') or '<root>'!r} is a {type(node).__name__}, not a module")
    if id(node) in ancestors:  # only a hostile file nests a module inside itself
        raise UnsafePickleError(f"module {prefix.rstrip('.')!r} contains itself")
    state = node.state
    skipped = state.get("_non_persistent_buffers_set") or set()
    if not isinstance(skipped, (set, frozenset, list, tuple)):
        raise UnsafePickleError(f"module {prefix.rstrip('.') or '<root>'!r}: malformed _non_persistent_buffers_set")
    for name, tensor in _entries(state, "_parameters", prefix):
        yield prefix + name, tensor
    for name, tensor in _entries(state, "_buffers", prefix):
        if name not in skipped:
            yield prefix + name, tensor
    for name, child in _mapping(state, "_modules", prefix).items():
        if child is not None:
            yield from _walk(child, f"{prefix}{name}.", (*ancestors, id(node)))


def _entries(state: dict, field: str, prefix: str) -> Iterator[tuple[str, torch.Tensor]]:
    for name, value in _mapping(state, field, prefix).items():
        if value is None:
            continue
        if not isinstance(value, torch.Tensor):
            raise UnsafePickleError(f"{prefix}{name}: {field} entry is a {type(value).__name__}, not a tensor")
        yield name, value.detach()


def _mapping(state: dict, field: str, prefix: str) -> Mapping[str, Any]:
    value = state.get(field) or {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise UnsafePickleError(f"module {prefix.rstrip('.') or '<root>'!r}: {field} is not a dict of names")
    return value


def _plain(value: Any) -> Any:
    """Convert to JSON-like Python: dicts, lists, str/int/float/bool/None (numpy scalars via ``.item()``)."""
    if isinstance(value, np.generic):  # before the builtins: np.float64 subclasses float
        return value.item()
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    raise TypeError(f"cannot convert a {type(value).__name__} to a plain value")
