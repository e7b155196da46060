"""``warpinv data``: the command group through ``run_data_cli`` and ``add_data_parser``."""
from __future__ import annotations

import argparse
import io
from collections.abc import Callable
from pathlib import Path

from tests.data.conftest import camera
from warpinv.data import add_data_parser, run_data_cli

MakeDataset = Callable[..., Path]


def test_group_help_and_mounting() -> None:
    out = io.StringIO()
    assert run_data_cli([], stdout=out) == 0
    assert "prepare" in out.getvalue() and "celebahq-split" in out.getvalue()
    parser = argparse.ArgumentParser(prog="warpinv")
    add_data_parser(parser.add_subparsers(dest="command"))
    ns = parser.parse_args(["data", "prepare", "in", "out", "--multiple-faces", "refuse", "--min-confidence",
                            "0.95", "--min-face-size", "80", "--refine"])
    assert (ns.src, ns.dst, ns.multiple_faces, ns.min_confidence, ns.min_face_size, ns.refine) == \
        ("in", "out", "refuse", 0.95, 80.0, True)
    assert callable(ns.func)
    assert run_data_cli(["prepare", "--multiple-faces", "all", "a", "b"], stdout=io.StringIO()) == 2


def test_validate_good_and_bad(make_dataset: MakeDataset, tmp_path: Path) -> None:
    root = make_dataset(2)
    out = io.StringIO()
    assert run_data_cli(["validate", str(root)], stdout=out) == 0
    assert "2 entries, resolution 32" in out.getvalue() and "OK" in out.getvalue()
    split = tmp_path / "s.txt"
    split.write_text("img0\nimg7\n")
    out = io.StringIO()
    assert run_data_cli(["validate", str(root), "--split", str(split)], stdout=out) == 0
    assert "2 ids, 1 found, 1 missing (img7)" in out.getvalue()
    bad = make_dataset(1, data={"labels": [["img0.png", camera()[:20]]]})
    out = io.StringIO()
    assert run_data_cli(["validate", str(bad)], stdout=out) == 1
    assert "labels[0] ('img0.png'): the label must have 25 numbers" in out.getvalue()
    out = io.StringIO()
    assert run_data_cli(["validate", str(tmp_path / "none")], stdout=out) == 1
    assert "does not exist" in out.getvalue()
    out = io.StringIO()
    assert run_data_cli(["validate", str(root), "--resolution", "16", "--refuse-wrong-size"], stdout=out) == 1


def test_synth_texture_flags(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser(prog="warpinv")
    add_data_parser(parser.add_subparsers(dest="command"))
    ns = parser.parse_args(["data", "synth", "out", "--plane-texture", "0.5", "--plane-texture-scale", "16"])
    assert (ns.plane_texture, ns.plane_texture_scale) == (0.5, 16)
    ns = parser.parse_args(["data", "synth", "out"])
    assert (ns.plane_texture, ns.plane_texture_scale) == (0.0, 8)  # off by default: the plain set
    out = io.StringIO()
    assert run_data_cli(["synth", str(tmp_path / "s"), "--plane-texture", "-1"], stdout=out) == 1
    assert "plane_texture must be >= 0" in out.getvalue() and not (tmp_path / "s").exists()
    out = io.StringIO()
    assert run_data_cli(["synth", str(tmp_path / "s"), "--plane-texture", "1", "--plane-texture-scale", "0"],
                        stdout=out) == 1
    assert "plane_texture_scale must be >= 1" in out.getvalue()
