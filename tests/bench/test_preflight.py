"""Preflight: every missing weight file of every method, and the methods' declarations match their builds."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.conftest import write_suite
from warpinv.backbone import build_tiny
from warpinv.bench.preflight import PreflightError, preflight
from warpinv.bench.suite import load_suite, resolve_methods
from warpinv.config import from_dict
from warpinv.methods import METHODS, build_method

ALEX, VGG = "torchvision-alexnet", "torchvision-vgg16"


def weight_items(tmp_path: Path, methods: dict) -> dict[str, list[str]]:
    """``{registry name: needed by}`` of the preflight's missing weights (no LPIPS trunk is on disk in tests)."""
    path = write_suite(tmp_path / "suite.yaml", tmp_path / "data", tmp_path / "out", methods, metrics=[])
    suite = load_suite(path)
    with pytest.raises(PreflightError) as info:
        preflight(suite, resolve_methods(suite))
    return {i.what.split(" ")[0]: i.needed_by for i in info.value.items if i.kind == "weight"}


def test_every_missing_trunk_of_a_method_is_listed(tmp_path) -> None:
    items = weight_items(tmp_path, {
        "pti": {"method": "pti"},  # VGG16 for the pivot, AlexNet for the tuning
        "w_alex": {"method": "w_opt", "config": {"lpips_net": "alex"}},
        "w_random": {"method": "w_opt", "config": {"allow_random_lpips": True}},
        "w_mse": {"method": "wplus_opt", "config": {"lpips_weight": 0.0}},
    })
    assert items == {VGG: ["method pti"], ALEX: ["method pti", "method w_alex"]}


CONFIGS = {
    "pti": [{}, {"pivot": {"lpips_weight": 0.0}}, {"tuning": {"lpips_weight": 0.0, "lpips_threshold": None}},
            {"pivot": {"lpips_weight": 0.0}, "tuning": {"lpips_weight": 0.0, "lpips_threshold": None}},
            {"pivot": {"lpips_weight": 0.0}, "tuning": {"lpips_weight": 0.0, "lpips_threshold": None,
                                                        "locality_regularization": True}},
            {"allow_random_lpips": True}],
    "w_opt": [{}, {"lpips_net": "alex"}, {"lpips_weight": 0.0}, {"allow_random_lpips": True}],
    "wplus_opt": [{}, {"lpips_weight": 0.0}],
}


@pytest.fixture(scope="module")
def tiny():
    return build_tiny()


@pytest.mark.parametrize(("name", "config"), [(n, c) for n, cs in CONFIGS.items() for c in cs])
def test_declared_weights_are_the_trunks_the_build_resolves(name: str, config: dict, tiny, monkeypatch) -> None:
    """``required_weights`` (what the preflight checks) names exactly the trunks a build looks up."""
    import warpinv.metrics.lpips as lpips_module

    resolved: list[str] = []

    def record(net: str, trunk: object) -> None:  # None: the build goes on with a random trunk
        resolved.append(lpips_module.TRUNK_WEIGHTS[net])

    monkeypatch.setattr(lpips_module, "_resolve_trunk", record)
    build_method(name, config, tiny)
    cls = METHODS[name]
    assert sorted(set(resolved)) == sorted(cls.required_weights(from_dict(cls.Config, config)))
