"""ArcFace identity similarity (``id_arcface``): cosine of IR-SE50 embeddings, the pSp/e4e ``IDLoss`` protocol.

Protocol (pSp ``criteria/id_loss.py``, also shipped by PTI, HFGI3D and E3DGE):

1. Images are float tensors ``(N, 3, H, W)``, RGB, in **[-1, 1]**, square.
2. Resolution **256x256**. Larger square inputs (EG3D renders 512x512) are first reduced with
   ``AdaptiveAvgPool2d((256, 256))``, the pSp ``face_pool`` (an exact 2x2 box filter for 512 -> 256).
   Note that torchvision's antialiased bilinear ``Resize`` gives slightly different pixels; inputs
   smaller than 256 are rejected rather than upsampled.
3. Crop rows 35:223 and columns 32:220 (188x188, asymmetric on purpose), then
   ``AdaptiveAvgPool2d((112, 112))`` (windows floor(i*188/112) .. ceil((i+1)*188/112); not a bilinear
   resize). No further normalisation: [-1, 1] already equals TreB1eN's ``Normalize(0.5, 0.5)``.
4. IR-SE50 in eval mode -> 512-d embedding with unit l2 norm (``model_ir_se50.pth``, md5
   ccee24aae1d36888fc42390ae39d1b36, 175,367,323 bytes as published by E3DGE's download script).
5. Score = cosine similarity of the prediction's and the target's embeddings, **per image**, in
   **[-1, 1]**, higher is better; average over images yourself (the benchmark aggregates rows).

Comparability: same network and preprocessing as the pSp/e4e ``IDLoss``, the IR-SE50 ID term that PTI
and HFGI3D configure, and E3DGE's ID metric (code-verified). HFGI3D Tab. 3 and In-N-Out Tab. 1/2 report
"ArcFace" cosine but publish no evaluation code, so their scoring resolution is unconfirmed. It is
**not** comparable to the ID reported by pSp/e4e/TriPlaneNet papers (CurricularFace IR-101 after MTCNN
alignment), nor to TriPlaneNet v1's rescaled ``ID * 0.5 + 0.5``.

Example:
    >>> import torch
    >>> a = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [1.0, 1.0]]), dim=1)
    >>> b = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [-1.0, -1.0]]), dim=1)
    >>> identity_similarity(a, b)
    tensor([ 1., -1.])
    >>> arcface_preprocess(torch.zeros(2, 3, 256, 256)).shape
    torch.Size([2, 3, 112, 112])
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from warpinv.checks import check_same_device, check_same_shape, check_shape, check_weights_or_random
from warpinv.metrics.base import MetricInfo, WrappedPairMetric, check_images, register_metric
from warpinv.metrics.irse50 import EMBEDDING_DIM, INPUT_SIZE, IRSE50

__all__ = [
    "ArcFaceIdentity",
    "IRSE50",
    "MetricInfo",
    "arcface_preprocess",
    "identity_similarity",
    "load_irse50_state_dict",
    "resize_to_metric_resolution",
    "CROP_ROWS",
    "CROP_COLS",
    "RESOLUTION",
    "WEIGHT_NAME",
    "WEIGHT_FILE",
]

RESOLUTION = 256
#: Crop of the 256x256 image (pSp ``extract_feats``): rows 35:223, columns 32:220.
CROP_ROWS = (35, 223)
CROP_COLS = (32, 220)
#: Registry name and published file name of the weights.
WEIGHT_NAME = "arcface-ir-se50"
WEIGHT_FILE = "model_ir_se50.pth"


_PROTOCOL = (
    "ArcFace IR-SE50 (model_ir_se50.pth) cosine similarity of l2-normalised 512-d embeddings, per image. "
    "Input RGB in [-1, 1] at 256x256 (larger square inputs reduced with AdaptiveAvgPool2d((256, 256)) as the "
    "pSp face_pool; 512 -> 256 is an exact 2x2 box), crop rows 35:223 / cols 32:220, "
    "AdaptiveAvgPool2d((112, 112)), network in eval mode. Comparable to the pSp/e4e IDLoss and the IR-SE50 "
    "ID of PTI, HFGI3D and E3DGE (E3DGE code-verified; HFGI3D Tab. 3 and In-N-Out Tab. 1/2 report ArcFace "
    "cosine without published eval code, resolution unconfirmed). Not comparable to the CurricularFace "
    "IR-101 + MTCNN ID of pSp/e4e/TriPlaneNet papers, nor to TriPlaneNet v1's ID*0.5+0.5."
)


# --------------------------------------------------------------------------------------------- functions


def arcface_preprocess(images: Tensor) -> Tensor:
    """Crop the face region of 256x256 images and pool it to the network's 112x112 input.

    Args:
        images: ``(N, 3, 256, 256)`` in [-1, 1].

    Returns:
        ``(N, 3, 112, 112)``: ``images[:, :, 35:223, 32:220]`` through ``adaptive_avg_pool2d(., 112)``.

    Raises:
        ValueError: the input is not ``(N, 3, 256, 256)``.
    """
    check_shape(images, f"N 3 {RESOLUTION} {RESOLUTION}", "arcface_preprocess input",
                note="; resize with resize_to_metric_resolution() first")
    crop = images[:, :, CROP_ROWS[0]:CROP_ROWS[1], CROP_COLS[0]:CROP_COLS[1]]
    return F.adaptive_avg_pool2d(crop, (INPUT_SIZE, INPUT_SIZE))


def resize_to_metric_resolution(images: Tensor) -> Tensor:
    """Bring square images to 256x256 with ``adaptive_avg_pool2d`` (the pSp ``face_pool``).

    Args:
        images: ``(N, C, S, S)`` with ``S >= 256``.

    Returns:
        ``(N, C, 256, 256)``; the input itself when ``S == 256``.

    Raises:
        ValueError: non-square or smaller than 256 (upsampling would change what the metric measures).
    """
    height, width = images.shape[-2:]
    if height != width:
        raise ValueError(f"id_arcface expects square face images, got {height}x{width}")
    if height < RESOLUTION:
        raise ValueError(f"id_arcface is defined at {RESOLUTION}x{RESOLUTION}; got {height}x{width}, which would "
                         "need upsampling (not part of the protocol)")
    if height == RESOLUTION:
        return images
    return F.adaptive_avg_pool2d(images, (RESOLUTION, RESOLUTION))


def identity_similarity(emb_a: Tensor, emb_b: Tensor) -> Tensor:
    """Per-row cosine similarity of two embedding batches.

    Args:
        emb_a: ``(N, D)`` embeddings (IR-SE50 outputs are already unit length).
        emb_b: ``(N, D)``.

    Returns:
        ``(N,)`` in [-1, 1].

    Raises:
        ValueError: shapes differ or are not 2-D.
    """
    if emb_a.ndim != 2 or emb_a.shape != emb_b.shape:
        raise ValueError(f"identity_similarity expects two (N, D) tensors of equal shape, got "
                         f"{tuple(emb_a.shape)} and {tuple(emb_b.shape)}")
    return F.cosine_similarity(emb_a, emb_b, dim=1).clamp(-1.0, 1.0)


def load_irse50_state_dict(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Read an IR-SE50 state dict: ``model_ir_se50.pth`` (``weights_only`` unpickling) or a ``.safetensors``.

    BatchNorm ``num_batches_tracked`` counters absent from old-format files are filled with 0 (they are
    unused in eval mode), so the result loads with ``strict=True``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file does not hold a mapping of tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IR-SE50 weight file {str(path)!r} does not exist (expected {WEIGHT_FILE})")
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        raw: object = load_file(str(path), device="cpu")
    else:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(raw, Mapping) or not all(isinstance(v, Tensor) for v in raw.values()):
        raise ValueError(f"{str(path)!r} is not a state dict of tensors "
                         f"(expected the bare state dict of {WEIGHT_FILE})")
    state = dict(raw)
    for key in [k for k in state if k.endswith(".running_var")]:
        state.setdefault(key[: -len("running_var")] + "num_batches_tracked", torch.zeros((), dtype=torch.long))
    return state


def _resolve_default_weights() -> Path:
    """Path of ``model_ir_se50.pth`` from the weights registry (never downloads).

    Raises:
        MissingWeightsError: from the registry, unchanged, when the file is on no searched path.
        ImportError: the registry is not importable.
    """
    try:
        from warpinv.weights import resolve
    except ImportError as err:
        raise ImportError(f"the weights registry (warpinv.weights.resolve) is unavailable, so {WEIGHT_FILE} cannot "
                          "be located; pass weights=PATH, or allow_random=True for a weight-free run") from err
    try:
        return Path(resolve(WEIGHT_NAME))
    except KeyError:  # UnknownWeightError: a registry that knows the file only by its published name
        return Path(resolve(WEIGHT_FILE))


# ------------------------------------------------------------------------------------------ input checks


def _check_pair(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    pred, target = check_images(pred, "pred"), check_images(target, "target")
    check_same_shape(pred, target)
    return pred, target


# ---------------------------------------------------------------------------------------------- metric


def _new_network() -> IRSE50:
    with torch.random.fork_rng(devices=[]):  # default initialisation must not move the user's RNG
        return IRSE50()


class ArcFaceIdentity(nn.Module):
    """Per-image ArcFace (IR-SE50) identity similarity between predictions and targets.

    Args:
        weights: path of ``model_ir_se50.pth`` (or a converted ``.safetensors``). ``None`` looks the file up
            with ``warpinv.weights.resolve("arcface-ir-se50")``, whose ``MissingWeightsError`` propagates.
        allow_random: build seeded random weights instead of loading any file (tests, smoke runs). The
            scores are then meaningless as identity measures; ``random_weights`` is ``True`` and ``source``
            says so. Cannot be combined with ``weights``.
        seed: seed of the random weights.

    Call: ``metric(pred, target)`` with ``(N, 3, H, W)`` (or ``(3, H, W)``) images in [-1, 1], square,
    ``H >= 256`` -> ``(N,)`` cosine similarities in [-1, 1]. Runs without gradients; the network is
    always in eval mode.

    Attributes:
        info: the metric's ``MetricInfo`` (also exposed as class attributes ``name``,
            ``higher_is_better``, ``value_range``, ``resolution``, ``weights``, ``protocol``).
        random_weights: whether the network holds random weights.
        source: where the weights came from (a path, or "random weights (seed S)").
    """

    info: ClassVar[MetricInfo] = MetricInfo(
        name="id_arcface",
        higher_is_better=True,
        value_range=(-1.0, 1.0),
        resolution=RESOLUTION,
        input_range=(-1.0, 1.0),
        weights=(WEIGHT_FILE,),
        protocol=_PROTOCOL,
        comparable_to="pSp/e4e IDLoss and the IR-SE50 ID of PTI, HFGI3D and E3DGE (E3DGE code-verified); HFGI3D "
                      "Tab. 3 and In-N-Out Tab. 1/2 ArcFace ID (no eval code published, resolution unconfirmed). Not "
                      "the CurricularFace + MTCNN ID of pSp/e4e/TriPlaneNet papers, nor TriPlaneNet v1's ID*0.5+0.5.",
        weight_names=(WEIGHT_NAME,),
    )
    name: ClassVar[str] = info.name
    higher_is_better: ClassVar[bool] = info.higher_is_better
    value_range: ClassVar[tuple[float, float]] = info.value_range
    resolution: ClassVar[int] = info.resolution
    weights: ClassVar[tuple[str, ...]] = info.weights
    protocol: ClassVar[str] = info.protocol

    def __init__(self, weights: str | Path | None = None, allow_random: bool = False, *, seed: int = 0) -> None:
        super().__init__()
        check_weights_or_random(weights, allow_random)
        if allow_random:
            self.net = _new_network().randomize_(seed)
            self.random_weights, self.source = True, f"random weights (seed {seed})"
        else:
            path = Path(weights) if weights is not None else _resolve_default_weights()
            state = load_irse50_state_dict(path)  # fails before the network is allocated
            self.net = _new_network()
            self._load(state, path)
            self.random_weights, self.source = False, str(path)
        self.net.eval().requires_grad_(False)

    def _load(self, state: dict[str, Tensor], path: Path) -> None:
        try:
            self.net.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise ValueError(f"{str(path)!r} is not an IR-SE50 ({WEIGHT_FILE}) state dict: {err}") from err

    def train(self, mode: bool = True) -> ArcFaceIdentity:
        """Keep the network in eval mode whatever the parent module does (BatchNorm statistics, no Dropout)."""
        super().train(mode)
        self.net.eval()
        return self

    @torch.no_grad()
    def embed(self, images: Tensor) -> Tensor:
        """Embeddings of validated images.

        Args:
            images: ``(N, 3, S, S)`` or ``(3, S, S)`` in [-1, 1], ``S >= 256``.

        Returns:
            ``(N, 512)`` unit-norm embeddings.
        """
        return self._embed(check_images(images, "images"))

    def embed_with_grad(self, images: Tensor) -> Tensor:
        """:meth:`embed` with autograd (the identity loss of training): ``(N, 3, S, S)`` -> ``(N, 512)``."""
        return self._embed(images)

    def _embed(self, images: Tensor) -> Tensor:
        parameter = next(self.net.parameters())
        check_same_device(images, parameter, ("images", "the metric"), hint="; move it with metric.to(device)")
        crops = arcface_preprocess(resize_to_metric_resolution(images.to(parameter.dtype)))
        embedding = self.net(crops)
        assert embedding.shape[1] == EMBEDDING_DIM
        return embedding

    @torch.no_grad()
    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Per-image identity similarity.

        Args:
            pred: ``(N, 3, S, S)`` or ``(3, S, S)`` in [-1, 1], ``S >= 256``.
            target: same shape as ``pred``.

        Returns:
            ``(N,)`` cosine similarities in [-1, 1] (``N = 1`` for single images).
        """
        pred, target = _check_pair(pred, target)
        embeddings = self._embed(torch.cat([pred, target]))
        emb_pred, emb_target = embeddings.split(pred.shape[0])
        return identity_similarity(emb_pred, emb_target)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, source={self.source!r}"


#: The registered ``id_arcface`` resizes to 256 like every pair metric (``ArcFaceIdentity`` itself pools).
_REGISTERED_INFO = replace(ArcFaceIdentity.info, protocol=_PROTOCOL.replace(
    "larger square inputs reduced with AdaptiveAvgPool2d((256, 256)) as the pSp face_pool; 512 -> 256 is an exact "
    "2x2 box", "inputs of any other size resized with antialiased bilinear interpolation, as every warpinv pair "
    "metric, and the prediction clamped to [-1, 1]; mask: prediction composited onto the target outside it"))


def _build_id_arcface(allow_random: bool = False, seed: int = 0, weights: str | Path | None = None,
                      resolution: int | None = RESOLUTION) -> WrappedPairMetric:
    net = ArcFaceIdentity(weights, allow_random, seed=seed)
    files = {} if net.random_weights else {WEIGHT_NAME: net.source}
    return WrappedPairMetric(net, _REGISTERED_INFO, resolution, files)


register_metric(_REGISTERED_INFO, _build_id_arcface)
