"""Multi-process runs: 2 CPU processes (forked DDP ranks, gloo) give exactly the rows of a 1-process run."""
from __future__ import annotations

import math

import pytest

from tests.bench.conftest import N_IMAGES
from warpinv.bench.rows import read_rows, shard_path
from warpinv.bench.runner import run_bench


def _by_key(rows: list[dict]) -> dict[tuple[str, str, str], dict]:
    return {(r["method"], r["image_id"], r["view"]): r for r in rows}


@pytest.mark.ddp
@pytest.mark.slow
def test_two_cpu_processes_give_the_rows_of_one(suite_file, tmp_path) -> None:
    path, _ = suite_file({"toy": {"method": "bench_toy", "config": {"fail_ids": ["id002.png"]}}})
    one = run_bench(path, [f"output={tmp_path / 'one'}"], devices=1, quiet=True)
    two = run_bench(path, [f"output={tmp_path / 'two'}"], devices=2, quiet=True)

    # exactly N unique images per (method, view); one row per key
    views = {r["view"] for r in two.rows}
    for view in views:
        ids = [r["image_id"] for r in two.rows if r["view"] == view]
        expected = N_IMAGES if view == "input" else N_IMAGES - 1  # the failed image has its input row only
        assert len(ids) == len(set(ids)) == expected, view
    # the ranks took disjoint interleaved shards without padding: 3 + 2 images
    shard_ids = [{r["image_id"] for r in read_rows(shard_path(tmp_path / "two" / "rows", k))} for k in (0, 1)]
    assert sorted(len(s) for s in shard_ids) == [2, 3] and not (shard_ids[0] & shard_ids[1])
    assert {r.get("rank") for r in two.rows} == {0, 1}

    # the same metrics as one process (seeds come from image ids, rendering is deterministic)
    a, b = _by_key(one.rows), _by_key(two.rows)
    assert a.keys() == b.keys()
    for key, ra in a.items():
        rb = b[key]
        assert (ra["status"], ra["config_hash"]) == (rb["status"], rb["config_hash"]), key
        for name, value in ra["metrics"].items():
            assert math.isclose(value, rb["metrics"][name], rel_tol=1e-4, abs_tol=1e-5), (key, name)
    assert two.board.rows[0].failed == 1 and two.split_checks[0].ok
