"""Provenance of a benchmark run: code, configs, weights, data, device, versions, date.

Everything a reader needs to trace a number back to how it was made; written to
``provenance.json`` and summarised in every table's caption.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from warpinv.backbone.loading import state_dict_sha256

PACKAGES = ("warpinv", "torch", "pytorch-lightning", "torchmetrics", "numpy", "lpips", "kornia", "safetensors",
            "pillow", "wandb", "facenet-pytorch")


def code_fingerprint(package: Path | None = None) -> str:
    """sha256 (16 hex digits) of every ``.py`` file of the installed ``warpinv`` package (paths and
    bytes): part of every config hash, so rows computed by other code are recomputed, never reused.

    It does not depend on git (an installed copy has no repository) and ignores everything that is
    not Python source (READMEs, YAML), which cannot change a number.
    """
    root = package or Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


def git_state(cwd: str | Path | None = None) -> dict[str, Any]:
    """``{"commit": sha or None, "dirty": bool or None, "describe": ...}`` (tolerates no git)."""
    cwd = str(cwd or Path(__file__).resolve().parents[2])

    def run(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def device_info(accelerator: str, devices: int) -> dict[str, Any]:
    info: dict[str, Any] = {"accelerator": accelerator, "processes": devices, "platform": platform.platform(),
                            "cpu": cpu_name(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    if accelerator == "gpu" and torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        info["cuda"] = torch.version.cuda
    return info


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command that made the run, without this machine's paths.

    Example:
        >>> command_line(["/home/me/warpinv/warpinv/__main__.py", "bench", "experiments/bench/default.yaml"])
        'warpinv bench experiments/bench/default.yaml'
    """
    argv = list(sys.argv if argv is None else argv)
    if not argv:
        return ""
    program = Path(argv[0])
    name = "warpinv" if program.name in ("__main__.py", "warpinv") and "warpinv" in program.parts else program.name
    return " ".join([name, *argv[1:]])


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else ``platform.processor()``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def sha256_lines(lines: Sequence[str]) -> str:
    """Hash of an id list, as a split file holding one id per line would hash."""
    return hashlib.sha256("".join(f"{x}\n" for x in lines).encode()).hexdigest()


def generator_provenance(source: str, G: torch.nn.Module | None = None) -> dict[str, Any]:
    """Where the generator came from and a checksum of it."""
    out: dict[str, Any] = {"source": source, "description": getattr(G, "source", source) if G is not None else source}
    try:
        from warpinv.backbone import PRESETS

        if source in PRESETS and PRESETS[source].weights:
            from warpinv.weights import file_digests, get_spec, locate

            spec = get_spec(PRESETS[source].weights)  # type: ignore[arg-type]
            path = locate(spec)
            out.update({"weights": spec.name, "file": str(path) if path else None,
                        "sha256": file_digests(path)["sha256"] if path else None})
            return out
    except Exception as err:  # provenance must never stop a finished run
        out["error"] = f"{type(err).__name__}: {err}"
    path = Path(source)
    if path.is_file():
        from warpinv.weights import file_digests

        out.update({"file": str(path.resolve()), "sha256": file_digests(path)["sha256"]})
    elif G is not None:
        out["state_dict_sha256"] = state_dict_sha256(G)
    return out


def weight_provenance(names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Path and sha256 of registry weights (``None`` for missing files)."""
    from warpinv.weights import file_digests, get_spec, locate

    out: dict[str, dict[str, Any]] = {}
    for name in names:
        try:
            spec = get_spec(name)
        except KeyError:
            out[name] = {"file": None, "sha256": None, "note": "not a registry entry"}
            continue
        path = locate(spec)
        out[name] = {"file": str(path) if path else None,
                     "sha256": file_digests(path)["sha256"] if path else None}
    return out


def now_utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def collect(*, suite_name: str, suite_hash: str, generator: dict[str, Any], dataset: dict[str, Any],
            metrics: dict[str, Any], methods: dict[str, Any], device: dict[str, Any],
            notes: Sequence[str] = ()) -> dict[str, Any]:
    """The provenance record of one run (``provenance.json``)."""
    return {
        "suite": suite_name,
        "suite_hash": suite_hash,
        "git": git_state(),
        "generator": generator,
        "dataset": dataset,
        "metrics": metrics,
        "methods": methods,
        "device": device,
        "packages": package_versions(),
        "command": command_line(),
        "date": now_utc(),
        "notes": list(notes),
    }


def caption(prov: dict[str, Any]) -> list[str]:
    """Short caption lines summarising a provenance record (the first lines under every table)."""
    git = prov.get("git") or {}
    commit = (git.get("commit") or "unknown")[:10] + (" (dirty)" if git.get("dirty") else "")
    gen = prov.get("generator") or {}
    gsum = gen.get("sha256") or gen.get("state_dict_sha256") or "?"
    ds = prov.get("dataset") or {}
    dev = prov.get("device") or {}
    device = ", ".join(dev.get("gpus") or []) or f"CPU {dev.get('cpu', '?')}"
    lines = [
        f"Suite {prov.get('suite')} (hash {prov.get('suite_hash')}); dataset {ds.get('name')}: "
        f"{ds.get('images')} images, split {ds.get('split') or 'all images'} "
        f"(sha256 {str(ds.get('split_sha256'))[:12]})"
        + (f", limited to the first {ds['limit']}" if ds.get("limit") else "") + ".",
        f"Generator {gen.get('description') or gen.get('source')} (sha256 {str(gsum)[:12]}).",
        f"warpinv {commit}, {prov.get('date')}, {device} x{dev.get('processes')}, torch "
        f"{(prov.get('packages') or {}).get('torch')}.",
    ]
    metric_notes = []
    for name, m in sorted((prov.get("metrics") or {}).items()):
        if m.get("status") != "ok":
            continue
        bits = []
        if m.get("resolution"):
            bits.append(f"at {m['resolution']} px")
        if m.get("random_weights"):
            bits.append("RANDOM WEIGHTS")
        if m.get("comparable_to"):
            bits.append(f"comparable to {m['comparable_to']}")
        metric_notes.append(f"{name}" + (f" ({', '.join(bits)})" if bits else ""))
    if metric_notes:
        lines.append("Metrics: " + "; ".join(metric_notes) + ".")
    lines += [str(n) for n in prov.get("notes") or []]
    return lines
