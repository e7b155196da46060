"""A test-only inversion method for the harness tests (never part of the package).

``bench_toy`` returns ``w_avg`` plus a small seeded offset, so its rows are deterministic per image
id. It can fail chosen images (a NaN loss -> a failed row) and simulate a kill: with
``$WARPINV_TEST_KILL_AFTER=k`` the process dies (``os._exit``) when it starts its (k+1)-th image, or
raises ``SystemExit`` with ``$WARPINV_TEST_KILL_MODE=raise``; ``$WARPINV_TEST_FAIL_IDS`` (comma-separated)
fails images without changing the config (so a rerun retries them under the same config hash);
``$WARPINV_TEST_COUNT_FILE`` records every image the method starts.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from warpinv.methods.base import (
    METHODS,
    Inversion,
    InversionItem,
    InversionMethod,
    MethodConfig,
    check_finite,
    register_method,
)

KILL_ENV = "WARPINV_TEST_KILL_AFTER"
KILL_MODE_ENV = "WARPINV_TEST_KILL_MODE"
COUNT_ENV = "WARPINV_TEST_COUNT_FILE"
FAIL_ENV = "WARPINV_TEST_FAIL_IDS"


@dataclass
class ToyConfig(MethodConfig):
    """Config of the test method."""

    offset: float = 0.05
    """Scale of the seeded latent offset from w_avg."""
    steps: int = 10
    """A budget field (unused; the harness reports changes of it)."""
    fail_ids: list[str] = field(default_factory=list)
    """Image ids whose loss becomes NaN (failed rows)."""


class BenchToy(InversionMethod):
    """Test method: w_avg plus a seeded offset; can fail, be killed and count its images on request."""

    name = "bench_toy"
    Config = ToyConfig
    budget_fields = ("steps",)

    def __init__(self, config: ToyConfig, generator) -> None:
        super().__init__(config, generator)
        self.started = 0

    def invert(self, item: InversionItem) -> Inversion:
        kill_after = os.environ.get(KILL_ENV)
        if kill_after is not None and self.started >= int(kill_after):
            if os.environ.get(KILL_MODE_ENV) == "raise":
                raise SystemExit(3)
            os._exit(137)
        self.started += 1
        count_file = os.environ.get(COUNT_ENV)
        if count_file:
            with open(count_file, "a") as fh:
                fh.write(item.image_id + "\n")
        if item.image_id in self.config.fail_ids or item.image_id in os.environ.get(FAIL_ENV, "").split(","):
            check_finite(torch.tensor(float("nan")), step=1)
        G = self.G
        ws = G.w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1).to(item.image.device)
        ws = ws + self.config.offset * torch.randn(1, 1, ws.shape[-1], device=ws.device)
        return Inversion(item.image_id, self.name, ws, item.camera, info={"toy": True})


if "bench_toy" not in METHODS:
    register_method(BenchToy)
