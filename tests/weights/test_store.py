"""Offline lookup and verification: lookup order, checksums, MissingWeightsError, check."""
from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
import sys
from pathlib import Path

import pytest

from tests.weights.fakes import NAME, PAYLOAD, count_hashes, hub_dir, make_spec, put, sha256_of
from warpinv.weights import (
    REGISTRY,
    STATUS_MISMATCH,
    STATUS_MISSING,
    STATUS_UNREADABLE,
    STATUS_UNVERIFIED,
    STATUS_VERIFIED,
    ChecksumError,
    MissingWeightsError,
    PublishedChecksum,
    WeightSpec,
    check,
    registered,
    resolve,
)

pytestmark = pytest.mark.usefixtures("offline")
STATUSES = {STATUS_VERIFIED, STATUS_UNVERIFIED, STATUS_MISMATCH, STATUS_UNREADABLE, STATUS_MISSING}


# --------------------------------------------------------------------------------------------------
# resolve: precedence
# --------------------------------------------------------------------------------------------------


def test_resolve_precedence_explicit_then_env_then_hub(fake: WeightSpec, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = put(tmp_path / "explicit")
    env = put(tmp_path / "env")
    hub = put(hub_dir(tmp_path))
    monkeypatch.setenv("WARPINV_WEIGHTS", str(env.parent))

    assert resolve(NAME, path=explicit) == explicit
    assert resolve(NAME, path=explicit.parent) == explicit  # a folder holding the file also works
    assert resolve(NAME) == env
    monkeypatch.delenv("WARPINV_WEIGHTS")
    assert resolve(NAME) == hub


def test_resolve_falls_through_a_missing_explicit_path_and_env_dirs(fake: WeightSpec, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    hub = put(hub_dir(tmp_path))
    second = put(tmp_path / "second")
    monkeypatch.setenv("WARPINV_WEIGHTS", os.pathsep.join([str(tmp_path / "empty"), str(second.parent)]))
    assert resolve(NAME, path=tmp_path / "nowhere" / "x.bin") == second
    monkeypatch.delenv("WARPINV_WEIGHTS")
    assert resolve(NAME, path=tmp_path / "nowhere" / "x.bin") == hub


def test_resolve_uses_the_hub_filename(tmp_path: Path) -> None:
    spec = make_spec(hub_filename="fake-weights-0123abcd.bin")
    hub_file = put(hub_dir(tmp_path), "fake-weights-0123abcd.bin")
    with registered(spec):
        assert resolve(NAME) == hub_file


@pytest.mark.parametrize("name, package", [
    ("lpips-alex-v0.1", "lpips"), ("lpips-vgg-v0.1", "lpips"),
    ("mtcnn-pnet", "facenet_pytorch"), ("mtcnn-rnet", "facenet_pytorch"), ("mtcnn-onet", "facenet_pytorch"),
])
def test_packaged_files_resolve_from_the_installed_wheels(name: str, package: str) -> None:
    found = importlib.util.find_spec(package)
    if found is None:
        pytest.skip(f"{package} is not installed")
    already_imported = package in sys.modules
    path = resolve(name)
    relative = REGISTRY[name].packaged_in[1]  # type: ignore[index]
    assert path == Path(list(found.submodule_search_locations or [])[0]) / relative
    assert check(name)[0].status == STATUS_VERIFIED
    assert not path.with_name(path.name + ".sha256").exists(), "stamps never go inside an installed package"
    assert (package in sys.modules) == already_imported, "lookup must not import the package"


def test_weights_env_overrides_packaged_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec("lpips") is None:
        pytest.skip("lpips is not installed")
    packaged = resolve("lpips-alex-v0.1")
    copy = put(tmp_path / "w", "alex.pth", packaged.read_bytes())
    monkeypatch.setenv("WARPINV_WEIGHTS", str(copy.parent))
    assert resolve("lpips-alex-v0.1") == copy


# --------------------------------------------------------------------------------------------------
# verification
# --------------------------------------------------------------------------------------------------


def test_checksum_mismatch_raises_with_both_values_and_the_path(tmp_path: Path) -> None:
    bad = bytearray(PAYLOAD)
    bad[100] ^= 1
    path = put(tmp_path / "w", data=bytes(bad))
    with registered(make_spec()):
        with pytest.raises(ChecksumError) as info:
            resolve(NAME, path=path)
        assert resolve(NAME, path=path, verify=False) == path
    err = info.value
    assert (err.kind, err.expected, err.actual, err.path) == ("sha256", sha256_of(PAYLOAD), sha256_of(bytes(bad)), path)
    for text in (str(path), sha256_of(PAYLOAD), sha256_of(bytes(bad))):
        assert text in str(err)


def test_size_mismatch_raises_before_hashing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_hashes(monkeypatch)
    path = put(tmp_path / "w", data=PAYLOAD + b"x")
    with registered(make_spec()), pytest.raises(ChecksumError, match="size mismatch"):
        resolve(NAME, path=path)
    assert calls == []


@pytest.mark.parametrize("kind, value", [
    ("md5", hashlib.md5(PAYLOAD).hexdigest()),
    ("sha256", sha256_of(PAYLOAD)),
    ("sha256-prefix", sha256_of(PAYLOAD)[:8]),
])
def test_published_checksums_of_each_kind_verify(kind: str, value: str, tmp_path: Path) -> None:
    good = put(tmp_path / "good")
    bad = put(tmp_path / "bad", data=PAYLOAD[::-1])
    spec = make_spec(sha256=None, size=None, checksum=PublishedChecksum(kind, value, "test"))  # type: ignore[arg-type]
    with registered(spec):
        assert resolve(NAME, path=good) == good
        with pytest.raises(ChecksumError, match=kind):
            resolve(NAME, path=bad)


# --------------------------------------------------------------------------------------------------
# MissingWeightsError
# --------------------------------------------------------------------------------------------------


def test_missing_error_lists_every_searched_path_and_how_to_get_the_file(fake: WeightSpec, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    env_dirs = [tmp_path / "env1", tmp_path / "env2"]
    monkeypatch.setenv("WARPINV_WEIGHTS", os.pathsep.join(map(str, env_dirs)))
    explicit = tmp_path / "explicit" / "mine.bin"
    with pytest.raises(MissingWeightsError) as info:
        resolve(NAME, path=explicit)
    err = info.value
    message = str(err)
    assert isinstance(err, FileNotFoundError)
    expected = [explicit, env_dirs[0] / "fake-weights.bin", env_dirs[1] / "fake-weights.bin",
                hub_dir(tmp_path) / "fake-weights.bin"]
    assert [loc.path for loc in err.searched] == expected
    for text in [*map(str, expected), "https://example.invalid/fake-weights.bin", "test licence", "tests",
                 "WARPINV_WEIGHTS", f"warpinv weights fetch {NAME}", "make test"]:
        assert text in message, text


def test_missing_error_for_a_manual_entry_gives_instructions_and_notes_an_unset_env() -> None:
    with pytest.raises(MissingWeightsError) as info:
        resolve("arcface-ir-se50")
    message = str(info.value)
    spec = REGISTRY["arcface-ir-se50"]
    assert spec.manual_instructions is not None and spec.manual_instructions in message
    for text in ("1KW7bjndL3QG3sxBbZxreGHigcCCpsDgn", "ccee24aae1d36888fc42390ae39d1b36", "$WARPINV_WEIGHTS is not set",
                 "warpinv weights fetch arcface-ir-se50", spec.licence):
        assert text in message


def test_missing_error_from_a_name_alone_and_pickling() -> None:
    err = MissingWeightsError("ibrnet")
    assert "model_255000.pth" in str(err) and "1wNkZkVQGx7rFksnX7uVX3NazrbjqaIgU" in str(err)
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and again.weight_name == "ibrnet"
    bad = pickle.loads(pickle.dumps(ChecksumError("/x", "md5", "a" * 32, "b" * 32)))
    assert (bad.expected, bad.actual) == ("a" * 32, "b" * 32)


# --------------------------------------------------------------------------------------------------
# check
# --------------------------------------------------------------------------------------------------


def test_check_lists_every_entry() -> None:
    statuses = check()
    assert [s.name for s in statuses] == list(REGISTRY)
    assert {s.status for s in statuses} <= STATUSES
    assert all((s.path is None) == (s.status == STATUS_MISSING) for s in statuses)


def test_check_reports_each_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARPINV_WEIGHTS", str(tmp_path / "w"))
    unverifiable = make_spec(name="test-unverifiable", filename="other.bin", sha256=None, size=None)
    with registered(make_spec(), unverifiable):
        assert [s.status for s in check([NAME, "test-unverifiable"])] == [STATUS_MISSING] * 2
        put(tmp_path / "w")
        put(tmp_path / "w", "other.bin")
        assert [s.status for s in check([NAME, "test-unverifiable"])] == [STATUS_VERIFIED, STATUS_UNVERIFIED]
        put(tmp_path / "w", data=PAYLOAD[::-1])
        (status,) = check(NAME)
        assert status.status == STATUS_MISMATCH and not status.ok and "sha256 mismatch" in status.detail
