"""``warpinv weights list / check / fetch / convert``, offline."""
from __future__ import annotations

import argparse
import io
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.weights.fakes import NAME, PAYLOAD, local_spec, make_spec, put, sha256_of
from warpinv.weights import REGISTRY, STATUS_MISMATCH, registered
from warpinv.weights.cli import add_weights_parser, run_weights_cli

pytestmark = pytest.mark.usefixtures("offline")


def _run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    return run_weights_cli(argv, stdout=out), out.getvalue()


def test_cli_list_and_check_run_offline() -> None:
    code, text = _run(["list"])
    assert code == 0 and all(name in text for name in REGISTRY)
    code, text = _run(["weights", "check"])
    assert code == 0 and all(name in text for name in REGISTRY)
    assert _run(["list", "-v"])[0] == 0


def test_cli_check_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARPINV_WEIGHTS", str(tmp_path))
    with registered(make_spec()):
        assert _run(["check", NAME])[0] == 0
        assert _run(["check", "--strict", NAME])[0] == 1
        put(tmp_path, data=PAYLOAD[::-1])
        code, text = _run(["check", NAME])
        assert code == 1 and STATUS_MISMATCH in text
    assert _run(["check", "no-such-weight"])[0] == 2


def test_cli_fetch(tmp_path: Path) -> None:
    source = put(tmp_path / "mirror")
    with registered(local_spec(source)):
        code, text = _run(["fetch", NAME, "--dest", str(tmp_path / "dest"), "--no-progress"])
    assert code == 0 and str(tmp_path / "dest" / "fake-weights.bin") in text
    assert _run(["fetch", "ibrnet"])[0] == 1
    assert _run(["fetch", "no-such-weight"])[0] == 2
    assert _run([])[0] == 2
    assert _run(["fetch"])[0] == 2


def test_cli_fetch_prints_the_sha256_of_an_unverifiable_download(tmp_path: Path) -> None:
    source = put(tmp_path / "mirror")
    with registered(local_spec(source, sha256=None, size=None)):
        code, text = _run(["fetch", NAME, "--dest", str(tmp_path / "dest"), "--no-progress"])
    path = tmp_path / "dest" / "fake-weights.bin"
    assert code == 0
    assert text == (f"warpinv: fake-weights.bin has no published checksum; its sha256 is {sha256_of(PAYLOAD)}\n"
                    f"{NAME}: {path}\n")


def test_cli_convert_calls_the_converter_lazily(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Path, Path, str, bool]] = []

    def convert_network_pickle(src: Path, dst: Path, key: str = "G_ema", fixed_planes: bool = False) -> Any:
        calls.append((Path(src), Path(dst), key, fixed_planes))
        kwargs = {"fixed_planes": True} if fixed_planes else {}
        return types.SimpleNamespace(state_dict={"a": 0, "b": 1}, init_kwargs=kwargs, neural_rendering_resolution=128,
                                     metadata={})

    fake_module = types.ModuleType("warpinv.weights.generator_file")
    fake_module.convert_network_pickle = convert_network_pickle  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "warpinv.weights.generator_file", fake_module)
    src = put(tmp_path, "net.pkl", b"not really a pickle")
    dst = tmp_path / "net.safetensors"
    code, text = _run(["convert", str(src), str(dst), "--key", "G"])
    assert code == 0 and calls == [(src, dst, "G", False)] and "2 tensors" in text
    code, text = _run(["convert", str(src), str(dst), "--fixed-planes"])
    assert code == 0 and calls[-1] == (src, dst, "G_ema", True) and "fixed_planes" in text
    assert _run(["convert", str(tmp_path / "absent.pkl"), str(dst)])[0] == 1


def test_add_weights_parser_sets_handlers_returning_ints() -> None:
    parser = argparse.ArgumentParser()
    add_weights_parser(parser.add_subparsers(dest="command"))
    ns = parser.parse_args(["weights", "check", "mtcnn-pnet"])
    ns.out = io.StringIO()
    handler: Callable[[argparse.Namespace], int] = ns.func
    assert handler(ns) == 0 and "mtcnn-pnet" in ns.out.getvalue()
