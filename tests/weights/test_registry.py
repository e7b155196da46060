"""The weights registry: lookup order, verification and stamps, error messages, fetch, check, CLI.

Everything runs offline: an autouse guard makes any non-``file://`` URL fail the test, and the only
"downloads" are ``file://`` URLs of temporary files.
"""
from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import pickle
import sys
import types
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from warpinv.weights import (
    REGISTRY,
    ChecksumError,
    FetchError,
    ManualDownloadError,
    MissingWeightsError,
    OfflineError,
    PublishedChecksum,
    UnknownWeightError,
    WeightSpec,
    check,
    fetch,
    get_spec,
    registered,
    resolve,
)
from warpinv.weights import registry as reg
from warpinv.weights.cli import run_weights_cli

STATUSES = {reg.STATUS_VERIFIED, reg.STATUS_UNVERIFIED, reg.STATUS_MISMATCH, reg.STATUS_UNREADABLE,
            reg.STATUS_MISSING}
PAYLOAD = bytes(range(256)) * 41  # 10,496 bytes of fake "weights"
NAME = "test-fake"


@pytest.fixture(autouse=True)
def _offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline mode, a private torch home and stamp cache, and no network whatever the code does."""
    monkeypatch.setenv("WARPINV_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("WARPINV_CACHE", str(tmp_path / "warpinv_cache"))
    monkeypatch.delenv("WARPINV_WEIGHTS", raising=False)
    real_urlopen = urllib.request.urlopen

    def guarded(url: Any, *args: Any, **kwargs: Any) -> Any:
        full = url.full_url if isinstance(url, urllib.request.Request) else str(url)
        if not full.startswith("file:"):
            pytest.fail(f"a test tried to reach the network: {full}")
        return real_urlopen(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", guarded)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _spec(**changes: Any) -> WeightSpec:
    fields: dict[str, Any] = dict(name=NAME, filename="fake-weights.bin", sha256=_sha256(PAYLOAD), size=len(PAYLOAD),
                                  urls=("https://example.invalid/fake-weights.bin",),
                                  licence="test licence", used_by=("tests",), description="fake weights")
    fields.update(changes)
    return WeightSpec(**fields)


@pytest.fixture
def fake() -> Iterator[WeightSpec]:
    spec = _spec()
    with registered(spec):
        yield spec


def _put(folder: Path, name: str = "fake-weights.bin", data: bytes = PAYLOAD) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def _hub(tmp_path: Path) -> Path:
    return tmp_path / "torch_home" / "hub" / "checkpoints"


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _count_hashes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    real = reg._hash_file

    def counting(path: Path) -> dict[str, str]:
        calls.append(Path(path))
        return real(path)

    monkeypatch.setattr(reg, "_hash_file", counting)
    return calls


# --------------------------------------------------------------------------------------------------
# resolve: precedence
# --------------------------------------------------------------------------------------------------


def test_resolve_precedence_explicit_then_env_then_hub(fake: WeightSpec, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = _put(tmp_path / "explicit")
    env = _put(tmp_path / "env")
    hub = _put(_hub(tmp_path))
    monkeypatch.setenv("WARPINV_WEIGHTS", str(env.parent))

    assert resolve(NAME, path=explicit) == explicit
    assert resolve(NAME, path=explicit.parent) == explicit  # a folder holding the file also works
    assert resolve(NAME) == env
    monkeypatch.delenv("WARPINV_WEIGHTS")
    assert resolve(NAME) == hub


def test_resolve_falls_through_a_missing_explicit_path_and_env_dirs(fake: WeightSpec, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    hub = _put(_hub(tmp_path))
    second = _put(tmp_path / "second")
    monkeypatch.setenv("WARPINV_WEIGHTS", os.pathsep.join([str(tmp_path / "empty"), str(second.parent)]))
    assert resolve(NAME, path=tmp_path / "nowhere" / "x.bin") == second
    monkeypatch.delenv("WARPINV_WEIGHTS")
    assert resolve(NAME, path=tmp_path / "nowhere" / "x.bin") == hub


def test_resolve_uses_the_hub_filename(tmp_path: Path) -> None:
    spec = _spec(hub_filename="fake-weights-0123abcd.bin")
    hub_file = _put(_hub(tmp_path), "fake-weights-0123abcd.bin")
    with registered(spec):
        assert resolve(NAME) == hub_file


def test_get_spec_by_name_or_filename_and_unknown_names() -> None:
    assert get_spec("model_ir_se50.pth") is REGISTRY["arcface-ir-se50"]
    with pytest.raises(UnknownWeightError, match="arcface-ir-se50") as info:
        get_spec("arcface-ir-se5")
    assert isinstance(info.value, KeyError)


def test_registered_restores_the_registry() -> None:
    before = dict(REGISTRY)
    shadow = _spec(name="ibrnet", filename="model_255000.pth")
    with registered(_spec(), shadow):
        assert REGISTRY[NAME].filename == "fake-weights.bin"
        assert REGISTRY["ibrnet"] is shadow
    assert REGISTRY == before


# --------------------------------------------------------------------------------------------------
# verification and stamps
# --------------------------------------------------------------------------------------------------


def test_checksum_mismatch_raises_with_both_values_and_the_path(tmp_path: Path) -> None:
    bad = bytearray(PAYLOAD)
    bad[100] ^= 1
    path = _put(tmp_path / "w", data=bytes(bad))
    with registered(_spec()):
        with pytest.raises(ChecksumError) as info:
            resolve(NAME, path=path)
        assert resolve(NAME, path=path, verify=False) == path
    err = info.value
    assert (err.kind, err.expected, err.actual, err.path) == ("sha256", _sha256(PAYLOAD), _sha256(bytes(bad)), path)
    for text in (str(path), _sha256(PAYLOAD), _sha256(bytes(bad))):
        assert text in str(err)


def test_size_mismatch_raises_before_hashing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_hashes(monkeypatch)
    path = _put(tmp_path / "w", data=PAYLOAD + b"x")
    with registered(_spec()), pytest.raises(ChecksumError, match="size mismatch"):
        resolve(NAME, path=path)
    assert calls == []


@pytest.mark.parametrize("kind, value", [
    ("md5", hashlib.md5(PAYLOAD).hexdigest()),
    ("sha256", _sha256(PAYLOAD)),
    ("sha256-prefix", _sha256(PAYLOAD)[:8]),
])
def test_published_checksums_of_each_kind_verify(kind: str, value: str, tmp_path: Path) -> None:
    good = _put(tmp_path / "good")
    bad = _put(tmp_path / "bad", data=PAYLOAD[::-1])
    spec = _spec(sha256=None, size=None, checksum=PublishedChecksum(kind, value, "test"))  # type: ignore[arg-type]
    with registered(spec):
        assert resolve(NAME, path=good) == good
        with pytest.raises(ChecksumError, match=kind):
            resolve(NAME, path=bad)


def test_invalid_checksums_are_rejected() -> None:
    with pytest.raises(ValueError):
        PublishedChecksum("md5", "abc", "test")
    with pytest.raises(ValueError):
        PublishedChecksum("crc32", "0" * 8, "test")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        _spec(sha256="A" * 64)
    with pytest.raises(ValueError):
        _spec(licence=" ")
    with pytest.raises(ValueError):
        _spec(used_by=())


def test_stamp_avoids_rehashing_until_the_file_changes(fake: WeightSpec, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_hashes(monkeypatch)
    path = _put(tmp_path / "w")
    for _ in range(3):
        resolve(NAME, path=path)
    assert len(calls) == 1
    assert path.with_name(path.name + ".sha256").is_file()

    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    resolve(NAME, path=path)
    assert len(calls) == 2

    corrupted = bytearray(PAYLOAD)
    corrupted[0] ^= 0xFF
    path.write_bytes(bytes(corrupted))  # same size, new mtime: the stamp no longer applies
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000_000))
    with pytest.raises(ChecksumError):
        resolve(NAME, path=path)
    assert len(calls) == 3


def test_stamp_goes_to_the_cache_when_the_folder_is_read_only(fake: WeightSpec, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = _put(tmp_path / "readonly")
    real_write = reg._atomic_write_text

    def refuse_beside(target: Path, text: str) -> None:
        if target.parent == path.parent:
            raise PermissionError(f"read-only: {target}")  # root ignores chmod, so simulate it
        real_write(target, text)

    monkeypatch.setattr(reg, "_atomic_write_text", refuse_beside)
    calls = _count_hashes(monkeypatch)
    resolve(NAME, path=path)
    resolve(NAME, path=path)
    assert len(calls) == 1
    assert _files(path.parent) == ["fake-weights.bin"]
    assert len(list((tmp_path / "warpinv_cache" / "stamps").glob("*.sha256"))) == 1


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
                _hub(tmp_path) / "fake-weights.bin"]
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
# fetch
# --------------------------------------------------------------------------------------------------


def test_fetch_offline_refuses_without_network_and_leaves_nothing(fake: WeightSpec, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    with pytest.raises(OfflineError, match="WARPINV_OFFLINE"):
        fetch(NAME, dest_dir=dest, progress=False)
    assert _files(dest) == [] and _files(tmp_path / "torch_home") == []


def test_fetch_network_failure_is_clean(fake: WeightSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WARPINV_OFFLINE")

    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    dest = tmp_path / "dest"
    with pytest.raises(FetchError, match="network is unreachable") as info:
        fetch(NAME, dest_dir=dest, progress=False)
    assert "no partial file" in str(info.value)
    assert _files(dest) == []


def test_fetch_interrupted_midway_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WARPINV_OFFLINE")

    class Broken(io.BytesIO):
        headers = {"Content-Length": str(len(PAYLOAD))}

        def read(self, size: int = -1) -> bytes:
            if self.tell() > 0:
                raise ConnectionResetError("connection reset by peer")
            return super().read(1000)

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Broken(PAYLOAD))
    dest = tmp_path / "dest"
    with registered(_spec()), pytest.raises(FetchError, match="connection reset"):
        fetch(NAME, dest_dir=dest, progress=False)
    assert _files(dest) == []


def _local_spec(source: Path, **changes: Any) -> WeightSpec:
    return _spec(urls=(source.as_uri(),), **changes)


def test_fetch_a_file_url_verifies_and_installs_atomically(tmp_path: Path) -> None:
    source = _put(tmp_path / "mirror")
    dest = tmp_path / "dest"
    with registered(_local_spec(source)):
        path = fetch(NAME, dest_dir=dest, progress=False)  # file:// is local, so offline mode allows it
        assert path == dest / "fake-weights.bin" and path.read_bytes() == PAYLOAD
        assert _files(dest) == ["fake-weights.bin", "fake-weights.bin.sha256"]
        assert resolve(NAME, path=dest) == path


def test_fetch_defaults_to_env_then_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _put(tmp_path / "mirror")
    with registered(_local_spec(source)):
        assert fetch(NAME, progress=True) == _hub(tmp_path) / "fake-weights.bin"
        monkeypatch.setenv("WARPINV_WEIGHTS", str(tmp_path / "weights"))
        assert fetch(NAME, progress=False) == tmp_path / "weights" / "fake-weights.bin"
        assert resolve(NAME) == tmp_path / "weights" / "fake-weights.bin"


def test_fetch_with_a_wrong_checksum_leaves_no_file(tmp_path: Path) -> None:
    source = _put(tmp_path / "mirror", data=PAYLOAD[::-1])
    dest = tmp_path / "dest"
    with registered(_local_spec(source)), pytest.raises(ChecksumError) as info:
        fetch(NAME, dest_dir=dest, progress=False)
    assert source.as_uri() in str(info.value)
    assert _files(dest) == []


def test_fetch_replaces_a_corrupt_copy_only_with_a_verified_one(tmp_path: Path) -> None:
    source = _put(tmp_path / "mirror")
    dest = tmp_path / "dest"
    _put(dest, data=PAYLOAD[::-1])
    with registered(_local_spec(source)):
        path = fetch(NAME, dest_dir=dest, progress=False)
    assert path.read_bytes() == PAYLOAD


def test_fetch_without_a_published_checksum_still_installs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    source = _put(tmp_path / "mirror")
    monkeypatch.setenv("WARPINV_WEIGHTS", str(tmp_path / "dest"))
    with registered(_local_spec(source, sha256=None, size=None)):
        path = fetch(NAME, progress=False)
        assert check(NAME)[0] == reg.WeightStatus(NAME, reg.STATUS_UNVERIFIED, path)
    assert _sha256(PAYLOAD) in capsys.readouterr().out


def test_fetch_manual_entries_explain_how(tmp_path: Path) -> None:
    for name in ("ibrnet", "arcface-ir-se50", "goae-encoder-ffhq", "triplanenet-v2"):
        with pytest.raises(ManualDownloadError) as info:
            fetch(name, dest_dir=tmp_path, progress=False)
        assert REGISTRY[name].manual_instructions in str(info.value)
    assert _files(tmp_path) == []


def test_fetch_of_a_packaged_entry_returns_the_installed_file() -> None:
    if importlib.util.find_spec("lpips") is None:
        pytest.skip("lpips is not installed")
    assert fetch("lpips-alex-v0.1", progress=False).name == "alex.pth"


# --------------------------------------------------------------------------------------------------
# check and the registry's contents
# --------------------------------------------------------------------------------------------------


def test_check_lists_every_entry() -> None:
    statuses = check()
    assert [s.name for s in statuses] == list(REGISTRY)
    assert {s.status for s in statuses} <= STATUSES
    assert all((s.path is None) == (s.status == reg.STATUS_MISSING) for s in statuses)


def test_check_reports_each_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARPINV_WEIGHTS", str(tmp_path / "w"))
    unverifiable = _spec(name="test-unverifiable", filename="other.bin", sha256=None, size=None)
    with registered(_spec(), unverifiable):
        assert [s.status for s in check([NAME, "test-unverifiable"])] == [reg.STATUS_MISSING] * 2
        _put(tmp_path / "w")
        _put(tmp_path / "w", "other.bin")
        assert [s.status for s in check([NAME, "test-unverifiable"])] == [reg.STATUS_VERIFIED, reg.STATUS_UNVERIFIED]
        _put(tmp_path / "w", data=PAYLOAD[::-1])
        (status,) = check(NAME)
        assert status.status == reg.STATUS_MISMATCH and not status.ok and "sha256 mismatch" in status.detail


def test_every_entry_has_licence_used_by_and_a_way_to_get_it() -> None:
    for spec in REGISTRY.values():
        assert spec.licence.strip() and spec.used_by and all(u.strip() for u in spec.used_by), spec.name
        assert spec.source_kind in ("packaged", "manual", "direct"), spec.name
        assert spec.description and spec.provenance, spec.name


def test_required_entries_are_registered() -> None:
    files = {spec.filename for spec in REGISTRY.values()}
    required = {"ffhq512-128.pkl", "ffhqrebalanced512-128.pkl", "ffhqrebalanced512-64.pkl", "afhqcats512-128.pkl",
                "shapenetcars128-64.pkl", "model_ir_se50.pth", "20180402-114759-vggface2.pt", "model_255000.pth",
                "alexnet-owt-7be5be79.pth", "vgg16-397923af.pth", "alex.pth", "vgg.pth", "pnet.pt", "rnet.pt",
                "onet.pt", "encoder_FFHQ.pt", "afa_FFHQ.pt", "goae_FFHQ_ori.pt", "var2-128.pkl"}
    assert required <= files
    assert len(files) == len(REGISTRY), "file names must be unique (get_spec accepts them)"


def test_checksums_are_only_the_ones_the_references_give() -> None:
    published = {s.name: (s.checksum.kind, s.checksum.value) for s in REGISTRY.values() if s.checksum}
    assert published == {
        "arcface-ir-se50": ("md5", "ccee24aae1d36888fc42390ae39d1b36"),
        "torchvision-alexnet": ("sha256-prefix", "7be5be79"),
        "torchvision-vgg16": ("sha256-prefix", "397923af"),
    }
    assert REGISTRY["arcface-ir-se50"].size == 175_367_323
    # Full sha256s exist only for files inside the wheels; metrics.md §4/§8 give their first 8 and last 5 digits.
    measured = {"lpips-alex-v0.1": ("df73285e", "835c0"), "lpips-vgg-v0.1": ("a78928a0", "32868"),
                "lpips-squeeze-v0.1": ("4a5350f2", "1cf76"), "mtcnn-pnet": ("a2a71925", "49c8f"),
                "mtcnn-rnet": ("bbb937de", "f6a86"), "mtcnn-onet": ("165bfbe4", "0118d")}
    with_sha = {s.name: s.sha256 for s in REGISTRY.values() if s.sha256}
    assert set(with_sha) == set(measured)
    for name, (head, tail) in measured.items():
        assert with_sha[name].startswith(head) and with_sha[name].endswith(tail), name
    assert {s.size for s in REGISTRY.values() if s.name.startswith("mtcnn-") and s.size} == {28_570, 403_147, 1_559_269}


def test_eg3d_entries_point_at_ngc_and_match_the_backbone_presets() -> None:
    eg3d = [s for s in REGISTRY.values() if s.name.startswith("eg3d-") and "lpff" not in s.name]
    assert len(eg3d) == 5
    for spec in eg3d:
        assert spec.urls == ("https://api.ngc.nvidia.com/v2/models/org/nvidia/team/research/eg3d/1/files"
                             f"?redirect=true&path={spec.filename}",)
        assert "NVIDIA" in spec.licence and spec.checksum is None and spec.sha256 is None
    presets = pytest.importorskip("warpinv.backbone.presets")
    for preset in presets.PRESETS.values():
        assert preset.weights is None or preset.weights in REGISTRY


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
    assert check(name)[0].status == reg.STATUS_VERIFIED
    assert not path.with_name(path.name + ".sha256").exists(), "stamps never go inside an installed package"
    assert (package in sys.modules) == already_imported, "lookup must not import the package"


def test_weights_env_overrides_packaged_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec("lpips") is None:
        pytest.skip("lpips is not installed")
    packaged = resolve("lpips-alex-v0.1")
    copy = _put(tmp_path / "w", "alex.pth", packaged.read_bytes())
    monkeypatch.setenv("WARPINV_WEIGHTS", str(copy.parent))
    assert resolve("lpips-alex-v0.1") == copy


def test_readme_documents_every_entry() -> None:
    readme = (Path(reg.__file__).parent / "README.md").read_text()
    for spec in REGISTRY.values():
        assert f"`{spec.name}`" in readme and spec.filename in readme, spec.name


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------


def _run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    return run_weights_cli(argv, stdout=out), out.getvalue()


def test_cli_list_and_check_run_offline() -> None:
    code, text = _run(["list"])
    assert code == 0 and all(name in text for name in REGISTRY)
    code, text = _run(["weights", "check"])
    assert code == 0 and all(name in text for name in REGISTRY)
    assert _run(["list", "-v"])[0] == 0


def test_cli_check_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARPINV_WEIGHTS", str(tmp_path))
    with registered(_spec()):
        assert _run(["check", NAME])[0] == 0
        assert _run(["check", "--strict", NAME])[0] == 1
        _put(tmp_path, data=PAYLOAD[::-1])
        code, text = _run(["check", NAME])
        assert code == 1 and reg.STATUS_MISMATCH in text
    assert _run(["check", "no-such-weight"])[0] == 2


def test_cli_fetch(tmp_path: Path) -> None:
    source = _put(tmp_path / "mirror")
    with registered(_local_spec(source)):
        code, text = _run(["fetch", NAME, "--dest", str(tmp_path / "dest"), "--no-progress"])
    assert code == 0 and str(tmp_path / "dest" / "fake-weights.bin") in text
    assert _run(["fetch", "ibrnet"])[0] == 1
    assert _run(["fetch", "no-such-weight"])[0] == 2
    assert _run([])[0] == 2
    assert _run(["fetch"])[0] == 2


def test_cli_convert_calls_the_converter_lazily(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Path, Path, str]] = []

    def convert_network_pickle(src: Path, dst: Path, key: str = "G_ema") -> Any:
        calls.append((Path(src), Path(dst), key))
        return types.SimpleNamespace(state_dict={"a": 0, "b": 1}, init_kwargs={}, neural_rendering_resolution=128,
                                     metadata={})

    fake_module = types.ModuleType("warpinv.weights.generator_file")
    fake_module.convert_network_pickle = convert_network_pickle  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "warpinv.weights.generator_file", fake_module)
    src = _put(tmp_path, "net.pkl", b"not really a pickle")
    dst = tmp_path / "net.safetensors"
    code, text = _run(["convert", str(src), str(dst), "--key", "G"])
    assert code == 0 and calls == [(src, dst, "G")] and "2 tensors" in text
    assert _run(["convert", str(tmp_path / "absent.pkl"), str(dst)])[0] == 1


def test_add_weights_parser_sets_handlers_returning_ints() -> None:
    import argparse

    from warpinv.weights.cli import add_weights_parser

    parser = argparse.ArgumentParser()
    add_weights_parser(parser.add_subparsers(dest="command"))
    ns = parser.parse_args(["weights", "check", "mtcnn-pnet"])
    ns.out = io.StringIO()
    handler: Callable[[argparse.Namespace], int] = ns.func
    assert handler(ns) == 0 and "mtcnn-pnet" in ns.out.getvalue()
