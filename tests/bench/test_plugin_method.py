"""Acceptance of the method interface (issue 10): a method written in a temporary folder, with its own
``Inversion`` kind and renderer, a trained checkpoint and its own generator, runs through
``warpinv bench`` next to PTI; nothing under ``warpinv/bench`` names it."""
from __future__ import annotations

import importlib
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from tests.bench.conftest import write_suite
from warpinv.backbone import build_tiny
from warpinv.bench.rows import read_rows
from warpinv.bench.suite import load_suite, resolve_methods
from warpinv.cli import main
from warpinv.methods import METHODS, Inversion
from warpinv.weights.generator_file import save_generator_file

PLUGIN = Path(__file__).parent / "plugin" / "toy_offset.py"
PTI_SMALL = {"allow_random_lpips": True,
             "pivot": {"steps": 2, "lpips_weight": 0.0, "mse_weight": 1.0, "optimize_noise": False,
                       "noise_factor": 0.0, "deterministic_render": True, "w_avg_samples": 100},
             "tuning": {"steps": 2, "lpips_weight": 0.0, "lpips_threshold": None, "deterministic_render": True}}


@pytest.fixture()
def plugin_setup(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """The plugin file, its trained checkpoint and its own generator, all in a temporary folder
    (the method and its inversion kind are unregistered afterwards)."""
    folder = tmp_path / "my_methods"
    folder.mkdir()
    shutil.copy(PLUGIN, folder / "toy_offset_plugin.py")
    G = build_tiny(seed=7)  # not the suite's tiny (seed 0)
    generator = folder / "tiny_seed7.safetensors"
    save_generator_file(generator, G.state_dict(), dict(G.init_kwargs), G.neural_rendering_resolution)

    sys.path.insert(0, str(folder))
    try:
        plugin = importlib.import_module("toy_offset_plugin")
    finally:
        sys.path.remove(str(folder))
    method = plugin.ToyOffset(plugin.ToyOffsetConfig(), G)
    method.offset.data.fill_(3.0)  # "trained": every render saturates to white
    checkpoint = folder / "toy_offset.safetensors"
    method.save_checkpoint(checkpoint)
    yield {"folder": folder, "plugin": folder / "toy_offset_plugin.py", "checkpoint": checkpoint,
           "generator": generator}
    METHODS.pop("toy_offset", None)
    Inversion._kinds.pop("toy_offset", None)
    sys.modules.pop("toy_offset_plugin", None)


@pytest.mark.slow
def test_a_plugin_method_runs_beside_pti_without_touching_the_harness(plugin_setup, synthetic_root, tmp_path) -> None:
    out = tmp_path / "out"
    toy = {"method": "toy_offset", "config": {"checkpoint": str(plugin_setup["checkpoint"]),
                                              "generator": str(plugin_setup["generator"])}}
    suite = write_suite(tmp_path / "suite.yaml", synthetic_root, out,
                        {"pti": {"method": "pti", "config": PTI_SMALL}, "toy": toy},
                        plugins=[str(plugin_setup["plugin"])], save_images=1, dataset={"limit": 2})
    assert main(["bench", str(suite), "--quiet"]) == 0

    rows = read_rows(out / "rows.jsonl")
    assert {r["method"] for r in rows} == {"pti", "toy"}
    assert {r["generator"] for r in rows if r["method"] == "pti"} == {"tiny"}
    assert {r["generator"] for r in rows if r["method"] == "toy"} == {str(plugin_setup["generator"])}
    toy_input = [r for r in rows if r["method"] == "toy" and r["view"] == "input"]
    assert len(toy_input) == 2 and all(r["status"] == "ok" for r in toy_input)

    # the method's own renderer made the scored views: the trained offset saturates them to white
    manifest = json.loads(next((out / "images" / "toy").glob("*/manifest.json")).read_text())
    recon = next(e["file"] for e in manifest["images"] if e["caption"] == "reconstruction")
    pixels = np.asarray(Image.open(next((out / "images" / "toy").glob("*/manifest.json")).parent / recon))
    assert pixels.min() == 255

    board = (out / "leaderboard.md").read_text()
    assert "DIFFERENT GENERATORS" in board and "toy on " + str(plugin_setup["generator"]) in board
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["methods"]["toy"]["generator_provenance"]["sha256"]

    # retraining (same path, new content) changes the config hash: the rows are recomputed
    before = {m.label: m.config_hash for m in resolve_methods(load_suite(suite))}
    sys.path.insert(0, str(plugin_setup["folder"]))
    try:
        import toy_offset_plugin
    finally:
        sys.path.remove(str(plugin_setup["folder"]))
    retrained = toy_offset_plugin.ToyOffset(toy_offset_plugin.ToyOffsetConfig(), build_tiny(seed=7))
    retrained.offset.data.fill_(-3.0)
    retrained.save_checkpoint(plugin_setup["checkpoint"])
    after = {m.label: m.config_hash for m in resolve_methods(load_suite(suite))}
    assert after["pti"] == before["pti"] and after["toy"] != before["toy"]


def test_a_missing_plugin_is_a_config_error(synthetic_root, tmp_path, capsys) -> None:
    suite = write_suite(tmp_path / "suite.yaml", synthetic_root, tmp_path / "out", {"toy": {"method": "bench_toy"}},
                        plugins=["no_such_plugin.py"])
    assert main(["bench", str(suite), "--dry-run"]) == 2
    assert "plugins: no_such_plugin.py does not exist" in capsys.readouterr().err


def test_a_missing_checkpoint_or_generator_of_a_method_fails_the_preflight(synthetic_root, tmp_path, capsys) -> None:
    toy = {"method": "bench_toy", "config": {"checkpoint": str(tmp_path / "nope.safetensors"),
                                             "generator": str(tmp_path / "nope_G.safetensors")}}
    suite = write_suite(tmp_path / "suite.yaml", synthetic_root, tmp_path / "out", {"toy": toy})
    assert main(["bench", str(suite), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "[checkpoint] trained checkpoint" in err and "nope.safetensors (does not exist)" in err
    assert "[generator] generator" in err and "nope_G.safetensors (does not exist)" in err


def test_preflight_states_the_disk_saved_inversions_need(synthetic_root, tmp_path, capsys) -> None:
    suite = write_suite(tmp_path / "suite.yaml", synthetic_root, tmp_path / "out",
                        {"pti": {"method": "pti", "config": PTI_SMALL}, "toy": {"method": "bench_toy"}},
                        save_inversions=True)
    assert main(["bench", str(suite), "--dry-run"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("# saving inversions"))
    assert "for 5 image(s)" in line and "pti " in line and "toy " in line and "free on the output's disk" in line
    data = yaml.safe_load(suite.read_text())
    data["inversion_precision"] = "float32"
    suite.write_text(yaml.safe_dump(data))
    assert main(["bench", str(suite), "--dry-run"]) == 0
    line32 = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("# saving inversions"))
    assert line32 != line


def test_preflight_refuses_saving_inversions_the_disk_cannot_hold(synthetic_root, tmp_path, monkeypatch) -> None:
    import shutil as _shutil

    from warpinv.bench.preflight import PreflightError, preflight

    suite = write_suite(tmp_path / "suite.yaml", synthetic_root, tmp_path / "out",
                        {"pti": {"method": "pti", "config": PTI_SMALL}}, save_inversions=True)
    loaded = load_suite(suite)
    monkeypatch.setattr(_shutil, "disk_usage", lambda _p: _shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(PreflightError, match=r"\[disk\] .* for the saved inversions \(1.0 kB free\)"):
        preflight(loaded, resolve_methods(loaded), metrics=False)
