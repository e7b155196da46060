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
