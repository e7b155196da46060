"""Restricted reading of official EG3D network pickles: exact extraction, and nothing in a file ever runs."""
from __future__ import annotations

import io
import json
import os
import pickle
import struct
import subprocess
import sys
import types
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import require_fixture
from warpinv.weights.network_pickle import (
    NetworkPickle,
    RestrictedUnpickler,
    UnsafePickleError,
    extract_state_dict,
    read_network_pickle,
    sha256_file,
)

# The globals named by a pickle written by the current official code (reference (e)).
OFFICIAL_GLOBALS = {
    "collections.OrderedDict",
    "dnnlib.util.EasyDict",
    "numpy.dtype",
    "numpy._core.multiarray.scalar",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_tensor_v2",
    "torch.nn.modules.activation.Softplus",
    "torch.nn.modules.container.Sequential",
    "torch.storage._load_from_bytes",
    "torch_utils.persistence._reconstruct_persistent_obj",
    "training.triplane.OSGDecoder",
    "training.volumetric_rendering.renderer.ImportanceRenderer",
    "training.volumetric_rendering.ray_sampler.RaySampler",
    "training.volumetric_rendering.ray_marcher.MipRayMarcher2",
}


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def safetensors_header_order(path: Path) -> list[str]:
    """Tensor names of a safetensors file in storage order (8-byte LE header length, JSON header)."""
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    header.pop("__metadata__", None)
    return sorted(header, key=lambda name: header[name]["data_offsets"][0])


def official_state_dict_order() -> list[str]:
    """``state_dict()`` names of a TriPlaneGenerator in official order, as the official code listed them."""
    manifest = json.loads(require_fixture("eg3d", "ffhq512_manifest.json").read_text())
    return [entry["name"] for entry in manifest["state_dict"]]


def write_pickle(path: Path, obj: Any, protocol: int = 4) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def call_global(module: str, name: str, arg: str | bytes) -> bytes:
    """Opcode-level protocol-2 pickle of ``module.name(arg)``."""
    encoded = arg.encode() if isinstance(arg, str) else arg
    opcode = pickle.BINUNICODE if isinstance(arg, str) else pickle.BINBYTES
    return (pickle.PROTO + b"\x02" + pickle.GLOBAL + f"{module}\n{name}\n".encode()
            + opcode + struct.pack("<I", len(encoded)) + encoded
            + pickle.TUPLE1 + pickle.REDUCE + pickle.STOP)


class Reduces:
    """An object that pickles as ``func(*args)``: how an attacker writes a hostile pickle."""

    def __init__(self, func: Callable[..., Any], *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return self.func, self.args


def install_global(monkeypatch: pytest.MonkeyPatch, module: str, name: str, obj: Any) -> Any:
    """Make ``obj`` picklable by reference as ``module.name`` (fake modules, removed after the test)."""
    parts = module.split(".")
    for i in range(1, len(parts) + 1):
        dotted = ".".join(parts[:i])
        if dotted not in sys.modules:
            monkeypatch.setitem(sys.modules, dotted, types.ModuleType(dotted))
    monkeypatch.setattr(sys.modules[module], name, obj, raising=False)
    obj.__module__, obj.__qualname__ = module, name
    return obj


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """A file that hostile payloads try to create; it must never exist."""
    return tmp_path / "pwned"


@pytest.fixture(scope="module")
def official() -> NetworkPickle:
    return read_network_pickle(require_fixture("eg3d", "official_format_small.pkl"))


# ---------------------------------------------------------------------------------------------
# the official-format fixture
# ---------------------------------------------------------------------------------------------


def test_fixture_extraction_is_bit_identical(official: NetworkPickle) -> None:
    expected_path = require_fixture("eg3d", "official_format_small_G_ema.safetensors")
    expected = load_file(expected_path)
    assert len(official.state_dict) == 176
    assert sorted(official.state_dict) == sorted(safetensors_header_order(expected_path))
    for name, tensor in official.state_dict.items():
        ref = expected[name]
        assert tensor.dtype == ref.dtype and tensor.shape == ref.shape, name
        assert torch.equal(tensor, ref), name
        assert not tensor.requires_grad and tensor.device.type == "cpu"


def test_fixture_extraction_keeps_official_order(official: NetworkPickle) -> None:
    # The expected .safetensors cannot carry the order: its writer stores entries sorted by name
    # (checked here so this test notices if that ever changes). The official order comes from the
    # manifest, which lists state_dict() of the same architecture as the official code produced it.
    header = safetensors_header_order(require_fixture("eg3d", "official_format_small_G_ema.safetensors"))
    assert header == sorted(header)
    order = official_state_dict_order()
    assert order != sorted(order)
    assert list(official.state_dict) == order
    assert list(official.state_dict)[:2] == ["backbone.synthesis.b4.const", "backbone.synthesis.b4.resample_filter"]


def test_fixture_init_kwargs_and_attributes(official: NetworkPickle) -> None:
    expected = json.loads(require_fixture("eg3d", "official_format_small_init_kwargs.json").read_text())
    assert official.class_name == "TriPlaneGenerator"
    assert official.init_kwargs == expected
    assert type(official.init_kwargs["mapping_kwargs"]) is dict  # EasyDict became a plain dict
    assert type(official.init_kwargs["sr_kwargs"]) is dict
    assert official.neural_rendering_resolution == 128
    assert type(official.neural_rendering_resolution) is int
    assert official.rendering_kwargs == expected["rendering_kwargs"]
    json.dumps(official.init_kwargs)  # plain values only


def test_fixture_globals_are_exactly_the_documented_ones() -> None:
    seen: set[str] = set()

    class Recording(RestrictedUnpickler):
        def find_class(self, module: str, name: str) -> Any:
            seen.add(f"{module}.{name}")
            return super().find_class(module, name)

    with open(require_fixture("eg3d", "official_format_small.pkl"), "rb") as f:
        data = Recording(f).load()
    assert seen == OFFICIAL_GLOBALS
    assert list(data) == ["training_set_kwargs", "G", "D", "G_ema", "augment_pipe"]


def test_fixture_other_keys() -> None:
    path = require_fixture("eg3d", "official_format_small.pkl")
    g = read_network_pickle(path, "G")
    assert g.class_name == "TriPlaneGenerator" and list(g.state_dict) == official_state_dict_order()
    d = read_network_pickle(path, "D")
    assert d.class_name == "DualDiscriminator" and len(d.state_dict) > 0
    with pytest.raises(KeyError, match="available: 'training_set_kwargs', 'G', 'D', 'G_ema', 'augment_pipe'"):
        read_network_pickle(path, "G_missing")
    with pytest.raises(ValueError, match="'augment_pipe' is a NoneType, not a network"):
        read_network_pickle(path, "augment_pipe")


# ---------------------------------------------------------------------------------------------
# extraction rules on hand-made pickles of the same shape
# ---------------------------------------------------------------------------------------------


def test_walk_reproduces_torch_state_dict(tmp_path: Path) -> None:
    """Plain torch modules (torch.nn.modules.* stubs): parameters, persistent buffers, children."""
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Softplus())
    net[0].register_buffer("scratch", torch.ones(2), persistent=False)
    net[0].register_parameter("unused", None)
    net[1].register_buffer("absent", None)
    net.eval().requires_grad_(False)
    path = write_pickle(tmp_path / "seq.pkl", {"G_ema": net})
    got = read_network_pickle(path)
    ref = net.state_dict()
    assert got.class_name == "Sequential"
    assert list(got.state_dict) == list(ref)
    assert "0.scratch" not in got.state_dict
    for name, tensor in ref.items():
        assert torch.equal(got.state_dict[name], tensor) and got.state_dict[name].dtype == tensor.dtype


@pytest.fixture
def official_names(monkeypatch: pytest.MonkeyPatch, marker: Path) -> types.SimpleNamespace:
    """Stand-ins under the official names, written the way the official code writes them."""

    def reconstruct(meta: dict) -> Any:  # what the official reconstructor does first
        exec(compile(meta["module_src"], "<module_src>", "exec"), {})

    class EasyDict(dict):
        pass

    class OSGDecoder:
        pass

    install_global(monkeypatch, "torch_utils.persistence", "_reconstruct_persistent_obj", reconstruct)
    install_global(monkeypatch, "dnnlib.util", "EasyDict", EasyDict)
    install_global(monkeypatch, "training.triplane", "OSGDecoder", OSGDecoder)

    def persistent(class_name: str, state: dict) -> Reduces:
        meta = dict(type="class", version=6, module_src=f"open({str(marker)!r}, 'w').write('ran')",
                    class_name=class_name, state=state)
        return Reduces(reconstruct, meta)

    def module_state(params: dict, buffers: dict | None = None, children: dict | None = None,
                     non_persistent: set[str] | None = None) -> dict:
        return dict(training=False, _parameters=OrderedDict(params), _buffers=OrderedDict(buffers or {}),
                    _non_persistent_buffers_set=non_persistent or set(), _modules=OrderedDict(children or {}))

    return types.SimpleNamespace(persistent=persistent, module_state=module_state, EasyDict=EasyDict,
                                 OSGDecoder=OSGDecoder)


def test_persistent_objects_never_execute_module_src(tmp_path: Path, marker: Path,
                                                     official_names: types.SimpleNamespace) -> None:
    ns = official_names
    w, b, buf, fc = (torch.randn(4, 3), torch.randn(4), torch.arange(5), torch.randn(2, 2, dtype=torch.float64))
    decoder = ns.OSGDecoder()  # a plain training.* object: NEWOBJ + BUILD(__dict__)
    fc_layer = ns.persistent("FullyConnectedLayer", ns.module_state({"weight": fc}))
    decoder.__dict__.update(ns.module_state({}, children={"net": fc_layer}))
    params = {"weight": torch.nn.Parameter(w), "bias": b, "gone": None}
    buffers = {"buf": buf, "tmp": torch.zeros(1)}
    layer = ns.persistent("SynthesisLayer", ns.module_state(params, buffers, non_persistent={"tmp"}))
    root_state = ns.module_state({}, children={"layer": layer, "none": None, "decoder": decoder})
    root_state.update(_init_kwargs={"z_dim": 8, "mapping_kwargs": ns.EasyDict(num_layers=2),
                                    "gain": np.float64(0.5), "pivot": (0, 0, 0.2)},
                      neural_rendering_resolution=np.int64(64), rendering_kwargs=ns.EasyDict(box_warp=1))
    data = pickle.dumps({"G_ema": ns.persistent("TriPlaneGenerator", root_state)}, protocol=4)

    # The payload is real: the official way of loading (plain pickle) runs module_src.
    pickle.loads(data)
    assert marker.read_text() == "ran"
    marker.unlink()

    (tmp_path / "net.pkl").write_bytes(data)
    got = read_network_pickle(tmp_path / "net.pkl")
    assert not marker.exists()
    assert got.class_name == "TriPlaneGenerator"
    assert list(got.state_dict) == ["layer.weight", "layer.bias", "layer.buf", "decoder.net.weight"]
    for name, ref in zip(got.state_dict, (w, b, buf, fc)):
        assert torch.equal(got.state_dict[name], ref) and got.state_dict[name].dtype == ref.dtype
    assert type(got.state_dict["layer.weight"]) is torch.Tensor  # parameters come back as plain tensors
    assert got.init_kwargs == {"z_dim": 8, "mapping_kwargs": {"num_layers": 2}, "gain": 0.5, "pivot": [0, 0, 0.2]}
    assert type(got.init_kwargs["gain"]) is float and type(got.init_kwargs["mapping_kwargs"]) is dict
    assert got.neural_rendering_resolution == 64 and type(got.neural_rendering_resolution) is int
    assert got.rendering_kwargs == {"box_warp": 1}


@pytest.mark.parametrize("numpy_module", [b"numpy._core.multiarray", b"numpy.core.multiarray"])
def test_numpy_values_from_either_numpy_generation(tmp_path: Path, numpy_module: bytes) -> None:
    """numpy < 2 wrote ``numpy.core.multiarray``; arrays go through ``_reconstruct`` + ``numpy.ndarray``."""
    net = torch.nn.Linear(2, 1)
    net.__dict__["_init_kwargs"] = {"gain": np.float64(0.25), "res": np.int64(64), "pivot": np.arange(3.0)}
    net.__dict__["neural_rendering_resolution"] = np.int32(32)
    data = pickle.dumps({"G_ema": net}, protocol=3)  # protocol 3 names globals as text: easy to rewrite
    assert data.count(b"numpy._core.multiarray") >= 2
    path = tmp_path / "np.pkl"
    path.write_bytes(data.replace(b"numpy._core.multiarray", numpy_module))
    got = read_network_pickle(path)
    assert got.init_kwargs == {"gain": 0.25, "res": 64, "pivot": [0.0, 1.0, 2.0]}
    assert [type(v) for v in got.init_kwargs.values()] == [float, int, list]
    assert got.neural_rendering_resolution == 32 and type(got.neural_rendering_resolution) is int
    assert list(got.state_dict) == ["weight", "bias"]


def test_persistent_meta_must_be_well_formed(tmp_path: Path, official_names: types.SimpleNamespace,
                                             marker: Path) -> None:
    bad = Reduces(sys.modules["torch_utils.persistence"]._reconstruct_persistent_obj,
                  {"type": "class", "class_name": "X", "module_src": f"open({str(marker)!r}, 'w')"})
    path = write_pickle(tmp_path / "bad.pkl", {"G_ema": bad})
    with pytest.raises(UnsafePickleError, match="lacks a str class_name and a dict state"):
        read_network_pickle(path)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------
# hostile pickles
# ---------------------------------------------------------------------------------------------


def assert_refused(path: Path, marker: Path, *patterns: str) -> UnsafePickleError:
    with pytest.raises(UnsafePickleError) as info:
        read_network_pickle(path)
    message = str(info.value)
    assert str(path) in message
    for pattern in patterns:
        assert pattern in message, message
    assert not marker.exists()
    return info.value


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_os_system_is_refused(tmp_path: Path, marker: Path, protocol: int) -> None:
    evil = Reduces(os.system, f"touch {marker}")
    path = write_pickle(tmp_path / "evil.pkl", {"G_ema": evil}, protocol)
    assert_refused(path, marker, f"refused global {os.system.__module__}.system")


def test_protocol_0_pickle_is_refused_before_reading(tmp_path: Path, marker: Path) -> None:
    path = write_pickle(tmp_path / "evil.pkl", Reduces(os.system, f"touch {marker}"), protocol=0)
    assert_refused(path, marker, "not a network pickle")


def test_eval_is_refused(tmp_path: Path, marker: Path) -> None:
    evil = Reduces(eval, f"open({str(marker)!r}, 'w')")
    assert_refused(write_pickle(tmp_path / "evil.pkl", {"G_ema": evil}), marker, "refused global builtins.eval")


def test_popen_is_refused(tmp_path: Path, marker: Path) -> None:
    evil = Reduces(subprocess.Popen, ["touch", str(marker)])
    assert_refused(write_pickle(tmp_path / "evil.pkl", {"G_ema": evil}), marker,
                   "refused global subprocess.Popen")


def test_nested_loaders_are_refused(tmp_path: Path, marker: Path) -> None:
    inner = pickle.dumps(Reduces(os.system, f"touch {marker}"))
    (tmp_path / "inner.pkl").write_bytes(inner)
    via_pickle = tmp_path / "via_pickle.pkl"
    via_pickle.write_bytes(call_global("pickle", "loads", inner))
    assert_refused(via_pickle, marker, "refused global pickle.loads")
    via_torch = tmp_path / "via_torch.pkl"
    via_torch.write_bytes(call_global("torch", "load", str(tmp_path / "inner.pkl")))
    assert_refused(via_torch, marker, "refused global torch.load")
    via_serialization = tmp_path / "via_serialization.pkl"
    via_serialization.write_bytes(call_global("torch.serialization", "load", str(tmp_path / "inner.pkl")))
    assert_refused(via_serialization, marker, "refused global torch.serialization.load")


def test_only_pure_torch_rebuilders_are_allowed(tmp_path: Path, marker: Path) -> None:
    # _rebuild_from_type_v2 calls a function taken from the pickle; never allowed.
    path = tmp_path / "evil.pkl"
    path.write_bytes(call_global("torch._utils", "_rebuild_from_type_v2", "x"))
    assert_refused(path, marker, "refused global torch._utils._rebuild_from_type_v2")


@pytest.mark.parametrize("legacy_torch_save", [True, False])
def test_hostile_blob_inside_load_from_bytes_is_refused(tmp_path: Path, marker: Path, legacy_torch_save: bool) -> None:
    evil = Reduces(os.system, f"touch {marker}")
    if legacy_torch_save:  # the official storage blob format, carrying a payload
        buf = io.BytesIO()
        torch.save(evil, buf, _use_new_zipfile_serialization=False)
        blob = buf.getvalue()
    else:
        blob = pickle.dumps(evil, protocol=2)
    storage = Reduces(torch.storage._load_from_bytes, blob)
    tensor = Reduces(torch._utils._rebuild_tensor_v2, storage, 0, (1,), (1,), False, OrderedDict())
    path = write_pickle(tmp_path / "evil.pkl", {"G_ema": tensor})
    assert_refused(path, marker, "_load_from_bytes", "weights_only")


def test_blob_holding_a_non_storage_is_refused(tmp_path: Path, marker: Path) -> None:
    buf = io.BytesIO()
    torch.save({"a": 1}, buf, _use_new_zipfile_serialization=False)
    path = write_pickle(tmp_path / "odd.pkl", {"G_ema": Reduces(torch.storage._load_from_bytes, buf.getvalue())})
    assert_refused(path, marker, "holds a dict, not a storage")


@pytest.mark.parametrize(("offset", "size", "stride", "message"), [
    (0, (1000,), (1,), "reaches past its storage of 3 elements"),
    (2, (2,), (1,), "reaches past its storage of 3 elements"),
    (0, (3, 2), (1, 1), "reaches past its storage of 3 elements"),
    (0, (2,), (-1,), "malformed view"),
    (-1, (1,), (1,), "malformed view"),
    (0, (2,), (1, 1), "malformed view"),
])
def test_tensor_view_past_its_storage_is_refused(tmp_path: Path, marker: Path, offset: int, size: tuple[int, ...],
                                                 stride: tuple[int, ...], message: str) -> None:
    # Tensor.set_ would silently grow the storage to fit (uninitialised memory, or a huge allocation).
    typed = torch.storage.TypedStorage(wrap_storage=torch.ones(3).untyped_storage(), dtype=torch.float32,
                                       _internal=True)
    tensor = Reduces(torch._utils._rebuild_tensor_v2, typed, offset, size, stride, False, OrderedDict())
    path = write_pickle(tmp_path / "oob.pkl", {"G_ema": tensor})
    assert_refused(path, marker, message)


def test_persistent_ids_are_refused(tmp_path: Path, marker: Path) -> None:
    class WithIds(pickle.Pickler):
        def persistent_id(self, obj: Any) -> Any:
            return ("storage", "x") if obj == "external" else None

    buf = io.BytesIO()
    WithIds(buf, protocol=4).dump({"G_ema": "external"})
    path = tmp_path / "pid.pkl"
    path.write_bytes(buf.getvalue())
    assert_refused(path, marker, "refused persistent id ('storage', 'x')")


def test_stub_classes_are_inert(tmp_path: Path, marker: Path) -> None:
    """A training.* name reached through REDUCE yields an inert stub; nothing is imported or run."""
    path = tmp_path / "call.pkl"
    path.write_bytes(call_global("training.networks", "run_anything", f"touch {marker}"))
    with open(path, "rb") as f:
        obj = RestrictedUnpickler(f).load()
    assert type(obj).__name__ == "run_anything" and obj.state == {}
    assert "training" not in sys.modules and not marker.exists()
    with pytest.raises(UnsafePickleError, match="top level is a run_anything, not a dict of networks"):
        read_network_pickle(path)


# ---------------------------------------------------------------------------------------------
# broken files
# ---------------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.pkl"):
        read_network_pickle(tmp_path / "nope.pkl")


def test_truncated_file(tmp_path: Path) -> None:
    with open(require_fixture("eg3d", "official_format_small.pkl"), "rb") as f:
        head = f.read(1 << 20)
    path = tmp_path / "truncated.pkl"
    path.write_bytes(head)
    with pytest.raises(UnsafePickleError, match="truncated or corrupt") as info:
        read_network_pickle(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(("content", "message"), [
    (b"hello, this is not a pickle\n", "not a network pickle"),
    (b"", "not a network pickle"),
    (b"PK\x03\x04rest of a zip", "zip archive"),
])
def test_not_a_pickle(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "file.pkl"
    path.write_bytes(content)
    with pytest.raises(UnsafePickleError, match=message) as info:
        read_network_pickle(path)
    assert str(path) in str(info.value)


def test_top_level_must_be_a_dict(tmp_path: Path) -> None:
    with pytest.raises(UnsafePickleError, match="top level is a list"):
        read_network_pickle(write_pickle(tmp_path / "list.pkl", [1, 2]))


def test_extract_rejects_non_modules() -> None:
    with pytest.raises(UnsafePickleError, match="not a module"):
        extract_state_dict("not a module")  # type: ignore[arg-type]


def test_sha256_file(tmp_path: Path) -> None:
    import hashlib

    data = os.urandom(3 << 20)
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
