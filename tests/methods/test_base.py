"""The method interface: items, inversions, seeding, generator safety, failed rows."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import torch

from warpinv.backbone import build_tiny
from warpinv.cameras import yaw_pitch_camera
from warpinv.methods.base import (
    Inversion,
    InversionItem,
    InversionMethod,
    MethodConfig,
    NonFiniteLossError,
    check_finite,
    image_seed,
    split_batch,
    swapped_tensors,
)


class RecordingEvaluator:
    def evaluate(self, method, item, inversion, seconds, peak_mem_mb) -> list[dict[str, Any]]:
        return [{"image_id": item.image_id, "status": "ok", "inversion": inversion}]

    def failed(self, method, item, reason, seconds) -> list[dict[str, Any]]:
        return [{"image_id": item.image_id, "status": "failed", "error": reason}]


@dataclass
class ToyConfig(MethodConfig):
    fail_with: str = ""


class Toy(InversionMethod):
    name = "toy_for_tests"
    Config = ToyConfig

    def invert(self, item: InversionItem) -> Inversion:
        if self.config.fail_with == "nan":
            check_finite(torch.tensor(float("nan")), step=3)
        if self.config.fail_with == "oom":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        if self.config.fail_with == "bug":
            raise KeyError("a real bug must not be hidden")
        ws = self.G.w_avg.reshape(1, 1, -1).repeat(1, self.G.num_ws, 1) + torch.randn(1, 1, 512) * 0.1
        return Inversion(item.image_id, self.name, ws, item.camera, info={"seed_draw": float(ws.sum())})


def batch(n: int = 2) -> dict[str, Any]:
    return {"images": torch.zeros(n, 3, 8, 8), "cameras": yaw_pitch_camera(0.0, 0.0).repeat(n, 1),
            "image_ids": [f"img{i}.png" for i in range(n)], "masks": None,
            "novel_cameras": torch.zeros(n, 2, 25)}


@pytest.fixture(scope="module")
def G():
    return build_tiny()


def test_split_batch_keeps_extras_per_sample() -> None:
    items = split_batch(batch(3))
    assert [i.image_id for i in items] == ["img0.png", "img1.png", "img2.png"]
    assert items[1].image.shape == (1, 3, 8, 8) and items[1].extras["novel_cameras"].shape == (1, 2, 25)
    assert items[0].mask is None


def test_seed_depends_on_image_id_only(G) -> None:
    m = Toy(ToyConfig(), G)
    m.evaluator = RecordingEvaluator()
    rows_a = m.predict_step(batch(2))
    rows_b = m.predict_step({**batch(2), "images": torch.ones(2, 3, 8, 8)})
    single = m.predict_step({k: (v[1:] if isinstance(v, (torch.Tensor, list)) else v) for k, v in batch(2).items()})
    draws = [r["inversion"].info["seed_draw"] for r in rows_a]
    assert draws == [r["inversion"].info["seed_draw"] for r in rows_b]
    assert single[0]["inversion"].info["seed_draw"] == draws[1]
    assert image_seed("a", 0) != image_seed("b", 0) and image_seed("a", 0) != image_seed("a", 1)


@pytest.mark.parametrize(("mode", "reason"), [("nan", "NonFiniteLossError: loss is nan at step 3"),
                                              ("oom", "OutOfMemoryError: CUDA out of memory")])
def test_nan_and_oom_become_failed_rows(G, mode: str, reason: str) -> None:
    m = Toy(ToyConfig(fail_with=mode), G)
    m.evaluator = RecordingEvaluator()
    rows = m.predict_step(batch(2))
    assert [r["status"] for r in rows] == ["failed", "failed"]
    assert rows[0]["error"].startswith(reason)


def test_other_errors_propagate(G) -> None:
    m = Toy(ToyConfig(fail_with="bug"), G)
    m.evaluator = RecordingEvaluator()
    with pytest.raises(KeyError, match="real bug"):
        m.predict_step(batch(1))


def test_predict_needs_an_evaluator(G) -> None:
    with pytest.raises(RuntimeError, match="no evaluator attached"):
        Toy(ToyConfig(), G).predict_step(batch(1))


def test_inversion_render_applies_and_restores_the_delta(G, tmp_path) -> None:
    c = yaw_pitch_camera(0.0, 0.0)
    ws = G.w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1)
    name = "decoder.net.2.bias"
    before = G.state_dict()[name].clone()
    delta = {name: before + 1.0}
    inv = Inversion("x.png", "toy", ws, c, generator_delta=delta, info={"steps": 3})
    with torch.no_grad():
        plain = Inversion("x.png", "toy", ws, c).render(G, c, deterministic=True)
        tuned = inv.render(G, c, deterministic=True)
    assert torch.equal(G.state_dict()[name], before)
    assert not torch.allclose(plain["image"], tuned["image"])
    path = tmp_path / "inv.safetensors"
    inv.save(path)
    back = Inversion.load(path)
    assert back.image_id == "x.png" and back.info == {"steps": 3}
    assert torch.equal(back.generator_delta[name], delta[name]) and torch.equal(back.ws, inv.ws)
    with pytest.raises(KeyError, match="not in the module"):
        with swapped_tensors(G, {"nope": torch.zeros(1)}):
            pass
    with pytest.raises(NonFiniteLossError):
        check_finite(torch.tensor([1.0, float("inf")]), 0)


def test_out_of_memory_during_evaluation_becomes_a_failed_row(G) -> None:
    class OOMEvaluator(RecordingEvaluator):
        def evaluate(self, method, item, inversion, seconds, peak_mem_mb):  # noqa: ANN001, ANN201
            raise torch.OutOfMemoryError("CUDA out of memory while rendering the views")

    m = Toy(ToyConfig(), G)
    m.evaluator = OOMEvaluator()
    [row] = m.predict_step(batch(1))
    assert row["status"] == "failed"
    assert row["error"] == "OutOfMemoryError: CUDA out of memory while rendering the views (during evaluation)"
