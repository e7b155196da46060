"""The point rasteriser's invariants beyond the PyTorch3D fixture (``test_hfgi3d_golden.py``): the
shared two-splat pass equals two separate passes, ties are broken by point index, and chunking
never changes the result."""
from __future__ import annotations

import pytest
import torch

from warpinv.geometry.splat import rasterize_point_subset, rasterize_points


def _cloud(n: int, seed: int, tied: bool) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    ndc = torch.rand(n, 3, generator=g) * 2.2 - 1.1
    ndc[:, 2] = torch.rand(n, generator=g) * 3 - 0.5  # some behind the camera
    if tied:  # many equal depths and duplicated positions: the (z, index) order decides
        ndc[:, 2] = torch.randint(0, 4, (n,), generator=g).float()
        ndc[n // 2:, :2] = ndc[: n - n // 2, :2]
    return ndc


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("chunk_size", [1 << 17, 97])
def test_subset_pass_equals_two_separate_passes(tied: bool, chunk_size: int) -> None:
    ndc = _cloud(2000, 0, tied)
    subset = torch.rand(2000, generator=torch.Generator().manual_seed(1)) < 0.4
    size, k, radius = 24, 6, 2.0 / 24 * 2
    every, part = rasterize_point_subset(ndc, subset, size, size, radius, k, chunk_size=chunk_size)
    alone = rasterize_points(ndc, size, size, radius, k, chunk_size=chunk_size)
    sub_alone = rasterize_points(ndc[subset], size, size, radius, k, chunk_size=chunk_size)
    for got, want in ((every, alone), (part, sub_alone)):
        assert torch.equal(got.idx, want.idx)
        assert torch.equal(got.dists2, want.dists2)
        assert torch.equal(got.zbuf, want.zbuf)
    assert int((every.idx >= 0).sum()) > int((part.idx >= 0).sum()) > 0
    assert bool((every.idx >= 0).all(-1).any())  # some pixels are full: the top-k cut is exercised


def test_chunking_and_ties_keep_the_nearest_then_lowest_index() -> None:
    ndc = _cloud(1500, 2, tied=True)
    size, k, radius = 16, 4, 3.0 / 16 * 2
    whole = rasterize_points(ndc, size, size, radius, k, chunk_size=1 << 20)
    chunked = rasterize_points(ndc, size, size, radius, k, chunk_size=50)
    assert torch.equal(whole.idx, chunked.idx)
    filled = whole.idx >= 0
    z = torch.where(filled, ndc[whole.idx.clamp(min=0), 2], torch.full_like(whole.zbuf, float("inf")))
    key = z * 1e6 + whole.idx.double().clamp(min=0).float()  # z are small integers here
    assert bool((key[..., 1:] >= key[..., :-1]).all())  # nearest first, then lower index
    assert bool((ndc[whole.idx[filled], 2] >= 0).all())


def test_subset_must_be_a_bool_mask_of_the_points() -> None:
    ndc = _cloud(10, 0, False)
    with pytest.raises(ValueError, match="bool"):
        rasterize_point_subset(ndc, torch.ones(10), 8, 8, 0.5, 2)
    with pytest.raises(ValueError, match=r"\(10,\)"):
        rasterize_point_subset(ndc, torch.ones(9, dtype=torch.bool), 8, 8, 0.5, 2)
