"""Robust image reading: every PIL mode becomes RGB, EXIF orientation, precise failure statuses."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from warpinv.data.images import (
    ImageReadError,
    image_to_tensor,
    probe_image,
    read_image,
    tensor_to_image,
    to_rgb,
)


def _gradient(w: int = 40, h: int = 30) -> np.ndarray:
    x = np.linspace(0, 255, w)[None, :, None]
    y = np.linspace(0, 255, h)[:, None, None]
    return np.concatenate([np.broadcast_to(x, (h, w, 1)), np.broadcast_to(y, (h, w, 1)),
                           np.full((h, w, 1), 128.0)], axis=2).round().astype(np.uint8)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "1", "CMYK", "YCbCr", "I", "F", "RGB"])
def test_every_mode_becomes_rgb(tmp_path: Path, mode: str) -> None:
    src = Image.fromarray(_gradient())
    im = src.convert(mode)
    ext = {"CMYK": "jpg", "YCbCr": "jpg", "I": "tif", "F": "tif"}.get(mode, "png")
    path = tmp_path / f"x.{ext}"
    im.save(path, quality=95) if ext == "jpg" else im.save(path)
    out = read_image(path)
    assert out.mode == "RGB" and out.size == (40, 30)
    if mode in ("L", "LA", "I", "F"):  # grey levels preserved
        assert np.abs(np.asarray(out)[..., 0].astype(int) - np.asarray(src.convert("L")).astype(int)).max() <= 1


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 257, 32896], [65535, 1000, 40000]], dtype=np.uint16)
    path = tmp_path / "g16.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode == "I;16"
    out = np.asarray(read_image(path))[..., 0]
    assert out.tolist() == [[0, 1, 128], [255, 4, 156]]
    # PIL's own conversion would clip everything above 255 to white.
    assert np.asarray(Image.open(path).convert("RGB"))[0, 2, 0] == 255


def test_alpha_is_composited_over_the_background(tmp_path: Path) -> None:
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[:2, :, 3] = 255  # top half opaque red, bottom half transparent
    path = tmp_path / "a.png"
    Image.fromarray(rgba, "RGBA").save(path)
    out = np.asarray(read_image(path))
    assert out[0, 0].tolist() == [200, 0, 0]
    assert out[3, 0].tolist() == [255, 255, 255]
    assert np.asarray(read_image(path, background=(0, 0, 0)))[3, 0].tolist() == [0, 0, 0]


def test_palette_with_transparency(tmp_path: Path) -> None:
    im = Image.new("P", (4, 4), 1)
    im.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    im.info["transparency"] = 1
    path = tmp_path / "p.png"
    im.save(path, transparency=1)
    assert np.asarray(read_image(path))[0, 0].tolist() == [255, 255, 255]


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    arr = _gradient(40, 30)
    im = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rot.jpg"
    im.save(path, exif=exif.tobytes(), quality=98)
    assert probe_image(path).size == (30, 40)
    out = read_image(path)
    assert out.size == (30, 40)
    expected = np.asarray(im.transpose(Image.ROTATE_270))
    assert np.abs(np.asarray(out).astype(int) - expected.astype(int)).mean() < 3


def test_truncated_jpeg_is_corrupt(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.fromarray(_gradient(200, 200)).save(buf, format="JPEG")
    path = tmp_path / "t.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    assert info.value.status == "corrupt" and "t.jpg" in str(info.value)


def test_text_file_named_png_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("this is not a picture\n")
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    assert info.value.status == "not_an_image"
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty file"):
        probe_image(empty)


def test_png_with_broken_data_is_corrupt(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.fromarray(_gradient()).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    data[60:80] = b"\x00" * 20  # damage the compressed stream
    path = tmp_path / "broken.png"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    assert info.value.status == "corrupt"


def test_pixel_limit_refuses_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (300, 300)).save(path)
    with pytest.raises(ImageReadError) as info:
        read_image(path, max_pixels=300 * 299)
    assert info.value.status == "unreadable" and "max_pixels" in info.value.reason
    assert read_image(path, max_pixels=300 * 300).size == (300, 300)


def test_missing_file_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError) as info:
        read_image(tmp_path / "nope.png")
    assert info.value.status == "unreadable"


def test_first_frame_of_an_animation(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert np.asarray(read_image(path))[0, 0].tolist() == [255, 0, 0]


def test_tensor_round_trip() -> None:
    arr = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    t = image_to_tensor(Image.fromarray(arr))
    assert t.shape == (3, 5, 6) and t.dtype == torch.float32
    assert float(t.min()) >= -1 and float(t.max()) <= 1
    assert np.array_equal(np.asarray(tensor_to_image(t)), arr)
    # EG3D's conversion: (x * 127.5 + 128) truncated, with clamping.
    assert np.asarray(tensor_to_image(torch.full((3, 1, 1), 2.0)))[0, 0].tolist() == [255, 255, 255]
    with pytest.raises(ValueError):
        tensor_to_image(torch.zeros(1, 3, 2, 2))


def test_to_rgb_keeps_rgb_and_converts_bilevel() -> None:
    im = Image.new("RGB", (2, 2), (1, 2, 3))
    assert to_rgb(im) is im
    assert np.asarray(to_rgb(Image.new("1", (2, 2), 1)))[0, 0].tolist() == [255, 255, 255]
