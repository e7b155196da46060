"""Poisson (gradient-domain) blending: the Perez equation, its boundary handling, batching and input checks."""
from __future__ import annotations

import logging

import pytest
import torch

from warpinv.geometry.poisson import laplacian, poisson_blend

TIGHT = {"tolerance": 1e-13, "max_iterations": 5000}


def irregular_mask(h: int = 12, w: int = 12) -> torch.Tensor:
    """(H, W) float mask: a blob touching the top and left image edges with a one-pixel hole in it, a separate
    interior island, and soft values on both sides of the 0.5 threshold."""
    m = torch.zeros(h, w)
    m[0:6, 0:7] = 0.9
    m[2, 3] = 0.2  # hole: a Dirichlet pixel surrounded by Omega
    m[5, 0:3] = 0.5  # exactly the threshold: outside Omega (strict >)
    m[6:8, 4:6] = 0.7
    m[8:11, 8:11] = 1.0  # second component, away from the image edge
    m[9, 11] = 0.6  # ...reaching the right edge
    return m


def images(n: int = 1, c: int = 1, h: int = 12, w: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(n, c, h, w, generator=gen, dtype=torch.float64),
            torch.rand(n, c, h, w, generator=gen, dtype=torch.float64))


def dilate(omega: torch.Tensor) -> torch.Tensor:
    """Omega and its 4-neighbours, (H, W) bool."""
    out = omega.clone()
    out[1:] |= omega[:-1]
    out[:-1] |= omega[1:]
    out[:, 1:] |= omega[:, :-1]
    out[:, :-1] |= omega[:, 1:]
    return out


def dense_perez(source: torch.Tensor, target: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    """Reference: assemble Perez's linear system for (H, W) images pixel by pixel and solve it densely."""
    h, w = omega.shape
    index = {p: i for i, p in enumerate(map(tuple, omega.nonzero().tolist()))}
    a = torch.zeros(len(index), len(index), dtype=torch.float64)
    b = torch.zeros(len(index), dtype=torch.float64)
    for (y, x), i in index.items():
        for q in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
            if not (0 <= q[0] < h and 0 <= q[1] < w):
                continue
            a[i, i] += 1
            b[i] += source[y, x] - source[q]
            if q in index:
                a[i, index[q]] -= 1
            else:
                b[i] += target[q]
    f = torch.linalg.solve(a, b)
    out = target.clone()
    for (y, x), i in index.items():
        out[y, x] = f[i]
    return out


def test_source_equal_to_target_returns_target_exactly() -> None:
    source, _ = images(2, 3)
    assert torch.equal(poisson_blend(source, source.clone(), irregular_mask()), source)


def test_constant_offset_is_pinned_away_by_the_boundary() -> None:
    source, target = images(1, 3)
    omega = irregular_mask() > 0.5
    near = dilate(omega)  # Omega and its Dirichlet boundary: all the source values the equation reads
    source = torch.where(near, target + 0.37, source * 10)  # garbage farther out must not matter
    out = poisson_blend(source, target, irregular_mask(), **TIGHT)
    assert torch.allclose(out, target, atol=1e-10, rtol=0)


def test_laplacian_matches_source_inside_and_target_is_kept_outside() -> None:
    source, target = images(1, 3, 16, 20, seed=3)
    mask = torch.zeros(16, 20)
    mask[3:14, 0:9] = 1.0
    mask[7:12, 9:17] = 0.8
    omega = mask > 0.5
    out = poisson_blend(source, target, mask, **TIGHT)
    residual = (laplacian(out) - laplacian(source))[..., omega]
    assert residual.abs().max() < 1e-9
    assert torch.equal(out[..., ~omega], target[..., ~omega])  # the complement, its boundary pixels included
    assert not torch.allclose(out[..., omega], target[..., omega])


def test_laplacian_uses_in_image_neighbours_only() -> None:
    x = torch.arange(12, dtype=torch.float64).reshape(3, 4) ** 2
    expected = torch.zeros_like(x)
    for y in range(3):
        for c in range(4):
            for q in ((y - 1, c), (y + 1, c), (y, c - 1), (y, c + 1)):
                if 0 <= q[0] < 3 and 0 <= q[1] < 4:
                    expected[y, c] += x[y, c] - x[q]
    assert torch.equal(laplacian(x), expected)
    assert torch.equal(laplacian(torch.ones(2, 5, 7)), torch.zeros(2, 5, 7))


def test_matches_a_dense_direct_solve() -> None:
    source, target = images(1, 2, seed=1)
    mask = irregular_mask()
    out = poisson_blend(source, target, mask, **TIGHT)
    for c in range(2):
        expected = dense_perez(source[0, c], target[0, c], mask > 0.5)
        assert torch.allclose(out[0, c], expected, atol=1e-8, rtol=0)


def test_empty_mask_returns_target_unchanged() -> None:
    source, target = images(2, 3)
    assert torch.equal(poisson_blend(source, target, torch.full((12, 12), 0.5)), target)
    assert torch.equal(poisson_blend(source, target, torch.zeros(12, 12, dtype=torch.bool)), target)


def test_full_mask_returns_source_and_other_images_are_still_solved() -> None:
    source, target = images(2, 3, seed=2)
    mask = torch.stack([torch.ones(12, 12), irregular_mask()])[:, None]
    out = poisson_blend(source, target, mask, **TIGHT)
    assert torch.equal(out[0], source[0])
    alone = poisson_blend(source[1:], target[1:], irregular_mask(), **TIGHT)
    assert torch.allclose(out[1:], alone, atol=1e-11, rtol=0)


def test_batch_equals_per_image_solves() -> None:
    source, target = images(2, 3, 14, 13, seed=4)
    masks = torch.zeros(2, 1, 14, 13)
    masks[0, 0, 2:9, 3:12] = 1.0
    masks[1, 0, 5:14, 0:6] = 0.9
    out = poisson_blend(source, target, masks, **TIGHT)
    for i in range(2):
        for c in range(3):
            alone = poisson_blend(source[i:i + 1, c:c + 1], target[i:i + 1, c:c + 1], masks[i, 0], **TIGHT)
            assert torch.allclose(out[i:i + 1, c:c + 1], alone, atol=1e-11, rtol=0)
    shared = poisson_blend(source, target, masks[0, 0], **TIGHT)  # an (H, W) mask serves every image
    assert torch.equal(shared, poisson_blend(source, target, masks[:1].expand(2, -1, -1, -1), **TIGHT))


def test_dtype_is_kept_and_float32_agrees_with_float64() -> None:
    source, target = images(1, 3)
    out32 = poisson_blend(source.float(), target.float(), irregular_mask())
    assert out32.dtype == torch.float32
    assert torch.allclose(out32.double(), poisson_blend(source, target, irregular_mask()), atol=1e-5)


def test_warns_when_not_converged(caplog: pytest.LogCaptureFixture) -> None:
    source, target = images(1, 1, 24, 24)
    mask = torch.zeros(24, 24)
    mask[2:22, 2:22] = 1.0
    with caplog.at_level(logging.WARNING, logger="warpinv.geometry.poisson"):
        out = poisson_blend(source, target, mask, max_iterations=2)
    assert "did not converge in 2 iterations" in caplog.text
    assert torch.equal(out[..., mask == 0], target[..., mask == 0])
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="warpinv.geometry.poisson"):
        poisson_blend(source, target, mask)
    assert caplog.text == ""


def _bad(**overrides: object) -> dict[str, object]:
    source, target = images(2, 3)
    kwargs: dict[str, object] = {"source": source, "target": target, "mask": irregular_mask()}
    kwargs.update(overrides)
    return kwargs


@pytest.mark.parametrize(("kwargs", "match"), [
    (_bad(source=torch.rand(3, 12, 12)), "source must be a floating"),
    (_bad(target=torch.zeros(2, 3, 12, 12, dtype=torch.int64)), "target must be a floating"),
    (_bad(source=[[0.0]]), "source must be a floating"),
    (_bad(target=torch.rand(2, 3, 12, 11)), "must match in shape"),
    (_bad(target=torch.full((2, 3, 12, 12), float("nan"))), "target has non-finite"),
    (_bad(source=torch.full((2, 3, 12, 12), float("inf"))), "source has non-finite"),
    (_bad(mask=torch.ones(12, 12, dtype=torch.uint8)), "mask must be a floating or bool"),
    (_bad(mask=torch.ones(12, 11)), "mask must be"),
    (_bad(mask=torch.ones(3, 1, 12, 12)), "mask must be"),
    (_bad(mask=torch.ones(2, 3, 12, 12)), "mask must be"),
    (_bad(mask=torch.full((12, 12), 1.5)), r"mask values must lie in \[0, 1\]"),
    (_bad(mask=torch.full((12, 12), float("nan"))), r"mask values must lie in \[0, 1\]"),
    (_bad(threshold=1.0), "threshold"),
    (_bad(max_iterations=0), "max_iterations"),
    (_bad(max_iterations=10.0), "max_iterations"),
    (_bad(tolerance=0.0), "tolerance"),
    (_bad(compute_dtype=torch.int32), "compute_dtype"),
])
def test_bad_inputs_raise(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        poisson_blend(**kwargs)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    source, target = images(2, 3, seed=5)
    mask = irregular_mask()
    out = poisson_blend(source.cuda(), target.cuda(), mask.cuda(), **TIGHT)
    assert out.device.type == "cuda"
    assert torch.allclose(out.cpu(), poisson_blend(source, target, mask, **TIGHT), atol=1e-10, rtol=0)
