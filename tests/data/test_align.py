"""EG3D's in-the-wild crop geometry, checked against the official formulas on synthetic landmark sets.

``_official_numbers`` below transcribes, line by line, what EG3D's ``crop_images_in_the_wild.py``
does with Deep3DFaceRecon's ``util/preprocess.py`` (``POS``, ``align_img``, ``resize_n_crop_img``):
float32 landmarks, ``lm[:, -1] = H - 1 - lm[:, -1]``, ``np.linalg.lstsq`` on the 10 x 8 system,
``s = rescale_factor / s``, ``astype(np.int32)`` for sizes and offsets, landmark transform of
``resize_n_crop_img``, then the centre crop ``int(1024/2 - 700/2)``.
"""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from warpinv.data.prepare.align import (
    LM3D_TEMPLATE,
    AlignmentError,
    crop_face,
    eg3d_crop_geometry,
    pos_fit,
    reference_eg3d_crop,
)


def _official_numbers(lm_xy: np.ndarray, w0: int, h0: int) -> dict:
    lm = lm_xy.astype(np.float32).reshape([-1, 2])
    lm[:, -1] = h0 - 1 - lm[:, -1]
    # POS(xp = lm.T, x = lm3D.T)
    xp, x = lm.transpose(), LM3D_TEMPLATE.transpose()
    npts = xp.shape[1]
    a = np.zeros([2 * npts, 8])
    a[0:2 * npts - 1:2, 0:3] = x.transpose()
    a[0:2 * npts - 1:2, 3] = 1
    a[1:2 * npts:2, 4:7] = x.transpose()
    a[1:2 * npts:2, 7] = 1
    b = np.reshape(xp.transpose(), [2 * npts, 1])
    k, _, _, _ = np.linalg.lstsq(a, b, rcond=None)
    r1, r2, stx, sty = k[0:3], k[4:7], k[3], k[7]
    s = (np.linalg.norm(r1) + np.linalg.norm(r2)) / 2
    t = np.stack([stx, sty], axis=0)
    s = 300 / s
    # resize_n_crop_img(img, lm, t, s, target_size=1024.)
    target_size = 1024.0
    w = (w0 * s).astype(np.int32)
    h = (h0 * s).astype(np.int32)
    # (the official ``float(x)`` of a 1-element array; NumPy 2 wants ``.item()``)
    left = (w / 2 - target_size / 2 + ((t[0] - w0 / 2) * s).item()).astype(np.int32)
    up = (h / 2 - target_size / 2 + ((h0 / 2 - t[1]) * s).item()).astype(np.int32)
    lm_new = np.stack([lm[:, 0] - t[0] + w0 / 2, lm[:, 1] - t[1] + h0 / 2], axis=1) * s
    lm_new = lm_new - np.reshape(np.array([(w / 2 - target_size / 2), (h / 2 - target_size / 2)]), [1, 2])
    # crop_images_in_the_wild.py: centre 700 of the 1024 image, then 512.
    c_left = int(1024 / 2 - 700 / 2)
    return {"t": t.reshape(2), "s": float(s), "w": int(w), "h": int(h), "left": int(left), "up": int(up),
            "lm_1024_flipped": lm_new, "c_left": c_left}


def _landmark_sets(n: int, seed: int = 0, min_scale: float = 20.0) -> list[tuple[np.ndarray, tuple[int, int]]]:
    """Random similarity transforms of a frontal 5-point layout, faces partly outside the photo too.

    ``min_scale`` (template units -> pixels) bounds how much the official crop enlarges the photo; the
    pixel tests keep it moderate because the step-by-step reference resizes the whole photo.
    """
    rng = np.random.default_rng(seed)
    base = LM3D_TEMPLATE[:, :2] * np.array([1.0, -1.0])
    out = []
    for _ in range(n):
        w0, h0 = int(rng.integers(200, 1600)), int(rng.integers(200, 1600))
        scale = rng.uniform(min_scale, 400)
        ang = rng.uniform(-0.4, 0.4)
        rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
        centre = rng.uniform([-0.1 * w0, -0.1 * h0], [1.1 * w0, 1.1 * h0])
        jitter = rng.normal(0, 0.03 * scale, (5, 2))
        out.append(((base @ rot.T) * scale + centre + jitter, (w0, h0)))
    return out


def test_template_is_load_lm3d() -> None:
    assert LM3D_TEMPLATE.shape == (5, 3)
    assert LM3D_TEMPLATE[0].tolist() == [-0.31148657, 0.29036078, 0.13377953]
    assert LM3D_TEMPLATE[2].tolist() == [0.0032535, -0.04617932, 0.55244243]
    assert LM3D_TEMPLATE[4].tolist() == [0.2484662, -0.38128236, 0.22235769]


def test_pos_recovers_a_scaled_orthographic_projection() -> None:
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    pts = 57.0 * LM3D_TEMPLATE @ q[:2].T + np.array([10.0, -4.0])
    t, s, k = pos_fit(pts)
    assert np.allclose(t, [10.0, -4.0]) and abs(s - 57.0) < 1e-9
    assert np.allclose(k[0:3], 57.0 * q[0]) and np.allclose(k[4:7], 57.0 * q[1])


@pytest.mark.parametrize("lm, size", _landmark_sets(40))
def test_geometry_matches_the_official_formulas(lm: np.ndarray, size: tuple[int, int]) -> None:
    ref = _official_numbers(lm, *size)
    g = eg3d_crop_geometry(lm, size)
    assert np.allclose(g.t, ref["t"], rtol=0, atol=1e-9)
    assert g.scale == pytest.approx(ref["s"], rel=1e-12)
    assert g.resized_size == (ref["w"], ref["h"])
    assert (g.left, g.up) == (ref["left"], ref["up"])
    assert g.window_origin == (ref["left"] + ref["c_left"], ref["up"] + ref["c_left"])
    # Our landmark map follows the official image operations (PIL resize by w/w0, h/h0, crop at
    # left/up + 162, scale 512/700; pixel centres at integers) ...
    ours = g.photo_to_output(lm)
    gx, gy = size[0] / ref["w"], size[1] / ref["h"]
    expect_x = ((lm[:, 0] + 0.5) / gx - (ref["left"] + ref["c_left"])) * 512 / 700 - 0.5
    expect_y = ((lm[:, 1] + 0.5) / gy - (ref["up"] + ref["c_left"])) * 512 / 700 - 0.5
    assert np.allclose(ours[:, 0], expect_x, atol=1e-6) and np.allclose(ours[:, 1], expect_y, atol=1e-6)
    # ... and agrees with Deep3DFaceRecon's own landmark transform (``lm * s`` in the 1024 image, y
    # measured upward from ``H - 1 - y``) up to its integer truncations (< 1 px) and the half-pixel
    # terms ``lm * s`` ignores: a PIL resize by s moves pixel centres by 0.5 (s - 1) px, and the
    # ``- 1`` of the row flip adds s, so y differs by -0.5 (s + 1) px at 1024.
    official_x = (ref["lm_1024_flipped"][:, 0] - ref["c_left"]) * 512 / 700
    official_y = (1024 - ref["lm_1024_flipped"][:, 1] - ref["c_left"]) * 512 / 700
    assert np.abs(ours[:, 0] - official_x - 0.5 * (ref["s"] - 1) * 512 / 700).max() < 1.5
    assert np.abs(ours[:, 1] - official_y + 0.5 * (ref["s"] + 1) * 512 / 700).max() < 1.5


def test_landmarks_end_up_where_eg3d_puts_faces() -> None:
    # A frontal layout: after the crop the template origin (between eyes and mouth) is at the centre.
    lm = LM3D_TEMPLATE[:, :2] * np.array([1.0, -1.0]) * 80 + np.array([400.0, 300.0])
    g = eg3d_crop_geometry(lm, (800, 600))
    out = g.photo_to_output(lm)
    # POS puts the projection of the template origin at the crop centre (255.5 in pixel indices),
    # and the template spans 300 px per unit at 1024, i.e. 300 * 512 / 700 at 512.
    # (Up to the integer truncations and the half-pixel shift of the 3.75x resize: < 3 px.)
    unit = 300 * 512 / 700
    assert abs(out[:, 0].mean() - (255.5 + unit * LM3D_TEMPLATE[:, 0].mean())) < 3
    assert abs(out[:, 1].mean() - (255.5 - unit * LM3D_TEMPLATE[:, 1].mean())) < 3
    assert np.allclose(out[1, 0] - out[0, 0], unit * (LM3D_TEMPLATE[1, 0] - LM3D_TEMPLATE[0, 0]), atol=1.5)


@pytest.mark.parametrize("lm, size", _landmark_sets(12, seed=3, min_scale=60))
def test_pixels_match_the_step_by_step_reference(lm: np.ndarray, size: tuple[int, int]) -> None:
    rng = np.random.default_rng(int(size[0]))
    small = rng.integers(0, 256, (size[1] // 8 + 1, size[0] // 8 + 1, 3), dtype=np.uint8)
    photo = Image.fromarray(small).resize(size, Image.BILINEAR)  # smooth, textured content
    ours, mask = crop_face(photo, eg3d_crop_geometry(lm, size))
    ref = reference_eg3d_crop(photo, lm)
    diff = np.abs(np.asarray(ours).astype(int) - np.asarray(ref).astype(int))
    assert ours.size == (512, 512) and mask.shape == (512, 512)
    # Pillow versions differ in the order of the two bicubic passes of a full resize (and round to
    # 8 bits in between), so pixels may differ by a grey level or two.
    assert diff.max() <= 2 and diff.mean() < 0.25


@pytest.mark.parametrize("lm, size", _landmark_sets(12, seed=5, min_scale=60))
def test_mask_marks_exactly_the_pixels_computed_from_the_photo(lm: np.ndarray, size: tuple[int, int]) -> None:
    white = Image.new("RGB", size, (255, 255, 255))
    ref = np.asarray(reference_eg3d_crop(white, lm))[..., 0]
    _, mask = crop_face(white, eg3d_crop_geometry(lm, size))
    assert (ref[mask] == 255).all()  # valid pixels never see the black padding
    # Invalid pixels are those the padding reaches (a few Lanczos ringing pixels may read 255).
    assert (ref[~mask] < 255).mean() > 0.9 if (~mask).any() else True


def test_crop_refuses_a_mismatched_image_and_bad_landmarks() -> None:
    lm = LM3D_TEMPLATE[:, :2] * np.array([1.0, -1.0]) * 80 + 200
    g = eg3d_crop_geometry(lm, (400, 400))
    with pytest.raises(AlignmentError):
        crop_face(Image.new("RGB", (300, 300)), g)
    with pytest.raises(AlignmentError, match=r"landmarks must be a \(5, 2\) array, got \(4, 2\)"):
        eg3d_crop_geometry(np.zeros((4, 2)), (400, 400))
    with pytest.raises(AlignmentError, match="NaN"):
        eg3d_crop_geometry(np.full((5, 2), np.nan), (400, 400))
    with pytest.raises(AlignmentError, match="degenerate"):
        eg3d_crop_geometry(np.zeros((5, 2)), (400, 400))
