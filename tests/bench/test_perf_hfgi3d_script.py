"""``benchmarks/perf/hfgi3d.py --smoke``: the JSON and Markdown it writes and the arithmetic of its
extrapolations (one in-process run of under 10 s on 2 otherwise idle CPU cores). A performance script,
not a port: no golden fixture, so no ``golden`` marker."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "perf" / "hfgi3d.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmarks_perf_hfgi3d", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("perf") / "perf_hfgi3d.json"
    assert _script().main(["--smoke", "--out", str(out)]) == 0
    return json.loads(out.read_text()), out


@pytest.mark.slow
def test_smoke_measures_both_modes_and_extrapolates_to_31_views(smoke) -> None:
    result, _ = smoke
    rows = {r["mode"]: r for r in result["pseudo_views"]}
    assert set(rows) == {"official", "clean"}
    for row in rows.values():
        assert row["views_timed"] == 2 and row["num_points"] == 2000 and 0 < row["num_visible"] <= 2000
        assert row["views_31_s"]["kind"] == "extrapolated" and row["seen_surface_s"]["kind"] == "measured"
        expected = row["seen_surface_s"]["seconds"] + 31 * row["per_view_s"]["seconds"]
        assert row["views_31_s"]["seconds"] == pytest.approx(expected)
        assert row["make_pseudo_views_s"]["seconds"] >= row["seen_surface_s"]["seconds"] * 0.5 > 0


@pytest.mark.slow
def test_smoke_step_costs_use_random_lpips_and_say_so(smoke) -> None:
    result, _ = smoke
    (row,) = result["steps"]
    assert row["config"] == "tiny" and row["lpips_random_trunks"] is True
    assert "random" in result["environment"]["lpips"]
    for key in ("projector_step_s", "tuning_step_s", "tuning_step_2views_s", "forward_s"):
        assert row[key]["kind"] == "measured" and row[key]["seconds"] > 0, key
        assert len(row[key]["runs_s"]) == 1, key  # --smoke: one step of each, setup included
    assert "no warm-up" in row["projector_step_s"]["formula"]


def test_step_clock_reports_the_median_after_the_warm_up_step() -> None:
    import torch

    script = _script()
    clock = script.StepClock(torch.device("cpu"))
    clock.start, clock.stamps = 0.0, [5.0, 6.0, 9.0, 11.0]  # warm-up 5 s, then steps of 1, 3 and 2 s
    fig = script.step_figure(clock, "probe")
    assert fig["kind"] == "measured" and fig["seconds"] == 2.0
    assert fig["runs_s"] == [1.0, 3.0, 2.0] and fig["warmup_s"] == 5.0 and "median of 3" in fig["formula"]


@pytest.mark.slow
def test_smoke_per_image_totals_add_up(smoke) -> None:
    result, out = smoke
    steps = result["steps"][0]
    released = result["per_image"]["tiny"]["released"]
    stages = released["stages"]
    assert stages["projector"]["seconds"] == pytest.approx(
        500 * steps["projector_step_s"]["seconds"] + steps["latent_stats_s"]["seconds"])
    assert stages["final_tuning"]["seconds"] == pytest.approx(1000 * steps["tuning_step_2views_s"]["seconds"])
    official = released["by_pseudo_view_mode"]["official"]
    total = sum(s["seconds"] for s in stages.values()) + official["pseudo_views"]["seconds"]
    assert official["total_up_to"]["seconds"] == pytest.approx(total)
    assert official["total_if_tuning_stops_at_once"]["seconds"] == pytest.approx(
        total - stages["tuning_up_to"]["seconds"])
    assert all(s["kind"] == "extrapolated" and "formula" in s for s in stages.values())
    paper = result["per_image"]["tiny"]["paper"]["stages"]
    assert paper["final_tuning"]["seconds"] == pytest.approx(3 * stages["final_tuning"]["seconds"])
    assert "NOT a side-by-side" in result["official_reference"]["note"]
    markdown = out.with_suffix(".md").read_text()
    assert "| tiny | released |" in markdown and "extrapolated" in markdown


def test_dome_depth_spans_the_requested_range() -> None:
    depth = _script().dome_depth(32)
    assert depth.shape == (32, 32)
    assert float(depth.min()) == pytest.approx(2.3, abs=0.01) and float(depth.max()) == pytest.approx(2.9)
    assert float(depth[16, 16]) < float(depth[0, 0])  # the dome is nearer than the background


@pytest.mark.parametrize("argv", [["--views", "0"], ["--configs", "ffhq1024"], ["--steps", "-1"]])
def test_bad_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        _script().parse_args(argv)
