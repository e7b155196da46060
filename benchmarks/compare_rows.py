"""Compare the metrics of two benchmark runs row by row (a refactor must not move any number).

    python benchmarks/compare_rows.py OLD/rows.jsonl NEW/rows.jsonl [--atol 1e-6]

Rows are matched by (image id, method label, view), not by config hash (a refactor may change how
configs are written, and so their hashes, without changing what they compute). Prints every metric
that differs by more than ``--atol`` and every row present in one run only; exits 1 when there is any.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from warpinv.bench.rows import read_rows


def keyed(path: Path) -> dict[tuple[str, str, str], dict]:
    return {(r["image_id"], r["method"], r["view"]): r for r in read_rows(path)}


def differences(old: dict, new: dict, atol: float) -> list[str]:
    """One line per metric further apart than ``atol`` and per row or metric present on one side only."""
    lines = [f"only in old: {k}" for k in sorted(set(old) - set(new))]
    lines += [f"only in new: {k}" for k in sorted(set(new) - set(old))]
    for key in sorted(set(old) & set(new)):
        a, b = old[key].get("metrics") or {}, new[key].get("metrics") or {}
        if old[key]["status"] != new[key]["status"]:
            lines.append(f"{key}: status {old[key]['status']} -> {new[key]['status']}")
        for metric in sorted(set(a) | set(b)):
            x, y = a.get(metric), b.get(metric)
            if x is None or y is None:
                if (x is None) != (y is None):
                    lines.append(f"{key} {metric}: {x} -> {y}")
                continue
            if not (math.isclose(x, y, rel_tol=0.0, abs_tol=atol) or (math.isinf(x) and x == y)):
                lines.append(f"{key} {metric}: {x!r} -> {y!r} ({y - x:+.3g})")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--atol", type=float, default=1e-6, help="largest allowed absolute difference")
    ns = parser.parse_args(argv)
    old, new = keyed(ns.old), keyed(ns.new)
    lines = differences(old, new, ns.atol)
    for line in lines:
        sys.stdout.write(line + "\n")
    compared = len(set(old) & set(new))
    sys.stdout.write(f"{compared} rows compared, {len(lines)} difference(s) above {ns.atol:g}\n")
    return 1 if lines else 0


if __name__ == "__main__":
    raise SystemExit(main())
