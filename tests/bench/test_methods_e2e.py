"""Every registered method, end to end through the harness on the tiny generator (a few steps each)."""
from __future__ import annotations

import dataclasses
import math

import pytest

import warpinv.methods  # noqa: F401  (registers the built-in methods)
from warpinv.bench.runner import run_bench
from warpinv.methods import METHODS

BUILT_IN = sorted(name for name, cls in METHODS.items() if not cls.__module__.startswith("tests."))


def few_steps(cls: type) -> dict:
    """A tiny budget: every declared budget field set to 2, random LPIPS trunks where weights would be needed."""
    fields = {f.name: f for f in dataclasses.fields(cls.Config)}
    config: dict = {name: 2 for name in getattr(cls, "budget_fields", ()) if name in fields}
    if "allow_random_lpips" in fields:
        config["allow_random_lpips"] = True
    if "w_avg_samples" in fields:
        config["w_avg_samples"] = 100
    return config


def test_the_built_in_methods_are_registered() -> None:
    assert {"w_opt", "wplus_opt", "pti"} <= set(BUILT_IN)


@pytest.mark.slow
@pytest.mark.parametrize("name", BUILT_IN)
def test_every_registered_method_runs_through_the_harness(name: str, suite_file) -> None:
    cls = METHODS[name]
    path, out = suite_file({name: {"method": name, "config": few_steps(cls)}}, dataset={"limit": 2},
                           views={"yaw_sweep": [0.3], "multiview": True})
    result = run_bench(path, quiet=True)
    inputs = [r for r in result.rows if r["view"] == "input"]
    assert len(inputs) == 2 and all(r["status"] == "ok" for r in inputs), [r.get("error") for r in inputs]
    assert all(math.isfinite(r["metrics"]["psnr"]) for r in inputs)
    assert all(r["seconds"] > 0 for r in inputs)
    assert {r["view"] for r in result.rows} >= {"input", "gt:yaw+0.35,pitch+0.00"}
    assert result.paths["html"].is_file() and result.board.rows[0].images == 2
