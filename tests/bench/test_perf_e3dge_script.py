"""``benchmarks/perf/e3dge.py``: the JSON and Markdown that ``--smoke`` writes (one in-process run on the tiny
generator with the default suite's entries, fewer ``w_avg`` samples, on proxy inputs), and its helpers. A
performance script, not a port: nothing is compared against reference outputs."""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "perf" / "e3dge.py"
LABELS = ("e3dge", "e3dge_global", "wplus_opt", "pti")


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmarks_perf_e3dge", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _suite(folder: Path) -> Path:
    """The default suite's four timed entries; fewer ``w_avg`` samples, a missing encoder checkpoint and a dataset
    folder that does not exist (proxy inputs)."""
    default = yaml.safe_load((ROOT / "experiments" / "bench" / "default.yaml").read_text())
    methods = {label: default["methods"][label] for label in LABELS}
    methods["wplus_opt"]["config"]["w_avg_samples"] = 16
    methods["pti"]["config"]["pivot"]["w_avg_samples"] = 16
    methods["e3dge"]["config"] = {"checkpoint": str(folder / "missing.safetensors")}
    data = {"name": "t", "generator": "tiny", "dataset": {"root": str(folder / "data")}, "methods": methods,
            "metrics": ["psnr"], "methods_dir": str(ROOT / "experiments" / "methods")}
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _positive(fig: dict[str, Any]) -> bool:
    return fig["kind"] == "measured" and all(math.isfinite(fig[k]) and fig[k] > 0 for k in ("seconds", "images_per_s"))


def test_smoke_times_the_encoders_beside_the_optimisers(tmp_path: Path) -> None:
    out = tmp_path / "perf_e3dge.json"
    argv = ["--smoke", "--threads", "1", "--suite", str(_suite(tmp_path)), "--out", str(out)]
    threads = torch.get_num_threads()
    try:
        assert _script().main(argv) == 0
    finally:
        torch.set_num_threads(threads)  # the script sets the process's threads; later tests pin float sums
    result = json.loads(out.read_text())
    encoders = {e["label"]: e for e in result["encoders"]}
    assert set(encoders) == {"e3dge", "e3dge_global"} and all(e["batch"] == 1 for e in encoders.values())
    assert encoders["e3dge"]["use_local"] is True and encoders["e3dge_global"]["use_local"] is False
    for e in encoders.values():
        fig = e["seconds_per_image"]
        assert _positive(fig) and len(fig["runs_s"]) == 1 and fig["warmup_s"] > 0, e["label"]
        assert "median of 1 calls after 1 warm-up" in fig["formula"]
    optimisers = {o["label"]: o for o in result["optimisers"]}
    assert set(optimisers) == {"wplus_opt", "pti"}
    assert all(_positive(o["seconds_per_image"]) and "2 steps" in o["budget"] for o in optimisers.values())
    assert result["process_warmup"]["seconds"] > 0 and "not a result" in result["process_warmup"]["formula"]
    for s in result["speedups"]:
        assert set(s["vs"]) == {"wplus_opt", "pti"} and all(math.isfinite(f) and f > 0 for f in s["vs"].values())
    assert result["weights"].startswith("untrained (") and "missing" in result["weights"]  # the e3dge entry's
    assert encoders["e3dge"]["weights"] == result["weights"] and encoders["e3dge_global"]["weights"]
    assert result["inputs"].startswith("1 proxy sample(s)")  # smoke: batch 1 only
    env = result["environment"]
    assert env["threads"] == 1 and env["torch"] and env["platform"] and "load_average_after" in env
    assert result["settings"]["smoke"] is True and result["full_size"] == []
    markdown = out.with_suffix(".md").read_text()
    assert "| e3dge | 1 |" in markdown and "| pti | 1 (per image) |" in markdown and "speed-up vs wplus_opt" in markdown


def test_encoder_config_runs_untrained_only_without_the_file(tmp_path: Path) -> None:
    from warpinv.methods.e3dge.config import E3DGEConfig

    script = _script()
    config, weights = script.encoder_config(E3DGEConfig(checkpoint=str(tmp_path / "absent.safetensors")))
    assert config.checkpoint is None and config.allow_untrained and weights.startswith("untrained (")
    present = tmp_path / "enc.safetensors"
    present.write_bytes(b"")
    config, weights = script.encoder_config(E3DGEConfig(checkpoint=str(present)))
    assert config.checkpoint == str(present) and not config.allow_untrained and weights == str(present)


def test_with_steps_sets_every_stage() -> None:
    from warpinv.methods.pti.method import PTI

    config = _script().with_steps(PTI.Config(), 3)
    assert config.pivot.steps == 3 and config.tuning.steps == 3 and dataclasses.is_dataclass(config)


def test_batches_cycle_with_distinct_ids() -> None:
    import torch

    from warpinv.methods.base import InversionItem

    items = [InversionItem(n, torch.zeros(1, 3, 4, 4), torch.zeros(1, 25)) for n in ("a", "b", "c")]
    batch = _script().batch_of(items, 8)
    assert len({i.image_id for i in batch}) == 8 and batch[3].image is items[0].image


@pytest.mark.parametrize("argv", [["--configs", "ffhq1024"], ["--reps", "0"], ["--batches", "0"],
                                  ["--opt-steps", "0"], ["--full-reps", "0"]])
def test_bad_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        _script().parse_args(argv)
