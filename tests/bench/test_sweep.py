"""Sweeps: wandb sweep files expanded locally (grid, seeded random), bayes refused, commands parsed."""
from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml

from warpinv.bench.sweep import SweepError, Trial, expand, load_sweep, parse_command, sample

CMD = ["${env}", "${interpreter}", "-m", "warpinv", "bench", "experiments/bench/x.yaml", "${args_no_hyphens}"]


def sweep_file(tmp_path, **data) -> Path:
    data.setdefault("command", CMD)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_grid_is_the_cartesian_product(tmp_path) -> None:
    spec = load_sweep(sweep_file(tmp_path, method="grid", parameters={
        "method.lr": {"values": [1e-4, 3e-4]}, "method.steps": {"values": [5, 10, 20]}, "seed": {"value": 1}}))
    trials = expand(spec)
    assert len(trials) == 6 and trials[0].params == {"method.lr": 1e-4, "method.steps": 5, "seed": 1}
    assert trials[-1].params == {"method.lr": 3e-4, "method.steps": 20, "seed": 1}
    assert trials[1].overrides() == ["method.lr=0.0001", "method.steps=10", "seed=1"]
    assert spec.suite == "experiments/bench/x.yaml" and [t.name for t in trials[:2]] == ["trial-000", "trial-001"]
    assert len(expand(spec, max_trials=4)) == 4


def test_grid_refuses_distributions(tmp_path) -> None:
    spec = load_sweep(sweep_file(tmp_path, method="grid", parameters={"lr": {"min": 0.1, "max": 1.0}}))
    with pytest.raises(SweepError, match="grid sweep needs value or values"):
        expand(spec)


def test_random_is_seeded_and_respects_distributions(tmp_path) -> None:
    spec = load_sweep(sweep_file(tmp_path, method="random", run_cap=50, parameters={
        "lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-2},
        "steps": {"min": 2, "max": 9},
        "psi": {"min": 0.5, "max": 1.0},
        "n": {"distribution": "int_uniform", "min": 1, "max": 3},
        "net": {"values": ["alex", "vgg"]}}))
    a, b, c = expand(spec, seed=0), expand(spec, seed=0), expand(spec, seed=1)
    assert [t.params for t in a] == [t.params for t in b] and [t.params for t in a] != [t.params for t in c]
    assert len(a) == 50
    lrs = [t.params["lr"] for t in a]
    assert all(1e-5 <= x <= 1e-2 for x in lrs)
    assert sum(x < 10 ** -3.5 for x in lrs) > 10  # log-uniform: plenty of small values, unlike uniform
    assert all(isinstance(t.params["steps"], int) and 2 <= t.params["steps"] <= 9 for t in a)
    assert all(isinstance(t.params["psi"], float) and 0.5 <= t.params["psi"] <= 1.0 for t in a)
    assert {t.params["n"] for t in a} == {1, 2, 3} and {t.params["net"] for t in a} == {"alex", "vgg"}


def test_random_needs_a_trial_count(tmp_path) -> None:
    spec = load_sweep(sweep_file(tmp_path, method="random", parameters={"lr": {"values": [1, 2]}}))
    with pytest.raises(SweepError, match="run_cap"):
        expand(spec)
    assert len(expand(spec, max_trials=3)) == 3


def test_bayes_is_refused_clearly(tmp_path) -> None:
    path = sweep_file(tmp_path, method="bayes", metric={"name": "pti/input/psnr", "goal": "maximize"},
                      parameters={"lr": {"values": [1, 2]}})
    with pytest.raises(SweepError, match="bayes.*W&B sweep server.*wandb sweep"):
        load_sweep(path)


def test_nested_parameters_flatten_to_dotted_keys(tmp_path) -> None:
    spec = load_sweep(sweep_file(tmp_path, method="grid", parameters={
        "method": {"parameters": {"lr": {"values": [1, 2]}}}}))
    assert list(spec.parameters) == ["method.lr"]


def test_command_parsing() -> None:
    here = Path("s.yaml")
    assert parse_command(CMD, here) == ("experiments/bench/x.yaml", [])
    assert parse_command([*CMD[:6], "--devices", "2", "${args_no_hyphens}"], here)[1] == ["--devices", "2"]
    with pytest.raises(SweepError, match="args_no_hyphens"):
        parse_command(CMD[:-1], here)
    with pytest.raises(SweepError, match="calling `warpinv bench"):
        parse_command(["python", "train.py"], here)
    with pytest.raises(SweepError, match="unsupported macro"):
        parse_command([*CMD, "${args_json}"], here)


def test_sample_rejects_bad_specs() -> None:
    rng = random.Random(0)
    with pytest.raises(SweepError, match="min .* > max"):
        sample("x", {"min": 2, "max": 1}, rng)
    with pytest.raises(SweepError, match="not supported"):
        sample("x", {"distribution": "beta", "min": 0, "max": 1}, rng)
    assert sample("x", {"distribution": "q_uniform", "min": 0, "max": 1, "q": 0.5}, rng) in (0.0, 0.5, 1.0)
    assert Trial(0, {"a.lr": 3e-4}).label() == "lr=0.0003"


def test_committed_sweeps_expand() -> None:
    root = Path(__file__).resolve().parents[2] / "experiments" / "sweeps"
    files = sorted(root.glob("*.yaml"))
    assert any(p.name == "pti_lr.yaml" for p in files)
    for path in files:
        spec = load_sweep(path)
        assert expand(spec, max_trials=100), path
        assert Path(spec.suite).name.endswith(".yaml")


@pytest.mark.slow
def test_a_local_grid_sweep_runs_every_trial_and_writes_one_table(suite_file, tmp_path) -> None:
    """``warpinv sweep``: each trial is a resumable bench run; one leaderboard and the best trial at the end."""
    from warpinv.bench.sweep import run_sweep

    suite, _ = suite_file(dataset={"limit": 2})
    command = [*CMD[:5], str(suite), "${args_no_hyphens}"]
    path = sweep_file(tmp_path, name="toy_offset", method="grid", metric={"name": "toy/input/psnr", "goal": "maximize"},
                      parameters={"method.offset": {"values": [0.0, 0.5]}}, command=command)
    result = run_sweep(path, out_dir=tmp_path / "sweep", quiet=True)
    assert [t["params"] for t in result.trials] == [{"method.offset": 0.0}, {"method.offset": 0.5}]
    table = result.leaderboard["md"].read_text()
    assert "trial-000 toy (offset=0.0)" in table and "trial-001 toy (offset=0.5)" in table
    assert f"Each trial ran {suite} with the overrides shown." in table
    # offset 0 returns w_avg for every image, 0.5 a random latent far from it: the sweep picks by its metric
    psnrs = [t["summary"]["toy/input/psnr"] for t in result.trials]
    assert result.best is not None and result.best["trial"] == f"trial-00{psnrs.index(max(psnrs))}"
    assert all((tmp_path / "sweep" / f"trial-00{i}" / "rows.jsonl").is_file() for i in range(2))
    again = run_sweep(path, out_dir=tmp_path / "sweep", quiet=True)  # resumable: nothing reruns
    assert [t["summary"] for t in again.trials] == [t["summary"] for t in result.trials]
