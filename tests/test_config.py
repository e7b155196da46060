"""Strict configs: schemas, YAML inheritance, dotted overrides, docstring help."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import pytest

from warpinv.config import (
    ConfigError,
    apply_overrides,
    config_hash,
    describe,
    field_help,
    from_dict,
    load_yaml,
    to_dict,
)


@dataclass
class Inner:
    lr: float = 0.01
    """Learning rate."""
    steps: int = 10
    """Optimisation steps."""


@dataclass
class Outer:
    name: str = "x"
    mode: Literal["w", "w+"] = "w"
    """Latent space."""
    inner: Inner = field(default_factory=Inner)
    tags: list[str] = field(default_factory=list)
    cutoff: int | None = None


def test_unknown_keys_are_errors_naming_the_path_and_valid_keys() -> None:
    with pytest.raises(ConfigError, match=r"inner\.lrr.*valid keys: lr, steps"):
        from_dict(Outer, {"inner": {"lrr": 1}})


def test_types_are_checked() -> None:
    assert from_dict(Outer, {"inner": {"lr": 1}}).inner.lr == 1.0  # ints are fine for floats
    with pytest.raises(ConfigError, match=r"inner\.steps: expected an integer"):
        from_dict(Outer, {"inner": {"steps": 1.5}})
    with pytest.raises(ConfigError, match="not one of"):
        from_dict(Outer, {"mode": "z"})
    assert from_dict(Outer, {"cutoff": None}).cutoff is None
    assert from_dict(Outer, {"cutoff": 3}).cutoff == 3


def test_dotted_overrides_as_a_wandb_sweep_passes_them() -> None:
    data = apply_overrides({"inner": {"lr": 0.1}}, ["inner.lr=3e-4", "inner.steps=7", "mode=w+", "tags=[a, b]"])
    cfg = from_dict(Outer, data)
    assert cfg.inner.lr == 3e-4 and cfg.inner.steps == 7 and cfg.mode == "w+" and cfg.tags == ["a", "b"]
    with pytest.raises(ConfigError, match="key.sub=value"):
        apply_overrides({}, ["novalue"])


def test_yaml_inheritance(tmp_path) -> None:
    (tmp_path / "base.yaml").write_text("name: base\ninner:\n  lr: 0.5\n  steps: 3\n")
    (tmp_path / "child.yaml").write_text("_base_: base.yaml\ninner:\n  steps: 9\n")
    assert load_yaml(tmp_path / "child.yaml") == {"name": "base", "inner": {"lr": 0.5, "steps": 9}}
    (tmp_path / "bad.yaml").write_text("- a list\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_yaml(tmp_path / "bad.yaml")


def test_help_comes_from_field_docstrings() -> None:
    assert field_help(Inner) == {"lr": "Learning rate.", "steps": "Optimisation steps."}
    rows = {key: text for key, _, text in describe(Outer)}
    assert rows["inner.lr"] == "Learning rate." and rows["mode"] == "Latent space."


def test_hash_is_stable_and_order_independent() -> None:
    a = config_hash({"a": 1, "b": {"c": 2}})
    assert a == config_hash({"b": {"c": 2}, "a": 1}) and a != config_hash({"a": 2, "b": {"c": 2}})
    assert config_hash(Outer()) == config_hash(to_dict(Outer()))


@pytest.mark.parametrize(("text", "message"), [
    ("lr: 1\nsteps: 2\nlr: 3\n", "duplicate key 'lr'"),
    ("a: &x [1, 2]\nb: [*x, *x]\n", "aliases (*x) are not allowed"),
    ("a: " + "[" * 200_000 + "]" * 200_000 + "\n", "invalid YAML"),
])
def test_yaml_that_would_mislead_or_explode_is_refused(tmp_path, text: str, message: str) -> None:
    """Issue 11: duplicate keys kept the last value; aliases and deep nesting gave raw tracebacks."""
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_yaml(path)


def test_a_base_cycle_is_refused(tmp_path) -> None:
    (tmp_path / "a.yaml").write_text("_base_: b.yaml\nx: 1\n")
    (tmp_path / "b.yaml").write_text("_base_: a.yaml\ny: 2\n")
    with pytest.raises(ConfigError, match="`_base_` files form a cycle"):
        load_yaml(tmp_path / "a.yaml")
