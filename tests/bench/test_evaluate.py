"""The evaluator on its own (tiny generator, no Trainer): per-metric failures, out of memory while
scoring, saved inversions and the HTML grid's images."""
from __future__ import annotations

import dataclasses
import json
import math
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


# ------------------------------------------------------------------------------- occluded inputs (issue 13)


class OODRenderer:
    """A renderer with an OOD part (as In-N-Out's): its removal returns the clean image, its blend map the
    occluder mask at half the image's resolution."""

    def __init__(self, base, clean: Tensor, mask: Tensor, fail: bool = False) -> None:
        self.base, self.clean, self.mask, self.fail = base, clean, mask, fail

    def __call__(self, cameras: Tensor) -> dict[str, Tensor]:
        return self.base(cameras)

    def without_ood(self, cameras: Tensor) -> dict[str, Tensor]:
        if self.fail:
            raise RuntimeError("removal failed on purpose")
        return {**self.base(cameras), "image": self.clean.expand(len(cameras), -1, -1, -1)}

    def blend_map(self, cameras: Tensor) -> Tensor:
        return self.mask[..., ::2, ::2].expand(len(cameras), -1, -1, -1)


def occluded_item(image_id: str = "occ.png", has_mask: bool = True) -> InversionItem:
    """A clean grey face with a bright square pasted on it, plus the extras an occluder dataset supplies."""
    clean = torch.full((1, 3, SIZE, SIZE), -0.2)
    mask = torch.zeros(1, 1, SIZE, SIZE)
    mask[..., 8:20, 10:22] = 1
    it = item(image_id)
    it.image = clean * (1 - mask) + 0.9 * mask
    it.extras.update(clean_image=clean, ood_mask=mask if has_mask else torch.zeros_like(mask),
                     has_ood_mask=torch.tensor([has_mask]))
    return it


def ood_metrics() -> MetricSet:
    from warpinv.metrics import BlendIoU, CleanPSNR

    return metric_set(psnr=PSNR(resolution=None), clean_psnr=CleanPSNR(resolution=None), blend_iou=BlendIoU())


def test_a_renderer_that_separates_ood_is_scored_on_its_removal_and_blend_map(method, tmp_path,
                                                                            monkeypatch) -> None:
    from warpinv.methods.rendering import SeparatesOOD

    it = occluded_item()
    base = method.renderer
    monkeypatch.setattr(method, "renderer", lambda inv, batch=16: OODRenderer(base(inv, batch),
                                                                                it.extras["clean_image"],
                                                                                it.extras["ood_mask"]))
    assert isinstance(method.renderer(None), SeparatesOOD)
    ev = evaluator(ood_metrics(), tmp_path)
    assert ev.metrics.kinds["clean_psnr"] == ev.metrics.kinds["blend_iou"] == "ood"
    rows = ev.rows(method, outcome(method, it))
    values = rows[0]["metrics"]
    assert rows[0]["view"] == "input" and rows[0]["notes"] == []
    assert {k: values[k] for k in ("clean_psnr", "clean_psnr_in", "clean_psnr_out", "blend_iou")} == {
        "clean_psnr": math.inf, "clean_psnr_in": math.inf, "clean_psnr_out": math.inf, "blend_iou": 1.0}
    assert math.isfinite(values["psnr"])  # the ordinary render is still scored against the occluded input
    assert all("clean_psnr" not in r["metrics"] and "blend_iou" not in r["metrics"] for r in rows[1:])

    from warpinv.bench.leaderboard import MethodSummary, aggregate, to_markdown
    from warpinv.bench.runner import _metric_meta

    board = aggregate(rows, [MethodSummary("toy", "bench_toy", "h1")], _metric_meta(ev.metrics))
    titles = {c.key: c.title for c in board.columns if c.group == "input"}
    assert titles["clean_psnr_in"] == "clean_psnr_in ↑ (input view)"
    assert titles["blend_iou"] == "blend_iou ↑ (input view)"
    assert "| inf | inf | inf | 1.000 |" in to_markdown(board)  # the clean_psnr columns and blend_iou


def test_a_plain_renderer_is_scored_on_its_ordinary_render_and_has_no_blend_map(method, tmp_path) -> None:
    from warpinv.bench.evaluate import resize_like

    it = occluded_item()
    inv = inversion(method, it)
    [row, *_] = evaluator(ood_metrics(), tmp_path).rows(method, InversionOutcome(it, inv, seconds=1.0))
    render = resize_like(method.renderer(inv)(it.camera)["image"].clamp(-1, 1), it.image)
    clean, mask = it.extras["clean_image"], it.extras["ood_mask"]
    assert row["metrics"]["clean_psnr"] == pytest.approx(PSNR(resolution=None)(render, clean).item(), abs=1e-4)
    inside = PSNR(resolution=None)(render, clean, mask).item()
    assert row["metrics"]["clean_psnr_in"] == pytest.approx(inside, abs=1e-4)
    assert row["metrics"]["blend_iou"] is None
    assert row["notes"] == ["blend_iou: no blend map: the method's renderer (LatentRenderer) has no OOD part"]


def test_items_without_the_extras_get_no_ood_columns(method, tmp_path) -> None:
    ev = evaluator(ood_metrics(), tmp_path)
    [row, *_] = ev.rows(method, outcome(method, item()))
    assert set(row["metrics"]) == {"psnr"} and row["notes"] == []
    [row, *_] = ev.rows(method, outcome(method, occluded_item(has_mask=False)))  # a placeholder mask only
    assert set(row["metrics"]) == {"psnr", "clean_psnr"} and row["notes"] == []


def test_a_failing_removal_leaves_none_and_a_note(method, tmp_path, monkeypatch) -> None:
    it = occluded_item()
    base = method.renderer
    monkeypatch.setattr(method, "renderer", lambda inv, batch=16: OODRenderer(base(inv, batch),
                                                                                it.extras["clean_image"],
                                                                                it.extras["ood_mask"], fail=True))
    [row, *_] = evaluator(ood_metrics(), tmp_path).rows(method, outcome(method, it))
    assert [row["metrics"][k] for k in ("clean_psnr", "clean_psnr_in", "clean_psnr_out")] == [None] * 3
    assert row["metrics"]["blend_iou"] == 1.0 and row["status"] == "ok"
    assert row["notes"] == ["clean_psnr: RuntimeError: removal failed on purpose"]


def test_ood_columns_of_a_suite_entry_at_another_resolution_keep_apart() -> None:
    from warpinv.bench.metric_set import build_metric_set

    metrics, _ = build_metric_set(["clean_psnr", "clean_psnr@native", "blend_iou"])
    assert metrics.kinds == {"clean_psnr": "ood", "clean_psnr@native": "ood", "blend_iou": "ood"}
    assert list(metrics.info["clean_psnr@native"]["columns"]) == ["clean_psnr@native", "clean_psnr_in@native",
                                                                    "clean_psnr_out@native"]
    assert metrics.info["clean_psnr"]["columns"]["clean_psnr_in"] == {"higher_is_better": True, "unit": "dB",
                                                                      "resolution": 256}
    assert metrics.info["blend_iou"]["higher_is_better"] is True and "columns" not in metrics.info["blend_iou"]


# --- psnr_visible: ground-truth views inside their covisibility masks ----------------------------------------------


def visible_item() -> InversionItem:
    """``item()`` with covisibility masks: the left half of the first GT view, all of the second."""
    it = item()
    visible = torch.zeros(1, 2, 1, SIZE, SIZE)
    visible[0, 0, :, :, : SIZE // 2] = 1
    visible[0, 1] = 1
    it.extras["novel_visible"] = visible
    return it


def test_psnr_visible_scores_the_gt_views_inside_their_masks(method, tmp_path) -> None:
    from warpinv.bench.evaluate import resize_like
    from warpinv.metrics import VisiblePSNR

    it = visible_item()
    inv = inversion(method, it)
    ev = evaluator(metric_set(psnr=PSNR(resolution=None), psnr_visible=VisiblePSNR(resolution=None)), tmp_path)
    rows = ev.rows(method, InversionOutcome(it, inv, seconds=1.0))
    assert rows[0]["view"] == "input" and rows[0]["metrics"]["psnr_visible"] is None
    assert rows[0]["notes"] == ["psnr_visible: not applicable: only ground-truth novel views have a novel_visible "
                                "mask"]
    cameras = torch.cat([it.camera, it.extras["novel_cameras"][0]])
    renders = resize_like(method.renderer(inv)(cameras)["image"].clamp(-1, 1), it.image)
    targets = torch.cat([it.image, it.extras["novel_images"][0]])
    psnr = PSNR(resolution=None)(renders, targets).tolist()
    assert [r["metrics"]["psnr"] for r in rows] == pytest.approx(psnr, abs=1e-4)  # psnr is scored as before
    left = ((renders[1, :, :, : SIZE // 2].double() + 1) / 2 - 0.5) ** 2  # the GT views are 0 ([0, 1]: 0.5)
    first, second = rows[1:]
    assert first["view"].startswith("gt:") and first["notes"] == [] and second["notes"] == []
    assert first["metrics"]["psnr_visible"] == pytest.approx(-10 * math.log10(left.mean().item()), abs=1e-4)
    assert second["metrics"]["psnr_visible"] == pytest.approx(second["metrics"]["psnr"], abs=1e-5)  # all ones


def test_psnr_visible_without_masks_is_none_with_a_note(method, tmp_path) -> None:
    from warpinv.metrics import VisiblePSNR

    ev = evaluator(metric_set(psnr=PSNR(resolution=None), psnr_visible=VisiblePSNR()), tmp_path)
    rows = ev.rows(method, outcome(method, item()))
    assert [r["status"] for r in rows] == ["ok"] * 3
    assert all(r["metrics"]["psnr_visible"] is None and r["metrics"]["psnr"] > 0 for r in rows)
    assert rows[1]["notes"] == ["psnr_visible: not applicable: the dataset gives these views no novel_visible masks"]
