"""``EvaluationWriter``: the Lightning callback that turns predicted inversions into result rows.

The harness attaches it to ``trainer.predict``; the method's ``predict_step`` only inverts and
returns :class:`~warpinv.methods.base.InversionOutcome` objects. For each predicted batch the
writer scores every outcome with the method's :class:`~warpinv.bench.evaluate.BenchEvaluator` and
appends the rows of each image to ``rows_dir/rank{global_rank}.jsonl`` in one flushed write, so a
kill never leaves an image half-recorded except for a torn final line, which the merge skips.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pytorch_lightning.callbacks import BasePredictionWriter

from warpinv.bench.evaluate import BenchEvaluator
from warpinv.bench.rows import append_rows, shard_path
from warpinv.methods.base import InversionOutcome


class EvaluationWriter(BasePredictionWriter):
    """Evaluates each predicted batch's outcomes and appends their rows to this rank's shard.

    Args:
        evaluator: scores one outcome into rows.
        rows_dir: folder of the ``rank*.jsonl`` shards.
    """

    def __init__(self, evaluator: BenchEvaluator, rows_dir: str | Path) -> None:
        super().__init__(write_interval="batch")
        self.evaluator = evaluator
        self.rows_dir = str(rows_dir)

    def write_on_batch_end(self, trainer: Any, pl_module: Any, prediction: Any, batch_indices: Any, batch: Any,
                           batch_idx: int, dataloader_idx: int = 0) -> None:
        rank = int(trainer.global_rank)
        path = shard_path(self.rows_dir, rank)
        for outcome in _outcomes(prediction):
            rows = self.evaluator.rows(pl_module, outcome)
            for r in rows:
                r.setdefault("rank", rank)
            append_rows(path, rows)


def _outcomes(prediction: Any) -> list[InversionOutcome]:
    outcomes = list(prediction or [])
    for o in outcomes:
        if not isinstance(o, InversionOutcome):
            raise TypeError(f"predict_step must return InversionOutcome objects, got {type(o).__name__}")
    return outcomes
