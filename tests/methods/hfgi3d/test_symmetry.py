"""HFGI3D's density-symmetry loss on the tiny generator (checked against its official recipe re-derived
through ``G.sample_mixed``; no golden fixture records it, so no ``golden`` marker)."""
from __future__ import annotations

import pytest
import torch
from torch import Tensor

from warpinv.backbone import EG3DGenerator, load_generator
from warpinv.methods.hfgi3d.symmetry import (
    OFFICIAL_GRID_SIZE,
    OFFICIAL_SCALE,
    density_symmetry_loss,
    density_symmetry_loss_from_planes,
    mirror_x,
    symmetry_grid,
)

# The plane axes read by the renderer are (x, y), (x, z), (z, x) as grid (width, height); a flip of
# x is a flip of the width axis of planes 0 and 1 and of the height axis of plane 2.
X_FLIP_DIMS = {0: -1, 1: -1, 2: -2}
Y_FLIP_DIMS = {0: -2}


@pytest.fixture(scope="module")
def G() -> EG3DGenerator:
    return load_generator("tiny")


@pytest.fixture(scope="module")
def ws(G: EG3DGenerator) -> Tensor:
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(3))
    return G.mapping(z, torch.zeros(1, G.c_dim)).detach()


@pytest.fixture(scope="module")
def planes(G: EG3DGenerator, ws: Tensor) -> Tensor:
    with torch.no_grad():
        return G.planes(ws, noise_mode="const")


def symmetrized(planes: Tensor, flip_dims: dict[int, int]) -> Tensor:
    """Average each plane with its flip, so the field is mirror-symmetric about the chosen axis."""
    out = planes.clone()
    for index, dim in flip_dims.items():
        plane = planes[:, index]
        out[:, index] = 0.5 * (plane + plane.flip(dim))
    return out


def loss_of(planes: Tensor, G: EG3DGenerator, **kwargs: object) -> Tensor:
    return density_symmetry_loss_from_planes(planes, G.decoder, G.rendering_kwargs, **kwargs)


def create_samples_by_loop(n: int, cube_length: float) -> Tensor:
    """The official grid, point by point: flat index a*n*n + b*n + c divided by n in floating point."""
    voxel = cube_length / (n - 1)
    rows = []
    for a in range(n):
        for b in range(n):
            for c in range(n):
                cells = (a + b / n + c / n**2, b + c / n, c)
                rows.append([v * voxel - cube_length / 2 for v in cells])
    return torch.tensor(rows, dtype=torch.float32).unsqueeze(0)


def test_grid_is_the_official_create_samples_grid() -> None:
    grid = symmetry_grid(3, 1.6)
    assert grid.shape == (1, 27, 3)
    torch.testing.assert_close(grid, create_samples_by_loop(3, 1.6), atol=1e-6, rtol=0)


def test_grid_keeps_the_float_division_shear() -> None:
    grid = symmetry_grid(OFFICIAL_GRID_SIZE, 1.0)[0]
    assert grid[:, 2].min().item() == -0.5 and grid[:, 2].max().item() == 0.5
    assert grid[:, 0].max().item() == pytest.approx((63 + 63 / 64 + 63 / 64**2) / 63 - 0.5, abs=1e-6)
    assert grid[:, 1].max().item() == pytest.approx((63 + 63 / 64) / 63 - 0.5, abs=1e-6)


def test_mirror_negates_x_only_and_copies() -> None:
    points = torch.tensor([[[0.25, -0.5, 0.75], [-1.0, 1.5, -2.0]]])
    mirrored = mirror_x(points)
    assert mirrored.tolist() == [[[-0.25, -0.5, 0.75], [1.0, 1.5, -2.0]]]
    assert points[0, 0, 0].item() == 0.25


def test_zero_for_x_symmetric_planes_positive_otherwise(G: EG3DGenerator, planes: Tensor) -> None:
    asymmetric = loss_of(planes, G, grid_size=16).item()
    symmetric = loss_of(symmetrized(planes, X_FLIP_DIMS), G, grid_size=16).item()
    assert asymmetric > 1e-4
    assert symmetric < 1e-10 * asymmetric


def test_symmetry_about_another_axis_is_penalised(G: EG3DGenerator, planes: Tensor) -> None:
    asymmetric = loss_of(planes, G, grid_size=16).item()
    y_symmetric = loss_of(symmetrized(planes, Y_FLIP_DIMS), G, grid_size=16).item()
    assert y_symmetric > 0.1 * asymmetric


def test_matches_the_official_recipe_through_sample_mixed(G: EG3DGenerator, ws: Tensor) -> None:
    n = 5
    points = create_samples_by_loop(n, G.rendering_kwargs["box_warp"])
    mirrored = points.clone()
    mirrored[0, :, 0] = -mirrored[0, :, 0]
    directions = torch.zeros_like(points)
    directions[..., -1] = -1
    with torch.no_grad():
        sigma = G.sample_mixed(points, directions, ws, noise_mode="const")["sigma"]
        sigma_mirror = G.sample_mixed(mirrored, directions, ws, noise_mode="const")["sigma"]
        expected = (sigma / n - sigma_mirror / n).square().sum() / 10000.0
        got = density_symmetry_loss(G, ws, grid_size=n)
    assert OFFICIAL_SCALE == 1e-4
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-12)


def test_gradient_wrt_ws_is_finite_and_nonzero(G: EG3DGenerator, ws: Tensor) -> None:
    w = ws.clone().requires_grad_()
    density_symmetry_loss(G, w, grid_size=8).backward()
    assert w.grad is not None
    assert torch.isfinite(w.grad).all()
    assert w.grad.abs().sum().item() > 0


def test_generator_with_symmetric_planes_gives_zero(G: EG3DGenerator, ws: Tensor, planes: Tensor,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    original = G.planes
    monkeypatch.setattr(G, "planes", lambda w, **kw: symmetrized(original(w, **kw), X_FLIP_DIMS))
    with torch.no_grad():
        symmetric = density_symmetry_loss(G, ws, grid_size=16).item()
    assert symmetric < 1e-10 * loss_of(planes, G, grid_size=16).item()


@pytest.mark.parametrize("grid_size", [4, 7])
def test_grid_size_sets_the_points_decoded(G: EG3DGenerator, planes: Tensor, grid_size: int,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    counts: list[int] = []
    decode = G.decoder.decode_mean  # what the renderer's run_model calls (after the fused plane mean)

    def counting(x: Tensor) -> dict[str, Tensor]:
        out = decode(x)
        counts.append(out["sigma"].shape[1])
        return out

    monkeypatch.setattr(G.decoder, "decode_mean", counting)
    with torch.no_grad():
        loss_of(planes, G, grid_size=grid_size)
    assert counts == [grid_size**3, grid_size**3]


def test_cube_follows_box_warp(G: EG3DGenerator, planes: Tensor) -> None:
    # The grid spans the box whatever its side, so the planes are read at the same places.
    wide = dict(G.rendering_kwargs, box_warp=1.6)
    with torch.no_grad():
        base = loss_of(planes, G, grid_size=8)
        scaled = density_symmetry_loss_from_planes(planes, G.decoder, wide, grid_size=8)
    torch.testing.assert_close(scaled, base, rtol=1e-5, atol=0)


def test_batch_losses_add_up(G: EG3DGenerator, planes: Tensor) -> None:
    other = planes.flip(-1)
    with torch.no_grad():
        both = loss_of(torch.cat([planes, other]), G, grid_size=8)
        separate = loss_of(planes, G, grid_size=8) + loss_of(other, G, grid_size=8)
    torch.testing.assert_close(both, separate, rtol=1e-5, atol=0)


@pytest.mark.parametrize("grid_size", [1, 0, 2.5, True])
def test_bad_grid_size(G: EG3DGenerator, planes: Tensor, grid_size: object) -> None:
    with pytest.raises(ValueError, match="grid_size"):
        loss_of(planes, G, grid_size=grid_size)


def test_bad_inputs(G: EG3DGenerator, ws: Tensor, planes: Tensor) -> None:
    with pytest.raises(TypeError, match="EG3DGenerator"):
        density_symmetry_loss(torch.nn.Linear(1, 1), ws)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ws"):
        density_symmetry_loss(G, ws[:, 0])
    with pytest.raises(ValueError, match="planes"):
        density_symmetry_loss_from_planes(planes[:, 0], G.decoder, G.rendering_kwargs)
    with pytest.raises(ValueError, match="box_warp"):
        density_symmetry_loss_from_planes(planes, G.decoder, {})
    with pytest.raises(ValueError, match="coordinates"):
        mirror_x(torch.zeros(2, 2))
