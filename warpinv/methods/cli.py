"""``warpinv methods [NAME]``: the registered inversion methods, their presets and config keys.

The main ``warpinv`` command mounts this with :func:`add_methods_parser`. Without ``NAME`` it lists
every method of :data:`warpinv.methods.METHODS` (one-line description, whether it trains, its presets);
with ``NAME`` it prints that method's config keys with their defaults and help text.

A preset is a YAML file of the presets folder (``experiments/methods/``, the suites' ``methods_dir``)
that belongs to a method when its ``method:`` (or ``name:``) key names it (the ``{method: ...,
config: {...}}`` form), else when the file is named after the method, else when its ``_base_`` file
belongs to it (``pti_eg3d.yaml`` inherits ``pti.yaml``, so it is a preset of ``pti``).
"""
from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml

from warpinv.config import describe
from warpinv.methods.base import METHODS, InversionMethod

__all__ = ["DEFAULT_PRESETS_DIR", "add_methods_parser", "description", "find_presets"]

#: Where method presets live, relative to the project root (``SuiteConfig.methods_dir``'s default).
DEFAULT_PRESETS_DIR = "experiments/methods"


def add_methods_parser(subparsers: Any) -> None:
    """Register ``methods`` on an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "methods", help="list the registered inversion methods, or one method's config keys",
        description="Without NAME: every registered inversion method with its one-line description, whether it "
                    "trains, and its presets. With NAME: the method's config keys, defaults and help.")
    p.add_argument("name", nargs="?", metavar="NAME", help="a registered method (default: list them all)")
    p.add_argument("--presets-dir", default=DEFAULT_PRESETS_DIR, metavar="DIR",
                   help=f"folder of method presets (default: {DEFAULT_PRESETS_DIR}, relative to the working directory)")
    p.set_defaults(func=_cmd_methods)


def description(cls: type[InversionMethod]) -> str:
    """The method's one-line description (:meth:`InversionMethod.description`)."""
    return cls.description()


def find_presets(presets_dir: str | Path) -> dict[str, list[Path]]:
    """Preset files of ``presets_dir`` by the method they belong to (``""``: no registered method)."""
    out: dict[str, list[Path]] = {}
    folder = Path(presets_dir)
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]) if folder.is_dir() else []
    for path in files:
        out.setdefault(_preset_method(path) or "", []).append(path)
    return out


def _preset_method(path: Path, seen: frozenset[Path] = frozenset()) -> str | None:
    """The registered method a preset file belongs to, ``None`` when it names none (or is unreadable)."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(data, dict):
        return None
    named = (data.get("method") or data.get("name")) if isinstance(data.get("config"), dict) else None
    if isinstance(named, str):
        return named if named in METHODS else None
    if path.stem in METHODS:
        return path.stem
    base = data.get("_base_")
    if isinstance(base, str) and path.resolve() not in seen:
        return _preset_method(path.parent / base, seen | {path.resolve()})
    return None


def _preset_text(paths: list[Path]) -> str:
    return ", ".join(p.stem for p in paths) if paths else "-"


def _cmd_methods(ns: argparse.Namespace) -> int:
    presets = find_presets(ns.presets_dir)
    if ns.name is None:
        _print_list(presets, ns.presets_dir)
        return 0
    if ns.name not in METHODS:
        print(f"warpinv methods: unknown method {ns.name!r}; registered: {', '.join(METHODS)}", file=sys.stderr)
        return 2
    _print_method(ns.name, presets.get(ns.name, []))
    return 0


def _print_list(presets: dict[str, list[Path]], presets_dir: str) -> None:
    rows = [("METHOD", "TRAINS", "PRESETS", "DESCRIPTION")]
    rows += [(name, "yes" if cls.trainable else "no", _preset_text(presets.get(name, [])), description(cls))
             for name, cls in METHODS.items()]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join([*(cell.ljust(w) for cell, w in zip(row, widths)), row[3]]).rstrip())
    if not Path(presets_dir).is_dir():
        print(f"\nno presets folder {presets_dir}: run from the project root or pass --presets-dir")
    elif presets.get(""):
        print(f"\npresets naming no registered method: {', '.join(p.name for p in presets[''])}")
    print("\n`warpinv methods NAME` lists a method's config keys; a suite picks a preset with `preset: NAME`.")


def _print_method(name: str, presets: list[Path]) -> None:
    cls = METHODS[name]
    print(f"{name}: {description(cls) or '(no description)'}")
    print(f"class: {cls.__module__}.{cls.__qualname__}")
    print("trains: " + ("yes (trainer.fit, then a forward pass per batch)" if cls.trainable
                        else "no (per-image optimisation in invert)"))
    print("presets: " + (", ".join(f"{p.stem} ({p})" for p in presets) if presets else "none"))
    print(f"\nconfig keys ({cls.Config.__name__} defaults; presets and suites override them):")
    for key, default, help_text in describe(cls.Config):
        print(f"  {key} = {default}")
        if help_text:
            print(textwrap.indent(help_text, " " * 6))
