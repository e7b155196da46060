"""``load_generator`` for every kind of source, and its errors."""
from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import require_fixture
from warpinv.backbone import load_generator
from warpinv.weights import MissingWeightsError
from warpinv.weights.generator_file import convert_network_pickle, save_generator_file
from warpinv.weights.network_pickle import UnsafePickleError


def assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert list(a) == list(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_official_pickle_loads_strictly_with_its_kwargs_and_resolution() -> None:
    pkl = require_fixture("eg3d", "official_format_small.pkl")
    G = load_generator(pkl)
    expected = load_file(require_fixture("eg3d", "official_format_small_G_ema.safetensors"))
    assert set(G.state_dict()) == set(expected)
    for key, value in expected.items():
        assert torch.equal(G.state_dict()[key], value), key
    kwargs = json.loads(require_fixture("eg3d", "official_format_small_init_kwargs.json").read_text())
    assert G.init_kwargs["rendering_kwargs"] == kwargs["rendering_kwargs"]
    assert G.neural_rendering_resolution == 128
    assert not G.training
    assert G.source == str(pkl)


def test_converted_file_loads_identically(tmp_path) -> None:
    pkl = require_fixture("eg3d", "official_format_small.pkl")
    out = tmp_path / "small.safetensors"
    convert_network_pickle(pkl, out)
    a, b = load_generator(pkl), load_generator(out)
    assert_same_state(a.state_dict(), b.state_dict())
    assert b.neural_rendering_resolution == a.neural_rendering_resolution


def test_tiny_round_trips_through_a_generator_file(tmp_path) -> None:
    G = load_generator("tiny")
    path = tmp_path / "tiny.safetensors"
    save_generator_file(path, G.state_dict(), G.init_kwargs, G.neural_rendering_resolution)
    assert_same_state(load_generator(path).state_dict(), G.state_dict())


def test_missing_preset_weights_name_the_file_and_how_to_get_it(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("WARPINV_WEIGHTS", str(tmp_path))
    with pytest.raises(MissingWeightsError) as err:
        load_generator("ffhq512-128")
    text = str(err.value)
    assert "ffhq512-128.pkl" in text and str(tmp_path) in text and "warpinv weights fetch" in text


def test_preset_found_through_the_registry(monkeypatch, tmp_path) -> None:
    """A file placed under $WARPINV_WEIGHTS is what the preset loads (no published checksum to check)."""
    from warpinv.weights import REGISTRY

    target = tmp_path / REGISTRY["eg3d-ffhq512-128"].filename
    target.write_bytes(require_fixture("eg3d", "official_format_small.pkl").read_bytes())
    monkeypatch.setenv("WARPINV_WEIGHTS", str(tmp_path))
    assert load_generator("ffhq512-128").source == str(target)


def test_hostile_pickle_is_refused_and_nothing_runs(tmp_path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": Evil()}, protocol=4))
    with pytest.raises(UnsafePickleError, match="os.system|posix.system"):
        load_generator(path)
    assert not marker.exists()


def test_bad_sources() -> None:
    with pytest.raises(FileNotFoundError, match="neither an existing file nor a preset"):
        load_generator("ffhq9000")
    with pytest.raises(ValueError, match="expected an official .pkl"):
        load_generator(__file__)


def test_pickled_rendering_kwargs_attribute_wins(monkeypatch) -> None:
    """Unpickling restores attributes: a pickled ``rendering_kwargs`` that differs from the init copy is used."""
    import warpinv.weights.network_pickle as np_module

    real = np_module.read_network_pickle

    def patched(path, key="G_ema"):
        net = real(path, key)
        net.rendering_kwargs = {**net.rendering_kwargs, "ray_end": 3.1}
        return net

    monkeypatch.setattr(np_module, "read_network_pickle", patched)
    G = load_generator(require_fixture("eg3d", "official_format_small.pkl"))
    assert G.rendering_kwargs["ray_end"] == 3.1
