"""Robust image reading: any PIL-readable file becomes an 8-bit RGB image, or a precise error.

Rules (the same for the data loader and ``warpinv data prepare``):

- EXIF orientation is applied (``ImageOps.exif_transpose``); a broken EXIF block is ignored with a
  note instead of failing the image.
- Modes: ``RGB`` as is; ``1``, ``L``, ``P``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV`` through PIL's
  converters; modes with alpha (``RGBA``, ``LA``, ``PA``, ``P``/``L``/``RGB`` with a transparency key)
  are composited over a background (white by default); 16-bit integer modes (``I;16``, ``I;16B``,
  ``I;16L``, ``I;16N``) are scaled by ``255 / 65535`` (PIL's own ``convert('RGB')`` would clip them to
  white); ``I`` (32-bit) is read as 8-bit when its values fit in 0..255, else as 16-bit when they fit
  in 0..65535, else scaled by its maximum; ``F`` (float) is read as [0, 1] when its maximum is <= 1,
  else clipped to 0..255.
- Truncated files fail (``corrupt``) as long as nobody sets PIL's global
  ``ImageFile.LOAD_TRUNCATED_IMAGES``; warpinv never does.
- Multi-frame files (GIF, TIFF) give their first frame.
- Failures raise :class:`ImageReadError` whose ``status`` is one of ``not_an_image`` (not a
  recognised image format, or an empty file), ``corrupt`` (recognised but the pixel data is broken or
  truncated) or ``unreadable`` (I/O error, or more pixels than ``max_pixels``).
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from warpinv.checks import check_shape

#: Largest image accepted by default: PIL's own decompression-bomb error threshold (2 x 89,478,485).
DEFAULT_MAX_PIXELS = 2 * 89_478_485
#: Background that transparent pixels are composited over.
DEFAULT_BACKGROUND = (255, 255, 255)

STATUS_NOT_AN_IMAGE = "not_an_image"
STATUS_CORRUPT = "corrupt"
STATUS_UNREADABLE = "unreadable"

_EXIF_ORIENTATION = 0x0112
_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N"}

__all__ = [
    "DEFAULT_BACKGROUND",
    "DEFAULT_MAX_PIXELS",
    "ImageInfo",
    "ImageReadError",
    "image_to_tensor",
    "probe_image",
    "read_image",
    "tensor_to_image",
    "to_rgb",
]


class ImageReadError(Exception):
    """An image that cannot be used; ``status`` says why (``not_an_image``, ``corrupt``, ``unreadable``)."""

    def __init__(self, path: str | os.PathLike[str], status: str, reason: str) -> None:
        super().__init__(f"{os.fspath(path)}: {status}: {reason}")
        self.path = os.fspath(path)
        self.status = status
        self.reason = reason


@dataclass
class ImageInfo:
    """What the header of an image says, without decoding its pixels.

    Attributes:
        size: ``(width, height)`` after EXIF orientation.
        mode: PIL mode of the stored pixels (e.g. ``RGB``, ``I;16``, ``CMYK``).
        format: PIL format name (``PNG``, ``JPEG``, ...).
        orientation: EXIF orientation tag (1 = none).
        notes: things the reader will do to it (mode conversion, rotation).
    """

    size: tuple[int, int]
    mode: str
    format: str | None
    orientation: int = 1
    notes: list[str] = field(default_factory=list)


def _open(path: Path, max_pixels: int) -> Image.Image:
    try:
        if path.stat().st_size == 0:
            raise ImageReadError(path, STATUS_NOT_AN_IMAGE, "empty file")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(path, STATUS_NOT_AN_IMAGE, "not a recognised image format") from None
    except Image.DecompressionBombError as err:
        raise ImageReadError(path, STATUS_UNREADABLE, f"too many pixels ({err})") from None
    except (OSError, ValueError, SyntaxError) as err:
        # Header-level failures of a recognised format (e.g. a PNG signature followed by garbage).
        status = STATUS_UNREADABLE if isinstance(err, (PermissionError, IsADirectoryError, FileNotFoundError)) \
            else STATUS_CORRUPT
        raise ImageReadError(path, status, f"{type(err).__name__}: {err}") from None
    w, h = im.size
    if w * h > max_pixels:
        im.close()
        raise ImageReadError(path, STATUS_UNREADABLE,
                             f"{w}x{h} = {w * h:,} pixels exceeds the limit of {max_pixels:,} (max_pixels)")
    if w < 1 or h < 1:
        im.close()
        raise ImageReadError(path, STATUS_CORRUPT, f"degenerate size {w}x{h}")
    return im


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_EXIF_ORIENTATION, 1)
        return int(value) if int(value) in range(1, 9) else 1
    except Exception:  # noqa: BLE001 - a broken EXIF block must not fail the image
        return 1


def probe_image(path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Read an image's header: size after EXIF orientation, mode, format (pixels are not decoded).

    Raises:
        ImageReadError: not an image, a broken header, or too many pixels.
    """
    path = Path(path)
    im = _open(path, max_pixels)
    try:
        orientation = _orientation(im)
        w, h = im.size
        if orientation in (5, 6, 7, 8):
            w, h = h, w
        notes = []
        if im.mode != "RGB":
            notes.append(f"mode {im.mode} -> RGB")
        if orientation != 1:
            notes.append(f"EXIF orientation {orientation} applied")
        return ImageInfo((w, h), im.mode, im.format, orientation, notes)
    finally:
        im.close()


def read_image(
    path: str | os.PathLike[str],
    *,
    background: tuple[int, int, int] = DEFAULT_BACKGROUND,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    draft_size: tuple[int, int] | None = None,
) -> Image.Image:
    """Decode an image file into an 8-bit ``RGB`` PIL image (EXIF orientation applied).

    Args:
        path: the file.
        background: RGB colour that transparent pixels are composited over.
        max_pixels: refuse larger images (status ``unreadable``) before decoding them.
        draft_size: for JPEGs, let the decoder produce a reduced image at least this large (fast
            previews for detection); ignored for other formats.

    Raises:
        ImageReadError: with ``status`` ``not_an_image``, ``corrupt`` or ``unreadable``.
    """
    path = Path(path)
    src = _open(path, max_pixels)
    try:
        if draft_size is not None and src.format == "JPEG":
            src.draft("RGB", draft_size)
        try:
            src.load()
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as err:
            raise ImageReadError(path, STATUS_CORRUPT, f"pixel data cannot be decoded ({type(err).__name__}: {err})") \
                from None
        im = src
        try:
            im = ImageOps.exif_transpose(src) or src
        except Exception:  # noqa: BLE001 - a broken EXIF block must not fail the image
            pass
        out = to_rgb(im, background=background)
        return out.copy() if out is src else out
    finally:
        src.close()


def to_rgb(im: Image.Image, *, background: tuple[int, int, int] = DEFAULT_BACKGROUND) -> Image.Image:
    """Any PIL image -> 8-bit ``RGB`` following the module's conversion rules.

    Example:
        >>> im = Image.fromarray(np.full((2, 2), 65535, dtype=np.uint16))
        >>> im.mode, to_rgb(im).getpixel((0, 0))
        ('I;16', (255, 255, 255))
    """
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in _SIXTEEN_BIT_MODES or mode in ("I", "F"):
        return Image.fromarray(_high_depth_to_uint8(im), "L").convert("RGB")
    has_alpha = mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in im.info
    if has_alpha:
        rgba = im.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    if mode == "1":
        return im.convert("L").convert("RGB")
    return im.convert("RGB")


def _high_depth_to_uint8(im: Image.Image) -> np.ndarray:
    mode = im.mode
    if mode in _SIXTEEN_BIT_MODES:
        arr = np.asarray(im.convert("I"), dtype=np.float64)
        return np.clip(np.round(arr * (255.0 / 65535.0)), 0, 255).astype(np.uint8)
    arr = np.asarray(im, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    top = float(finite.max()) if finite.size else 0.0
    arr = np.nan_to_num(arr, nan=0.0, posinf=top, neginf=0.0)
    if mode == "F":
        scale = 255.0 if top <= 1.0 else 1.0
    elif top <= 255:
        scale = 1.0
    elif top <= 65535:
        scale = 255.0 / 65535.0
    else:
        scale = 255.0 / top
    return np.clip(np.round(arr * scale), 0, 255).astype(np.uint8)


def image_to_tensor(im: Image.Image) -> Tensor:
    """8-bit RGB PIL image -> ``(3, H, W)`` float32 in ``[-1, 1]`` (``x / 127.5 - 1``)."""
    arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


def tensor_to_image(x: Tensor) -> Image.Image:
    """``(3, H, W)`` in ``[-1, 1]`` -> 8-bit RGB PIL image.

    Uses EG3D's ``gen_samples.py`` conversion ``(x * 127.5 + 128).clamp(0, 255)`` truncated to uint8,
    i.e. round-half-up of ``(x + 1) * 127.5``; :func:`image_to_tensor` inverts it to within 1/255.
    """
    check_shape(x, "3 H W", "image")
    arr = (x.detach().float().clamp(-1, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return Image.fromarray(arr.permute(1, 2, 0).cpu().numpy(), "RGB")

