"""``benchmarks/perf/versus_official.py``: the side-by-side harness against the official EG3D code.

The official code is never in the repository (its licence is non-commercial) and tests never download, so the
end-to-end test points ``--official`` at a stand-in checkout whose ``training/triplane.py`` re-exports our own
generator under the official name: it checks the harness (loading one state dict into both, the agreement check,
interleaved timing, the JSON and Markdown), not the official code's speed.
"""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "perf" / "versus_official.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmarks_perf_versus_official", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _stand_in_checkout(folder: Path) -> Path:
    """A folder shaped like a NVlabs/eg3d checkout (``eg3d/training/triplane.py``) that re-exports our class."""
    training = folder / "eg3d" / "training"
    training.mkdir(parents=True)
    (training / "__init__.py").write_text("")
    (training / "triplane.py").write_text("from warpinv.backbone.generator import EG3DGenerator as TriPlaneGenerator\n")
    return folder


def test_official_root_accepts_the_checkout_or_its_eg3d_folder_and_names_the_clone(tmp_path: Path) -> None:
    script = _script()
    checkout = _stand_in_checkout(tmp_path / "eg3d_checkout")
    assert script.official_root(checkout) == (checkout / "eg3d").resolve()
    assert script.official_root(checkout / "eg3d") == (checkout / "eg3d").resolve()
    with pytest.raises(SystemExit, match="git clone https://github.com/NVlabs/eg3d"):
        script.official_root(tmp_path / "nowhere")


def test_agreement_check_and_table() -> None:
    script = _script()
    row = {"config": "tiny", "batch": 1, "max_abs_diff": {"image": 2e-6, "ws": 0.0},
           "median_s": {"official": {"forward": 2.0, "forward_backward": 5.0},
                        "ours": {"forward": 1.0, "forward_backward": 4.0}},
           "ratio": {"forward": 0.5, "forward_backward": 0.8}}
    assert script.check_agreement(row, "cpu") is None
    assert "differ" in script.check_agreement({**row, "max_abs_diff": {"image": 0.5}}, "cpu")
    env = {"processor": "CPU", "threads": 2, "device": "cpu", "torch": "x", "git_commit": "abc",
           "official_commit": "7cf1fd1", "load_average_before": [0.1], "load_average_after": [0.2]}
    table = script.markdown({"environment": env, "results": [row, {"config": "tiny", "batch": 4, "error": ["OOM"]}]})
    assert "| tiny | 1 | **forward** | 2.000 | 1.000 | **0.50x** |" in table
    assert "| tiny | 1 | **forward + backward** | 5.000 | 4.000 | **0.80x** |" in table
    assert "FAILED: OOM" in table and "official NVlabs/eg3d 7cf1fd1" in table


def test_end_to_end_on_a_stand_in_official_checkout(tmp_path: Path) -> None:
    script = _script()
    checkout = _stand_in_checkout(tmp_path / "eg3d_checkout")
    out = tmp_path / "result.json"
    code = script.main(["--official", str(checkout), "--configs", "tiny", "--batches", "1", "--repeats", "1",
                        "--device", "cpu", "--out", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    (row,) = result["results"]
    assert "error" not in row, row
    # the same class with the same weights and the same seeded depths: identical outputs
    assert row["max_abs_diff"]["image"] == 0.0 and row["max_abs_diff"]["ws_grad_relative"] == 0.0
    for stage in ("forward", "mapping", "backbone", "renderer", "superresolution", "forward_backward"):
        assert len(row["runs_s"]["official"][stage]) == len(row["runs_s"]["ours"][stage]) >= 1
        assert row["ratio"][stage] > 0
    assert result["environment"]["load_average_before"] is not None
    assert "| tiny | 1 | **forward** |" in out.with_suffix(".md").read_text()
