"""Reading released torch checkpoints that hold foreign objects: exact tensors, inert stubs, nothing ever runs."""
from __future__ import annotations

import argparse
import enum
import io
import os
import pickle
import struct
import subprocess
import sys
import types
import typing
import zipfile
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch

from warpinv.weights.network_pickle import ObjectStub, UnsafePickleError
from warpinv.weights.torch_checkpoint import (
    DEFAULT_STUB_MODULES,
    CheckpointReadError,
    CheckpointRefusedError,
    ForeignStub,
    read_torch_checkpoint,
    state_dict_from,
)

# ---------------------------------------------------------------------------------------------
# OmegaConf look-alikes: importable only while a checkpoint is saved; their methods leave a trace if run
# ---------------------------------------------------------------------------------------------


def _ran(state: dict, what: str) -> None:
    Path(state["_marker"]).write_text(f"{what} ran")


class FakeContainerMetadata:
    """Pickles like omegaconf.base.ContainerMetadata (a dataclass: NEWOBJ + BUILD of its __dict__)."""

    __module__, __qualname__ = "omegaconf.base", "ContainerMetadata"

    def __init__(self, key: Any) -> None:
        self.ref_type, self.object_type, self.optional, self.key = typing.Any, dict, True, key
        self.flags, self.flags_root = {"struct": True}, False
        self.resolver_cache: defaultdict = defaultdict(dict)
        self.key_type, self.element_type = int, str  # protocol 2 writes these as __builtin__.long / .unicode


class FakeAnyNode:
    __module__, __qualname__ = "omegaconf.nodes", "AnyNode"

    def __init__(self, value: Any, key: str, parent: Any, marker: Path) -> None:
        self.__dict__.update(_val=value, _metadata=FakeContainerMetadata(key), _parent=parent, _marker=str(marker),
                             _flags_cache=None)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_flags_cache"}

    def __setstate__(self, state: dict) -> None:
        _ran(state, "AnyNode.__setstate__")


class FakeDictConfig:
    __module__, __qualname__ = "omegaconf.dictconfig", "DictConfig"

    def __init__(self, content: dict, marker: Path) -> None:
        nodes = {key: FakeAnyNode(value, key, self, marker) for key, value in content.items()}
        self.__dict__.update(_metadata=FakeContainerMetadata(None), _parent=None, _content=nodes,
                             _marker=str(marker), _flags_cache=None)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_flags_cache"}

    def __setstate__(self, state: dict) -> None:
        _ran(state, "DictConfig.__setstate__")

    def explode(self) -> None:
        _ran(self.__dict__, "DictConfig.explode")


class FakeValueKind(enum.Enum):
    """An enum of a stub module: pickled as REDUCE(cls, (value,))."""

    __module__, __qualname__ = "omegaconf._utils", "ValueKind"
    VALUE = 0
    INTERPOLATION = 1


FAKES = (FakeContainerMetadata, FakeAnyNode, FakeDictConfig, FakeValueKind)


@contextmanager
def omegaconf_importable() -> Iterator[None]:
    """Register the look-alikes as ``omegaconf.*`` modules, and take them away again on exit."""
    saved = {name: sys.modules.get(name) for name in
             ("omegaconf", *{cls.__module__ for cls in FAKES})}
    try:
        for name in saved:
            sys.modules[name] = types.ModuleType(name)
        for cls in FAKES:
            setattr(sys.modules[cls.__module__], cls.__qualname__, cls)
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """A file that foreign code creates if it ever runs; it must never exist."""
    return tmp_path / "pwned"


@pytest.fixture
def no_omegaconf(monkeypatch: pytest.MonkeyPatch) -> None:
    """While loading, ``import omegaconf`` fails: a reader that imported it would break, not pass."""
    for name in ("omegaconf", *{cls.__module__ for cls in FAKES}):
        monkeypatch.setitem(sys.modules, name, None)


def psp_like_state_dict() -> OrderedDict[str, torch.Tensor]:
    """A module ``state_dict()`` (with its ``_metadata``) plus a strided view sharing another entry's storage,
    and entries of several dtypes."""
    gen = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(5, 6))
    state = net.state_dict()
    base = torch.randn(3, 5, generator=gen)
    state["latent_avg"] = base
    state["latent_avg_view"] = base[1:, 1:4]  # offset 6, stride (5, 1): same storage
    state["half"] = torch.randn(2, 3, generator=gen).to(torch.bfloat16)
    state["mask"] = torch.tensor([True, False, True])
    state["nan"] = torch.tensor([float("nan"), -0.0, float("inf")])
    return state


def save_gan_encoder(path: Path, marker: Path, **save_kwargs: Any) -> dict[str, Any]:
    """A checkpoint shaped like WarpGAN's ``gan_encoder.pt``; returns what was saved."""
    saved: dict[str, Any] = {
        "psp_state_dict": psp_like_state_dict(),
        "opts": FakeDictConfig({"lr": 1e-4, "exp_dir": "runs/x", "sizes": [1, 2]}, marker),
        "step": 1000,
        "best_val_loss": 0.25,
        "param": torch.nn.Parameter(torch.linspace(-1, 1, 6).reshape(2, 3)),
        "kind": FakeValueKind.INTERPOLATION,
        "blob": b"\x00\xffraw",
    }
    with omegaconf_importable():
        torch.save(saved, path, **save_kwargs)
    return saved


def assert_bit_identical(got: torch.Tensor, expected: torch.Tensor) -> None:
    assert type(got) is torch.Tensor and got.dtype == expected.dtype and got.shape == expected.shape
    assert got.stride() == expected.stride() and got.storage_offset() == expected.storage_offset()
    assert got.device.type == "cpu"
    assert torch.equal(got.reshape(-1).view(torch.uint8), expected.detach().reshape(-1).view(torch.uint8))


def assert_stub(obj: Any, qualified_name: str) -> None:
    """A stub of ``qualified_name`` whose class carries no method of the original."""
    cls = type(obj)
    assert isinstance(obj, ForeignStub) and cls.qualified_name == qualified_name
    assert cls.__mro__ == (cls, ForeignStub, ObjectStub, object)
    assert {name for name in vars(cls) if not name.startswith("__")} == {"qualified_name"}
    assert cls not in FAKES and not hasattr(obj, "explode")


# ---------------------------------------------------------------------------------------------
# what comes back
# ---------------------------------------------------------------------------------------------


def test_plain_checkpoint_is_read_by_torch_weights_only(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "plain.pt"
    state = psp_like_state_dict()
    torch.save({"state_dict": state, "step": 3, "param": torch.nn.Parameter(torch.ones(2))}, path)
    expected = torch.load(path, map_location="cpu", weights_only=True)
    with caplog.at_level("DEBUG", logger="warpinv.weights.torch_checkpoint"):
        for weights_only in (False, True):
            got = read_torch_checkpoint(path, weights_only=weights_only)
            assert got.keys() == expected.keys() and got["step"] == 3
            assert isinstance(got["param"], torch.nn.Parameter)  # torch's own loader: types kept
            for name, t in state_dict_from(got, "state_dict").items():
                assert_bit_identical(t, state[name])
    assert not caplog.records  # never went past step 1


def test_legacy_format_plain_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "legacy.pt"
    state = psp_like_state_dict()
    torch.save(state, path, _use_new_zipfile_serialization=False)
    got = state_dict_from(read_torch_checkpoint(path), None)
    assert list(got) == list(state)
    for name, t in got.items():
        assert_bit_identical(t, state[name])


@pytest.mark.parametrize("opts_as_vars", [False, True], ids=["gan_encoder", "inpaintor"])
def test_checkpoint_with_omegaconf_objects(tmp_path: Path, marker: Path, opts_as_vars: bool,
                                           caplog: pytest.LogCaptureFixture,
                                           request: pytest.FixtureRequest) -> None:
    path = tmp_path / "ckpt.pt"
    saved = save_gan_encoder(path, marker)
    if opts_as_vars:  # inpaintor.pt stores vars(opts): a plain dict holding OmegaConf objects
        saved["opts"] = dict(vars(saved["opts"]))
        with omegaconf_importable():
            torch.save(saved, path)

    request.getfixturevalue("no_omegaconf")
    with pytest.raises(pickle.UnpicklingError, match="omegaconf"):
        torch.load(path, map_location="cpu", weights_only=True)  # what weights_only=True alone does
    with pytest.raises(CheckpointRefusedError, match=r"omegaconf\.(dictconfig|base|nodes)") as info:
        read_torch_checkpoint(path, weights_only=True)
    assert "Please use" not in str(info.value) and str(path) in str(info.value)

    with caplog.at_level("INFO", logger="warpinv.weights.torch_checkpoint"):
        got = read_torch_checkpoint(path)
    assert "omegaconf.dictconfig.DictConfig" in caplog.text and "omegaconf.nodes.AnyNode" in caplog.text

    state = state_dict_from(got, "psp_state_dict")
    expected = saved["psp_state_dict"]
    assert list(state) == list(expected)
    for name, t in state.items():
        assert_bit_identical(t, expected[name])
    assert state["latent_avg_view"].untyped_storage().data_ptr() == state["latent_avg"].untyped_storage().data_ptr()
    assert got["psp_state_dict"]._metadata == expected._metadata  # OrderedDict attribute kept
    assert_bit_identical(got["param"], saved["param"].detach())  # a Parameter comes back as its data
    assert (got["step"], got["best_val_loss"], got["blob"]) == (1000, 0.25, b"\x00\xffraw")

    opts = got["opts"]
    if opts_as_vars:
        assert isinstance(opts, dict) and set(opts) == {"_metadata", "_parent", "_content", "_marker", "_flags_cache"}
        content = opts["_content"]
        assert_stub(content["lr"].state["_parent"], "omegaconf.dictconfig.DictConfig")
    else:
        assert_stub(opts, "omegaconf.dictconfig.DictConfig")
        assert (opts.args, opts.kwargs, opts.dict_items, opts.list_items) == ((), {}, {}, [])
        content = opts.state["_content"]
        assert content["lr"].state["_parent"] is opts  # the reference cycle of the config tree survives
    node = content["lr"]
    assert_stub(node, "omegaconf.nodes.AnyNode")
    assert node.state["_val"] == 1e-4 and content["sizes"].state["_val"] == [1, 2]
    meta = node.state["_metadata"]
    assert_stub(meta, "omegaconf.base.ContainerMetadata")
    assert meta.state["ref_type"] is typing.Any and meta.state["object_type"] is dict
    assert meta.state["key_type"] is int and meta.state["element_type"] is str
    cache = meta.state["resolver_cache"]
    assert isinstance(cache, defaultdict) and cache.default_factory is dict

    kind = got["kind"]
    assert_stub(kind, "omegaconf._utils.ValueKind")
    assert kind.args == (1,) and kind.state == {}  # REDUCE(cls, (value,)): the call's arguments are kept as data
    assert not marker.exists()
    assert all(sys.modules.get(name) is None for name in ("omegaconf", "omegaconf.dictconfig", "omegaconf.nodes"))


def test_stubs_of_real_classes_and_protocol_4(tmp_path: Path) -> None:
    """argparse.Namespace and pathlib paths are stubbed by default; a protocol-4 pickle (FRAME, which torch's
    weights-only loader does not read) goes through the restricted reader."""
    path = tmp_path / "args.pt"
    weights = {"w": torch.arange(6.0).reshape(2, 3)}
    torch.save({"net": weights, "args": argparse.Namespace(lr=0.1, out=Path("a/b"))}, path)
    got = read_torch_checkpoint(path)
    assert_stub(got["args"], "argparse.Namespace")
    out = got["args"].state["out"]
    assert type(out).qualified_name.startswith("pathlib.") and out.args == ("a", "b")
    assert got["args"].state["lr"] == 0.1
    assert_bit_identical(state_dict_from(got, "net")["w"], weights["w"])

    path4 = tmp_path / "p4.pt"
    torch.save({"net": weights, "sizes": torch.Size([2, 3]), "dtype": torch.float16}, path4, pickle_protocol=4)
    got4 = read_torch_checkpoint(path4)
    assert got4["sizes"] == torch.Size([2, 3]) and got4["dtype"] is torch.float16
    assert_bit_identical(state_dict_from(got4, "net")["w"], weights["w"])
    with pytest.raises(CheckpointRefusedError, match="Unsupported operand"):
        read_torch_checkpoint(path4, weights_only=True)


def test_untyped_storage_and_custom_stub_modules(tmp_path: Path, marker: Path, request: pytest.FixtureRequest
                                                 ) -> None:
    path = tmp_path / "ckpt.pt"
    raw = torch.tensor([1, 2, 250], dtype=torch.uint8)
    with omegaconf_importable():
        torch.save({"raw": raw.untyped_storage(), "opts": FakeDictConfig({"a": 1}, marker)}, path)
    request.getfixturevalue("no_omegaconf")
    storage = read_torch_checkpoint(path)["raw"]
    assert isinstance(storage, torch.storage.TypedStorage) and storage.dtype == torch.uint8
    assert storage.tolist() == [1, 2, 250]
    with pytest.raises(CheckpointRefusedError, match=r"omegaconf\.dictconfig\.DictConfig.*stub modules: none"):
        read_torch_checkpoint(path, stub_modules=())
    with pytest.raises(CheckpointRefusedError, match=r"omegaconf\.base\.ContainerMetadata.*omegaconf\.dictconfig"):
        read_torch_checkpoint(path, stub_modules=("omegaconf.dictconfig",))
    assert read_torch_checkpoint(path, stub_modules=("omegaconf",))["opts"].state["_content"]["a"].state["_val"] == 1
    with pytest.raises(TypeError, match="sequence of module names"):
        read_torch_checkpoint(path, stub_modules="omegaconf")  # type: ignore[arg-type]
    assert "omegaconf" in DEFAULT_STUB_MODULES and not marker.exists()


# ---------------------------------------------------------------------------------------------
# hostile files: refused, and nothing runs
# ---------------------------------------------------------------------------------------------


def rewrite_zip(src: Path, dst: Path, records: dict[str, bytes]) -> Path:
    """A copy of the torch zip ``src`` with some records (``data.pkl``, ``byteorder``, ...) replaced or added."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        prefix = next(n for n in zin.namelist() if n.endswith("/data.pkl"))[: -len("data.pkl")]
        replaced = {prefix + name: data for name, data in records.items()}
        for info in zin.infolist():
            if info.filename not in replaced:
                zout.writestr(info.filename, zin.read(info))
        for name, data in replaced.items():
            zout.writestr(name, data)
    return dst


def text(value: str) -> bytes:
    encoded = value.encode()
    return pickle.BINUNICODE + struct.pack("<I", len(encoded)) + encoded


def call_pickle(module: str, name: str, *args: str, as_list: bool = False) -> bytes:
    """Protocol-2 opcodes of ``module.name(*args)`` (``module.name([*args])`` with ``as_list``), written by hand."""
    arguments = b"".join(text(a) for a in args)
    packed = (pickle.MARK + arguments + pickle.LIST + pickle.TUPLE1) if as_list else (
        pickle.MARK + arguments + pickle.TUPLE)
    return (pickle.PROTO + b"\x02" + pickle.GLOBAL + f"{module}\n{name}\n".encode() + packed + pickle.REDUCE
            + pickle.STOP)


@pytest.fixture
def real_zip(tmp_path: Path) -> Path:
    path = tmp_path / "real.pt"
    torch.save({"w": torch.arange(4.0)}, path)
    return path


# (module, name, arguments with {m} for the marker, pass them as one list, the global named in the refusal)
HOSTILE_CALLS = [
    ("os", "system", ("touch {m}",), False, "os.system"),
    ("posix", "system", ("touch {m}",), False, "posix.system"),
    ("builtins", "exec", ("open({m!r}, 'w')",), False, "builtins.exec"),
    ("__builtin__", "eval", ("open({m!r}, 'w')",), False, "builtins.eval"),  # protocol 2's name of builtins
    ("builtins", "getattr", ("x", "y"), False, "builtins.getattr"),
    ("subprocess", "Popen", ("touch", "{m}"), True, "subprocess.Popen"),
]


@pytest.mark.parametrize(("module", "name", "args", "as_list", "refused"), HOSTILE_CALLS)
def test_hand_crafted_hostile_pickles_are_refused(real_zip: Path, tmp_path: Path, marker: Path, module: str,
                                                  name: str, args: tuple[str, ...], as_list: bool,
                                                  refused: str) -> None:
    data = call_pickle(module, name, *(a.format(m=str(marker)) for a in args), as_list=as_list)
    path = rewrite_zip(real_zip, tmp_path / "hostile.pt", {"data.pkl": data})
    for weights_only in (True, False):
        with pytest.raises(CheckpointRefusedError) as info:
            read_torch_checkpoint(path, weights_only=weights_only)
        assert isinstance(info.value, UnsafePickleError) and str(path) in str(info.value)
        assert name in info.value.reason
    with pytest.raises(CheckpointRefusedError, match=rf"refused global {refused}: neither"):
        read_torch_checkpoint(path)
    assert not marker.exists()


class Reduces:
    """Pickles as ``func(*args)``: how an attacker writes a hostile object."""

    def __init__(self, func: Callable[..., Any], *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return self.func, self.args


def test_hostile_call_after_stubs_is_refused(tmp_path: Path, marker: Path, request: pytest.FixtureRequest) -> None:
    """A real torch.save file whose opts are stubbed and whose next entry calls os.system."""
    path = tmp_path / "mixed.pt"
    with omegaconf_importable():
        torch.save({"opts": FakeDictConfig({"a": 1}, marker), "w": torch.ones(2),
                    "x": Reduces(os.system, f"touch {marker}")}, path)
    request.getfixturevalue("no_omegaconf")
    with pytest.raises(CheckpointRefusedError, match=r"refused global (posix|nt|os)\.system"):
        read_torch_checkpoint(path)
    assert not marker.exists()


def test_a_stub_module_global_called_with_a_command_is_inert(real_zip: Path, tmp_path: Path, marker: Path) -> None:
    path = rewrite_zip(real_zip, tmp_path / "call.pt",
                       {"data.pkl": call_pickle("omegaconf.nodes", "system", f"touch {marker}")})
    got = read_torch_checkpoint(path)
    assert_stub(got, "omegaconf.nodes.system")
    assert got.args == (f"touch {marker}",) and got.state == {} and not marker.exists()


class Pid:
    """Pickled as the persistent id ``ids`` by :func:`pickle_with_ids`."""

    def __init__(self, *ids: Any) -> None:
        self.ids = ids


def pickle_with_ids(obj: Any) -> bytes:
    class WithIds(pickle.Pickler):
        def persistent_id(self, o: Any) -> Any:
            return o.ids if isinstance(o, Pid) else None

    buf = io.BytesIO()
    with omegaconf_importable():
        WithIds(buf, protocol=2).dump(obj)
    return buf.getvalue()


def tensor_of(pid: Pid, offset: int, size: tuple[int, ...], stride: tuple[int, ...]) -> Reduces:
    return Reduces(torch._utils._rebuild_tensor_v2, pid, offset, size, stride, False, OrderedDict())


@pytest.mark.parametrize(("pid", "offset", "size", "stride", "error", "message"), [
    (("storage", torch.FloatStorage, "0", "cpu", 4), 0, (2,), (1,), None, None),
    (("storage", torch.FloatStorage, "9", "cpu", 4), 0, (2,), (1,), CheckpointReadError, "no record"),
    (("storage", torch.FloatStorage, "0", "cpu", 9), 0, (2,), (1,), CheckpointReadError, "holds 16 bytes"),
    (("storage", torch.FloatStorage, "0", "cpu", 4), 3, (2,), (1,), CheckpointRefusedError, "reaches past"),
    (("storage", "FloatStorage", "0", "cpu", 4), 0, (2,), (1,), CheckpointRefusedError, "not a storage type"),
    (("storage", torch.FloatStorage, "../0", "cpu", 4), 0, (2,), (1,), CheckpointRefusedError, "malformed key"),
    (("module", "os"), 0, (2,), (1,), CheckpointRefusedError, "refused persistent id"),
])
def test_malformed_storage_references(real_zip: Path, tmp_path: Path, marker: Path, pid: tuple, offset: int,
                                      size: tuple[int, ...], stride: tuple[int, ...], error: type[Exception] | None,
                                      message: str | None) -> None:
    # The stub comes first, so torch's weights-only loader refuses before it reads the storage.
    data = pickle_with_ids({"opts": FakeDictConfig({}, marker), "w": tensor_of(Pid(*pid), offset, size, stride)})
    path = rewrite_zip(real_zip, tmp_path / "pid.pt", {"data.pkl": data})
    if error is None:
        assert_bit_identical(read_torch_checkpoint(path)["w"], torch.arange(2.0))
    else:
        with pytest.raises(error, match=message):
            read_torch_checkpoint(path)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------
# broken files
# ---------------------------------------------------------------------------------------------


def test_torn_empty_and_foreign_files(tmp_path: Path, marker: Path) -> None:
    path = tmp_path / "ckpt.pt"
    save_gan_encoder(path, marker)
    data = path.read_bytes()
    cases = {
        "torn.pt": (data[: len(data) // 2], "Error: "),
        "no_tail.pt": (data[:-10], "Error: "),
        "empty.pt": (b"", "empty file"),
        "random.pt": (b"\x13" + torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(1),
                                                dtype=torch.uint8).numpy().tobytes(), "neither a torch zip"),
        "text.pt": (b"hello: world\n", "neither a torch zip"),
    }
    for name, (content, cause) in cases.items():
        broken = tmp_path / name
        broken.write_bytes(content)
        for weights_only in (False, True):
            with pytest.raises(CheckpointReadError, match="truncated or corrupt") as info:
                read_torch_checkpoint(broken, weights_only=weights_only)
            assert str(broken) in str(info.value) and cause in info.value.cause and info.value.path == broken
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        read_torch_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(FileNotFoundError):
        read_torch_checkpoint(tmp_path)


def test_corrupt_storage_bytes_and_foreign_zips(tmp_path: Path, marker: Path) -> None:
    path = tmp_path / "ckpt.pt"
    saved = save_gan_encoder(path, marker)
    data = bytearray(path.read_bytes())
    needle = saved["psp_state_dict"]["latent_avg"].numpy().tobytes()
    at = data.index(needle)
    data[at + 5] ^= 0xFF  # inside a storage record: its CRC-32 no longer matches
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(bytes(data))
    with pytest.raises(CheckpointReadError, match="(?i)crc"):
        read_torch_checkpoint(corrupt)

    other_zip = tmp_path / "other.pt"
    with zipfile.ZipFile(other_zip, "w") as z:
        z.writestr("notes.txt", "not a checkpoint")
    with pytest.raises(CheckpointReadError, match="truncated or corrupt"):
        read_torch_checkpoint(other_zip)

    big = rewrite_zip(path, tmp_path / "big.pt", {"byteorder": b"big"})
    with pytest.raises(CheckpointReadError, match="'big'-endian"):
        read_torch_checkpoint(big)


def test_legacy_format_with_foreign_objects_is_refused(tmp_path: Path, marker: Path) -> None:
    path = tmp_path / "legacy.pt"
    save_gan_encoder(path, marker, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointRefusedError, match="legacy, non-zip format"):
        read_torch_checkpoint(path)
    assert not marker.exists()


def test_errors_survive_pickling(tmp_path: Path) -> None:
    for err in (CheckpointReadError(tmp_path, "empty file"), CheckpointRefusedError(tmp_path, "os.system")):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and str(back) == str(err)


# ---------------------------------------------------------------------------------------------
# state_dict_from
# ---------------------------------------------------------------------------------------------


def test_state_dict_from() -> None:
    flat = OrderedDict([("b", torch.zeros(2)), ("a", torch.ones(1, 3))])
    checkpoint = {"psp_state_dict": flat, "step": 3, "opts": {"lr": 0.1}}
    got = state_dict_from(checkpoint, "psp_state_dict")
    assert type(got) is dict and list(got) == ["b", "a"] and got["a"] is flat["a"]
    assert list(state_dict_from(flat, None)) == ["b", "a"]
    with pytest.raises(KeyError, match="no entry 'inpaintor_state_dict'.*'psp_state_dict', 'step', 'opts'"):
        state_dict_from(checkpoint, "inpaintor_state_dict")
    with pytest.raises(TypeError, match=r"entry 'opts'\['lr'\] is a float"):
        state_dict_from(checkpoint, "opts")
    with pytest.raises(TypeError, match="entry 'step' is a int, not a mapping"):
        state_dict_from(checkpoint, "step")
    with pytest.raises(TypeError, match=r"the checkpoint\['psp_state_dict'\] is a OrderedDict"):
        state_dict_from(checkpoint, None)
    with pytest.raises(TypeError, match="the checkpoint is a list"):
        state_dict_from([flat], "psp_state_dict")
    with pytest.raises(TypeError, match="under a int name"):
        state_dict_from({0: torch.zeros(1)}, None)


def test_package_exports_lazily() -> None:
    import warpinv.weights as weights

    assert weights.read_torch_checkpoint is read_torch_checkpoint and weights.ForeignStub is ForeignStub
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = weights.nope
    code = "import sys, warpinv.weights; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


def test_resolve_file_takes_a_path_or_a_registered_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from warpinv.weights import MissingWeightsError, resolve_file

    path = tmp_path / "x.pt"
    path.write_bytes(b"data")
    assert resolve_file(str(path)) == path
    monkeypatch.setenv("WARPINV_WEIGHTS", str(tmp_path / "empty"))
    with pytest.raises(MissingWeightsError, match="gan_encoder.pt"):
        resolve_file("warpgan-encoder")
    with pytest.raises(FileNotFoundError, match="not a registered weight name"):
        resolve_file(str(tmp_path / "absent.pt"))
