"""The encoder path of ``warpinv.methods.base``: train through ``Trainer.fit``, invert a batch by one
forward pass, save the trained weights as a checkpoint that a config names.

A test-only encoder (registered for this module only, so the every-method tests never see it) learns
a latent offset from ``w_avg`` from pooled pixels, with the MSE between its render and the image.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.utilities.exceptions import MisconfigurationException
from torch import Tensor, nn

from warpinv.backbone import EG3DGenerator, build_tiny
from warpinv.bench.runner import trainer_kwargs
from warpinv.data import InversionDataModule, make_synthetic_multiview
from warpinv.methods import METHODS, build_method
from warpinv.methods.base import (
    Inversion,
    InversionItem,
    InversionMethod,
    InversionOutcome,
    MethodConfig,
    outcomes_of,
    register_method,
)
from warpinv.methods.losses import masked_mse

NAME = "test_only_encoder"
STEPS = 6


@dataclass
class EncoderConfig(MethodConfig):
    lr: float = 1e-3
    """Adam learning rate of the encoder head."""


class TinyEncoder(InversionMethod):
    """``image (N, 3, H, W)`` -> pooled pixels -> linear head -> ``w_avg + offset`` on every layer."""

    name = NAME
    Config = EncoderConfig
    trainable = True

    def __init__(self, config: EncoderConfig, generator: EG3DGenerator) -> None:
        super().__init__(config, generator)
        self.head = nn.Linear(3 * 4 * 4, generator.w_dim)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.losses: list[float] = []
        self.generator_modes: list[bool] = []
        self.invert_grad_modes: list[bool] = []
        self.batch_sizes: list[int] = []

    def forward(self, images: Tensor) -> Tensor:
        """``(N, 3, H, W)`` in [-1, 1] -> ``ws (N, num_ws, w_dim)``."""
        w = self.G.w_avg + self.head(F.adaptive_avg_pool2d(images, 4).flatten(1))
        return w[:, None].repeat(1, self.G.num_ws, 1)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        self.generator_modes.append(self.G.training)
        images = batch["images"]
        render = self.G.synthesis(self(images), batch["cameras"], noise_mode="const", deterministic=True)["image"]
        loss = masked_mse(render, F.interpolate(images, size=render.shape[-2:], mode="area"))
        self.losses.append(float(loss.detach()))
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.head.parameters(), lr=self.config.lr)

    def invert(self, item: InversionItem) -> Inversion:
        self.invert_grad_modes.append(torch.is_grad_enabled())
        return Inversion(item.image_id, self.name, self(item.image), item.camera)

    def invert_batch(self, items: list[InversionItem]) -> list[Inversion]:
        """One forward pass for the whole batch."""
        self.batch_sizes.append(len(items))
        self.invert_grad_modes.append(torch.is_grad_enabled())
        ws = self(torch.cat([i.image for i in items]))
        return [Inversion(i.image_id, self.name, w[None], i.camera) for i, w in zip(items, ws)]


@pytest.fixture(scope="module")
def registered() -> Iterator[None]:
    register_method(TinyEncoder)
    yield
    del METHODS[NAME]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_multiview(tmp_path_factory.mktemp("encoder") / "synthetic", n=4, seed=0, views=[[0.3, 0.0]])


def fit(module: InversionMethod, data: Path) -> None:
    """``STEPS`` optimiser steps of ``Trainer.fit`` over the synthetic set (the data module has no
    train loader: its fixed-order predict loader serves)."""
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_steps=STEPS, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    dm = InversionDataModule(data, batch_size=4)  # every step sees the same batch: its loss must fall
    trainer.fit(module, train_dataloaders=dm.predict_dataloader())


@pytest.fixture(scope="module")
def trained(registered: None, data: Path) -> tuple[TinyEncoder, dict[str, Tensor], dict[str, Tensor]]:
    """The encoder after ``fit``, the generator's state before it, and the head's initial weights."""
    G = build_tiny()
    module = build_method(NAME, {}, G)
    assert isinstance(module, TinyEncoder)
    generator_before = {k: v.clone() for k, v in G.state_dict().items()}
    head_before = {k: v.clone() for k, v in module.head.state_dict().items()}
    fit(module, data)
    return module, generator_before, head_before


def test_fit_trains_the_encoder(trained) -> None:
    module, _, head_before = trained
    assert len(module.losses) == STEPS
    assert module.losses[-1] < module.losses[0]
    assert any(not torch.equal(v, head_before[k]) for k, v in module.head.state_dict().items())


def test_fit_leaves_the_generator_untouched(trained) -> None:
    module, generator_before, _ = trained
    after = module.G.state_dict()
    assert after.keys() == generator_before.keys()
    assert all(torch.equal(after[k], v) for k, v in generator_before.items())
    assert not any(p.requires_grad for p in module.G.parameters())
    assert module.generator_modes == [False] * STEPS  # frozen: eval mode even while the encoder trains
    assert not module.G.training


def predict(module: InversionMethod, data: Path, batch_size: int = 1) -> list[InversionOutcome]:
    """The outcomes of ``trainer.predict`` with the harness's Trainer settings and no harness."""
    trainer = pl.Trainer(**trainer_kwargs(module, "cpu", 1, 1.0))
    return outcomes_of(trainer.predict(module, datamodule=InversionDataModule(data, batch_size=batch_size)))


def test_invert_is_a_forward_pass(trained, data: Path, monkeypatch) -> None:
    module, _, _ = trained
    head = {k: v.clone() for k, v in module.head.state_dict().items()}
    module.head.zero_grad(set_to_none=True)  # a backward pass would fill them

    def no_optimiser(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("invert built an optimiser")

    monkeypatch.setattr(torch.optim.Optimizer, "__init__", no_optimiser)
    outcomes = predict(module, data)
    assert [o.ok for o in outcomes] == [True] * 4
    assert all(torch.equal(v, head[k]) for k, v in module.head.state_dict().items())
    assert all(p.grad is None for p in module.head.parameters())
    for o in outcomes:
        inv = o.inversion
        assert inv.ws.shape == (1, module.G.num_ws, module.G.w_dim) and inv.generator_delta == {}
        assert not torch.allclose(inv.ws, module.G.w_avg.expand_as(inv.ws))  # the trained head moved it
    item = InversionItem("x", torch.zeros(1, 3, 32, 32), outcomes[0].inversion.camera)
    with torch.no_grad():
        assert torch.equal(module.invert(item).ws, module(item.image))


def test_trainable_methods_invert_without_autograd(trained, data: Path) -> None:
    module, _, _ = trained
    module.invert_grad_modes.clear()
    predict(module, data)
    assert module.invert_grad_modes == [False] * 4  # the harness runs an encoder's forward pass without a graph


def test_encoders_invert_a_batch_in_one_forward_pass(trained, data: Path) -> None:
    module, _, _ = trained
    module.batch_sizes.clear()
    one = predict(module, data, batch_size=1)
    four = predict(module, data, batch_size=4)
    assert module.batch_sizes == [1, 1, 1, 1, 4]
    assert [o.item.image_id for o in four] == [o.item.image_id for o in one]
    assert all(torch.allclose(a.inversion.ws, b.inversion.ws, atol=1e-6) for a, b in zip(one, four))


def test_a_trained_checkpoint_is_what_a_config_names(trained, data: Path, tmp_path: Path) -> None:
    module, _, _ = trained
    path = tmp_path / "encoder.safetensors"
    module.save_checkpoint(path)
    reloaded = build_method(NAME, {"checkpoint": str(path)}, build_tiny())
    assert set(reloaded.method_state_dict()) == {"head.weight", "head.bias"}
    assert all(torch.equal(v, module.head.state_dict()[k]) for k, v in reloaded.head.state_dict().items())
    untrained = build_method(NAME, {}, build_tiny())
    image = torch.zeros(1, 3, 32, 32) + 0.3
    with torch.no_grad():
        assert torch.equal(reloaded(image), module(image)) and not torch.equal(untrained(image), module(image))


def test_per_image_methods_invert_with_gradients_and_do_not_fit(registered: None, data: Path) -> None:
    assert TinyEncoder.trainable and not InversionMethod.trainable
    built_in = [cls for cls in METHODS.values() if not cls.__module__.startswith("tests.")]
    assert {cls.name for cls in built_in if cls.trainable} == {"e3dge", "warpgan"}  # the built-in encoders

    class PerImage(TinyEncoder):
        trainable = False

    module = PerImage(EncoderConfig(), build_tiny())
    predict(module, data, batch_size=2)
    assert module.invert_grad_modes == [True] * 4 and module.batch_sizes == []  # one image at a time
    w_opt = build_method("w_opt", {"allow_random_lpips": True, "lpips_weight": 0.0, "steps": 1}, build_tiny())
    with pytest.raises(MisconfigurationException, match="training_step"):
        fit(w_opt, data)
