"""The method interface: items, outcomes, seeding, rendering, inversion kinds and files, checkpoints."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import nn

from warpinv.backbone import build_tiny
from warpinv.cameras import yaw_pitch_camera
from warpinv.methods.base import (
    Inversion,
    InversionItem,
    InversionMethod,
    InversionOutcome,
    MethodConfig,
    NonFiniteLossError,
    check_finite,
    image_seed,
    split_batch,
)
from warpinv.methods.rendering import LatentRenderer, substituted_tensors


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


class TrainedToy(Toy):
    """A method with trained tensors of its own (checkpoint tests)."""

    name = "trained_toy_for_tests"

    def __init__(self, config: ToyConfig, generator: Any) -> None:
        super().__init__(config, generator)
        self.head = nn.Linear(4, 2)


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


def test_predict_step_returns_outcomes_without_any_harness(G) -> None:
    outcomes = Toy(ToyConfig(), G).predict_step(batch(2))
    assert all(isinstance(o, InversionOutcome) and o.ok and o.error is None for o in outcomes)
    assert [o.item.image_id for o in outcomes] == ["img0.png", "img1.png"]
    assert all(o.inversion.ws.shape == (1, G.num_ws, G.w_dim) and o.seconds > 0 for o in outcomes)


def test_seed_depends_on_image_id_only(G) -> None:
    m = Toy(ToyConfig(), G)
    out_a = m.predict_step(batch(2))
    out_b = m.predict_step({**batch(2), "images": torch.ones(2, 3, 8, 8)})
    single = m.predict_step({k: (v[1:] if isinstance(v, (torch.Tensor, list)) else v) for k, v in batch(2).items()})
    draws = [o.inversion.info["seed_draw"] for o in out_a]
    assert draws == [o.inversion.info["seed_draw"] for o in out_b]
    assert single[0].inversion.info["seed_draw"] == draws[1]
    assert image_seed("a", 0) != image_seed("b", 0) and image_seed("a", 0) != image_seed("a", 1)


@pytest.mark.parametrize(("mode", "reason"), [("nan", "NonFiniteLossError: loss is nan at step 3"),
                                              ("oom", "OutOfMemoryError: CUDA out of memory")])
def test_nan_and_oom_become_failed_outcomes(G, mode: str, reason: str) -> None:
    outcomes = Toy(ToyConfig(fail_with=mode), G).predict_step(batch(2))
    assert [o.ok for o in outcomes] == [False, False]
    assert outcomes[0].inversion is None and outcomes[0].error.startswith(reason)


def test_other_errors_propagate(G) -> None:
    with pytest.raises(KeyError, match="real bug"):
        Toy(ToyConfig(fail_with="bug"), G).predict_step(batch(1))


def test_the_method_renders_with_its_delta_and_leaves_the_generator_alone(G) -> None:
    c = yaw_pitch_camera(0.0, 0.0)
    ws = G.w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1)
    name = "decoder.net.2.bias"
    before = G.state_dict()[name].clone()
    m = Toy(ToyConfig(), G)
    plain = m.render(Inversion("x.png", "toy", ws, c), c)
    tuned = m.render(Inversion("x.png", "toy", ws, c, generator_delta={name: before + 1.0}), c)
    assert torch.equal(G.state_dict()[name], before)
    assert G.decoder.net[2].bias is not None and torch.equal(G.decoder.net[2].bias, before)
    assert not torch.allclose(plain["image"], tuned["image"])
    direct = G.synthesis(ws, c, noise_mode="const", deterministic=True)
    assert torch.allclose(plain["image"], direct["image"], atol=1e-5)
    assert set(plain) == {"image", "image_raw", "image_depth", "weight_sum"}


def test_the_latent_renderer_runs_the_backbone_once_and_chunks_views(G, monkeypatch) -> None:
    calls: list[int] = []
    real = G.planes

    def counting(ws, **kw):
        calls.append(ws.shape[0])
        return real(ws, **kw)

    monkeypatch.setattr(G, "planes", counting)
    ws = G.w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1)
    cams = yaw_pitch_camera(torch.tensor([-0.3, 0.0, 0.3]), torch.zeros(3))
    renderer = LatentRenderer(G, Inversion("x.png", "toy", ws, cams[:1]), batch=2)
    both = renderer(cams)
    again = renderer(cams[1:])
    assert calls == [1] and both["image"].shape[0] == 3
    # the same views rendered in another chunk: equal but for the official batch-wide depth clamp
    assert float((both["image"][1:] - again["image"]).abs().mean()) < 1e-3


def test_substituted_tensors_refuses_unknown_names_and_restores_on_error(G) -> None:
    with pytest.raises(KeyError, match="not a parameter or buffer"):
        with substituted_tensors(G, {"nope": torch.zeros(1)}):
            pass
    bias = G.decoder.net[2].bias
    with pytest.raises(RuntimeError, match="inside"):
        with substituted_tensors(G, {"decoder.net.2.bias": torch.zeros_like(bias)}):
            raise RuntimeError("inside")
    assert G.decoder.net[2].bias is bias
    with pytest.raises(NonFiniteLossError):
        check_finite(torch.tensor([1.0, float("inf")]), 0)


def test_inversion_files_round_trip_exactly_in_float32(G, tmp_path) -> None:
    c = yaw_pitch_camera(0.0, 0.0)
    name = "decoder.net.2.bias"
    inv = Inversion("x.png", "toy", torch.randn(1, G.num_ws, G.w_dim), c,
                    generator_delta={name: G.state_dict()[name] + 0.5}, tensors={"extra": torch.randn(3)},
                    info={"steps": 3})
    inv.save(tmp_path / "inv.safetensors")
    back = Inversion.load(tmp_path / "inv.safetensors")
    assert type(back) is Inversion and back.image_id == "x.png" and back.info == {"steps": 3}
    assert torch.equal(back.generator_delta[name], inv.generator_delta[name]) and torch.equal(back.ws, inv.ws)
    assert torch.equal(back.tensors["extra"], inv.tensors["extra"])


def test_float16_inversions_store_residuals_and_render_almost_the_same(G, tmp_path) -> None:
    """Half precision stores tuned - base in float16: the render error is far below what 8-bit images
    show (PSNR of the fp16 render against the fp32 render, measured here on a PTI-like delta)."""
    gen = torch.Generator().manual_seed(0)
    state = G.state_dict()
    delta = {k: v + 1e-3 * v.abs().mean() * torch.randn(v.shape, generator=gen)
             for k, v in G.named_parameters() if v.is_floating_point()}
    c = yaw_pitch_camera(0.2, 0.0)
    ws = G.w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1)
    inv = Inversion("x.png", "toy", ws, c, generator_delta=delta)
    inv.save(tmp_path / "half.safetensors", precision="float16", base=G)
    with pytest.raises(ValueError, match="pass `base`"):
        Inversion.load(tmp_path / "half.safetensors")
    back = Inversion.load(tmp_path / "half.safetensors", base=G)
    size32, size16 = inv.storage_bytes("float32"), inv.storage_bytes("float16")
    assert (tmp_path / "half.safetensors").stat().st_size < 0.55 * size32 + 65536 and size16 < 0.51 * size32
    m = Toy(ToyConfig(), G)
    exact, half = m.render(inv, c)["image"], m.render(back, c)["image"]
    mse = float((exact - half).square().mean()) / 4  # images in [-1, 1] -> [0, 1]
    assert mse == 0 or 10 * torch.log10(torch.tensor(1 / mse)) > 80
    assert all(torch.equal(state[k], G.state_dict()[k]) for k in state)
    with pytest.raises(ValueError, match="needs `base`"):
        inv.save(tmp_path / "x.safetensors", precision="float16")


def test_an_inversion_subclass_needs_its_own_kind() -> None:
    class Composite(Inversion):
        kind = "composite_for_tests"

    assert Inversion.kind_of("composite_for_tests") is Composite
    with pytest.raises(TypeError, match="must set its own `kind`"):
        class NoKind(Inversion):
            pass
    with pytest.raises(TypeError, match="already taken"):
        class Thief(Inversion):
            kind = "composite_for_tests"
    with pytest.raises(KeyError, match="unknown inversion kind"):
        Inversion.kind_of("never_registered")


def test_method_checkpoints_hold_what_it_trained_not_the_generator(G, tmp_path) -> None:
    m = TrainedToy(ToyConfig(), G)
    assert set(m.method_state_dict()) == {"head.weight", "head.bias"}
    m.save_checkpoint(tmp_path / "toy.safetensors")
    fresh = TrainedToy(ToyConfig(), G)
    assert not torch.equal(fresh.head.weight, m.head.weight)
    fresh.load_checkpoint(tmp_path / "toy.safetensors")
    assert torch.equal(fresh.head.weight, m.head.weight) and torch.equal(fresh.head.bias, m.head.bias)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fresh.load_checkpoint(tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match="checkpoint of method 'trained_toy_for_tests', not 'toy_for_tests'"):
        Toy(ToyConfig(), G).load_checkpoint(tmp_path / "toy.safetensors")
    other = TrainedToy(ToyConfig(), G)
    other.head = nn.Linear(4, 3)
    with pytest.raises(ValueError, match=r"does not match .* wrong shape \['head.bias', 'head.weight'\]"):
        other.load_checkpoint(tmp_path / "toy.safetensors")
    lightning = {"state_dict": m.state_dict()}
    m.on_save_checkpoint(lightning)
    assert set(lightning["state_dict"]) == {"head.weight", "head.bias"}
    fresh.on_load_checkpoint(lightning)
    fresh.load_state_dict(lightning["state_dict"], strict=True)
