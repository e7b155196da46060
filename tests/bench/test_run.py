"""End-to-end harness runs on the tiny generator: outputs, failed rows, resume after a kill, retries."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.bench.conftest import N_IMAGES
from tests.bench.toy import COUNT_ENV, FAIL_ENV, KILL_ENV, KILL_MODE_ENV
from tests.helpers import PROJECT_ROOT
from warpinv.bench.rows import merge_shards, read_shards
from warpinv.bench.runner import run_bench


def started(count_file: Path) -> list[str]:
    return count_file.read_text().split() if count_file.exists() else []


def test_a_run_writes_every_output(suite_file, tmp_path) -> None:
    path, out = suite_file()
    result = run_bench(path, quiet=True)
    for name in ("resolved_config.yaml", "rows.jsonl", "rows/rank0.jsonl", "leaderboard.md", "leaderboard.csv",
                 "leaderboard.tex", "leaderboard.html", "timing.json", "provenance.json"):
        assert (out / name).is_file(), name
    ids = sorted({r["image_id"] for r in result.rows})
    assert len(ids) == N_IMAGES
    views = {r["view"] for r in result.rows}
    assert views == {"input", "gt:yaw+0.35,pitch+0.00", "gt:yaw-0.35,pitch+0.10"}  # no identity metric: no sweep rows
    assert all(r["status"] == "ok" and r["metrics"]["psnr"] > 0 for r in result.rows)
    assert all(r["group"] == 3 for r in result.rows)
    resolved = yaml.safe_load((out / "resolved_config.yaml").read_text())
    assert resolved["methods"]["toy"]["config"]["offset"] == 0.05 and resolved["methods"]["toy"]["config_hash"]
    prov = json.loads((out / "provenance.json").read_text())
    for key in ("git", "generator", "dataset", "metrics", "packages", "device", "date", "suite_hash"):
        assert key in prov, key
    assert prov["generator"]["state_dict_sha256"] and prov["dataset"]["split_sha256"]
    md = (out / "leaderboard.md").read_text()
    assert "psnr" in md and "tiny" in md and "| toy |" in md
    # the HTML grid: input, reconstruction, depth, the sweep view and the GT views of the first 2 images
    grids = sorted((out / "images" / "toy").glob("*/manifest.json"))
    assert len(grids) == 2
    entries = json.loads(grids[0].read_text())["images"]
    assert [e["caption"] for e in entries[:4]] == ["input", "reconstruction", "depth (input view)", "novel yaw+0.30"]
    page = (out / "leaderboard.html").read_text()
    assert page.count("<img ") == 2 * len(entries)
    timing = json.loads((out / "timing.json").read_text())
    assert timing["toy"]["images"] == N_IMAGES and timing["toy"]["ran_this_time"] == N_IMAGES


def test_a_failed_image_becomes_a_failed_row_and_the_run_goes_on(suite_file) -> None:
    path, out = suite_file({"toy": {"method": "bench_toy", "config": {"fail_ids": ["id001.png"]}}})
    result = run_bench(path, quiet=True)
    failed = [r for r in result.rows if r["status"] == "failed"]
    assert [(r["image_id"], r["view"]) for r in failed] == [("id001.png", "input")]
    assert failed[0]["error"].startswith("NonFiniteLossError: loss is nan")
    assert {r["image_id"] for r in result.rows if r["status"] == "ok"} == {f"id{i:03d}.png" for i in (0, 2, 3, 4)}
    row = result.board.rows[0]
    assert (row.images, row.failed) == (N_IMAGES - 1, 1)
    assert result.split_checks[0].ok  # a failed image is present (as a failed row), not missing
    assert "| 4 | 1 |" in (out / "leaderboard.md").read_text()


def test_resume_after_a_kill_redoes_only_unfinished_images(suite_file, tmp_path, monkeypatch) -> None:
    path, out = suite_file()
    count = tmp_path / "started.txt"
    monkeypatch.setenv(COUNT_ENV, str(count))
    monkeypatch.setenv(KILL_ENV, "2")
    monkeypatch.setenv(KILL_MODE_ENV, "raise")
    with pytest.raises(SystemExit):
        run_bench(path, quiet=True)
    assert len({r["image_id"] for r in read_shards(out / "rows")}) == 2
    monkeypatch.delenv(KILL_ENV)
    result = run_bench(path, quiet=True)
    runs = started(count)
    assert len(runs) == N_IMAGES and len(set(runs)) == N_IMAGES  # nothing finished was redone
    assert len({r["image_id"] for r in result.rows}) == N_IMAGES and result.ran == {"toy": N_IMAGES - 2}
    # a third run has nothing to do
    again = run_bench(path, quiet=True)
    assert again.ran == {"toy": 0} and len(started(count)) == N_IMAGES and len(again.rows) == len(result.rows)


def test_resume_after_the_process_is_killed(suite_file, tmp_path) -> None:
    """A real process death (os._exit mid-run, like SIGKILL): the finished images survive on disk."""
    path, out = suite_file()
    count = tmp_path / "started.txt"
    env = {**os.environ, COUNT_ENV: str(count), KILL_ENV: "3", "WANDB_MODE": "disabled"}
    code = ("import tests.bench.toy; from warpinv.bench.runner import run_bench; "
            f"run_bench({str(path)!r}, quiet=True)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 137, proc.stderr[-2000:]
    assert len({r["image_id"] for r in merge_shards(out / "rows")}) == 3
    os.environ[COUNT_ENV] = str(count)
    try:
        result = run_bench(path, quiet=True)
    finally:
        del os.environ[COUNT_ENV]
    runs = started(count)  # the kill hit the 4th image as it started, before it was recorded
    assert len(runs) == N_IMAGES and len(set(runs)) == N_IMAGES  # the 3 finished images were not redone
    assert result.ran == {"toy": N_IMAGES - 3} and len({r["image_id"] for r in result.rows}) == N_IMAGES


def test_failed_rows_are_retried_and_superseded(suite_file, tmp_path, monkeypatch) -> None:
    path, out = suite_file()
    count = tmp_path / "started.txt"
    monkeypatch.setenv(COUNT_ENV, str(count))
    monkeypatch.setenv(FAIL_ENV, "id002.png,id004.png")
    first = run_bench(path, quiet=True)
    assert first.board.rows[0].failed == 2
    monkeypatch.delenv(FAIL_ENV)
    second = run_bench(path, quiet=True)
    assert sorted(started(count)[N_IMAGES:]) == ["id002.png", "id004.png"]  # only the failed ones again
    assert second.board.rows[0].failed == 0 and all(r["status"] == "ok" for r in second.rows)
    assert sum(1 for r in read_shards(out / "rows") if r["status"] == "failed") == 2  # history kept in shards


def test_changed_config_reruns_and_tables_show_only_current_rows(suite_file) -> None:
    path, out = suite_file()
    first = run_bench(path, quiet=True)
    second = run_bench(path, ["method.offset=0.1"], quiet=True)
    assert second.ran == {"toy": N_IMAGES}
    assert {r["config_hash"] for r in second.rows} == {second.board.rows[0].config_hash}
    assert first.board.rows[0].config_hash != second.board.rows[0].config_hash
    assert json.loads((out / "provenance.json").read_text())["stale_rows_kept_in_shards"] == len(first.rows)


def test_the_html_grid_leaves_out_images_of_an_older_config(suite_file) -> None:
    path, out = suite_file(dataset={"limit": 2}, views={"gt_novel": False})
    run_bench(path, quiet=True)  # saves the grids of id000 and id001
    result = run_bench(path, ["method.offset=0.1", "save_images=1"], quiet=True)  # redraws id000 only
    page = result.paths["html"].read_text()
    assert 'data-image="id000.png"' in page and 'data-image="id001.png"' not in page
    assert (out / "images" / "toy" / "id001.png" / "manifest.json").is_file()  # kept on disk, not shown


def test_limit_and_split_subsets(suite_file, tmp_path) -> None:
    split = tmp_path / "split.txt"
    split.write_text("# three ids\nid000.png\nid003.png\nid004.png\n")
    path, _ = suite_file(dataset={"split": str(split)})
    result = run_bench(path, ["dataset.limit=2"], quiet=True)
    assert sorted({r["image_id"] for r in result.rows}) == ["id000.png", "id003.png"]
    assert "limited to the first 2" in result.board.caption[0]


def _benchmark_script(name: str):
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


def test_published_results_render_on_their_own(suite_file, tmp_path) -> None:
    """``make bench-results`` copies exactly what the page needs; the copy opens in a headless browser."""
    path, out = suite_file()
    run_bench(path, quiet=True)
    publish, check_html = _benchmark_script("publish"), _benchmark_script("check_html")
    dest = tmp_path / "published"
    written = publish.publish(out, dest)
    assert (dest / "leaderboard.html").is_file() and not (dest / "rows").exists()
    n_images = (dest / "leaderboard.html").read_text().count("<img ")
    assert n_images > 0 and len(written) == len(publish.FILES) + n_images
    report = check_html.check(dest / "leaderboard.html")
    assert report.ok, report.messages
    if check_html.find_browser() is None:
        if os.environ.get("CI"):  # .ci/run installs Debian's chromium: its absence there is a failure
            pytest.fail("CI is set but no headless Chromium is installed (.ci/run installs `chromium`)")
        pytest.skip("static page check passed; no headless Chromium installed for the browser check")
    assert report.loaded == n_images, report.messages
    with pytest.raises(FileNotFoundError, match="not a finished benchmark run"):
        publish.publish(tmp_path / "nothing", tmp_path / "x")


def test_a_smaller_limit_after_a_full_run_reuses_rows_without_error(suite_file) -> None:
    """Rows of images outside the current ``dataset.limit`` stay in the shards but not in the tables."""
    path, _ = suite_file()
    run_bench(path, quiet=True)
    result = run_bench(path, ["dataset.limit=2"], quiet=True)
    assert result.ran == {"toy": 0} and sorted({r["image_id"] for r in result.rows}) == ["id000.png", "id001.png"]
    assert result.split_checks[0].ok and result.board.rows[0].images == 2


def test_rows_are_not_reused_for_another_dataset(suite_file, tmp_path, synthetic_root) -> None:
    import shutil

    path, _ = suite_file()
    first = run_bench(path, quiet=True)
    copy = tmp_path / "copy"
    shutil.copytree(synthetic_root, copy)
    second = run_bench(path, [f"dataset.root={copy}"], quiet=True)
    assert second.ran == {"toy": N_IMAGES}
    assert {r["config_hash"] for r in second.rows} != {r["config_hash"] for r in first.rows}


def test_a_split_naming_images_the_dataset_lacks_is_an_error(suite_file, tmp_path) -> None:
    """Issue 11: such a run cited the split's hash over fewer images and exited 0."""
    from warpinv.bench.runner import dataset_ids
    from warpinv.bench.suite import load_suite
    from warpinv.config import ConfigError

    split = tmp_path / "split.txt"
    path, _ = suite_file()
    root = Path(load_suite(path).dataset.root)
    names = [name for name, _ in json.loads((root / "dataset.json").read_text())["labels"]][:2]
    split.write_text("\n".join([*names, "never_prepared.png"]) + "\n")
    path, _ = suite_file(dataset={"split": str(split)})
    with pytest.raises(ConfigError, match="lacks 1 image\\(s\\) of the split .*: never_prepared.png"):
        dataset_ids(load_suite(path))
    split.write_text("\n".join(names) + "\n")
    path, _ = suite_file(dataset={"split": str(split), "images": 3})
    with pytest.raises(ConfigError, match="dataset.images says the split holds 3 images, but .* holds 2"):
        dataset_ids(load_suite(path))


def test_a_second_run_on_a_held_output_folder_is_refused(suite_file, capsys) -> None:
    """Issue 11: two runs on one output folder both computed everything."""
    from warpinv.bench.cli import run_bench_cli
    from warpinv.bench.runner import output_lock

    path, out = suite_file()
    out.mkdir(parents=True, exist_ok=True)
    with output_lock(out):
        assert run_bench_cli(["bench", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"warpinv bench: {out} is in use by another warpinv bench (pid {os.getpid()})" in err
    assert not (out / "rows").exists()


def suite_on_a_copy(suite_file, tmp_path: Path, limit: int) -> tuple[Path, Path]:
    """A suite of ``limit`` images on a private copy of the synthetic set (tests that edit the data)."""
    import shutil

    path, _ = suite_file(dataset={"limit": limit})
    data = yaml.safe_load(path.read_text())
    root = tmp_path / "data_copy"
    shutil.copytree(data["dataset"]["root"], root)
    data["dataset"]["root"] = str(root)
    path.write_text(yaml.safe_dump(data))
    return path, root


@pytest.mark.slow
def test_resume_recomputes_an_image_whose_camera_changed(suite_file, tmp_path) -> None:
    """Issue 11: editing a camera in dataset.json and rerunning reused every old row."""
    path, root = suite_on_a_copy(suite_file, tmp_path, limit=2)
    first = run_bench(path, quiet=True)
    assert first.ran == {"toy": 2}
    meta = json.loads((root / "dataset.json").read_text())
    name, label = meta["labels"][1]
    meta["labels"][1] = [name, [v + (0.01 if i == 3 else 0.0) for i, v in enumerate(label)]]
    (root / "dataset.json").write_text(json.dumps(meta))
    second = run_bench(path, quiet=True)
    assert second.ran == {"toy": 1}
    redone = {r["image_id"]: r["input_sha256"] for r in second.rows if r["view"] == "input"}
    before = {r["image_id"]: r["input_sha256"] for r in first.rows if r["view"] == "input"}
    assert [i for i in redone if redone[i] != before[i]] == [name]
    assert len({r["image_id"] for r in second.rows}) == 2


@pytest.mark.slow
def test_an_unreadable_image_fails_alone_with_its_file_named(suite_file, tmp_path) -> None:
    """Issue 11: a truncated PNG with a valid header stopped every rank."""
    path, root = suite_on_a_copy(suite_file, tmp_path, limit=3)
    name = json.loads((root / "dataset.json").read_text())["labels"][1][0]
    blob = (root / name).read_bytes()
    (root / name).write_bytes(blob[: len(blob) // 3])  # the header survives, the pixels do not
    result = run_bench(path, quiet=True)
    inputs = {r["image_id"]: r for r in result.rows if r["view"] == "input"}
    assert len(inputs) == 3 and inputs[name]["status"] == "failed"
    assert inputs[name]["error"].startswith("unreadable input:") and name in inputs[name]["error"]
    assert [i for i, r in inputs.items() if r["status"] == "ok"] == [i for i in inputs if i != name]
    assert result.exit_code == 0 and any(name in line or "unreadable" in line for line in result.failure_lines())


@pytest.mark.ddp
def test_a_dead_rank_ends_in_one_line_and_the_rerun_resumes(suite_file, tmp_path) -> None:
    """Issue 11: one killed rank (os._exit, as the OOM killer does) gave a raw traceback."""
    path, out = suite_file(cpu_processes=2, plugins=["tests.bench.toy"])
    env = {**os.environ, KILL_ENV: "1", "WANDB_MODE": "disabled"}
    proc = subprocess.run([sys.executable, "-m", "warpinv", "bench", str(path), "--quiet"], cwd=PROJECT_ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 4, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("warpinv bench: a worker process died with exit code 137") and "rerun" in last
    assert "Traceback" not in proc.stderr
    result = run_bench(path, quiet=True)
    assert len({r["image_id"] for r in result.rows if r["status"] == "ok"}) == N_IMAGES


def test_psnr_visible_is_scored_on_the_gt_rows_with_the_datasets_masks(suite_file) -> None:
    path, out = suite_file(metrics=["psnr", "psnr_visible"], dataset={"limit": 2})
    result = run_bench(path, quiet=True)
    inputs = [r for r in result.rows if r["view"] == "input"]
    gt = [r for r in result.rows if r["view"].startswith("gt:")]
    assert len(inputs) == 2 and len(gt) == 4 and all(r["status"] == "ok" for r in result.rows)
    assert all(r["metrics"]["psnr_visible"] is None and r["metrics"]["psnr"] > 0 for r in inputs)
    assert all(r["notes"] == ["psnr_visible: not applicable: only ground-truth novel views have a novel_visible mask"]
               for r in inputs)
    assert all(isinstance(r["metrics"]["psnr_visible"], float) and r["metrics"]["psnr_visible"] > 0 and not r["notes"]
               for r in gt)
    assert any(r["metrics"]["psnr_visible"] != r["metrics"]["psnr"] for r in gt)  # a region, not the whole view
    columns = {(c.group, c.key) for c in result.board.columns}
    assert ("novel", "psnr_visible") in columns and ("input", "psnr_visible") not in columns
    assert "psnr_visible@256 ↑ (GT novel views)" in (out / "leaderboard.md").read_text()
