"""In-N-Out's ``triplanes.pt``: round trip with the tiny generator, and refusal of hostile, torn or foreign files.

Not a `golden` test: the layout against the recorded manifest is checked in test_released_in_n_out_golden.py."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from warpinv.backbone import EG3DGenerator, build_tiny
from warpinv.methods.in_n_out.networks import OODField
from warpinv.methods.in_n_out.released import (
    ReleasedCheckpointError,
    load_field,
    load_generator_into,
    read_released,
    released_state,
    write_released,
)

FRAMES, CHANNELS, RESOLUTION = 3, 8, 16


@pytest.fixture(scope="module")
def tiny() -> EG3DGenerator:
    return build_tiny()


def _field(seed: int = 0) -> OODField:
    field = OODField(CHANNELS, RESOLUTION, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():  # non-zero biases, so a bias that is not carried over would show
        for p in field.decoder.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(seed + 1)))
    return field


def _codes(G: EG3DGenerator, frames: int = FRAMES) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    return torch.randn(frames, G.num_ws, G.w_dim, generator=g), torch.randn(frames, CHANNELS, generator=g)


def _write(tmp_path: Path, G: EG3DGenerator, field: OODField | None = None) -> tuple[Path, OODField, torch.Tensor,
                                                                                         torch.Tensor]:
    field = field or _field()
    ws, phi = _codes(G)
    return write_released(tmp_path / "triplanes.pt", G, field, ws, phi), field, ws, phi


def _resave(path: Path, state: dict[str, object]) -> Path:
    out = path.with_name("edited.pt")
    torch.save(state, out)
    return out


def test_layout_puts_generator_then_field_entries_with_official_prefixes(tiny: EG3DGenerator) -> None:
    field = _field()
    ws, phi = _codes(tiny)
    state = released_state(tiny, field, ws, phi)
    assert list(state) == ["w_plus", "phi", "compose_triplanes"]
    names = list(state["compose_triplanes"])
    assert names == ["G." + k for k in tiny.state_dict()] + ["new_triplanes." + k for k in field.state_dict()]
    assert names[-5:] == ["new_triplanes.triplanes", "new_triplanes.decoder.net.0.weight",
                          "new_triplanes.decoder.net.0.bias", "new_triplanes.decoder.net.2.weight",
                          "new_triplanes.decoder.net.2.bias"]
    view = torch.randn(10, tiny.num_ws, tiny.w_dim)[2:2 + FRAMES]  # a view into a bigger storage
    state = released_state(tiny, field, view, phi)
    assert state["w_plus"].untyped_storage().nbytes() == view.numel() * 4
    assert not state["w_plus"].requires_grad and state["w_plus"].dtype == torch.float32


def test_round_trip_is_bit_exact_and_loads_into_our_modules(tiny: EG3DGenerator, tmp_path: Path) -> None:
    path, field, ws, phi = _write(tmp_path, tiny)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["triplanes.pt"]  # no temporary file left
    released = read_released(path)
    assert released.source == path and released.num_frames == FRAMES
    assert torch.equal(released.ws, ws) and torch.equal(released.phi, phi)
    assert list(released.generator_state) == list(tiny.state_dict())
    for name, t in tiny.state_dict().items():
        assert torch.equal(released.generator_state[name], t), name
    loaded_field = load_field(released)
    for name, t in field.state_dict().items():
        assert torch.equal(loaded_field.state_dict()[name], t), name
    feats = torch.randn(1, 3, 5, CHANNELS, generator=torch.Generator().manual_seed(3))
    out, want = loaded_field.decoder(feats, phi[:1]), field.decoder(feats, phi[:1])
    assert all(torch.equal(out[k], want[k]) for k in want)
    assert load_field(released, "sum").decoder.plane_reduction == "sum"


def test_reads_a_file_saved_the_official_way(tiny: EG3DGenerator, tmp_path: Path) -> None:
    """As ``train_outdomain.py`` saves it: a module's ``state_dict()`` (with ``_metadata``), Parameter codes."""
    compose = torch.nn.Module()
    compose.G, compose.new_triplanes = tiny, _field()
    ws, phi = _codes(tiny)
    path = tmp_path / "official.pt"
    torch.save({"w_plus": torch.nn.Parameter(ws), "phi": torch.nn.Parameter(phi),
                "compose_triplanes": compose.state_dict()}, path)
    released = read_released(path)
    ours = released_state(tiny, compose.new_triplanes, ws, phi)["compose_triplanes"]
    assert list(compose.state_dict()) == list(ours)
    assert torch.equal(released.ws, ws) and not released.ws.requires_grad
    assert load_generator_into(tiny, released)[1] == []


def test_frame_selection_keeps_one_frame(tiny: EG3DGenerator, tmp_path: Path) -> None:
    path, _, ws, phi = _write(tmp_path, tiny)
    one = read_released(path, frame=1)
    assert torch.equal(one.ws, ws[1:2]) and torch.equal(one.phi, phi[1:2]) and one.num_frames == 1
    assert torch.equal(read_released(path).select_frame().ws, ws[:1])
    with pytest.raises(ValueError, match=r"frame must be in \[0, 3\)"):
        read_released(path, frame=FRAMES)


def test_generator_load_reports_the_fine_tuned_entries_and_leaves_g_alone(tiny: EG3DGenerator,
                                                                          tmp_path: Path) -> None:
    tuned = build_tiny()
    sr_names = [k for k in tuned.state_dict() if k.startswith("superresolution.") and "resample_filter" not in k]
    with torch.no_grad():
        for name in sr_names[:3]:
            tuned.state_dict()[name].add_(0.5)
    path, _, _, _ = _write(tmp_path, tuned)
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    loaded, changed = load_generator_into(tiny, read_released(path))
    assert changed == sr_names[:3]
    assert loaded is not tiny
    assert all(torch.equal(loaded.state_dict()[k], tuned.state_dict()[k]) for k in before)
    assert all(torch.equal(tiny.state_dict()[k], before[k]) for k in before)
    assert load_generator_into(tuned, read_released(path))[1] == []


def test_generator_that_does_not_fit_is_refused(tiny: EG3DGenerator, tmp_path: Path) -> None:
    from dataclasses import replace

    path, _, _, _ = _write(tmp_path, tiny)
    released = read_released(path)
    state = dict(released.generator_state)
    state.pop("decoder.net.0.bias")
    with pytest.raises(ReleasedCheckpointError, match="decoder.net.0.bias"):
        load_generator_into(tiny, replace(released, generator_state=state))
    with pytest.raises(ReleasedCheckpointError, match="takes"):
        load_generator_into(tiny, replace(released, ws=released.ws[:, :5]))


class _Hostile:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"echo pwned > {self.marker}",)


def test_hostile_pickle_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "FILE"
    plain = tmp_path / "plain.pt"  # protocol 4: refused at its first frame opcode
    plain.write_bytes(pickle.dumps(_Hostile(marker)))
    plain2 = tmp_path / "plain2.pt"  # protocol 2: refused at the os.system global
    plain2.write_bytes(pickle.dumps(_Hostile(marker), protocol=2))
    nested = tmp_path / "nested.pt"  # a real torch.save zip whose pickle calls os.system
    torch.save({"w_plus": _Hostile(marker), "phi": torch.zeros(1, 2), "compose_triplanes": {}}, nested)
    for path in (plain, plain2, nested):
        with pytest.raises(ReleasedCheckpointError, match="not a plain tensor checkpoint") as info:
            read_released(path)
        assert str(path) in str(info.value)
        assert "system" in str(info.value) or path == plain
        assert "weights_only" not in str(info.value)  # torch's advice to switch the protection off is dropped
    assert not marker.exists()


def test_torn_and_empty_files_are_our_error(tiny: EG3DGenerator, tmp_path: Path) -> None:
    path, _, _, _ = _write(tmp_path, tiny)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ReleasedCheckpointError, match="truncated or corrupt") as info:
        read_released(path)
    assert str(path) in str(info.value)
    path.write_bytes(b"")
    with pytest.raises(ReleasedCheckpointError, match="truncated or corrupt"):
        read_released(path)
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        read_released(tmp_path / "nope.pt")


def test_missing_keys_and_entries_are_named(tiny: EG3DGenerator, tmp_path: Path) -> None:
    path, _, _, _ = _write(tmp_path, tiny)
    state = torch.load(path, weights_only=True)
    no_phi = {k: v for k, v in state.items() if k != "phi"}
    with pytest.raises(ReleasedCheckpointError, match=r"missing top-level key\(s\) \['phi'\]") as info:
        read_released(_resave(path, no_phi))
    assert "edited.pt" in str(info.value)
    compose = dict(state["compose_triplanes"])
    compose.pop("new_triplanes.decoder.net.2.bias")
    with pytest.raises(ReleasedCheckpointError, match=r"lacks \['new_triplanes.decoder.net.2.bias'\]"):
        read_released(_resave(path, {**state, "compose_triplanes": compose}))
    only_field = {k: v for k, v in state["compose_triplanes"].items() if k.startswith("new_triplanes.")}
    with pytest.raises(ReleasedCheckpointError, match="no generator entries"):
        read_released(_resave(path, {**state, "compose_triplanes": only_field}))
    extra = {**state["compose_triplanes"], "new_triplanes.extra": torch.zeros(1)}
    with pytest.raises(ReleasedCheckpointError, match="new_triplanes.extra"):
        read_released(_resave(path, {**state, "compose_triplanes": extra}))
    with pytest.raises(ReleasedCheckpointError, match="must be a dict"):
        read_released(_resave(path, [1, 2]))  # type: ignore[arg-type]


def test_shapes_that_do_not_fit_together_are_named(tiny: EG3DGenerator, tmp_path: Path) -> None:
    path, _, _, _ = _write(tmp_path, tiny)
    state = torch.load(path, weights_only=True)
    with pytest.raises(ReleasedCheckpointError, match=r"phi must be \(F=3, 8\).*got \(2, 8\)"):
        read_released(_resave(path, {**state, "phi": state["phi"][:2]}))
    with pytest.raises(ReleasedCheckpointError, match=r"phi must be \(F=3, 8\).*got \(3, 9\)"):
        read_released(_resave(path, {**state, "phi": torch.zeros(FRAMES, CHANNELS + 1)}))
    with pytest.raises(ReleasedCheckpointError, match="w_plus must be"):
        read_released(_resave(path, {**state, "w_plus": state["w_plus"][0]}))
    with pytest.raises(ReleasedCheckpointError, match="w_avg"):
        read_released(_resave(path, {**state, "w_plus": state["w_plus"][..., :7]}))
    compose = dict(state["compose_triplanes"])
    compose["new_triplanes.decoder.net.2.weight"] = torch.zeros(CHANNELS + 1, 64)
    with pytest.raises(ReleasedCheckpointError, match=r"new_triplanes.decoder.net.2.weight must be \(10, 64\)"):
        read_released(_resave(path, {**state, "compose_triplanes": compose}))
    compose = dict(state["compose_triplanes"])
    compose["new_triplanes.triplanes"] = torch.zeros(1, 2, CHANNELS, RESOLUTION, RESOLUTION)
    with pytest.raises(ReleasedCheckpointError, match=r"new_triplanes.triplanes must be \(1, 3, C, R, R\)"):
        read_released(_resave(path, {**state, "compose_triplanes": compose}))


def test_writer_checks_its_arguments(tiny: EG3DGenerator, tmp_path: Path) -> None:
    field = _field()
    ws, phi = _codes(tiny)
    with pytest.raises(ValueError, match=r"ws must be \(F, 14, 512\)"):
        write_released(tmp_path / "a.pt", tiny, field, ws[:, :3], phi)
    with pytest.raises(ValueError, match=r"phi must be \(F=3, 8\)"):
        write_released(tmp_path / "a.pt", tiny, field, ws, phi[:1])
    with pytest.raises(TypeError, match="field must be an OODField"):
        released_state(tiny, field.decoder, ws, phi)  # type: ignore[arg-type]
    assert not (tmp_path / "a.pt").exists()
