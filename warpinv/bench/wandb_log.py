"""Optional Weights & Biases logging of a finished benchmark run. Never required for a run.

Mode: ``$WANDB_MODE`` wins (``disabled`` in tests and CI); else the suite's ``wandb.mode``; else
``online`` when logged in (``$WANDB_API_KEY`` or an ``api.wandb.ai`` entry in ``~/.netrc``, checked
without any network call) and ``offline`` otherwise (runs land in ``<output>/wandb`` and can be
uploaded later with ``wandb sync``). No account is needed. A missing package or any wandb error
only prints a warning; a run once started is always finished (``exit_code=1`` when a later step
raised), so no wandb process is left waiting.

What is logged (from the launching process, after the rows are merged): the per-image rows as a
table, the summary metrics (``<label>/<group>/<metric>``, the names sweep files optimise), the
per-method timing, and the saved image grids.
"""
from __future__ import annotations

import contextlib
import math
import netrc
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

_MODE_ALIASES = {"dryrun": "offline", "run": "online", "shared": "online"}
_MODES = ("online", "offline", "disabled")


def logged_in() -> bool:
    """Whether wandb credentials exist locally (no network)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        path = os.environ.get("NETRC") or str(Path.home() / ".netrc")
        auth = netrc.netrc(path).authenticators(os.environ.get("WANDB_BASE_URL", "api.wandb.ai").split("//")[-1])
        return bool(auth and auth[2])
    except (OSError, netrc.NetrcParseError):
        return False


def resolve_mode(enabled: bool = True, configured: str | None = None) -> str:
    """``online``, ``offline`` or ``disabled`` (see the module docstring for the order)."""
    if not enabled:
        return "disabled"
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    for value in (env, (configured or "").strip().lower()):
        if value:
            value = _MODE_ALIASES.get(value, value)
            if value not in _MODES:
                raise ValueError(f"wandb mode must be one of {_MODES}, got {value!r}")
            return value
    return "online" if logged_in() else "offline"


def flat_row(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in ("metrics", "info")}
    for k, v in (row.get("metrics") or {}).items():
        out[f"metric/{k}"] = v
    return out


def _table_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (dict, list)):
        return str(v)
    return v


@contextlib.contextmanager
def finished(run: Any) -> Iterator[Any]:
    """Finish a wandb ``run`` however the block ends: ``exit_code=0``, or ``exit_code=1`` when it
    raised (the error propagates; one raised by ``finish`` itself then is not allowed to replace it)."""
    try:
        yield run
    except BaseException:
        with contextlib.suppress(Exception):
            run.finish(exit_code=1)
        raise
    run.finish(exit_code=0)


def _payload(wandb: Any, out_dir: str | Path, rows: Sequence[dict[str, Any]],
             images: dict[str, list[tuple[str, str]]] | None) -> dict[str, Any]:
    """What one ``run.log`` call sends: the rows as a table and the grid images by method label."""
    flat = [flat_row(r) for r in rows]
    columns = sorted({k for r in flat for k in r}, key=lambda k: (k.startswith("metric/"), k))
    payload: dict[str, Any] = {"rows": wandb.Table(columns=columns,
                                                   data=[[_table_value(r.get(c)) for c in columns] for r in flat])}
    for label, items in (images or {}).items():
        payload[f"grid/{label}"] = [wandb.Image(str(Path(out_dir) / p), caption=c) for p, c in items]
    return payload


def log_run(*, enabled: bool, mode: str | None, project: str, entity: str | None, name: str, out_dir: str | Path,
            config: dict[str, Any], rows: Sequence[dict[str, Any]], summary: dict[str, Any],
            images: dict[str, list[tuple[str, str]]] | None = None, group: str | None = None,
            log_images: bool = True) -> str | None:
    """Log one run; returns the resolved mode, or ``None`` when nothing was logged."""
    try:
        resolved = resolve_mode(enabled, mode)
    except ValueError as err:
        warnings.warn(f"wandb logging skipped: {err}", stacklevel=2)
        return None
    if resolved == "disabled":
        return None
    try:
        import wandb
    except Exception as err:  # wandb must never be required
        warnings.warn(f"wandb logging skipped: cannot import wandb ({err})", stacklevel=2)
        return None
    try:
        wdir = Path(out_dir)
        wdir.mkdir(parents=True, exist_ok=True)
        if not os.environ.get("WANDB_MODE", "x").strip():
            del os.environ["WANDB_MODE"]  # an empty value makes wandb itself fail
        os.environ.setdefault("WANDB_SILENT", "true")
        if resolved == "offline":
            os.environ.setdefault("WANDB_ERROR_REPORTING", "false")
        run = wandb.init(project=project, entity=entity, name=name, group=group, config=config, mode=resolved,
                         dir=str(wdir), job_type="bench", reinit="finish_previous")
        with finished(run):
            run.log(_payload(wandb, out_dir, rows, images if log_images else None))
            run.summary.update({k: v for k, v in summary.items() if not (isinstance(v, float) and math.isnan(v))})
    except Exception as err:
        warnings.warn(f"wandb logging failed ({type(err).__name__}: {err}); the run's files are complete", stacklevel=2)
        return None
    return resolved
