"""``warpinv train`` over 2 CPU processes (forked DDP ranks, gloo): it runs, syncs and exports once."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.training.test_runner import write_run
from warpinv.training.runner import run_training


@pytest.mark.ddp
@pytest.mark.slow
def test_two_cpu_processes_train_and_export(tmp_path: Path) -> None:
    path = write_run(tmp_path, "ddp", trainer={"max_steps": 4, "devices": 2})
    result = run_training(path, progress=False)
    assert result.steps == 4 and all(math.isfinite(v) for v in result.metrics.values())
    state = load_file(result.weights)
    assert state and not any(k.startswith("G.") for k in state)
    # the exported weights are the trained ones (the heads' last layers start at zero)
    assert any(v.abs().sum() > 0 for k, v in state.items() if k.startswith("encoder.styles") and "linear" in k)
    # one export and one log folder (rank 0), checkpoints at steps 2 and 4
    assert sorted(p.name for p in (tmp_path / "ddp").glob("*.safetensors")) == ["ddp.safetensors"]
    assert (tmp_path / "ddp" / "checkpoints" / "last.ckpt").is_file()
