"""The catalogue of weight files: specs, lookup by name, and the facts recorded for every entry."""
from __future__ import annotations

from pathlib import Path

import pytest

import warpinv.weights
from tests.weights.fakes import NAME, make_spec
from warpinv.weights import REGISTRY, PublishedChecksum, UnknownWeightError, get_spec, registered


def test_get_spec_by_name_or_filename_and_unknown_names() -> None:
    assert get_spec("model_ir_se50.pth") is REGISTRY["arcface-ir-se50"]
    with pytest.raises(UnknownWeightError, match="arcface-ir-se50") as info:
        get_spec("arcface-ir-se5")
    assert isinstance(info.value, KeyError)


def test_registered_restores_the_registry() -> None:
    before = dict(REGISTRY)
    shadow = make_spec(name="ibrnet", filename="model_255000.pth")
    with registered(make_spec(), shadow):
        assert REGISTRY[NAME].filename == "fake-weights.bin"
        assert REGISTRY["ibrnet"] is shadow
    assert REGISTRY == before


def test_invalid_checksums_are_rejected() -> None:
    with pytest.raises(ValueError):
        PublishedChecksum("md5", "abc", "test")
    with pytest.raises(ValueError):
        PublishedChecksum("crc32", "0" * 8, "test")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        make_spec(sha256="A" * 64)
    with pytest.raises(ValueError):
        make_spec(licence=" ")
    with pytest.raises(ValueError):
        make_spec(used_by=())


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


def test_readme_documents_every_entry() -> None:
    readme = (Path(warpinv.weights.__file__).parent / "README.md").read_text()
    for spec in REGISTRY.values():
        assert f"`{spec.name}`" in readme and spec.filename in readme, spec.name
