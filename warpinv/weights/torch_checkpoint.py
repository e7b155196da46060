"""Read ``torch.save`` checkpoints of other projects without running anything they contain.

The project's rule: a checkpoint never goes through torch's unrestricted unpickler (``weights_only`` off), since
unpickling it could run any code it carries. :func:`read_torch_checkpoint` is the one place that loads torch
checkpoints:

1. ``torch.load(path, map_location="cpu", weights_only=True)`` reads every plain checkpoint (tensors in
   dicts, lists, tuples and ``OrderedDict``\\ s, numbers, strings).
2. Released checkpoints often also hold configuration objects (WarpGAN's ``gan_encoder.pt`` carries its
   OmegaConf ``DictConfig`` as ``opts``), which torch's weights-only loader refuses. When it refuses a file
   of torch's zip format (torch >= 1.6) for a global or an opcode, the file is read again with
   :class:`TorchZipUnpickler`: the allow-list of :mod:`warpinv.weights.network_pickle` (tensor rebuilders
   with bounds checks, ``OrderedDict``, numpy scalars) plus storages, built-in types and a few typing names;
   every class or function of a *stub module* (``omegaconf``, ``argparse``, ...) becomes an inert
   :class:`ForeignStub` that keeps the pickled arguments and state as data. Nothing is imported.
3. Any other global is refused (:class:`CheckpointRefusedError`, an
   :class:`~warpinv.weights.network_pickle.UnsafePickleError`), and a torn, truncated or foreign file is a
   :class:`CheckpointReadError`; both name the file.

torch's zip layout: ``<archive>/data.pkl`` is the pickle; each storage is the uncompressed record
``<archive>/data/<key>``, referenced from the pickle by the persistent id
``('storage', storage_type, key, location, numel)``, where ``storage_type`` is ``torch.FloatStorage`` and the
like (``numel`` elements of its dtype) or ``torch.storage.UntypedStorage`` (``numel`` bytes).

:func:`state_dict_from` then picks the ``name -> tensor`` mapping out of what was read.
"""
from __future__ import annotations

import _compat_pickle
import io
import logging
import os
import pickle
import sys
import typing
import warnings
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from warpinv.weights.network_pickle import ObjectStub, RestrictedUnpickler, UnsafePickleError

__all__ = [
    "DEFAULT_STUB_MODULES",
    "CheckpointReadError",
    "CheckpointRefusedError",
    "ForeignStub",
    "TorchZipUnpickler",
    "UnsafePickleError",
    "read_torch_checkpoint",
    "state_dict_from",
]

logger = logging.getLogger(__name__)

#: Modules whose classes and functions become inert stubs by default: configuration objects that released
#: checkpoints carry next to their tensors (OmegaConf / Hydra configs, ``argparse.Namespace``,
#: ``easydict.EasyDict``, ``pathlib`` paths).
DEFAULT_STUB_MODULES: tuple[str, ...] = ("omegaconf", "argparse", "easydict", "pathlib")

_ZIP_MAGIC = b"PK\x03\x04"
_READ_CHUNK = 1 << 24  # bytes per read of a storage record


class CheckpointReadError(ValueError):
    """A file that is not a readable torch checkpoint: empty, torn, truncated, corrupt or of another format.

    Attributes:
        path: the file.
        cause: what is wrong with it (the end of the message).
    """

    def __init__(self, path: str | os.PathLike[str], cause: str) -> None:
        super().__init__(f"{path}: unreadable torch checkpoint (truncated or corrupt?): {cause}")
        self.path = Path(path)
        self.cause = cause

    def __reduce__(self) -> tuple[type, tuple[Path, str]]:  # picklable across processes despite two arguments
        return type(self), (self.path, self.cause)


class CheckpointRefusedError(UnsafePickleError):
    """A checkpoint refused without running it: its pickle reaches for a global outside the allow-list and
    the stub modules (or, read weights-only, for anything torch's weights-only loader refuses).

    Attributes:
        path: the file.
        reason: the refused global or opcode (the end of the message).
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"{path}: unsafe checkpoint, nothing in it ran: {reason}")
        self.path = Path(path)
        self.reason = reason

    def __reduce__(self) -> tuple[type, tuple[Path, str]]:
        return type(self), (self.path, self.reason)


class ForeignStub(ObjectStub):
    """Inert stand-in for a class or function of a stub module; the reader makes one subclass per global.

    Whether the pickle calls the global (``REDUCE``, ``NEWOBJ``) or builds it (``BUILD``, ``SETITEMS``,
    ``APPENDS``), the stub only records what it was given; no method of the original class exists here.

    Attributes:
        qualified_name: ``module.name`` of the original global (on the class).
        args, kwargs: the arguments the pickle called the global with (``()`` / ``{}`` for plain objects).
        state: the pickled state, usually the object's ``__dict__`` (``{}`` when none was pickled).
        dict_items, list_items: entries the pickle stored into it (subclasses of ``dict`` / ``list``).
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> ForeignStub:
        obj = super().__new__(cls)
        obj.args, obj.kwargs = args, kwargs
        obj.dict_items, obj.list_items = {}, []
        return obj

    def __setstate__(self, state: Any) -> None:
        # (dict, slot dict) is what objects with __slots__ pickle: one dict of both is easier to read.
        if isinstance(state, tuple) and len(state) == 2 and all(p is None or isinstance(p, dict) for p in state):
            state = {**(state[0] or {}), **(state[1] or {})}
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.dict_items[key] = value

    def append(self, value: Any) -> None:
        self.list_items.append(value)

    def extend(self, values: Iterable[Any]) -> None:
        self.list_items.extend(values)


# --------------------------------------------------------------------------------------------
# What a torch checkpoint may name besides the network-pickle allow-list
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _StorageKind:
    """What a storage class named in a persistent id resolves to: its dtype, nothing callable."""

    name: str
    dtype: torch.dtype


_STORAGE_DTYPES = {
    "DoubleStorage": torch.float64, "FloatStorage": torch.float32, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
    "ComplexDoubleStorage": torch.complex128, "ComplexFloatStorage": torch.complex64,
}
# Not bytes: bytes(n) would allocate n zero bytes for a tiny pickle.
_BUILTIN_TYPES = (dict, list, tuple, set, frozenset, str, int, float, bool, complex)
_TYPING_NAMES = ("Any", "Dict", "List", "Tuple", "Set", "Optional", "Union")
_DTYPE_NAMES = ("float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool",
                "complex64", "complex128")


def _latin1_bytes(text: Any, encoding: Any = "latin1") -> bytes:
    """``_codecs.encode`` as pickle protocol 2 uses it for ``bytes``: ``(str, 'latin1') -> bytes``, nothing else."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"_codecs.encode: only (str, 'latin1') is allowed, got {type(text).__name__}, "
                                f"{encoding!r:.40}")
    return text.encode("latin1")


def _defaultdict(factory: Any = None, *items: Any) -> defaultdict:
    """``collections.defaultdict`` whose factory is a built-in container or number type, ``None`` or a stub."""
    if not (factory is None or factory in _BUILTIN_TYPES
            or (isinstance(factory, type) and issubclass(factory, ForeignStub))):
        raise UnsafePickleError(f"defaultdict: refused default factory {factory!r:.80}")
    return defaultdict(factory, *items)


def _checkpoint_globals() -> dict[tuple[str, str], Any]:
    """The globals a torch checkpoint may name on top of :mod:`~warpinv.weights.network_pickle`'s."""
    table: dict[tuple[str, str], Any] = {("torch", name): _StorageKind(name, dtype)
                                         for name, dtype in _STORAGE_DTYPES.items()}
    table[("torch.storage", "UntypedStorage")] = _StorageKind("UntypedStorage", torch.uint8)
    table.update({("builtins", t.__name__): t for t in _BUILTIN_TYPES})
    table.update({("typing", name): getattr(typing, name) for name in _TYPING_NAMES})
    table.update({("torch", name): getattr(torch, name) for name in _DTYPE_NAMES})
    table[("torch", "Size")] = torch.Size
    table[("torch", "device")] = torch.device
    table[("collections", "defaultdict")] = _defaultdict
    table[("_codecs", "encode")] = _latin1_bytes
    return table


def _python3_name(module: str, name: str) -> tuple[str, str]:
    """The Python 3 name of a global. Protocol 2 (torch's default) writes Python 2 names for built-ins, e.g.
    ``__builtin__.long`` for ``int``; the stock ``find_class`` maps them back, and so must ours."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def _is_module_name(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and all(part.isidentifier() for part in value.split("."))


def _check_stub_modules(stub_modules: Sequence[str]) -> tuple[str, ...]:
    if isinstance(stub_modules, str) or not all(_is_module_name(m) for m in stub_modules):
        raise TypeError(f"stub_modules must be a sequence of module names such as ('omegaconf',), got "
                        f"{stub_modules!r:.120}")
    return tuple(stub_modules)


# --------------------------------------------------------------------------------------------
# The unpickler of data.pkl
# --------------------------------------------------------------------------------------------

#: ``(key, dtype, numel) -> storage``: how :class:`TorchZipUnpickler` gets the storage a persistent id names.
StorageLoader = Callable[[str, torch.dtype, int], torch.storage.TypedStorage]


class TorchZipUnpickler(RestrictedUnpickler):
    """Unpickle a torch zip checkpoint's ``data.pkl`` with the network-pickle allow-list, storages read by
    ``load_storage`` and every global of ``stub_modules`` replaced by a :class:`ForeignStub` subclass."""

    _allowed = {**RestrictedUnpickler._allowed, **_checkpoint_globals()}
    _stub_base = ForeignStub

    def __init__(self, file: io.BufferedIOBase, load_storage: StorageLoader, stub_modules: Sequence[str]) -> None:
        super().__init__(file)
        self._load_storage = load_storage
        self._stub_modules = _check_stub_modules(stub_modules)

    @property
    def stubbed(self) -> list[str]:
        """``module.name`` of every global replaced by a stub so far, in the order met."""
        return list(self._stub_classes)

    def find_class(self, module: str, name: str) -> Any:
        """Resolve ``module.name``: allow-list, stub class, or :class:`UnsafePickleError`."""
        return super().find_class(*_python3_name(module, name))

    def _is_stub(self, module: str, name: str) -> bool:
        in_stub_module = any(module == m or module.startswith(m + ".") for m in self._stub_modules)
        return in_stub_module and _is_module_name(name)

    def _refusal(self) -> str:
        stubs = ", ".join(self._stub_modules) or "none"
        return (f"neither a tensor rebuilder, container or number of the allow-list nor in a stub module "
                f"(stub modules: {stubs})")

    def persistent_load(self, pid: Any) -> torch.storage.TypedStorage:
        """``('storage', storage_type, key, location, numel)`` -> the CPU storage of record ``data/<key>``."""
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] in ("storage", b"storage")):
            raise UnsafePickleError(f"refused persistent id {pid!r:.80}: not ('storage', type, key, location, "
                                    "numel)")
        _, kind, key, location, numel = pid
        if not isinstance(kind, _StorageKind):
            raise UnsafePickleError(f"persistent id {pid!r:.80}: {kind!r:.40} is not a storage type")
        if isinstance(key, bytes):
            key = key.decode("ascii", "replace")
        if not (isinstance(key, str) and key.isalnum() and isinstance(location, (str, bytes))):
            raise UnsafePickleError(f"persistent id {pid!r:.80}: malformed key or location")
        if not isinstance(numel, int) or isinstance(numel, bool) or numel < 0:
            raise UnsafePickleError(f"persistent id {pid!r:.80}: numel must be a non-negative int")
        return self._load_storage(key, kind.dtype, numel)


# --------------------------------------------------------------------------------------------
# The zip archive
# --------------------------------------------------------------------------------------------


class _ZipCheckpoint:
    """The records of one torch zip checkpoint: its pickle and its storages (each read once, CRC-checked)."""

    def __init__(self, archive: zipfile.ZipFile, path: Path) -> None:
        self.archive, self.path = archive, path
        self.prefix = self._prefix()
        self._storages: dict[str, torch.storage.TypedStorage] = {}
        self._check_byteorder()

    def _prefix(self) -> str:
        pickles = [n for n in self.archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise CheckpointReadError(self.path, f"not a torch zip checkpoint: {len(pickles)} '<archive>/data.pkl' "
                                                 "records instead of one")
        return pickles[0][: -len("data.pkl")]

    def _check_byteorder(self) -> None:
        name = self.prefix + "byteorder"
        order = self.archive.read(name) if name in self.archive.namelist() else b"little"
        if order != sys.byteorder.encode():
            raise CheckpointReadError(self.path, f"storages are {order.decode('ascii', 'replace')!r}-endian; only "
                                                 f"{sys.byteorder}-endian checkpoints can be read with stubs")

    def pickle_bytes(self) -> bytes:
        return self.archive.read(self.prefix + "data.pkl")

    def storage(self, key: str, dtype: torch.dtype, numel: int) -> torch.storage.TypedStorage:
        """The storage of record ``data/<key>``: ``numel`` elements of ``dtype``, on the CPU."""
        storage = self._storages.get(key)
        if storage is None:
            storage = self._read_storage(key, dtype, numel)
            self._storages[key] = storage
        if storage.dtype != dtype or storage.size() != numel:
            raise UnsafePickleError(f"storage {key!r} is named as {numel} x {dtype} and as {storage.size()} x "
                                    f"{storage.dtype}")
        return storage

    def _read_storage(self, key: str, dtype: torch.dtype, numel: int) -> torch.storage.TypedStorage:
        name = f"{self.prefix}data/{key}"
        try:
            info = self.archive.getinfo(name)
        except KeyError:
            raise CheckpointReadError(self.path, f"the pickle names storage {key!r} but there is no record "
                                                 f"{name!r}") from None
        nbytes = numel * dtype.itemsize
        if info.compress_type != zipfile.ZIP_STORED or info.file_size != nbytes:
            raise CheckpointReadError(self.path, f"record {name!r} holds {info.file_size} bytes (compression "
                                                 f"{info.compress_type}); its persistent id says {numel} x {dtype} "
                                                 f"= {nbytes} bytes, stored")
        if nbytes > self.path.stat().st_size:  # a central directory may claim any size: allocate none of it
            raise CheckpointReadError(self.path, f"record {name!r} claims {nbytes} bytes, more than the file holds")
        buffer = bytearray(nbytes)
        view, filled = memoryview(buffer), 0
        with self.archive.open(info) as f:  # reading to the end checks the record's CRC-32
            while filled < nbytes:
                got = f.readinto(view[filled: filled + _READ_CHUNK])
                if not got:
                    raise CheckpointReadError(self.path, f"record {name!r} ends early (truncated?)")
                filled += got
            f.read()
        untyped = torch.frombuffer(buffer, dtype=torch.uint8).untyped_storage() if nbytes else torch.UntypedStorage()
        return torch.storage.TypedStorage(wrap_storage=untyped, dtype=dtype, _internal=True)


# --------------------------------------------------------------------------------------------
# Reading a file
# --------------------------------------------------------------------------------------------


def _file_kind(path: Path) -> str:
    """``"zip"`` (torch >= 1.6) or ``"pickle"`` (legacy ``torch.save``, plain pickles); anything else is refused."""
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        raise CheckpointReadError(path, "empty file")
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    if len(head) >= 2 and head[0] == pickle.PROTO[0] and 2 <= head[1] <= pickle.HIGHEST_PROTOCOL:
        return "pickle"
    raise CheckpointReadError(path, f"neither a torch zip checkpoint nor a pickle (it starts with {head!r})")


def _torch_refusal_reason(err: Exception) -> str:
    """The line of torch's refusal that names the global or opcode (not its advice to drop the protection)."""
    for line in str(err).splitlines():
        if "GLOBAL" in line or "nsupported" in line:
            return line.split("WeightsUnpickler error:")[-1].split(" Please use")[0].strip()
    return "a forbidden global or opcode"


def _load_weights_only(path: Path) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Weights only load failed" in str(err):
            raise CheckpointRefusedError(path, _torch_refusal_reason(err)) from None
        raise CheckpointReadError(path, f"UnpicklingError: {str(err)[:200]}") from err
    except Exception as err:  # torn zip (RuntimeError), truncated pickle (EOFError), ...
        raise CheckpointReadError(path, f"{type(err).__name__}: {str(err)[:200]}") from err


def _worth_retrying(reason: str) -> bool:
    """Refusals that the stub reader handles: a global, or an opcode of pickle protocol >= 4 (``FRAME``)."""
    return "GLOBAL" in reason or "Unsupported operand" in reason or "Unsupported class" in reason


def _load_with_stubs(path: Path, stub_modules: tuple[str, ...]) -> Any:
    try:
        with zipfile.ZipFile(path) as archive:
            checkpoint = _ZipCheckpoint(archive, path)
            unpickler = TorchZipUnpickler(io.BytesIO(checkpoint.pickle_bytes()), checkpoint.storage, stub_modules)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="TypedStorage is deprecated")
                data = unpickler.load()
    except (CheckpointReadError, CheckpointRefusedError):
        raise
    except UnsafePickleError as exc:
        raise CheckpointRefusedError(path, str(exc)) from exc
    except Exception as exc:  # BadZipFile (CRC), EOFError, UnpicklingError, TypeError of a malformed call, ...
        raise CheckpointReadError(path, f"malformed archive or pickle: {type(exc).__name__}: {str(exc)[:200]}") from exc
    if unpickler.stubbed:
        logger.info("%s: read with inert stubs for %s", path, ", ".join(unpickler.stubbed))
    return data


def read_torch_checkpoint(
    path: str | os.PathLike[str],
    *,
    stub_modules: Sequence[str] = DEFAULT_STUB_MODULES,
    weights_only: bool = False,
) -> Any:
    """Read a ``torch.save`` file onto the CPU without running anything it contains.

    Args:
        path: the checkpoint (torch's zip format, or the legacy format for plain checkpoints).
        stub_modules: modules whose globals become inert :class:`ForeignStub` subclasses (a module and all
            its submodules), e.g. ``("omegaconf",)`` for ``omegaconf.dictconfig.DictConfig``.
        weights_only: read with ``torch.load(..., weights_only=True)`` only: whatever it refuses is refused.

    Returns:
        What was saved: dicts, ``OrderedDict``\\ s, lists, tuples, numbers, strings, numpy scalars, CPU
        tensors of the stored shapes, dtypes and values (``nn.Parameter``\\ s come back as plain tensors when
        stubs were needed), :class:`torch.storage.TypedStorage`\\ s, and stubs.

    Raises:
        FileNotFoundError: no such file.
        CheckpointRefusedError: a global outside the allow-list and ``stub_modules`` (e.g. ``os.system``),
            or a malformed tensor or storage reference; nothing from the file ran.
        CheckpointReadError: an empty, torn, truncated or corrupt file, or one that is no torch checkpoint.

    Example:
        >>> import argparse, tempfile
        >>> path = Path(tempfile.mkdtemp()) / "encoder.pt"
        >>> torch.save({"net": {"w": torch.ones(2, 3)}, "opts": argparse.Namespace(lr=0.1)}, path)
        >>> checkpoint = read_torch_checkpoint(path)
        >>> checkpoint["opts"], checkpoint["opts"].state
        (<stub argparse.Namespace>, {'lr': 0.1})
        >>> {name: tuple(t.shape) for name, t in state_dict_from(checkpoint, "net").items()}
        {'w': (2, 3)}
        >>> read_torch_checkpoint(path, weights_only=True)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        warpinv.weights.torch_checkpoint.CheckpointRefusedError: ...: unsafe checkpoint, ...argparse.Namespace...
    """
    path = Path(path)
    stub_modules = _check_stub_modules(stub_modules)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist or is not a file")
    kind = _file_kind(path)
    try:
        return _load_weights_only(path)
    except CheckpointRefusedError as refusal:
        if weights_only or not _worth_retrying(refusal.reason):
            raise
        if kind != "zip":
            raise CheckpointRefusedError(path, f"{refusal.reason} (a file of the legacy, non-zip format is read "
                                               "weights-only: no stubs)") from None
        logger.debug("%s: %s; reading it again with the restricted unpickler", path, refusal.reason)
    return _load_with_stubs(path, stub_modules)


def state_dict_from(checkpoint: Any, key: str | None = None) -> dict[str, Tensor]:
    """The ``name -> tensor`` mapping under ``checkpoint[key]``, or ``checkpoint`` itself when ``key`` is ``None``.

    Args:
        checkpoint: what :func:`read_torch_checkpoint` returned.
        key: the top-level entry holding the state dict (``"psp_state_dict"``), or ``None`` for a checkpoint that
            is a state dict.

    Returns:
        A new dict in the stored order: parameter / buffer name -> CPU tensor of its stored shape and dtype.

    Raises:
        KeyError: ``key`` is absent (the message lists the keys there are).
        TypeError: the checkpoint or the entry is not a mapping, or holds a non-string name or a non-tensor value.

    Example:
        >>> state_dict_from({"step": 3, "net": {"fc.weight": torch.zeros(4, 2)}}, "net")["fc.weight"].shape
        torch.Size([4, 2])
        >>> state_dict_from({"step": 3}, "ema")
        Traceback (most recent call last):
        ...
        KeyError: "no entry 'ema' in the checkpoint; available: 'step'"
    """
    if key is None:
        entry, where = checkpoint, "the checkpoint"
    else:
        if not isinstance(checkpoint, Mapping):
            raise TypeError(f"the checkpoint is a {type(checkpoint).__name__}, not a dict with an entry {key!r}")
        if key not in checkpoint:
            raise KeyError(f"no entry {key!r} in the checkpoint; available: {', '.join(map(repr, checkpoint))}")
        entry, where = checkpoint[key], f"entry {key!r}"
    if not isinstance(entry, Mapping):
        raise TypeError(f"{where} is a {type(entry).__name__}, not a mapping of names to tensors")
    state: dict[str, Tensor] = {}
    for name, value in entry.items():
        if not isinstance(name, str) or not isinstance(value, Tensor):
            raise TypeError(f"{where}[{name!r:.80}] is a {type(value).__name__} under a {type(name).__name__} name; "
                            "a state dict maps str names to tensors")
        state[name] = value
    return state
