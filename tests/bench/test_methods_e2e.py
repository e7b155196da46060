"""Every registered method, end to end through the harness on the tiny generator (a few steps each)."""
from __future__ import annotations

import dataclasses
import math

import pytest

import warpinv.methods  # noqa: F401  (registers the built-in methods)
from warpinv.bench.runner import run_bench
from warpinv.methods import METHODS

BUILT_IN = sorted(name for name, cls in METHODS.items() if not cls.__module__.startswith("tests."))


#: Settings of any (nested) config field with this name, so that every method runs weightless and fast.
CHEAP = {"allow_random_lpips": True, "w_avg_samples": 100, "allow_untrained": True, "latent_avg_samples": 100}


def few_steps(cls: type) -> dict:
    """A tiny budget: every declared budget field (a dotted path) set to 2, and the :data:`CHEAP`
    settings wherever the config (or a nested config) has such a field."""
    config = cheap_settings(cls.Config)
    for path in cls.budget_fields:
        *parents, leaf = path.split(".")
        node = config
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = 2
    return config


def cheap_settings(config_cls: type) -> dict:
    out: dict = {}
    for f in dataclasses.fields(config_cls):
        nested = f.type if dataclasses.is_dataclass(f.type) else _dataclass_of(config_cls, f.name)
        if nested is not None:
            inner = cheap_settings(nested)
            if inner:
                out[f.name] = inner
        elif f.name in CHEAP:
            out[f.name] = CHEAP[f.name]
    return out


def _dataclass_of(config_cls: type, name: str) -> type | None:
    import typing

    hint = typing.get_type_hints(config_cls).get(name)
    return hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None


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
