"""Gradient-domain (Poisson) blending of a source image into a target: Perez et al. 2003, "seamless cloning".

HFGI3D's paper blends a pseudo view's warped image over the generator's render with "Gaussian blur, or Poisson
blending"; the released code alpha-blends (:func:`warpinv.geometry.masks.blend`). This is the Poisson option.

With ``Omega = {mask > threshold}``, ``N_p`` the in-image 4-neighbours of ``p``, ``g`` the source and ``f*`` the
target, :func:`poisson_blend` solves for every ``p`` in ``Omega``::

    |N_p| f_p - sum_{q in N_p ∩ Omega} f_q = sum_{q in N_p \\ Omega} f*_q + sum_{q in N_p} (g_p - g_q)

i.e. ``laplacian(f) = laplacian(g)`` inside ``Omega`` (:func:`laplacian`, in-image neighbours only: Neumann at
the image edge), Dirichlet ``f = f*`` on the complement's pixels next to ``Omega``, and ``f = f*`` outside.

The system is symmetric positive definite unless ``Omega`` has no complement pixel next to it, which on a
connected pixel grid means ``Omega`` is the whole image: there only ``f = g + const`` is determined, and the
constant is fixed by matching the source's mean, so a full mask returns the source.

It is solved matrix-free by conjugate gradient, every image and channel its own system, all in one batch, started
from the source (exact when source and target agree on the boundary). Each system stops when
``||b - A x|| <= tolerance ||b||``; the loop ends when all have, or after ``max_iterations`` (then a warning is
logged). An iteration costs O(pixels), so a blend costs O(iterations * pixels); CG needs about as many iterations
as Omega is pixels across, times a log of 1 / tolerance.

Example:
    >>> target = torch.full((1, 1, 3, 3), 0.5)
    >>> source = torch.zeros(1, 1, 3, 3)
    >>> source[..., 1, 1] = 1.0  # a spike to clone; only the centre pixel is in Omega
    >>> poisson_blend(source, target, source[0, 0]).squeeze().tolist()
    [[0.5, 0.5, 0.5], [0.5, 1.5, 0.5], [0.5, 0.5, 0.5]]
"""
from __future__ import annotations

import logging
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

logger = logging.getLogger(__name__)


def neighbour_sum(image: Tensor) -> Tensor:
    """Sum of each pixel's 4 in-image neighbours (pixels outside the image count as 0), ``(..., H, W)``."""
    p = F.pad(image, (1, 1, 1, 1))
    return p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:]


def laplacian(image: Tensor) -> Tensor:
    """Negative 4-neighbour Laplacian over in-image neighbours only, ``|N_p| x_p - sum_{q in N_p} x_q``, of an
    ``(..., H, W)`` image (the left-hand side of the Perez equation; zero on constant images, borders included).

    Example:
        >>> laplacian(torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])).tolist()
        [[0.0, -1.0, 0.0], [-1.0, 3.0, -1.0]]
    """
    out = image * 4  # then |N_p| = 4 less one per image edge the pixel lies on (in place: the CG's hot loop)
    out[..., 0, :] -= image[..., 0, :]
    out[..., -1, :] -= image[..., -1, :]
    out[..., :, 0] -= image[..., :, 0]
    out[..., :, -1] -= image[..., :, -1]
    out[..., 1:, :] -= image[..., :-1, :]
    out[..., :-1, :] -= image[..., 1:, :]
    out[..., :, 1:] -= image[..., :, :-1]
    out[..., :, :-1] -= image[..., :, 1:]
    return out


def _bounding_box(omega: Tensor) -> tuple[slice, slice] | None:
    """Rows and columns of the box around every image's ``Omega`` plus one pixel (its Dirichlet boundary), clipped
    to the image; ``None`` if ``Omega`` is empty. ``omega``: ``(N, 1, H, W)`` of 0/1."""
    rows = omega.amax(dim=(0, 1, 3)).nonzero()
    if rows.numel() == 0:
        return None
    cols = omega.amax(dim=(0, 1, 2)).nonzero()
    h, w = omega.shape[-2:]
    return (slice(max(int(rows[0]) - 1, 0), min(int(rows[-1]) + 2, h)),
            slice(max(int(cols[0]) - 1, 0), min(int(cols[-1]) + 2, w)))


def _check_inputs(source: Tensor, target: Tensor, mask: Tensor, threshold: float, max_iterations: int,
                  tolerance: float) -> Tensor:
    """Validate the arguments of :func:`poisson_blend`; return the mask as ``(N or 1, 1, H, W)``."""
    for name, x in (("source", source), ("target", target)):
        if not isinstance(x, Tensor) or x.dim() != 4 or not x.is_floating_point():
            raise ValueError(f"{name} must be a floating (N, C, H, W) tensor, got "
                             f"{getattr(x, 'dtype', type(x).__name__)} of shape {tuple(getattr(x, 'shape', ()))}")
        if not torch.isfinite(x).all():
            raise ValueError(f"{name} has non-finite values")
    if source.shape != target.shape or source.device != target.device:
        raise ValueError(f"source and target must match in shape and device, got {tuple(source.shape)} on "
                         f"{source.device} and {tuple(target.shape)} on {target.device}")
    if not isinstance(mask, Tensor) or not (mask.is_floating_point() or mask.dtype == torch.bool):
        raise ValueError(f"mask must be a floating or bool tensor, got {getattr(mask, 'dtype', type(mask).__name__)}")
    n, _, h, w = source.shape
    m = mask[None, None] if mask.dim() == 2 else mask
    if m.dim() != 4 or m.shape[1] != 1 or m.shape[0] not in (1, n) or tuple(m.shape[2:]) != (h, w):
        raise ValueError(f"mask must be (H, W), (1, 1, H, W) or (N, 1, H, W) with N, H, W = {n}, {h}, {w}, "
                         f"got shape {tuple(mask.shape)}")
    if m.device != source.device:
        raise ValueError(f"mask is on {m.device}, source on {source.device}")
    if not ((m >= 0) & (m <= 1)).all():  # also rejects NaN
        raise ValueError("mask values must lie in [0, 1]")
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold must be in [0, 1), got {threshold}")
    if isinstance(max_iterations, bool) or not isinstance(max_iterations, int) or max_iterations < 1:
        raise ValueError(f"max_iterations must be a positive int, got {max_iterations!r}")
    if not tolerance > 0:
        raise ValueError(f"tolerance must be positive, got {tolerance}")
    return m


def _batched_cg(apply_a: Callable[[Tensor], Tensor], b: Tensor, x: Tensor, tolerance: float,
                max_iterations: int) -> Tensor:
    """Conjugate gradient on independent SPD systems ``A x = b`` batched over the leading dims of ``(N, C, H, W)``
    tensors; ``x`` is the start. Converged systems are frozen; warns if any is not converged at the end."""
    def dot(u: Tensor, v: Tensor) -> Tensor:
        return torch.einsum("nchw,nchw->nc", u, v)[..., None, None]

    tiny = torch.finfo(b.dtype).tiny
    r = b - apply_a(x)
    p = r.clone()
    rr = dot(r, r)
    limit = tolerance**2 * dot(b, b)
    iterations = 0
    while iterations < max_iterations:
        active = rr > limit
        if not active.any():
            break
        ap = apply_a(p)
        pap = dot(p, ap)
        alpha = torch.where(active & (pap > 0), rr / pap.clamp_min(tiny), 0.0)
        x.addcmul_(alpha, p)
        r.addcmul_(alpha, ap, value=-1)
        rr_new = dot(r, r)
        beta = torch.where(active, rr_new / rr.clamp_min(tiny), 0.0)
        p.mul_(beta).add_(r)
        rr = torch.where(active, rr_new, rr)
        iterations += 1
    else:
        if (rr > limit).any():
            worst = (rr / dot(b, b).clamp_min(tiny)).max().sqrt().item()
            logger.warning("poisson_blend: CG did not converge in %d iterations (worst relative residual %.3g, "
                           "tolerance %.3g)", max_iterations, worst, tolerance)
    return x


def poisson_blend(source: Tensor, target: Tensor, mask: Tensor, *, threshold: float = 0.5,
                  max_iterations: int = 2000, tolerance: float = 1e-6,
                  compute_dtype: torch.dtype = torch.float64) -> Tensor:
    """Seamless cloning of ``source`` into ``target`` inside ``Omega = {mask > threshold}`` (module docstring).

    Args:
        source: ``(N, C, H, W)`` float image whose gradients guide ``Omega`` (e.g. the warped input).
        target: ``(N, C, H, W)`` float image kept outside ``Omega`` (e.g. the generator's render).
        mask: ``(H, W)``, ``(1, 1, H, W)`` or ``(N, 1, H, W)`` floats in ``[0, 1]`` (or bools).
        threshold: ``Omega`` is where ``mask > threshold``.
        max_iterations: CG iteration cap (a warning is logged if it is reached unconverged).
        tolerance: stop when every system's residual norm is below ``tolerance`` times its rhs norm.
        compute_dtype: dtype of the solve (float64 by default; float32 halves memory on a GPU).

    Returns:
        ``(N, C, H, W)`` in ``source``'s dtype: ``target`` outside ``Omega``, the Poisson solution inside;
        ``target`` for an image with empty ``Omega``, ``source`` for one whose ``Omega`` is the whole image.
    """
    m = _check_inputs(source, target, mask, threshold, max_iterations, tolerance)
    if not (isinstance(compute_dtype, torch.dtype) and compute_dtype.is_floating_point):
        raise ValueError(f"compute_dtype must be a floating torch.dtype, got {compute_dtype!r}")
    n = source.shape[0]
    omega = (m.to(compute_dtype) > threshold).to(compute_dtype).expand(n, 1, *m.shape[2:])
    full = omega.flatten(1).all(dim=1).view(n, 1, 1, 1)
    omega = torch.where(full, 0.0, omega)  # singular systems: answered by the source, not solved
    g, t = source.to(compute_dtype), target.to(compute_dtype)
    out = torch.where(full, g, t)
    box = _bounding_box(omega)
    if box is not None:  # solve on the box only: Omega's pixels and all their neighbours lie in it
        om, g, t = omega[..., box[0], box[1]], g[..., box[0], box[1]], t[..., box[0], box[1]]
        b = om * (neighbour_sum(t * (1 - om)) + laplacian(g))
        has_rhs = b.flatten(2).abs().amax(dim=2)[..., None, None] > 0
        x = _batched_cg(lambda v: om * laplacian(v), b, g * om * has_rhs, tolerance, max_iterations)
        out[..., box[0], box[1]] = torch.where(om > 0, x, out[..., box[0], box[1]])
    return out.to(source.dtype)
