"""``warpinv methods`` and ``warpinv metrics``: what they list and print."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
import yaml

from tests.helpers import PROJECT_ROOT
from warpinv.cli import main
from warpinv.config import describe
from warpinv.methods import METHODS, InversionMethod, MethodConfig
from warpinv.methods.cli import description, find_presets
from warpinv.metrics import METRICS, MetricEntry, list_metrics, metric_info
from warpinv.metrics.cli import direction


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _row(out: str, first_cell: str) -> str:
    rows = [line for line in out.splitlines() if line.split()[:1] == [first_cell]]
    assert len(rows) == 1, (first_cell, out)
    return rows[0]


def test_help_lists_both_commands(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    for command in ("methods", "metrics"):
        assert command in out.split("positional arguments:")[0]  # in the usage line's command list
        assert any(line.split()[:1] == [command] for line in out.splitlines())  # with its help line


# ------------------------------------------------------------------------------------------ methods


def test_methods_lists_every_method_with_trains_presets_and_description(capsys, monkeypatch) -> None:
    monkeypatch.chdir(PROJECT_ROOT)
    code, out, _ = _run(capsys, "methods")
    assert code == 0
    assert out.splitlines()[0].split() == ["METHOD", "TRAINS", "PRESETS", "DESCRIPTION"]
    for name, cls in METHODS.items():
        row = _row(out, name)
        assert row.split()[1] == ("yes" if cls.trainable else "no")
        assert description(cls) and row.endswith(description(cls))
    # pti_eg3d.yaml inherits pti.yaml (`_base_`), so it is a preset of pti; wplus_opt.yaml is wplus_opt's own
    # although it inherits w_opt.yaml.
    assert "pti, pti_eg3d" in _row(out, "pti")
    assert "wplus_opt" in _row(out, "wplus_opt") and "wplus_opt" not in _row(out, "w_opt")


def test_description_is_the_first_docstring_line() -> None:
    assert description(METHODS["pti"]) == "Pivotal Tuning Inversion on EG3D."
    assert "``" not in description(METHODS["w_opt"])  # reST literals shown plain


@dataclass
class _ToyConfig(MethodConfig):
    width: int = 3
    """Width of the toy encoder."""


class _ToyEncoder(InversionMethod):
    """A toy encoder that trains.

    Not a real method.
    """

    name = "toy_encoder"
    Config = _ToyConfig
    trainable = True


def test_methods_shows_trainable_methods_and_their_keys(capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(METHODS, _ToyEncoder.name, _ToyEncoder)
    code, out, _ = _run(capsys, "methods", "--presets-dir", str(tmp_path))
    assert code == 0
    row = _row(out, "toy_encoder")
    assert row.split()[1:3] == ["yes", "-"] and row.endswith("A toy encoder that trains.")

    code, out, _ = _run(capsys, "methods", "toy_encoder")
    assert code == 0
    assert out.startswith("toy_encoder: A toy encoder that trains.\n") and "trains: yes" in out
    assert "  width = 3\n      Width of the toy encoder.\n" in out
    assert "  seed = 0\n" in out  # MethodConfig's fields too


def test_preset_ownership_rules(capsys, tmp_path) -> None:
    (tmp_path / "w_opt.yaml").write_text("steps: 5\n")  # named after the method
    (tmp_path / "short_w.yaml").write_text(yaml.safe_dump({"_base_": "w_opt.yaml", "steps": 2}))  # its _base_
    (tmp_path / "explicit.yaml").write_text(yaml.safe_dump({"method": "pti", "config": {"tuning": {"steps": 3}}}))
    (tmp_path / "pti_named.yml").write_text(yaml.safe_dump({"name": "pti", "config": {}}))
    (tmp_path / "stray.yaml").write_text("steps: 1\n")  # names no method
    (tmp_path / "loop.yaml").write_text("_base_: loop.yaml\n")  # a cycle must not hang
    (tmp_path / "broken.yaml").write_text("a: [\n")
    presets = {name: [p.name for p in paths] for name, paths in find_presets(tmp_path).items()}
    assert presets == {"w_opt": ["short_w.yaml", "w_opt.yaml"], "pti": ["explicit.yaml", "pti_named.yml"],
                       "": ["broken.yaml", "loop.yaml", "stray.yaml"]}

    code, out, _ = _run(capsys, "methods", "--presets-dir", str(tmp_path))
    assert code == 0
    assert "short_w, w_opt" in _row(out, "w_opt") and "explicit, pti_named" in _row(out, "pti")
    assert "presets naming no registered method: broken.yaml, loop.yaml, stray.yaml" in out

    code, out, _ = _run(capsys, "methods", "--presets-dir", str(tmp_path / "absent"))
    assert code == 0 and f"no presets folder {tmp_path / 'absent'}" in out


def test_method_name_prints_every_config_key_with_default_and_help(capsys, monkeypatch) -> None:
    monkeypatch.chdir(PROJECT_ROOT)
    code, out, _ = _run(capsys, "methods", "pti")
    assert code == 0
    assert out.startswith("pti: Pivotal Tuning Inversion on EG3D.\n")
    assert "trains: no" in out
    assert "presets: pti (experiments/methods/pti.yaml), pti_eg3d (experiments/methods/pti_eg3d.yaml)" in out
    keys = describe(METHODS["pti"].Config)
    assert len(keys) > 20
    for key, default, help_text in keys:
        assert f"  {key} = {default}\n" in out
        if help_text:
            assert help_text.splitlines()[0] in out


def test_unknown_method_is_an_error_naming_the_registered_ones(capsys) -> None:
    code, out, err = _run(capsys, "methods", "nope")
    assert code == 2 and not out
    assert "unknown method 'nope'" in err and all(name in err for name in METHODS)


# ------------------------------------------------------------------------------------------ metrics


def test_metrics_lists_every_metric_with_direction_resolution_weights_protocol(capsys) -> None:
    code, out, _ = _run(capsys, "metrics")
    assert code == 0
    assert out.splitlines()[0].split() == ["METRIC", "KIND", "BETTER", "RESOLUTION", "WEIGHTS", "PROTOCOL"]
    infos = list_metrics()
    assert [line.split()[0] for line in out.splitlines()[1:len(infos) + 1]] == [i.name for i in infos]
    for info in infos:
        row = _row(out, info.name)
        assert row.split()[1:3] == [info.kind, direction(info)]
        assert (f"{info.resolution}x{info.resolution}" if info.resolution else "input size") in row
        assert all(weight in row for weight in info.weight_names) or (not info.weight_names and "none" in row)
        assert info.protocol[:30] in row
    assert "lower" in _row(out, "lpips_alex") and "higher" in _row(out, "psnr")
    assert "mixed" in _row(out, "ibrnet_consistency")  # its LPIPS column is lower-is-better, the others higher


def test_metric_name_prints_all_of_its_info(capsys) -> None:
    code, out, _ = _run(capsys, "metrics", "psnr")
    assert code == 0
    info = metric_info("psnr")
    flat = " ".join(out.split())  # long fields are wrapped
    for needle in (info.protocol, info.comparable_to, "higher is better", "[0, inf]", "256x256", "unit: dB"):
        assert needle in flat, needle


def test_multiview_metric_prints_its_columns(capsys) -> None:
    code, out, _ = _run(capsys, "metrics", "ibrnet_consistency")
    assert code == 0
    flat = " ".join(out.split())
    for column in metric_info("ibrnet_consistency").outputs:
        assert f"column {column.name} " in out
        assert column.protocol in flat
    assert "lower is better" in flat  # ibrnet_lpips


def test_unknown_metric_is_an_error(capsys) -> None:
    code, out, err = _run(capsys, "metrics", "nope")
    assert code == 2 and not out
    assert "unknown metric 'nope'" in err and "psnr" in err


def test_listings_build_no_metric(capsys, monkeypatch) -> None:
    """Listing and describing metrics reads their info only: nothing is built, no weight file looked up."""
    def refuse(**_kwargs: object) -> None:
        pytest.fail("a metric was built")

    for name, entry in list(METRICS.items()):
        monkeypatch.setitem(METRICS, name, MetricEntry(entry.info, refuse))
    assert _run(capsys, "metrics")[0] == 0
    assert _run(capsys, "metrics", "id_arcface")[0] == 0
