"""Face detection with facenet-pytorch's MTCNN: boxes, probabilities and 5 landmarks, batched.

The P/R/O-Net weights ship inside the facenet-pytorch wheel (``facenet_pytorch/data/*.pt``); nothing
is downloaded. The landmark order is MTCNN's, the same as EG3D's ``batch_mtcnn.py``: left eye,
right eye, nose, mouth left, mouth right (image-left first).

Large photos are detected on a reduced copy (longest side at most ``max_side``; JPEGs are decoded
reduced directly) and the results are scaled back to the photo's pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

#: MTCNN's default stage thresholds and pyramid factor (facenet-pytorch defaults).
MTCNN_THRESHOLDS = (0.6, 0.7, 0.7)
MTCNN_FACTOR = 0.709
#: MTCNN cannot look at images smaller than its 12-pixel P-Net window.
MIN_DETECTABLE_SIDE = 12


@dataclass
class Face:
    """One detection in photo pixel coordinates.

    Attributes:
        box: ``(x0, y0, x1, y1)``.
        confidence: MTCNN's O-Net face probability.
        landmarks: ``(5, 2)`` ``(x, y)`` pixel coordinates.
    """

    box: tuple[float, float, float, float]
    confidence: float
    landmarks: np.ndarray

    @property
    def size(self) -> float:
        """``min(width, height)`` of the box, the size compared with ``min_face_size``."""
        return float(min(self.box[2] - self.box[0], self.box[3] - self.box[1]))

    @property
    def extent(self) -> float:
        """``width + height``, EG3D's ``batch_mtcnn.py`` criterion for "the biggest face"."""
        return float((self.box[2] - self.box[0]) + (self.box[3] - self.box[1]))

    def scaled(self, factor: float) -> Face:
        """The detection with coordinates divided by ``factor`` (detection scale -> photo scale)."""
        return Face(tuple(float(v) / factor for v in self.box), self.confidence, self.landmarks / factor)

    def to_dict(self) -> dict:
        return {"box": [round(v, 3) for v in self.box], "confidence": round(self.confidence, 6),
                "landmarks": np.round(self.landmarks, 3).tolist()}


class FaceDetector:
    """Batched MTCNN on CPU (or a given device), built lazily from the wheel's weights.

    Args:
        device: torch device for the three networks.
        min_face_size: MTCNN's pyramid start (smallest face looked for, detection pixels).
    """

    def __init__(self, device: str | torch.device = "cpu", min_face_size: int = 20) -> None:
        self.device = torch.device(device)
        self.min_face_size = int(min_face_size)
        self._mtcnn = None

    @property
    def mtcnn(self):  # noqa: ANN201 - facenet_pytorch.MTCNN, imported lazily
        if self._mtcnn is None:
            from facenet_pytorch import MTCNN

            self._mtcnn = MTCNN(keep_all=True, device=self.device, min_face_size=self.min_face_size,
                                thresholds=list(MTCNN_THRESHOLDS), factor=MTCNN_FACTOR, post_process=False)
        return self._mtcnn

    def detect(self, images: list[np.ndarray]) -> list[list[Face]]:
        """Detect faces in images of one size.

        Args:
            images: ``(H, W, 3)`` uint8 RGB arrays, all of the same shape.

        Returns:
            Per image, the faces sorted by decreasing confidence (empty when none).
        """
        if not images:
            return []
        shape = images[0].shape
        if any(im.shape != shape for im in images):
            raise ValueError("FaceDetector.detect needs images of one size; group them first")
        if len(shape) != 3 or shape[2] != 3 or images[0].dtype != np.uint8:
            raise ValueError(f"expected (H, W, 3) uint8 images, got {shape} {images[0].dtype}")
        if min(shape[:2]) < MIN_DETECTABLE_SIDE:
            return [[] for _ in images]
        from facenet_pytorch.models.utils.detect_face import detect_face

        m = self.mtcnn
        batch = np.stack(images)
        with torch.no_grad():
            boxes, points = detect_face(batch, m.min_face_size, m.pnet, m.rnet, m.onet, m.thresholds, m.factor,
                                        m.device)
        out: list[list[Face]] = []
        for b, p in zip(boxes, points):
            b = np.asarray(b, dtype=np.float64).reshape(-1, 5)
            p = np.asarray(p, dtype=np.float64).reshape(-1, 5, 2)
            faces = [Face(tuple(float(v) for v in b[i, :4]), float(b[i, 4]), p[i]) for i in range(len(b))]
            faces.sort(key=lambda f: -f.confidence)
            out.append(faces)
        return out
