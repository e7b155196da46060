"""``benchmarks/perf/in_n_out.py``: the JSON and Markdown that ``--smoke`` writes (one in-process run on the tiny
generator, released settings and a small suite entry, about 30 s on 2 otherwise idle CPU cores), the arithmetic of
the per-image extrapolations and the default-suite budget. A performance script, not a port: no golden fixture, so
no ``golden`` marker."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "perf" / "in_n_out.py"
STEP_KEYS = ("random_start_sample_s", "wplus_step_s", "ood_step_s", "ood_step_frozen_ws_s", "sr_step_s")
#: The smoke run's suite entry: a reduced budget, MSE only, a 32 px OOD tri-plane, the latent frozen in stage 2.
SUITE_ENTRY = {"plane_resolution": 32,
               "ind": {"steps": 5, "init_samples": 4, "init_metric": "mse", "lpips_weight": 0.0},
               "ood": {"steps": 30, "ws_lr_scale": 0.0, "raw_lpips_weight": 0.0},
               "sr": {"steps": 3, "lpips_weight": 0.0, "deterministic_render": True}}


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmarks_perf_in_n_out", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _suite(path: Path, methods: dict[str, Any]) -> Path:
    data = {"name": "t", "generator": "tiny", "dataset": {"root": str(path.parent / "data")}, "methods": methods,
            "metrics": ["psnr"], "methods_dir": str(ROOT / "experiments" / "methods")}
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    folder = tmp_path_factory.mktemp("perf")
    suite = _suite(folder / "suite.yaml", {"in_n_out": {"config": SUITE_ENTRY}})
    out = folder / "perf_in_n_out.json"
    assert _script().main(["--smoke", "--suite", str(suite), "--out", str(out)]) == 0
    return json.loads(out.read_text()), out


def _rows(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["settings"]: r for r in result["steps"]}


def _row(**seconds: float) -> dict[str, Any]:
    """A measured row with the given seconds per figure (the rest 1 s)."""
    keys = ("latent_stats_s", *STEP_KEYS)
    return {"config": "probe", **{k: {"seconds": seconds.get(k, 1.0), "kind": "measured"} for k in keys}}


@pytest.mark.slow
def test_smoke_measures_every_stage_after_one_warm_up_step(smoke) -> None:
    result, _ = smoke
    row = _rows(result)["released"]
    assert row["config"] == "tiny" and row["lpips_random_trunks"] is True and row["ood_mask"] is True
    assert row["plane_resolution"] == 256 and row["peak_mb"] > 0
    for key in STEP_KEYS:
        fig = row[key]
        assert fig["kind"] == "measured" and fig["seconds"] > 0, key
        assert len(fig["runs_s"]) == 1 and fig["warmup_s"] > 0 and "median of 1" in fig["formula"], key
        assert 0 < fig["peak_mb_after"] <= row["peak_mb"], key
    assert row["random_start_sample_s"]["batch"] == 8  # seconds per latent over one ind.init_batch
    assert row["ood_step_frozen_ws_s"]["ws_lr_scale"] == 0 and "computed once" in row["ood_step_frozen_ws_s"]["formula"]
    assert row["ood_step_s"]["ws_lr_scale"] == pytest.approx(0.01) and "latent refined" in row["ood_step_s"]["formula"]
    assert row["random_start_sample_s"]["peak_mb_after"] == row["peak_mb"]  # the random start runs last
    assert "re-render" in row["sr_step_s"]["formula"]
    assert "random" in result["environment"]["lpips"] and result["settings"]["smoke"] is True


@pytest.mark.slow
def test_smoke_released_totals_add_up(smoke) -> None:
    result, out = smoke
    row = _rows(result)["released"]
    released = result["per_image"]["tiny"]["released"]
    s = released["stages"]
    assert s["random_start"]["seconds"] == pytest.approx(500 * row["random_start_sample_s"]["seconds"])
    assert s["wplus"]["seconds"] == pytest.approx(500 * row["wplus_step_s"]["seconds"])
    assert s["ood_latent_refined"]["seconds"] == pytest.approx(10_000 * row["ood_step_s"]["seconds"])
    assert s["ood_latent_frozen"]["seconds"] == pytest.approx(10_000 * row["ood_step_frozen_ws_s"]["seconds"])
    assert s["sr"]["seconds"] == pytest.approx(100 * row["sr_step_s"]["seconds"])
    base = sum(s[k]["seconds"] for k in ("latent_stats", "random_start", "wplus", "sr"))
    assert released["totals"]["latent_refined"]["seconds"] == pytest.approx(base + s["ood_latent_refined"]["seconds"])
    assert released["ood_variant"] == "latent_refined" and released["total"] == released["totals"]["latent_refined"]
    assert all(s[k]["kind"] == "extrapolated" and "formula" in s[k] for k in s if k != "latent_stats")
    assert "NOT a side-by-side" in result["official_reference"]["note"]
    assert "no official run" in result["official_reference"]["note"]
    assert result["official_reference"]["in_n_out_a6000"]["seconds_per_frame"] == pytest.approx(48.24)
    markdown = out.with_suffix(".md").read_text()
    assert "| tiny | released |" in markdown and "extrapolated" in markdown and "ws_lr_scale=0" in markdown


@pytest.mark.slow
def test_smoke_default_suite_is_measured_with_its_own_settings(smoke) -> None:
    result, out = smoke
    row = _rows(result)["default_suite"]
    assert row["config"] == "tiny" and row["plane_resolution"] == 32 and row["lpips_random_trunks"] is False
    assert "LPIPS" not in row["wplus_step_s"]["formula"] and "rendered once" in row["sr_step_s"]["formula"]
    assert "3x32x32x32" in row["ood_step_frozen_ws_s"]["formula"]
    suite = result["per_image"]["tiny"]["default_suite"]
    s = suite["stages"]
    assert s["random_start"]["seconds"] == pytest.approx(4 * row["random_start_sample_s"]["seconds"])
    assert s["wplus"]["seconds"] == pytest.approx(5 * row["wplus_step_s"]["seconds"])
    assert s["sr"]["seconds"] == pytest.approx(3 * row["sr_step_s"]["seconds"])
    assert suite["ood_variant"] == "latent_frozen"  # the entry freezes the latent (ood.ws_lr_scale=0)
    base = sum(s[k]["seconds"] for k in ("latent_stats", "random_start", "wplus", "sr"))
    assert suite["total"]["seconds"] == pytest.approx(base + 30 * row["ood_step_frozen_ws_s"]["seconds"])
    budget = result["budgets"]["default_suite"]
    assert budget["ood_steps"] == 30 and "plane_resolution: 256 -> 32" in budget["changes"]
    assert "| tiny | default_suite |" in out.with_suffix(".md").read_text()


def test_the_random_start_is_measured_in_a_process_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ``--in-process`` a row merges two children: the steps, and the random start (its own memory)."""
    script = _script()
    calls = []

    def child(args, name, settings, part):
        calls.append(part)
        if part == "steps":
            return {**_row(), "config": name, "settings": settings, "peak_mb": 900.0}
        start = {"seconds": 0.2, "kind": "measured", "peak_mb_before": 500.0, "peak_mb_after": 1300.0,
                 "mb_per_latent": 100.0}
        return {"config": name, "settings": settings, "random_start_sample_s": start, "peak_mb": 1300.0}

    monkeypatch.setattr(script, "run_child", child)
    args = script.parse_args(["--configs", "tiny"])
    row = script.run_group(args, "tiny", "released")
    assert calls == ["steps", "random_start"]
    assert row["wplus_step_s"]["seconds"] == 1.0 and row["random_start_sample_s"]["mb_per_latent"] == 100.0
    assert row["peak_mb"] == 1300.0
    failed = {"name": "tiny", "settings": "released", "error": ["MemoryError"]}
    monkeypatch.setattr(script, "run_child", lambda args, name, settings, part: failed if part != "steps" else _row())
    assert script.run_group(args, "tiny", "released") == failed


@pytest.mark.slow
def test_smoke_random_start_reports_its_memory(smoke) -> None:
    fig = _rows(smoke[0])["released"]["random_start_sample_s"]
    assert fig["peak_mb_before"] <= fig["peak_mb_after"]
    assert fig["mb_per_latent"] is None and "same process" in fig["memory"]  # --smoke runs in one process


def test_released_budget_is_the_released_recipe() -> None:
    budget = _script().released_budget()
    assert (budget["init_samples"], budget["ind_steps"], budget["ood_steps"], budget["sr_steps"]) == (
        500, 500, 10_000, 100)
    assert budget["ws_lr_scale"] == pytest.approx(0.01)


def test_per_image_follows_the_budget_and_its_ood_variant() -> None:
    script = _script()
    row = _row(latent_stats_s=2.0, random_start_sample_s=0.5, wplus_step_s=3.0, ood_step_s=4.0,
               ood_step_frozen_ws_s=1.5, sr_step_s=2.5)
    budget = {"init_samples": 10, "ind_steps": 20, "ood_steps": 100, "sr_steps": 4, "ws_lr_scale": 0.0, "note": "x"}
    out = script.per_image(row, budget)
    assert out["stages"]["random_start"]["formula"] == "10 x random_start_sample_s (0.5 s)"
    base = 2.0 + 10 * 0.5 + 20 * 3.0 + 4 * 2.5
    no_sr = script.per_image({**row, "sr_step_s": script.NOT_RUN}, {**budget, "sr_steps": 0})
    assert no_sr["stages"]["sr"]["seconds"] == 0 and no_sr["total"]["seconds"] == pytest.approx(base - 10.0 + 150.0)
    assert out["totals"]["latent_refined"]["seconds"] == pytest.approx(base + 100 * 4.0)
    assert out["totals"]["latent_frozen"]["seconds"] == pytest.approx(base + 100 * 1.5)
    assert out["ood_variant"] == "latent_frozen" and out["total"]["seconds"] == pytest.approx(base + 150.0)
    rows = [{**row, "settings": "b"}, {"name": "ffhq512-128", "settings": "b", "error": ["boom"]}]
    by_config = script.extrapolate(rows, {"b": budget, "default_suite": {"skipped": "no entry"}})
    assert list(by_config) == ["probe"] and list(by_config["probe"]) == ["b"]


def test_suite_budget_reads_the_in_n_out_entry_over_its_preset(tmp_path: Path) -> None:
    overrides = {"ind": {"steps": 5, "init_samples": 4}, "ood": {"steps": 30, "ws_lr_scale": 0.0,
                                                                  "raw_lpips_weight": 0.0}, "sr": {"steps": 3}}
    suite = _suite(tmp_path / "s.yaml", {"w_opt": {}, "in_n_out": {"config": overrides}})
    budget = _script().suite_budget(suite)
    assert (budget["init_samples"], budget["ind_steps"], budget["ood_steps"], budget["sr_steps"]) == (4, 5, 30, 3)
    assert budget["ws_lr_scale"] == 0 and budget["label"] == "in_n_out" and budget["generator"] == "tiny"
    assert budget["changes"] == ["ood.raw_lpips_weight: 1.0 -> 0.0"]  # budget fields are not listed


def test_suite_budget_is_skipped_without_an_entry(tmp_path: Path) -> None:
    script = _script()
    assert "no in_n_out entry" in script.suite_budget(_suite(tmp_path / "s.yaml", {"w_opt": {}}))["skipped"]
    assert "does not exist" in script.suite_budget(tmp_path / "missing.yaml")["skipped"]


def test_step_clock_reports_the_median_after_the_warm_up_step() -> None:
    import torch

    script = _script()
    clock = script.StepClock(torch.device("cpu"))
    clock.start, clock.stamps = 0.0, [5.0, 6.0, 9.0, 11.0]  # warm-up 5 s, then steps of 1, 3 and 2 s
    fig = script.step_figure(clock, "probe")
    assert fig["kind"] == "measured" and fig["seconds"] == 2.0
    assert fig["runs_s"] == [1.0, 3.0, 2.0] and fig["warmup_s"] == 5.0 and "median of 3 steps" in fig["formula"]
    clock.stamps = [4.0]
    assert script.step_figure(clock, "probe")["formula"] == "probe: one step incl. setup (no warm-up)"


@pytest.mark.parametrize("argv", [["--configs", "ffhq1024"], ["--steps", "-1"], ["--start-batches", "0"]])
def test_bad_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        _script().parse_args(argv)
