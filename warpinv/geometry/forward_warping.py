"""WarpGAN's forward warp: every input pixel is lifted with its depth, moved into the novel camera and
splatted there by summation; then WarpGAN's hole-mask processing and the inpainting network's input.

:func:`forward_warp` (the released ``utils/warp/Splatting.py`` ``Warper.forward_warp``), per sample:

1. the low-resolution EG3D depth is upsampled bicubically (``align_corners=False``) to the image size;
2. each pixel is lifted with its depth, transformed into the target camera and projected: the
   **flow** (target position minus source position, pixels) and the **target depth** ``z``;
3. **weights** ``w = exp(s * imp_n - s)`` with ``imp = 1 / z`` min-max normalised per sample to
   ``imp_n`` in ``[0, 1]`` (``s = weight_scale = 10``): near points dominate where several land;
4. :func:`splat_summation` of ``[w * image, w]`` along the flow gives the numerator and denominator;
   ``warped = num / den.clamp(min=1e-8)``; a pixel is a hole where nothing visible arrived.

Two modes (:class:`ForwardWarpConfig`):

========================  ============================================  ===========================================
step                      ``official`` (released)                       ``clean``
========================  ============================================  ===========================================
intrinsics                fixed ``[[4.2647 W, 0, W / 2], [0, 4.2647 H,  each label's own (via
                          H / 2], [0, 0, 1]]``; the labels' ignored     :func:`~warpinv.cameras.rays.lift_to_camera`)
pixel grid                integer indices: pixel ``j`` at ``x = j``     pixel centres ``x = j + 0.5`` (EG3D's rays)
depth                     EG3D's ray distance used as camera ``z``      distance along the unit pixel ray
transform                 ``T = inv(c2w_2) @ inv(inv(c2w_1))``          world points, then
                                                                        :func:`~warpinv.cameras.warp.project_points`
points behind the target  kept (``1 / z`` of any sign)                  weight 0; ``imp`` normalised over the rest
normalisation             ``num / den.clamp(min=1e-8)``                 ``num / den`` wherever ``den > 0``
hole                      all channels of ``warped`` exactly 0          ``den == 0``: nothing landed
========================  ============================================  ===========================================

The official hole test depends on the image range: the released code warps images in ``[0, 1]``
(``(x + 1) / 2`` of the ``[-1, 1]`` photo), so a black pixel (all channels exactly 0) that did land
still counts as a hole; pass ``[0, 1]`` images to reproduce it.

WarpGAN's mask processing (``scripts/infer.py`` ``process_mask`` / ``get_inp``): the visible mask is
eroded 3x3 (outside pixels ignored), blurred with torchvision's ``GaussianBlur(21)`` at a random
``sigma ~ U(0.1, 2.0)`` drawn per call (:func:`draw_blur_sigma`), and ``1 - blur`` is the soft hole
mask (not re-binarised, :func:`hole_mask`); the warped image is filled with the render under it
(:func:`hybrid_fill`) and ``[filled, render, mask]`` is one 7-channel half of SVINet's input
(:func:`inpaint_input`). The mirrored half warps the horizontally flipped image with the flipped
low-resolution depth from the ``flip_yaw`` camera (:func:`mirror_inputs`) to the same novel camera.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from warpinv.cameras.labels import CameraError, flip_yaw, unpack_label
from warpinv.cameras.lookat import FFHQ_FOCAL
from warpinv.cameras.rays import lift_to_camera
from warpinv.cameras.warp import project_points
from warpinv.checks import check_batch, check_camera_labels, check_choice, check_floating, check_min, check_shape
from warpinv.geometry.masks import erode, gaussian_blur

logger = logging.getLogger(__name__)

Mode = Literal["official", "clean"]
#: WarpGAN's ``configs/infer.yaml``: ``warp.erode_kernel`` and ``warp.gaussian_blur_kernel``.
WARPGAN_ERODE = 3
WARPGAN_BLUR = 21
#: torchvision ``GaussianBlur``'s default sigma range, which WarpGAN keeps.
BLUR_SIGMA_RANGE = (0.1, 2.0)
#: The released warp's floor of the splat denominator.
OFFICIAL_MIN_DENOMINATOR = 1e-8
#: Added to ``max - min`` of the inverse depth before normalising (official).
IMPORTANCE_EPS = 1e-6


@dataclass
class ForwardWarpConfig:
    """How :func:`forward_warp` maps pixels (see the module docstring's table). Defaults: the released warp.

    Example:
        >>> ForwardWarpConfig().mode, ForwardWarpConfig().weight_scale
        ('official', 10.0)
        >>> ForwardWarpConfig(mode="exact")
        Traceback (most recent call last):
        ...
        ValueError: forward warp mode must be 'official' or 'clean', got 'exact'
    """

    mode: Mode = "official"
    """``official``: fixed FFHQ intrinsics, integer pixel grid, ray depth as camera z; ``clean``: the labels'
    intrinsics, pixel centres, true ray geometry."""
    weight_scale: float = 10.0
    """``s`` of the splat weights ``exp(s * imp_n - s)`` (released: 10); 0 weights every point equally."""

    def __post_init__(self) -> None:
        check_choice(self.mode, ("official", "clean"), "forward warp mode")
        check_min(self.weight_scale, 0.0, "weight_scale")


@dataclass
class ForwardWarp:
    """The result of :func:`forward_warp` and its internals.

    Attributes:
        warped: ``(N, C, H, W)`` the warped image, ``numerator / denominator`` (holes 0).
        visible: ``(N, 1, H, W)`` float in ``{0, 1}``: 1 where the warp holds something (not a hole).
        flow: ``(N, 2, H, W)`` ``(dx, dy)`` in pixels from each source pixel to its target position.
        depth_up: ``(N, 1, H, W)`` the source depth at the image size.
        target_depth: ``(N, 1, H, W)`` camera-space depth of each source pixel in the target camera.
        weights: ``(N, 1, H, W)`` splat weight of each source pixel, in ``[e^-s, 1]`` (0 for dropped points).
        numerator: ``(N, C, H, W)`` the splatted ``weights * image``.
        denominator: ``(N, 1, H, W)`` the splatted ``weights``.
    """

    warped: Tensor
    visible: Tensor
    flow: Tensor
    depth_up: Tensor
    target_depth: Tensor
    weights: Tensor
    numerator: Tensor
    denominator: Tensor


def splat_summation(values: Tensor, flow: Tensor) -> Tensor:
    """Bilinear forward splatting by summation (``pesser/splatting``'s ``summation`` kernel).

    Source pixel ``(x, y)`` (integer indices) lands at ``(X, Y) = (x + flow_x, y + flow_y)`` and adds
    its value to the four pixels around it, ``floor(X) + {0, 1}`` by ``floor(Y) + {0, 1}``, with the
    bilinear weights (``(x0 + 1 - X)(y0 + 1 - Y)`` to ``(x0, y0)``, and so on); targets outside the image
    are dropped, as are non-finite positions. Differentiable with respect to ``values`` and ``flow``
    (not through ``floor``). Memory: four ``(N, C, H, W)`` contributions. The float sums are
    accumulated in another order than the released kernel's, so results differ by rounding.

    Args:
        values: ``(N, C, H, W)`` what each source pixel carries.
        flow: ``(N, 2, H, W)`` ``(dx, dy)`` per source pixel, in pixels.

    Returns:
        ``(N, C, H, W)`` the splatted sums.

    Example:
        >>> v = torch.zeros(1, 1, 3, 3); v[0, 0, 0, 0] = 1.0
        >>> flow = torch.full((1, 2, 3, 3), 0.5)
        >>> splat_summation(v, flow)[0, 0].tolist()
        [[0.25, 0.25, 0.0], [0.25, 0.25, 0.0], [0.0, 0.0, 0.0]]
    """
    check_shape(values, "N C H W", "values")
    check_floating(values, "values")
    n, c, height, width = values.shape
    check_shape(flow, "N 2 H W", "flow", sizes={"N": n, "H": height, "W": width},
                note=" matching values (N, C, H, W)")
    check_floating(flow, "flow")
    flow = flow.to(values.dtype)
    rows = torch.arange(height, dtype=flow.dtype, device=flow.device)[:, None]
    cols = torch.arange(width, dtype=flow.dtype, device=flow.device)[None, :]
    x = cols + flow[:, 0]  # (N, H, W)
    y = rows + flow[:, 1]
    x0, y0 = x.floor().detach(), y.floor().detach()
    x1, y1 = x0 + 1, y0 + 1
    corners = (
        (x0, y0, (x1 - x) * (y1 - y)),
        (x1, y0, (x - x0) * (y1 - y)),
        (x0, y1, (x1 - x) * (y - y0)),
        (x1, y1, (x - x0) * (y - y0)),
    )
    flat = values.reshape(n, c, height * width)
    out = values.new_zeros(n, c, height * width)
    for cx, cy, weight in corners:
        inside = ((cx >= 0) & (cx < width) & (cy >= 0) & (cy < height)).reshape(n, 1, -1)  # NaN is outside
        index = (torch.where(inside[:, 0], cy.reshape(n, -1), 0).long() * width
                 + torch.where(inside[:, 0], cx.reshape(n, -1), 0).long())
        safe = torch.where(inside, weight.reshape(n, 1, -1), 0)
        contribution = torch.where(inside, safe * flat, 0)
        out = out.scatter_add(2, index[:, None].expand(n, c, -1), contribution)
    return out.reshape(n, c, height, width)


def forward_warp(image: Tensor, depth: Tensor, c_src: Tensor, c_dst: Tensor,
                 config: ForwardWarpConfig | None = None) -> ForwardWarp:
    """Forward-warp ``image`` seen from ``c_src`` with its depth into ``c_dst`` (module docstring steps 1-4).

    Args:
        image: ``(N, C, H, W)`` source images; ``[0, 1]`` as the released code (its hole test treats
            exact black as empty).
        depth: ``(N, 1, h, w)`` EG3D depth of the source view (distance along the unit pixel rays),
            upsampled bicubically to ``H x W`` when the sizes differ.
        c_src: ``(N, 25)`` the source cameras.
        c_dst: ``(N, 25)`` the target cameras.
        config: the mode and weight scale (default: the released warp).

    Returns:
        :class:`ForwardWarp`: the warp, its visible mask and its internals, in the promoted dtype.

    Raises:
        CameraError: malformed or non-finite cameras, shapes or batches that do not match.

    Example:
        >>> from warpinv.cameras.lookat import yaw_pitch_camera
        >>> c = yaw_pitch_camera(0.0, 0.0); image = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
        >>> out = forward_warp(image, torch.full((1, 1, 4, 4), 2.5), c, c, ForwardWarpConfig(mode="clean"))
        >>> bool(out.visible.all()), bool(torch.allclose(out.warped, image, atol=1e-3))
        (True, True)
    """
    config = ForwardWarpConfig() if config is None else config
    _, height, width = _check_inputs(image, depth, c_src, c_dst)
    dtype = torch.promote_types(torch.promote_types(image.dtype, depth.dtype), c_src.dtype)
    image, depth = image.to(dtype), depth.to(dtype)
    c_src, c_dst = c_src.to(dtype), c_dst.to(dtype)
    depth_up = upsample_depth(depth, (height, width))
    if config.mode == "official":
        _note_ignored_intrinsics(c_src, c_dst)
        target_xy, target_depth = official_projection(depth_up, c_src, c_dst)
        flow = target_xy - _pixel_indices(height, width, image)
        in_front = None
    else:
        target_xy, target_depth, in_front = clean_projection(depth_up, c_src, c_dst)
        flow = target_xy - (_pixel_indices(height, width, image) + 0.5)
    weights = splat_weights(target_depth, config.weight_scale, in_front)
    splat = splat_summation(torch.cat([weights * image, weights], dim=1), flow)
    numerator, denominator = splat[:, :-1], splat[:, -1:]
    if config.mode == "official":
        warped = numerator / denominator.clamp(min=OFFICIAL_MIN_DENOMINATOR)
        visible = (warped != 0).any(dim=1, keepdim=True)
    else:
        landed = denominator > 0
        warped = torch.where(landed, numerator / denominator.clamp(min=torch.finfo(dtype).tiny), 0)
        visible = landed
    logger.debug("forward warp (%s): %d of %d target pixels visible", config.mode, int(visible.sum()),
                 visible.numel())
    return ForwardWarp(warped=warped, visible=visible.to(dtype), flow=flow, depth_up=depth_up,
                       target_depth=target_depth, weights=weights, numerator=numerator, denominator=denominator)


def upsample_depth(depth: Tensor, size: tuple[int, int]) -> Tensor:
    """``(N, 1, h, w)`` -> ``(N, 1, H, W)``: bicubic, ``align_corners=False`` (official); unchanged at the same size."""
    if tuple(depth.shape[-2:]) == tuple(size):
        return depth
    return F.interpolate(depth, size=size, mode="bicubic", align_corners=False)


def official_intrinsics(height: int, width: int, like: Tensor, focal: float = FFHQ_FOCAL) -> Tensor:
    """The released warp's pixel intrinsics ``[[f W, 0, W / 2], [0, f H, H / 2], [0, 0, 1]]`` ``(3, 3)``.

    Example:
        >>> official_intrinsics(64, 32, torch.zeros(1))[:2].tolist()
        [[136.47039794921875, 0.0, 16.0], [0.0, 272.9407958984375, 32.0]]
    """
    return torch.tensor([[focal * width, 0.0, 0.5 * width], [0.0, focal * height, 0.5 * height], [0.0, 0.0, 1.0]],
                        dtype=like.dtype, device=like.device)


def official_projection(depth: Tensor, c_src: Tensor, c_dst: Tensor) -> tuple[Tensor, Tensor]:
    """The released geometry: integer pixel ``(x, y)`` lifted to ``depth * K^-1 [x, y, 1]`` (the ray
    depth taken as camera z), moved by ``T = inv(c2w_dst) @ inv(inv(c2w_src))`` (inverted twice, as
    released) and projected with the same fixed ``K``.

    Args:
        depth: ``(N, 1, H, W)`` source depth at the image size.
        c_src, c_dst: ``(N, 25)`` cameras (only their poses are read).

    Returns:
        ``xy (N, 2, H, W)`` target positions in integer-grid pixels and ``z (N, 1, H, W)`` target depth.
    """
    n, _, height, width = depth.shape
    k = official_intrinsics(height, width, depth)
    src_pose, _ = unpack_label(c_src)
    dst_pose, _ = unpack_label(c_dst)
    transform = torch.linalg.inv(dst_pose) @ torch.linalg.inv(torch.linalg.inv(src_pose))
    pixels = torch.cat([_pixel_indices(height, width, depth).reshape(1, 2, -1),
                        depth.new_ones(1, 1, height * width)], dim=1)
    camera = depth.reshape(n, 1, -1) * (torch.linalg.inv(k) @ pixels)  # (N, 3, HW)
    moved = transform[:, :3, :3] @ camera + transform[:, :3, 3:]
    projected = k @ moved
    z = projected[:, 2:]
    return (projected[:, :2] / z).reshape(n, 2, height, width), z.reshape(n, 1, height, width)


def clean_projection(depth: Tensor, c_src: Tensor, c_dst: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """True EG3D geometry: each pixel centre's unit ray from the source label (intrinsics included)
    times the ray depth gives the world point, projected into the target label.

    Args:
        depth: ``(N, 1, H, W)`` source depth (distance along the unit rays) at the image size.
        c_src, c_dst: ``(N, 25)`` cameras.

    Returns:
        ``xy (N, 2, H, W)`` target positions in pixels with pixel centres at ``j + 0.5``, ``z (N, 1, H, W)``
        planar target depth and ``in_front (N, 1, H, W)`` bool.
    """
    n, _, height, width = depth.shape
    points = ray_points(depth, c_src)
    xy, z, in_front = project_points(points, c_dst, (height, width))
    return (xy.transpose(1, 2).reshape(n, 2, height, width), z.reshape(n, 1, height, width),
            in_front.reshape(n, 1, height, width))


def ray_points(depth: Tensor, c: Tensor) -> Tensor:
    """World points ``(N, H*W, 3)`` (row-major) of a depth map ``(N, 1, H, W)`` of distances along the
    unit rays through the pixel centres ``((j + 0.5) / W, (i + 0.5) / H)`` of camera ``c (N, 25)``.
    For square maps this is :func:`~warpinv.cameras.warp.unproject_depth`; any ``H x W`` is accepted."""
    n, _, height, width = depth.shape
    cam2world, k = unpack_label(c)
    rows = (torch.arange(height, dtype=depth.dtype, device=depth.device) + 0.5) / height
    cols = (torch.arange(width, dtype=depth.dtype, device=depth.device) + 0.5) / width
    grid_y, grid_x = torch.meshgrid(rows, cols, indexing="ij")
    xy = torch.stack([grid_x, grid_y], dim=-1).reshape(1, -1, 2).expand(n, -1, -1)
    directions = F.normalize(lift_to_camera(xy, k), dim=-1) @ cam2world[:, :3, :3].transpose(1, 2)
    return cam2world[:, None, :3, 3] + directions * depth.reshape(n, -1, 1)


def splat_weights(target_depth: Tensor, scale: float, keep: Tensor | None = None) -> Tensor:
    """``exp(s * imp_n - s)`` with ``imp = 1 / z`` min-max normalised per sample (``+1e-6`` on the range,
    official), over the ``keep`` points only when given (the others weigh 0).

    Args:
        target_depth: ``(N, 1, H, W)`` depth in the target camera.
        scale: ``s`` (released 10).
        keep: optional ``(N, 1, H, W)`` bool of the points that take part.

    Returns:
        ``(N, 1, H, W)`` weights in ``[e^-s, 1]`` (and 0 outside ``keep``).

    Example:
        >>> [f"{w:.3g}" for w in splat_weights(torch.tensor([1.0, 2.0, 4.0]).view(1, 1, 1, 3), 10.0).flatten()]
        ['1', '0.00127', '4.54e-05']
    """
    if keep is None:
        importance = 1.0 / target_depth
        low = importance.amin((1, 2, 3), keepdim=True)
        high = importance.amax((1, 2, 3), keepdim=True)
    else:
        # Dropped points get finite stand-ins so that no inf or NaN reaches the gradient through where().
        importance = 1.0 / torch.where(keep, target_depth, 1)
        low = torch.where(keep, importance, torch.inf).amin((1, 2, 3), keepdim=True)
        high = torch.where(keep, importance, -torch.inf).amax((1, 2, 3), keepdim=True)
        none = ~keep.flatten(1).any(1).view(-1, 1, 1, 1)
        low, high = torch.where(none, 0, low), torch.where(none, 0, high)
    weights = ((importance - low) / (high - low + IMPORTANCE_EPS) * scale - scale).exp()
    return weights if keep is None else torch.where(keep, weights, 0)


def draw_blur_sigma(generator: torch.Generator | None = None, sigma_range: tuple[float, float] = BLUR_SIGMA_RANGE
                    ) -> float:
    """One ``sigma ~ U(0.1, 2.0)``, drawn as torchvision's ``GaussianBlur.get_params`` does
    (``torch.empty(1).uniform_``); ``generator=None`` draws from the global RNG, so that
    ``torch.manual_seed(s)`` before a sequence of draws reproduces the released code's sigmas.

    Example:
        >>> a = draw_blur_sigma(torch.Generator().manual_seed(0))
        >>> a == draw_blur_sigma(torch.Generator().manual_seed(0)), 0.1 <= a <= 2.0
        (True, True)
    """
    low, high = sigma_range
    return float(torch.empty(1).uniform_(low, high, generator=generator))


def hole_mask(visible: Tensor, sigma: float, *, erode_size: int = WARPGAN_ERODE,
              blur_size: int = WARPGAN_BLUR) -> Tensor:
    """WarpGAN's soft hole mask ``1 - blur(erode(visible))``: 3x3 erosion with outside pixels ignored,
    then torchvision's Gaussian blur (size 21, reflect border) at ``sigma``, in ``visible``'s dtype; not
    re-binarised (released).

    Args:
        visible: ``(..., H, W)`` float visible mask in ``{0, 1}`` (``H, W > blur_size // 2``).
        sigma: the blur's sigma (:func:`draw_blur_sigma` draws the released random one).

    Returns:
        ``(..., H, W)`` soft hole mask in ``[0, 1]`` (up to float rounding): 1 in holes.

    Example:
        >>> visible = torch.ones(1, 1, 16, 16); visible[..., 8, 8] = 0
        >>> m = hole_mask(visible, 1.0)
        >>> m.shape, float(m[0, 0, 0, 0]) < 1e-6, float(m[0, 0, 8, 8]) > 0.5
        (torch.Size([1, 1, 16, 16]), True, True)
    """
    check_floating(visible, "visible")
    eroded = erode(visible, erode_size)
    return 1 - gaussian_blur(eroded, blur_size, sigma, dtype=None)


def hybrid_fill(image: Tensor, render: Tensor, mask: Tensor) -> Tensor:
    """``image * (1 - mask) + render * mask``: the render shows through the holes (``mask`` broadcasts).

    Example:
        >>> hybrid_fill(torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2), torch.full((1, 1, 2, 2), 0.25))[0, 0, 0, 0]
        tensor(0.2500)
    """
    return image * (1 - mask) + render * mask


def inpaint_input(warped01: Tensor, render01: Tensor, hole: Tensor) -> Tensor:
    """One 7-channel half of SVINet's input: ``cat([hybrid_fill(warped, render, hole), render, hole])``.

    Args:
        warped01: ``(N, 3, H, W)`` warped image in ``[0, 1]``.
        render01: ``(N, 3, H, W)`` the EG3D render of the novel view in ``[0, 1]``.
        hole: ``(N, 1, H, W)`` soft hole mask (:func:`hole_mask`).

    Returns:
        ``(N, 7, H, W)``.
    """
    sizes = check_shape(warped01, "N 3 H W", "warped01")
    check_shape(render01, "N 3 H W", "render01", sizes=sizes)
    check_shape(hole, "N 1 H W", "hole", sizes=sizes)
    return torch.cat([hybrid_fill(warped01, render01, hole), render01, hole], dim=1)


def mirror_inputs(image: Tensor, depth_lowres: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The mirrored branch's inputs: the image and the LOW-resolution depth flipped horizontally (the
    depth before any upsampling, as released) and the camera mirrored by :func:`~warpinv.cameras.flip_yaw`.

    Args:
        image: ``(N, C, H, W)``.
        depth_lowres: ``(N, 1, h, w)``.
        c: ``(N, 25)``.

    Example:
        >>> from warpinv.cameras.lookat import yaw_pitch_camera
        >>> img, d, cm = mirror_inputs(torch.arange(4.0).view(1, 1, 2, 2), torch.ones(1, 1, 2, 2),
        ...                            yaw_pitch_camera(0.3, 0.0))
        >>> img.flatten().tolist(), bool(torch.allclose(cm, yaw_pitch_camera(-0.3, 0.0), atol=1e-6))
        ([1.0, 0.0, 3.0, 2.0], True)
    """
    check_shape(image, "N C H W", "image")
    check_shape(depth_lowres, "N 1 h w", "depth_lowres")
    return image.flip(-1), depth_lowres.flip(-1), flip_yaw(c)


def _pixel_indices(height: int, width: int, like: Tensor) -> Tensor:
    """``(1, 2, H, W)`` integer ``(x, y)`` of every pixel (the released grid)."""
    ys, xs = torch.meshgrid(torch.arange(height, device=like.device), torch.arange(width, device=like.device),
                            indexing="ij")
    return torch.stack([xs, ys])[None].to(like.dtype)


_warned_intrinsics = False


def _note_ignored_intrinsics(c_src: Tensor, c_dst: Tensor) -> None:
    """Warn once per process when the official mode ignores intrinsics that are not FFHQ's."""
    global _warned_intrinsics
    if _warned_intrinsics:
        return
    ffhq = torch.tensor([FFHQ_FOCAL, 0.0, 0.5, 0.0, FFHQ_FOCAL, 0.5, 0.0, 0.0, 1.0], dtype=c_src.dtype,
                        device=c_src.device)
    if not all(bool(torch.allclose(c[:, 16:], ffhq.expand_as(c[:, 16:]), atol=1e-4)) for c in (c_src, c_dst)):
        _warned_intrinsics = True
        logger.warning("the official forward warp ignores the cameras' intrinsics (it uses focal %.4f and the "
                       "image centre); use mode 'clean' for other intrinsics", FFHQ_FOCAL)


def _check_inputs(image: Tensor, depth: Tensor, c_src: Tensor, c_dst: Tensor) -> tuple[int, int, int]:
    sizes = check_shape(image, "N C H W", "image", error=CameraError)
    check_floating(image, "image", error=CameraError)
    check_shape(depth, "N 1 h w", "depth", sizes={"N": sizes["N"]}, note=" with the image's batch",
                error=CameraError)
    check_floating(depth, "depth", error=CameraError)
    for name, c in (("c_src", c_src), ("c_dst", c_dst)):
        check_camera_labels(c, name, finite=True, error=CameraError)
        check_batch(c, sizes["N"], name, "image", error=CameraError)
    return sizes["N"], sizes["H"], sizes["W"]


__all__ = [
    "BLUR_SIGMA_RANGE",
    "ForwardWarp",
    "ForwardWarpConfig",
    "WARPGAN_BLUR",
    "WARPGAN_ERODE",
    "clean_projection",
    "draw_blur_sigma",
    "forward_warp",
    "hole_mask",
    "hybrid_fill",
    "inpaint_input",
    "mirror_inputs",
    "official_intrinsics",
    "official_projection",
    "ray_points",
    "splat_summation",
    "splat_weights",
    "upsample_depth",
]
