"""Synthetic occluders: coverage, masks that are exactly the pasted pixels, the shape of each kind, seeding."""
from __future__ import annotations

import numpy as np
import pytest

from warpinv.data.occluders import MAX_OCCLUDERS, OCCLUDER_KINDS, check_occluder_kinds, occlude


def _image(size: int = 128, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def _components(mask: np.ndarray) -> int:
    """Number of 4-connected components of ``mask (H, W)`` bool."""
    seen = np.zeros_like(mask)
    count = 0
    for start in zip(*np.nonzero(mask)):
        if seen[start]:
            continue
        count += 1
        stack = [start]
        seen[start] = True
        while stack:
            y, x = stack.pop()
            for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
    return count


@pytest.mark.parametrize("kinds", [OCCLUDER_KINDS, *[(k,) for k in OCCLUDER_KINDS]])
def test_coverage_and_mask_is_exactly_the_pasted_pixels(kinds: tuple[str, ...]) -> None:
    image = _image()
    before = image.copy()
    for count in (1, 2, 4):
        for seed in range(6):
            occ = occlude(image, count, kinds, np.random.default_rng([seed, count]))
            assert 0.05 <= occ.coverage <= 0.25, (kinds, count, seed, occ.coverage)
            assert occ.mask.dtype == bool and occ.mask.shape == (128, 128) and occ.image.shape == (128, 128, 3)
            assert np.array_equal(occ.image[~occ.mask], image[~occ.mask])  # untouched outside
            changed = (occ.image != image).any(axis=-1)
            assert changed[occ.mask].mean() > 0.9  # pasted colours replace the pixels inside
            assert len(occ.kinds) == count and set(occ.kinds) <= set(kinds)
    assert np.array_equal(image, before)  # the input is not modified


def test_same_generator_state_same_occlusion() -> None:
    image = _image()
    a = occlude(image, 3, OCCLUDER_KINDS, np.random.default_rng([4, 2]))
    b = occlude(image, 3, OCCLUDER_KINDS, np.random.default_rng([4, 2]))
    c = occlude(image, 3, OCCLUDER_KINDS, np.random.default_rng([5, 2]))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask) and a.kinds == b.kinds
    assert not np.array_equal(a.mask, c.mask)


def test_patch_is_one_solid_rectangle() -> None:
    for seed in range(5):
        occ = occlude(_image(), 1, ["patch"], np.random.default_rng(seed))
        ys, xs = np.nonzero(occ.mask)
        box = occ.mask[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
        assert box.all()  # the bounding box is full: a rectangle
        assert len(np.unique(occ.image[occ.mask], axis=0)) == 1  # one colour


def test_stripes_are_two_to_four_parallel_bars() -> None:
    counts = set()
    for seed in range(12):
        occ = occlude(_image(), 1, ["stripes"], np.random.default_rng(seed))
        counts.add(_components(occ.mask))
        assert len(np.unique(occ.image[occ.mask], axis=0)) == 1
    assert counts <= {2, 3, 4} and len(counts) > 1, counts


def test_glasses_sit_on_the_eye_band_with_two_lenses() -> None:
    for seed in range(8):
        occ = occlude(_image(), 1, ["glasses"], np.random.default_rng(seed))
        ys, xs = np.nonzero(occ.mask)
        assert 0.3 * 128 <= ys.mean() <= 0.5 * 128  # upper middle of the image
        assert abs(xs.mean() - 64) < 0.1 * 128  # centred horizontally
        assert occ.mask[:, :56].sum() > 0.3 * occ.mask.sum() and occ.mask[:, 72:].sum() > 0.3 * occ.mask.sum()
        assert _components(occ.mask) == 1  # joined by the bridge


def test_small_glasses_are_rings_and_large_ones_sunglasses() -> None:
    """The frame thickness follows the area: at 2-6 % the lenses have holes, at 8-20 % they are solid."""
    for seed in range(4):
        thin = occlude(_image(), 1, ["glasses"], np.random.default_rng(seed), coverage=(0.02, 0.06))
        assert _components(~thin.mask) == 3  # the background and a hole in each lens
        solid = occlude(_image(), 1, ["glasses"], np.random.default_rng(seed))
        assert _components(~solid.mask) == 1


def test_stickers_are_textured_blobs() -> None:
    for seed in range(6):
        occ = occlude(_image(), 1, ["sticker"], np.random.default_rng(seed))
        assert _components(occ.mask) == 1
        assert len(np.unique(occ.image[occ.mask], axis=0)) >= 2  # checkerboard or noise, not a solid fill


@pytest.mark.parametrize(("args", "error", "match"), [
    ({"count": 0}, ValueError, "count must be >= 1"),
    ({"count": MAX_OCCLUDERS + 1}, ValueError, "count must be at most 8"),
    ({"count": True}, TypeError, "count must be an int"),
    ({"kinds": ["hat"]}, ValueError, r"kinds must name kinds among .*unknown \['hat'\]"),
    ({"kinds": "patch"}, TypeError, "kinds must be a list"),
    ({"kinds": []}, ValueError, "at least one kind"),
    ({"kinds": ["patch", "patch"]}, ValueError, "must not repeat"),
    ({"image": np.zeros((32, 32), np.uint8)}, ValueError, r"image must be an \(H, W, 3\) uint8 array"),
    ({"image": np.zeros((32, 32, 3), np.float32)}, ValueError, "uint8"),
    ({"coverage": (0.3, 0.2)}, ValueError, "coverage must be"),
])
def test_bad_arguments_are_named(args: dict, error: type[Exception], match: str) -> None:
    kw = {"image": _image(32), "count": 1, "kinds": OCCLUDER_KINDS, "coverage": (0.05, 0.25), **args}
    with pytest.raises(error, match=match):
        occlude(kw["image"], kw["count"], kw["kinds"], np.random.default_rng(0), coverage=kw["coverage"])


def test_an_image_too_small_for_the_count_is_refused() -> None:
    with pytest.raises(ValueError, match="could not place 8 occluder"):
        occlude(_image(8), 8, ["stripes"], np.random.default_rng(0))
    assert check_occluder_kinds(("sticker",)) == ["sticker"]
