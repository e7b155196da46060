"""FaceNet identity similarity (``id_facenet``): facenet-pytorch ``InceptionResnetV1`` (VGGFace2), cosine.

A second, named identity metric. No seed inversion paper uses it (they all report ArcFace IR-SE50 or
CurricularFace, metrics.md §8), so its numbers are comparable only with other ``id_facenet`` numbers.

Weights: facenet-pytorch's ``InceptionResnetV1(pretrained="vggface2")`` would download
``20180402-114759-vggface2.pt`` on construction. We build the architecture with ``pretrained=None``
and load the file that ``warpinv.weights.resolve("facenet-vggface2")`` finds (explicit path,
``$WARPINV_WEIGHTS``, the torch hub cache, or facenet-pytorch's own ``$TORCH_HOME/checkpoints``),
with ``torch.load(weights_only=True)``; the classifier head (``logits.*``) is dropped. The MTCNN
detector uses the P/R/O-nets shipped inside the facenet-pytorch wheel (registry entries
``mtcnn-pnet``/``mtcnn-rnet``/``mtcnn-onet``, sha256-verified).

Protocol:

1. Images in [-1, 1] (prediction clamped), any size.
2. Face crop, the same box for prediction and target:
   - ``crop="center"`` (default): the pSp/ArcFace face box of FFHQ-aligned images, rows
     35/256..223/256 and columns 32/256..220/256 of the image (warpinv's choice for aligned faces);
   - ``crop="mtcnn"``: the largest face MTCNN (facenet-pytorch defaults: min face 20 px, thresholds
     0.6/0.7/0.7, factor 0.709) finds in the **target**, margin 0; images where no face is found
     score NaN (TriPlaneNet skips such images);
   - ``crop="full"``: the whole image.
3. The crop is resized to 160x160 (antialiased bilinear; facenet-pytorch's tensor path uses area
   interpolation then rounds to uint8, we keep floats) and standardised as facenet-pytorch's
   ``fixed_image_standardization``: ``(255 x01 - 127.5) / 128`` = ``x * 127.5 / 128`` for x in [-1, 1].
4. ``InceptionResnetV1`` in eval mode -> 512-d unit embedding; score = cosine, per image, in [-1, 1].
   Mask: the prediction is composited onto the target outside the mask first.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from warpinv.checks import check_choice, check_weights_or_random
from warpinv.metrics.base import MetricInfo, PairMetric, composite, register_metric, resize

__all__ = ["FaceNetIdentity", "CROP_BOX", "INPUT_SIZE", "WEIGHT_NAME", "WEIGHT_FILE", "facenet_standardize"]

INPUT_SIZE = 160
#: Face box of FFHQ-aligned images as fractions of the image (pSp crop rows 35:223, cols 32:220 of 256).
CROP_BOX = (32 / 256, 35 / 256, 220 / 256, 223 / 256)  # x1, y1, x2, y2
WEIGHT_NAME = "facenet-vggface2"
WEIGHT_FILE = "20180402-114759-vggface2.pt"
MTCNN_NETS = ("pnet", "rnet", "onet")

Crop = Literal["center", "mtcnn", "full"]


def facenet_standardize(images: Tensor) -> Tensor:
    """[-1, 1] images -> facenet-pytorch's ``fixed_image_standardization`` of their 0..255 values."""
    return images * (127.5 / 128.0)


def _load_vggface2(path: Path) -> dict[str, Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{str(path)!r} is not a state dict of tensors (expected {WEIGHT_FILE})")
    return {key: value for key, value in state.items() if not key.startswith("logits.")}


class FaceNetIdentity(PairMetric):
    """Per-image FaceNet (InceptionResnetV1, VGGFace2) identity similarity.

    Args:
        weights: path of ``20180402-114759-vggface2.pt``; ``None`` resolves it with the weights registry
            (``MissingWeightsError`` when absent). Never downloads.
        allow_random: seeded random weights instead (``random_weights`` becomes True).
        seed: seed of the random weights.
        crop: ``"center"`` (default), ``"mtcnn"`` or ``"full"`` (see the module docstring).

    The inputs are not resized first: the face crop is taken from the images as given and resized to
    160x160, the resolution ``info`` records.
    """

    info = MetricInfo(
        name="id_facenet",
        higher_is_better=True,
        value_range=(-1.0, 1.0),
        resolution=INPUT_SIZE,
        input_range=(-1.0, 1.0),
        weights=(WEIGHT_FILE,),
        weight_names=(WEIGHT_NAME,),
        protocol="facenet-pytorch 2.5.3 InceptionResnetV1 (VGGFace2 weights 20180402-114759-vggface2.pt) cosine "
                 "similarity of unit 512-d embeddings, per image. Face crop (same box for both images): the FFHQ "
                 "face box rows 35/256-223/256, cols 32/256-220/256 (default), or MTCNN's largest face on the target "
                 "(crop='mtcnn'; NaN when none is found), or the whole image; resized to 160x160 (antialiased "
                 "bilinear), fixed_image_standardization ((x255 - 127.5) / 128). Mask: prediction composited onto "
                 "the target outside it.",
        comparable_to="No seed paper reports it (all use ArcFace IR-SE50 or CurricularFace): compare only with other "
                      "id_facenet numbers.",
    )

    def __init__(self, weights: str | os.PathLike[str] | None = None, allow_random: bool = False, seed: int = 0,
                 crop: Crop = "center") -> None:
        super().__init__(None)
        self.info = type(self).info  # computed at 160 whatever the input size
        check_choice(crop, ("center", "mtcnn", "full"), "crop")
        check_weights_or_random(weights, allow_random)
        from facenet_pytorch import InceptionResnetV1

        self.crop = crop
        if allow_random:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                self.net = InceptionResnetV1(pretrained=None, classify=False)
            self.random_weights, self.source = True, f"random weights (seed {seed})"
        else:
            from warpinv.weights import resolve

            path = resolve(WEIGHT_NAME, path=weights)
            state = _load_vggface2(path)
            with torch.random.fork_rng(devices=[]):
                self.net = InceptionResnetV1(pretrained=None, classify=False)
            try:
                self.net.load_state_dict(state, strict=True)
            except RuntimeError as err:
                raise ValueError(f"{str(path)!r} is not a FaceNet InceptionResnetV1 state dict: {err}") from err
            self.source = str(path)
            self.weight_files = {WEIGHT_NAME: str(path)}
        self.net.eval().requires_grad_(False)
        self.mtcnn = _build_mtcnn(self.weight_files) if crop == "mtcnn" else None

    def score(self, pred: Tensor, target: Tensor, mask: Tensor | None) -> Tensor:
        pred = composite(pred, target, mask)
        boxes = self._boxes(target)
        faces = torch.cat([self._crop(pred, boxes), self._crop(target, boxes)])
        embeddings = self.net(facenet_standardize(faces))
        emb_pred, emb_target = embeddings.split(pred.shape[0])
        scores = torch.nn.functional.cosine_similarity(emb_pred, emb_target, dim=1).clamp(-1, 1)
        found = torch.tensor([box is not None for box in boxes], device=scores.device)
        return torch.where(found, scores, torch.full_like(scores, float("nan")))

    def _boxes(self, target: Tensor) -> list[tuple[int, int, int, int] | None]:
        """Pixel boxes ``(x1, y1, x2, y2)`` per image (``None``: no face found)."""
        n, _, height, width = target.shape
        if self.crop == "full":
            return [(0, 0, width, height)] * n
        if self.crop == "center":
            x1, y1, x2, y2 = CROP_BOX
            return [(round(x1 * width), round(y1 * height), round(x2 * width), round(y2 * height))] * n
        assert self.mtcnn is not None
        pixels = ((target + 1) * 127.5).round().clamp(0, 255).permute(0, 2, 3, 1).float()
        self.mtcnn.device = pixels.device  # facenet-pytorch moves inputs to this attribute's device
        detected, _ = self.mtcnn.detect(pixels)
        boxes: list[tuple[int, int, int, int] | None] = []
        for found in detected:
            if found is None or len(found) == 0:
                boxes.append(None)
                continue
            x1, y1, x2, y2 = (float(v) for v in found[0])  # largest face first (select_largest=True)
            # facenet-pytorch extract_face with margin 0: int() of the box clipped to the image.
            box = (int(max(x1, 0)), int(max(y1, 0)), int(min(x2, width)), int(min(y2, height)))
            boxes.append(box if box[2] > box[0] and box[3] > box[1] else None)
        return boxes

    @staticmethod
    def _crop(images: Tensor, boxes: list[tuple[int, int, int, int] | None]) -> Tensor:
        crops = []
        for image, box in zip(images, boxes):
            x1, y1, x2, y2 = box if box is not None else (0, 0, image.shape[-1], image.shape[-2])
            crops.append(resize(image[None, :, y1:y2, x1:x2], INPUT_SIZE))
        return torch.cat(crops)


def _build_mtcnn(weight_files: dict[str, str]) -> nn.Module:
    """facenet-pytorch MTCNN with its P/R/O-nets loaded from the registry-resolved wheel files."""
    from facenet_pytorch import MTCNN

    from warpinv.weights import resolve

    paths = {net: resolve(f"mtcnn-{net}") for net in MTCNN_NETS}  # verified before anything is built
    mtcnn = MTCNN(image_size=INPUT_SIZE, margin=0, select_largest=True)
    for net, path in paths.items():
        getattr(mtcnn, net).load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
        weight_files[f"mtcnn-{net}"] = str(path)
    return mtcnn.eval().requires_grad_(False)


def _build(allow_random: bool = False, seed: int = 0, **options: Any) -> FaceNetIdentity:
    return FaceNetIdentity(allow_random=allow_random, seed=seed, **options)


register_metric(FaceNetIdentity.info, _build)
