"""The bench/sweep command line, preflight messages, and wandb mode resolution."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import PROJECT_ROOT
from warpinv.bench.cli import run_bench_cli
from warpinv.bench.preflight import PreflightError, preflight
from warpinv.bench.suite import load_suite, resolve_methods
from warpinv.bench.wandb_log import log_run, resolve_mode

CELEBAHQ = PROJECT_ROOT / "experiments" / "bench" / "celebahq.yaml"


def test_celebahq_fails_in_seconds_listing_every_missing_item(capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(PROJECT_ROOT)
    t0 = time.perf_counter()
    code = run_bench_cli(["bench", str(CELEBAHQ), f"output={tmp_path / 'out'}"])
    elapsed = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert code == 2
    assert elapsed < 60  # "seconds": nothing heavy is built (generous for a loaded 2-core CI box)
    assert "cannot run" in err and "Traceback" not in err
    suite = load_suite(CELEBAHQ)
    # the generator checkpoint, the data folder and split, every metric's weights, the methods' LPIPS trunks
    for needle in ("eg3d-ffhq512-128", suite.dataset.root, suite.dataset.split, "arcface-ir-se50",
                   "torchvision-alexnet", "torchvision-vgg16", "warpinv data prepare", "warpinv data celebahq-split"):
        assert needle in err, needle
    assert "method w_opt" in err and "method pti" in err
    assert not (tmp_path / "out").exists()  # nothing was written


def test_celebahq_preflight_states_the_disk_saved_inversions_need(capsys, monkeypatch, tmp_path) -> None:
    """Issue 10: two PTI variants saving every tuned tensor of ffhq512-128 for 2,824 images."""
    monkeypatch.chdir(PROJECT_ROOT)
    assert run_bench_cli(["bench", str(CELEBAHQ), f"output={tmp_path / 'out'}", "save_inversions=true"]) == 2
    line = next(x for x in capsys.readouterr().err.splitlines() if x.startswith("# saving inversions"))
    assert "for 2824 image(s)" in line and "pti " in line and "pti_eg3d " in line and " GB" in line


@pytest.mark.parametrize(("override", "message"), [
    ("methods.w_opt.lr=.inf", "expected a finite number, got inf"),
    ("dataset.limit=-1", "dataset.limit must be >= 1, got -1"),
    ("cpu_processes=0", "cpu_processes must be >= 1, got 0"),
    ("dataset.options.no_such_option=1", "unknown key(s) dataset.options.no_such_option"),
])
def test_dry_run_refuses_values_that_cannot_run(capsys, override: str, message: str) -> None:
    """Issue 11: each of these said "preflight ok"."""
    default = PROJECT_ROOT / "experiments" / "bench" / "default.yaml"
    assert run_bench_cli(["bench", str(default), "--dry-run", override]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_celebahq_subset_suite_inherits(monkeypatch) -> None:
    monkeypatch.chdir(PROJECT_ROOT)
    sub = load_suite(PROJECT_ROOT / "experiments" / "bench" / "celebahq1500.yaml")
    assert sub.generator == "ffhq512-128" and "1500" in str(sub.dataset.split) and sub.require_metric_weights
    assert set(sub.methods) == set(load_suite(CELEBAHQ).methods)


def test_preflight_reports_missing_data_and_generator_file(tmp_path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"generator": str(tmp_path / "nope.pkl"), "methods": ["bench_toy"],
                                    "dataset": {"root": str(tmp_path / "missing"), "split": str(tmp_path / "s.txt")},
                                    "metrics": []}))
    import tests.bench.toy  # noqa: F401

    suite = load_suite(path)
    with pytest.raises(PreflightError) as info:
        preflight(suite, resolve_methods(suite))
    kinds = sorted(i.kind for i in info.value.items)
    assert kinds == ["data", "data", "generator"]
    assert "nope.pkl" in str(info.value) and "s.txt" in str(info.value) and "missing" in str(info.value)


def test_unknown_override_is_a_clean_error(capsys, suite_file) -> None:
    path, out = suite_file()
    assert run_bench_cli(["bench", str(path), "views.nonsense=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown key(s) views.nonsense" in err and "Traceback" not in err
    assert not out.exists()


def test_dry_run_and_keys(capsys, suite_file) -> None:
    path, out = suite_file()
    assert run_bench_cli(["bench", str(path), "--dry-run", "method.offset=0.2"]) == 0
    printed = capsys.readouterr().out
    assert "preflight ok" in printed and "offset: 0.2" in printed and not out.exists()
    assert run_bench_cli(["bench", str(path), "--keys"]) == 0
    printed = capsys.readouterr().out
    assert "views.yaw_sweep" in printed and "methods.toy.<key>" in printed and "fail_ids" in printed


def test_sweep_dry_run_and_bayes_refusal(capsys, tmp_path) -> None:
    assert run_bench_cli(["sweep", str(PROJECT_ROOT / "experiments" / "sweeps" / "pti_lr.yaml"), "--dry-run"]) == 0
    assert "method.tuning.lr=0.0003" in capsys.readouterr().out
    bayes = tmp_path / "b.yaml"
    bayes.write_text(yaml.safe_dump({"method": "bayes", "parameters": {"x": {"values": [1]}},
                                     "command": ["bench", "s.yaml", "${args_no_hyphens}"]}))
    assert run_bench_cli(["sweep", str(bayes)]) == 2
    assert "bayes" in capsys.readouterr().err


def test_wandb_mode_resolution(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("NETRC", raising=False)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_mode(True, "online") == "disabled"  # the environment wins (tests, CI)
    monkeypatch.delenv("WANDB_MODE")
    assert resolve_mode(True, None) == "offline"  # not logged in
    assert resolve_mode(False, None) == "disabled"
    assert resolve_mode(True, "dryrun") == "offline"
    (tmp_path / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password abc123\n")
    (tmp_path / ".netrc").chmod(0o600)
    assert resolve_mode(True, None) == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert log_run(enabled=True, mode=None, project="p", entity=None, name="n", out_dir=tmp_path, config={},
                   rows=[], summary={}) is None


def test_bench_never_needs_wandb(monkeypatch, suite_file) -> None:
    """A broken or missing wandb only warns; the run's files are complete."""
    import builtins

    real_import = builtins.__import__

    def no_wandb(name, *args, **kwargs):
        if name == "wandb" or name.startswith("wandb."):
            raise ImportError("wandb is not installed")
        return real_import(name, *args, **kwargs)

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setattr(builtins, "__import__", no_wandb)
    path, out = suite_file(wandb={"enabled": True}, dataset={"limit": 1}, views={"gt_novel": False})
    from warpinv.bench.runner import run_bench

    with pytest.warns(UserWarning, match="wandb logging skipped"):
        result = run_bench(path, quiet=True)
    assert result.paths["md"].is_file() and not (Path(out) / "wandb").exists()


def test_the_warpinv_command_mounts_bench_and_sweep(capsys) -> None:
    """``make bench`` calls ``python -m warpinv bench``: the main parser must route to the harness."""
    from warpinv.cli import main

    assert main(["bench", str(PROJECT_ROOT / "experiments" / "bench" / "default.yaml"), "--dry-run"]) == 0
    assert "# preflight ok" in capsys.readouterr().out
    assert main(["sweep", str(PROJECT_ROOT / "experiments" / "sweeps" / "pti_lr.yaml"), "--dry-run"]) == 0
    assert "3 trial(s)" in capsys.readouterr().out


class FakeRun:
    """Records what a wandb run is asked to do; ``fail_on`` makes that call raise."""

    def __init__(self, fail_on: str = "") -> None:
        self.fail_on = fail_on
        self.logged: list[dict] = []
        self.finish_codes: list[int | None] = []
        self.summary: dict = {}

    def log(self, payload: dict) -> None:
        if self.fail_on == "log":
            raise RuntimeError("upload refused")
        self.logged.append(payload)

    def finish(self, exit_code: int | None = None) -> None:
        self.finish_codes.append(exit_code)


def fake_wandb(run: FakeRun, fail_on: str = ""):
    import types

    def table(columns, data):
        if fail_on == "table":
            raise ValueError("bad table")
        return {"columns": columns, "data": data}

    return types.SimpleNamespace(init=lambda **kwargs: run, Table=table, Image=lambda path, caption: (path, caption))


@pytest.mark.parametrize("fail_on", ["log", "table"])
def test_the_wandb_run_is_finished_when_a_later_step_raises(monkeypatch, tmp_path, fail_on: str) -> None:
    import sys

    run = FakeRun(fail_on)
    monkeypatch.setitem(sys.modules, "wandb", fake_wandb(run, fail_on))
    monkeypatch.setenv("WANDB_MODE", "offline")  # not disabled, so log_run reaches wandb.init (the fake)
    for key in ("WANDB_SILENT", "WANDB_ERROR_REPORTING"):
        monkeypatch.setenv(key, "false")  # log_run sets these when absent; keep them out of later tests
    rows = [{"image_id": "a", "method": "m", "metrics": {"psnr": 20.0}}]
    with pytest.warns(UserWarning, match="wandb logging failed"):
        mode = log_run(enabled=True, mode=None, project="p", entity=None, name="n", out_dir=tmp_path, config={},
                       rows=rows, summary={"m/input/psnr": 20.0})
    assert mode is None and run.finish_codes == [1] and run.logged == []


def test_a_logged_wandb_run_is_finished_once_with_code_zero(monkeypatch, tmp_path) -> None:
    import sys

    run = FakeRun()
    monkeypatch.setitem(sys.modules, "wandb", fake_wandb(run))
    monkeypatch.setenv("WANDB_MODE", "offline")
    for key in ("WANDB_SILENT", "WANDB_ERROR_REPORTING"):
        monkeypatch.setenv(key, "false")
    rows = [{"image_id": "a", "method": "m", "metrics": {"psnr": 20.0}}]
    assert log_run(enabled=True, mode=None, project="p", entity=None, name="n", out_dir=tmp_path, config={},
                   rows=rows, summary={"m/input/psnr": 20.0, "m/x": float("nan")},
                   images={"m": [("images/m/a/00_input.png", "a: input")]}) == "offline"
    assert run.finish_codes == [0] and run.summary == {"m/input/psnr": 20.0}
    assert run.logged[0]["rows"]["columns"] == ["image_id", "method", "metric/psnr"]
    assert run.logged[0]["grid/m"] == [(str(tmp_path / "images/m/a/00_input.png"), "a: input")]


def test_a_method_without_one_successful_image_exits_1(capsys, suite_file) -> None:
    path, out = suite_file({"bad": {"method": "bench_toy", "config": {"fail_ids": ["id000.png", "id001.png"]}},
                            "part": {"method": "bench_toy", "config": {"fail_ids": ["id001.png"]}}},
                           dataset={"limit": 2}, views={"gt_novel": False})
    assert run_bench_cli(["bench", str(path), "-q"]) == 1
    err = capsys.readouterr().err
    assert "bad: 2 of 2 image(s) failed: NonFiniteLossError: loss is nan at step 1 (2 images)" in err
    assert "part: 1 of 2 image(s) failed: NonFiniteLossError: loss is nan at step 1 (1 image)" in err
    assert "no successful image for bad;" in err and "Traceback" not in err
    assert "| bad | - | 0 | 2 |" in (out / "leaderboard.md").read_text()  # the leaderboard is still written


def _result(rows: list[dict]):
    from warpinv.bench import leaderboard as lb
    from warpinv.bench.rows import check_split
    from warpinv.bench.runner import BenchResult

    board = lb.aggregate(rows, [lb.MethodSummary("m", "toy", "h")])
    return BenchResult(Path("."), rows, board, {}, {}, [check_split(rows, ["a", "b"], "m", "h")])


def test_partial_failures_exit_0_but_are_reported() -> None:
    from warpinv.bench.rows import make_row

    ok = make_row(image_id="a", method="m", method_name="toy", config_hash="h", view="input", metrics={"psnr": 1.0})
    failed = make_row(image_id="b", method="m", method_name="toy", config_hash="h", view="input", status="failed",
                      error="OutOfMemory: CUDA out of memory")
    partial = _result([ok, failed])
    assert partial.exit_code == 0 and partial.methods_without_success == []
    assert partial.failure_lines() == ["m: 1 of 2 image(s) failed: OutOfMemory: CUDA out of memory (1 image)"]
    every = _result([failed, {**failed, "image_id": "a", "error": None}])
    assert every.exit_code == 1 and every.methods_without_success == ["m"]
    assert every.failure_lines() == ["m: 2 of 2 image(s) failed: OutOfMemory: CUDA out of memory (1 image); "
                                     "no reason recorded (1 image)"]
    assert _result([ok]).exit_code == 1  # b is missing: incomplete, as before
    clean = _result([ok, {**ok, "image_id": "b"}])
    assert clean.failure_lines() == [] and clean.exit_code == 0


@pytest.mark.parametrize(("errno_name", "hint"), [("EACCES", "not writable"), ("ENOSPC", "the disk is full")])
def test_an_unwritable_output_ends_in_one_line_with_exit_3(capsys, suite_file, tmp_path, monkeypatch,
                                                           errno_name: str, hint: str) -> None:
    """Issue 11: a read-only output folder or a full disk gave a raw traceback."""
    import errno

    import warpinv.bench.runner as runner

    def refuse(*_a, **_k):
        raise OSError(getattr(errno, errno_name), os.strerror(getattr(errno, errno_name)), str(tmp_path / "out"))

    monkeypatch.setattr(runner, "output_lock", refuse)  # root writes through permission bits: simulate
    path, _ = suite_file()
    assert run_bench_cli(["bench", str(path), "--quiet"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("warpinv bench: cannot write") and hint in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_hostile_generator_pickle_ends_in_one_line_with_exit_2(capsys, suite_file, tmp_path) -> None:
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(b"\x80\x04cbuiltins\nexec\nX\x05\x00\x00\x001+1\n\x85R.")
    path, out = suite_file(generator=str(evil))
    assert run_bench_cli(["bench", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("warpinv bench:") and "refused global builtins.exec" in err and "Traceback" not in err


def test_a_generator_file_that_does_not_fit_its_kwargs_names_the_file(tmp_path) -> None:
    from warpinv.backbone import build_tiny, load_generator
    from warpinv.backbone.loading import GeneratorLoadError
    from warpinv.weights.generator_file import save_generator_file

    G = build_tiny()
    state = dict(G.state_dict())
    state.pop("decoder.net.2.bias")
    path = tmp_path / "broken.safetensors"
    save_generator_file(path, state, dict(G.init_kwargs), G.neural_rendering_resolution)
    with pytest.raises(GeneratorLoadError, match="broken.safetensors: its tensors do not match .*decoder.net.2.bias"):
        load_generator(path)


def test_released_warpgan_suite_lists_its_files_and_converted_generator(capsys, monkeypatch, tmp_path) -> None:
    """The CelebA-HQ suite of the released WarpGAN model names every released file it lacks before any work."""
    monkeypatch.chdir(PROJECT_ROOT)
    monkeypatch.setenv("WARPINV_WEIGHTS", str(tmp_path / "no_weights"))
    path = PROJECT_ROOT / "experiments" / "bench" / "celebahq_warpgan.yaml"
    code = run_bench_cli(["bench", str(path), f"output={tmp_path / 'out'}"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    for needle in ("warpgan-encoder", "warpgan-svinet", "warpgan-latent-avg", "var2-128.safetensors",
                   "celebahq_test_warpgan1000.txt"):
        assert needle in err, needle
    assert not (tmp_path / "out").exists()
