"""EG3D's LookAt cameras (``camera_utils.py``), reproduced exactly, quirks included.

World frame: y up, the face at the origin looking toward +z. ``LookAtPoseSampler.sample(h, v)`` puts
the camera on a sphere of the given radius **centred at the world origin** (not at the look-at
point) at azimuth ``theta = h`` and polar angle ``phi = arccos(1 - 2 v / pi)`` (so ``v`` is not the
polar angle itself), then points it at ``lookat``. ``h = v = pi/2`` is the frontal camera at
``(0, 0, r)``; ``h > pi/2`` moves the camera toward +x; ``v < pi/2`` moves it up (+y).

The project's yaw/pitch are offsets of ``h`` and ``v`` from ``pi/2``: ``yaw > 0`` moves the camera
toward +x, ``pitch > 0`` moves it **down** (it looks up). Near the frontal pose the camera's true
elevation is about ``-(2 / pi) * pitch``, because of the arccos mapping.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from warpinv.cameras.labels import CameraError, pack_label
from warpinv.checks import check_batch, check_min, check_shape

FFHQ_FOCAL: float = 4.2647
"""Normalised focal length of the FFHQ/AFHQ dataset labels: 2985.29 / 700."""
FFHQ_FOV_DEG: float = 18.837
"""EG3D's default FFHQ field of view in degrees (gives 4.263391, not exactly FFHQ_FOCAL)."""
DEFAULT_RADIUS: float = 2.7
"""Camera distance from the world origin used by the FFHQ checkpoints (``avg_camera_radius``)."""
DEFAULT_LOOKAT: tuple[float, float, float] = (0.0, 0.0, 0.2)
"""Look-at pivot of the FFHQ checkpoints (``avg_camera_pivot``)."""

_V_EPS = 1e-5

Angle = float | Tensor
Vector3 = Sequence[float] | Tensor


def create_cam2world(forward: Tensor, origin: Tensor) -> Tensor:
    """Camera-to-world matrices of cameras at ``origin`` looking along ``forward`` (no roll, y up).

    Official construction: ``f = normalize(forward)``, ``right = -normalize(world_up x f)``,
    ``up = normalize(f x right)``; rotation columns ``[right, up, f]``. With world up ``+y`` the
    second column points **down** in the image sense, which makes the matrix an OpenCV cam2world.

    Args:
        forward: ``(N, 3)`` viewing directions (any length > 0, not parallel to ``+-y``).
        origin: ``(N, 3)`` camera centres.

    Returns:
        ``(N, 4, 4)`` cam2world matrices in the dtype of ``forward``.

    Example:
        >>> m = create_cam2world(torch.tensor([[0., 0., -1.]]), torch.tensor([[0., 0., 2.7]]))
        >>> (m[0, :3] + 0.0).tolist()  # + 0.0 folds -0.0 into 0.0
        [[1.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, 2.700000047683716]]
    """
    check_shape(forward, "N 3", "forward", error=CameraError)
    check_shape(origin, "N 3", "origin", error=CameraError)
    check_batch(forward, origin.shape[0], "forward", "origin", error=CameraError)
    forward = forward / forward.norm(dim=-1, keepdim=True)
    world_up = torch.tensor([0.0, 1.0, 0.0], dtype=forward.dtype, device=forward.device).expand_as(forward)
    side = torch.linalg.cross(world_up, forward, dim=-1)
    side_norm = side.norm(dim=-1, keepdim=True)
    bad = (~(side_norm[:, 0] > 1e-12)).nonzero()
    if len(bad):
        raise CameraError(f"camera {int(bad[0, 0])}: forward is zero, non-finite or parallel to the world up axis")
    right = -(side / side_norm)
    up = torch.linalg.cross(forward, right, dim=-1)
    up = up / up.norm(dim=-1, keepdim=True)
    top = torch.cat([torch.stack((right, up, forward), dim=-1), origin.to(forward.dtype).unsqueeze(-1)], dim=-1)
    bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=forward.dtype, device=forward.device)
    return torch.cat([top, bottom.expand(top.shape[0], 1, 4)], dim=1)


def lookat_pose(
    h: Angle,
    v: Angle,
    lookat: Vector3 = (0.0, 0.0, 0.0),
    radius: float | Tensor = 1.0,
    *,
    h_std: float = 0.0,
    v_std: float = 0.0,
    batch_size: int | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """``LookAtPoseSampler.sample``: a camera on the origin-centred sphere looking at ``lookat``.

    ``theta = h``; ``v`` is clamped to ``[1e-5, pi - 1e-5]`` and ``phi = arccos(1 - 2 v / pi)``; the
    centre is ``r * (sin(phi) cos(pi - theta), cos(phi), sin(phi) sin(pi - theta))``. The arithmetic
    follows the official order in ``dtype`` (float32 by default, like the official sampler).

    Unlike the official sampler this never consumes the global RNG when ``h_std = v_std = 0`` (the
    official code calls ``torch.randn`` unconditionally): noise is drawn only for a non-zero std,
    first for ``h`` then for ``v`` as officially, from ``generator`` (or from the default generator
    when none is given).

    Args:
        h: azimuth, a float or a ``(B,)`` tensor.
        v: polar parameter, a float or a ``(B,)`` tensor.
        lookat: ``(3,)`` or ``(B, 3)`` point the cameras look at.
        radius: sphere radius, a float or a ``(B,)`` tensor (official default 1).
        h_std: standard deviation of Gaussian noise added to ``h``.
        v_std: standard deviation of Gaussian noise added to ``v``.
        batch_size: ``B`` when ``h``, ``v`` are floats (default 1); must agree with tensor inputs.
        generator: source of the noise.
        device: output device (default: that of a tensor input, else CPU).
        dtype: output dtype.

    Returns:
        ``(B, 4, 4)`` OpenCV cam2world matrices.

    Example:
        >>> m = lookat_pose(math.pi / 2, math.pi / 2, (0.0, 0.0, 0.2), 2.7)
        >>> [round(x, 6) + 0.0 for x in m[0, :3, 3].tolist()]
        [0.0, 0.0, 2.7]
    """
    device = _pick_device(device, h, v, lookat, radius)
    h_col, v_col = _angle_column(h, "h", dtype, device), _angle_column(v, "v", dtype, device)
    r = _angle_column(radius, "radius", dtype, device)
    target = _vector3(lookat, "lookat", dtype, device).reshape(-1, 3)
    b = _batch_size(batch_size, h_col, v_col, r, target)
    h_col, v_col = h_col.expand(b, 1), v_col.expand(b, 1)
    if h_std != 0:
        h_col = torch.randn((b, 1), generator=generator, device=device, dtype=dtype) * h_std + h_col
    if v_std != 0:
        v_col = torch.randn((b, 1), generator=generator, device=device, dtype=dtype) * v_std + v_col
    v_col = torch.clamp(v_col, _V_EPS, math.pi - _V_EPS)
    phi = torch.arccos(1 - 2 * (v_col / math.pi))
    # Same operation order as the official code, so float32 results agree bit for bit.
    origin = torch.cat(
        [
            r * torch.sin(phi) * torch.cos(math.pi - h_col),
            r * torch.cos(phi),
            r * torch.sin(phi) * torch.sin(math.pi - h_col),
        ],
        dim=1,
    )
    forward = target - origin
    # The official sampler normalises here and create_cam2world normalises again; the second pass
    # changes the last bit, so it is kept.
    return create_cam2world(forward / forward.norm(dim=-1, keepdim=True), origin)


def fov_to_intrinsics(
    fov_deg: float, *, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> Tensor:
    """``FOV_to_intrinsics``: normalised intrinsics of a centred camera with diagonal FOV ``fov_deg``.

    ``f = 1 / (tan(fov_deg * 3.14159 / 360) * 1.414)``: the official constants 3.14159 and 1.414 are
    kept on purpose. EG3D's default 18.837 degrees therefore gives ``f = 4.263391``, not the 4.2647
    (:data:`FFHQ_FOCAL`) of the FFHQ dataset labels.

    Returns:
        ``(3, 3)`` intrinsics ``[[f, 0, 0.5], [0, f, 0.5], [0, 0, 1]]``.

    Example:
        >>> round(float(fov_to_intrinsics(18.837)[0, 0]), 6)
        4.263391
    """
    if not 0 < fov_deg < 180:
        raise CameraError(f"fov_deg must be in (0, 180), got {fov_deg}")
    focal = float(1 / (math.tan(fov_deg * 3.14159 / 360) * 1.414))
    return focal_to_intrinsics(focal, device=device, dtype=dtype)


def focal_to_intrinsics(
    focal: float,
    cx: float = 0.5,
    cy: float = 0.5,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Normalised ``(3, 3)`` intrinsics with ``fx = fy = focal`` and principal point ``(cx, cy)``.

    Example:
        >>> focal_to_intrinsics(FFHQ_FOCAL).tolist()[2]
        [0.0, 0.0, 1.0]
    """
    check_min(focal, 0, "focal", strict=True, error=CameraError)
    return torch.tensor([[focal, 0.0, cx], [0.0, focal, cy], [0.0, 0.0, 1.0]], dtype=dtype, device=device)


def yaw_pitch_camera(
    yaw: Angle,
    pitch: Angle,
    radius: float = DEFAULT_RADIUS,
    lookat: Vector3 = DEFAULT_LOOKAT,
    focal: float = FFHQ_FOCAL,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """EG3D label of ``LookAtPoseSampler.sample(pi/2 + yaw, pi/2 + pitch, lookat, radius=radius)``.

    ``yaw > 0`` moves the camera toward world +x, ``pitch > 0`` moves it down (v grows).

    Args:
        yaw: float or ``(B,)`` tensor, radians.
        pitch: float or ``(B,)`` tensor, radians.
        radius: camera distance from the world origin.
        lookat: ``(3,)`` look-at point.
        focal: normalised focal length (principal point 0.5, 0.5).

    Returns:
        ``(B, 25)`` labels.

    Example:
        >>> c = yaw_pitch_camera(0.0, 0.0)
        >>> c.shape, [round(x, 4) + 0.0 for x in c[0, [3, 7, 11, 16]].tolist()]
        (torch.Size([1, 25]), [0.0, 0.0, 2.7, 4.2647])
    """
    pose = lookat_pose(math.pi / 2 + yaw, math.pi / 2 + pitch, lookat, radius, device=device, dtype=dtype)
    return pack_label(pose, focal_to_intrinsics(focal, device=pose.device, dtype=dtype))


def cam2world_to_yaw_pitch(cam2world: Tensor) -> tuple[Tensor, Tensor]:
    """Inverse of :func:`yaw_pitch_camera` for cameras on the origin-centred LookAt sphere.

    Only the camera centre ``o`` is used: ``yaw = atan2(o_x, o_z)`` and
    ``pitch = -(pi / 2) * o_y / |o|`` (from ``cos(phi) = 1 - 2 v / pi``). The orientation and the
    look-at point are not checked.

    Args:
        cam2world: ``(N, 4, 4)`` matrices (e.g. ``unpack_label(c)[0]``).

    Returns:
        ``yaw (N,)`` in ``(-pi, pi]`` and ``pitch (N,)`` in ``[-pi/2, pi/2]``.

    Example:
        >>> from warpinv.cameras.labels import unpack_label
        >>> yaw, pitch = cam2world_to_yaw_pitch(unpack_label(yaw_pitch_camera(0.3, -0.1))[0])
        >>> round(float(yaw), 5), round(float(pitch), 5)
        (0.3, -0.1)
    """
    check_shape(cam2world, "N 4 4", "cam2world", error=CameraError)
    centre = cam2world[:, :3, 3]
    distance = centre.norm(dim=-1)
    bad = (distance == 0).nonzero()
    if len(bad):
        raise CameraError(f"camera {int(bad[0, 0])} sits at the world origin: yaw and pitch are undefined")
    yaw = torch.atan2(centre[:, 0], centre[:, 2])
    pitch = -(math.pi / 2) * centre[:, 1] / distance
    return yaw, pitch


def _pick_device(device: torch.device | str | None, *values: object) -> torch.device:
    if device is not None:
        return torch.device(device)
    for value in values:
        if isinstance(value, Tensor):
            return value.device
    return torch.device("cpu")


def _angle_column(value: Angle, name: str, dtype: torch.dtype, device: torch.device) -> Tensor:
    """A float or a ``(B,)``/``(B, 1)`` tensor as a ``(B, 1)`` column (``(1, 1)`` for floats)."""
    if isinstance(value, Tensor):
        if value.ndim > 2 or (value.ndim == 2 and value.shape[1] != 1):
            raise CameraError(f"{name} must be a float or a (B,) tensor, got shape {tuple(value.shape)}")
        return value.to(device=device, dtype=dtype).reshape(-1, 1)
    if not isinstance(value, (int, float)):
        raise CameraError(f"{name} must be a float or a tensor, got {type(value).__name__}")
    return torch.tensor([[float(value)]], dtype=dtype, device=device)


def _batch_size(batch_size: int | None, *columns: Tensor) -> int:
    sizes = {col.shape[0] for col in columns if col.shape[0] != 1}
    if batch_size is not None:
        sizes.add(batch_size)
    if len(sizes) > 1:
        raise CameraError(f"inconsistent batch sizes among h, v, radius, lookat and batch_size: {sorted(sizes)}")
    size = sizes.pop() if sizes else 1
    if size < 1:
        raise CameraError(f"batch size must be >= 1, got {size}")
    return size


def _vector3(value: Vector3, name: str, dtype: torch.dtype, device: torch.device) -> Tensor:
    vec = torch.as_tensor(value, dtype=dtype, device=device)
    if vec.shape[-1:] != (3,) or vec.ndim > 2:
        raise CameraError(f"{name} must be a (3,) or (B, 3) vector, got shape {tuple(vec.shape)}")
    return vec
