"""``benchmarks/perf/pseudo_views_ab.py`` end to end on a tiny setting, against ``HEAD`` (present in any checkout):
it loads the base commit's geometry modules beside the current ones, times both and checks the outputs agree."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_pseudo_view_ab_benchmark_times_both_variants_and_checks_their_outputs(tmp_path: Path) -> None:
    if subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, check=False).returncode != 0:
        pytest.skip("not a git checkout")
    out = tmp_path / "ab.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "perf" / "pseudo_views_ab.py"), "--base", "HEAD",
                           "--settings", "tiny", "--modes", "clean", "--views", "2", "--repeats", "1", "--out",
                           str(out)], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    [row] = result["results"]
    assert row["identical"] and row["views"] == 2 and row["setting"] == "tiny"
    assert all(len(row["runs_s"][name]) == 1 and row["median_s"][name] > 0 for name in ("base", "current"))
    assert "| tiny | clean | 128 |" in out.with_suffix(".md").read_text()
