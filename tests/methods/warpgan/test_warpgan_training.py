"""WarpGAN through ``warpinv train``: both stages run, and a killed run resumes to the uninterrupted run's weights
(the stage-2 blur sigmas are drawn from per-step generators, the render memo is an exact cache)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from safetensors.torch import load_file

from tests.training.test_runner import KillAt, Killed, write_run
from warpinv.training import runner
from warpinv.training.runner import run_training

#: 4 steps of the tiny WarpGAN: 2 encoder steps, then 2 SVINet steps (with the adversarial terms and the memo).
WARPGAN = {
    "method": "warpgan", "preset": "warpgan_tiny",
    "config": {"checkpoint": None, "allow_random_lpips": True, "svinet_start_step": 2, "render_memo": 8,
               "proxy_view": 0, "encoder_lr": 1e-3,
               "encoder_losses": {"latent": 1.0, "mse": 0.0, "lpips": 0.0, "identity": 0.0},
               "svinet_losses": {"perceptual": 0.0, "identity": 0.0}},
    "proxy": {"novel_views": 1, "cache_size": 4, "val_size": 2, "render_batch": 4},
    "trainer": {"max_steps": 4, "batch_size": 2, "val_every_n_steps": 2, "checkpoint_every_n_steps": 2,
                "log_every_n_steps": 1, "image_every_n_steps": 4, "accelerator": "cpu", "devices": 1},
}


def warpgan_run(tmp: Path, name: str) -> Path:
    path = write_run(tmp, name, **WARPGAN)
    data = yaml.safe_load(path.read_text())
    data["config"] = WARPGAN["config"]  # not merged onto the E3DGE run's settings
    data["preset"] = str(Path(__file__).resolve().parents[3] / "experiments" / "methods" / "warpgan_tiny.yaml")
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.slow
def test_a_killed_warpgan_run_resumes_to_the_uninterrupted_weights(tmp_path: Path, monkeypatch) -> None:
    whole = run_training(warpgan_run(tmp_path, "whole"), progress=False)
    assert whole.steps == 4
    path = warpgan_run(tmp_path, "killed")
    arguments = runner.trainer_arguments

    def with_kill(*args: Any, **kwargs: Any) -> dict[str, Any]:
        out = arguments(*args, **kwargs)
        out["callbacks"] = [*out["callbacks"], KillAt(3)]  # mid stage 2, after the checkpoint of step 2
        return out

    monkeypatch.setattr(runner, "trainer_arguments", with_kill)
    with pytest.raises(Killed):
        run_training(path, progress=False)
    monkeypatch.setattr(runner, "trainer_arguments", arguments)
    resumed = run_training(path, resume=True, progress=False)
    a, b = load_file(whole.weights), load_file(resumed.weights)
    assert a.keys() == b.keys() and any(k.startswith("svinet.") for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not any(k.startswith("discriminator.") for k in a)
