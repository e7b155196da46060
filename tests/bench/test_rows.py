"""Rows: JSONL round trip, torn lines, merge/dedupe, completion for resume, split checks."""
from __future__ import annotations

import math

import pytest

from warpinv.bench.rows import (
    SplitMismatchError,
    append_rows,
    check_split,
    completed_ids,
    dedupe,
    make_row,
    merge_shards,
    read_rows,
    shard_path,
)


def row(image_id: str, view: str = "input", *, status: str = "ok", t: float = 1.0, psnr: float = 20.0,
        group: int = 1, method: str = "m", config_hash: str = "h") -> dict:
    return make_row(image_id=image_id, method=method, method_name="toy", config_hash=config_hash, view=view,
                    status=status, metrics={"psnr": psnr} if status == "ok" else {},
                    error=None if status == "ok" else "NaN", time=t, group=group)


def test_jsonl_round_trip_keeps_non_finite_values(tmp_path) -> None:
    path = tmp_path / "rank0.jsonl"
    append_rows(path, [row("a", psnr=math.inf), {**row("b"), "seconds": math.nan}])
    back = read_rows(path)
    assert back[0]["metrics"]["psnr"] == math.inf and math.isnan(back[1]["seconds"])
    assert path.read_text().count("\n") == 2  # one line per row, newline-terminated


def test_torn_last_line_is_skipped_with_a_warning(tmp_path) -> None:
    path = tmp_path / "rank0.jsonl"
    append_rows(path, [row("a"), row("b")])
    with open(path, "a") as fh:
        fh.write('{"image_id": "c", "method": "m", "con')  # a writer killed mid-line
    with pytest.warns(UserWarning, match="torn"):
        rows = read_rows(path)
    assert [r["image_id"] for r in rows] == ["a", "b"]


def test_a_row_appended_after_a_torn_line_is_kept(tmp_path) -> None:
    """Issue 11: the first row after a torn line used to be glued onto the fragment and lost."""
    path = tmp_path / "rank0.jsonl"
    append_rows(path, [row("a"), row("b")])
    text = path.read_text()
    path.write_text(text[: len(text) - len(text.splitlines()[-1]) // 2 - 1])  # cut the last line in half
    append_rows(path, [row("c"), row("d")])
    with pytest.warns(UserWarning, match="torn"):
        rows = read_rows(path)
    assert [r["image_id"] for r in rows] == ["a", "c", "d"]


def test_non_utf8_bytes_in_a_shard_skip_that_line_only(tmp_path) -> None:
    path = tmp_path / "rank0.jsonl"
    append_rows(path, [row("a")])
    with open(path, "ab") as fh:
        fh.write(b'{"image_id": "\xff\xfe broken"}\n')
    append_rows(path, [row("b")])
    with pytest.warns(UserWarning, match="not UTF-8"):
        rows = read_rows(path)
    assert [r["image_id"] for r in rows] == ["a", "b"]


def test_dedupe_keeps_the_latest_row_per_key_across_shards(tmp_path) -> None:
    append_rows(shard_path(tmp_path, 0), [row("a", t=1, psnr=10), row("b", t=1)])
    append_rows(shard_path(tmp_path, 1), [row("a", t=2, psnr=30), row("c", t=1)])
    append_rows(shard_path(tmp_path, 0), [row("a", "gt:yaw+0.35,pitch+0.00", t=2)])
    merged = merge_shards(tmp_path)
    keyed = {(r["image_id"], r["view"]): r for r in merged}
    assert len(merged) == 4 and keyed[("a", "input")]["metrics"]["psnr"] == 30
    # different config hashes and methods are different keys
    assert len(dedupe([row("a"), row("a", config_hash="h2"), row("a", method="m2")])) == 3


def test_a_retried_failure_is_superseded_and_a_new_failure_drops_old_views() -> None:
    old_fail = row("a", status="failed", t=1)
    new_ok = [row("a", "input", t=2, group=2), row("a", "gt:x", t=2, group=2)]
    merged = dedupe([old_fail, *new_ok])
    assert {r["status"] for r in merged} == {"ok"} and len(merged) == 2
    # the other way round: a forced re-run that now fails leaves only the failed row
    merged = dedupe([*[{**r, "time": 1} for r in new_ok], {**old_fail, "time": 3}])
    assert [(r["view"], r["status"]) for r in merged] == [("input", "failed")]


def test_completed_ids_require_every_view_of_the_group() -> None:
    rows = [row("a", "input", group=2), row("a", "gt:1", group=2),  # complete
            row("b", "input", group=2),  # cut off after its first row
            row("c", status="failed"),  # failed -> retried
            row("d", "input", group=1, config_hash="other")]
    assert completed_ids(rows, "m", "h") == {"a"}
    assert completed_ids(rows, "m", "other") == {"d"}


def test_split_check_reports_missing_and_refuses_extras() -> None:
    rows = [row("a"), row("b")]
    check = check_split(rows, ["a", "b", "c"], "m", "h")
    assert not check.ok and check.missing == ["c"] and check.present == 2
    assert "missing 1 (c)" in check.describe()
    with pytest.raises(SplitMismatchError, match="not in the split: b"):
        check_split(rows, ["a"], "m", "h")
    assert check_split(rows, ["a"], "m", "h", strict=False).extra == ["b"]


def test_row_schema_rejects_bad_status() -> None:
    with pytest.raises(ValueError, match="status"):
        make_row(image_id="a", method="m", method_name="x", config_hash="h", view="input", status="weird")
