"""The written ``triplanes.pt`` has exactly the layout of the official one (entry names, order, shapes, dtypes).

Every size comes from the manifests (the test is rerun on variants): the EG3D constructor kwargs from
``eg3d/ffhq512_manifest.json``, the OOD tensors and the code shapes from ``in_n_out/ood_decoder_manifest.json``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.helpers import require_fixture
from warpinv.backbone import EG3DGenerator
from warpinv.methods.in_n_out.networks import OODDecoder, OODField
from warpinv.methods.in_n_out.released import load_field, load_generator_into, read_released, write_released

pytestmark = pytest.mark.golden

FRAMES = 2


def _manifests() -> tuple[dict[str, Any], dict[str, Any]]:
    ood = json.loads(require_fixture("in_n_out", "ood_decoder_manifest.json").read_text())
    eg3d = json.loads(require_fixture("eg3d", "ffhq512_manifest.json").read_text())
    return ood, eg3d


def _entry(ood: dict[str, Any], name: str) -> dict[str, Any]:
    return next(e for e in ood["entries"] if e["name"] == name)


def _code_dims(description: str) -> tuple[int, ...]:
    """``"float32 (F,14,512): ..."`` -> ``(14, 512)``."""
    match = re.search(r"\(F((?:,\s*\d+)+)\)", description)
    assert match, description
    return tuple(int(d) for d in match.group(1).split(",") if d.strip())


def _field_like(ood: dict[str, Any]) -> OODField:
    _, _, channels, resolution, _ = _entry(ood, "new_triplanes.triplanes")["shape"]
    hidden, width = _entry(ood, "new_triplanes.decoder.net.0.weight")["shape"]
    field = OODField(channels, resolution, generator=torch.Generator().manual_seed(0))
    field.decoder = OODDecoder(channels, width - channels, hidden_dim=hidden)
    return field


def test_written_layout_equals_the_official_manifest(tmp_path: Path) -> None:
    ood, eg3d = _manifests()
    assert ood["G_state_dict_matches_eg3d_ffhq512_manifest"]
    torch.manual_seed(0)
    G = EG3DGenerator(**eg3d["init_kwargs"]).eval()
    field = _field_like(ood)
    ws_dims, phi_dims = _code_dims(ood["top_level_keys"]["w_plus"]), _code_dims(ood["top_level_keys"]["phi"])
    assert ws_dims == (eg3d["num_ws"], eg3d["init_kwargs"]["w_dim"])
    g = torch.Generator().manual_seed(1)
    ws, phi = torch.randn(FRAMES, *ws_dims, generator=g), torch.randn(FRAMES, *phi_dims, generator=g)
    path = write_released(tmp_path / "triplanes.pt", G, field, ws, phi)

    state = torch.load(path, map_location="cpu", weights_only=True)
    assert set(state) == set(ood["top_level_keys"])
    for key, dims in (("w_plus", ws_dims), ("phi", phi_dims)):
        assert tuple(state[key].shape) == (FRAMES, *dims)
        assert str(state[key].dtype) == "torch." + ood["top_level_keys"][key].split()[0]
    got = [(k, list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in state["compose_triplanes"].items()]
    want = [(e["name"], e["shape"], e["dtype"]) for e in ood["entries"]]
    assert len(got) == ood["num_entries"]
    assert got == want
    assert [k.removeprefix("G.") for k, _, _ in got if k.startswith("G.")] == [e["name"] for e in eg3d["state_dict"]]

    released = read_released(path)
    assert torch.equal(released.ws, ws) and torch.equal(released.phi, phi)
    for name, t in G.state_dict().items():
        assert torch.equal(released.generator_state[name], t), name
    loaded_field = load_field(released)
    for name, t in field.state_dict().items():
        assert torch.equal(loaded_field.state_dict()[name], t), name
    assert load_generator_into(G, released)[1] == []
