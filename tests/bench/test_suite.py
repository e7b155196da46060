"""Suites: schema, method preset precedence, dotted overrides, shorthands, unknown keys, budgets."""
from __future__ import annotations

import pytest
import yaml

import tests.bench.toy  # noqa: F401  (registers bench_toy)
from warpinv.bench.suite import load_suite, resolve_methods
from warpinv.config import ConfigError


def write_suite(tmp_path, methods: dict, **extra) -> str:
    (tmp_path / "methods").mkdir(exist_ok=True)
    data = {"name": "t", "generator": "tiny", "dataset": {"root": str(tmp_path / "data")}, "methods": methods,
            "metrics": ["psnr"], "methods_dir": str(tmp_path / "methods"), **extra}
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_precedence_defaults_preset_suite_cli(tmp_path) -> None:
    path = write_suite(tmp_path, {"toy": {"method": "bench_toy", "config": {"steps": 5}}})
    (tmp_path / "methods" / "bench_toy.yaml").write_text("steps: 100\noffset: 0.5\n")
    [m] = resolve_methods(load_suite(path))
    assert (m.config.steps, m.config.offset, m.config.seed) == (5, 0.5, 0)  # suite > preset > defaults
    [m2] = resolve_methods(load_suite(path, ["method.steps=7", "methods.toy.offset=3e-4"]))
    assert (m2.config.steps, m2.config.offset) == (7, 3e-4)  # CLI wins; YAML's '3e-4' string parsed as a number
    assert m2.config_hash != m.config_hash
    assert m.budget == [("steps", 100, 5)] and m.budget_text() == "steps 100 -> 5 (x0.05)"
    assert m.preset_path and m.preset_path.endswith("bench_toy.yaml")


def test_list_form_and_suite_fields(tmp_path) -> None:
    path = write_suite(tmp_path, ["bench_toy"])
    suite = load_suite(path, ["output=runs/x", "dataset.limit=2", "allow_random_metrics=true", "views.yaw_sweep=[0.1]"])
    assert suite.output == "runs/x" and suite.dataset.limit == 2 and suite.allow_random_metrics
    assert suite.views.yaw_sweep == [0.1] and list(suite.methods) == ["bench_toy"]
    assert suite.methods["bench_toy"].method == "bench_toy"
    assert load_suite(path).output == "runs/bench/t"


def test_shorthand_needs_a_single_method(tmp_path) -> None:
    path = write_suite(tmp_path, {"a": {"method": "bench_toy"}, "b": {"method": "bench_toy"}})
    with pytest.raises(ConfigError, match=r"exactly one method; this suite has 2 \(a, b\)"):
        load_suite(path, ["method.steps=3"])
    suite = load_suite(path, ["methods.b.steps=3"])
    assert [m.config.steps for m in resolve_methods(suite)] == [10, 3]


@pytest.mark.parametrize(("override", "message"), [
    ("nonsense=1", "unknown key.*nonsense.*valid keys"),
    ("views.yaw=1", "unknown key.*views.yaw"),
    ("methods.nope.steps=1", "no method labelled 'nope'.*toy"),
    ("methods.toy.not_a_field=1", "unknown key.*not_a_field"),
    ("methods.toy.steps=many", "expected an integer"),
    ("justtext", "not of the form"),
])
def test_unknown_keys_and_bad_values_are_errors(tmp_path, override: str, message: str) -> None:
    path = write_suite(tmp_path, {"toy": {"method": "bench_toy"}})
    with pytest.raises(ConfigError, match=message):
        resolve_methods(load_suite(path, [override]))


def test_unknown_method_and_missing_preset(tmp_path) -> None:
    with pytest.raises(ConfigError, match="unknown method 'nope'.*bench_toy"):
        resolve_methods(load_suite(write_suite(tmp_path, {"x": {"method": "nope"}})))
    with pytest.raises(ConfigError, match="preset 'gone' not found"):
        resolve_methods(load_suite(write_suite(tmp_path, {"x": {"method": "bench_toy", "preset": "gone"}})))


def test_named_preset_with_config_block(tmp_path) -> None:
    path = write_suite(tmp_path, {"toy_long": {"method": "bench_toy", "preset": "toy_long"}})
    (tmp_path / "methods" / "toy_long.yaml").write_text("method: bench_toy\nconfig:\n  steps: 1000\n")
    [m] = resolve_methods(load_suite(path))
    assert m.config.steps == 1000 and m.budget == []


def test_the_committed_suites_load() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "experiments" / "bench"
    for path in sorted(root.glob("*.yaml")):
        suite = load_suite(path)
        assert suite.methods, path


def test_the_default_suite_runs_every_registered_method() -> None:
    """``make bench`` covers every built-in method: a newly registered method must join the default suite."""
    from pathlib import Path

    import warpinv.methods  # noqa: F401  (registers the built-in methods)
    from warpinv.methods import METHODS

    built_in = {name for name, cls in METHODS.items() if not cls.__module__.startswith("tests.")}
    suite = load_suite(Path(__file__).resolve().parents[2] / "experiments" / "bench" / "default.yaml")
    assert {m.name for m in resolve_methods(suite)} == built_in
    # 4 identities since the encoder rows joined (both suites of `make bench` must fit in 12 minutes on 2 cores), an
    # even number so that the two CPU ranks share the work equally.
    assert suite.generator == "tiny" and suite.dataset.synthesize is not None and suite.dataset.synthesize.n >= 4


def test_the_ood_section_scores_w_plus_pti_and_in_n_out_on_occluded_inputs() -> None:
    """``make bench``'s second suite: the occluded synthetic set, W+, PTI and In-N-Out, and the OOD metrics."""
    from pathlib import Path

    suite = load_suite(Path(__file__).resolve().parents[2] / "experiments" / "bench" / "default_ood.yaml")
    assert {m.name for m in resolve_methods(suite)} == {"wplus_opt", "pti", "in_n_out"}
    assert suite.dataset.synthesize is not None and suite.dataset.synthesize.options["occluders"] > 0
    assert {"clean_psnr", "blend_iou"} <= set(suite.metrics)


def test_the_sweep_suite_has_the_single_method_its_sweep_overrides() -> None:
    """``experiments/sweeps/pti_lr.yaml`` passes ``method.tuning.lr=...``: its suite must hold exactly one method."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "experiments" / "bench"
    suite = load_suite(root / "pti_sweep.yaml", ["method.tuning.lr=1e-3"])
    [m] = resolve_methods(suite)
    assert m.name == "pti" and m.config.tuning.lr == 1e-3


def test_the_code_is_part_of_every_config_hash(tmp_path, monkeypatch) -> None:
    """Issue 11: rows computed by older code (a metric changed and committed) were reused on resume."""
    from warpinv.bench import provenance

    suite_path = tmp_path / "suite.yaml"
    suite_path.write_text(yaml.safe_dump({"generator": "tiny", "dataset": {"root": str(tmp_path / "data")},
                                          "methods": ["w_opt"], "methods_dir": str(tmp_path)}))
    before = resolve_methods(load_suite(suite_path))[0].config_hash
    monkeypatch.setattr(provenance, "code_fingerprint", lambda: "other-code")
    assert resolve_methods(load_suite(suite_path))[0].config_hash != before

    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "sub" / "metric.py").write_text("SCALE = 1\n")
    (package / "README.md").write_text("docs\n")
    monkeypatch.undo()
    first = provenance.code_fingerprint(package)
    (package / "README.md").write_text("other docs\n")
    assert provenance.code_fingerprint(package) == first
    (package / "sub" / "metric.py").write_text("SCALE = 2\n")
    assert provenance.code_fingerprint(package) != first
