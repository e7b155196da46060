"""EG3D's 25-float camera labels: packing, validation, mirroring, radius normalisation, IBRNet export.

A label ``c`` of shape ``(N, 25)`` holds the 4x4 OpenCV cam2world matrix flattened row-major
(``c[:, 0:16]``) followed by the 3x3 intrinsics normalised by image size (``c[:, 16:25]``). Entry
``k`` of a label is therefore ``cam2world[k // 4, k % 4]`` for ``k < 16`` and
``intrinsics[(k - 16) // 3, (k - 16) % 3]`` otherwise; error messages name entries both ways.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from warpinv.checks import LABEL_DIM, check_batch, check_camera_labels, check_shape, describe

IBRNET_CAMERA_DIM = 34

# Pose entries negated by EG3D's dataset mirroring (`preprocess_face_cameras.flip_yaw`):
# [0,1], [0,2], [1,0], [2,0] of the rotation and [0,3] of the translation.
_FLIP_YAW_ENTRIES = (1, 2, 4, 8, 3)
_TRANSLATION_ENTRIES = (3, 7, 11)


class CameraError(ValueError):
    """A camera label or camera argument that is malformed; the message names the sample and entry."""


class RadiusReport(NamedTuple):
    """How far cameras were from the requested radius before :func:`normalize_camera`.

    Attributes:
        distance: ``(N,)`` distance of each camera centre from the pivot before rescaling.
        error: ``(N,)`` signed ``distance - radius``.
    """

    distance: Tensor
    error: Tensor

    @property
    def max_abs_error(self) -> float:
        """Largest ``|distance - radius|`` over the batch (0.0 for an empty batch)."""
        return float(self.error.abs().max()) if self.error.numel() else 0.0


def entry_name(k: int) -> str:
    """Matrix name of label entry ``k``.

    Example:
        >>> entry_name(3), entry_name(16), entry_name(24)
        ('cam2world[0,3]', 'intrinsics[0,0]', 'intrinsics[2,2]')
    """
    if not 0 <= k < LABEL_DIM:
        raise IndexError(f"label entry {k} out of range 0..{LABEL_DIM - 1}")
    return f"cam2world[{k // 4},{k % 4}]" if k < 16 else f"intrinsics[{(k - 16) // 3},{(k - 16) % 3}]"


def check_label_shape(c: Tensor, name: str = "c") -> None:
    """Raise :class:`CameraError` unless ``c`` is a floating tensor of shape ``(N, 25)``.

    Example:
        >>> check_label_shape(torch.zeros(2, 24))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        warpinv.cameras.labels.CameraError: c must have shape (N, 25), got (2, 24) (24 entries per label; ...)
    """
    check_camera_labels(c, name, error=CameraError)


def pack_label(cam2world: Tensor, intrinsics: Tensor) -> Tensor:
    """Flatten poses and intrinsics into EG3D labels.

    Args:
        cam2world: ``(N, 4, 4)`` OpenCV camera-to-world matrices.
        intrinsics: ``(N, 3, 3)`` or ``(3, 3)`` (shared by all N) normalised intrinsics.

    Returns:
        ``(N, 25)`` labels, in the promoted dtype of the two inputs.

    Example:
        >>> pack_label(torch.eye(4)[None], torch.eye(3)).shape
        torch.Size([1, 25])
    """
    n = check_shape(cam2world, "N 4 4", "cam2world", error=CameraError)["N"]
    if not isinstance(intrinsics, Tensor) or intrinsics.shape[-2:] != (3, 3) or intrinsics.ndim not in (2, 3):
        raise CameraError(f"intrinsics must be a (N, 3, 3) or (3, 3) tensor, got {describe(intrinsics)}")
    if intrinsics.ndim == 3:
        check_batch(intrinsics, n, "intrinsics", "cam2world", error=CameraError)
    dtype = torch.promote_types(cam2world.dtype, intrinsics.dtype)
    k = intrinsics.to(cam2world.device, dtype).reshape(-1, 9).expand(n, 9)
    return torch.cat([cam2world.to(dtype).reshape(n, 16), k], dim=1)


def unpack_label(c: Tensor) -> tuple[Tensor, Tensor]:
    """Split labels into ``cam2world (N, 4, 4)`` and ``intrinsics (N, 3, 3)`` (views when possible).

    Example:
        >>> c2w, k = unpack_label(torch.zeros(2, 25))
        >>> c2w.shape, k.shape
        (torch.Size([2, 4, 4]), torch.Size([2, 3, 3]))
    """
    check_label_shape(c)
    return c[:, :16].reshape(-1, 4, 4), c[:, 16:].reshape(-1, 3, 3)


def validate_label(c: Tensor, *, atol: float = 1e-4) -> None:
    """Check that labels are usable EG3D cameras; raise :class:`CameraError` naming the first fault.

    Checks, in order: shape ``(N, 25)`` and floating dtype; every entry finite; pose bottom row
    ``(0, 0, 0, 1)``; rotation orthonormal (``|RᵀR - I| <= atol``) with determinant +1; intrinsics
    ``[1,0]`` zero (the ray sampler ignores it) and last row ``(0, 0, 1)``; focal lengths ``> 0``.

    Args:
        c: ``(N, 25)`` labels.
        atol: absolute tolerance of the orthonormality and zero/one checks.

    Example:
        >>> c = torch.tensor([[1., 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2.7, 0, 0, 0, 1, 4.26, 0, .5, 0, 4.26, .5, 0, 0, 1]])
        >>> validate_label(c)
        >>> c[0, 5] = float("nan")
        >>> validate_label(c)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        warpinv.cameras.labels.CameraError: camera label sample 0, entry 5 (cam2world[1,1]) is nan (1 non-finite ...)
    """
    check_label_shape(c)
    c = c.detach()
    check_camera_labels(c, "camera label", finite=True, error=CameraError)
    _check_fixed_entries(c, {12: 0.0, 13: 0.0, 14: 0.0, 15: 1.0}, atol)
    _check_rotation(c[:, :16].reshape(-1, 4, 4)[:, :3, :3], atol)
    _check_fixed_entries(c, {19: 0.0, 22: 0.0, 23: 0.0, 24: 1.0}, atol)
    for k in (16, 20):
        bad = (c[:, k] <= 0).nonzero()
        if len(bad):
            n = int(bad[0, 0])
            raise CameraError(
                f"camera label sample {n}, entry {k} ({entry_name(k)}, focal length) must be > 0, "
                f"got {float(c[n, k]):.6g}"
            )


def _check_fixed_entries(c: Tensor, expected: dict[int, float], atol: float) -> None:
    for k, value in expected.items():
        bad = ((c[:, k] - value).abs() > atol).nonzero()
        if len(bad):
            n = int(bad[0, 0])
            raise CameraError(
                f"camera label sample {n}, entry {k} ({entry_name(k)}) must be {value:g}, got {float(c[n, k]):.6g}"
            )


def _check_rotation(rot: Tensor, atol: float) -> None:
    gram = rot.transpose(1, 2) @ rot
    dev = (gram - torch.eye(3, dtype=rot.dtype, device=rot.device)).abs().flatten(1)
    worst, where = dev.max(dim=1)
    bad = (worst > atol).nonzero()
    if len(bad):
        n = int(bad[0, 0])
        i, j = divmod(int(where[n]), 3)
        cols = f"entries {i},{4 + i},{8 + i}"
        what = (
            f"column {i} ({cols}) has squared norm {float(gram[n, i, i]):.6g}, expected 1"
            if i == j
            else f"columns {i} and {j} have dot product {float(gram[n, i, j]):.6g}, expected 0"
        )
        raise CameraError(f"camera label sample {n}: cam2world[:3,:3] is not a rotation: {what} (atol {atol:g})")
    det = torch.linalg.det(rot)
    bad = (det < 0).nonzero()
    if len(bad):
        n = int(bad[0, 0])
        raise CameraError(
            f"camera label sample {n}: cam2world[:3,:3] has determinant {float(det[n]):.6g}, "
            "a reflection, not a proper rotation"
        )


def flip_yaw(c: Tensor) -> Tensor:
    """Mirror cameras about the world plane x = 0, as EG3D's dataset mirroring does.

    Negates pose entries ``[0,1], [0,2], [1,0], [2,0]`` and ``[0,3]``, which is
    ``diag(-1,1,1) @ cam2world @ diag(-1,1,1,1)``: the camera moves to the mirrored position and its
    image is left-right mirrored, so ``yaw -> -yaw`` on the LookAt orbit. The intrinsics are kept
    unchanged, as in the official code, even though an exact mirror of an off-centre principal point
    would need ``cx -> 1 - cx`` (and ``skew -> -skew``). The operation is an involution.

    Args:
        c: ``(N, 25)`` labels.

    Returns:
        ``(N, 25)`` mirrored labels (differentiable, input untouched).

    Example:
        >>> c = torch.arange(25.)[None]
        >>> flip_yaw(c)[0, :5].tolist(), bool(torch.equal(flip_yaw(flip_yaw(c)), c))
        ([0.0, -1.0, -2.0, -3.0, -4.0], True)
    """
    check_label_shape(c)
    sign = torch.ones(LABEL_DIM, dtype=c.dtype, device=c.device)
    sign[list(_FLIP_YAW_ENTRIES)] = -1
    return c * sign


def normalize_camera(
    c: Tensor,
    radius: float = 2.7,
    pivot: Sequence[float] | Tensor = (0.0, 0.0, 0.0),
) -> tuple[Tensor, RadiusReport]:
    """Move each camera centre along the pivot ray so that it lies at ``radius`` from the pivot.

    This is what EG3D's ``dataset_preprocessing/ffhq/preprocess_face_cameras.py`` does to FFHQ
    poses: in its default ``--mode orig`` (``fix_pose_orig``) the centre is rescaled about the
    **world origin**, ``t <- t / |t| * 2.7``; ``--mode cor`` (``fix_pose``) uses the centre
    ``(0, 0, 0.175)`` instead, ``t <- (t - cor) / |t - cor| * 2.7 + cor``. Neither uses the LookAt
    pivot ``(0, 0, 0.2)``: LookAt cameras lie on a sphere about the origin, so the default pivot here
    is the origin (``pivot=(0, 0, 0.175)`` gives the ``cor`` mode). The rotation is kept. Unlike the
    official script this function leaves the intrinsics alone (the script also overwrites them with
    ``fx = fy = 2985.29 / 700``, ``cx = cy = 0.5``).

    Args:
        c: ``(N, 25)`` labels.
        radius: target distance of every camera centre from ``pivot``.
        pivot: ``(3,)`` centre of the rescaling.

    Returns:
        ``(N, 25)`` normalised labels and a :class:`RadiusReport` of the distances before.

    Example:
        >>> c = torch.zeros(1, 25); c[0, 11] = 3.0
        >>> out, report = normalize_camera(c)
        >>> float(out[0, 11]), float(report.error[0])
        (2.700000047683716, 0.2999999523162842)
    """
    check_label_shape(c)
    if not radius > 0:
        raise CameraError(f"radius must be > 0, got {radius}")
    centre = torch.as_tensor(pivot, dtype=c.dtype, device=c.device)
    if centre.shape != (3,):
        raise CameraError(f"pivot must be a 3-vector, got shape {tuple(centre.shape)}")
    offset = c[:, list(_TRANSLATION_ENTRIES)] - centre
    distance = offset.norm(dim=1)
    degenerate = (distance == 0).nonzero()
    if len(degenerate):
        raise CameraError(f"camera label sample {int(degenerate[0, 0])}: camera centre coincides with the pivot")
    out = c.clone()
    out[:, list(_TRANSLATION_ENTRIES)] = offset / distance[:, None] * radius + centre
    return out, RadiusReport(distance=distance.detach(), error=(distance - radius).detach())


def to_ibrnet_camera(c: Tensor, height: int, width: int) -> Tensor:
    """Convert EG3D labels to IBRNet's 34-float cameras ``[H, W, K (4x4), cam2world (4x4)]``.

    IBRNet's pixel ``(u, v)`` = (column, row) has its centre at integer coordinates, while EG3D's
    normalised image point of the same pixel is ``((u + 0.5) / W, (v + 0.5) / H)``. Hence
    ``K_px = [[W, 0, -0.5], [0, H, -0.5], [0, 0, 1]] @ K``, i.e. ``fx_px = fx * W``,
    ``fy_px = fy * H``, ``cx_px = cx * W - 0.5``, ``cy_px = cy * H - 0.5`` (and skew ``* W``),
    padded to 4x4 with ``K[3,3] = 1``. EG3D's cam2world is already in OpenCV axes (x right, y down,
    looking along +z), which is what IBRNet expects, so it is copied unchanged.

    Args:
        c: ``(N, 25)`` labels.
        height: image height ``H`` in pixels.
        width: image width ``W`` in pixels.

    Returns:
        ``(N, 34)`` IBRNet cameras in the dtype of ``c``.

    Example:
        >>> c2w = torch.eye(4)[None]; k = torch.tensor([[4.2647, 0, 0.5], [0, 4.2647, 0.5], [0, 0, 1]])
        >>> cam = to_ibrnet_camera(pack_label(c2w, k), 512, 512)
        >>> [round(v, 4) for v in cam[0, [0, 1, 2, 4, 7]].tolist()]
        [512.0, 512.0, 2183.5264, 255.5, 2183.5264]
    """
    cam2world, k = unpack_label(c)
    if height <= 0 or width <= 0:
        raise CameraError(f"height and width must be positive, got {height} x {width}")
    n = c.shape[0]
    to_pixels = torch.tensor(
        [[width, 0.0, -0.5], [0.0, height, -0.5], [0.0, 0.0, 1.0]], dtype=c.dtype, device=c.device
    )
    k4 = torch.eye(4, dtype=c.dtype, device=c.device).repeat(n, 1, 1)
    k4[:, :3, :3] = to_pixels @ k
    size = torch.tensor([float(height), float(width)], dtype=c.dtype, device=c.device).expand(n, 2)
    return torch.cat([size, k4.reshape(n, 16), cam2world.reshape(n, 16)], dim=1)
