"""warpinv's converted generator files: exact round trip, strict format check, pickle conversion."""
from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.helpers import require_fixture
from warpinv.weights.generator_file import (
    FORMAT,
    GeneratorFile,
    convert_network_pickle,
    read_generator_file,
    save_generator_file,
)
from warpinv.weights.network_pickle import UnsafePickleError


def sample_state_dict() -> OrderedDict[str, torch.Tensor]:
    """Names deliberately out of alphabetical order; several dtypes; views and shared storage."""
    g = torch.Generator().manual_seed(0)
    base = torch.randn(4, 6, generator=g)
    return OrderedDict([
        ("zeta.weight", torch.randn(3, 5, generator=g)),
        ("alpha.transposed", base.t()),  # non-contiguous
        ("alpha.column", base[:, 2]),  # shares base's storage
        ("mid.half", torch.randn(7, generator=g).half()),
        ("mid.bf16", torch.randn(2, 2, generator=g).bfloat16()),
        ("beta.double", torch.randn(3, generator=g, dtype=torch.float64)),
        ("count", torch.tensor(12, dtype=torch.int64)),
        ("mask", torch.tensor([True, False, True])),
        ("empty", torch.zeros(0, 3)),
        ("a.param", torch.nn.Parameter(torch.randn(2, generator=g))),
    ])


def assert_same_tensors(got: OrderedDict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert list(got) == list(expected)
    for name, ref in expected.items():
        t = got[name]
        assert t.dtype == ref.dtype and t.shape == ref.shape, name
        assert torch.equal(t, ref.detach()), name


def test_round_trip_keeps_order_dtypes_values_and_metadata(tmp_path: Path) -> None:
    sd = sample_state_dict()
    kwargs = {"z_dim": 512, "mapping_kwargs": {"num_layers": 2}, "pivot": [0, 0, 0.2], "conv_clamp": None}
    path = tmp_path / "g.safetensors"
    save_generator_file(path, sd, kwargs, 128, extra={"source": "x.pkl", "note": "ünïcode"})
    got = read_generator_file(path)
    assert isinstance(got, GeneratorFile)
    assert_same_tensors(got.state_dict, sd)
    assert all(t.is_contiguous() and not t.requires_grad for t in got.state_dict.values())
    assert got.init_kwargs == kwargs
    assert got.neural_rendering_resolution == 128
    assert got.metadata["format"] == FORMAT
    assert got.metadata["source"] == "x.pkl" and got.metadata["note"] == "ünïcode"
    assert json.loads(got.metadata["key_order"]) == list(sd)
    assert not list(tmp_path.glob("*.tmp"))


def test_unset_resolution_round_trips_as_none(tmp_path: Path) -> None:
    path = tmp_path / "g.safetensors"
    save_generator_file(path, {"w": torch.ones(2)}, {}, None)
    got = read_generator_file(path)
    assert got.neural_rendering_resolution is None and got.metadata["neural_rendering_resolution"] == ""


def test_reserved_extra_metadata_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="reserved"):
        save_generator_file(tmp_path / "g.safetensors", {"w": torch.ones(1)}, {}, 64, extra={"format": "mine"})
    with pytest.raises(ValueError, match="str to str"):
        bad_extra: dict = {"n": 3}
        save_generator_file(tmp_path / "g.safetensors", {"w": torch.ones(1)}, {}, 64, extra=bad_extra)
    assert not list(tmp_path.iterdir())


def test_plain_safetensors_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plain.safetensors"
    save_file({"w": torch.ones(2)}, path)
    with pytest.raises(ValueError, match="no format metadata") as info:
        read_generator_file(path)
    assert str(path) in str(info.value)


def test_other_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.safetensors"
    save_file({"w": torch.ones(2)}, path, metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"format 'pt'; expected 'warpinv.eg3d-generator/1'"):
        read_generator_file(path)


def test_inconsistent_key_order_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.safetensors"
    meta = {"format": FORMAT, "init_kwargs": "{}", "neural_rendering_resolution": "", "key_order": '["w", "x"]'}
    save_file({"w": torch.ones(2)}, path, metadata=meta)
    with pytest.raises(ValueError, match="key_order metadata does not list the file's 1 tensors"):
        read_generator_file(path)


def test_not_safetensors_and_missing(tmp_path: Path) -> None:
    path = tmp_path / "text.safetensors"
    path.write_text("just some text, not a safetensors file\n")
    with pytest.raises(ValueError, match="not a readable safetensors file") as info:
        read_generator_file(path)
    assert str(path) in str(info.value)
    with pytest.raises(FileNotFoundError, match="absent.safetensors"):
        read_generator_file(tmp_path / "absent.safetensors")


def test_convert_official_pickle(tmp_path: Path) -> None:
    src = require_fixture("eg3d", "official_format_small.pkl")
    expected = load_file(require_fixture("eg3d", "official_format_small_G_ema.safetensors"))
    manifest = json.loads(require_fixture("eg3d", "ffhq512_manifest.json").read_text())
    kwargs = json.loads(require_fixture("eg3d", "official_format_small_init_kwargs.json").read_text())
    dst = tmp_path / "G_ema.safetensors"

    written = convert_network_pickle(src, dst)
    read_back = read_generator_file(dst)

    official_order = [entry["name"] for entry in manifest["state_dict"]]
    assert_same_tensors(read_back.state_dict, OrderedDict((name, expected[name]) for name in official_order))
    assert read_back.init_kwargs == kwargs
    assert read_back.neural_rendering_resolution == 128
    assert read_back.metadata["source"] == "official_format_small.pkl"
    assert read_back.metadata["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert read_back.metadata["source_key"] == "G_ema"
    assert read_back.metadata["class_name"] == "TriPlaneGenerator"
    assert written.metadata == read_back.metadata
    assert_same_tensors(written.state_dict, read_back.state_dict)


def test_convert_refuses_hostile_pickle_and_writes_nothing(tmp_path: Path) -> None:
    src = tmp_path / "evil.pkl"
    src.write_bytes(b"\x80\x04cbuiltins\nexec\nX\x05\x00\x00\x001+1\n\x85R.")
    dst = tmp_path / "out.safetensors"
    with pytest.raises(UnsafePickleError, match="refused global builtins.exec"):
        convert_network_pickle(src, dst)
    assert not dst.exists()


def test_convert_refuses_to_overwrite_its_source(tmp_path: Path) -> None:
    """Issue 11: `weights convert same.pkl same.pkl` overwrote the pickle with the converted file."""
    src = tmp_path / "G.pkl"
    src.write_bytes(require_fixture("eg3d", "official_format_small.pkl").read_bytes())
    before = src.read_bytes()
    with pytest.raises(ValueError, match="is the source pickle itself"):
        convert_network_pickle(src, tmp_path / "." / "G.pkl")
    assert src.read_bytes() == before


def test_convert_refuses_a_network_without_tensors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 11: a pickle with an empty state converted to "0 tensors" with exit 0."""
    import types

    import warpinv.weights.generator_file as generator_file

    empty = types.SimpleNamespace(state_dict=OrderedDict(), class_name="TriPlaneGenerator", init_kwargs={},
                                  neural_rendering_resolution=None)
    monkeypatch.setattr(generator_file, "read_network_pickle", lambda src, key: empty)
    src = tmp_path / "empty.pkl"
    src.write_bytes(b"not read")
    with pytest.raises(ValueError, match="holds no tensors"):
        convert_network_pickle(src, tmp_path / "out.safetensors")
    assert not (tmp_path / "out.safetensors").exists()


def test_convert_records_fixed_planes_for_warpgans_lpff_generator(tmp_path: Path) -> None:
    src = require_fixture("eg3d", "official_format_small.pkl")
    kwargs = json.loads(require_fixture("eg3d", "official_format_small_init_kwargs.json").read_text())
    written = convert_network_pickle(src, tmp_path / "G.safetensors", fixed_planes=True)
    assert written.init_kwargs == {**kwargs, "fixed_planes": True}
    from warpinv.backbone import load_generator
    from warpinv.backbone.renderer import FIXED_PLANE_AXES

    assert load_generator(tmp_path / "G.safetensors").renderer.plane_axes == FIXED_PLANE_AXES
