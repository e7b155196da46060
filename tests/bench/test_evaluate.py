"""The evaluator on its own (tiny generator, no Trainer): per-metric failures, out of memory while
scoring, saved inversions and the HTML grid's images."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from torch import Tensor

from tests.bench.toy import BenchToy, ToyConfig
from warpinv.backbone import build_tiny
from warpinv.bench.evaluate import BenchEvaluator
from warpinv.bench.grids import collect_grids
from warpinv.bench.metric_set import MetricSet, metric_facts, metric_kind
from warpinv.cameras import yaw_pitch_camera
from warpinv.methods.base import Inversion, InversionItem, InversionOutcome
from warpinv.metrics import PSNR, PairMetric

SIZE = 32


class BrokenMetric(PairMetric):
    """A pair metric that always raises (as a metric does on an input it cannot handle)."""

    info = dataclasses.replace(PSNR.info, name="broken")

    def score(self, pred: Tensor, target: Tensor, mask: Tensor | None) -> Tensor:
        raise RuntimeError("broken on purpose\nsecond line")


class OOMMetric(PairMetric):
    """A pair metric that runs out of memory (as LPIPS-VGG can on a full GPU)."""

    info = dataclasses.replace(PSNR.info, name="oom")

    def score(self, pred: Tensor, target: Tensor, mask: Tensor | None) -> Tensor:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 4.00 GiB")


def metric_set(**modules: PairMetric) -> MetricSet:
    out = MetricSet()
    for name, m in modules.items():
        out.modules[name] = m
        out.kinds[name] = metric_kind(name, m)
        out.info[name] = metric_facts(name, m)
    return out


@pytest.fixture(scope="module")
def method() -> BenchToy:
    return BenchToy(ToyConfig(), build_tiny())


def item(image_id: str = "a.png") -> InversionItem:
    """An input view plus two ground-truth novel views (flat grey images: any value in [-1, 1] will do)."""
    views = yaw_pitch_camera(torch.tensor([0.3, -0.3]), torch.tensor([0.0, 0.1]))
    return InversionItem(image_id, torch.zeros(1, 3, SIZE, SIZE), yaw_pitch_camera(0.0, 0.0),
                         extras={"novel_images": torch.zeros(1, 2, 3, SIZE, SIZE), "novel_cameras": views[None]})


def inversion(method: BenchToy, it: InversionItem) -> Inversion:
    with torch.no_grad():
        return method.invert(it)


def outcome(method: BenchToy, it: InversionItem) -> InversionOutcome:
    return InversionOutcome(it, inversion(method, it), seconds=1.0)


def evaluator(metrics: MetricSet, out_dir: Path, config_hash: str = "h1", save: set[str] | None = None,
              label: str = "toy") -> BenchEvaluator:
    return BenchEvaluator(label=label, method_name="bench_toy", config_hash=config_hash, split="test",
                          metrics=metrics, generator="tiny", yaw_sweep=[], multiview=False, out_dir=out_dir,
                          save_image_ids=save or set())


def test_a_failing_novel_view_metric_leaves_the_others(method, tmp_path) -> None:
    ev = evaluator(metric_set(psnr=PSNR(resolution=None), broken=BrokenMetric(resolution=None)), tmp_path)
    it = item()
    rows = ev.rows(method, outcome(method, it))
    novel = [r for r in rows if r["view"].startswith("gt:")]
    assert len(novel) == 2
    for r in novel:
        assert r["metrics"]["broken"] is None
        assert isinstance(r["metrics"]["psnr"], float) and r["metrics"]["psnr"] > 0
        assert r["notes"] == ["broken: RuntimeError: broken on purpose"]
    assert rows[0]["view"] == "input" and rows[0]["metrics"]["broken"] is None and rows[0]["metrics"]["psnr"] > 0


def test_each_novel_view_metric_scores_the_views_once(method, tmp_path, monkeypatch) -> None:
    calls: list[int] = []
    real = PSNR.score

    def counting(self, pred, target, mask):
        calls.append(pred.shape[0])
        return real(self, pred, target, mask)

    monkeypatch.setattr(PSNR, "score", counting)
    ev = evaluator(metric_set(psnr=PSNR(resolution=None), broken=BrokenMetric(resolution=None)), tmp_path)
    it = item()
    ev.rows(method, outcome(method, it))
    assert calls == [1, 2]  # the input view, then both GT views in one batch


def grid_rows(ev: BenchEvaluator, method: BenchToy, ids: list[str]) -> list[dict]:
    rows = []
    for image_id in ids:
        it = item(image_id)
        rows += ev.rows(method, outcome(method, it))
    return rows


def test_the_grid_shows_only_images_of_the_tabulated_rows(method, tmp_path) -> None:
    metrics = metric_set(psnr=PSNR(resolution=None))
    old = evaluator(metrics, tmp_path, "old", save={"a.png", "b.png", "c.png"})
    grid_rows(old, method, ["a.png", "b.png", "c.png"])
    new = evaluator(metrics, tmp_path, "new", save={"a.png"})
    rows = grid_rows(new, method, ["a.png", "b.png"])  # c.png is no longer in the rows
    manifest = json.loads((tmp_path / "images" / "toy" / "a.png" / "manifest.json").read_text())
    assert manifest["config_hash"] == "new" and manifest["method"] == "toy" and manifest["image_id"] == "a.png"

    grids = collect_grids(tmp_path, rows, ["toy"])
    assert list(grids) == ["toy"] and list(grids["toy"]) == ["a.png"]  # b.png was drawn by config "old"
    assert all(p.startswith("images/toy/a.png/") for p, _, _ in grids["toy"]["a.png"])
    assert grids["toy"]["a.png"][0][1:] == ("input", "main")

    assert collect_grids(tmp_path, [{**r, "status": "failed"} for r in rows], ["toy"]) == {"toy": {}}
    assert collect_grids(tmp_path, [{**r, "method": "other"} for r in rows], ["toy"]) == {"toy": {}}


def test_manifests_without_a_config_hash_are_skipped(method, tmp_path) -> None:
    ev = evaluator(metric_set(psnr=PSNR(resolution=None)), tmp_path, "h1", save={"a.png", "b.png"})
    rows = grid_rows(ev, method, ["a.png", "b.png"])
    legacy = tmp_path / "images" / "toy" / "b.png" / "manifest.json"
    data = json.loads(legacy.read_text())
    del data["config_hash"]  # as written before the hash was recorded
    legacy.write_text(json.dumps(data))
    (tmp_path / "images" / "toy" / "c.png").mkdir()
    (tmp_path / "images" / "toy" / "c.png" / "manifest.json").write_text("[not a manifest")
    assert list(collect_grids(tmp_path, rows, ["toy"])["toy"]) == ["a.png"]


def test_out_of_memory_inside_a_metric_fails_the_image(method, tmp_path) -> None:
    ev = evaluator(metric_set(psnr=PSNR(resolution=None), oom=OOMMetric(resolution=None)), tmp_path)
    [row] = ev.rows(method, outcome(method, item()))
    assert row["status"] == "failed" and row["view"] == "input" and row["metrics"] == {}
    assert row["error"] == "OutOfMemoryError: CUDA out of memory. Tried to allocate 4.00 GiB (during evaluation)"


def test_a_failed_inversion_becomes_one_failed_row(method, tmp_path) -> None:
    ev = evaluator(metric_set(psnr=PSNR(resolution=None)), tmp_path)
    [row] = ev.rows(method, InversionOutcome(item(), None, "NonFiniteLossError: loss is nan at step 1", 2.5))
    assert (row["status"], row["error"], row["seconds"]) == ("failed", "NonFiniteLossError: loss is nan at step 1", 2.5)
    assert row["generator"] == "tiny"


def test_ids_that_differ_only_in_unsafe_characters_keep_their_own_files(method, tmp_path) -> None:
    ev = evaluator(metric_set(psnr=PSNR(resolution=None)), tmp_path, save={"img 0.png", "img_0.png"})
    ev.save_inversions = True
    rows = grid_rows(ev, method, ["img 0.png", "img_0.png"])
    grids = collect_grids(tmp_path, rows, ["toy"])["toy"]
    assert sorted(grids) == ["img 0.png", "img_0.png"]
    assert len({p.rsplit("/", 1)[0] for ims in grids.values() for p, _, _ in ims}) == 2
    saved = {Inversion.load(ev.inversion_path(i)).image_id for i in ("img 0.png", "img_0.png")}
    assert saved == {"img 0.png", "img_0.png"}


def test_a_suite_can_score_one_metric_at_several_resolutions(method, tmp_path) -> None:
    """Issue 11: the scoring resolution was fixed at 256 and a suite could not change it."""
    from warpinv.bench.leaderboard import Column, MetricMeta
    from warpinv.bench.metric_set import build_metric_set
    from warpinv.config import ConfigError

    metrics, _ = build_metric_set(["psnr", "psnr@64", "psnr@native"])
    assert {k: v["resolution"] for k, v in metrics.info.items()} == {"psnr": 256, "psnr@64": 64, "psnr@native": None}
    [row, *_] = evaluator(metrics, tmp_path).rows(method, outcome(method, item()))
    assert set(row["metrics"]) == {"psnr", "psnr@64", "psnr@native"}
    assert row["metrics"]["psnr@native"] != row["metrics"]["psnr"]
    assert Column("input", "psnr", MetricMeta("psnr", "psnr", True, resolution=256)).title.startswith("psnr@256 ↑")
    with pytest.raises(ConfigError, match="positive size in pixels or 'native'"):
        build_metric_set(["psnr@big"])


def test_named_protocol_views_are_scored_by_identity_metrics(method, tmp_path) -> None:
    """Issue 11: GOAE's absolute ±12.5 degree views and HFGI3D's seeded random view, each its own group."""
    from warpinv.bench.leaderboard import MethodSummary, aggregate

    ev = evaluator(metric_set(id_toy=PSNR(resolution=None)), tmp_path)
    ev.protocols = ["goae", "hfgi3d"]
    rows = ev.rows(method, outcome(method, item("a.png")))
    views = [r["view"] for r in rows]
    assert views[:1] == ["input"] and "goae:yaw-0.22" in views and "goae:yaw+0.22" in views
    [hfgi3d] = [v for v in views if v.startswith("hfgi3d:")]
    again = ev.rows(method, outcome(method, item("a.png")))
    assert hfgi3d in [r["view"] for r in again]  # seeded by the image id: the same view every time
    other = [r["view"] for r in ev.rows(method, outcome(method, item("b.png"))) if r["view"].startswith("hfgi3d:")]
    assert other != [hfgi3d]
    board = aggregate(rows, [MethodSummary("toy", "bench_toy", "h1")])
    assert {c.group for c in board.columns} >= {"goae", "hfgi3d"}
