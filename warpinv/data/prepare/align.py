"""EG3D's in-the-wild crop, computed from 5 landmarks without Deep3DFaceRecon's networks.

EG3D (``dataset_preprocessing/ffhq/crop_images_in_the_wild.py``) flips the landmark rows
(``y <- H - 1 - y``), calls Deep3DFaceRecon's ``align_img(im, lm, lm3d_std, target_size=1024,
rescale_factor=300)`` (``util/preprocess.py``), centre-crops 700 x 700 out of the 1024 x 1024 result
and resizes it to 512 x 512 with Lanczos. ``align_img`` needs only:

- ``POS``: a least-squares scaled-orthographic fit ``x_2d = s R[:2] X + t`` of the 5 landmarks to the
  5-point 3D template; its translation ``t`` and scale ``s`` (mean norm of the two fitted rows)
  drive the crop;
- ``resize_n_crop_img``: resize the whole photo by ``s' = rescale_factor / s`` (bicubic) to
  ``w = int(w0 s'), h = int(h0 s')`` and crop the ``1024`` window at
  ``left = int(w/2 - 512 + (t_x - w0/2) s')``, ``up = int(h/2 - 512 + (h0/2 - t_y) s')``
  (``int`` truncates toward zero, as the official ``astype(np.int32)``); PIL pads outside with black.

:func:`eg3d_crop_geometry` reproduces these numbers exactly. :func:`crop_face` produces the same
pixels without resizing the whole photo: it resizes only the final 700-pixel window (PIL's ``box``
resampling uses the same scale, the same filter support and the same edge handling as a full resize
followed by a crop; the two bicubic passes run horizontal first, as Pillow's ``ImagingResampleInner``
does), pastes it on black, then applies the official 700 -> 512 Lanczos step. Outputs agree with the
step-by-step reference (:func:`reference_eg3d_crop`) to within 2 grey levels: floating-point rounding
of the filter centres, and some Pillow builds run the two passes of a full resize in the other order
(8-bit rounding in between). The cost is a fraction of the reference's for large photos. It also
returns the validity mask (1 = the output pixel was computed from photo pixels only).

The template (:data:`LM3D_TEMPLATE`) is Deep3DFaceRecon's ``load_lm3d``: five points of
``BFM/similarity_Lm3D_all.mat`` (eye centres as the mean of the two corners of each eye, nose tip,
mouth corners), in BFM decimetres. The values are the ones printed in the ``align_img`` docstring of
Deep3DFaceReconstruction's (TensorFlow) ``preprocess_img.py`` and hard-coded in several downstream
ports (found with the reference search for ``-0.31148657``).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from warpinv.checks import check_finite, check_shape

#: 5-point 3D template (left eye, right eye, nose tip, mouth left, mouth right) as ``load_lm3d``
#: returns it; x right, y up, z toward the viewer (the nose has the largest z). "Left" is the
#: image-left point (the subject's right), the order MTCNN reports.
LM3D_TEMPLATE = np.array(
    [
        [-0.31148657, 0.29036078, 0.13377953],
        [0.30979887, 0.28972036, 0.13179526],
        [0.0032535, -0.04617932, 0.55244243],
        [-0.25216928, -0.38133916, 0.22405732],
        [0.2484662, -0.38128236, 0.22235769],
    ],
    dtype=np.float64,
)
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")

#: EG3D's in-the-wild constants (crop_images_in_the_wild.py).
TARGET_SIZE = 1024
RESCALE_FACTOR = 300.0
CENTER_CROP_SIZE = 700
OUTPUT_SIZE = 512
#: Support of PIL's Lanczos filter in input pixels per unit of scale.
_LANCZOS_SUPPORT = 3.0


class AlignmentError(ValueError):
    """Landmarks that cannot define a crop (wrong shape, non-finite, degenerate fit)."""


def check_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """``(5, 2)`` finite float array, else :class:`AlignmentError`."""
    lm = np.asarray(landmarks, dtype=np.float64)
    check_shape(lm, "5 2", "landmarks", error=AlignmentError)
    check_finite(lm, "landmarks", error=AlignmentError)
    return lm


def pos_fit(points_2d: np.ndarray, points_3d: np.ndarray = LM3D_TEMPLATE) -> tuple[np.ndarray, float, np.ndarray]:
    """Deep3DFaceRecon's ``POS``: least-squares ``x = k[0:3]·X + k[3]``, ``y = k[4:7]·X + k[7]``.

    Args:
        points_2d: ``(N, 2)`` image points, **y up** (the caller flips rows, as EG3D does).
        points_3d: ``(N, 3)`` model points.

    Returns:
        ``t (2,)`` = ``(k[3], k[7])``, ``s`` = mean of ``|k[0:3]|`` and ``|k[4:7]|``, and ``k (8,)``.

    Example:
        >>> t, s, _ = pos_fit(LM3D_TEMPLATE[:, :2] * 100 + 7)
        >>> [round(float(v), 6) for v in t], round(s, 6)
        ([7.0, 7.0], 100.0)
    """
    xp = np.asarray(points_2d, dtype=np.float64)
    x = np.asarray(points_3d, dtype=np.float64)
    n = xp.shape[0]
    a = np.zeros((2 * n, 8))
    a[0::2, 0:3] = x
    a[0::2, 3] = 1
    a[1::2, 4:7] = x
    a[1::2, 7] = 1
    b = xp.reshape(2 * n)
    k = np.linalg.lstsq(a, b, rcond=None)[0]
    s = (np.linalg.norm(k[0:3]) + np.linalg.norm(k[4:7])) / 2
    if not (np.isfinite(k).all() and s > 1e-3):
        raise AlignmentError(f"degenerate landmark fit (POS scale {s:.3g} is not a face size)")
    return np.array([k[3], k[7]]), float(s), k


@dataclass(frozen=True)
class CropGeometry:
    """Where EG3D's in-the-wild crop of one photo lies.

    Attributes:
        image_size: ``(w0, h0)`` of the photo.
        t: POS translation ``(t_x, t_y)`` in flipped (y-up) photo coordinates.
        pos_scale: POS scale (photo pixels per template unit).
        scale: ``rescale_factor / pos_scale``, the official resize factor ``s'``.
        resized_size: ``(w, h) = (int(w0 s'), int(h0 s'))``.
        left, up: top-left corner of the 1024 window in the resized photo.
        box: ``(x0, y0, x1, y1)`` of the final 700 window in photo pixel-edge coordinates
            (continuous; ``x = 0`` is the left edge of the first column).
        output_size: side of the output image (512).
    """

    image_size: tuple[int, int]
    t: tuple[float, float]
    pos_scale: float
    scale: float
    resized_size: tuple[int, int]
    left: int
    up: int
    box: tuple[float, float, float, float]
    output_size: int = OUTPUT_SIZE

    @property
    def window_origin(self) -> tuple[int, int]:
        """Top-left of the 700 window in the resized photo."""
        off = int(TARGET_SIZE / 2 - CENTER_CROP_SIZE / 2)
        return self.left + off, self.up + off

    def photo_to_output(self, points: np.ndarray) -> np.ndarray:
        """Map ``(N, 2)`` photo pixel coordinates (pixel centres at integers) to output pixels."""
        p = np.asarray(points, dtype=np.float64)
        x0, y0, x1, y1 = self.box
        sx = self.output_size / (x1 - x0)
        sy = self.output_size / (y1 - y0)
        return np.stack([(p[:, 0] + 0.5 - x0) * sx - 0.5, (p[:, 1] + 0.5 - y0) * sy - 0.5], axis=1)

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


def eg3d_crop_geometry(
    landmarks: np.ndarray,
    image_size: tuple[int, int],
    *,
    template: np.ndarray = LM3D_TEMPLATE,
    target_size: int = TARGET_SIZE,
    rescale_factor: float = RESCALE_FACTOR,
    center_crop_size: int = CENTER_CROP_SIZE,
    output_size: int = OUTPUT_SIZE,
) -> CropGeometry:
    """The official crop numbers for 5 landmarks in a photo of ``image_size = (w0, h0)``.

    Landmarks are MTCNN's ``(x, y)`` pixel coordinates (y down); like EG3D they are cast to float32
    and flipped to ``H - 1 - y`` before the fit.
    """
    lm = check_landmarks(landmarks).astype(np.float32)
    w0, h0 = int(image_size[0]), int(image_size[1])
    lm[:, 1] = h0 - 1 - lm[:, 1]
    t, pos_scale, _ = pos_fit(lm.astype(np.float64), template)
    s = rescale_factor / pos_scale
    if max(w0, h0) * s > 2**31 - 1:
        raise AlignmentError(f"the face is too small for EG3D's crop (scale {s:.3g} would resize the photo "
                             f"beyond 2^31 pixels per side)")
    w = int(np.int32(w0 * s))
    h = int(np.int32(h0 * s))
    left = int(np.int32(w / 2 - target_size / 2 + float((t[0] - w0 / 2) * s)))
    up = int(np.int32(h / 2 - target_size / 2 + float((h0 / 2 - t[1]) * s)))
    off = int(target_size / 2 - center_crop_size / 2)
    gx, gy = w0 / w, h0 / h
    box = ((left + off) * gx, (up + off) * gy, (left + off + center_crop_size) * gx,
           (up + off + center_crop_size) * gy)
    return CropGeometry((w0, h0), (float(t[0]), float(t[1])), pos_scale, float(s), (w, h), left, up,
                        tuple(float(v) for v in box), output_size)


def _valid_range(start: int, length: int, limit: int) -> tuple[int, int]:
    """Window pixels ``[j0, j1)`` whose resized-photo index ``start + j`` lies in ``[0, limit)``."""
    j0 = min(max(0, -start), length)
    j1 = max(min(length, limit - start), j0)
    return j0, j1


def _lanczos_valid(j0: int, j1: int, in_size: int, out_size: int) -> np.ndarray:
    """Output pixels of a Lanczos ``in_size -> out_size`` resize whose taps all lie in ``[j0, j1)``.

    Mirrors Pillow's tap range: ``center = (u + 0.5) * scale``, ``support = 3 * max(scale, 1)``,
    taps ``[int(center - support + 0.5), int(center + support + 0.5))`` clipped to the input.
    """
    scale = in_size / out_size
    support = _LANCZOS_SUPPORT * max(scale, 1.0)
    u = np.arange(out_size)
    center = (u + 0.5) * scale
    lo = np.clip((center - support + 0.5).astype(np.int64), 0, in_size)
    hi = np.clip((center + support + 0.5).astype(np.int64), 0, in_size)
    return (lo >= j0) & (hi <= j1)


def _resize_region(image: Image.Image, size: tuple[int, int], region: tuple[int, int, int, int]) -> Image.Image:
    """``image.resize(size, BICUBIC).crop(region)`` without resizing the whole image.

    Pillow resizes in two passes, rounding to 8 bits in between; a single ``resize(..., box=...)``
    call may order them differently from a full resize, so the passes are run explicitly, horizontal
    first (Pillow's ``ImagingResampleInner`` order): the horizontal one on the rows the vertical one
    reads (rows do not mix horizontally, so cutting them first is exact), then the vertical one.
    """
    w0, h0 = image.size
    w, h = size
    x0, y0, x1, y1 = region
    bx0, bx1 = x0 * w0 / w, x1 * w0 / w
    by0, by1 = y0 * h0 / h, y1 * h0 / h
    margin = 2.0 * max(h0 / h, 1.0) + 2  # bicubic support in source rows, plus rounding slack
    r0, r1 = max(0, math.floor(by0 - margin)), min(h0, math.ceil(by1 + margin))
    rows = image.crop((0, r0, w0, r1))
    horizontal = rows.resize((x1 - x0, r1 - r0), Image.BICUBIC, box=(bx0, 0, bx1, r1 - r0))
    return horizontal.resize((x1 - x0, y1 - y0), Image.BICUBIC, box=(0, by0 - r0, x1 - x0, by1 - r0))


def crop_face(image: Image.Image, geometry: CropGeometry) -> tuple[Image.Image, np.ndarray]:
    """Cut EG3D's crop out of ``image`` (RGB, of ``geometry.image_size``).

    Returns:
        The ``output_size`` RGB crop (black where the window leaves the photo, as officially) and a
        ``(output_size, output_size)`` bool mask, True where the output pixel was computed from photo
        pixels only.
    """
    if image.size != geometry.image_size:
        raise AlignmentError(f"image is {image.size}, geometry was computed for {geometry.image_size}")
    w, h = geometry.resized_size
    w0, h0 = geometry.image_size
    x0, y0 = geometry.window_origin
    n = CENTER_CROP_SIZE
    j0, j1 = _valid_range(x0, n, w)
    i0, i1 = _valid_range(y0, n, h)
    window = Image.new("RGB", (n, n), (0, 0, 0))
    if j1 > j0 and i1 > i0:
        window.paste(_resize_region(image, (w, h), (x0 + j0, y0 + i0, x0 + j1, y0 + i1)), (j0, i0))
    out = geometry.output_size
    crop = window.resize((out, out), Image.LANCZOS)
    mask = _lanczos_valid(i0, i1, n, out)[:, None] & _lanczos_valid(j0, j1, n, out)[None, :]
    return crop, mask


def reference_eg3d_crop(image: Image.Image, landmarks: np.ndarray) -> Image.Image:
    """The official pipeline step by step (resize the whole photo, crop 1024, crop 700, Lanczos 512).

    Slow and memory-hungry for large photos; kept as the reference that :func:`crop_face` is tested
    against.
    """
    g = eg3d_crop_geometry(landmarks, image.size)
    w, h = g.resized_size
    big = image.resize((w, h), Image.BICUBIC)
    im1024 = big.crop((g.left, g.up, g.left + TARGET_SIZE, g.up + TARGET_SIZE))
    off = int(TARGET_SIZE / 2 - CENTER_CROP_SIZE / 2)
    im700 = im1024.crop((off, off, off + CENTER_CROP_SIZE, off + CENTER_CROP_SIZE))
    return im700.resize((OUTPUT_SIZE, OUTPUT_SIZE), Image.LANCZOS)


def interocular_distance(landmarks: np.ndarray) -> float:
    """Distance between the two eye landmarks in pixels."""
    lm = check_landmarks(landmarks)
    return float(math.hypot(*(lm[1] - lm[0])))
