"""``run_bench``: one suite, every method, through ``trainer.predict``; then merge, check, tabulate.

Per method: one ``Trainer`` (its ``trainer_arguments`` merged in one place, :func:`trainer_kwargs`),
``trainer.predict`` over the images not yet done (resume), rows appended per image to
``rows/rank{r}.jsonl``. Processes: every visible GPU (DDP, spawned, NCCL), or ``--devices N`` CPU
processes (DDP, forked, gloo) when there is no GPU; one process otherwise. The launcher starts the
ranks itself (spawn or fork) so the same code runs from the CLI, a notebook or a test
(``strategy="ddp"`` would re-run the command line per rank), and each method may use a different
number of processes (never more than the images left: ``UnrepeatedDistributedSamplerWrapper``
needs one per rank). CPU ranks are forked because a spawned rank re-imports torch and Lightning
(about 8 s per method on 2 cores); CUDA cannot be forked, so GPU ranks are spawned.

After the last method, the launching process merges the shards, de-duplicates, checks the ids
against the split (missing reported, extras an error) and writes the outputs::

    <output>/resolved_config.yaml   the suite with every method's resolved Config and hash
    <output>/rows/rank*.jsonl       per-rank shards (append-only; the resume state)
    <output>/rows.jsonl             merged rows of this suite's current configs
    <output>/leaderboard.{md,csv,tex,html}
    <output>/timing.json            seconds per image and peak memory per method
    <output>/provenance.json        code, configs, weights, data, device, versions, date
    <output>/images/<label>/<id>/   the HTML grid's images (input, reconstruction, depth, views)
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import logging
import math
import os
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from warpinv.bench import leaderboard as lb
from warpinv.bench import provenance as prov
from warpinv.bench.evaluate import BenchEvaluator
from warpinv.bench.grids import collect_grids
from warpinv.bench.metric_set import MetricSet
from warpinv.bench.preflight import preflight
from warpinv.bench.progress import MethodProgress, ShareCpuThreads
from warpinv.bench.rows import (
    STATUS_FAILED,
    SplitCheck,
    check_split,
    completed_ids,
    merge_shards,
    write_rows,
)
from warpinv.bench.suite import ResolvedMethod, SuiteConfig, load_suite, resolve_methods, resolved_dict
from warpinv.bench.writer import EvaluationWriter
from warpinv.checks import check_min
from warpinv.config import ConfigError, save_yaml
from warpinv.weights import sha256_file


@dataclass
class BenchResult:
    """What a finished run produced."""

    out_dir: Path
    rows: list[dict[str, Any]]
    board: lb.Leaderboard
    summary: dict[str, float]
    paths: dict[str, Path]
    split_checks: list[SplitCheck] = field(default_factory=list)
    ran: dict[str, int] = field(default_factory=dict)

    @property
    def methods_without_success(self) -> list[str]:
        """Labels of the methods with no successful image (every image failed, or none has a row)."""
        return [r.label for r in self.board.rows if r.succeeded == 0]

    @property
    def exit_code(self) -> int:
        """``warpinv bench``'s status: 1 when a method has no successful image or misses images of the
        split, else 0 (also when some images failed: :meth:`failure_lines` reports them)."""
        return 1 if self.methods_without_success or any(c.missing for c in self.split_checks) else 0

    def failure_lines(self, reasons: int = 3) -> list[str]:
        """One line per method with failed images: how many, and the most frequent reasons."""
        lines = []
        for b in self.board.rows:
            if not b.failed:
                continue
            errors = Counter(r.get("error") or "no reason recorded" for r in self.rows if r["status"] == STATUS_FAILED
                             and (r["method"], r["config_hash"]) == (b.label, b.config_hash))
            text = "; ".join(f"{error} ({n} image{'s' if n > 1 else ''})" for error, n in errors.most_common(reasons))
            if len(errors) > reasons:
                text += f"; {len(errors) - reasons} other reason(s)"
            lines.append(f"{b.label}: {b.failed} of {b.succeeded + b.failed} image(s) failed: {text}")
        return lines


class OutputLockedError(RuntimeError):
    """Another ``warpinv bench`` holds the output folder."""


@contextlib.contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold ``out/.lock`` (an exclusive ``flock``) for the run, so that two runs on one output folder
    never compute the same images twice or interleave their tables. The lock dies with its process.

    Raises:
        OutputLockedError: another process holds it (the message names its pid).
    """
    import fcntl

    path = out / ".lock"
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            raise OutputLockedError(f"{out} is in use by another warpinv bench (pid {holder}); wait for it to "
                                    "finish, or choose another `output`") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


logger = logging.getLogger("warpinv.bench")


def log(msg: str, quiet: bool = False) -> None:
    """A progress line of the run (``[bench] ...``; the CLI shows them on stderr)."""
    if not quiet:
        logger.info(f"[bench] {msg}")


# -------------------------------------------------------------------------------------- devices


def pick_devices(suite: SuiteConfig, devices: int | None) -> tuple[str, int]:
    """``(accelerator, processes)``: every visible GPU by default, else ``--devices``/``devices`` or
    ``cpu_processes`` CPU processes."""
    want = devices if devices is not None else suite.devices
    if want is not None:
        check_min(want, 1, "--devices", error=ConfigError)
    use_gpu = suite.device in ("auto", "cuda") and torch.cuda.is_available()
    if suite.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda but no CUDA device is visible")
    if use_gpu:
        n = torch.cuda.device_count()
        if want is not None and want > n:
            raise ConfigError(f"--devices {want} but only {n} GPU(s) are visible")
        return "gpu", want or n
    return "cpu", want or suite.cpu_processes


def trainer_kwargs(method: Any, accelerator: str, processes: int, timeout_hours: float) -> dict[str, Any]:
    """The ONE place where a method's ``trainer_arguments`` meet the harness's Trainer settings."""
    from pytorch_lightning.strategies import DDPStrategy

    kwargs: dict[str, Any] = {
        "accelerator": accelerator, "devices": processes, "logger": False, "enable_checkpointing": False,
        "enable_progress_bar": False, "enable_model_summary": False, "inference_mode": False,
        "num_sanity_val_steps": 0,
    }
    if processes > 1:
        kwargs["strategy"] = DDPStrategy(
            start_method="spawn" if accelerator == "gpu" else "fork", timeout=_dt.timedelta(hours=timeout_hours),
            process_group_backend="nccl" if accelerator == "gpu" else "gloo")
    kwargs.update(getattr(method, "trainer_arguments", {}) or {})
    if kwargs.get("inference_mode", False):
        raise ConfigError(f"method {getattr(method, 'name', '?')} asks for inference_mode=True; the harness needs "
                          "gradients for per-image optimisation (set it False in trainer_arguments)")
    return kwargs


# ---------------------------------------------------------------------------------------- dataset


def ensure_dataset(suite: SuiteConfig, quiet: bool = False) -> None:
    """Build the synthetic set when the suite says how (``dataset.synthesize``) and the folder does
    not hold a set of exactly that spec (``make_synthetic_multiview`` returns at once when it does)."""
    ds = suite.dataset
    if ds.synthesize is None:
        return
    from warpinv.data.synthetic import holds_synthetic_set, make_synthetic_multiview

    spec = ds.synthesize
    gen = spec.generator or suite.generator
    t0 = time.perf_counter()
    # A synthetic set of another spec or generator in the folder is derived data: rebuild it. Any
    # other files there are the user's: refuse.
    rebuild = holds_synthetic_set(ds.root)
    try:
        make_synthetic_multiview(Path(ds.root), n=spec.n, generator=gen, seed=spec.seed, overwrite=rebuild,
                                 **spec.options)
    except FileExistsError as err:
        raise ConfigError(f"dataset.synthesize: {err}") from None
    log(f"synthetic multi-view set ({spec.n} identities, generator {gen}) at {ds.root}: ready "
        f"({time.perf_counter() - t0:.1f} s)", quiet)


def _datamodule(suite: SuiteConfig, exclude_ids: set[str] | None = None) -> Any:
    from warpinv.config import from_dict
    from warpinv.data import InversionDataModule
    from warpinv.data.validation import DatasetOptions

    ds = suite.dataset
    options = from_dict(DatasetOptions, ds.options, path="dataset.options")
    return InversionDataModule(ds.root, split=ds.split, exclude_ids=sorted(exclude_ids or ()),
                               batch_size=suite.batch_size, num_workers=ds.num_workers, options=options)


def dataset_ids(suite: SuiteConfig) -> tuple[list[str], dict[str, str]]:
    """The image ids the suite covers, in split order (``dataset.limit`` applied), and the input
    fingerprint of each (:meth:`~warpinv.data.InversionDataset.input_fingerprint`).

    Raises:
        ConfigError: the split names images the dataset does not hold (a table would cite the
            split's hash over fewer images).
    """
    dm = _datamodule(suite)
    ids = list(_ids_of(dm))
    missing = list(getattr(getattr(dm, "dataset", None), "missing_split_ids", None) or [])
    if missing:
        shown = ", ".join(missing[:10]) + (f", ... ({len(missing)} in all)" if len(missing) > 10 else "")
        raise ConfigError(f"dataset {suite.dataset.root} lacks {len(missing)} image(s) of the split "
                          f"{suite.dataset.split}: {shown}. Prepare them, or use a split file that lists only the "
                          "images you have (the tables cite the split)")
    if suite.dataset.images is not None and len(ids) != suite.dataset.images:
        raise ConfigError(f"dataset.images says the split holds {suite.dataset.images} images, but "
                          f"{suite.dataset.split or suite.dataset.root} holds {len(ids)}")
    if suite.dataset.limit is not None:
        ids = ids[: suite.dataset.limit]
    fingerprints = dm.dataset.input_fingerprints()
    return ids, {i: fingerprints[i] for i in ids}


def _ids_of(dm: Any) -> list[str]:
    for attr in ("image_ids", "ids"):
        value = getattr(dm, attr, None)
        if value is not None:
            return [str(v) for v in (value() if callable(value) else value)]
    dm.setup("predict")
    dataset = getattr(dm, "dataset", None)
    if dataset is None:
        dataset = getattr(dm, "predict_dataset", None)
    for attr in ("image_ids", "ids", "names"):
        value = getattr(dataset, attr, None)
        if value is not None:
            return [str(v) for v in (value() if callable(value) else value)]
    raise RuntimeError("cannot list the data module's image ids (expected an `image_ids` attribute)")


# -------------------------------------------------------------------------------------------- run


def run_bench(suite_path: str | Path, overrides: list[str] | None = None, *, devices: int | None = None,
              quiet: bool = False, wandb_group: str | None = None,
              wandb_config: dict[str, Any] | None = None) -> BenchResult:
    """Run a suite (resumable) and write every output. See the module docstring."""
    t_start = time.perf_counter()
    from warpinv.backbone.runtime import tune_cpu_allocator

    tune_cpu_allocator()
    logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
    suite = load_suite(suite_path, overrides)
    methods = resolve_methods(suite)
    _, metric_set = preflight(suite, methods)
    assert metric_set is not None
    out = Path(suite.output)
    out.mkdir(parents=True, exist_ok=True)
    with output_lock(out):
        return _run_methods(suite, methods, metric_set, out, devices=devices, quiet=quiet, wandb_group=wandb_group,
                            wandb_config=wandb_config, t_start=t_start)


def _run_methods(suite: SuiteConfig, methods: list[ResolvedMethod], metric_set: MetricSet, out: Path, *,
                 devices: int | None, quiet: bool, wandb_group: str | None, wandb_config: dict[str, Any] | None,
                 t_start: float) -> BenchResult:
    """Every method's missing images through ``trainer.predict``, then :func:`finalize` (under the lock)."""
    rows_dir = out / "rows"

    ensure_dataset(suite, quiet)
    split_ids, fingerprints = dataset_ids(suite)
    if not split_ids:
        raise ConfigError(f"dataset {suite.dataset.root} (split {suite.dataset.split}) holds no images")
    accelerator, processes = pick_devices(suite, devices)
    resolved = resolved_dict(suite, methods)
    resolved["run"] = {"accelerator": accelerator, "processes": processes, "images": len(split_ids)}
    save_yaml(resolved, out / "resolved_config.yaml")
    for name, reason in metric_set.unavailable.items():
        log(f"metric {name} unavailable: {reason}", quiet)

    from warpinv.backbone import load_generator
    from warpinv.methods import build_method

    G = load_generator(suite.generator)
    generator_info = prov.generator_provenance(suite.generator, G)
    split_name = suite.dataset.name or (Path(suite.dataset.split).stem if suite.dataset.split
                                        else Path(suite.dataset.root).name)
    selected = set(split_ids)
    all_ids = set(_ids_of(_datamodule(suite))) if suite.dataset.limit is not None else selected
    save_ids = set(split_ids[: max(0, suite.save_images)])
    existing = current_rows(merge_shards(rows_dir) if rows_dir.is_dir() else [], fingerprints)
    ran: dict[str, int] = {}
    for m in methods:
        done = completed_ids(existing, m.label, m.config_hash) & selected
        todo = [i for i in split_ids if i not in done]
        if not todo:
            log(f"{m.label}: all {len(split_ids)} images already done (config {m.config_hash}); skipping", quiet)
            ran[m.label] = 0
            continue
        if done:
            log(f"{m.label}: resuming, {len(done)} of {len(split_ids)} images already done", quiet)
        module = build_method(m.name, m.config, G)
        evaluator = BenchEvaluator(
            label=m.label, method_name=m.name, config_hash=m.config_hash, split=split_name, metrics=metric_set,
            generator=m.generator, gt_novel=suite.views.gt_novel, yaw_sweep=suite.views.yaw_sweep,
            sweep_pitch=suite.views.sweep_pitch, protocols=suite.views.protocols, multiview=suite.views.multiview,
            render_batch=suite.views.render_batch, out_dir=out, save_image_ids=save_ids,
            save_inversions=suite.save_inversions, inversion_precision=suite.inversion_precision,
            input_fingerprints=fingerprints)
        n_proc = min(processes, len(todo))
        if n_proc < processes:
            log(f"{m.label}: {len(todo)} image(s) left, running {n_proc} process(es) instead of {processes}", quiet)
        dm = _datamodule(suite, exclude_ids=done | (all_ids - selected))
        import pytorch_lightning as pl

        callbacks = [EvaluationWriter(evaluator, rows_dir), MethodProgress(m.label, len(todo), enabled=not quiet),
                     ShareCpuThreads()]
        trainer = pl.Trainer(callbacks=callbacks,
                             **trainer_kwargs(module, accelerator, n_proc, suite.ddp_timeout_hours))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=".*predict_dataloader.*num_workers.*")
            warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated.*")
            trainer.predict(module, datamodule=dm, return_predictions=False)
        ran[m.label] = len(todo)
        del module, trainer, evaluator

    return finalize(suite, methods, metric_set, split_ids, split_name, generator_info, accelerator, processes,
                    fingerprints=fingerprints, quiet=quiet, ran=ran, wandb_group=wandb_group, wandb_config=wandb_config,
                    wall_seconds=time.perf_counter() - t_start)


def finalize(suite: SuiteConfig, methods: list[ResolvedMethod], metric_set: MetricSet, split_ids: list[str],
             split_name: str, generator_info: dict[str, Any], accelerator: str, processes: int, *,
             fingerprints: dict[str, str], quiet: bool = False,
             ran: dict[str, int] | None = None, wandb_group: str | None = None,
             wandb_config: dict[str, Any] | None = None, wall_seconds: float | None = None) -> BenchResult:
    """Merge the shards, check the split, write rows, tables, timing, provenance; log to wandb."""
    out = Path(suite.output)
    merged = merge_shards(out / "rows") if (out / "rows").is_dir() else []
    all_rows = current_rows(merged, fingerprints)
    changed_inputs = len(merged) - len(all_rows)
    if changed_inputs:
        log(f"{changed_inputs} row(s) left out: made from other versions of the images (image, mask, camera or "
            "ground-truth files changed since)", quiet)
    current = {(m.label, m.config_hash) for m in methods}
    in_split = set(split_ids)  # a smaller dataset.limit than an earlier run keeps the other rows in the shards
    rows = [r for r in all_rows if (r["method"], r["config_hash"]) in current and r["image_id"] in in_split]
    stale = len(merged) - len(rows)
    write_rows(out / "rows.jsonl", rows)
    checks = [check_split(rows, split_ids, m.label, m.config_hash) for m in methods]
    for c in checks:
        if not c.ok:
            log(f"split check: {c.describe()}", quiet)

    metric_meta = _metric_meta(metric_set)
    summaries = [lb.MethodSummary(m.label, m.name, m.config_hash, _budget_text(m), generator=m.generator)
                 for m in methods]
    board = lb.aggregate(rows, summaries, metric_meta, title=f"warpinv bench: {suite.name}",
                         aggregation=suite.aggregation)
    board.unavailable = dict(metric_set.unavailable)
    board.unavailable.update(_metric_failures(rows, metric_set))

    split_sha = (sha256_file(suite.dataset.split) if suite.dataset.split and Path(suite.dataset.split).is_file()
                 else prov.sha256_lines(split_ids))
    dataset_info = {"name": split_name, "root": suite.dataset.root, "split": suite.dataset.split,
                    "split_sha256": split_sha, "images": len(split_ids), "limit": suite.dataset.limit,
                    "ids_sha256": prov.sha256_lines(split_ids)}
    metric_info = {name: dict(info) for name, info in metric_set.info.items()}
    for info in metric_info.values():
        names = [w for w in (info.get("weight_names") or info.get("weights") or []) if isinstance(w, str)]
        info["weight_checksums"] = prov.weight_provenance(names) if info.get("status") == "ok" and not info.get(
            "random_weights") else {}
    notes = list(suite.notes)
    lpips_random = sorted({r["method"] for r in rows if (r.get("info") or {}).get("lpips_random_weights")})
    if lpips_random:
        notes.append("Methods whose LPIPS loss used a seeded random trunk (weights absent): "
                     + ", ".join(lpips_random) + ".")
    if "tiny" in str(generator_info.get("description", "")) or suite.generator == "tiny":
        notes.append("The tiny generator has seeded random weights (not a trained model): numbers measure the "
                     "harness and the optimisers on in-domain renders, not face inversion quality.")
    incomplete = [c.describe() for c in checks if c.missing]
    if incomplete:
        notes.append("INCOMPLETE: " + "; ".join(incomplete) + ".")
    methods_info = {m.label: m.summary() for m in methods}
    for m in methods:
        if m.generator != suite.generator:  # a method on its own generator: record that file too
            methods_info[m.label]["generator_provenance"] = prov.generator_provenance(m.generator)
    record = prov.collect(suite_name=suite.name, suite_hash=resolved_dict(suite, methods)["suite_hash"],
                          generator=generator_info, dataset=dataset_info, metrics=metric_info, methods=methods_info,
                          device=prov.device_info(accelerator, processes), notes=notes)
    record["stale_rows_kept_in_shards"] = stale
    record["rows_of_changed_inputs"] = changed_inputs
    record["code_fingerprint"] = prov.code_fingerprint()
    board.caption = prov.caption(record)
    board.provenance = record
    board.csv_context = {"suite": suite.name, "dataset": split_name, "split_sha256": split_sha,
                         "generator": generator_info.get("description"),
                         "generator_sha256": generator_info.get("sha256") or generator_info.get("state_dict_sha256"),
                         "git_commit": (record["git"] or {}).get("commit"),
                         "git_dirty": (record["git"] or {}).get("dirty"),
                         "date": record["date"]}

    grids_raw = collect_grids(out, rows, [m.label for m in methods])
    grids = {label: {iid: [lb.GridImage(p, c, row) for p, c, row in ims] for iid, ims in per.items()}
             for label, per in grids_raw.items()}
    paths = lb.write_all(board, out, grids=grids, tex_label=f"tab:warpinv-{suite.name}")
    timing = {r.label: {"seconds_per_image": _f(r.seconds_per_image), "peak_gpu_mem_mb": _f(r.peak_mem_mb),
                        "peak_rss_mb": _f(r.peak_rss_mb), "images": r.images, "failed": r.failed,
                        "ran_this_time": (ran or {}).get(r.label, 0)} for r in board.rows}
    if wall_seconds is not None:
        timing["_wall_seconds"] = wall_seconds  # type: ignore[assignment]
    (out / "timing.json").write_text(json.dumps(timing, indent=1) + "\n")
    (out / "provenance.json").write_text(json.dumps(record, indent=1, default=str) + "\n")
    paths["rows"] = out / "rows.jsonl"
    paths["provenance"] = out / "provenance.json"
    paths["timing"] = out / "timing.json"
    paths["resolved_config"] = out / "resolved_config.yaml"

    summary = summary_metrics(board)
    from warpinv.bench.wandb_log import log_run

    log_run(enabled=suite.wandb.enabled, mode=suite.wandb.mode, project=suite.wandb.project, entity=suite.wandb.entity,
            name=suite.name, out_dir=out, config={**resolved_dict(suite, methods), **(wandb_config or {})},
            rows=rows, summary=summary, images={k: [(p, f"{iid}: {c}") for iid, v in per.items() for p, c, _ in v]
                                             for k, per in grids_raw.items()},
            group=wandb_group, log_images=suite.wandb.log_images)
    log(f"wrote {paths['md']} (+ .csv .tex .html), {len(rows)} rows", quiet)
    return BenchResult(out, rows, board, summary, paths, checks, dict(ran or {}))


def current_rows(rows: list[dict[str, Any]], fingerprints: dict[str, str]) -> list[dict[str, Any]]:
    """Rows made from the images as they are now: rows of the split's images whose
    ``input_sha256`` differs from the image's current fingerprint (an edited image, mask or
    camera; rows written before fingerprints were recorded) are dropped, so their images are
    recomputed. Rows of images outside the split are kept (another ``dataset.limit``)."""
    return [r for r in rows if r["image_id"] not in fingerprints
            or r.get("input_sha256") == fingerprints[r["image_id"]]]


def _f(x: float) -> float | None:
    return None if isinstance(x, float) and math.isnan(x) else x


def _budget_text(m: ResolvedMethod) -> str:
    """Changed budget fields first (the method's ``budget_fields``, dotted paths), then other changed settings."""
    from warpinv.methods import METHODS

    fields = METHODS[m.name].budget_fields
    text = m.budget_text()
    if not fields or not m.budget:
        return text
    budget = [b for b in m.budget if b[0] in fields]
    other = [b for b in m.budget if b not in budget]
    first = dataclasses.replace(m, budget=budget).budget_text()
    rest = dataclasses.replace(m, budget=other).budget_text()
    return "; ".join(p for p in (first, f"also {rest}" if rest else "") if p)


def _metric_meta(metric_set: MetricSet) -> dict[str, lb.MetricMeta]:
    meta: dict[str, lb.MetricMeta] = {}
    for name, info in metric_set.info.items():
        if info.get("status") != "ok":
            continue
        random = bool(info.get("random_weights"))
        meta[name] = lb.MetricMeta(name, name, info.get("higher_is_better", lb.guess_higher_is_better(name)),
                                   random, info.get("resolution"), str(info.get("comparable_to") or ""))
        for col, cinfo in (info.get("columns") or {}).items():
            meta[col] = lb.MetricMeta(col, col, cinfo.get("higher_is_better"), random, cinfo.get("resolution"),
                                      str(info.get("comparable_to") or ""))
    return meta


def _metric_failures(rows: list[dict[str, Any]], metric_set: MetricSet) -> dict[str, str]:
    """Metrics that produced no value at all (every attempt raised), with the first reason."""
    produced = {k for r in rows for k, v in (r.get("metrics") or {}).items() if v is not None}
    out = {}
    for name in metric_set.modules:
        if any(col in produced for col in (metric_set.info.get(name, {}).get("columns") or {name: None})):
            continue
        reasons = [n for r in rows for n in (r.get("notes") or []) if n.startswith(f"{name}:")]
        if reasons:
            out[name] = "failed on every image: " + reasons[0].split(":", 1)[1].strip()
    return out


def summary_metrics(board: lb.Leaderboard) -> dict[str, float]:
    """``{"<label>/<group>/<metric>": mean}`` plus timing: the names sweep files optimise."""
    out: dict[str, float] = {}
    for r in board.rows:
        for c in board.columns:
            cell = r.cells.get(c.id)
            if cell is not None:
                out[f"{r.label}/{c.id}"] = cell.mean
        out[f"{r.label}/seconds_per_image"] = r.seconds_per_image
        out[f"{r.label}/failed"] = float(r.failed)
        out[f"{r.label}/images"] = float(r.images)
    return out

