"""Leaderboards: aggregation per image, bold best respecting direction, LaTeX structure, CSV, HTML."""
from __future__ import annotations

import csv
import io
import math
import re

from warpinv.bench import leaderboard as lb
from warpinv.bench.rows import make_row


def rows_for(method: str, psnr: list[float], lpips: list[float], *, novel: list[list[float]] | None = None,
             failed: int = 0) -> list[dict]:
    out = []
    for i, (p, lp) in enumerate(zip(psnr, lpips)):
        iid = f"img{i}"
        out.append(make_row(image_id=iid, method=method, method_name="toy", config_hash="h", view="input",
                            metrics={"psnr": p, "lpips_alex": lp}, seconds=2.0, peak_mem_mb=math.nan,
                            peak_rss_mb=100.0))
        for v, value in enumerate((novel or [[]] * len(psnr))[i]):
            out.append(make_row(image_id=iid, method=method, method_name="toy", config_hash="h",
                                view=f"gt:yaw+0.{v}", metrics={"psnr": value}))
    for j in range(failed):
        out.append(make_row(image_id=f"bad{j}", method=method, method_name="toy", config_hash="h", view="input",
                            status="failed", error="NaN", seconds=1.0))
    return out


META = {"psnr": lb.MetricMeta("psnr", "PSNR", True), "lpips_alex": lb.MetricMeta("lpips_alex", "LPIPS", False)}


def board() -> lb.Leaderboard:
    rows = (rows_for("A", [20, 22], [0.30, 0.20], novel=[[10, 20], [30, 40]])
            + rows_for("B", [30, 32], [0.40, 0.50], novel=[[5, 5], [5, 5]], failed=1))
    methods = [lb.MethodSummary("A", "toy", "h", "steps 450 -> 45 (x0.1)"), lb.MethodSummary("B", "toy", "h")]
    b = lb.aggregate(rows, methods, META, title="test board")
    b.caption = ["Suite test; generator tiny."]
    b.unavailable = {"id_arcface": "weights arcface-ir-se50 missing"}
    return b


def test_aggregate_averages_views_per_image_then_images() -> None:
    b = board()
    a = {r.label: r for r in b.rows}["A"]
    assert a.cells["input/psnr"].mean == 21 and a.cells["input/psnr"].n == 2
    assert math.isclose(a.cells["input/psnr"].std, math.sqrt(2))
    assert a.cells["novel/psnr"].mean == 25  # per image 15 and 35, then mean
    assert {r.label: r.failed for r in b.rows} == {"A": 0, "B": 1}
    assert {r.label: r.images for r in b.rows} == {"A": 2, "B": 2}
    assert a.seconds_per_image == 2.0 and a.peak_rss_mb == 100.0
    assert [c.id for c in b.columns] == ["input/psnr", "input/lpips_alex", "novel/psnr"]


def test_best_respects_direction() -> None:
    b = board()
    cols = {c.id: c for c in b.columns}
    rows = {r.label: r for r in b.rows}
    assert b.is_best(cols["input/psnr"], rows["B"]) and not b.is_best(cols["input/psnr"], rows["A"])
    assert b.is_best(cols["input/lpips_alex"], rows["A"])  # lower is better
    md = lb.to_markdown(b)
    assert "**31.00 ± 1.41**" in md and "**0.2500 ± 0.0707**" in md and "**25.00 ± 14.14**" in md
    assert "id_arcface (weights arcface-ir-se50 missing)" in md and "Suite test" in md
    assert "steps 450 -> 45 (x0.1)" in md


def test_unknown_directions_are_guessed_or_left_unbolded() -> None:
    assert lb.guess_higher_is_better("reprojection_consistency.psnr") is True
    assert lb.guess_higher_is_better("ibrnet_consistency.lpips") is False
    assert lb.guess_higher_is_better("ms_ssim") is True and lb.guess_higher_is_better("mse") is False
    assert lb.guess_higher_is_better("weird") is None


def _balanced(text: str) -> bool:
    depth = 0
    for ch in re.sub(r"\\[{}]", "", text):
        depth += ch == "{"
        depth -= ch == "}"
        if depth < 0:
            return False
    return depth == 0


def test_latex_is_structurally_valid_booktabs() -> None:
    tex = lb.to_latex(board(), "tab:test")
    assert _balanced(tex)
    for token in ("\\begin{table}", "\\begin{tabular}", "\\toprule", "\\midrule", "\\bottomrule", "\\end{tabular}",
                  "\\end{table}", "\\caption{", "\\label{tab:test}"):
        assert tex.count(token) == 1, token
    assert tex.index("\\toprule") < tex.index("\\midrule") < tex.index("\\bottomrule")
    body = tex[tex.index("\\midrule"): tex.index("\\bottomrule")].splitlines()[1:]
    ncols = len(re.search(r"\\begin\{tabular\}\{([lrc]+)\}", tex).group(1))
    header = tex[tex.index("\\toprule"): tex.index("\\midrule")].splitlines()[1]
    for line in [header, *body]:
        assert line.endswith("\\\\") and line.count(" & ") == ncols - 1
    assert "\\textbf{31.00} $\\pm$ 1.41" in tex and "\\textbf{0.2500}" in tex
    assert "$\\uparrow$" in tex and "$\\downarrow$" in tex
    assert lb.tex_escape("a_b & 50% #1 {x}") == "a\\_b \\& 50\\% \\#1 \\{x\\}"


def test_csv_has_one_row_per_method_with_context() -> None:
    b = board()
    b.csv_context = {"suite": "test", "git_commit": "abc"}
    data = list(csv.DictReader(io.StringIO(lb.to_csv(b))))
    assert [d["method"] for d in data] == ["A", "B"]
    assert float(data[1]["input/psnr_mean"]) == 31 and data[1]["input/psnr_n"] == "2"
    assert data[0]["suite"] == "test" and data[0]["git_commit"] == "abc" and data[1]["failed"] == "1"


def test_random_weight_columns_say_so_everywhere() -> None:
    meta = {**META, "lpips_alex": lb.MetricMeta("lpips_alex", "LPIPS", False, random_weights=True)}
    b = lb.aggregate(rows_for("A", [20], [0.3]), [lb.MethodSummary("A", "toy", "h")], meta)
    assert "[RANDOM WEIGHTS]" in lb.to_markdown(b) and "RANDOM WEIGHTS: lpips_alex" in lb.to_markdown(b)
    assert "input/lpips_alex_random_weights_mean" in lb.to_csv(b)
    assert "RANDOM WEIGHTS" in lb.to_latex(b) and "RANDOM WEIGHTS" in lb.to_html(b)


def test_html_references_images_relatively(tmp_path) -> None:
    grids = {"A": {"img0": [lb.GridImage("images/A/img0/00_input.png", "input"),
                            lb.GridImage("images/A/img0/01_reconstruction.png", "reconstruction")]}}
    paths = lb.write_all(board(), tmp_path, grids=grids)
    page = paths["html"].read_text()
    assert 'src="images/A/img0/00_input.png"' in page and "<table" in page and "Suite test" in page
    assert not re.search(r'src="(/|file:)', page)
    assert set(paths) == {"md", "csv", "tex", "html"} and all(p.is_file() for p in paths.values())


def test_a_cell_over_fewer_images_than_its_row_shows_its_count_and_why() -> None:
    """Issue 11: a metric that returned None on one image printed the survivors' mean under n=3."""
    rows = rows_for("A", [20, 22, 24], [0.3, 0.2, 0.1])
    rows[1]["metrics"]["lpips_alex"] = None
    rows[1]["notes"] = ["lpips_alex: RuntimeError: the trunk refused this image"]
    b = lb.aggregate(rows, [lb.MethodSummary("A", "toy", "h")], META)
    cell = b.rows[0].cells["input/lpips_alex"]
    assert (cell.n, b.rows[0].images, cell.missing) == (2, 3, {"img1": "RuntimeError: the trunk refused this image"})
    md = lb.to_markdown(b)
    assert "0.2000 ± 0.1414 (2/3)" in md and "22.00 ± 2.00 |" in md  # full cells carry no count
    assert "A input/lpips_alex 2/3: img1 (RuntimeError: the trunk refused this image)" in md
    assert "(2/3)" in lb.to_latex(b) and "(2/3)" in lb.to_html(b)


def test_common_subset_averages_over_the_images_every_method_scored() -> None:
    a = rows_for("A", [20, 22, 24], [0.3, 0.2, 0.1])
    b_rows = [r for r in rows_for("B", [30, 32, 34], [0.4, 0.5, 0.6]) if r["image_id"] != "img2"]
    b_rows.append(make_row(image_id="img2", method="B", method_name="toy", config_hash="h", view="input",
                           status="failed", error="OutOfMemoryError", seconds=1.0))
    methods = [lb.MethodSummary("A", "toy", "h"), lb.MethodSummary("B", "toy", "h")]
    auto = lb.aggregate(a + b_rows, methods, META)
    assert auto.aggregation == "common_subset" and auto.excluded == {"A": ["img2"]}
    assert {r.label: (r.images, r.cells["input/psnr"].mean) for r in auto.rows} == {"A": (2, 21), "B": (2, 31)}
    assert "Means over the 2 image(s) every method scored (common_subset); left out: A: img2." in lb.to_markdown(auto)
    everything = lb.aggregate(a + b_rows, methods, META, aggregation="all")
    assert {r.label: r.images for r in everything.rows} == {"A": 3, "B": 2}
    assert everything.rows[0].cells["input/psnr"].mean == 22
