"""``warpinv train``: a run, its outputs, exact resume after a kill, config errors, the CLI."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
import yaml
from safetensors.torch import load_file

from warpinv.cli import main
from warpinv.config import ConfigError
from warpinv.training import runner
from warpinv.training.runner import load_train_config, run_training

#: A run of 6 steps of a small E3DGE: stage 1 (latent loss) for 3 steps, stage 2 (local branch) for 3.
RUN = {
    "name": "small", "method": "e3dge", "generator": "tiny",
    "config": {"encoder": {"stages": [[16, 1], [16, 1], [16, 1], [16, 1]], "input_size": 32},
               "local": {"base_channels": 8, "depth": 2, "input_size": 32}, "lr": 1e-3, "local_start_step": 3,
               "loss_resolution": "raw", "allow_random_lpips": True,
               "global_losses": {"input_view": 0.0, "lpips": 0.0, "identity": 0.0},
               "local_losses": {"lpips": 0.0, "identity": 0.0, "novel_view": 0.5}},
    "proxy": {"novel_views": 1, "cache_size": 6, "val_size": 2, "render_batch": 4},
    "trainer": {"max_steps": 6, "batch_size": 2, "val_every_n_steps": 3, "checkpoint_every_n_steps": 2,
                "log_every_n_steps": 1, "image_every_n_steps": 3, "accelerator": "cpu", "devices": 1},
    "wandb": {"enabled": False},
}


def write_run(tmp_path: Path, name: str, **changes: Any) -> Path:
    data = json.loads(json.dumps(RUN))
    data["name"] = name
    data["output"] = str(tmp_path / name)
    data["proxy"]["cache"] = str(tmp_path / "cache.safetensors")
    for key, value in changes.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class Killed(RuntimeError):
    """Stands for a kill: raised inside the step loop after a checkpoint was written."""


class KillAt(pl.Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_step == self.step:
            raise Killed(f"killed at step {self.step}")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("train")
    result = run_training(write_run(tmp, "whole"), progress=False)
    assert result.steps == 6
    return tmp


def test_a_run_writes_its_weights_provenance_curve_and_checkpoints(uninterrupted: Path) -> None:
    out = uninterrupted / "whole"
    for name in ("config.yaml", "whole.safetensors", "whole.json", "whole_curve.png", "checkpoints/last.ckpt",
                 "checkpoints/best.ckpt", "logs/attempt0/metrics.csv", "images/step0000003.png",
                 "images/step0000006.png"):
        assert (out / name).is_file(), name
    prov = json.loads((out / "whole.json").read_text())
    assert prov["steps"] == 6 and prov["method"] == "e3dge" and "val/novel_psnr" in prov["final_validation"]
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["config"]["local"]["visibility"] == "depth" and resolved["run_hash"] == prov["run_hash"]
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert not any(k.startswith("G.") for k in ckpt["state_dict"]) and ckpt["global_step"] == 6


def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(uninterrupted: Path, monkeypatch) -> None:
    tmp = uninterrupted
    path = write_run(tmp, "killed")
    arguments = runner.trainer_arguments

    def with_kill(*args: Any, **kwargs: Any) -> dict[str, Any]:
        out = arguments(*args, **kwargs)
        out["callbacks"] = [*out["callbacks"], KillAt(5)]  # mid stage 2, after the checkpoint of step 4
        return out

    monkeypatch.setattr(runner, "trainer_arguments", with_kill)
    with pytest.raises(Killed):
        run_training(path, progress=False)
    monkeypatch.setattr(runner, "trainer_arguments", arguments)
    assert torch.load(tmp / "killed" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 4
    with pytest.raises(FileExistsError, match="--resume"):
        run_training(path, progress=False)
    result = run_training(path, resume=True, progress=False)
    assert result.steps == 6 and (tmp / "killed" / "logs" / "attempt1" / "metrics.csv").is_file()
    assert (tmp / "killed" / "logs" / "attempt0" / "metrics.csv").is_file()  # the first attempt's log is kept
    whole, resumed = load_file(tmp / "whole" / "whole.safetensors"), load_file(result.weights)
    assert whole.keys() == resumed.keys()
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_config_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown key"):
        load_train_config(write_run(tmp_path, "a", trainer={"max_step": 3}))
    with pytest.raises(ConfigError, match="does not train"):
        load_train_config(write_run(tmp_path, "b", method="pti", config={}))
    with pytest.raises(ConfigError, match="unknown key"):
        load_train_config(write_run(tmp_path, "c", config={"encodr": {}}))
    cfg = load_train_config(write_run(tmp_path, "d"), ["trainer.max_steps=9", "config.lr=0.01"])
    assert cfg.trainer.max_steps == 9 and cfg.config["lr"] == 0.01


def test_missing_loss_weights_fail_before_any_work(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WARPINV_WEIGHTS", str(tmp_path / "none"))
    path = write_run(tmp_path, "w", config={**RUN["config"], "allow_random_lpips": False,
                                            "local_losses": {"lpips": 1.0, "identity": 0.0}})
    with pytest.raises(FileNotFoundError, match="lpips"):
        run_training(path, progress=False)
    assert not (tmp_path / "w").exists()


def test_the_cli_trains_and_reports_errors(tmp_path: Path, capsys) -> None:
    path = write_run(tmp_path, "cli")
    assert main(["train", str(path), "trainer.max_steps=2", "config.local_start_step=1", "--no-progress"]) == 0
    assert (tmp_path / "cli" / "cli.safetensors").is_file()
    assert main(["train", str(path), "trainer.max_steps=2", "--no-progress"]) == 2  # exists without --resume
    assert main(["train", str(path), "trainer.maxsteps=2"]) == 2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_training_renders_proxy_samples_on_the_gpu(tmp_path: Path) -> None:
    """On a GPU the samples are rendered on the fly on the device (no cache)."""
    path = write_run(tmp_path, "gpu", proxy={"cache": None}, trainer={"accelerator": "gpu", "devices": 1,
                                                                      "max_steps": 4})
    result = run_training(path, progress=False)
    assert result.steps == 4 and all(math.isfinite(v) for v in result.metrics.values())


def test_real_images_add_reconstruction_losses(tmp_path: Path) -> None:
    """With ``real.root`` every step also fits real images at their own cameras (logged as ``train/real_*``)."""
    import csv

    from warpinv.data import make_synthetic_multiview

    real = make_synthetic_multiview(tmp_path / "real", n=2, seed=5, views=[[0.3, 0.0]])
    path = write_run(tmp_path, "real", real={"root": str(real), "batch_size": 1},
                     trainer={"max_steps": 2, "log_every_n_steps": 1, "val_every_n_steps": 2})
    result = run_training(path, progress=False)
    assert result.steps == 2
    with open(tmp_path / "real" / "logs" / "attempt0" / "metrics.csv") as fh:
        logged = {k for row in csv.DictReader(fh) for k, v in row.items() if v}
    assert {"train/real_mse", "train/latent"} <= logged
